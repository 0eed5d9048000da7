import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.errors import IllegalTransitionError
from mm.orders import (
    RESTING,
    TERMINAL,
    Applied,
    CancelDecision,
    CancelRejected,
    CancelTimedOut,
    ClientOrderIds,
    FollowUp,
    OrderNotFound,
    OrderState,
    OrdersView,
    OrderTracker,
    RequestTimedOut,
    Side,
    VenueStatus,
    VenueUpdate,
    allowed,
    instance_token,
    is_ours,
    transition,
)

MS = 1_000_000
QUERY_AFTER_NS = 6_000 * MS    # recvWindow 5 s + margin
CANCEL_TIMEOUT_NS = 2_000 * MS


def make_tracker() -> OrderTracker:
    return OrderTracker("mm1-", "a", query_after_ns=QUERY_AFTER_NS, cancel_timeout_ns=CANCEL_TIMEOUT_NS)


def sent_order(tracker: OrderTracker, qty_lot: int = 10, now_ns: int = 0) -> str:
    record = tracker.submit("BTCUSDT", Side.BUY, 100, qty_lot, now_ns)
    tracker.mark_sent(record.client_id, now_ns)
    return record.client_id


def update(client_id: str, status: VenueStatus, filled: int = 0, ts_ns: int = 0, px: int = 100) -> VenueUpdate:
    return VenueUpdate(client_id, status, filled, ts_ns, venue_order_id=7, last_px_tick=px if filled else 0)


# ---- ids ----

def test_client_ids_format_is_prefix_instance_seq_and_unique():
    ids = ClientOrderIds("mm1-", "b", next_seq=41)
    assert [ids.next_id(), ids.next_id()] == ["mm1-b41", "mm1-b42"]
    assert ids.parse_seq("mm1-b42") == 42
    assert ids.parse_seq("mm1-c42") is None and ids.parse_seq("mm1-b") is None


def test_client_ids_observe_never_reuses_a_recovered_id():
    ids = ClientOrderIds("mm1-", "b")
    ids.observe("mm1-b900")
    ids.observe("other-b5000")
    assert ids.next_id() == "mm1-b901"


@pytest.mark.parametrize("prefix, instance", [("", "a"), ("mm 1", "a"), ("mm1-", "A1"), ("mm1-", "a1"), ("x" * 17, "a")])
def test_client_ids_bad_prefix_or_instance_raises(prefix: str, instance: str):
    with pytest.raises(ValueError):
        ClientOrderIds(prefix, instance)


def test_client_ids_longer_than_36_raises():
    ids = ClientOrderIds("p" * 16, "abcdef", next_seq=10**14)
    with pytest.raises(ValueError, match="longer than 36"):
        ids.next_id()


def test_instance_token_is_bijective_letters():
    tokens = [instance_token(n) for n in range(26 * 27 + 5)]
    assert tokens[:3] == ["a", "b", "c"] and tokens[25:28] == ["z", "aa", "ab"]
    assert len(set(tokens)) == len(tokens) and all(t.isalpha() for t in tokens)


def test_is_ours_by_prefix_only():
    assert is_ours("mm1-a7", "mm1-")
    assert not is_ours("x-TKT5PX2Fabc", "mm1-")
    assert not is_ours("mm1-a7", "")


# ---- transition table ----

@given(st.sampled_from(OrderState), st.sampled_from(OrderState))
def test_transition_every_unlisted_move_raises(current: OrderState, target: OrderState):
    if target in allowed(current):
        assert transition("mm1-a1", current, target) is target
    else:
        with pytest.raises(IllegalTransitionError, match=f"order mm1-a1: illegal transition {current.value} -> {target.value}"):
            transition("mm1-a1", current, target)


def test_transition_terminal_states_have_no_exit():
    assert TERMINAL == {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED}
    assert all(not allowed(s) for s in TERMINAL)


def test_mark_sent_on_filled_order_raises_naming_order_and_states():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.FILLED, 10), 1)
    with pytest.raises(IllegalTransitionError, match=f"order {cid}: illegal transition filled -> sent"):
        tracker.mark_sent(cid, 2)


# ---- lifecycle ----

