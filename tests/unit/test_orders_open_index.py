"""The tracker's open-order index (what open_orders, best_working, cancel_all and due_queries scan)
is exactly the open orders among all it keeps, in submission order, through every kind of event."""

import random

from mm.errors import IllegalTransitionError
from mm.orders import (
    CancelRejected,
    OrderNotFound,
    OrderTracker,
    RequestTimedOut,
    Side,
    VenueStatus,
    VenueUpdate,
)

QUERY_AFTER_NS = 1_000


def _open_by_scan(tracker: OrderTracker) -> list:
    return [o for o in tracker.orders.values() if o.is_open]


def test_open_orders_are_the_open_ones_of_all_kept_in_order_after_random_events():
    rng = random.Random(7)
    tracker = OrderTracker("mm1-", "a", query_after_ns=QUERY_AFTER_NS, cancel_timeout_ns=QUERY_AFTER_NS)
    view = tracker.view()
    now = 0
    for _ in range(3000):
        now += rng.randrange(1, 400)
        ids = list(tracker.orders)
        kind = rng.randrange(9)
        if kind == 0 or not ids:
            record = tracker.submit("X", rng.choice((Side.BUY, Side.SELL)), rng.randrange(90, 110), 2, now)
            if rng.random() < 0.9:
                tracker.mark_sent(record.client_id, now)
        elif kind == 1:
            tracker.request_cancel(rng.choice(ids), now)
        elif kind == 2:
            tracker.cancel_all(now)
        elif kind == 3:
            tracker.prune(now, keep_ns=2_000)
        else:
            cid = rng.choice(ids)
            order = tracker.orders[cid]
            status = rng.choice(list(VenueStatus))
            filled = min(order.qty_lot, order.filled_qty_lot + (1 if status is VenueStatus.PARTIALLY_FILLED else 0))
            if status is VenueStatus.FILLED:
                filled = order.qty_lot
            event = rng.choice((VenueUpdate(cid, status, filled, now), RequestTimedOut(cid, now),
                                CancelRejected(cid, now), OrderNotFound(cid, now)))
            try:
                tracker.apply(event, now)
            except IllegalTransitionError:  # not a legal event for this order now: the test's noise
                pass
        assert tracker.open_orders() == _open_by_scan(tracker)
        assert view.open_orders() == _open_by_scan(tracker)
    assert any(o.is_terminal for o in tracker.orders.values()) and tracker.open_orders()
