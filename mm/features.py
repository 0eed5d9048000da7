"""The signal's features: book imbalance, trade flow, mid momentum, micro-price offset, volatility.

Every feature is a float computed from the book and trade events seen so far and nothing else,
decayed on event time (the elapsed ns between irregular events, never a clock), so a replay gives
the numbers live would. State is a fixed set of floats and one reused list (Python floats: cheaper than numpy at 8 values).

Vocabulary (`SignalConfig.features`, in order; "momentum" expands to one column per lookback):
- `imbalance`: (sum bid qty - sum ask qty) / (sum of both) over the top `imbalance_levels`, in [-1, 1].
- `imbalance_weighted`: the same over the top `weighted_levels`, level i (0 = best) weighted
  1 / (1 + i): the depth near the touch counts most.
- `micro_offset`: micro-price minus mid, in bps of mid; micro = (bid * ask_qty + ask * bid_qty) /
  (bid_qty + ask_qty) on the best level.
- `trade_flow`: signed taker volume over total, both decayed with half-life `trade_flow_halflife_s`,
  the total padded by its own slow average so that the feature fades to 0 when the tape goes quiet.
- `momentum` (one per `momentum_lookbacks_s` L): log(mid / EWMA_L(mid)) in bps, EWMA half-life L.
- `volatility`: the realised volatility estimate, bps per sqrt(s) (see `Volatility`).
- `spread`: best ask - best bid, in bps of mid.

The signed features (all but `volatility` and `spread`) are 0 at balance: a balanced book or tape,
the mid at its average. `FeatureState.centred` says which columns the model's standardiser centres
(the non-negative ones) and which it only scales, so that 0 keeps that meaning.
"""

from __future__ import annotations

import math
import operator

from mm.config import SignalConfig

NS_PER_S = 1_000_000_000
LN2 = math.log(2.0)
FEATURE_NAMES: frozenset[str] = frozenset(
    {"imbalance", "imbalance_weighted", "micro_offset", "trade_flow", "momentum", "volatility", "spread"}
)
_IMBALANCE, _WEIGHTED, _MICRO, _FLOW, _MOMENTUM, _VOLATILITY, _SPREAD = range(7)
_CODES = {"imbalance": _IMBALANCE, "imbalance_weighted": _WEIGHTED, "micro_offset": _MICRO, "trade_flow": _FLOW,
          "momentum": _MOMENTUM, "volatility": _VOLATILITY, "spread": _SPREAD}
_FLOW_REFERENCE_HALFLIFE_S = 60.0  # slow average of the decayed total volume, the flow's pad
_CENTRED = frozenset({"volatility", "spread"})  # non-negative: standardised around their mean


def decay(elapsed_ns: int, halflife_ns: float) -> float:
    """Weight left on the old value after `elapsed_ns`: 2^(-elapsed / half-life)."""
    return math.exp(-LN2 * elapsed_ns / halflife_ns)


def feature_columns(cfg: SignalConfig) -> list[str]:
    """Column names in model order, e.g. ["imbalance", ..., "momentum_1s", "momentum_5s", ...]."""
    columns = []
    for name in cfg.features:
        if name == "momentum":
            columns.extend(f"momentum_{lookback:g}s" for lookback in cfg.momentum_lookbacks_s)
        else:
            columns.append(name)
    return columns


class Volatility:
    """Variance rate v of mid log-returns per second, warm-started at the prior:

        v <- d * v + (1 - d) * r^2 / dt,   d = 2^(-dt / half-life),  r = log(mid / last mid)

    As dt -> 0 the weight (1 - d) / dt tends to ln2 / half-life, so same-timestamp events stay
    finite: a jump r adds r^2 * ln2 / half-life to the rate. Out-of-order time counts as 0.
    """

    __slots__ = ("variance_per_s", "_rate_per_ns", "last_mid_tick", "last_ns")

    def __init__(self, halflife_s: float, prior_bps_per_s: float) -> None:
        self.variance_per_s = (prior_bps_per_s * 1e-4) ** 2
        self._rate_per_ns = LN2 / (halflife_s * NS_PER_S)
        self.last_mid_tick = 0.0  # 0.0 = no mid seen yet
        self.last_ns = 0

    @property
    def bps_per_s(self) -> float:
        return math.sqrt(self.variance_per_s) * 1e4

    def update(self, ts_ns: int, mid_tick: float) -> None:
        if self.last_mid_tick <= 0.0:
            self.last_mid_tick = mid_tick
            self.last_ns = ts_ns
            return
        elapsed_ns = ts_ns - self.last_ns
        log_return = math.log(mid_tick / self.last_mid_tick)
        if elapsed_ns > 0:
            new_weight = -math.expm1(-self._rate_per_ns * elapsed_ns)
            self.variance_per_s = (1.0 - new_weight) * self.variance_per_s + (
                new_weight / elapsed_ns * NS_PER_S * log_return * log_return
            )
            self.last_ns = ts_ns
        else:
            self.variance_per_s += self._rate_per_ns * NS_PER_S * log_return * log_return
        self.last_mid_tick = mid_tick


