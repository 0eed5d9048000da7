"""compute_quote and plan_requote: one post-only level per side, minimal requotes."""

from __future__ import annotations

import math

import pytest

from mm.config import QuoterConfig
from mm.quoting import (
    NO_QUOTE,
    CancelAction,
    PlaceAction,
    Quote,
    WorkingOrder,
    compute_quote,
    defer_self_crossing,
    plan_requote,
)

S = 1_000_000_000


def quote(cfg: QuoterConfig | None = None, **overrides) -> Quote:
    kwargs = dict(
        best_bid_tick=10_000,
        best_ask_tick=10_010,
        position_lot=0,
        max_position_lot=1_000,
        predicted_return=0.0,
        volatility_bps_per_s=0.0,
    )
    kwargs.update(overrides)
    return compute_quote(cfg or QuoterConfig(min_half_spread_ticks=2, size_lot=100), **kwargs)


def test_compute_quote_flat_no_signal_symmetric_around_mid():
    result = quote()

    assert result == Quote(10_003, 100, 10_007, 100)  # mid 10005 +- 2


def test_compute_quote_volatility_widens_spread():
    cfg = QuoterConfig(min_half_spread_ticks=1, vol_spread_mult=2.0, size_lot=100)

    result = quote(cfg, volatility_bps_per_s=5.0)  # sigma = 5e-4 * 10005 = 5.0025 ticks

    half = 2.0 * 5e-4 * 10_005
    assert result.bid_px_tick == math.floor(10_005 - half)
    assert result.ask_px_tick == math.ceil(10_005 + half)


def test_compute_quote_long_position_skews_down():
    cfg = QuoterConfig(min_half_spread_ticks=2, skew_ticks_per_lot=0.01, size_lot=100)

    result = quote(cfg, position_lot=300)  # reservation 10005 - 3

    assert (result.bid_px_tick, result.ask_px_tick) == (10_000, 10_004)


def test_compute_quote_positive_alpha_shifts_up():
    cfg = QuoterConfig(min_half_spread_ticks=2, alpha_weight=1.0, size_lot=100)

    result = quote(cfg, predicted_return=2e-4)  # +2.001 ticks

    assert (result.bid_px_tick, result.ask_px_tick) == (10_005, 10_010)


def test_compute_quote_alpha_disabled_ignores_prediction():
    result = quote(predicted_return=2e-4, alpha_enabled=False)

    assert result == quote()


def test_compute_quote_reservation_above_ask_bid_clamped_below_ask():
    cfg = QuoterConfig(min_half_spread_ticks=1, alpha_weight=1.0, size_lot=100)

    result = quote(cfg, predicted_return=0.01)  # +100 ticks

    assert result.bid_px_tick == 10_009
    assert result.ask_px_tick > result.bid_px_tick


def test_compute_quote_reservation_below_bid_ask_clamped_above_bid():
    cfg = QuoterConfig(min_half_spread_ticks=1, skew_ticks_per_lot=1.0, size_lot=100)

    result = quote(cfg, position_lot=500)  # -500 ticks

    assert result.ask_px_tick == 10_001
    assert result.bid_px_tick < result.ask_px_tick


def test_compute_quote_one_tick_spread_min_half_one_sits_one_tick_behind():
    result = quote(QuoterConfig(min_half_spread_ticks=1, size_lot=100), best_bid_tick=100, best_ask_tick=101)

    assert (result.bid_px_tick, result.ask_px_tick) == (99, 102)  # floor(100.5 - 1), ceil(100.5 + 1)


def test_compute_quote_near_long_limit_bid_shrinks():
    result = quote(position_lot=950)

    assert result.bid_qty_lot == 50
    assert result.ask_qty_lot == 100


def test_compute_quote_at_long_limit_no_bid():
    result = quote(position_lot=1_000)

    assert result.bid_qty_lot == 0
    assert result.ask_qty_lot == 100


def test_compute_quote_beyond_short_limit_no_ask():
    result = quote(position_lot=-1_200)

    assert result.ask_qty_lot == 0
    assert result.bid_qty_lot == 100


@pytest.mark.parametrize("best_bid_tick, best_ask_tick", [(100, 100), (101, 100), (0, 100)])
def test_compute_quote_locked_crossed_or_empty_book_no_quote(best_bid_tick, best_ask_tick):
    result = quote(best_bid_tick=best_bid_tick, best_ask_tick=best_ask_tick)

    assert result == NO_QUOTE


