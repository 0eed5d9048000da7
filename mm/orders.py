"""Our orders at one venue: the order state machine, client order ids, and the tracker that applies
venue events to them and says what the gateway must do next.

One transition table (`_TRANSITIONS`) lists every legal move; `transition` raises on anything else.
Venue events are outside input, so the tracker never raises on them: an event that contradicts what
we know, repeats, or arrives late becomes an `Applied` outcome the shell counts and logs. Fills are
taken from the venue's cumulative filled quantity, so a repeated or reordered report never counts a
fill twice and a late fill (after a cancel) is still counted.

A timeout is not a failure: a new-order request that timed out is UNKNOWN until a query by client
order id (or the user stream) settles it; the query is due once the venue can no longer accept the
request (`query_after_ns`, at least the recvWindow), so "not found" then means it never will exist.
A cancel that races the ack is sent by client id at once; if the venue answers "unknown order"
(-2011) the order goes UNKNOWN with `is_cancel_wanted`, and the ack or the query that settles it
re-issues the cancel (`FollowUp.SEND_CANCEL`), so it is never left stuck.

Client order ids are `<prefix><instance><seq>`: `prefix` names the pipeline (`is_ours` tests it:
cancel-all and the stop path touch only ids carrying it), `instance` is letters only (one per start,
`instance_token(boot)`) and `seq` a decimal counter, so ids never repeat across restarts and the
trailing digits are always the seq. A resend after a timeout reuses the same id (idempotent: a
second copy is refused by the venue as "Duplicate order sent.").
"""

from __future__ import annotations

import enum
import re

import msgspec

from mm.errors import IllegalTransitionError


class OrderState(enum.Enum):
    NEW = "new"                            # created here, not yet sent
    SENT = "sent"                          # request on the wire, no answer yet
    ACKED = "acked"                        # resting at the venue, nothing filled
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_PENDING = "cancel_pending"      # cancel sent, not yet confirmed
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"                    # a request timed out or a cancel was refused: query it

    # A member is its own only equal, so the identity hash (a C slot) serves; Enum's own __hash__ is
    # a Python call (hash of the name) on every set or dict lookup: ~32 a turn in the sim gateway.
    __hash__ = object.__hash__


S = OrderState
_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.NEW: frozenset({S.SENT, S.CANCELLED, S.REJECTED}),  # cancelled before sending; refused locally
    S.SENT: frozenset({S.ACKED, S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELLED,
                       S.REJECTED, S.EXPIRED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.SENT, S.ACKED, S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING,
                          S.CANCELLED, S.REJECTED, S.EXPIRED}),
    S.ACKED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELLED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELLED,
                                   S.EXPIRED}),
    S.CANCEL_PENDING: frozenset({S.CANCELLED, S.FILLED, S.EXPIRED, S.REJECTED, S.UNKNOWN}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}
del S

TERMINAL: frozenset[OrderState] = frozenset(s for s, targets in _TRANSITIONS.items() if not targets)
RESTING: frozenset[OrderState] = frozenset({OrderState.ACKED, OrderState.PARTIALLY_FILLED})
_UNACKED: frozenset[OrderState] = frozenset({OrderState.NEW, OrderState.SENT, OrderState.UNKNOWN})


def allowed(current: OrderState) -> frozenset[OrderState]:
    return _TRANSITIONS[current]


def transition(client_id: str, current: OrderState, target: OrderState) -> OrderState:
    """Return `target` if the table lists current -> target, else raise naming the order."""
    if target not in _TRANSITIONS[current]:
        raise IllegalTransitionError(
            f"order {client_id}: illegal transition {current.value} -> {target.value}")
    return target


# ---- client order ids -------------------------------------------------------------------------

MAX_CLIENT_ID_LEN = 36  # Binance spot (FIX charset) and USD-M both allow 36
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,16}")
_INSTANCE = re.compile(r"[a-z]{1,6}")


def instance_token(boot: int) -> str:
    """Letters-only token for start number `boot` >= 0: a, b, ..., z, aa, ab, ... (bijective base 26)."""
    if boot < 0:
        raise ValueError(f"'boot' must be >= 0, was {boot}")
    letters = []
    n = boot + 1
    while n:
        n, r = divmod(n - 1, 26)
        letters.append(chr(ord("a") + r))
    return "".join(reversed(letters))


