"""Hyperliquid's wire, pure: websocket `l2Book` / `trades` frames decoded into int ticks and lots,
the venue's price and size rules, and client order ids (cloids) that carry our prefix.

Grid (HYPERLIQUID.md §2): a size has at most `szDecimals` decimals; a price at most 5 significant
figures and at most `MAX_DECIMALS - szDecimals` decimals (6 perps, 8 spot), an integer price being
always valid. Every valid price therefore sits on the fixed fine grid of `MAX_DECIMALS -
szDecimals` decimals, which is the `TickGrid` used here (BTC perp: tick 0.1, lot 0.00001); the
5-significant-figure rule then makes the usable tick price-dependent (BTC near 105 000 trades on
whole dollars), so an order price is rounded onto it by `round_px_tick`. The venue writes numbers
with trailing zeros dropped or kept ("0.1428", "105055.0"), so values are parsed exactly whatever
their number of written decimals, never by string width.

`l2Book` is a full snapshot per push (no sequence number): a frame is checked on its own (levels
sorted best first, sizes and order counts > 0, not crossed) and is either a `BookSnapshot` or a
`Dropped` with a reason. Nothing here raises on venue input.
"""

from __future__ import annotations

import hashlib
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

import msgspec

from mm.errors import OffGridError
from mm.ticks import TickGrid, parse_price, parse_qty

PERP_MAX_DECIMALS = 6
SPOT_MAX_DECIMALS = 8
MAX_SIGNIFICANT_FIGURES = 5
MS_NS = 1_000_000


# --- venue grid and number rules ------------------------------------------------------------


def grid_for(coin: str, sz_decimals: int, is_spot: bool = False) -> TickGrid:
    """The fine grid every valid price and size of `coin` sits on (see module docstring)."""
    max_decimals = SPOT_MAX_DECIMALS if is_spot else PERP_MAX_DECIMALS
    if not 0 <= sz_decimals <= max_decimals:
        raise ValueError(f"{coin}: 'szDecimals' must be in 0..{max_decimals}, was {sz_decimals}")
    return TickGrid(coin, max_decimals - sz_decimals, sz_decimals)


def is_valid_price(grid: TickGrid, px_tick: int) -> bool:
    """The venue's price rule on the fine grid: an integer, or at most 5 significant figures."""
    if px_tick <= 0:
        return False
    scale = 10**grid.price_decimals
    if px_tick % scale == 0:  # an integer price is always valid
        return True
    digits = str(px_tick).rstrip("0")
    return len(digits) <= MAX_SIGNIFICANT_FIGURES


