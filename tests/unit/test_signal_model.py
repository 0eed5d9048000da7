"""SignalModel: learns a planted signal, warm start, self-check fallback, report."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from mm.config import SignalConfig
from mm.signal import SignalModel

S = 1_000_000_000


def planted_stream(n: int, strength: float, seed: int = 1):
    """Books whose top-5 imbalance predicts the mid 5 s later (strength ticks per unit imbalance)."""
    rng = np.random.default_rng(seed)
    imbalance = np.zeros(n)
    mid = np.zeros(n)
    level = 100_000.0
    for i in range(n):
        imbalance[i] = np.clip(0.995 * imbalance[i - 1] + rng.normal(0, 0.05), -0.9, 0.9) if i else 0.0
        if i:
            level += strength * imbalance[i - 1] / 50 + rng.normal(0, 0.3)  # drift over 5 s = strength x imbalance
        mid[i] = level
    for i in range(n):
        low = int(round(mid[i]))
        bid_qty = np.full(10, int(100 * (1 + imbalance[i])), np.int64)
        ask_qty = np.full(10, int(100 * (1 - imbalance[i])), np.int64)
        yield (i * S // 10, (low - np.arange(10)).astype(np.int64), bid_qty,
               (low + 1 + np.arange(10)).astype(np.int64), ask_qty)


def run(cfg: SignalConfig, stream):
    model = SignalModel(cfg)
    prediction = None
    for ts, bp, bq, ap, aq in stream:
        prediction = model.on_book(ts, bp, bq, ap, aq, 10, 10)
    return model, prediction


def test_signal_model_learns_planted_signal_beats_baselines():
    model, _ = run(SignalConfig(ridge=100.0), planted_stream(6_000, strength=20.0))

    report = model.report()
    assert report["r2_oos"] > 0.1
    assert report["hit_rate"] > 0.6
    assert report["r2_oos"] > report["baselines"]["momentum"]["r2_oos"]
    assert report["baselines"]["zero"]["r2_oos"] == 0.0
    assert report["alpha_enabled"]


def test_signal_model_no_signal_self_check_falls_back_to_zero_alpha():
    """The bare IC (ic_confidence_z = 0) below its threshold switches alpha off."""
    cfg = SignalConfig(min_labels=200, ic_threshold=0.05, ic_recover_threshold=0.2, ic_halflife_labels=1_000.0,
                       ic_confidence_z=0.0,
                       ridge=10.0, prior_coefs_bps=(3.0, 0.0, 0.0, 0.0))  # a prior on an imbalance without skill
    model, prediction = run(cfg, planted_stream(4_000, strength=0.0, seed=3))

    assert model.fallbacks >= 1
    assert not prediction.alpha_enabled
    assert prediction.predicted_return == 0.0
    assert prediction.fair_px_tick == pytest.approx(0.5 * (model.features.mid_tick * 2))
    assert model.report()["fallbacks"] == model.fallbacks


def test_signal_model_wrong_sign_model_falls_back_with_the_default_confidence_bound():
    """A model that predicts against the market (a prior of the wrong sign it cannot unlearn) is
    switched off by the default self-check: its IC's upper bound is below the threshold."""
    cfg = SignalConfig(min_labels=200, ridge=1e9, calibrate=False, prior_coefs_bps=(-3.0, 0.0, 0.0, 0.0))
    model, prediction = run(cfg, planted_stream(6_000, strength=20.0))

    assert model.ic.value < -0.3
    assert model.ic.value + cfg.ic_confidence_z * model.ic.standard_error < cfg.ic_threshold
    assert model.fallbacks == 1 and model.recoveries == 0
    assert not prediction.alpha_enabled and prediction.predicted_return == 0.0
    assert model.report()["emitted"]["r2_oos"] > model.report()["r2_oos"]  # the fallback saved r2


def test_signal_model_skilled_model_is_not_switched_off_by_ic_noise():
    """A weak but real signal (IC ~0.37) keeps alpha on with the default bound, where the bare IC
    (z = 0) switches it off and on on the noise of overlapping labels (a 300-label half-life of 5 s
    labels 100 ms apart is ~17 independent ones: an IC standard error of ~0.24) and loses r2."""
    bare = SignalConfig(ridge=100.0, ic_confidence_z=0.0, ic_halflife_labels=300.0, min_labels=200)
    bounded = msgspec.structs.replace(bare, ic_confidence_z=SignalConfig().ic_confidence_z)
    model_bare, _ = run(bare, planted_stream(6_000, strength=2.0, seed=3))
    model_bounded, _ = run(bounded, planted_stream(6_000, strength=2.0, seed=3))

    assert model_bounded.ic.standard_error == pytest.approx(0.24, abs=0.01)
    assert model_bare.fallbacks >= 3
    assert model_bounded.fallbacks == 0
    bounded_report = model_bounded.report()
    assert bounded_report["emitted"]["r2_oos"] == bounded_report["r2_oos"] > 0.0
    assert bounded_report["emitted"]["r2_oos"] > model_bare.report()["emitted"]["r2_oos"]


