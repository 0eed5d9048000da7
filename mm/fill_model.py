"""Our orders against a market we only see through L2 depth and trades: the queue-position fill model.

The same model fills the `sim` venue (inside the gateway) and replays. It owns our resting orders,
their place in the queue, the requests still travelling to the venue, and its own copy of the book.
It never changes the market it is fed: the market does not see our orders.

Rules (every method first delivers the requests due by its `ts_ns`, in arrival order):
- A request reaches the venue after the order-entry latency (`latency_ns`, or a delay drawn from
  `latency`: mm.latency_model, then never before a request sent earlier: one connection, in
  order); responses are stamped with the arrival time.
- An order arriving joins the back of the queue at its price: queue ahead = the visible level qty
  then, plus our own earlier orders resting at that price.
- A trade at our price reduces the queue ahead first; the excess fills us (maker).
- A level shrink that the trades since the last depth update do not explain takes the queue model's
  share (mm.queue_models; by default the constant `cancel_ahead_ratio`) of the unexplained shrink
  from ahead of us, the rest from behind (and from ahead once nothing is left behind).
- A trade through our price (a sell below our bid, a buy above our ask) fills us fully at our price.
- Opposite liquidity that appears or grows at a price crossing our resting order (the market moved
  through it without a trade print) trades with us at our price, up to the growth.
- A post-only order that would cross on arrival is rejected ("post-only would cross"); any other
  crossing order takes liquidity at the book's prices (taker fee, consuming our copy of the book)
  and rests its remainder at its price with nothing ahead.
- Client ids are never reused: a submit with an id seen before is rejected ("duplicate client id")
  and the order already holding that id is untouched. Cancel of an unknown or closed id is rejected
  with a reason naming the id. Our own orders never trade with each other.
Fee = the fill's notional (mm.position.notional: px * qty * tick_size * lot_size in quote; for an
inverse contract, contracts * contract_size / price in the base coin) * bps / 1e4 (negative maker
bps is a rebate).
"""

from __future__ import annotations

import heapq

from msgspec import Struct

from mm.latency_model import ConstantLatency, OrderLatency
from mm.position import notional
from mm.queue_models import QueueModel, queue_model


class Accepted(Struct, frozen=True):
    client_id: str
    venue_order_id: str
    side: int
    px_tick: int
    qty_lot: int
    ts_ns: int


class Rejected(Struct, frozen=True):
    client_id: str
    reason: str
    ts_ns: int


class Canceled(Struct, frozen=True):
    client_id: str
    leaves_lot: int
    ts_ns: int


class Filled(Struct, frozen=True):
    client_id: str
    side: int
    px_tick: int
    qty_lot: int
    leaves_lot: int
    fee_quote: float
    is_maker: bool
    ts_ns: int


FillEvent = Accepted | Rejected | Canceled | Filled


class OpenOrder(Struct, frozen=True):
    """A resting order as the venue holds it; ahead_lot is the queue in front of it."""

    client_id: str
    venue_order_id: str
    side: int
    px_tick: int
    qty_lot: int
    leaves_lot: int
    ahead_lot: int
    ts_ns: int


class _Order:
    __slots__ = ("client_id", "venue_order_id", "side", "px", "qty", "leaves", "ahead", "ts_ns")

    def __init__(self, client_id: str, venue_order_id: str, side: int, px: int, qty: int, ts_ns: int) -> None:
        self.client_id = client_id
        self.venue_order_id = venue_order_id
        self.side = side
        self.px = px
        self.qty = qty
        self.leaves = qty
        self.ahead = 0  # lots ahead of us at our price, our own earlier orders included
        self.ts_ns = ts_ns


class _Submit(Struct, frozen=True):
    client_id: str
    side: int
    px_tick: int
    qty_lot: int
    is_post_only: bool


class _Cancel(Struct, frozen=True):
    client_id: str


class _CancelAll(Struct, frozen=True):
    pass


_Request = _Submit | _Cancel | _CancelAll