def round_px_tick(grid: TickGrid, px_tick: int, is_buy: bool) -> int:
    """The nearest valid price on the passive side: bids round down, asks up (never crosses more).

    A price of more than 5 integer digits is rounded to an integer; otherwise to 5 significant
    figures. Returns a px_tick for which `is_valid_price` holds.
    """
    if px_tick <= 0:
        raise ValueError(f"{grid.symbol}: px_tick must be > 0, was {px_tick}")
    if is_valid_price(grid, px_tick):
        return px_tick
    scale = 10**grid.price_decimals
    integer_digits = len(str(px_tick // scale)) if px_tick >= scale else 0
    if integer_digits >= MAX_SIGNIFICANT_FIGURES:
        step = scale  # whole units (integer prices are always valid)
    else:
        step = 10 ** max(0, len(str(px_tick)) - MAX_SIGNIFICANT_FIGURES)
    down = px_tick - px_tick % step
    rounded = down if is_buy or down == px_tick else down + step
    if rounded <= 0:  # a bid below the smallest 5-figure value: no valid passive price
        raise ValueError(f"{grid.symbol}: no valid bid price at or below px_tick {px_tick}")
    return rounded


def format_wire_number(units: int, decimals: int) -> str:
    """Units of 10**-decimals as the venue's signed text: plain decimal, no trailing zeros
    ("105055", "0.0147"). Trailing zeros change the msgpack bytes and therefore the signature."""
    if units < 0:
        raise ValueError(f"cannot write a negative venue number, was {units}")
    if decimals == 0:
        return str(units)
    whole, frac = divmod(units, 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


def format_wire_price(grid: TickGrid, px_tick: int) -> str:
    if not is_valid_price(grid, px_tick):
        raise OffGridError(f"{grid.symbol}: px_tick {px_tick} is not a valid venue price (5 significant figures)")
    return format_wire_number(px_tick, grid.price_decimals)


def format_wire_size(grid: TickGrid, qty_lot: int) -> str:
    if qty_lot <= 0:
        raise ValueError(f"{grid.symbol}: qty_lot must be > 0, was {qty_lot}")
    return format_wire_number(qty_lot, grid.qty_decimals)


def decimal_to_px_tick(grid: TickGrid, price: Decimal, is_buy: bool) -> int:
    """A model price onto the fine grid, bids floored and asks ceiled (then `round_px_tick`)."""
    scaled = price.scaleb(grid.price_decimals)
    return int(scaled.to_integral_value(rounding=ROUND_FLOOR if is_buy else ROUND_CEILING))


# --- client order ids -----------------------------------------------------------------------

CLOID_TAG_BYTES = 6  # prefix tag: high 48 bits of every cloid we make
CLOID_BYTES = 16
_CLOID = re.compile(r"0x[0-9a-f]{32}")


def cloid_tag(prefix: str) -> str:
    """12 hex digits naming the pipeline prefix inside a cloid (cloids are 128-bit hex only)."""
    if not prefix:
        raise ValueError("'prefix' must not be empty")
    return hashlib.sha256(b"mm-cloid:" + prefix.encode()).hexdigest()[: 2 * CLOID_TAG_BYTES]


def cloid_for(client_id: str, prefix: str) -> str:
    """The cloid of one of our client ids: `0x` + prefix tag + 80 bits of sha256(client_id).

    Deterministic, so a resend after a timeout reuses the same cloid (idempotent), and the tag
    lets `is_our_cloid` recognise it in the venue's open orders.
    """
    if not client_id.startswith(prefix):
        raise ValueError(f"client id {client_id!r} does not carry the prefix {prefix!r}")
    body = hashlib.sha256(client_id.encode()).hexdigest()[: 2 * (CLOID_BYTES - CLOID_TAG_BYTES)]
    return "0x" + cloid_tag(prefix) + body


def is_our_cloid(cloid: str | None, prefix: str) -> bool:
    """True for a well-formed cloid carrying our prefix tag; None and foreign ids are not ours."""
    return (
        bool(prefix)
        and isinstance(cloid, str)
        and _CLOID.fullmatch(cloid.lower()) is not None
        and cloid.lower()[2 : 2 + 2 * CLOID_TAG_BYTES] == cloid_tag(prefix)
    )


# --- websocket frames -----------------------------------------------------------------------


class WsLevel(msgspec.Struct, frozen=True, gc=False):
    px: str
    sz: str
    n: int  # number of orders at the level


class WsBook(msgspec.Struct, frozen=True, gc=False):
    coin: str
    levels: tuple[list[WsLevel], list[WsLevel]]  # [bids best first, asks best first]
    time: int  # venue time, ms


class WsTrade(msgspec.Struct, frozen=True, gc=False):
    coin: str
    side: Literal["A", "B"]  # B: buyer was the aggressor, A: seller
    px: str
    sz: str
    time: int  # ms
    tid: int
    hash: str = ""
    users: list[str] = []


class L2BookFrame(msgspec.Struct, frozen=True, gc=False, tag_field="channel", tag="l2Book"):
    data: WsBook


class TradesFrame(msgspec.Struct, frozen=True, gc=False, tag_field="channel", tag="trades"):
    data: list[WsTrade]


class SubscriptionResponseFrame(msgspec.Struct, frozen=True, tag_field="channel", tag="subscriptionResponse"):
    data: msgspec.Raw


class PongFrame(msgspec.Struct, frozen=True, tag_field="channel", tag="pong"):
    pass


HyperliquidFrame = L2BookFrame | TradesFrame | SubscriptionResponseFrame | PongFrame
_FRAME_DECODER = msgspec.json.Decoder(HyperliquidFrame)
GREETING = b"Websocket connection established."


class BookSnapshot(msgspec.Struct, frozen=True, gc=False):
    coin: str
    ts_event_ns: int
    ts_recv_ns: int
    bids: list[tuple[int, int]]  # (px_tick, qty_lot), best (highest) first
    asks: list[tuple[int, int]]  # best (lowest) first
    bid_orders: list[int]  # venue's order count per level
    ask_orders: list[int]


class TradeTick(msgspec.Struct, frozen=True, gc=False):
    coin: str
    is_buyer_aggressor: bool
    px_tick: int
    qty_lot: int
    ts_event_ns: int
    ts_recv_ns: int
    tid: int


class TradeBatch(msgspec.Struct, frozen=True, gc=False):
    trades: list[TradeTick]


class Control(msgspec.Struct, frozen=True):
    """A frame carrying no market data (subscription ack, pong, greeting)."""

    kind: str


class Dropped(msgspec.Struct, frozen=True):
    """Venue input refused: `reason` is a bounded label for a counter, `detail` names the value."""

    reason: str  # undecodable | unknown_coin | off_grid | zero_size | unsorted | crossed | empty_side
    detail: str


Decoded = BookSnapshot | TradeBatch | Control | Dropped


def parse_frame(body: bytes) -> HyperliquidFrame:
    """The frame's typed shape, its numbers still the venue's text; msgspec.DecodeError if none."""
    return _FRAME_DECODER.decode(body)


def decode_frame(body: bytes | str, grids: dict[str, TickGrid], ts_recv_ns: int) -> Decoded:
    """One websocket message -> a typed outcome; never raises on venue input."""
    raw = body.encode() if isinstance(body, str) else body
    if raw.strip() == GREETING:
        return Control("greeting")
    try:
        frame = parse_frame(raw)
    except msgspec.DecodeError as e:
        return Dropped("undecodable", f"{e} (length {len(raw)})")
    match frame:
        case L2BookFrame(data=book):
            return apply_book(book, grids, ts_recv_ns)
        case TradesFrame(data=trades):
            return apply_trades(trades, grids, ts_recv_ns)
        case SubscriptionResponseFrame():
            return Control("subscriptionResponse")
        case PongFrame():
            return Control("pong")
        case _:
            return Dropped("undecodable", f"unexpected frame {type(frame).__name__}")


def apply_book(book: WsBook, grids: dict[str, TickGrid], ts_recv_ns: int) -> BookSnapshot | Dropped:
    grid = grids.get(book.coin)
    if grid is None:
        return Dropped("unknown_coin", f"l2Book coin {book.coin!r}")
    bid_levels, ask_levels = book.levels
    try:
        bids = [(parse_price(grid, lv.px), parse_qty(grid, lv.sz)) for lv in bid_levels]
        asks = [(parse_price(grid, lv.px), parse_qty(grid, lv.sz)) for lv in ask_levels]
    except OffGridError as e:
        return Dropped("off_grid", str(e))
    for side, levels, orders in (("bid", bids, bid_levels), ("ask", asks, ask_levels)):
        for (px_tick, qty_lot), level in zip(levels, orders):
            if qty_lot <= 0 or level.n <= 0:
                return Dropped("zero_size", f"l2Book {book.coin} {side} {level.px}: sz {level.sz!r}, n {level.n}")
    if any(bids[i][0] <= bids[i + 1][0] for i in range(len(bids) - 1)):
        return Dropped("unsorted", f"l2Book {book.coin}: bids not strictly descending")
    if any(asks[i][0] >= asks[i + 1][0] for i in range(len(asks) - 1)):
        return Dropped("unsorted", f"l2Book {book.coin}: asks not strictly ascending")
    if bids and asks and bids[0][0] >= asks[0][0]:
        return Dropped(
            "crossed",
            f"l2Book {book.coin} at {book.time}: bid {bids[0][0]} >= ask {asks[0][0]} (ticks)",
        )
    return BookSnapshot(
        coin=book.coin,
        ts_event_ns=book.time * MS_NS,
        ts_recv_ns=ts_recv_ns,
        bids=bids,
        asks=asks,
        bid_orders=[lv.n for lv in bid_levels],
        ask_orders=[lv.n for lv in ask_levels],
    )


def apply_trades(trades: list[WsTrade], grids: dict[str, TickGrid], ts_recv_ns: int) -> TradeBatch | Dropped:
    out: list[TradeTick] = []
    for trade in trades:
        grid = grids.get(trade.coin)
        if grid is None:
            return Dropped("unknown_coin", f"trades coin {trade.coin!r}")
        try:
            px_tick = parse_price(grid, trade.px)
            qty_lot = parse_qty(grid, trade.sz)
        except OffGridError as e:
            return Dropped("off_grid", str(e))
        if qty_lot <= 0:
            return Dropped("zero_size", f"trade {trade.coin} tid {trade.tid}: sz {trade.sz!r}")
        out.append(
            TradeTick(
                coin=trade.coin,
                is_buyer_aggressor=trade.side == "B",
                px_tick=px_tick,
                qty_lot=qty_lot,
                ts_event_ns=trade.time * MS_NS,
                ts_recv_ns=ts_recv_ns,
                tid=trade.tid,
            )
        )
    return TradeBatch(out)
