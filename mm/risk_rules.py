"""Risk's pre-trade checks, its trading state and its dependency policy: pure rules.

`check_order` answers one place-order command with None (approved) or the first Reject reason.
Cancels are always allowed and have no check. Side is +1 buy / -1 sell; prices int ticks,
sizes int lots, time `*_ns` handed in by the caller.
"""

from __future__ import annotations

import collections
import enum
import math

import msgspec

from mm.config import RiskConfig

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000

# Stages whose death halts trading (DESIGN.md heartbeats): without the quoter nobody manages our
# quotes, without the book we price blind, without the gateway we cannot cancel.
HALT_ON_DEAD_PEERS: frozenset[str] = frozenset({"quoter", "book", "gateway"})


class TradingState(enum.Enum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that shrink |position| pass
    HALTED = "halted"  # nothing passes until an operator resumes


class Reject(enum.Enum):
    MAX_ORDER_SIZE = "max_order_size"
    MAX_NOTIONAL = "max_notional"
    MAX_POSITION = "max_position"
    PRICE_BAND = "price_band"
    ORDER_RATE = "order_rate"
    STALE_BOOK = "stale_book"
    STALE_SIGNAL = "stale_signal"
    SELF_TRADE = "self_trade"
    HALTED = "halted"
    PAUSED = "paused"
    REDUCE_ONLY = "reduce_only"
    PEER_DEAD = "peer_dead"


class OrderCheck(msgspec.Struct, frozen=True):
    side: int  # +1 buy / -1 sell
    px_tick: int
    qty_lot: int


class Exposure(msgspec.Struct, frozen=True):
    """What we hold and have working at the venue (working includes orders whose cancel is pending)."""

    position_lot: int
    open_buy_lot: int
    open_sell_lot: int
    best_own_bid_tick: int | None = None  # our highest working buy, None if none
    best_own_ask_tick: int | None = None  # our lowest working sell, None if none


class MarketView(msgspec.Struct, frozen=True):
    mid_px_tick: float
    book_ts_ns: int  # when the book we price against was received
    signal_ts_ns: int  # when the prediction in force was made


class RateWindow:
    """Timestamps of recent orders over a sliding 1 s window (the order-rate limit)."""

    def __init__(self) -> None:
        self._sent_ns: collections.deque[int] = collections.deque()

    def _evict(self, now_ns: int) -> None:
        horizon_ns = now_ns - _NS_PER_S
        sent_ns = self._sent_ns
        while sent_ns and sent_ns[0] <= horizon_ns:
            sent_ns.popleft()

    def count(self, now_ns: int) -> int:
        """Orders recorded in (now - 1 s, now]."""
        self._evict(now_ns)
        return len(self._sent_ns)

    def allow(self, now_ns: int, max_per_s: float) -> bool:
        """True when one more order now keeps the count over the last second <= max_per_s."""
        return self.count(now_ns) + 1 <= max_per_s

    def record(self, now_ns: int) -> None:
        self._sent_ns.append(now_ns)


def _is_reducing(order: OrderCheck, exposure: Exposure) -> bool:
    """The order, with what is already working on its side, shrinks |position| without flipping it."""
    if order.side > 0:
        return exposure.position_lot < 0 and exposure.open_buy_lot + order.qty_lot <= -exposure.position_lot
    return exposure.position_lot > 0 and exposure.open_sell_lot + order.qty_lot <= exposure.position_lot


def check_order(
    limits: RiskConfig,
    order: OrderCheck,
    exposure: Exposure,
    market: MarketView,
    *,
    tick_size: float,
    lot_size: float,
    now_ns: int,
    state: TradingState,
    paused: bool,
    peers_alive: bool,
    recent_orders: RateWindow,
) -> Reject | None:
    """None if `order` may go to the venue, else the first failed check in this order:
    halted, paused, peer dead, stale book, stale signal, reduce-only, order size, notional,
    position, price band, self-trade, order rate.

    Position: a buy fails if position + open buys + qty > max_position_lot, a sell if
    position - open sells - qty < -max_position_lot (an order on the other side only reduces).
    Notional = px * qty * tick_size * lot_size (quote currency). Band: |px - mid| / mid in bps.
    Reads `recent_orders` only: the caller records an approved order there when it sends it.
    Raises ValueError on a side other than +1 / -1 or qty <= 0 (the quoter never makes one).
    """
    if order.side != 1 and order.side != -1:
        raise ValueError(f"order side must be +1 or -1, was {order.side}")
    if order.qty_lot <= 0:
        raise ValueError(f"order qty_lot must be > 0, was {order.qty_lot}")

    if state is TradingState.HALTED:
        return Reject.HALTED
    if paused:
        return Reject.PAUSED
    if not peers_alive:
        return Reject.PEER_DEAD
    if now_ns - market.book_ts_ns > limits.max_book_age_ms * _NS_PER_MS:
        return Reject.STALE_BOOK
    if now_ns - market.signal_ts_ns > limits.max_signal_age_ms * _NS_PER_MS:
        return Reject.STALE_SIGNAL
    if state is TradingState.REDUCING and not _is_reducing(order, exposure):
        return Reject.REDUCE_ONLY

    if order.qty_lot > limits.max_order_lot:
        return Reject.MAX_ORDER_SIZE
    if not (order.px_tick * order.qty_lot * tick_size * lot_size <= limits.max_notional_quote):
        return Reject.MAX_NOTIONAL
    if order.side > 0:
        if exposure.position_lot + exposure.open_buy_lot + order.qty_lot > limits.max_position_lot:
            return Reject.MAX_POSITION
    elif exposure.position_lot - exposure.open_sell_lot - order.qty_lot < -limits.max_position_lot:
        return Reject.MAX_POSITION
    mid = market.mid_px_tick
    # written so a NaN, infinite or non-positive mid fails the band (no market = no price check passes)
    if not (0 < mid < math.inf and order.px_tick > 0 and abs(order.px_tick - mid) * 1e4 <= limits.price_band_bps * mid):
        return Reject.PRICE_BAND
    if order.side > 0:
        if exposure.best_own_ask_tick is not None and order.px_tick >= exposure.best_own_ask_tick:
            return Reject.SELF_TRADE
    elif exposure.best_own_bid_tick is not None and order.px_tick <= exposure.best_own_bid_tick:
        return Reject.SELF_TRADE
    if not recent_orders.allow(now_ns, limits.max_orders_per_s):
        return Reject.ORDER_RATE
    return None


def dependency_policy(dead_peers: set[str] | frozenset[str]) -> TradingState | None:
    """HALTED if the quoter, book or gateway is dead; None (no change) otherwise."""
    if HALT_ON_DEAD_PEERS & dead_peers:
        return TradingState.HALTED
    return None
