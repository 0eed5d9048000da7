"""Markouts of our own fills: how far the mid moved against us 100 ms, 1 s, 5 s and 30 s after each.

For a fill of side s (+1 buy, -1 sell) at price p, with m0 the mid prevailing when it filled and
m_h the mid prevailing h later (the last mid seen at or before t + h):

    spread capture (bp)       = s * (m0 - p) / m0 * 1e4    what the quote earned against the mid
    adverse selection at h    = -s * (m_h - m0) / m0 * 1e4  the mid's move against us (> 0: it hurt)
    markout PnL at h          = spread capture - adverse selection at h  (= s * (m_h - p) / m0 * 1e4)

Averages weight each fill by its quantity. A fill whose horizon runs past the last mid seen is left
out of that horizon (`n` counts the fills each horizon holds). Fees are not in these figures.

`Markouts` is the online form (fills and mids in time order, preallocated numpy arrays that double
when full, O(1) per mid update amortised); it also keeps, per side, exponentially weighted
estimates of the spread capture and the adverse selection at one horizon (the quoter prices them
in). Both start from `prior_fills` pseudo-fills that captured nothing and lost nothing: the
zero-profit prior of a competitive market (Glosten-Milgrom: the touch's half-spread pays for the
adverse selection it meets, so a maker's fill earns 0 before fees until our own fills show otherwise). `markouts_offline`
computes the same figures from whole arrays (np.searchsorted), for a tape at hand.
"""

from __future__ import annotations

import math

import numpy as np

HORIZONS_NS: tuple[int, ...] = (100_000_000, 1_000_000_000, 5_000_000_000, 30_000_000_000)
HORIZON_NAMES: tuple[str, ...] = ("100ms", "1s", "5s", "30s")


def horizon_name(horizon_ns: int) -> str:
    if horizon_ns % 1_000_000_000 == 0:
        return f"{horizon_ns // 1_000_000_000}s"
    return f"{horizon_ns // 1_000_000}ms"


class Markouts:
    """Fills and mids in time order; resolves each fill's mid at every horizon as time passes."""

    def __init__(self, horizons_ns: tuple[int, ...] = HORIZONS_NS, *, capacity: int = 1024,
                 estimate_horizon_ns: int = 5_000_000_000, halflife_fills: float = 50.0,
                 prior_fills: float = 10.0) -> None:
        if not horizons_ns or any(h <= 0 for h in horizons_ns) or list(horizons_ns) != sorted(set(horizons_ns)):
            raise ValueError(f"markout horizons must be > 0 and increasing, were {horizons_ns}")
        if halflife_fills <= 0:
            raise ValueError(f"'halflife_fills' must be > 0, was {halflife_fills}")
        self.horizons_ns = tuple(int(h) for h in horizons_ns)
        # the estimate's horizon: the first horizon at or beyond the one asked for
        self._estimate_k = next((k for k, h in enumerate(self.horizons_ns) if h >= estimate_horizon_ns),
                                len(self.horizons_ns) - 1)
        self._decay = 0.5 ** (1.0 / halflife_fills)
        self._prior = float(prior_fills)
        self._n = 0
        self._alloc(max(16, capacity))
        self._cursor = [0] * len(self.horizons_ns)  # first fill not yet resolved at each horizon
        self.last_ts_ns = 0
        self.last_mid: float | None = None
        # per side (index 0 = buy, 1 = sell): decayed sums of adverse and capture bp, decayed weight (prior included)
        self._est_sum = [0.0, 0.0]
        self._cap_sum = [0.0, 0.0]
        self._est_weight = [self._prior, self._prior]
        self._prior_weight = [self._prior, self._prior]  # the prior's share of _est_weight (it decays too)

    def _alloc(self, capacity: int) -> None:
        n = self._n
        old = getattr(self, "ts", None)
        fields = {"ts": np.int64, "side": np.int8, "px": np.float64, "qty": np.float64, "mid0": np.float64}
        for name, dtype in fields.items():
            new = np.zeros(capacity, dtype)
            if old is not None:
                new[:n] = getattr(self, name)[:n]
            setattr(self, name, new)
        mids = np.full((capacity, len(self.horizons_ns)), np.nan)
        if old is not None:
            mids[:n] = self.mids[:n]
        self.mids = mids

    def __len__(self) -> int:
        return self._n

    def on_fill(self, ts_ns: int, side: int, px_tick: float, qty_lot: float) -> None:
        """A fill of ours; its mid is the last one seen (none yet: the fill price)."""
        if side != 1 and side != -1:
            raise ValueError(f"markout fill side must be +1 or -1, was {side}")
        if self._n == len(self.ts):
            self._alloc(2 * len(self.ts))
        i = self._n
        self.ts[i], self.side[i], self.px[i], self.qty[i] = ts_ns, side, px_tick, qty_lot
        self.mid0[i] = self.last_mid if self.last_mid is not None else px_tick
        self._n += 1

    def on_mid(self, ts_ns: int, mid_tick: float) -> None:
        """The mid from `ts_ns` on. Horizons that ended before it took the previous mid; those
        ending exactly at it take this one."""
        if not math.isfinite(mid_tick) or mid_tick <= 0:
            return
        if self.last_mid is not None:
            self._resolve(ts_ns - 1, self.last_mid)
        self.last_mid, self.last_ts_ns = float(mid_tick), ts_ns
        self._resolve(ts_ns, self.last_mid)

    def _resolve(self, until_ns: int, mid: float) -> None:
        """Every fill whose horizon ends at or before `until_ns` (not yet resolved) takes `mid`."""
        ts, n = self.ts, self._n
        if self._cursor[-1] == n:
            return  # all resolved: a longer horizon's cursor is never ahead of a shorter one's
        for k, h in enumerate(self.horizons_ns):
            c = self._cursor[k]
            while c < n and ts[c] + h <= until_ns:
                self.mids[c, k] = mid
                if k == self._estimate_k:
                    self._learn(c)
                c += 1
            self._cursor[k] = c

    def _learn(self, i: int) -> None:
        side = int(self.side[i])
        mid0 = self.mid0[i]
        adverse = -side * (self.mids[i, self._estimate_k] - mid0) / mid0 * 1e4
        j = 0 if side > 0 else 1
        self._est_sum[j] = self._decay * self._est_sum[j] + adverse
        self._cap_sum[j] = self._decay * self._cap_sum[j] + side * (mid0 - self.px[i]) / mid0 * 1e4
        self._est_weight[j] = self._decay * self._est_weight[j] + 1.0
        self._prior_weight[j] *= self._decay

    def expected_adverse_bps(self, side: int) -> float:
        """The running estimate of the adverse selection (bp) a fill on `side` meets at the estimate's horizon."""
        j = 0 if side > 0 else 1
        return self._est_sum[j] / self._est_weight[j] if self._est_weight[j] > 0 else 0.0

    def expected_capture_bps(self, side: int) -> float:
        """The running estimate of the spread (bp from the mid) a fill on `side` captures."""
        j = 0 if side > 0 else 1
        return self._cap_sum[j] / self._est_weight[j] if self._est_weight[j] > 0 else 0.0

    def expected_markout_bps(self, side: int, adverse_weight: float = 1.0, prior_bps: float = 0.0) -> float:
        """What a fill on `side` is expected to earn before fees at the estimate's horizon: the
        capture less `adverse_weight` x the adverse selection, our fills' figures weighted with the
        prior pseudo-fills, which earn `prior_bps` each."""
        j = 0 if side > 0 else 1
        weight = self._est_weight[j]
        if weight <= 0:
            return prior_bps
        return (self._prior_weight[j] * prior_bps + self._cap_sum[j] - adverse_weight * self._est_sum[j]) / weight

    def summary(self) -> dict:
        n = self._n
        return summarise(self.side[:n], self.px[:n], self.qty[:n], self.mid0[:n], self.mids[:n], self.horizons_ns)


