"""Delayed labels and honest (prequential) scoring of the signal.

A sample (features, the mid and the predictions made at time t) waits in `DelayedLabels` until
an event arrives with a time later than t + H; its label is then the log return, in bps, from the
mid at t to the mid in force at t + H: the mid of the last event at or before t + H, i.e. the mid
just before the event that matured it. So a label only ever uses data up to t + H, and the model
trained with it at that event has seen nothing after that event. Samples mature in time order.

`Score` accumulates a predictor's prequential figures: each prediction is scored when its label
matures, before the model updates on that label.
- r2_oos = 1 - SSE / SS of the realised returns (against the zero predictor, whose r2 is 0).
- hit_rate = sign agreement on non-zero realised moves; a zero prediction counts as half a hit
  (so the zero predictor scores 0.5, a coin).
`RollingIC` is the exponentially weighted correlation of predictions with realisations (the
information coefficient), the self-check's input, with its standard error. Labels sampled closer
together than their horizon overlap (at a 50 ms grid, a 5 s label shares 99% of its path with the
next one), so its effective number of independent pairs is the EW sample size times the EW mean of
each pair's `independence` (min(1, time since the previous label / horizon)): 1 000 labels 50 ms
apart are about 10 independent ones, and the IC's standard error is 1 / sqrt(that).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np


class Sample:
    __slots__ = ("ts_ns", "due_ns", "mid_tick", "features", "predictions")

    def __init__(self, ts_ns: int, due_ns: int, mid_tick: float, features: np.ndarray, predictions: tuple) -> None:
        self.ts_ns = ts_ns
        self.due_ns = due_ns
        self.mid_tick = mid_tick
        self.features = features  # owned copy
        self.predictions = predictions  # what the model knew at ts_ns: its predictions (bps), baseline inputs


class DelayedLabels:
    """FIFO of samples waiting for their label; at most `capacity` (extra samples are dropped, counted)."""

    def __init__(self, horizon_ns: int, capacity: int) -> None:
        if horizon_ns <= 0:
            raise ValueError(f"label horizon must be > 0 ns, was {horizon_ns}")
        self.horizon_ns = horizon_ns
        self.capacity = capacity
        self._pending: deque[Sample] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def push(self, ts_ns: int, mid_tick: float, features: np.ndarray, predictions: tuple) -> bool:
        if len(self._pending) >= self.capacity:
            self.dropped += 1
            return False
        self._pending.append(Sample(ts_ns, ts_ns + self.horizon_ns, mid_tick, features.copy(), predictions))
        return True

    def pop_matured(self, ts_ns: int, mid_before_tick: float) -> list[tuple[Sample, float]]:
        """Samples due strictly before `ts_ns`, each with its label (log return in bps to
        `mid_before_tick`, the mid in force just before the event at ts_ns)."""
        pending = self._pending
        if not pending or pending[0].due_ns >= ts_ns:
            return []
        matured = []
        while pending and pending[0].due_ns < ts_ns:
            sample = pending.popleft()
            matured.append((sample, math.log(mid_before_tick / sample.mid_tick) * 1e4))
        return matured


class Score:
    """Prequential r2_oos, hit rate and count of one predictor."""

    __slots__ = ("n", "sse", "ss", "hits", "moves")

    def __init__(self) -> None:
        self.n = 0
        self.sse = 0.0
        self.ss = 0.0
        self.hits = 0.0
        self.moves = 0

    def add(self, predicted: float, realised: float) -> None:
        self.n += 1
        error = realised - predicted
        self.sse += error * error
        self.ss += realised * realised
        if realised != 0.0:
            self.moves += 1
            if predicted == 0.0:
                self.hits += 0.5
            elif (predicted > 0.0) == (realised > 0.0):
                self.hits += 1.0

    @property
    def r2_oos(self) -> float:
        return 1.0 - self.sse / self.ss if self.ss > 0.0 else 0.0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.moves if self.moves else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"r2_oos": self.r2_oos, "hit_rate": self.hit_rate, "n": self.n}

    def sums(self) -> dict[str, Any]:
        """The sums behind the figures, so that scores over several books (the symbols of one
        capture) pool exactly: r2_oos = 1 - sum(sse) / sum(ss), hit_rate = sum(hits) / sum(moves)."""
        return {"n": self.n, "sse": self.sse, "ss": self.ss, "hits": self.hits, "moves": self.moves}


class RollingIC:
    """EW correlation of (predicted, realised) pairs, half-life in pairs; `effective_n` and
    `standard_error` say how much evidence it rests on."""

    __slots__ = ("_alpha", "_sums", "_independence", "n")

    def __init__(self, halflife_pairs: float) -> None:
        self._alpha = 1.0 - 2.0 ** (-1.0 / halflife_pairs)
        self._sums = [0.0, 0.0, 0.0, 0.0, 0.0]  # EW means of p, y, p*p, y*y, p*y
        self._independence = 0.0  # EW mean of each pair's independence from the previous one, in [0, 1]
        self.n = 0

    def add(self, predicted: float, realised: float, independence: float = 1.0) -> None:
        self.n += 1
        a = self._alpha if self.n * self._alpha > 1.0 else 1.0 / self.n  # plain mean at first
        sums = self._sums
        for i, value in enumerate(
            (predicted, realised, predicted * predicted, realised * realised, predicted * realised)
        ):
            sums[i] += a * (value - sums[i])
        self._independence += a * (independence - self._independence)

    @property
    def effective_n(self) -> float:
        """Independent pairs the IC rests on: the EW sample size (n while the mean is plain, then
        (2 - alpha) / alpha) times the mean independence."""
        alpha = self._alpha
        size = min(float(self.n), (2.0 - alpha) / alpha)
        return size * self._independence

    @property
    def standard_error(self) -> float:
        """1 / sqrt(effective_n) (the IC's standard error near 0); inf before any pair."""
        effective_n = self.effective_n
        return 1.0 / math.sqrt(effective_n) if effective_n > 0.0 else math.inf

    @property
    def value(self) -> float:
        mean_p, mean_y, mean_pp, mean_yy, mean_py = self._sums
        var_p = mean_pp - mean_p * mean_p
        var_y = mean_yy - mean_y * mean_y
        if var_p <= 1e-30 or var_y <= 1e-30:
            return 0.0
        return (mean_py - mean_p * mean_y) / math.sqrt(var_p * var_y)
