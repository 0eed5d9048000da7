"""FillModel: queue position, trade-through, cancels ahead/behind, latency, rejects, fees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.fill_model import Accepted, Canceled, FillModel, Filled, OpenOrder, Rejected

LATENCY_NS = 1_000
TICK = 0.01
LOT = 0.00001
BUY, SELL = 1, -1


def make_model(cancel_ahead_ratio: float = 0.5, latency_ns: int = LATENCY_NS) -> FillModel:
    model = FillModel(
        latency_ns=latency_ns,
        maker_fee_bps=-1.0,
        taker_fee_bps=4.0,
        cancel_ahead_ratio=cancel_ahead_ratio,
        tick_size=TICK,
        lot_size=LOT,
    )
    model.on_snapshot(0, [(100, 10), (99, 20)], [(101, 10), (102, 20)])
    return model


def rest(model: FillModel, client_id: str, side: int, px: int, qty: int, ts_ns: int = 0) -> None:
    """Submit post-only at ts_ns and deliver it; the order must rest."""
    model.submit(ts_ns, client_id, side, px, qty, True)
    events = model.advance(ts_ns + LATENCY_NS)
    assert [type(e) for e in events] == [Accepted]


def order(model: FillModel, client_id: str) -> OpenOrder:
    return next(o for o in model.open_orders() if o.client_id == client_id)


def fee(px: int, qty: int, bps: float) -> float:
    return px * qty * TICK * LOT * bps / 1e4


# ---- latency ------------------------------------------------------------------------------


def test_submit_before_latency_elapsed_nothing_happens():
    model = make_model()

    assert model.submit(0, "a", BUY, 100, 5, True) == []
    assert model.advance(LATENCY_NS - 1) == []
    assert model.open_orders() == []


def test_submit_at_arrival_time_accepted_with_venue_time():
    model = make_model()
    model.submit(0, "a", BUY, 100, 5, True)

    events = model.advance(LATENCY_NS)

    assert events == [Accepted("a", "1", BUY, 100, 5, LATENCY_NS)]
    assert model.open_orders() == [OpenOrder("a", "1", BUY, 100, 5, 5, 10, LATENCY_NS)]


def test_market_event_after_arrival_delivers_submit_first():
    model = make_model()
    model.submit(0, "a", BUY, 100, 5, True)

    events = model.on_trade(2 * LATENCY_NS, 99, 1, SELL)  # trades through: must see the order live

    assert [type(e) for e in events] == [Accepted, Filled]
    assert events[1].ts_ns == 2 * LATENCY_NS


def test_zero_latency_submit_delivered_in_same_call():
    model = make_model(latency_ns=0)

    events = model.submit(5, "a", BUY, 100, 5, True)

    assert events == [Accepted("a", "1", BUY, 100, 5, 5)]


def test_trade_before_submit_arrives_does_not_fill():
    model = make_model()
    model.submit(0, "a", BUY, 100, 5, True)

    assert model.on_trade(LATENCY_NS - 1, 99, 50, SELL) == []
    assert model.advance(LATENCY_NS)[0] == Accepted("a", "1", BUY, 100, 5, LATENCY_NS)


def test_cancel_in_flight_trade_still_fills():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    model.cancel(2_000, "a")

    events = model.on_trade(2_500, 99, 1, SELL)

    assert [type(e) for e in events] == [Filled]
    assert model.advance(3_000) == [Rejected("a", "cancel 'a': unknown or closed order id", 3_000)]


# ---- queue position -----------------------------------------------------------------------


def test_order_arriving_joins_back_of_queue_ahead_is_visible_qty():
    model = make_model()

    rest(model, "a", BUY, 100, 5)

    assert order(model, "a").ahead_lot == 10


def test_trade_at_our_price_smaller_than_queue_only_reduces_ahead():
    model = make_model()
    rest(model, "a", BUY, 100, 5)

    events = model.on_trade(2_000, 100, 6, SELL)

    assert events == []
    assert order(model, "a").ahead_lot == 4


def test_trade_at_our_price_beyond_queue_fills_excess_as_maker():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    model.on_trade(2_000, 100, 6, SELL)

    events = model.on_trade(3_000, 100, 7, SELL)

    assert events == [Filled("a", BUY, 100, 3, 2, fee(100, 3, -1.0), True, 3_000)]
    assert order(model, "a").ahead_lot == 0


def test_partial_fills_then_last_fill_closes_order():
    model = make_model()
    rest(model, "a", SELL, 101, 5)
    model.on_trade(2_000, 101, 12, BUY)  # 10 ahead, 2 to us

    events = model.on_trade(3_000, 101, 4, BUY)

    assert [(e.qty_lot, e.leaves_lot) for e in events] == [(3, 0)]
    assert model.open_orders() == []


def test_trade_at_our_price_by_same_side_taker_ignored():
    model = make_model()
    rest(model, "a", BUY, 100, 5)

    assert model.on_trade(2_000, 100, 50, BUY) == []
    assert order(model, "a").ahead_lot == 10


def test_second_own_order_at_same_price_queues_behind_first():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    rest(model, "b", BUY, 100, 4, ts_ns=100)

    events = model.on_trade(3_000, 100, 17, SELL)  # 10 market, 5 ours (a), 2 to b

    assert [(e.client_id, e.qty_lot) for e in events] == [("a", 5), ("b", 2)]


def test_cancel_of_first_own_order_moves_second_up():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    rest(model, "b", BUY, 100, 4, ts_ns=100)
    assert order(model, "b").ahead_lot == 15

    model.cancel(2_000, "a")
    model.advance(3_000)

    assert order(model, "b").ahead_lot == 10


# ---- trade-through and crossing liquidity -------------------------------------------------


def test_sell_trade_below_our_bid_fills_fully_at_our_price():
    model = make_model()
    rest(model, "a", BUY, 100, 5)

    events = model.on_trade(2_000, 99, 1, SELL)

    assert events == [Filled("a", BUY, 100, 5, 0, fee(100, 5, -1.0), True, 2_000)]


def test_buy_trade_above_our_ask_fills_fully_at_our_price():
    model = make_model()
    rest(model, "a", SELL, 102, 7)

    events = model.on_trade(2_000, 103, 1, BUY)

    assert [(e.px_tick, e.qty_lot, e.leaves_lot, e.is_maker) for e in events] == [(102, 7, 0, True)]


def test_ask_appearing_at_our_bid_fills_us_up_to_its_size():
    model = make_model()
    rest(model, "a", BUY, 100, 5)

    events = model.on_depth(2_000, [(100, 0)], [(100, 3)])

    assert [(e.px_tick, e.qty_lot, e.leaves_lot) for e in events] == [(100, 3, 2)]


# ---- cancels in the queue -----------------------------------------------------------------


def test_unexplained_shrink_with_half_ratio_splits_ahead_and_behind():
    model = make_model(cancel_ahead_ratio=0.5)
    rest(model, "a", BUY, 100, 5)
    model.on_depth(2_000, [(100, 20)], [])  # 10 join behind us

    model.on_depth(3_000, [(100, 14)], [])  # 6 canceled: 3 ahead, 3 behind

    assert order(model, "a").ahead_lot == 7


def test_unexplained_shrink_with_ratio_one_all_ahead():
    model = make_model(cancel_ahead_ratio=1.0)
    rest(model, "a", BUY, 100, 5)
    model.on_depth(2_000, [(100, 20)], [])

    model.on_depth(3_000, [(100, 14)], [])

    assert order(model, "a").ahead_lot == 4


def test_unexplained_shrink_with_ratio_zero_all_behind():
    model = make_model(cancel_ahead_ratio=0.0)
    rest(model, "a", BUY, 100, 5)
    model.on_depth(2_000, [(100, 20)], [])

    model.on_depth(3_000, [(100, 14)], [])

    assert order(model, "a").ahead_lot == 10


def test_shrink_larger_than_behind_takes_rest_from_ahead():
    model = make_model(cancel_ahead_ratio=0.0)
    rest(model, "a", BUY, 100, 5)
    model.on_depth(2_000, [(100, 12)], [])  # 2 behind us

    model.on_depth(3_000, [(100, 5)], [])  # 7 canceled: 2 behind, then 5 ahead

    assert order(model, "a").ahead_lot == 5


def test_shrink_explained_by_trades_leaves_ahead_alone():
    model = make_model(cancel_ahead_ratio=1.0)
    rest(model, "a", BUY, 100, 5)
    model.on_trade(2_000, 100, 4, SELL)

    model.on_depth(3_000, [(100, 6)], [])

    assert order(model, "a").ahead_lot == 6


def test_level_removed_clears_queue_ahead():
    model = make_model()
    rest(model, "a", BUY, 100, 5)

    model.on_depth(2_000, [(100, 0)], [])

    assert order(model, "a").ahead_lot == 0


def test_snapshot_with_smaller_level_clamps_ahead():
    model = make_model()
    rest(model, "a", BUY, 100, 5)

    model.on_snapshot(2_000, [(100, 3)], [(101, 10)])

    assert order(model, "a").ahead_lot == 3


# ---- crossing orders and rejects ----------------------------------------------------------


def test_post_only_that_would_cross_rejected():
    model = make_model()
    model.submit(0, "a", BUY, 101, 5, True)

    events = model.advance(LATENCY_NS)

    assert events == [Rejected("a", "post-only would cross", LATENCY_NS)]
    assert model.open_orders() == []


def test_post_only_cross_judged_on_book_at_arrival_not_at_send():
    model = make_model()
    model.submit(0, "a", BUY, 101, 5, True)

    events = model.on_depth(500, [], [(101, 0)])  # the ask leaves before our order arrives
    events += model.advance(LATENCY_NS)

    assert [type(e) for e in events] == [Accepted]


def test_crossing_limit_order_takes_levels_at_book_prices_with_taker_fee():
    model = make_model()
    model.submit(0, "a", BUY, 102, 25, False)

    events = model.advance(LATENCY_NS)

    assert events == [
        Accepted("a", "1", BUY, 102, 25, LATENCY_NS),
        Filled("a", BUY, 101, 10, 15, fee(101, 10, 4.0), False, LATENCY_NS),
        Filled("a", BUY, 102, 15, 0, fee(102, 15, 4.0), False, LATENCY_NS),
    ]
    assert model.open_orders() == []


def test_crossing_limit_order_remainder_rests_with_nothing_ahead():
    model = make_model()
    model.submit(0, "a", SELL, 100, 15, False)

    events = model.advance(LATENCY_NS)

    assert [(type(e).__name__, getattr(e, "qty_lot", None)) for e in events] == [("Accepted", 15), ("Filled", 10)]
    assert order(model, "a").leaves_lot == 5
    assert order(model, "a").ahead_lot == 0


def test_duplicate_client_id_rejected_and_first_order_kept():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    model.submit(2_000, "a", BUY, 99, 9, True)

    events = model.advance(3_000)

    assert events == [Rejected("a", "duplicate client id", 3_000)]
    assert model.open_orders() == [OpenOrder("a", "1", BUY, 100, 5, 5, 10, LATENCY_NS)]


def test_duplicate_client_id_in_flight_together_one_order():
    model = make_model()
    model.submit(0, "a", BUY, 100, 5, True)
    model.submit(0, "a", BUY, 100, 5, True)

    events = model.advance(LATENCY_NS)

    assert [type(e) for e in events] == [Accepted, Rejected]
    assert len(model.open_orders()) == 1


def test_invalid_qty_rejected_naming_value():
    model = make_model()
    model.submit(0, "a", BUY, 100, 0, True)

    (event,) = model.advance(LATENCY_NS)

    assert isinstance(event, Rejected)
    assert "qty_lot 0" in event.reason


# ---- cancels ------------------------------------------------------------------------------


def test_cancel_live_order_canceled_with_leaves_after_latency():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    model.on_trade(2_000, 100, 12, SELL)  # 2 filled

    assert model.cancel(3_000, "a") == []
    events = model.advance(4_000)

    assert events == [Canceled("a", 3, 4_000)]
    assert model.open_orders() == []


def test_cancel_unknown_id_rejected_naming_id():
    model = make_model()

    model.cancel(0, "ghost-7")
    (event,) = model.advance(LATENCY_NS)

    assert isinstance(event, Rejected)
    assert "ghost-7" in event.reason


def test_cancel_after_fill_race_rejected():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    model.on_trade(2_000, 99, 1, SELL)  # filled fully

    model.cancel(2_500, "a")
    (event,) = model.advance(3_500)

    assert isinstance(event, Rejected)
    assert "'a'" in event.reason


def test_cancel_sent_while_submit_in_flight_cancels_after_accept():
    model = make_model()
    model.submit(0, "a", BUY, 100, 5, True)
    model.cancel(10, "a")

    events = model.advance(LATENCY_NS + 10)

    assert events == [Accepted("a", "1", BUY, 100, 5, LATENCY_NS), Canceled("a", 5, LATENCY_NS + 10)]


def test_cancel_all_cancels_every_live_order():
    model = make_model()
    rest(model, "a", BUY, 100, 5)
    rest(model, "b", SELL, 102, 6)

    model.cancel_all(2_000)
    events = model.advance(3_000)

    assert events == [Canceled("a", 5, 3_000), Canceled("b", 6, 3_000)]
    assert model.open_orders() == []


def test_cancel_all_with_nothing_open_no_events():
    model = make_model()

    model.cancel_all(0)

    assert model.advance(LATENCY_NS) == []


# ---- fees ---------------------------------------------------------------------------------


def test_maker_fee_negative_bps_is_rebate_in_quote():
    model = make_model()
    model.on_snapshot(0, [(6_000_000, 50)], [(6_000_001, 50)])
    rest(model, "a", BUY, 6_000_000, 100_000)  # 60 000.00 quote, 1 base unit

    (event,) = model.on_trade(2_000, 5_999_999, 1, SELL)

    assert event.fee_quote == pytest.approx(-60_000.0 * 1e-4)


# ---- property -----------------------------------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from(["a", "b", "c", "d"]), st.sampled_from([BUY, SELL]),
                  st.integers(97, 104), st.integers(1, 30), st.booleans()),
        st.tuples(st.just("cancel"), st.sampled_from(["a", "b", "c", "d", "x"])),
        st.tuples(st.just("cancel_all")),
        st.tuples(st.just("trade"), st.integers(97, 104), st.integers(1, 40), st.sampled_from([BUY, SELL])),
        st.tuples(st.just("depth"), st.sampled_from([BUY, SELL]), st.integers(97, 104), st.integers(0, 40)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops=_ops, latency_ns=st.integers(0, 3))
def test_fill_model_any_sequence_never_overfills(ops, latency_ns):
    model = make_model(latency_ns=latency_ns)
    qty_of: dict[str, int] = {}
    filled: dict[str, int] = {}
    closed: set[str] = set()
    for step, op in enumerate(ops):
        match op:
            case ("submit", client_id, side, px, qty, post_only):
                events = model.submit(step, client_id, side, px, qty, post_only)
            case ("cancel", client_id):
                events = model.cancel(step, client_id)
            case ("cancel_all",):
                events = model.cancel_all(step)
            case ("trade", px, qty, taker_side):
                events = model.on_trade(step, px, qty, taker_side)
            case ("depth", side, px, qty):
                events = model.on_depth(step, [(px, qty)] if side > 0 else [], [(px, qty)] if side < 0 else [])
        for event in events:
            assert event.ts_ns <= step
            match event:
                case Accepted(client_id=client_id, qty_lot=qty):
                    assert client_id not in qty_of  # never a second order under one id
                    qty_of[client_id] = qty
                case Filled(client_id=client_id, qty_lot=qty, leaves_lot=leaves):
                    assert client_id not in closed and qty > 0 and leaves >= 0
                    filled[client_id] = filled.get(client_id, 0) + qty
                    assert filled[client_id] + leaves == qty_of[client_id]
                    if leaves == 0:
                        closed.add(client_id)
                case Canceled(client_id=client_id, leaves_lot=leaves):
                    assert client_id not in closed
                    assert leaves == qty_of[client_id] - filled.get(client_id, 0) > 0
                    closed.add(client_id)
        for resting in model.open_orders():
            assert resting.ahead_lot >= 0 and 0 < resting.leaves_lot <= resting.qty_lot
            assert resting.client_id not in closed
