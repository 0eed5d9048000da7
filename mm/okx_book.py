"""OKX v5 `books` order book per instrument, its CRC32 checksum validated on every frame.

Protocol (OKX v5 public websocket, channel `books`, also `books-l2-tbt` / `books50-l2-tbt`):
the first frame after a subscription has `"action": "snapshot"`, later ones `"update"`; each
`data[i]` carries `asks` / `bids` as `[px, sz, liquidated_orders, orders]` (text), `ts`,
`checksum` and, on newer servers, `seqId` / `prevSeqId`. An update's size is absolute; size 0
removes the level. Continuity: an update's `prevSeqId` equals the last frame's `seqId` (a
snapshot's `prevSeqId` is -1; a no-change keep-alive has `seqId == prevSeqId`).

Checksum (OKX "Checksum" procedure): over the top 25 levels of each side after applying the
frame, interleave `bid1, ask1, bid2, ask2, ...` (a side that runs out is skipped), each level as
`px:sz` in the venue's own text, all joined by ':'; CRC32 of that string as a signed 32-bit int
equals `checksum`. So each level keeps the text the venue wrote beside its int ticks and lots.

A checksum mismatch, a sequence gap or a value off the tick grid makes the book invalid: it is
cleared, later updates are dropped (`UNSYNCED`) and the caller resubscribes for a new snapshot.
`TextLevels` (one side: ticks, lots and the venue's text) is shared with `mm.kraken_book`.
"""

from __future__ import annotations

import enum
import zlib
from bisect import bisect_left, insort

import msgspec

from mm.errors import OffGridError
from mm.ticks import TickGrid, decimals_of, parse_levels

OKX_CHECKSUM_LEVELS = 25  # levels per side in the checksum string
NO_SEQ_ID = -1  # frame without seqId / prevSeqId (older servers): no continuity check
BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})  # snapshot + update + checksum


class BookCheck(enum.Enum):
    """Outcome of one venue frame applied to a checksummed book."""

    LOADED = "loaded"  # snapshot loaded, checksum matches: book valid
    APPLIED = "applied"  # update applied, checksum matches: book valid
    CHECKSUM_FAIL = "checksum_fail"  # our book differs from the venue's: invalid, resubscribe
    GAP = "gap"  # prevSeqId does not continue our seqId: invalid, resubscribe
    REJECTED = "rejected"  # a value off the grid or malformed: frame not applied, invalid, resubscribe
    UNSYNCED = "unsynced"  # update while the book is invalid: dropped until the next snapshot


class OkxBookArg(msgspec.Struct):
    channel: str
    inst_id: str = msgspec.field(name="instId")


class OkxBookData(msgspec.Struct, gc=False):
    asks: list[list[str]]  # [px, sz, liquidated_orders, orders], text
    bids: list[list[str]]
    ts: str  # venue time, ms
    checksum: int  # signed CRC32
    seq_id: int = msgspec.field(default=NO_SEQ_ID, name="seqId")
    prev_seq_id: int = msgspec.field(default=NO_SEQ_ID, name="prevSeqId")


class OkxBookFrame(msgspec.Struct, gc=False):
    arg: OkxBookArg
    action: str  # "snapshot" | "update"
    data: list[OkxBookData]


OKX_BOOK_DECODER = msgspec.json.Decoder(OkxBookFrame)


def decode_okx_book_frame(body: bytes | str) -> OkxBookFrame:
    """One `books` push frame; raises msgspec.DecodeError on anything else (event, trades, junk)."""
    return OKX_BOOK_DECODER.decode(body)


