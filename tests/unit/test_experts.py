"""FixedShare (mm/experts.py): regret within its theoretical bound on a known switch between experts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mm.experts import ETA, FixedShare, regret_bound

BOUND = 3.0  # the loss range [-BOUND, BOUND], in outcome units


def switching_stream(steps: int, switch_at: int, seed: int = 7):
    """Expert 0 is the truth before `switch_at`, expert 1 after; expert 2 is always wrong-signed, 3 is zero.
    Outcomes = the true expert's prediction + noise, inside [-BOUND, BOUND] (so nothing is clipped)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1.0, 1.0, steps)
    b = rng.uniform(-1.0, 1.0, steps)
    truth = np.where(np.arange(steps) < switch_at, a, b)
    outcome = np.clip(truth + rng.normal(0.0, 0.7, steps), -BOUND, BOUND)
    predictions = np.stack([a, b, -truth, np.zeros(steps)], axis=1)
    return predictions, outcome


def run(predictions: np.ndarray, outcome: np.ndarray, share: float) -> tuple[FixedShare, np.ndarray, float]:
    """Prompt feedback: predict with the current weights, then learn the outcome. Returns the
    aggregation, the experts' per-step normalised losses and the aggregate's cumulative loss."""
    aggregation = FixedShare(predictions.shape[1], share)
    scale = 1.0 / (4.0 * BOUND * BOUND)
    aggregate_loss = 0.0
    for p, y in zip(predictions, outcome):
        aggregate = aggregation.predict(p, BOUND)
        aggregate_loss += (y - aggregate) ** 2 * scale
        aggregation.update(p, aggregate, float(y), BOUND)
    losses = (predictions - outcome[:, None]) ** 2 * scale
    return aggregation, losses, aggregate_loss


@pytest.mark.parametrize("share", [0.0, 1e-3, 1e-2])
def test_regret_against_best_expert_within_bound_on_a_switch(share):
    steps, switch_at = 4_000, 1_500
    predictions, outcome = switching_stream(steps, switch_at)

    aggregation, losses, aggregate_loss = run(predictions, outcome, share)

    best = losses.sum(axis=0).min()
    bound = regret_bound(4, steps, share)
    assert aggregate_loss - best <= bound
    assert aggregation.aggregate_loss == pytest.approx(aggregate_loss)  # it keeps the same account
    np.testing.assert_allclose(aggregation.losses, losses.sum(axis=0))
    if share == 0.0:
        assert bound == pytest.approx(math.log(4) / ETA)


@pytest.mark.parametrize("share", [1e-3, 1e-2])
def test_regret_against_the_switching_oracle_within_the_fixed_share_bound(share):
    steps, switch_at = 4_000, 1_500
    predictions, outcome = switching_stream(steps, switch_at)

    _, losses, aggregate_loss = run(predictions, outcome, share)

    oracle = losses[:switch_at, 0].sum() + losses[switch_at:, 1].sum()
    assert aggregate_loss - oracle <= regret_bound(4, steps, share, switches=1)


def test_fixed_share_tracks_the_switch_and_beats_every_single_expert():
    """What the share buys: after the switch the weight moves to the new best expert, and the total
    loss is well below the best single expert's (which is wrong for part of the run)."""
    steps, switch_at = 4_000, 1_500
    predictions, outcome = switching_stream(steps, switch_at)
    aggregation = FixedShare(4, 1e-2)
    scale = 1.0 / (4.0 * BOUND * BOUND)
    weight_before = 0.0
    aggregate_loss = 0.0
    for t, (p, y) in enumerate(zip(predictions, outcome)):
        if t == switch_at:
            weight_before = aggregation.weights[0]
        aggregate = aggregation.predict(p, BOUND)
        aggregate_loss += (y - aggregate) ** 2 * scale
        aggregation.update(p, aggregate, float(y), BOUND)

    losses = ((predictions - outcome[:, None]) ** 2 * scale).sum(axis=0)
    assert weight_before > 0.6 > aggregation.weights[0]
    assert aggregation.weights[1] > 0.6
    assert aggregate_loss < losses.min() - 10.0


def test_plain_aggregation_regret_does_not_grow_with_time():
    """share 0: the bound ln N / eta holds whatever T, checked at several horizons of one run."""
    predictions, outcome = switching_stream(6_000, 3_000, seed=11)
    aggregation = FixedShare(4, 0.0)
    scale = 1.0 / (4.0 * BOUND * BOUND)
    expert_losses = np.zeros(4)
    aggregate_loss = 0.0
    for t, (p, y) in enumerate(zip(predictions, outcome), 1):
        aggregate = aggregation.predict(p, BOUND)
        aggregate_loss += (y - aggregate) ** 2 * scale
        expert_losses += (p - y) ** 2 * scale
        aggregation.update(p, aggregate, float(y), BOUND)
        if t % 500 == 0:
            assert aggregate_loss - expert_losses.min() <= math.log(4) / ETA


def test_prediction_is_a_weighted_compromise_within_the_range():
    aggregation = FixedShare(2, 0.0)

    assert aggregation.predict(np.array([1.0, 1.0]), BOUND) == pytest.approx(1.0)
    assert aggregation.predict(np.array([-2.0, 2.0]), BOUND) == pytest.approx(0.0)
    assert -BOUND <= aggregation.predict(np.array([BOUND, BOUND]), BOUND) <= BOUND


@pytest.mark.parametrize("n, share", [(0, 0.0), (2, 1.0), (2, -0.1)])
def test_bad_settings_rejected(n, share):
    with pytest.raises(ValueError):
        FixedShare(n, share)