def test_signal_model_warm_start_prior_gives_alpha_at_first_book():
    cfg = SignalConfig(features=("imbalance",), prior_coefs_bps=(2.0,), vol_prior_bps_per_s=3.0)
    model = SignalModel(cfg)
    ts, bp, bq, ap, aq = next(planted_stream(1, 0.0))
    bq = bq * 3

    prediction = model.on_book(ts, bp, bq, ap, aq, 10, 10)

    assert prediction.healthy
    assert prediction.predicted_return > 0.0  # imbalance > 0, prior coefficient > 0
    assert prediction.volatility_bps_per_s == pytest.approx(3.0)


def test_signal_model_prior_length_mismatch_rejected():
    with pytest.raises(ValueError, match="prior_coefs_bps"):
        SignalModel(SignalConfig(prior_coefs_bps=(1.0,)))


def test_signal_model_report_has_counts_and_baselines():
    model, _ = run(SignalConfig(), planted_stream(200, 0.0))

    report = model.report()
    assert set(report) >= {"r2_oos", "hit_rate", "n", "baselines", "alpha_enabled", "fallbacks", "counts"}
    assert set(report["baselines"]) == {"zero", "momentum", "imbalance"}
    # the emitted prediction beside the imbalance baseline, on the same labels
    versus = report["versus_imbalance"]["all"]
    assert versus["emitted"] == report["emitted"]
    assert versus["imbalance"] == report["baselines"]["imbalance"]
    assert versus["margin"] == report["emitted"]["r2_oos"] - report["baselines"]["imbalance"]["r2_oos"]
    # books 100 ms apart, 5 s labels: each label adds 1 / 50 of an independent one
    assert report["independent_labels"] == pytest.approx(1.0 + (report["n"] - 1) / 50)
    assert report["counts"]["covariance_resets"] == 0


def test_calibration_no_skill_shrinks_ratio_to_zero():
    from mm.signal import Calibration

    rng = np.random.default_rng(4)
    calibration = Calibration(500.0, 100.0, 1.0)
    for _ in range(5_000):
        calibration.add(float(rng.normal()), float(rng.normal()))

    assert calibration.ratio < 0.15


def test_calibration_honest_prediction_keeps_ratio_near_one():
    from mm.signal import Calibration

    rng = np.random.default_rng(5)
    calibration = Calibration(500.0, 100.0, 1.5)
    for _ in range(5_000):
        predicted = float(rng.normal())
        calibration.add(predicted, predicted + float(rng.normal()))

    assert 0.8 < calibration.ratio < 1.2


def test_signal_model_volatility_normalised_target_learns_planted_signal():
    model, _ = run(SignalConfig(ridge=100.0, normalise_by_volatility=True), planted_stream(6_000, strength=20.0))

    report = model.report()
    assert report["r2_oos"] > 0.1
    assert report["hit_rate"] > 0.6


def test_signal_model_sampling_grid_updates_once_per_interval():
    model, _ = run(SignalConfig(sample_interval_ms=250.0), planted_stream(600, strength=0.0))  # books 100 ms apart

    assert model.rls.updates + len(model.labels) == 200  # one sample per 300 ms: every third book


def test_signal_model_baselines_scored_whatever_its_features():
    model, _ = run(SignalConfig(features=("trade_flow",), ridge=100.0, model="experts"),
                   planted_stream(6_000, strength=20.0))

    report = model.report()
    assert report["experts"]["rls"]["r2_oos"] == 0.0  # no trades: the RLS expert's only feature is 0
    assert report["baselines"]["imbalance"]["r2_oos"] > 0.5  # the plain imbalance, though not a model feature
    assert report["baselines"]["momentum"]["r2_oos"] > 0.1
    # the aggregation moved its weight to the imbalance expert
    assert report["r2_oos"] > 0.5
    assert max(report["experts"], key=lambda name: report["experts"][name]["weight"]) == "imbalance"


def test_signal_model_lasting_imbalance_keeps_predicting():
    """Signed features are scaled, not centred: an imbalance that lasts still predicts (centred, it
    would fade to 0 as its running mean caught up, here within a few scaler half-lives)."""
    cfg = SignalConfig(features=("imbalance",), ridge=100.0, calibrate=False, scaler_halflife_samples=100.0,
                       model="rls")
    model, _ = run(cfg, planted_stream(6_000, strength=20.0))
    low = int(model.features.mid_tick)
    bid_px = (low - np.arange(10)).astype(np.int64)
    ask_px = (low + 1 + np.arange(10)).astype(np.int64)
    bid_qty = np.full(10, 150, np.int64)
    ask_qty = np.full(10, 50, np.int64)  # imbalance 0.5, held for 60 s (6 scaler half-lives)

    held = [model.on_book(600 * S + i * S // 10, bid_px, bid_qty, ask_px, ask_qty, 10, 10) for i in range(600)]

    assert held[-1].predicted_return > 0.5 * held[0].predicted_return > 0.0