class FillModel:
    """Queue-position fills for our orders; feed it the market and our requests in time order."""

    def __init__(
        self,
        *,
        latency_ns: int = 0,
        maker_fee_bps: float,
        taker_fee_bps: float,
        cancel_ahead_ratio: float = 0.5,
        tick_size: float,
        lot_size: float,
        queue: QueueModel | None = None,
        latency: OrderLatency | None = None,
        contract_size: float = 0.0,
    ) -> None:
        """`queue`: the queue model (None: `ratio` with cancel_ahead_ratio); `latency`: the delay model
        (None: the constant latency_ns); `contract_size` > 0: an inverse contract (fees in the base coin)."""
        if latency_ns < 0:
            raise ValueError(f"'latency_ns' must be >= 0, was {latency_ns}")
        if not 0.0 <= cancel_ahead_ratio <= 1.0:
            raise ValueError(f"'cancel_ahead_ratio' must be in [0, 1], was {cancel_ahead_ratio}")
        self._latency = latency if latency is not None else ConstantLatency(latency_ns)
        # drawn delays could reorder requests: each waits for the one sent before it. A constant delay
        # keeps the send order by itself (and a caller's clock stepping back must not hold a request)
        self._is_fifo_clamped = not isinstance(self._latency, ConstantLatency)
        self._last_arrival_ns = 0
        self._maker_fee_bps = maker_fee_bps
        self._taker_fee_bps = taker_fee_bps
        self._tick_size = tick_size
        self._lot_size = lot_size
        self._contract_size = contract_size
        self._queue = queue if queue is not None else queue_model("ratio", ratio=cancel_ahead_ratio)
        self._bids: dict[int, int] = {}  # px_tick -> qty_lot, our copy of the venue's book
        self._asks: dict[int, int] = {}
        self._best: dict[int, int | None] = {1: None, -1: None}  # best bid / ask of that copy; None: to find
        self._traded: dict[tuple[int, int], int] = {}  # (maker side, px) -> lots traded since the last depth
        self._orders: dict[str, _Order] = {}  # live, in arrival order
        self._seen_ids: set[str] = set()
        self._requests: list[tuple[int, int, _Request]] = []  # heap of (arrival_ns, seq, request)
        self._seq = 0
        self._next_venue_id = 1

    # ---- market data -----------------------------------------------------------------------

    def on_snapshot(self, ts_ns: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> list[FillEvent]:
        events = self._deliver(ts_ns)
        self._bids = {px: qty for px, qty in bids if qty > 0}
        self._asks = {px: qty for px, qty in asks if qty > 0}
        self._best = {1: None, -1: None}
        self._traded.clear()
        for order in self._orders.values():  # the queue ahead can't exceed what the venue now shows
            book = self._bids if order.side > 0 else self._asks
            ours = self._ours_ahead(order)
            order.ahead = min(order.ahead, ours + book.get(order.px, 0))
        return events

    def on_depth(self, ts_ns: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> list[FillEvent]:
        """Level updates with absolute quantities (0 removes)."""
        events = self._deliver(ts_ns)
        our_levels: set[tuple[int, int]] = set()
        best_buy = best_sell = None  # our best resting bid / ask
        for o in self._orders.values():
            our_levels.add((o.side, o.px))
            if o.side > 0 and (best_buy is None or o.px > best_buy):
                best_buy = o.px
            elif o.side < 0 and (best_sell is None or o.px < best_sell):
                best_sell = o.px
        for side, levels, book in ((1, bids, self._bids), (-1, asks, self._asks)):
            best = self._best[side]
            for px, qty in levels:
                old = book.get(px, 0)
                if qty > 0:
                    book[px] = qty
                    if best is not None and side * (px - best) > 0:
                        best = px
                else:
                    book.pop(px, None)
                    if px == best:
                        best = None
                if qty < old:
                    if (side, px) in our_levels:
                        self._apply_shrink(side, px, old, qty)
                elif qty > old:
                    if side > 0 and best_sell is not None and px >= best_sell:
                        self._match_crossing_growth(ts_ns, -1, px, qty - old, events)
                    elif side < 0 and best_buy is not None and px <= best_buy:
                        self._match_crossing_growth(ts_ns, 1, px, qty - old, events)
            self._best[side] = best
        self._traded.clear()
        return events

    def on_trade(self, ts_ns: int, px_tick: int, qty_lot: int, taker_side: int) -> list[FillEvent]:
        events = self._deliver(ts_ns)
        maker_side = -taker_side
        key = (maker_side, px_tick)
        self._traded[key] = self._traded.get(key, 0) + qty_lot
        for order in list(self._orders.values()):
            if order.side != maker_side:
                continue
            if order.side * (order.px - px_tick) > 0:  # traded through our price
                self._fill(order, order.leaves, order.px, True, ts_ns, events)
            elif order.px == px_tick:
                fill = min(order.leaves, qty_lot - order.ahead)
                order.ahead = max(0, order.ahead - qty_lot)
                if fill > 0:
                    self._fill(order, fill, order.px, True, ts_ns, events)
        return events

    # ---- our requests ----------------------------------------------------------------------

    def submit(
        self, ts_ns: int, client_id: str, side: int, px_tick: int, qty_lot: int, post_only: bool
    ) -> list[FillEvent]:
        """Send a limit order; it reaches the venue after the entry latency."""
        return self._send(ts_ns, _Submit(client_id, side, px_tick, qty_lot, post_only))

    def cancel(self, ts_ns: int, client_id: str) -> list[FillEvent]:
        return self._send(ts_ns, _Cancel(client_id))

    def cancel_all(self, ts_ns: int) -> list[FillEvent]:
        return self._send(ts_ns, _CancelAll())

    def advance(self, ts_ns: int) -> list[FillEvent]:
        """Deliver the requests due by ts_ns."""
        return self._deliver(ts_ns)

    def open_orders(self) -> list[OpenOrder]:
        """Orders resting at the venue, in arrival order (requests in flight are not listed)."""
        return [
            OpenOrder(o.client_id, o.venue_order_id, o.side, o.px, o.qty, o.leaves, o.ahead, o.ts_ns)
            for o in self._orders.values()
        ]

    # ---- internals -------------------------------------------------------------------------

    def _send(self, ts_ns: int, request: _Request) -> list[FillEvent]:
        events = self._deliver(ts_ns)
        self._seq += 1
        delay = self._latency.entry_ns() if type(request) is _Submit else self._latency.cancel_ns()
        arrival_ns = ts_ns + delay
        if self._is_fifo_clamped:
            arrival_ns = self._last_arrival_ns = max(arrival_ns, self._last_arrival_ns)
        heapq.heappush(self._requests, (arrival_ns, self._seq, request))
        if arrival_ns <= ts_ns:  # no delay: it arrives now (nothing else is due: delivered above)
            events.extend(self._deliver(ts_ns))
        return events

    def _deliver(self, ts_ns: int) -> list[FillEvent]:
        events: list[FillEvent] = []
        requests = self._requests
        while requests and requests[0][0] <= ts_ns:
            arrival_ns, _, request = heapq.heappop(requests)
            match request:
                case _Submit():
                    self._arrive_submit(arrival_ns, request, events)
                case _Cancel(client_id=client_id):
                    order = self._orders.get(client_id)
                    if order is None:
                        events.append(Rejected(client_id, f"cancel {client_id!r}: unknown or closed order id", arrival_ns))
                    else:
                        self._close_canceled(order, arrival_ns, events)
                case _CancelAll():
                    for order in list(self._orders.values()):
                        self._close_canceled(order, arrival_ns, events)
        return events

    def _arrive_submit(self, ts_ns: int, request: _Submit, events: list[FillEvent]) -> None:
        client_id, side, px, qty = request.client_id, request.side, request.px_tick, request.qty_lot
        if client_id in self._seen_ids:
            events.append(Rejected(client_id, "duplicate client id", ts_ns))
            return
        self._seen_ids.add(client_id)
        if side not in (1, -1) or px <= 0 or qty <= 0:
            events.append(Rejected(client_id, f"invalid order: side {side}, px_tick {px}, qty_lot {qty}", ts_ns))
            return
        opposite = self._asks if side > 0 else self._bids
        best = self._best_of(-side)
        crossing = [] if best is None or side * (px - best) < 0 else sorted(
            (p for p in opposite if side * (px - p) >= 0), key=lambda p: side * p)
        if crossing and request.is_post_only:
            events.append(Rejected(client_id, "post-only would cross", ts_ns))
            return
        order = _Order(client_id, str(self._next_venue_id), side, px, qty, ts_ns)
        self._next_venue_id += 1
        events.append(Accepted(client_id, order.venue_order_id, side, px, qty, ts_ns))
        for level_px in crossing:  # take liquidity best price first
            take = min(order.leaves, opposite[level_px])
            if opposite[level_px] == take:
                del opposite[level_px]
                self._best[-side] = None
            else:
                opposite[level_px] -= take
            self._fill(order, take, level_px, False, ts_ns, events)
            if order.leaves == 0:
                return
        own = self._bids if side > 0 else self._asks
        self._orders[client_id] = order
        order.ahead = own.get(px, 0) + self._ours_ahead(order)

    def _best_of(self, side: int) -> int | None:
        """Best price of our copy of the venue's book on `side` (+1 bids, -1 asks); None if empty."""
        best = self._best[side]
        if best is None:
            book = self._bids if side > 0 else self._asks
            if book:
                best = self._best[side] = max(book) if side > 0 else min(book)
        return best

    def _ours_ahead(self, order: _Order) -> int:
        """Leaves of our orders resting at the same side and price that arrived before `order`."""
        total = 0
        for other in self._orders.values():
            if other is order:
                break
            if other.side == order.side and other.px == order.px:
                total += other.leaves
        return total

    def _apply_shrink(self, side: int, px: int, old: int, new: int) -> None:
        unexplained = old - new - self._traded.get((side, px), 0)
        for order in self._orders.values():
            if order.side != side or order.px != px:
                continue
            ours = self._ours_ahead(order)
            market_ahead = order.ahead - ours
            if unexplained > 0:
                behind = max(0, old - market_ahead)
                from_ahead = round(self._queue.share_ahead(market_ahead, behind) * unexplained)
                from_ahead += max(0, unexplained - from_ahead - behind)
                market_ahead -= min(market_ahead, from_ahead)
            order.ahead = ours + min(market_ahead, new)

    def _match_crossing_growth(self, ts_ns: int, side: int, px: int, growth: int, events: list[FillEvent]) -> None:
        """Opposite liquidity `growth` new at `px`; our `side` orders it crosses trade with it, best first."""
        crossed = [o for o in self._orders.values() if o.side == side and side * (o.px - px) >= 0]
        crossed.sort(key=lambda o: -side * o.px)  # stable: equal prices keep arrival order
        for order in crossed:
            if growth <= 0:
                return
            fill = min(order.leaves, growth)
            growth -= fill
            self._fill(order, fill, order.px, True, ts_ns, events)

    def _fill(self, order: _Order, qty: int, px: int, is_maker: bool, ts_ns: int, events: list[FillEvent]) -> None:
        order.leaves -= qty
        bps = self._maker_fee_bps if is_maker else self._taker_fee_bps
        fee_quote = notional(px, qty, self._tick_size, self._lot_size, self._contract_size) * bps / 1e4
        events.append(Filled(order.client_id, order.side, px, qty, order.leaves, fee_quote, is_maker, ts_ns))
        if order.leaves == 0:
            self._remove(order)

    def _close_canceled(self, order: _Order, ts_ns: int, events: list[FillEvent]) -> None:
        events.append(Canceled(order.client_id, order.leaves, ts_ns))
        self._remove(order)

    def _remove(self, order: _Order) -> None:
        """Drop a closed order; our later orders at its price move up by what it still held."""
        if order.client_id not in self._orders:
            return
        is_later = False
        for other in self._orders.values():
            if other is order:
                is_later = True
            elif is_later and other.side == order.side and other.px == order.px:
                other.ahead = max(0, other.ahead - order.leaves)
        del self._orders[order.client_id]
