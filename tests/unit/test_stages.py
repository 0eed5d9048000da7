"""Each stage's step driven with hand-made events: no processes, no sockets, no shared memory."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from mm.config import load_config
from mm.fill_model import Accepted, Canceled, Filled, Rejected
from mm.journal import FillRecorded, PositionSnapshot
from mm.orders import OrdersView, OrderState, OrderTracker, RequestTimedOut, Side, VenueStatus, VenueUpdate
from mm.risk_rules import TradingState
from mm.stages.book import BookStep
from mm.stages.commands import Cancel, CancelEverything, Place, Rejection
from mm.stages.gateway import GatewayStep
from mm.stages.quoter import FixedSpreadStep, QuoterStep
from mm.stages.risk import STATUS_CHANGED, MarketRead, RiskStep
from mm.stages.signal import SignalStep

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
BID, ASK = 6_000_000, 6_000_001  # ticks of 0.01: 60000.00 / 60000.01


@pytest.fixture
def config():
    return load_config(None)


def levels(depth: int) -> tuple[np.ndarray, ...]:
    return tuple(np.zeros(depth, np.int64) for _ in range(4))


# ---- book -------------------------------------------------------------------------------------------


def test_book_publishes_once_per_change_and_asks_for_a_resync_after_a_gap(config):
    book = BookStep(config)
    assert book.snapshot_request(T0, stopping=False) == "start"
    assert book.snapshot_request(T0 + MS, stopping=False) is None  # asked less than a second ago
    book.on_snapshot(100, [(BID, 5), (BID - 1, 7)], [(ASK, 3)], T0, 0, T0)
    out = levels(config.book.depth)
    published = book.publish(*out)
    assert published is not None and published.update_id == 100 and (published.n_bids, published.n_asks) == (2, 1)
    assert list(out[0][:2]) == [BID, BID - 1] and out[3][0] == 3
    assert book.publish(*out) is None  # nothing new

    book.on_diff(101, 101, -1, [(BID, 0)], [], T0 + MS, 0, T0 + MS)
    assert book.publish(*out).update_id == 101 and out[0][0] == BID - 1

    book.on_diff(105, 106, -1, [(BID, 1)], [], T0 + 2 * MS, 0, T0 + 2 * MS)  # 102..104 missing
    assert book.sync.gaps == 1 and not book.has_news()
    assert book.snapshot_request(T0 + 2 * MS, stopping=False) == "resync"
    assert book.snapshot_request(T0 + 2 * MS, stopping=True) is None


def test_book_feed_restart_before_any_book_is_no_resync(config):
    book = BookStep(config)
    book.on_feed_restarted()
    assert book.sync.resyncs == 0
    book.on_snapshot(100, [(BID, 5)], [(ASK, 3)], T0, 0, T0)
    book.on_feed_restarted()
    assert book.sync.resyncs == 1 and book.sync.needs_snapshot


# ---- signal -----------------------------------------------------------------------------------------


def test_signal_takes_trades_then_books_and_counts_unhealthy(config):
    signal = SignalStep(config, keep_scored=False)
    trades = np.zeros(2, [("ts_event_ns", "i8"), ("px_tick", "i8"), ("qty_lot", "i8"), ("taker_side", "i8")])
    trades["ts_event_ns"] = [T0, T0 + MS]
    trades["px_tick"] = ASK
    trades["qty_lot"] = [2, 3]
    trades["taker_side"] = 1
    signal.on_trades(trades)
    bid_px, bid_qty, ask_px, ask_qty = levels(5)
    bid_px[0], bid_qty[0], ask_px[0], ask_qty[0] = BID, 10, ASK, 2
    pred = signal.on_book(T0 + 2 * MS, bid_px, bid_qty, ask_px, ask_qty, 1, 1)
    assert pred.healthy and pred.imbalance > 0
    empty = signal.on_book(T0 + 3 * MS, bid_px, bid_qty, ask_px, ask_qty, 0, 1)  # an empty side
    assert not empty.healthy
    stats = signal.stats()
    assert (stats["trades"], stats["predictions"], stats["unhealthy"]) == (2, 2, 1)


# ---- quoter -----------------------------------------------------------------------------------------


def test_quoter_quotes_both_sides_then_tracks_fills_and_risk(config):
    # the quote-distance prior: quotes that cover the 10 bp fee go out (the zero-profit one stays out)
    quoting = msgspec.structs.replace(config.quoter, edge_prior="quote_distance")
    quoter = QuoterStep(msgspec.structs.replace(config, quoter=quoting), "t", risk_position_authoritative=False)
    commands = quoter.on_book(BID, ASK, (0.0, 1.0), T0)
    places = [c for c in commands if isinstance(c, Place)]
    assert {p.side for p in places} == {1, -1} and all(p.post_only for p in places)
    assert [p.client_id for p in places] == ["t1", "t2"]
    assert quoter.on_book(BID, ASK, (0.0, 1.0), T0 + MS) == []  # within tolerance: keep them

    bid = next(p for p in places if p.side == 1)
    quoter.on_fill(bid.client_id, 1, bid.qty_lot, 0)
    assert quoter.position_lot == bid.qty_lot and bid.client_id not in quoter.working

    quoter.on_risk_status(paused=False, trading="halted", position_lot=0, size_ratio=1.0, widen_ticks=0.0)
    assert quoter.position_lot == bid.qty_lot  # lockstep: our own count, not risk's
    assert quoter.on_book(BID + 5, ASK + 5, None, T0 + 2 * MS) == []  # halted: no quote

    cancels = quoter.cancel_working()
    assert [c.client_id for c in cancels] == ["t2"] and isinstance(cancels[0], Cancel)
    assert "t2" in quoter.cancel_pending
    quoter.on_venue_orders(set())  # after a gateway restart the venue holds none of them
    assert not quoter.working and not quoter.cancel_pending


def test_quoter_soft_stop_shrinks_and_a_risk_reject_is_forgotten(config):
    quoter = QuoterStep(config, "t", risk_position_authoritative=True)
    quoter.on_risk_status(paused=False, trading="reducing", position_lot=7, size_ratio=0.5, widen_ticks=2.0)
    assert quoter.position_lot == 7
    places = [c for c in quoter.on_book(BID, ASK + 10, None, T0) if isinstance(c, Place)]
    assert places and all(p.qty_lot == config.quoter.size_lot // 2 for p in places)
    quoter.on_done(places[0].client_id, rejected=True)
    assert quoter.rejects == 1 and places[0].client_id not in quoter.working


def test_fixed_spread_ignores_the_prediction(config):
    fixed = FixedSpreadStep(config, "f")
    up = fixed.on_book(BID, ASK + 20, (0.01, 50.0), T0)
    fixed2 = FixedSpreadStep(config, "f")
    flat = fixed2.on_book(BID, ASK + 20, None, T0)
    assert up == flat and len(up) == 2


# ---- risk -------------------------------------------------------------------------------------------


def market(config) -> MarketRead:
    return MarketRead(book_ts_ns=T0, bid_px_tick=BID, ask_px_tick=ASK, signal_ts_ns=T0, volatility_bps_per_s=1.0)


def test_risk_checks_places_against_one_read_of_the_market(config):
    risk = RiskStep(config, "flat")
    view, actions = risk.begin_decision(T0, market(config), T0)
    assert actions == []
    assert risk.check(Place("a", 1, BID, 100), T0, view, True) is None
    too_big = risk.check(Place("b", 1, BID, config.risk.max_order_lot + 1), T0, view, True)
    assert isinstance(too_big, Rejection) and too_big.client_id == "b"
    far = risk.check(Place("c", 1, BID // 2, 100), T0, view, True)
    assert isinstance(far, Rejection)
    assert risk.approved == 1 and set(risk.open_orders) == {"a"} and sum(risk.rejected_checks.values()) == 2
    assert isinstance(risk.check(Place("d", 1, BID, 100), T0, view, False), Rejection)  # a peer is dead


def test_risk_fill_is_journaled_booked_and_announced(config):
    risk = RiskStep(config, "flat")
    view, _ = risk.begin_decision(T0, market(config), T0)
    risk.check(Place("a", 1, BID, 100), T0, view, True)
    actions = risk.on_fill("a", 1, BID, 100, 0, 0.01, T0 + MS, None, market(config))
    journal = [a for a in actions if isinstance(a, FillRecorded)]
    assert len(journal) == 1 and journal[0].side is Side.BUY and journal[0].qty_lot == 100
    assert STATUS_CHANGED in actions
    assert risk.position.position_lot == 100 and "a" not in risk.open_orders
    assert risk.last_event_ns == T0 + MS


def test_risk_peer_death_halts_and_cancels_then_revival_resumes(config):
    risk = RiskStep(config, "flat")
    actions = risk.on_peer_died("gateway")
    assert CancelEverything("peer_dead:gateway") in actions and risk.trading == TradingState.HALTED
    assert risk.on_peer_died("signal") == []  # not a dependency that halts
    assert risk.on_peer_revived("gateway", set()) == [STATUS_CHANGED]
    assert risk.trading == TradingState.ACTIVE and risk.reconcile_pending and risk.reconcile_position


def test_risk_reconcile_adopts_drops_and_books_the_missed_position(config):
    risk = RiskStep(config, "flat")
    view, _ = risk.begin_decision(T0, market(config), T0)
    risk.check(Place("gone", 1, BID, 100), T0, view, True)
    risk.reconcile_position = True
    actions, changed = risk.reconcile([("adopted", -1, ASK, 50)], 30, T0)
    assert changed == {"missed_lot": 30, "gone": 1, "adopted": 1}
    assert set(risk.open_orders) == {"adopted"} and risk.position.position_lot == 30
    assert actions[0].client_id == "reconcile"


def test_risk_recovers_from_snapshot_then_later_fills(config):
    source = RiskStep(config, "flat")
    source.position.apply_fill(1, BID, 100, 0.0)
    records = [source.position_snapshot(T0),
               FillRecorded(client_id="x", symbol=config.instrument.symbol, side=Side.SELL, px_tick=ASK, qty_lot=40,
                            fee_quote=0.0, trade_id=0, ts_ns=T0 + MS)]
    assert isinstance(records[0], PositionSnapshot)
    risk = RiskStep(config, "flat")
    assert risk.recover(records) == 1
    assert risk.position.position_lot == 60


def test_risk_flatten_takes_the_touch(config):
    risk = RiskStep(config, "flat")
    risk.position.apply_fill(1, BID, 100, 0.0)
    risk.market_view(market(config))
    actions = risk.flatten_orders(T0)
    place = next(a for a in actions if isinstance(a, Place))
    assert (place.side, place.px_tick, place.qty_lot, place.post_only, place.client_id) == (-1, BID, 100, False, "flat1")
    assert CancelEverything("operator flatten") in actions and risk.trading == TradingState.REDUCING


# ---- gateway ----------------------------------------------------------------------------------------


def test_gateway_holds_diffs_until_the_snapshot_and_drops_stale_ones(config):
    gateway = GatewayStep(config)
    assert gateway.on_diff(T0, 101, [(BID, 9)], []) == []
    gateway.on_snapshot(T0, 100, [(BID, 5)], [(ASK, 3)])
    assert gateway.venue._bids[BID] == 9  # the held diff continued the snapshot
    assert gateway.on_diff(T0, 99, [(BID, 1)], []) == [] and gateway.stale_diffs == 1


def test_gateway_orders_reach_the_sim_venue_after_the_latency_and_are_recorded(config):
    gateway = GatewayStep(config)
    gateway.on_snapshot(T0, 100, [(BID, 5)], [(ASK, 3)])
    assert gateway.on_command(T0, Place("a", 1, BID, 100)) == []  # in flight
    events = gateway.advance(T0 + gateway.latency_ns)
    assert [type(e) for e in events] == [Accepted]
    gateway.record(events, T0 + gateway.latency_ns)
    assert gateway.open_orders() == [["a", 1, BID, 100]]
    fills = gateway.on_trade(T0 + 2 * gateway.latency_ns, BID - 1, 1000, -1)  # traded through our bid
    assert [type(e) for e in fills] == [Filled]
    journal = gateway.record(fills, T0)
    assert len(journal) == 1 and gateway.account_position_lot == 100
    gateway.on_command(T0, CancelEverything("stop"))
    stats = gateway.stats()
    assert stats["orders"] == {"sent": 1, "acked": 1, "filled": 1, "cancelled": 0, "rejected": 0}
    assert stats["fills"] == 1 and len(stats["fill_log"]) == 1


def test_gateway_record_counts_cancels_and_reject_reasons(config):
    gateway = GatewayStep(config)
    gateway.on_command(T0, Place("a", 1, BID, 1))
    gateway.on_command(T0, Place("b", 1, ASK, 1))
    gateway.record([Accepted("a", "1", 1, BID, 1, T0)], T0)
    gateway.record([Canceled("a", 1, T0 + MS), Rejected("b", "post-only would cross", T0 + MS),
                    Rejected("c", "cancel: unknown order c", T0 + MS)], T0 + MS)
    assert gateway.counts["cancelled"] == 1 and gateway.counts["rejected"] == 2
    assert gateway.quote_log == [[T0, BID, None], [T0 + MS, None, None]]
    assert gateway.stats()["reject_reasons"] == {"cancel_unknown_order": 1, "post_only_would_cross": 1}


def order_states(gateway: GatewayStep) -> dict[str, tuple[OrderState, int]]:
    return {cid: (o.state, o.filled_qty_lot) for cid, o in gateway.tracker.orders.items()}


def test_gateway_tracks_each_sim_order_in_the_one_tracker(config):
    """Commands and the venue's answers (hand-made) move the tracker: sent, acked, partially filled,
    filled, cancel pending, cancelled, rejected."""
    gateway = GatewayStep(config)
    for cid, side, px in (("a", 1, BID), ("b", -1, ASK), ("c", 1, BID - 1), ("d", -1, ASK)):
        gateway.on_command(T0, Place(cid, side, px, 10))
    assert {cid: state for cid, (state, _) in order_states(gateway).items()} == dict.fromkeys("abcd", OrderState.SENT)
    t1 = T0 + MS
    gateway.record([Accepted("a", "1", 1, BID, 10, t1), Accepted("b", "2", -1, ASK, 10, t1),
                    Accepted("c", "3", 1, BID - 1, 10, t1), Rejected("d", "post-only would cross", t1)], t1)
    assert order_states(gateway) == {"a": (OrderState.ACKED, 0), "b": (OrderState.ACKED, 0),
                                     "c": (OrderState.ACKED, 0), "d": (OrderState.REJECTED, 0)}
    t2 = T0 + 2 * MS
    gateway.record([Filled("a", 1, BID, 4, 6, 0.0, True, t2), Filled("b", -1, ASK, 10, 0, 0.0, True, t2)], t2)
    assert order_states(gateway)["a"] == (OrderState.PARTIALLY_FILLED, 4)
    assert order_states(gateway)["b"] == (OrderState.FILLED, 10)
    gateway.on_command(t2, Cancel("a"))
    assert order_states(gateway)["a"] == (OrderState.CANCEL_PENDING, 4)
    gateway.record([Filled("a", 1, BID, 4, 2, 0.0, True, t2), Canceled("a", 2, t2)], t2)  # a fill before the cancel
    assert order_states(gateway)["a"] == (OrderState.CANCELLED, 8)
    assert gateway.quote_log[-1] == [t2, BID - 1, None]  # c rests; a cancelled, b filled, d rejected
    gateway.on_command(t2, CancelEverything("stop"))
    assert order_states(gateway)["c"] == (OrderState.CANCEL_PENDING, 0)
    assert [o.client_id for o in gateway.orders.open_orders()] == ["c"]


def test_gateway_settles_an_order_unknown_after_a_lost_ack(config):
    """A request whose answer was lost is UNKNOWN, not failed; the venue's later word settles it, and
    a cancel refused while the fill report is on its way leaves it UNKNOWN until that report lands."""
    gateway = GatewayStep(config)
    gateway.on_command(T0, Place("a", 1, BID, 10))
    gateway.tracker.apply(RequestTimedOut("a", T0 + MS), T0 + MS)  # the ack never came
    assert order_states(gateway)["a"] == (OrderState.UNKNOWN, 0)
    assert gateway.orders.best_working() == (None, None)  # not confirmed: not quoted in the log
    gateway.record([Accepted("a", "1", 1, BID, 10, T0 + 2 * MS)], T0 + 2 * MS)
    assert order_states(gateway)["a"] == (OrderState.ACKED, 0) and gateway.orders.best_working() == (BID, None)
    gateway.on_command(T0 + 3 * MS, Cancel("a"))
    gateway.record([Rejected("a", "cancel 'a': unknown or closed order id", T0 + 4 * MS)], T0 + 4 * MS)
    assert order_states(gateway)["a"] == (OrderState.UNKNOWN, 0)
    gateway.record([Filled("a", 1, BID, 10, 0, 0.0, True, T0 + 3 * MS)], T0 + 4 * MS)
    assert order_states(gateway)["a"] == (OrderState.FILLED, 10)


def test_gateway_duplicate_and_invalid_orders_leave_the_tracked_one_alone(config):
    gateway = GatewayStep(config)
    gateway.on_snapshot(T0, 100, [(BID, 5)], [(ASK, 3)])
    gateway.on_command(T0, Place("a", 1, BID, 10))
    gateway.on_command(T0, Place("a", 1, BID - 5, 10))  # the same id again: the venue refuses it
    gateway.on_command(T0, Place("z", 1, 0, 10))  # no price: refused, never tracked
    events = gateway.advance(T0 + gateway.latency_ns)
    assert [type(e) for e in events] == [Accepted, Rejected, Rejected]
    gateway.record(events, T0 + gateway.latency_ns)
    assert order_states(gateway) == {"a": (OrderState.ACKED, 0)} and gateway.tracker.get("a").px_tick == BID


def test_gateway_prunes_closed_orders_but_never_open_ones(config):
    gateway = GatewayStep(config)
    gateway.on_snapshot(T0, 100, [(BID, 5)], [(ASK, 3)])
    gateway.on_command(T0, Place("a", 1, BID, 10))
    gateway.on_command(T0, Place("b", 1, BID - 1, 10))
    gateway.record(gateway.advance(T0 + gateway.latency_ns), T0 + gateway.latency_ns)
    gateway.on_command(T0 + MS, Cancel("a"))
    gateway.record(gateway.advance(T0 + MS + gateway.latency_ns), T0 + MS + gateway.latency_ns)
    assert set(order_states(gateway)) == {"a", "b"}
    gateway.advance(T0 + 200 * 1000 * MS)  # minutes later
    assert order_states(gateway) == {"b": (OrderState.ACKED, 0)}


def test_gateway_with_a_real_venue_only_reads_the_venue_trackers_view(config):
    """With a real venue the adapter owns the tracker: the step keeps none and logs quotes from the view."""
    view = OrdersView()
    gateway = GatewayStep(config, orders=view)
    assert gateway.tracker is None
    gateway.record([Accepted("ours1", "7", 1, BID, 10, T0)], T0)
    assert gateway.quote_log == []  # not connected yet: the view shows no orders
    live = OrderTracker("mmtest", "b", query_after_ns=10 * MS, cancel_timeout_ns=10 * MS)
    view.attach(live)
    record = live.submit("BTCUSDT", Side.SELL, ASK, 10, T0)
    live.mark_sent(record.client_id, T0)
    live.apply(VenueUpdate(record.client_id, VenueStatus.NEW, 0, T0 + MS), T0 + MS)
    gateway.record([Accepted("ours2", "8", -1, ASK, 10, T0 + MS)], T0 + MS)
    assert gateway.quote_log == [[T0 + MS, None, ASK]] and gateway.counts["acked"] == 2
    with pytest.raises(AssertionError):
        gateway.on_command(T0, Place("x", 1, BID, 1))
