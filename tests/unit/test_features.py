"""Features: imbalance (plain, depth-weighted), micro-price offset, trade flow, momentum, volatility."""

from __future__ import annotations

import math

import pytest

from mm.config import SignalConfig
from mm.features import FeatureState, feature_columns

S = 1_000_000_000
ALL = ("imbalance", "imbalance_weighted", "micro_offset", "trade_flow", "momentum", "volatility", "spread")


def make(**kw) -> FeatureState:
    return FeatureState(SignalConfig(features=ALL, momentum_lookbacks_s=(1.0, 5.0), **kw))


def test_feature_columns_expand_momentum_lookbacks():
    assert feature_columns(SignalConfig(features=("imbalance", "momentum"), momentum_lookbacks_s=(1.0, 30.0))) == [
        "imbalance", "momentum_1s", "momentum_30s"]


def test_on_book_imbalances_and_micro_offset():
    state = make(imbalance_levels=2, weighted_levels=2)

    x = state.on_book(S, 100, 102, [30, 10, 1000], [10, 10, 1000])

    columns = state.columns
    assert x[columns.index("imbalance")] == pytest.approx((40 - 20) / 60)
    assert x[columns.index("imbalance_weighted")] == pytest.approx((30 + 5 - 10 - 5) / (35 + 15))
    micro = (100 * 10 + 102 * 30) / 40
    assert x[columns.index("micro_offset")] == pytest.approx((micro - 101) / 101 * 1e4)
    assert x[columns.index("spread")] == pytest.approx(2 / 101 * 1e4)


def test_momentum_positive_after_rise_and_zero_when_flat():
    state = make()
    state.on_book(0, 1000, 1001, [1], [1])
    assert all(v == 0 for c, v in zip(state.columns, state.values) if c.startswith("momentum"))

    x = state.on_book(S, 1010, 1011, [1], [1])

    assert x[state.columns.index("momentum_5s")] > x[state.columns.index("momentum_1s")] > 0  # a longer EWMA lags more


def test_momentum_bps_for_the_baseline_without_momentum_feature():
    state = FeatureState(SignalConfig(features=("imbalance",), momentum_lookbacks_s=(1.0, 5.0)))
    assert state.momentum_bps(0) == 0.0  # no book yet
    state.on_book(0, 1000, 1001, [1], [1])
    state.on_book(S, 1010, 1011, [1], [1])

    assert state.momentum_bps(1) > state.momentum_bps(0) > 0


def test_only_non_negative_features_are_centred():
    state = make()

    assert dict(zip(state.columns, state.centred)) == {
        "imbalance": False, "imbalance_weighted": False, "micro_offset": False, "trade_flow": False,
        "momentum_1s": False, "momentum_5s": False, "volatility": True, "spread": True}


def test_trade_flow_signed_and_fades_when_tape_quiet():
    state = make(trade_flow_halflife_s=1.0)
    state.on_book(0, 1000, 1001, [1], [1])
    state.on_trade(S, 10, 1)
    x_now = state.on_book(S, 1000, 1001, [1], [1])[state.columns.index("trade_flow")]
    x_later = state.on_book(20 * S, 1000, 1001, [1], [1])[state.columns.index("trade_flow")]

    assert 0 < x_now <= 1
    assert abs(x_later) < 1e-3


def test_bad_trade_ignored_and_counted():
    state = make()

    assert not state.on_trade(S, 0, 1)
    assert not state.on_trade(S, 5, 0)
    assert state.trades_ignored == 2


def test_volatility_prior_then_halves_variance_per_halflife():
    state = make(vol_prior_bps_per_s=2.0, vol_halflife_s=10.0)
    state.on_book(0, 1000, 1001, [1], [1])

    x = state.on_book(10 * S, 1000, 1001, [1], [1])

    assert x[state.columns.index("volatility")] == pytest.approx(2.0 / math.sqrt(2))


def test_unknown_feature_rejected():
    with pytest.raises(ValueError, match="unknown"):
        FeatureState(SignalConfig(features=("imbalance", "astrology")))