def compute_okx_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Signed CRC32 of the interleaved top-25 string; `bids` and `asks` best first, venue text."""
    parts: list[str] = []
    for i in range(OKX_CHECKSUM_LEVELS):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class TextLevels:
    """One side of a book: px_tick -> (qty_lot, px_text, qty_text), prices kept sorted ascending.

    Invariant: `prices == sorted(levels)` and every stored qty_lot > 0. The best bid is the
    last price, the best ask the first.
    """

    __slots__ = ("is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, tuple[int, str, str]] = {}
        self.prices: list[int] = []

    def clear(self) -> None:
        self.levels.clear()
        self.prices.clear()

    def __len__(self) -> int:
        return len(self.prices)

    def set(self, px_tick: int, qty_lot: int, px_text: str, qty_text: str) -> None:
        """Absolute quantity at a price; 0 removes the level (an unknown one is no error)."""
        levels = self.levels
        if qty_lot:
            if px_tick not in levels:
                insort(self.prices, px_tick)
            levels[px_tick] = (qty_lot, px_text, qty_text)
        elif levels.pop(px_tick, None) is not None:
            prices = self.prices
            del prices[bisect_left(prices, px_tick)]

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def best_prices(self, depth: int) -> list[int]:
        prices = self.prices
        return prices[: -depth - 1 : -1] if self.is_bid else prices[:depth]

    def top_text(self, depth: int) -> list[tuple[str, str]]:
        """Best first, (px_text, qty_text) as the venue wrote them."""
        levels = self.levels
        return [levels[px][1:] for px in self.best_prices(depth)]

    def top(self, depth: int) -> list[tuple[int, int]]:
        levels = self.levels
        return [(px, levels[px][0]) for px in self.best_prices(depth)]

    def truncate(self, depth: int) -> None:
        """Keep the best `depth` levels (a venue that keeps its book at a fixed depth)."""
        excess = len(self.prices) - depth
        if excess <= 0:
            return
        prices = self.prices
        if self.is_bid:
            dropped, self.prices = prices[:excess], prices[excess:]
        else:
            dropped, self.prices = prices[depth:], prices[:depth]
        for px in dropped:
            del self.levels[px]


def infer_text_grid(symbol: str, levels: list[tuple[str, str]]) -> TickGrid:
    """The finest grid the venue writes in these levels: most decimals of any price and size.

    OKX drops trailing zeros ("30316", "30316.1"), so one level says too little; the grid is one
    unit of the last decimal seen. A later value with more decimals is off it: REJECTED, and the
    next snapshot infers the grid again."""
    price_decimals = max((decimals_of(px) for px, _ in levels), default=0)
    qty_decimals = max((decimals_of(qty) for _, qty in levels), default=0)
    return TickGrid(symbol, price_decimals, qty_decimals)


class OkxBook:
    """One instrument's `books` book. Counters are totals since construction.

    `grid`: the instrument's tick and lot grid (from its tickSz / lotSz) when known; otherwise
    each snapshot infers it from the text (`infer_text_grid`).
    """

    __slots__ = (
        "inst_id",
        "bids",
        "asks",
        "is_synced",
        "seq_id",
        "grid",
        "_fixed_grid",
        "snapshots",
        "updates",
        "checksum_ok",
        "checksum_fail",
        "gaps",
        "rejected",
        "unsynced",
        "crossed",
        "last_error",
    )

    def __init__(self, inst_id: str, grid: TickGrid | None = None) -> None:
        self.inst_id = inst_id
        self.bids = TextLevels(is_bid=True)
        self.asks = TextLevels(is_bid=False)
        self.is_synced = False
        self.seq_id = NO_SEQ_ID
        self.grid = grid
        self._fixed_grid = grid is not None
        self.snapshots = 0  # snapshot frames loaded
        self.updates = 0  # update frames applied to a synced book (checksum good or bad)
        self.checksum_ok = 0
        self.checksum_fail = 0
        self.gaps = 0  # prevSeqId breaks
        self.rejected = 0  # frames with a value off the grid or a malformed level
        self.unsynced = 0  # updates dropped while waiting for a snapshot
        self.crossed = 0  # frames after which best bid >= best ask (checksum still decides)
        self.last_error = ""  # what the last failure was, for the caller's log line

    def apply(self, action: str, data: OkxBookData) -> BookCheck:
        """Apply one `data` element of a `books` frame whose `action` is snapshot or update."""
        is_snapshot = action == "snapshot"
        if not is_snapshot:
            if not self.is_synced:
                self.unsynced += 1
                return BookCheck.UNSYNCED
            if data.prev_seq_id != NO_SEQ_ID and self.seq_id != NO_SEQ_ID and data.prev_seq_id != self.seq_id:
                self.gaps += 1
                return self._invalidate(
                    BookCheck.GAP,
                    f"book {self.inst_id}: gap: prevSeqId {data.prev_seq_id} after seqId {self.seq_id}",
                )
        try:
            bid_text = level_pairs(self.inst_id, data.bids)
            ask_text = level_pairs(self.inst_id, data.asks)
            if is_snapshot and not self._fixed_grid:
                self.grid = infer_text_grid(self.inst_id, bid_text + ask_text)
            grid = self.grid  # set: a synced book has loaded a snapshot
            bid_ticks = parse_levels(grid, bid_text)
            ask_ticks = parse_levels(grid, ask_text)
        except OffGridError as e:
            self.rejected += 1
            return self._invalidate(BookCheck.REJECTED, f"book {self.inst_id}: {e}")
        if is_snapshot:
            self.bids.clear()
            self.asks.clear()
            self.snapshots += 1
        else:
            self.updates += 1
        for side, texts, ticks in ((self.bids, bid_text, bid_ticks), (self.asks, ask_text, ask_ticks)):
            for (px_text, qty_text), (px_tick, qty_lot) in zip(texts, ticks):
                side.set(px_tick, qty_lot, px_text, qty_text)
        self.seq_id = data.seq_id
        self.is_synced = True
        best_bid, best_ask = self.bids.best(), self.asks.best()
        if best_bid is not None and best_ask is not None and best_bid >= best_ask:
            self.crossed += 1
        expected = compute_okx_checksum(
            self.bids.top_text(OKX_CHECKSUM_LEVELS), self.asks.top_text(OKX_CHECKSUM_LEVELS)
        )
        if expected != data.checksum:
            self.checksum_fail += 1
            return self._invalidate(
                BookCheck.CHECKSUM_FAIL,
                f"book {self.inst_id}: checksum after {action} ts {data.ts}: "
                f"venue {data.checksum}, ours {expected}",
            )
        self.checksum_ok += 1
        return BookCheck.LOADED if is_snapshot else BookCheck.APPLIED

    def apply_frame(self, frame: OkxBookFrame) -> list[BookCheck]:
        return [self.apply(frame.action, data) for data in frame.data]

    def top_text(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(bids, asks) best first, as the venue wrote them; empty while the book is invalid."""
        return self.bids.top_text(depth), self.asks.top_text(depth)

    def _invalidate(self, outcome: BookCheck, error: str) -> BookCheck:
        self.is_synced = False
        self.seq_id = NO_SEQ_ID
        self.bids.clear()
        self.asks.clear()
        self.last_error = error
        return outcome


def level_pairs(symbol: str, levels: list[list[str]]) -> list[tuple[str, str]]:
    """(price, size) text of each venue level; the venue's further fields are dropped."""
    try:
        return [(level[0], level[1]) for level in levels]
    except IndexError:
        raise OffGridError(f"{symbol}: a level has fewer than 2 fields: {levels!r:.120}") from None