class FeatureState:
    """Feature computation for one symbol; `on_book` fills and returns the feature vector."""

    def __init__(self, cfg: SignalConfig) -> None:
        unknown = [name for name in cfg.features if name not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"signal features: unknown {unknown}, known {sorted(FEATURE_NAMES)}")
        self.columns = feature_columns(cfg)
        self.size = len(self.columns)
        self.centred = [name in _CENTRED for name in self.columns]
        self._codes = tuple(_CODES[name] for name in cfg.features)
        self._levels = cfg.imbalance_levels
        self._weighted_levels = cfg.weighted_levels
        self._weights = [1.0 / (1 + i) for i in range(cfg.weighted_levels)]
        self._lookback_halflives_ns = [lookback * NS_PER_S for lookback in cfg.momentum_lookbacks_s]
        self._ewma_mid_tick = [0.0] * len(cfg.momentum_lookbacks_s)
        self._flow_halflife_ns = cfg.trade_flow_halflife_s * NS_PER_S
        self._flow_reference_halflife_ns = _FLOW_REFERENCE_HALFLIFE_S * NS_PER_S
        self._flow_signed_lot = 0.0
        self._flow_total_lot = 0.0
        self._flow_reference_lot = 0.0  # slow EWMA of the decayed total, sampled at book events
        self._last_trade_ns = 0
        self.volatility = Volatility(cfg.vol_halflife_s, cfg.vol_prior_bps_per_s)
        self._last_book_ns = 0
        self._has_book = False
        self.values = [0.0] * self.size  # reused: copy it to keep it
        self.imbalance = 0.0  # the plain top-k imbalance of the last book (reported in Prediction)
        self.mid_tick = 0.0
        self.trades_ignored = 0

    def momentum_bps(self, lookback: int) -> float:
        """log(mid / EWMA(mid)) in bps for `momentum_lookbacks_s[lookback]`, whether or not momentum is a
        feature (the momentum baseline's input); 0.0 before the first book."""
        smoothed = self._ewma_mid_tick[lookback]
        return math.log(self.mid_tick / smoothed) * 1e4 if smoothed > 0.0 else 0.0

    @property
    def trade_flow_imbalance(self) -> float:
        """(buy - sell) / (buy + sell) of the decayed taker volume, unpadded; in [-1, 1]."""
        if self._flow_total_lot <= 0.0:
            return 0.0
        return self._flow_signed_lot / self._flow_total_lot

    def on_trade(self, ts_ns: int, qty_lot: int, taker_side: int) -> bool:
        if qty_lot <= 0 or (taker_side != 1 and taker_side != -1):
            self.trades_ignored += 1
            return False
        if ts_ns > self._last_trade_ns:
            keep = decay(ts_ns - self._last_trade_ns, self._flow_halflife_ns)
            self._flow_signed_lot *= keep
            self._flow_total_lot *= keep
            self._last_trade_ns = ts_ns
        self._flow_signed_lot += taker_side * qty_lot
        self._flow_total_lot += qty_lot
        return True

    def on_book(
        self,
        ts_ns: int,
        best_bid_tick: int,
        best_ask_tick: int,
        bid_qty: list[int],
        ask_qty: list[int],
    ) -> list[float] | None:
        """Features (a reused list) after a healthy book (quantities best first, at least one level each side);
        None when a quantity sum is not positive (nothing is updated then)."""
        levels = self._levels
        bid_sum = sum(bid_qty[:levels])
        ask_sum = sum(ask_qty[:levels])
        if bid_sum <= 0 or ask_sum <= 0:
            return None
        mid_tick = 0.5 * (best_bid_tick + best_ask_tick)
        elapsed_ns = ts_ns - self._last_book_ns if self._has_book else 0
        if elapsed_ns < 0:
            elapsed_ns = 0
        self.volatility.update(ts_ns, mid_tick)
        ewma = self._ewma_mid_tick
        if not self._has_book:
            for i in range(len(ewma)):
                ewma[i] = mid_tick
            self._has_book = True
        elif elapsed_ns:
            for i, halflife_ns in enumerate(self._lookback_halflives_ns):
                keep = decay(elapsed_ns, halflife_ns)
                ewma[i] = keep * ewma[i] + (1.0 - keep) * mid_tick
        self._last_book_ns = max(ts_ns, self._last_book_ns)
        self.mid_tick = mid_tick
        imbalance = (bid_sum - ask_sum) / (bid_sum + ask_sum)
        self.imbalance = imbalance

        values = self.values
        k = 0
        for code in self._codes:
            if code == _IMBALANCE:
                values[k] = imbalance
            elif code == _WEIGHTED:
                n = self._weighted_levels
                weighted_bid = sum(map(operator.mul, self._weights, bid_qty[:n]))
                weighted_ask = sum(map(operator.mul, self._weights, ask_qty[:n]))
                values[k] = (weighted_bid - weighted_ask) / (weighted_bid + weighted_ask)
            elif code == _MICRO:
                bid0 = bid_qty[0]
                ask0 = ask_qty[0]
                total0 = bid0 + ask0
                offset_tick = 0.0 if total0 <= 0 else 0.5 * (best_ask_tick - best_bid_tick) * (bid0 - ask0) / total0
                values[k] = offset_tick / mid_tick * 1e4
            elif code == _FLOW:
                values[k] = self._trade_flow(ts_ns, elapsed_ns)
            elif code == _MOMENTUM:
                for lookback in range(len(ewma)):
                    values[k] = self.momentum_bps(lookback)
                    k += 1
                continue
            elif code == _VOLATILITY:
                values[k] = self.volatility.bps_per_s
            else:  # spread
                values[k] = (best_ask_tick - best_bid_tick) / mid_tick * 1e4
            k += 1
        return values

    def _trade_flow(self, ts_ns: int, elapsed_book_ns: int) -> float:
        age_ns = ts_ns - self._last_trade_ns
        keep = decay(age_ns, self._flow_halflife_ns) if age_ns > 0 else 1.0
        signed = self._flow_signed_lot * keep
        total = self._flow_total_lot * keep
        reference_keep = decay(elapsed_book_ns, self._flow_reference_halflife_ns)
        self._flow_reference_lot = reference_keep * self._flow_reference_lot + (1.0 - reference_keep) * total
        padded = total + self._flow_reference_lot
        return signed / padded if padded > 0.0 else 0.0