def is_ours(client_id: str, prefix: str) -> bool:
    """True for ids this pipeline made; an empty prefix claims nothing."""
    return bool(prefix) and client_id.startswith(prefix)


class ClientOrderIds:
    """Makes `<prefix><instance><seq>` ids; `seq` only grows."""

    __slots__ = ("prefix", "instance", "next_seq", "_head")

    def __init__(self, prefix: str, instance: str, next_seq: int = 1) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"'prefix' must match [A-Za-z0-9_-]{{1,16}}, was {prefix!r}")
        if not _INSTANCE.fullmatch(instance):
            raise ValueError(f"'instance' must be 1-6 lowercase letters, was {instance!r}")
        if next_seq < 0:
            raise ValueError(f"'next_seq' must be >= 0, was {next_seq}")
        self.prefix = prefix
        self.instance = instance
        self.next_seq = next_seq
        self._head = prefix + instance

    def next_id(self) -> str:
        client_id = f"{self._head}{self.next_seq}"
        if len(client_id) > MAX_CLIENT_ID_LEN:
            raise ValueError(f"client order id {client_id!r} is longer than {MAX_CLIENT_ID_LEN}")
        self.next_seq += 1
        return client_id

    def parse_seq(self, client_id: str) -> int | None:
        """The seq of an id made by this prefix and instance, else None."""
        if not client_id.startswith(self._head):
            return None
        tail = client_id[len(self._head):]
        return int(tail) if tail.isdigit() and tail.isascii() else None

    def observe(self, client_id: str) -> None:
        """Never hand out an id already used (recovery from the journal)."""
        seq = self.parse_seq(client_id)
        if seq is not None and seq >= self.next_seq:
            self.next_seq = seq + 1


# ---- records: the tracker's inputs, journaled as they are -----------------------------------


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"


class TradeSide(enum.IntEnum):
    """A side as the pipeline's messages carry it: +1 buy (bid), -1 sell (ask); a decoded message
    with any other value is refused."""

    BUY = 1
    SELL = -1