def test_tracker_ack_partial_fill_fill_counts_each_lot_once():
    tracker = make_tracker()
    cid = sent_order(tracker)
    assert tracker.apply(update(cid, VenueStatus.NEW), 1).state is OrderState.ACKED
    first = tracker.apply(update(cid, VenueStatus.PARTIALLY_FILLED, 4), 2)
    repeat = tracker.apply(update(cid, VenueStatus.PARTIALLY_FILLED, 4), 3)
    last = tracker.apply(update(cid, VenueStatus.FILLED, 10, px=101), 4)
    assert (first.fill_qty_lot, repeat.applied, last.fill_qty_lot, last.fill_px_tick) == (4, Applied.DUPLICATE, 6, 101)
    assert tracker.get(cid).state is OrderState.FILLED and tracker.get(cid).venue_order_id == 7


def test_tracker_late_ack_after_fill_is_stale():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.FILLED, 10), 1)
    assert tracker.apply(update(cid, VenueStatus.NEW), 2).applied is Applied.STALE


def test_tracker_timeout_goes_unknown_and_resend_keeps_the_client_id():
    tracker = make_tracker()
    cid = sent_order(tracker)
    assert tracker.apply(RequestTimedOut(cid, 1), 1).state is OrderState.UNKNOWN
    resend = tracker.mark_sent(cid, 2)
    assert resend.client_id == cid and tracker.get(cid).state is OrderState.SENT
    assert tracker.apply(update(cid, VenueStatus.NEW), 3).state is OrderState.ACKED
    assert len(tracker.orders) == 1


def test_tracker_unknown_not_found_within_recv_window_is_inconclusive_then_rejected():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(RequestTimedOut(cid, MS), MS)
    assert tracker.due_queries(QUERY_AFTER_NS - 1) == []
    assert tracker.apply(OrderNotFound(cid, 2 * MS), 2 * MS).applied is Applied.INCONCLUSIVE
    assert tracker.due_queries(QUERY_AFTER_NS) == [cid]
    outcome = tracker.apply(OrderNotFound(cid, QUERY_AFTER_NS), QUERY_AFTER_NS)
    assert outcome.state is OrderState.REJECTED and tracker.get(cid).reason == "never reached the venue"


def test_tracker_mark_queried_defers_the_next_query():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(RequestTimedOut(cid, MS), MS)
    tracker.mark_queried(cid, QUERY_AFTER_NS)
    assert tracker.due_queries(QUERY_AFTER_NS + 1) == []
    assert tracker.due_queries(2 * QUERY_AFTER_NS) == [cid]


# ---- cancel ----

def test_cancel_before_sending_is_dropped_locally():
    tracker = make_tracker()
    record = tracker.submit("BTCUSDT", Side.SELL, 100, 1, 0)
    decision, _ = tracker.request_cancel(record.client_id, 1)
    assert decision is CancelDecision.DROPPED and tracker.get(record.client_id).state is OrderState.CANCELLED


def test_cancel_racing_the_ack_is_resent_when_the_ack_arrives():
    tracker = make_tracker()
    cid = sent_order(tracker)
    decision, _ = tracker.request_cancel(cid, 1)
    assert decision is CancelDecision.SEND
    refused = tracker.apply(CancelRejected(cid, 2, "Unknown order sent."), 2)
    assert (refused.state, refused.follow_up) == (OrderState.UNKNOWN, FollowUp.QUERY)
    acked = tracker.apply(update(cid, VenueStatus.NEW, ts_ns=3), 3)
    assert (acked.state, acked.follow_up) == (OrderState.CANCEL_PENDING, FollowUp.SEND_CANCEL)
    assert tracker.apply(update(cid, VenueStatus.CANCELED, ts_ns=4), 4).state is OrderState.CANCELLED


def test_cancel_pending_order_filled_meanwhile_ends_filled():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.NEW), 1)
    tracker.request_cancel(cid, 2)
    assert tracker.apply(update(cid, VenueStatus.FILLED, 10), 3).state is OrderState.FILLED
    assert tracker.request_cancel(cid, 4)[0] is CancelDecision.TOO_LATE


def test_cancel_lost_is_resent_when_a_query_shows_the_order_still_open():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.NEW), 1)
    tracker.request_cancel(cid, 2)
    assert tracker.apply(CancelTimedOut(cid, 3), 3).follow_up is FollowUp.QUERY
    assert tracker.due_queries(2 + CANCEL_TIMEOUT_NS) == [cid]
    reply = tracker.apply(update(cid, VenueStatus.NEW, ts_ns=2 + CANCEL_TIMEOUT_NS), 2 + CANCEL_TIMEOUT_NS)
    assert (reply.state, reply.follow_up) == (OrderState.CANCEL_PENDING, FollowUp.SEND_CANCEL)


