"""The signal stage's model: book and trade features in, a Prediction out.

Foundation version (before issue 5's RLS model): the predicted return is linear in the
order-book imbalance, `imbalance_coef_bps * 1e-4 * imbalance`. Alongside it the model keeps an
EWMA of the mid, a trade-flow imbalance and a realised volatility, all decayed on event time by
the elapsed nanoseconds between (irregular) events, so a replay gives the same numbers as live.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from mm.config import SignalConfig

_NS_PER_S = 1_000_000_000
_LN2 = math.log(2.0)


class Prediction(msgspec.Struct, frozen=True):
    ts_ns: int  # event time of the book update that produced it
    predicted_return: float  # fraction (0.0001 = 1 bp) over the model's horizon
    fair_px_tick: float  # mid * (1 + predicted_return)
    volatility_bps_per_s: float  # std of 1 s mid log-returns, in bps
    imbalance: float  # (sum bid qty - sum ask qty) / (sum of both) over the top levels, in [-1, 1]
    healthy: bool  # False: an empty side, a crossed book or a non-finite feature; do not quote on it


def _decay(elapsed_ns: int, halflife_ns: float) -> float:
    """Weight left on the old value after `elapsed_ns`: 2^(-elapsed / half-life)."""
    return math.exp(-_LN2 * elapsed_ns / halflife_ns)


class SignalModel:
    """Mutable model state; `on_book` and `on_trade` are pure in their inputs (no clock, no I/O)."""

    def __init__(self, cfg: SignalConfig) -> None:
        self._levels = cfg.imbalance_levels
        self._coef_ratio = cfg.imbalance_coef_bps * 1e-4
        self._mid_halflife_ns = cfg.ewma_halflife_s * _NS_PER_S
        self._vol_halflife_ns = cfg.vol_halflife_s * _NS_PER_S
        # variance of log-returns per second, warm-started at the prior so it is usable at once
        self._variance_per_s = (cfg.vol_prior_bps_per_s * 1e-4) ** 2
        self._last_mid_tick = 0.0  # 0.0 = no mid seen yet
        self._last_book_ns = 0
        self._ewma_mid_tick = 0.0
        self._last_fair_px_tick = 0.0
        self._flow_signed_lot = 0.0  # EWMA sums of taker volume, signed and unsigned
        self._flow_total_lot = 0.0
        self._last_trade_ns = 0
        self.trades_ignored = 0  # trades with qty <= 0 or a side other than +1 / -1

    @property
    def ewma_mid_tick(self) -> float:
        """EWMA of the mid (half-life `ewma_halflife_s`); 0.0 before the first healthy book."""
        return self._ewma_mid_tick

    @property
    def trade_flow_imbalance(self) -> float:
        """(buy - sell) / (buy + sell) taker volume, EWMA with half-life `ewma_halflife_s`; in [-1, 1]."""
        if self._flow_total_lot <= 0.0:
            return 0.0
        return self._flow_signed_lot / self._flow_total_lot

    @property
    def volatility_bps_per_s(self) -> float:
        return math.sqrt(self._variance_per_s) * 1e4

    def on_book(
        self,
        ts_ns: int,
        bid_px: np.ndarray,
        bid_qty: np.ndarray,
        ask_px: np.ndarray,
        ask_qty: np.ndarray,
        n_bids: int,
        n_asks: int,
    ) -> Prediction:
        """Update on a book (int64 arrays, best first; only the first n_bids / n_asks rows count)."""
        if n_bids <= 0 or n_asks <= 0:
            return self._unhealthy(ts_ns)
        best_bid_tick = int(bid_px[0])
        best_ask_tick = int(ask_px[0])
        if best_bid_tick <= 0 or best_ask_tick <= best_bid_tick:
            return self._unhealthy(ts_ns)
        # tolist + sum beats ndarray.sum ~4x on a handful of levels
        bid_sum_lot = sum(bid_qty[: min(n_bids, self._levels)].tolist())
        ask_sum_lot = sum(ask_qty[: min(n_asks, self._levels)].tolist())
        total_lot = bid_sum_lot + ask_sum_lot
        if total_lot <= 0 or bid_sum_lot < 0 or ask_sum_lot < 0:
            return self._unhealthy(ts_ns)
        imbalance = (bid_sum_lot - ask_sum_lot) / total_lot
        mid_tick = 0.5 * (best_bid_tick + best_ask_tick)

        self._update_mid_and_volatility(ts_ns, mid_tick)

        predicted_return = self._coef_ratio * imbalance
        fair_px_tick = mid_tick * (1.0 + predicted_return)
        volatility_bps_per_s = self.volatility_bps_per_s
        if not (
            math.isfinite(predicted_return) and math.isfinite(fair_px_tick) and math.isfinite(volatility_bps_per_s)
        ):
            return self._unhealthy(ts_ns)
        self._last_fair_px_tick = fair_px_tick
        return Prediction(ts_ns, predicted_return, fair_px_tick, volatility_bps_per_s, imbalance, True)

    def on_trade(self, ts_ns: int, px_tick: int, qty_lot: int, taker_side: int) -> None:
        """Feed the trade-flow imbalance; a trade with qty <= 0 or side not +1 / -1 is ignored and counted."""
        if qty_lot <= 0 or px_tick <= 0 or (taker_side != 1 and taker_side != -1):
            self.trades_ignored += 1
            return
        decay = _decay(max(0, ts_ns - self._last_trade_ns), self._mid_halflife_ns)  # sums start at 0
        self._flow_signed_lot *= decay
        self._flow_total_lot *= decay
        self._last_trade_ns = max(ts_ns, self._last_trade_ns)
        self._flow_signed_lot += taker_side * qty_lot
        self._flow_total_lot += qty_lot

    def _update_mid_and_volatility(self, ts_ns: int, mid_tick: float) -> None:
        """EWMAs on elapsed event time; out-of-order timestamps count as zero elapsed time.

        Volatility: variance rate v (per second) with the exponential kernel
            v <- d * v + (1 - d) * r^2 / dt,   d = 2^(-dt / half-life),  r = log(mid / last mid)
        As dt -> 0 the weight (1 - d) / dt tends to ln2 / half-life, so same-timestamp events stay
        finite: a jump r adds r^2 * ln2 / half-life to the rate.
        """
        if self._last_mid_tick <= 0.0:
            self._last_mid_tick = mid_tick
            self._ewma_mid_tick = mid_tick
            self._last_book_ns = ts_ns
            return
        elapsed_ns = max(0, ts_ns - self._last_book_ns)
        mid_keep = _decay(elapsed_ns, self._mid_halflife_ns)
        self._ewma_mid_tick = mid_keep * self._ewma_mid_tick + (1.0 - mid_keep) * mid_tick

        log_return = math.log(mid_tick / self._last_mid_tick)
        vol_rate = _LN2 / self._vol_halflife_ns  # per ns
        if elapsed_ns > 0:
            vol_new_weight = -math.expm1(-vol_rate * elapsed_ns)
            weight_per_s = vol_new_weight / elapsed_ns * _NS_PER_S
            self._variance_per_s = (1.0 - vol_new_weight) * self._variance_per_s + weight_per_s * log_return**2
        else:
            self._variance_per_s += vol_rate * _NS_PER_S * log_return**2
        self._last_mid_tick = mid_tick
        self._last_book_ns = max(ts_ns, self._last_book_ns)

    def _unhealthy(self, ts_ns: int) -> Prediction:
        """No usable book: state is left untouched; the last fair price and volatility are reported."""
        volatility_bps_per_s = self.volatility_bps_per_s
        if not math.isfinite(volatility_bps_per_s):
            volatility_bps_per_s = 0.0
        return Prediction(ts_ns, 0.0, self._last_fair_px_tick, volatility_bps_per_s, 0.0, False)
