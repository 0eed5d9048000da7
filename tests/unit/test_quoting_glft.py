"""GLFT pricing, the N-level ladder and its requote plan."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.config import QuoterConfig
from mm.quoting import (
    BUY,
    SELL,
    CancelAction,
    PlaceAction,
    WorkingOrder,
    compute_quote,
    compute_quotes,
    glft_coefficients,
    plan_requote_levels,
)

S = 1_000_000_000
GLFT = QuoterConfig(size_lot=10, min_half_spread_ticks=0.5, vol_spread_mult=0.0, risk_aversion=0.1,
                    arrival_intensity_per_s=1.0, arrival_decay_per_tick=1.0)


def test_glft_coefficients_match_formula_and_risk_neutral_limit():
    c1, c2 = glft_coefficients(GLFT)

    assert c1 == pytest.approx(math.log(1.1) / 0.1)
    assert c2 == pytest.approx(math.sqrt(0.1 / 2 * 1.1 ** 11))
    assert glft_coefficients(QuoterConfig(arrival_decay_per_tick=2.0)) == (0.5, 0.0)


def test_glft_long_inventory_skews_both_quotes_down():
    flat = compute_quote(GLFT, best_bid_tick=100_000, best_ask_tick=100_001, position_lot=0, max_position_lot=100,
                         predicted_return=0.0, volatility_bps_per_s=2.0)
    long = compute_quote(GLFT, best_bid_tick=100_000, best_ask_tick=100_001, position_lot=50, max_position_lot=100,
                         predicted_return=0.0, volatility_bps_per_s=2.0)

    assert long.bid_px_tick < flat.bid_px_tick
    assert long.ask_px_tick <= flat.ask_px_tick


def test_glft_higher_volatility_widens():
    kwargs = dict(best_bid_tick=100_000, best_ask_tick=100_001, position_lot=0, max_position_lot=100,
                  predicted_return=0.0)
    calm = compute_quote(GLFT, volatility_bps_per_s=1.0, **kwargs)
    wild = compute_quote(GLFT, volatility_bps_per_s=10.0, **kwargs)

    assert wild.ask_px_tick - wild.bid_px_tick > calm.ask_px_tick - calm.bid_px_tick


def test_fee_widens_half_spread():
    kwargs = dict(best_bid_tick=100_000, best_ask_tick=100_001, position_lot=0, max_position_lot=100,
                  predicted_return=0.0, volatility_bps_per_s=0.0)
    no_fee = compute_quote(QuoterConfig(min_half_spread_ticks=0.5), **kwargs)
    fee = compute_quote(QuoterConfig(min_half_spread_ticks=0.5, maker_fee_bps=1.0), **kwargs)  # 10 ticks

    assert fee.ask_px_tick - fee.bid_px_tick >= no_fee.ask_px_tick - no_fee.bid_px_tick + 20


def test_ladder_levels_spaced_sized_and_limited():
    cfg = QuoterConfig(size_lot=10, levels=3, level_spacing_ticks=2.0, size_ladder_ratio=2.0)

    ladder = compute_quotes(cfg, best_bid_tick=1000, best_ask_tick=1002, position_lot=25, max_position_lot=50,
                            predicted_return=0.0, volatility_bps_per_s=0.0)

    assert [px for px, _ in ladder.asks] == sorted(px for px, _ in ladder.asks)
    assert [px for px, _ in ladder.bids] == sorted((px for px, _ in ladder.bids), reverse=True)
    assert [qty for _, qty in ladder.asks] == [10, 20, 40]
    assert sum(qty for _, qty in ladder.bids) == 25  # room to the limit: 50 - 25
    assert ladder.asks[1][0] - ladder.asks[0][0] >= 2


def test_ladder_soft_stop_shrinks_and_widens():
    cfg = QuoterConfig(size_lot=10, levels=1)
    kwargs = dict(best_bid_tick=1000, best_ask_tick=1002, position_lot=0, max_position_lot=50,
                  predicted_return=0.0, volatility_bps_per_s=0.0)

    normal = compute_quotes(cfg, **kwargs)
    soft = compute_quotes(cfg, size_ratio=0.5, extra_half_spread_ticks=3.0, **kwargs)

    assert soft.bids[0][1] == 5
    assert soft.bids[0][0] <= normal.bids[0][0] - 3
    assert soft.asks[0][0] >= normal.asks[0][0] + 3


@settings(max_examples=300)
@given(
    bid=st.integers(1, 1_000_000), spread=st.integers(1, 50), position=st.integers(-500, 500),
    ret=st.floats(-0.01, 0.01), vol=st.floats(0, 200), gamma=st.floats(0, 5), levels=st.integers(1, 5),
)
def test_ladder_any_input_never_crosses_book_or_itself(bid, spread, position, ret, vol, gamma, levels):
    cfg = QuoterConfig(size_lot=7, levels=levels, risk_aversion=gamma)

    ladder = compute_quotes(cfg, best_bid_tick=bid, best_ask_tick=bid + spread, position_lot=position,
                            max_position_lot=300, predicted_return=ret, volatility_bps_per_s=vol)

    for px, qty in ladder.bids:
        assert isinstance(px, int) and 1 <= px <= bid + spread - 1 and qty > 0
    for px, qty in ladder.asks:
        assert isinstance(px, int) and px >= bid + 1 and qty > 0
    if ladder.bids and ladder.asks:
        assert ladder.bids[0][0] < ladder.asks[0][0]
    assert position + sum(q for _, q in ladder.bids) <= max(300, position)
    assert position - sum(q for _, q in ladder.asks) >= min(-300, position)


def test_plan_requote_levels_keeps_within_tolerance_replaces_old_and_far():
    cfg = QuoterConfig(size_lot=10, levels=2)
    ladder = compute_quotes(cfg, best_bid_tick=1000, best_ask_tick=1002, position_lot=0, max_position_lot=100,
                            predicted_return=0.0, volatility_bps_per_s=0.0)
    (b0, _), (b1, _) = ladder.bids
    working = [
        WorkingOrder("keep", BUY, b0, 10, 9 * S),  # exact
        WorkingOrder("old", BUY, b1, 10, 0),  # too old
        WorkingOrder("far", SELL, 2000, 10, 9 * S),  # far from any ask level
    ]

    actions = plan_requote_levels(ladder, working, tolerance_ticks=1, max_age_ns=5 * S, now_ns=10 * S)

    assert [a for a in actions if isinstance(a, CancelAction)] == [CancelAction("old"), CancelAction("far")]
    places = [a for a in actions if isinstance(a, PlaceAction)]
    assert PlaceAction(BUY, b1, 10) in places
    assert sum(1 for a in places if a.side == SELL) == 2