class VenueStatus(enum.Enum):
    """Binance order statuses (`X`); EXPIRED_IN_MATCH (STP) maps to EXPIRED."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    __hash__ = object.__hash__  # as OrderState's: _STATUS_TARGET's lookup on every venue update


class OrderRecord(msgspec.Struct, frozen=True, array_like=True, tag_field="t", tag=str.lower):
    """Base of the order records: what the gateway did or the venue said about one client id."""


class OrderSubmitted(OrderRecord):
    client_id: str
    symbol: str
    side: Side
    px_tick: int
    qty_lot: int
    ts_ns: int
    replaces: str = ""  # client id of the order this one replaces, "" if none


class OrderSent(OrderRecord):
    client_id: str
    ts_ns: int           # when the request left; a resend after a timeout sends this record again


class CancelRequested(OrderRecord):
    client_id: str
    ts_ns: int


class VenueUpdate(OrderRecord):
    """An order report: REST reply, query reply or user-stream executionReport, all alike."""

    client_id: str
    status: VenueStatus
    filled_qty_lot: int        # cumulative (`z`)
    ts_ns: int
    venue_order_id: int = -1
    last_px_tick: int = 0      # price of the latest fill (`L`), 0 if none
    reason: str = ""


class RequestTimedOut(OrderRecord):
    """The new-order request got no answer (client timeout, 5xx, -1007): outcome unknown."""

    client_id: str
    ts_ns: int


class CancelTimedOut(OrderRecord):
    client_id: str
    ts_ns: int


class CancelRejected(OrderRecord):
    """The venue refused the cancel (-2011 "Unknown order sent."): the order is not open there now."""

    client_id: str
    ts_ns: int
    reason: str = ""


class OrderNotFound(OrderRecord):
    """A query by client id found nothing (-2013): the order never reached the venue."""

    client_id: str
    ts_ns: int


VenueEvent = VenueUpdate | RequestTimedOut | CancelTimedOut | CancelRejected | OrderNotFound
OrderCommand = OrderSubmitted | OrderSent | CancelRequested


# ---- the order and the outcomes -----------------------------------------------------------


class Order(msgspec.Struct, kw_only=True):
    client_id: str
    symbol: str
    side: Side
    px_tick: int
    qty_lot: int
    state: OrderState = OrderState.NEW
    filled_qty_lot: int = 0
    venue_order_id: int = -1
    created_ns: int = 0
    sent_ns: int = 0            # last time the new-order request left
    cancel_sent_ns: int = 0     # last time a cancel left
    queried_ns: int = 0         # last time a query by client id left
    updated_ns: int = 0
    is_acked: bool = False      # the venue has confirmed it exists
    is_cancel_wanted: bool = False
    replaces: str = ""
    reason: str = ""

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def is_open(self) -> bool:
        return self.state not in TERMINAL

    @property
    def leaves_qty_lot(self) -> int:
        return 0 if self.state in TERMINAL else self.qty_lot - self.filled_qty_lot


class Applied(enum.Enum):
    APPLIED = "applied"              # the event moved the order or added a fill
    DUPLICATE = "duplicate"          # nothing new (a repeated report)
    STALE = "stale"                  # the order already moved past what the event says
    CONTRADICTED = "contradicted"    # the venue says something our history rules out: query it
    NOT_OURS = "not_ours"            # the client id lacks our prefix: never touch it
    UNTRACKED = "untracked"          # ours by prefix, not in the tracker (an earlier run): adopt or cancel
    INCONCLUSIVE = "inconclusive"    # settles nothing yet (not found while the request may still land)


class FollowUp(enum.Enum):
    NONE = "none"
    SEND_CANCEL = "send_cancel"      # a wanted cancel can go now (the order turned out to exist)
    QUERY = "query"                  # ask the venue by client id


class Outcome(msgspec.Struct, frozen=True):
    applied: Applied
    client_id: str
    state: OrderState | None = None          # after the event; None when the order is not tracked
    previous: OrderState | None = None
    fill_qty_lot: int = 0                    # new filled quantity this event added
    fill_px_tick: int = 0
    follow_up: FollowUp = FollowUp.NONE


class CancelDecision(enum.Enum):
    SEND = "send"                    # send the cancel (by client id); order is CANCEL_PENDING
    DROPPED = "dropped"              # never sent: cancelled locally, nothing to send
    ALREADY_PENDING = "already_pending"
    TOO_LATE = "too_late"            # already terminal
    NOT_FOUND = "not_found"          # not a tracked order


_STATUS_TARGET = {
    VenueStatus.NEW: OrderState.ACKED,
    VenueStatus.PARTIALLY_FILLED: OrderState.PARTIALLY_FILLED,
    VenueStatus.FILLED: OrderState.FILLED,
    VenueStatus.CANCELED: OrderState.CANCELLED,
    VenueStatus.REJECTED: OrderState.REJECTED,
    VenueStatus.EXPIRED: OrderState.EXPIRED,
}


class OrderTracker:
    """Our orders at one venue, by client id. Commands return the record to journal; `apply` takes a
    venue event (journal it too) and returns an Outcome; `replay` rebuilds the tracker from both."""

    def __init__(self, prefix: str, instance: str, *, query_after_ns: int, cancel_timeout_ns: int,
                 next_seq: int = 1) -> None:
        if query_after_ns <= 0 or cancel_timeout_ns <= 0:
            raise ValueError(f"'query_after_ns' and 'cancel_timeout_ns' must be > 0, "
                             f"were {query_after_ns}, {cancel_timeout_ns}")
        self.ids = ClientOrderIds(prefix, instance, next_seq)
        self.prefix = prefix
        self.query_after_ns = query_after_ns
        self.cancel_timeout_ns = cancel_timeout_ns
        self.orders: dict[str, Order] = {}
        # the orders not yet terminal, in submission order (a terminal order never reopens): what the
        # queries scan, not every closed order kept until `prune` (at 1 kHz, tens of thousands)
        self._open: dict[str, Order] = {}

    # -- commands (ours) --

    def submit(self, symbol: str, side: Side, px_tick: int, qty_lot: int, now_ns: int,
               replaces: str = "") -> OrderSubmitted:
        if qty_lot <= 0 or px_tick <= 0:
            raise ValueError(f"order {symbol}: px_tick and qty_lot must be > 0, were {px_tick}, {qty_lot}")
        record = OrderSubmitted(self.ids.next_id(), symbol, side, px_tick, qty_lot, now_ns, replaces)
        self._on_submitted(record)
        return record

    def track(self, client_id: str, symbol: str, side: Side, px_tick: int, qty_lot: int, now_ns: int,
              replaces: str = "") -> OrderSubmitted:
        """Submit an order whose client id was made upstream (the sim venue takes the pipeline's ids
        as the quoter and risk made them); an id already tracked raises, as a repeated submit does."""
        if qty_lot <= 0 or px_tick <= 0:
            raise ValueError(f"order {client_id}: px_tick and qty_lot must be > 0, were {px_tick}, {qty_lot}")
        record = OrderSubmitted(client_id, symbol, side, px_tick, qty_lot, now_ns, replaces)
        self.ids.observe(client_id)
        self._on_submitted(record)
        return record

    def mark_sent(self, client_id: str, now_ns: int) -> OrderSent:
        """The new-order request leaves now (first send, or a resend with the same id after UNKNOWN)."""
        record = OrderSent(client_id, now_ns)
        self._on_sent(record)
        return record

    def request_cancel(self, client_id: str, now_ns: int) -> tuple[CancelDecision, CancelRequested | None]:
        order = self.orders.get(client_id)
        if order is None:
            return CancelDecision.NOT_FOUND, None
        if order.state in TERMINAL:
            return CancelDecision.TOO_LATE, None
        if order.state is OrderState.CANCEL_PENDING:
            return CancelDecision.ALREADY_PENDING, None
        record = CancelRequested(client_id, now_ns)
        return self._on_cancel_requested(record), record

    def replace(self, client_id: str, px_tick: int, qty_lot: int, now_ns: int
                ) -> tuple[CancelDecision, CancelRequested | None, OrderSubmitted | None]:
        """Cancel/replace: cancel `client_id` and submit its successor (a new client id). The
        successor is made only while the old order could still be cancelled; when the old one is
        already terminal (filled, cancelled) the caller decides afresh. At the venue this is one
        `order/cancelReplace` when the decision is SEND, a plain new order when DROPPED."""
        decision, cancel = self.request_cancel(client_id, now_ns)
        if decision in (CancelDecision.TOO_LATE, CancelDecision.NOT_FOUND):
            return decision, cancel, None
        old = self.orders[client_id]
        return decision, cancel, self.submit(old.symbol, old.side, px_tick, qty_lot, now_ns, replaces=client_id)

    def cancel_all(self, now_ns: int) -> list[tuple[CancelDecision, CancelRequested]]:
        """Cancel every open order of ours; returns what to journal and which cancels to send."""
        result = []
        for client_id in list(self._open):
            decision, record = self.request_cancel(client_id, now_ns)
            if record is not None:
                result.append((decision, record))
        return result

    # -- venue events --

    def apply(self, event: VenueEvent, now_ns: int) -> Outcome:
        client_id = event.client_id
        order = self.orders.get(client_id)
        if order is None:
            kind = Applied.UNTRACKED if is_ours(client_id, self.prefix) else Applied.NOT_OURS
            return Outcome(kind, client_id)
        previous = order.state
        match event:
            case VenueUpdate():
                outcome = self._on_update(order, event)
            case RequestTimedOut():
                outcome = self._on_request_timeout(order)
            case CancelTimedOut():
                outcome = (Outcome(Applied.APPLIED, client_id, order.state, previous, follow_up=FollowUp.QUERY)
                           if order.state is OrderState.CANCEL_PENDING
                           else Outcome(Applied.STALE, client_id, order.state, previous))
            case CancelRejected():
                outcome = self._on_cancel_rejected(order, event)
            case OrderNotFound():
                outcome = self._on_not_found(order, event)
            case _:
                raise TypeError(f"order tracker: not a venue event: {type(event).__name__}")
        order.updated_ns = now_ns
        return outcome

    def replay(self, record: OrderRecord) -> None:
        """Apply one journaled record (command or venue event) during recovery."""
        match record:
            case OrderSubmitted():
                self.ids.observe(record.client_id)
                self._on_submitted(record)
            case OrderSent():
                self._on_sent(record)
            case CancelRequested():
                if record.client_id in self.orders and self.orders[record.client_id].is_open:
                    self._on_cancel_requested(record)
            case _:
                self.apply(record, record.ts_ns)

    # -- queries --

    def view(self) -> OrdersView:
        return OrdersView(self)

    def get(self, client_id: str) -> Order | None:
        return self.orders.get(client_id)

    def open_orders(self) -> list[Order]:
        return list(self._open.values())  # one C-level copy: safe from another thread than the writer's

    def due_queries(self, now_ns: int) -> list[str]:
        """Orders whose fate must be asked for now: UNKNOWN once the venue can no longer accept the
        request, SENT with no answer past the same bound, CANCEL_PENDING past the cancel timeout."""
        due = []
        for o in list(self._open.values()):
            if o.state in (OrderState.UNKNOWN, OrderState.SENT):
                if now_ns - max(o.sent_ns, o.queried_ns) >= self.query_after_ns:
                    due.append(o.client_id)
            elif o.state is OrderState.CANCEL_PENDING:
                if now_ns - max(o.cancel_sent_ns, o.queried_ns) >= self.cancel_timeout_ns:
                    due.append(o.client_id)
        return due

    def mark_queried(self, client_id: str, now_ns: int) -> None:
        """A query by client id left now: not due again for another interval."""
        order = self.orders.get(client_id)
        if order is not None:
            order.queried_ns = now_ns

    def prune(self, now_ns: int, keep_ns: int) -> int:
        """Forget terminal orders last updated more than keep_ns ago; returns how many."""
        old = [cid for cid, o in self.orders.items() if o.is_terminal and now_ns - o.updated_ns > keep_ns]
        for cid in old:
            del self.orders[cid]
        return len(old)

    # -- internals --

    def _move(self, order: Order, target: OrderState) -> None:
        if target not in _TRANSITIONS[order.state]:  # transition(), inlined: every order event moves one
            transition(order.client_id, order.state, target)  # raises
        order.state = target
        if target in TERMINAL:
            self._open.pop(order.client_id, None)

    def _on_submitted(self, record: OrderSubmitted) -> None:
        if record.client_id in self.orders:
            raise IllegalTransitionError(f"order {record.client_id}: submitted twice")
        self.orders[record.client_id] = self._open[record.client_id] = Order(
            client_id=record.client_id, symbol=record.symbol, side=record.side, px_tick=record.px_tick,
            qty_lot=record.qty_lot, created_ns=record.ts_ns, updated_ns=record.ts_ns, replaces=record.replaces)

    def _on_sent(self, record: OrderSent) -> None:
        order = self._require(record.client_id)
        self._move(order, OrderState.SENT)
        order.sent_ns = order.updated_ns = record.ts_ns

    def _on_cancel_requested(self, record: CancelRequested) -> CancelDecision:
        order = self._require(record.client_id)
        order.is_cancel_wanted = True
        order.updated_ns = record.ts_ns
        if order.state is OrderState.NEW:
            self._move(order, OrderState.CANCELLED)
            order.reason = "cancelled before sending"
            return CancelDecision.DROPPED
        self._move(order, OrderState.CANCEL_PENDING)
        order.cancel_sent_ns = record.ts_ns
        return CancelDecision.SEND

    def _require(self, client_id: str) -> Order:
        order = self.orders.get(client_id)
        if order is None:
            raise IllegalTransitionError(f"order {client_id}: not tracked")
        return order

    def _on_update(self, order: Order, event: VenueUpdate) -> Outcome:
        previous = order.state
        if event.venue_order_id >= 0:
            order.venue_order_id = event.venue_order_id
        fill = 0
        if event.filled_qty_lot > order.filled_qty_lot:
            fill = min(event.filled_qty_lot, order.qty_lot) - order.filled_qty_lot
            order.filled_qty_lot += fill
        target = _STATUS_TARGET[event.status]
        if target in (OrderState.ACKED, OrderState.PARTIALLY_FILLED, OrderState.FILLED):
            order.is_acked = True
        if target is OrderState.PARTIALLY_FILLED and order.filled_qty_lot >= order.qty_lot:
            target = OrderState.FILLED
        if target is OrderState.REJECTED or event.reason:
            order.reason = event.reason or order.reason
        follow_up = FollowUp.NONE
        state = order.state
        if state is OrderState.NEW:  # the venue knows it, so it was sent
            self._move(order, OrderState.SENT)
            state = OrderState.SENT
        if state in TERMINAL:
            kind = Applied.APPLIED if fill else (Applied.DUPLICATE if target is state else Applied.STALE)
            return Outcome(kind, order.client_id, state, previous, fill, event.last_px_tick)
        if target in RESTING:
            if state is OrderState.CANCEL_PENDING:
                kind = Applied.APPLIED if fill else Applied.DUPLICATE
                if event.ts_ns - order.cancel_sent_ns >= self.cancel_timeout_ns:
                    order.cancel_sent_ns = event.ts_ns  # still open long after the cancel: it was lost
                    follow_up = FollowUp.SEND_CANCEL
                return Outcome(kind, order.client_id, state, previous, fill, event.last_px_tick, follow_up)
            if order.is_cancel_wanted and state in (OrderState.SENT, OrderState.UNKNOWN):
                target = OrderState.CANCEL_PENDING  # the cancel that raced the ack goes now
                follow_up = FollowUp.SEND_CANCEL
            elif target is state and target is OrderState.ACKED:
                return Outcome(Applied.DUPLICATE, order.client_id, state, previous)
            elif target is OrderState.ACKED and state is OrderState.PARTIALLY_FILLED:
                return Outcome(Applied.STALE, order.client_id, state, previous)
            if target is OrderState.PARTIALLY_FILLED and state is OrderState.PARTIALLY_FILLED and not fill:
                return Outcome(Applied.DUPLICATE, order.client_id, state, previous)
        if target is OrderState.REJECTED and order.is_acked:
            return Outcome(Applied.CONTRADICTED, order.client_id, state, previous, fill,
                           event.last_px_tick, FollowUp.QUERY)
        self._move(order, target)
        if follow_up is FollowUp.SEND_CANCEL:
            order.cancel_sent_ns = event.ts_ns
        return Outcome(Applied.APPLIED, order.client_id, order.state, previous, fill, event.last_px_tick, follow_up)

    def _on_request_timeout(self, order: Order) -> Outcome:
        previous = order.state
        if previous is OrderState.SENT:
            self._move(order, OrderState.UNKNOWN)
            return Outcome(Applied.APPLIED, order.client_id, order.state, previous)
        return Outcome(Applied.STALE, order.client_id, previous, previous)

    def _on_cancel_rejected(self, order: Order, event: CancelRejected) -> Outcome:
        previous = order.state
        if previous is not OrderState.CANCEL_PENDING:
            return Outcome(Applied.STALE, order.client_id, previous, previous)
        # Not open at the venue now: it raced ahead of the order (not yet acked), or the order has
        # already filled or been cancelled (reports on the way). The query settles which.
        order.reason = event.reason or order.reason
        self._move(order, OrderState.UNKNOWN)
        return Outcome(Applied.APPLIED, order.client_id, order.state, previous, follow_up=FollowUp.QUERY)

    def _on_not_found(self, order: Order, event: OrderNotFound) -> Outcome:
        previous = order.state
        if previous in TERMINAL or previous is OrderState.NEW:
            return Outcome(Applied.STALE, order.client_id, previous, previous)
        if not order.is_acked and event.ts_ns - order.sent_ns < self.query_after_ns:
            # the request may still reach the venue (within recvWindow): ask again when due
            return Outcome(Applied.INCONCLUSIVE, order.client_id, previous, previous)
        if order.is_acked:  # it existed: gone from the venue's history without a final report
            order.reason = "not found at venue after ack"
            self._move(order, OrderState.EXPIRED)
        else:
            order.reason = "never reached the venue"
            self._move(order, OrderState.REJECTED)
        return Outcome(Applied.APPLIED, order.client_id, order.state, previous)


class OrdersView:
    """What a reader of our orders may see (the gateway's quote log, the shells' venue state): the
    tracker's orders, never its commands. Safe from another thread than the tracker's writer: each
    read takes one C-level copy of the orders first. Unattached (a live venue not connected yet),
    it shows none."""

    __slots__ = ("_tracker",)

    def __init__(self, tracker: OrderTracker | None = None) -> None:
        self._tracker = tracker

    def attach(self, tracker: OrderTracker) -> None:
        self._tracker = tracker

    def get(self, client_id: str) -> Order | None:
        return None if self._tracker is None else self._tracker.orders.get(client_id)

    def open_orders(self) -> list[Order]:
        return [] if self._tracker is None else self._tracker.open_orders()

    def best_working(self) -> tuple[int | None, int | None]:
        """Our best bid and ask among orders the venue has confirmed and not yet closed (a cancel on
        its way still rests there); None: no such order on that side."""
        bid: int | None = None
        ask: int | None = None
        if self._tracker is None:
            return bid, ask
        for o in self._tracker.open_orders():
            if not o.is_acked:
                continue
            if o.side is Side.BUY:
                bid = o.px_tick if bid is None or o.px_tick > bid else bid
            else:
                ask = o.px_tick if ask is None or o.px_tick < ask else ask
        return bid, ask