@pytest.mark.parametrize("field", ["predicted_return", "volatility_bps_per_s"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_compute_quote_non_finite_signal_no_quote(field, value):
    result = quote(**{field: value})

    assert result == NO_QUOTE


def test_compute_quote_bid_below_one_tick_not_quoted():
    cfg = QuoterConfig(min_half_spread_ticks=1, skew_ticks_per_lot=1.0, size_lot=100)

    result = quote(cfg, best_bid_tick=2, best_ask_tick=4, position_lot=100)

    assert result.bid_qty_lot == 0


DESIRED = Quote(100, 10, 105, 10)


def order(client_id: str, side: int, px_tick: int, qty_lot: int = 10, placed_ns: int = 0) -> WorkingOrder:
    return WorkingOrder(client_id, side, px_tick, qty_lot, placed_ns)


def plan(desired: Quote, working: list[WorkingOrder], now_ns: int = S, tolerance_ticks: int = 1):
    return plan_requote(desired, working, tolerance_ticks=tolerance_ticks, max_age_ns=30 * S, now_ns=now_ns)


def test_plan_requote_nothing_working_places_both():
    actions = plan(DESIRED, [])

    assert actions == [PlaceAction(1, 100, 10), PlaceAction(-1, 105, 10)]


def test_plan_requote_within_tolerance_keeps_both():
    actions = plan(DESIRED, [order("b", 1, 101), order("a", -1, 104)])

    assert actions == []


def test_plan_requote_price_moved_beyond_tolerance_cancels_then_places():
    actions = plan(DESIRED, [order("b", 1, 98), order("a", -1, 105)])

    assert actions == [CancelAction("b"), PlaceAction(1, 100, 10)]


def test_plan_requote_size_changed_replaces():
    actions = plan(DESIRED, [order("b", 1, 100, qty_lot=7), order("a", -1, 105)])

    assert actions == [CancelAction("b"), PlaceAction(1, 100, 10)]


def test_plan_requote_too_old_replaces():
    actions = plan(DESIRED, [order("b", 1, 100, placed_ns=0), order("a", -1, 105, placed_ns=20 * S)], now_ns=31 * S)

    assert actions == [CancelAction("b"), PlaceAction(1, 100, 10)]


def test_plan_requote_extras_on_a_side_cancelled_keeps_closest():
    working = [order("b1", 1, 101), order("b2", 1, 100), order("b3", 1, 90), order("a", -1, 105)]

    actions = plan(DESIRED, working)

    assert actions == [CancelAction("b1"), CancelAction("b3")]


def test_plan_requote_zero_qty_side_cancels_its_orders():
    desired = Quote(100, 0, 105, 10)

    actions = plan(desired, [order("b", 1, 100), order("a", -1, 105)])

    assert actions == [CancelAction("b")]


def test_plan_requote_cancels_come_before_places():
    actions = plan(DESIRED, [order("b", 1, 90), order("a", -1, 120)])

    assert actions == [CancelAction("b"), CancelAction("a"), PlaceAction(1, 100, 10), PlaceAction(-1, 105, 10)]


def test_plan_requote_keeper_that_would_cross_own_quote_replaced():
    desired = Quote(100, 10, 101, 10)

    actions = plan(desired, [order("a", -1, 100)], tolerance_ticks=1)

    assert actions == [CancelAction("a"), PlaceAction(1, 100, 10), PlaceAction(-1, 101, 10)]


def test_plan_requote_bad_side_raises():
    with pytest.raises(ValueError, match="side must be"):
        plan(DESIRED, [order("x", 0, 100)])


def _order(cid: str, side: int, px: int) -> WorkingOrder:
    return WorkingOrder(cid, side, px, 10, 0)


def test_defer_self_crossing_holds_a_bid_that_meets_our_ask_being_cancelled():
    """The market moved up through our ask: the plan cancels it and bids at its price. Until the
    venue confirms the cancel, that bid would trade with us (risk: self_trade), so it waits."""
    ask = _order("a1", -1, 100)
    bid = _order("b1", 1, 98)
    desired = Quote(bid_px_tick=100, bid_qty_lot=10, ask_px_tick=102, ask_qty_lot=10)
    actions = plan_requote(desired, [bid, ask], tolerance_ticks=0, max_age_ns=10 * S, now_ns=S)
    assert PlaceAction(1, 100, 10) in actions

    kept = defer_self_crossing(actions, [bid, ask], [])

    assert kept == [CancelAction("b1"), CancelAction("a1"), PlaceAction(-1, 102, 10)]


def test_defer_self_crossing_counts_earlier_unconfirmed_cancels():
    pending = [_order("a0", -1, 101)]
    actions = [PlaceAction(1, 101, 10), PlaceAction(1, 100, 10), PlaceAction(-1, 103, 10)]
    assert defer_self_crossing(actions, [], pending) == actions[1:]
    pending_bid = [_order("b0", 1, 99)]
    actions = [PlaceAction(-1, 99, 10), PlaceAction(-1, 100, 10)]
    assert defer_self_crossing(actions, [], pending_bid) == [PlaceAction(-1, 100, 10)]


def test_defer_self_crossing_leaves_a_plan_without_cancels_alone():
    actions = [PlaceAction(1, 99, 10), PlaceAction(-1, 101, 10)]
    assert defer_self_crossing(actions, [], []) is actions
    assert defer_self_crossing([CancelAction("a1")], [_order("a1", -1, 100)], []) == [CancelAction("a1")]