def test_fill_after_cancel_confirmation_is_still_counted():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.NEW), 1)
    tracker.request_cancel(cid, 2)
    tracker.apply(update(cid, VenueStatus.CANCELED, 0, 3), 3)  # reports out of order: cancel first
    late = tracker.apply(update(cid, VenueStatus.PARTIALLY_FILLED, 3, 4), 4)
    again = tracker.apply(update(cid, VenueStatus.PARTIALLY_FILLED, 3, 5), 5)
    assert (late.applied, late.fill_qty_lot, late.state) == (Applied.APPLIED, 3, OrderState.CANCELLED)
    assert (again.applied, again.fill_qty_lot) == (Applied.STALE, 0)
    assert tracker.get(cid).filled_qty_lot == 3


def test_replace_cancels_old_and_submits_successor_with_new_id():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.NEW), 1)
    decision, cancel, new = tracker.replace(cid, 99, 5, 2)
    assert decision is CancelDecision.SEND and cancel.client_id == cid
    assert new.client_id != cid and new.replaces == cid and (new.px_tick, new.qty_lot) == (99, 5)
    assert tracker.get(cid).state is OrderState.CANCEL_PENDING and tracker.get(new.client_id).state is OrderState.NEW


def test_replace_of_filled_order_makes_no_successor():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.FILLED, 10), 1)
    assert tracker.replace(cid, 99, 5, 2) == (CancelDecision.TOO_LATE, None, None)


def test_cancel_all_touches_only_open_orders():
    tracker = make_tracker()
    open_id = sent_order(tracker)
    done_id = sent_order(tracker)
    tracker.apply(update(done_id, VenueStatus.FILLED, 10), 1)
    assert [r.client_id for _, r in tracker.cancel_all(2)] == [open_id]


def test_events_for_other_ids_are_classified_not_applied():
    tracker = make_tracker()
    assert tracker.apply(update("x-TKT5PX2Fabc", VenueStatus.NEW), 1).applied is Applied.NOT_OURS
    assert tracker.apply(update("mm1-z5", VenueStatus.NEW), 1).applied is Applied.UNTRACKED


def test_rejected_after_ack_is_contradicted_and_queried():
    tracker = make_tracker()
    cid = sent_order(tracker)
    tracker.apply(update(cid, VenueStatus.NEW), 1)
    outcome = tracker.apply(update(cid, VenueStatus.REJECTED), 2)
    assert (outcome.applied, outcome.follow_up, outcome.state) == (Applied.CONTRADICTED, FollowUp.QUERY, OrderState.ACKED)


def test_replay_of_journaled_records_rebuilds_the_same_orders():
    tracker = make_tracker()
    journal = []
    for i in range(3):
        submitted = tracker.submit("BTCUSDT", Side.BUY, 100 + i, 10, i)
        journal += [submitted, tracker.mark_sent(submitted.client_id, i)]
    events = [update("mm1-a1", VenueStatus.NEW, ts_ns=5), update("mm1-a2", VenueStatus.PARTIALLY_FILLED, 4, 6),
              RequestTimedOut("mm1-a3", 7)]
    for event in events:
        tracker.apply(event, event.ts_ns)
    journal += events
    journal.append(tracker.request_cancel("mm1-a1", 8)[1])
    restored = make_tracker()
    for record in journal:
        restored.replay(record)
    assert restored.orders == tracker.orders
    assert restored.ids.next_id() == "mm1-a4"


# ---- property: random venue behaviour never leaves an order stuck ----

EVENT_KINDS = ["cancel", "ack", "partial", "fill", "venue_cancel", "reject", "expire", "timeout",
               "cancel_timeout", "cancel_rejected", "not_found", "resend", "query"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(EVENT_KINDS), st.integers(0, 3_000 * MS)), max_size=25),
       st.sampled_from([VenueStatus.CANCELED, VenueStatus.FILLED, VenueStatus.EXPIRED]))