def markouts_offline(fill_ts: np.ndarray, fill_side: np.ndarray, fill_px: np.ndarray, mid_ts: np.ndarray,
                     mid_px: np.ndarray, horizons_ns: tuple[int, ...] = HORIZONS_NS) -> tuple[np.ndarray, np.ndarray]:
    """(mid0, mids[fill, horizon]) from a whole tape: the last mid at or before each fill (none: the
    fill price) and at or before each horizon's end (NaN when the tape ends before it)."""
    fill_ts = np.asarray(fill_ts, np.int64)
    mid_ts = np.asarray(mid_ts, np.int64)
    mid_px = np.asarray(mid_px, np.float64)
    before = np.searchsorted(mid_ts, fill_ts, side="right") - 1
    mid0 = np.where(before >= 0, mid_px[np.maximum(before, 0)], np.asarray(fill_px, np.float64))
    mids = np.full((len(fill_ts), len(horizons_ns)), np.nan)
    last = mid_ts[-1] if len(mid_ts) else np.iinfo(np.int64).min
    for k, h in enumerate(horizons_ns):
        at = fill_ts + h
        idx = np.searchsorted(mid_ts, at, side="right") - 1
        ok = (idx >= 0) & (at <= last)
        mids[ok, k] = mid_px[idx[ok]]
    return mid0, mids


def summarise(side: np.ndarray, px: np.ndarray, qty: np.ndarray, mid0: np.ndarray, mids: np.ndarray,
              horizons_ns: tuple[int, ...]) -> dict:
    """The report's block: quantity-weighted spread capture, adverse selection and markout PnL (bp)."""
    side = side.astype(np.float64)
    n = len(side)
    out: dict = {"fills": int(n), "spread_capture_bps": None, "adverse_selection_bps": {}, "markout_bps": {},
                 "n": {}}
    if n:
        capture = side * (mid0 - px) / mid0 * 1e4
        out["spread_capture_bps"] = _mean(capture, qty)
    for k, h in enumerate(horizons_ns):
        name = horizon_name(h)
        ok = ~np.isnan(mids[:, k]) if n else np.zeros(0, bool)
        out["n"][name] = int(ok.sum())
        if not ok.any():
            out["adverse_selection_bps"][name] = out["markout_bps"][name] = None
            continue
        adverse = -side[ok] * (mids[ok, k] - mid0[ok]) / mid0[ok] * 1e4
        out["adverse_selection_bps"][name] = _mean(adverse, qty[ok])
        markout = side[ok] * (mids[ok, k] - px[ok]) / mid0[ok] * 1e4
        out["markout_bps"][name] = _mean(markout, qty[ok])
    return out


def _mean(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return round(float((values * weights).sum()) / total, 6) if total > 0 else 0.0
