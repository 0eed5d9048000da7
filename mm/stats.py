"""Percentiles of latency samples, in the report's shape."""

from __future__ import annotations

import numpy as np


def percentiles_ns(samples: np.ndarray) -> dict[str, float | int]:
    """{"p50", "p90", "p99", "max", "count"} of int ns samples; zeros when empty."""
    count = int(samples.size)
    if count == 0:
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0, "count": 0}
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    return {"p50": int(p50), "p90": int(p90), "p99": int(p99), "max": int(samples.max()), "count": count}


class SampleBuffer:
    """A growable int64 sample array (amortised doubling, no Python list on the hot path)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._data = np.empty(capacity, dtype=np.int64)
        self._n = 0

    def add(self, value: int) -> None:
        if self._n == self._data.size:
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self._n] = value
        self._n += 1

    def values(self) -> np.ndarray:
        return self._data[: self._n]

    def __len__(self) -> int:
        return self._n
