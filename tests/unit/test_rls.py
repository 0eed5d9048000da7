"""RLS: recovers known coefficients, tracks a change with forgetting, guards its health; the standardiser."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mm.rls import RLS, Standardizer


def test_rls_synthetic_linear_data_recovers_coefficients():
    rng = np.random.default_rng(1)
    true_w = np.array([1.5, -2.0, 0.5, 0.0])
    rls = RLS(4, forgetting=1.0, ridge=1.0)

    for _ in range(5_000):
        x = rng.normal(size=4)
        rls.update(x, float(true_w @ x + rng.normal(scale=0.5)))

    np.testing.assert_allclose(rls.weights, true_w, atol=0.05)


def test_rls_coefficient_change_tracked_with_forgetting():
    rng = np.random.default_rng(2)
    forgetting = RLS(2, forgetting=0.99, ridge=1.0)
    no_forgetting = RLS(2, forgetting=1.0, ridge=1.0)
    for true_w in (np.array([1.0, 1.0]), np.array([-1.0, 2.0])):
        for _ in range(2_000):
            x = rng.normal(size=2)
            y = float(true_w @ x + rng.normal(scale=0.2))
            forgetting.update(x, y)
            no_forgetting.update(x, y)

    np.testing.assert_allclose(forgetting.weights, [-1.0, 2.0], atol=0.1)
    assert abs(no_forgetting.weights[0] - -1.0) > 0.5  # the plain average sits between the regimes


def test_rls_nonfinite_input_skipped_and_counted():
    rls = RLS(2, forgetting=0.99, ridge=1.0)

    assert not rls.update(np.array([np.nan, 1.0]), 1.0)
    assert not rls.update(np.array([1.0, 1.0]), float("inf"))

    assert rls.skipped == 2
    assert rls.updates == 0
    np.testing.assert_array_equal(rls.weights, [0.0, 0.0])


def test_rls_diverging_covariance_reset_and_counted():
    rls = RLS(2, forgetting=0.9, ridge=1.0, prior=[0.3, 0.0], max_trace=50.0)
    rls.covariance *= 1e6  # as after a long run without excitation

    rls.update(np.array([1.0, 0.0]), 1.0)

    assert rls.resets == 1
    np.testing.assert_array_equal(rls.weights, [0.3, 0.0])
    assert rls.covariance.trace() == 2.0


def test_rls_unexcited_direction_stays_bounded_with_ridge():
    rls = RLS(2, forgetting=0.99, ridge=10.0)
    for _ in range(10_000):  # only the first coordinate ever moves
        rls.update(np.array([1.0, 0.0]), 1.0)

    assert rls.covariance[1, 1] < 1.0  # plain forgetting would wind it up to 0.1 * 0.99^-10000
    assert rls.resets == 0


def test_rls_prior_is_the_warm_start():
    rls = RLS(3, forgetting=0.999, ridge=1.0, prior=[1.0, 2.0, 3.0])

    assert rls.predict(np.array([1.0, 1.0, 1.0])) == 6.0


def test_standardizer_z_scores_converge():
    rng = np.random.default_rng(3)
    scaler = Standardizer(2, halflife_samples=1_000)
    for _ in range(20_000):
        scaler.update(np.array([rng.normal(5.0, 2.0), rng.normal(-1.0, 0.01)]))

    np.testing.assert_allclose(scaler.mean, [5.0, -1.0], atol=0.3)
    np.testing.assert_allclose(np.sqrt(scaler.variance), [2.0, 0.01], rtol=0.15)
    np.testing.assert_allclose(scaler.transform(np.array([7.0, -1.0])), [1.0, 0.0], atol=0.2)
    assert scaler.transform(np.array([1e9, 0.0]))[0] == scaler.clip


def test_rls_nonfinite_feature_skipped_and_counted():
    rls = RLS(2, forgetting=0.99, ridge=1.0)

    assert not rls.update(np.array([np.nan, 1.0]), 1.0)
    assert not rls.update(np.array([1.0, 1.0]), np.inf)

    assert rls.skipped == 2
    assert rls.updates == 0
    np.testing.assert_array_equal(rls.weights, [0.0, 0.0])


def test_standardizer_uncentred_feature_keeps_its_zero():
    rng = np.random.default_rng(6)
    scaler = Standardizer(2, halflife_samples=1_000, centred=[True, False])
    for _ in range(20_000):
        value = 0.5 + rng.normal(0.0, 0.1)  # a persistent offset
        scaler.update(np.array([value, value]))

    assert scaler.mean[1] == 0.0
    assert math.sqrt(scaler.variance[1]) == pytest.approx(math.sqrt(0.5**2 + 0.1**2), rel=0.05)  # root mean square
    centred, uncentred = scaler.transform(np.array([0.5, 0.5]))
    assert centred == pytest.approx(0.0, abs=0.3)  # the offset is the centred feature's new zero
    assert uncentred == pytest.approx(0.5 / math.sqrt(0.26), rel=0.05)  # the uncentred one still reads it
    assert scaler.transform(np.array([0.0, 0.0]))[1] == 0.0


def test_standardizer_centred_flags_must_match_size():
    with pytest.raises(ValueError, match="centred"):
        Standardizer(2, halflife_samples=10, centred=[True])