def test_random_event_sequences_never_leave_an_order_stuck(steps, final_status):
    tracker = make_tracker()
    cid = sent_order(tracker, qty_lot=10)
    now_ns = 0
    venue_filled = 0
    counted = 0
    for kind, dt_ns in steps:
        now_ns += dt_ns
        order = tracker.get(cid)
        outcome = None
        if kind == "cancel":
            tracker.request_cancel(cid, now_ns)
        elif kind == "resend":
            if order.state is OrderState.UNKNOWN:
                tracker.mark_sent(cid, now_ns)
        elif kind == "query":
            tracker.mark_queried(cid, now_ns)
        else:
            if kind in ("partial", "fill"):
                venue_filled = 10 if kind == "fill" else min(9, venue_filled + 1)
            event = {
                "ack": lambda: update(cid, VenueStatus.NEW, venue_filled, now_ns),
                "partial": lambda: update(cid, VenueStatus.PARTIALLY_FILLED, venue_filled, now_ns),
                "fill": lambda: update(cid, VenueStatus.FILLED, venue_filled, now_ns),
                "venue_cancel": lambda: update(cid, VenueStatus.CANCELED, venue_filled, now_ns),
                "reject": lambda: update(cid, VenueStatus.REJECTED, venue_filled, now_ns),
                "expire": lambda: update(cid, VenueStatus.EXPIRED, venue_filled, now_ns),
                "timeout": lambda: RequestTimedOut(cid, now_ns),
                "cancel_timeout": lambda: CancelTimedOut(cid, now_ns),
                "cancel_rejected": lambda: CancelRejected(cid, now_ns, "Unknown order sent."),
                "not_found": lambda: OrderNotFound(cid, now_ns),
            }[kind]()
            outcome = tracker.apply(event, now_ns)
            counted += outcome.fill_qty_lot
            if outcome.follow_up is FollowUp.SEND_CANCEL:
                assert tracker.get(cid).state is OrderState.CANCEL_PENDING
        order = tracker.get(cid)
        assert 0 <= order.filled_qty_lot <= order.qty_lot and counted == order.filled_qty_lot
        # a wanted cancel is never forgotten: the order never rests quietly once a cancel was asked
        assert not (order.is_cancel_wanted and order.state in RESTING)
        # every open order either rests at the venue or is (or will be) due for a query
        if order.is_open and order.state not in RESTING:
            assert cid in tracker.due_queries(now_ns + QUERY_AFTER_NS + CANCEL_TIMEOUT_NS)
    # the query's answer (the venue's truth) always settles it
    settle_ns = now_ns + QUERY_AFTER_NS
    final_filled = 10 if final_status is VenueStatus.FILLED else venue_filled
    tracker.apply(update(cid, final_status, final_filled, settle_ns), settle_ns)
    assert tracker.get(cid).is_terminal


def test_track_takes_an_upstream_id_as_new_and_never_hands_it_out_again():
    tracker = make_tracker()
    record = tracker.track("mm1-a5", "BTCUSDT", Side.SELL, 101, 3, 0)
    assert record.client_id == "mm1-a5" and tracker.get("mm1-a5").state is OrderState.NEW
    assert tracker.ids.next_id() == "mm1-a6"  # an id of our own pattern moves the counter past it
    tracker.track("quoterX1", "BTCUSDT", Side.BUY, 100, 1, 0)  # another pattern: tracked, counter untouched
    assert tracker.ids.next_id() == "mm1-a7" and tracker.get("quoterX1").state is OrderState.NEW
    with pytest.raises(IllegalTransitionError, match="mm1-a5"):
        tracker.track("mm1-a5", "BTCUSDT", Side.SELL, 101, 3, 0)
    with pytest.raises(ValueError, match="quoterX2"):
        tracker.track("quoterX2", "BTCUSDT", Side.BUY, 0, 1, 0)


def test_view_reads_the_tracker_and_shows_nothing_before_it_is_attached():
    view = OrdersView()
    assert view.open_orders() == [] and view.get("x") is None and view.best_working() == (None, None)
    tracker = make_tracker()
    view.attach(tracker)
    bid, ask = sent_order(tracker), tracker.submit("BTCUSDT", Side.SELL, 105, 1, 0).client_id
    tracker.mark_sent(ask, 0)
    assert view.best_working() == (None, None)  # sent, not confirmed
    tracker.apply(update(bid, VenueStatus.NEW), 0)
    tracker.apply(update(ask, VenueStatus.NEW), 0)
    assert view.best_working() == (100, 105) and view.get(bid) is tracker.get(bid)
    tracker.request_cancel(ask, 0)
    assert view.best_working() == (100, 105)  # the cancel is on its way: the ask still rests
    tracker.apply(update(ask, VenueStatus.CANCELED), 0)
    assert view.best_working() == (100, None) and [o.client_id for o in view.open_orders()] == [bid]
