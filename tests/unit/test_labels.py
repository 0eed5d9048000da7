"""Delayed labels: no look-ahead, maturity at t + H, prequential scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mm.config import SignalConfig
from mm.labels import DelayedLabels, RollingIC, Score
from mm.signal import SignalModel

S = 1_000_000_000


def test_pop_matured_only_strictly_after_due_with_mid_before():
    labels = DelayedLabels(5 * S, capacity=10)
    labels.push(0, 100.0, np.zeros(1), (0.0,))

    assert labels.pop_matured(5 * S, 101.0) == []  # an event at t + H itself: the label waits
    matured = labels.pop_matured(5 * S + 1, 102.0)

    assert len(matured) == 1
    assert matured[0][1] == pytest.approx(math.log(102.0 / 100.0) * 1e4)


def test_push_beyond_capacity_dropped_and_counted():
    labels = DelayedLabels(S, capacity=1)

    assert labels.push(0, 1.0, np.zeros(1), ())
    assert not labels.push(1, 1.0, np.zeros(1), ())
    assert labels.dropped == 1


def test_score_r2_against_zero_and_hit_rate():
    score = Score()
    for predicted, realised in ((1.0, 2.0), (-1.0, -1.0), (1.0, -1.0), (0.0, 3.0), (5.0, 0.0)):
        score.add(predicted, realised)

    assert score.n == 5
    sse = 1 + 0 + 4 + 9 + 25
    assert score.r2_oos == pytest.approx(1 - sse / (4 + 1 + 1 + 9))
    assert score.hit_rate == pytest.approx((1 + 1 + 0 + 0.5) / 4)  # zero moves are not counted


def test_rolling_ic_perfect_and_opposite():
    same, opposite = RollingIC(100), RollingIC(100)
    for i in range(200):
        value = math.sin(i)
        same.add(value, 2 * value)
        opposite.add(value, -value)

    assert same.value == pytest.approx(1.0)
    assert opposite.value == pytest.approx(-1.0)


def test_rolling_ic_standard_error_counts_independent_pairs():
    """Pairs that overlap (independence 1/100, e.g. 5 s labels 50 ms apart) are worth 1/100 of an
    independent pair: the IC's standard error is 1 / sqrt(EW sample size x independence)."""
    independent, overlapping = RollingIC(1_000), RollingIC(1_000)
    for i in range(400):
        independent.add(math.sin(i), math.cos(i))
        overlapping.add(math.sin(i), math.cos(i), 0.01)

    assert independent.effective_n == pytest.approx(400.0)  # a plain mean so far
    assert overlapping.effective_n == pytest.approx(4.0)
    assert overlapping.standard_error == pytest.approx(0.5)
    assert overlapping.value == pytest.approx(independent.value)
    assert RollingIC(10).standard_error == math.inf
    for i in range(20_000):
        independent.add(math.sin(i), math.cos(i))
    alpha = 1.0 - 2.0 ** (-1.0 / 1_000)
    assert independent.effective_n == pytest.approx((2.0 - alpha) / alpha)  # ~2.9 half-lives of pairs


def _books(n: int, seed: int):
    rng = np.random.default_rng(seed)
    mid = 10_000 + np.cumsum(rng.integers(-2, 3, n))
    out = []
    for i in range(n):
        bid_px = (mid[i] - np.arange(10)).astype(np.int64)
        ask_px = (mid[i] + 1 + np.arange(10)).astype(np.int64)
        out.append((i * S // 10, bid_px, rng.integers(1, 100, 10).astype(np.int64), ask_px,
                    rng.integers(1, 100, 10).astype(np.int64)))
    return out


def _run(books):
    model = SignalModel(SignalConfig(min_labels=0))
    return model, [model.on_book(ts, bp, bq, ap, aq, 10, 10) for ts, bp, bq, ap, aq in books]


def test_signal_mutating_future_data_leaves_past_predictions_unchanged():
    books = _books(600, seed=5)
    cut = 400
    future = _books(600, seed=99)
    mutated = books[:cut] + [(books[i][0],) + future[i][1:] for i in range(cut, 600)]

    _, original = _run(books)
    _, changed = _run(mutated)

    assert original[:cut] == changed[:cut]
    assert original[cut:] != changed[cut:]


def test_signal_label_uses_mid_at_horizon_only():
    """A model trained to t: its scored labels are exactly those due before t, on mids up to t."""
    books = _books(300, seed=6)
    model, _ = _run(books)
    last_ts = books[-1][0]

    assert model.score.n == sum(1 for ts, *_ in books[:-1] if ts + 5 * S < last_ts)
