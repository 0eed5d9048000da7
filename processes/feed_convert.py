"""The one converter from venue frames to feed messages, for live, replay and backtest alike.

Every frame either becomes typed feed messages (ipc.messages, in ticks and lots on the
instrument's grid) or a `Drop` whose `reason` is a bounded label for a counter and whose `detail`
names the value that was wrong. The live websocket decoder (processes/binance_ws.py), the capture
replay (processes/replay_source.py) and so the backtest all call these functions, so a frame that
live trading refuses is refused in replay too, for the same reason.

- Binance (`binance_message`): one decoded frame of mm.capture (depth diff, trade, aggTrade,
  bookTicker, REST depth snapshot) -> one message.
- OKX `books`, Kraken `book-N`, Hyperliquid `l2Book` and their trades (`CheckedBookFeed`): the
  venue's own book checks run first (mm.okx_book / mm.kraken_book checksums and sequence,
  mm.hyperliquid_frames push rules), then the checked book is forwarded in Binance's terms.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from ipc.messages import BookSnapshot, BookTicker, DepthDiff, Trade
from mm.book_sync import NO_PREV_ID
from mm.capture import AggTradeFrame, BookTickerFrame, DepthSnapshot, DepthUpdate, TradeFrame
from mm.errors import OffGridError
from mm.hyperliquid_frames import Dropped, L2BookFrame, TradesFrame, apply_book, parse_frame
from mm.kraken_book import KrakenBook, decode_kraken_book_frame
from mm.okx_book import BOOK_CHANNELS, BookCheck, OkxBook, TextLevels, decode_okx_book_frame
from mm.ticks import TickGrid, parse_levels, parse_price, parse_qty
from mm.venue_books import HYPERLIQUID, KRAKEN, OKX

FeedMessage = BookSnapshot | DepthDiff | Trade | BookTicker
MS = 1_000_000
INT64_MAX = (1 << 63) - 1
MAX_MS = INT64_MAX // MS  # a venue time in ms must fit int64 once in ns


class Drop(NamedTuple):
    """A frame not forwarded: `reason` (bad_field, off_grid, unsynced, checksum_fail, ...) and what was wrong."""

    reason: str
    detail: str


def _qty(level: tuple[int, int]) -> int:
    return level[1]


def _levels_fit(levels: list[tuple[int, int]]) -> bool:
    # parse_levels' fast path does not bound its ints: one C-speed pass per side
    return not levels or (max(levels)[0] <= INT64_MAX and max(levels, key=_qty)[1] <= INT64_MAX)


def binance_message(symbol: str, frame: Any, grid: TickGrid, ts_recv_ns: int, ts_feed_ns: int) -> FeedMessage | Drop:
    """One decoded Binance frame of `symbol` -> its feed message, or the Drop saying why not."""
    kind = type(frame)
    try:
        if kind is DepthUpdate:
            if not (0 <= frame.U <= frame.u <= INT64_MAX and -1 <= frame.pu <= INT64_MAX and 0 <= frame.E <= MAX_MS):
                return Drop("bad_field", f"{symbol}: depth ids U={frame.U} u={frame.u} pu={frame.pu} E={frame.E}")
            bids = parse_levels(grid, frame.b)
            asks = parse_levels(grid, frame.a)
            if not (_levels_fit(bids) and _levels_fit(asks)):
                return Drop("off_grid", f"{symbol}: a level of diff u={frame.u} does not fit int64")
            return DepthDiff(symbol=symbol, first_id=frame.U, final_id=frame.u, prev_final_id=frame.pu,
                             ts_event_ns=frame.E * MS, ts_recv_ns=ts_recv_ns, ts_feed_ns=ts_feed_ns,
                             bids=bids, asks=asks)
        if kind is TradeFrame or kind is AggTradeFrame:
            trade_id = frame.t if kind is TradeFrame else frame.a
            if not (0 <= trade_id <= INT64_MAX and 0 <= frame.T <= MAX_MS):
                return Drop("bad_field", f"{symbol}: trade id={trade_id} T={frame.T}")
            return Trade(symbol=symbol, trade_id=trade_id, px_tick=parse_price(grid, frame.p),
                         qty_lot=parse_qty(grid, frame.q), taker_side=-1 if frame.m else 1,
                         ts_event_ns=frame.T * MS, ts_recv_ns=ts_recv_ns, ts_feed_ns=ts_feed_ns)
        if kind is BookTickerFrame:
            event_ms = frame.E or frame.T
            if not (0 <= frame.u <= INT64_MAX and 0 <= event_ms <= MAX_MS):
                return Drop("bad_field", f"{symbol}: bookTicker u={frame.u} E={event_ms}")
            return BookTicker(symbol=symbol, update_id=frame.u, bid_px_tick=parse_price(grid, frame.b),
                              bid_qty_lot=parse_qty(grid, frame.B), ask_px_tick=parse_price(grid, frame.a),
                              ask_qty_lot=parse_qty(grid, frame.A), ts_event_ns=event_ms * MS,
                              ts_recv_ns=ts_recv_ns, ts_feed_ns=ts_feed_ns)
        if kind is DepthSnapshot:
            if not (0 <= frame.lastUpdateId <= INT64_MAX and 0 <= frame.E <= MAX_MS):
                return Drop("bad_field", f"{symbol}: snapshot lastUpdateId={frame.lastUpdateId} E={frame.E}")
            bids = parse_levels(grid, frame.bids)
            asks = parse_levels(grid, frame.asks)
            if not (_levels_fit(bids) and _levels_fit(asks)):
                return Drop("off_grid", f"{symbol}: a level of snapshot {frame.lastUpdateId} does not fit int64")
            return BookSnapshot(symbol=symbol, last_id=frame.lastUpdateId, ts_event_ns=frame.E * MS,
                                ts_recv_ns=ts_recv_ns, ts_feed_ns=ts_feed_ns, bids=bids, asks=asks)
        return Drop("unhandled_stream", f"{symbol}: {kind.__name__} on a stream")
    except OffGridError as e:
        return Drop("off_grid", str(e)[:200])
    except ArithmeticError as e:  # decimal.Overflow from mm.ticks on text like "1e999999999"
        return Drop("off_grid", f"{symbol}: {type(e).__name__} converting a value")


# ---- venues whose books carry their own checks -----------------------------------------------------

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def symbol_name(instrument: str) -> str:
    """The pipeline's name of a venue instrument: "XBT/USD" -> "XBT-USD", "@107" -> "-107"."""
    return _NOT_A_NAME.sub("-", instrument)[:64]


class _OkxTrade(msgspec.Struct):
    px: str
    sz: str
    side: str  # the taker's side: "buy" | "sell"
    ts: str  # ms
    trade_id: str = msgspec.field(name="tradeId")


class _OkxTradesArg(msgspec.Struct):
    channel: str
    inst_id: str = msgspec.field(name="instId")


class _OkxTrades(msgspec.Struct):
    arg: _OkxTradesArg
    data: list[_OkxTrade]


_OKX_TRADES = msgspec.json.Decoder(_OkxTrades)
_KRAKEN_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_KRAKEN_TRADES = msgspec.json.Decoder(list[list[str]])


class CheckedBookFeed:
    """One OKX, Kraken or Hyperliquid instrument's frames -> the messages the book stage syncs on.

    These venues have no Binance update ids, so the converter numbers what it forwards: a venue
    book (re)loaded is a BookSnapshot(last_id=n); each later checked frame a DepthDiff of the
    levels that changed, first_id = final_id = n + 1 (Binance's spot rule, no `pu`). A frame the
    venue's checks refuse (checksum, sequence, off-grid) invalidates the venue book: the converter
    forwards an empty diff that skips an id, so the book stage sees a gap at once and drops its
    book until the snapshot forwarded with the venue's next one. A Hyperliquid push is a whole
    checked book: a refused one is dropped and the previous book stays, as `mm book` shows it.
    """

    def __init__(self, venue: str, instrument: str, grid: TickGrid) -> None:
        if venue not in (OKX, KRAKEN, HYPERLIQUID):
            raise ValueError(f"no checked-book converter for venue {venue!r}")
        self.venue = venue
        self.instrument = instrument
        self.symbol = symbol_name(instrument)
        self.grid = grid
        self.last_id = 0  # the id of the last message forwarded
        self.trades = 0  # trade ids made up for venues whose trades carry none (Kraken)
        self._sent: tuple[dict[int, int], dict[int, int]] = ({}, {})  # the book as forwarded: px -> qty
        self._needs_snapshot = True
        self._hl_time_ms = -1
        self._tag = msgspec.json.encode(instrument)  # a cheap first filter: frames that name it
        self._book: OkxBook | KrakenBook | None = OkxBook(instrument, grid) if venue == OKX else None
        self._grids = {instrument: grid}

    def resync(self) -> None:
        """Forward the venue book as a snapshot at the next frame that shows it (the book stage
        asked for one, or a live connection was made again)."""
        self._needs_snapshot = True

    def convert(self, body: bytes, ts_recv_ns: int, ts_feed_ns: int) -> list[FeedMessage | Drop]:
        """One frame -> its messages and drops, in order; [] for a frame of another instrument or channel."""
        if self._tag not in body:
            return []
        try:
            if self.venue == OKX:
                return self._okx(body, ts_recv_ns, ts_feed_ns)
            if self.venue == KRAKEN:
                return self._kraken(body, ts_recv_ns, ts_feed_ns)
            return self._hyperliquid(body, ts_recv_ns, ts_feed_ns)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, IndexError, TypeError) as e:
            return [Drop("decode_error", f"{self.venue} {self.instrument}: {type(e).__name__}: {e}"[:200])]
        except OffGridError as e:
            return [Drop("off_grid", str(e)[:200])]

    # ---- OKX ----

    def _okx(self, body: bytes, ts_recv_ns: int, ts_feed_ns: int) -> list[FeedMessage | Drop]:
        if b'"event":' in body:
            return []  # subscribe replies
        if b'"action":' not in body:
            frame = _OKX_TRADES.decode(body)
            if frame.arg.channel != "trades" or frame.arg.inst_id != self.instrument:
                return []
            return [self._trade(int(t.trade_id) if t.trade_id.isdigit() else self._next_trade_id(),
                                t.px, t.sz, 1 if t.side == "buy" else -1, int(t.ts) * MS, ts_recv_ns, ts_feed_ns)
                    for t in frame.data]
        frame = decode_okx_book_frame(body)
        if frame.arg.channel not in BOOK_CHANNELS or frame.arg.inst_id != self.instrument:
            return []
        book = self._book
        out: list[FeedMessage | Drop] = []
        for data in frame.data:
            outcome = book.apply(frame.action, data)
            out.extend(self._after_check(outcome, int(data.ts) * MS, ts_recv_ns, ts_feed_ns))
        return out

    # ---- Kraken ----

    def _kraken(self, body: bytes, ts_recv_ns: int, ts_feed_ns: int) -> list[FeedMessage | Drop]:
        if not body.lstrip().startswith(b"["):
            return []  # subscriptionStatus, heartbeat
        parts = _KRAKEN_ARRAY.decode(body)
        if len(parts) >= 4 and msgspec.json.decode(parts[-2]) == "trade":
            if msgspec.json.decode(parts[-1]) != self.instrument:
                return []
            return [self._trade(self._next_trade_id(), t[0], t[1], 1 if t[3] == "b" else -1,
                                int(Decimal(t[2]) * 1_000_000_000), ts_recv_ns, ts_feed_ns)
                    for t in _KRAKEN_TRADES.decode(parts[1])]
        frame = decode_kraken_book_frame(body)
        if frame is None or frame.pair != self.instrument:
            return []
        if self._book is None:
            self._book = KrakenBook(self.instrument, frame.depth, self.grid)
        return self._after_check(self._book.apply_frame(frame), ts_recv_ns, ts_recv_ns, ts_feed_ns)

    # ---- Hyperliquid ----

    def _hyperliquid(self, body: bytes, ts_recv_ns: int, ts_feed_ns: int) -> list[FeedMessage | Drop]:
        frame = parse_frame(body)
        if type(frame) is TradesFrame:
            return [self._trade(t.tid, t.px, t.sz, 1 if t.side == "B" else -1, t.time * MS, ts_recv_ns, ts_feed_ns)
                    for t in frame.data if t.coin == self.instrument]
        if type(frame) is not L2BookFrame or frame.data.coin != self.instrument:
            return []
        push = frame.data
        if push.time < self._hl_time_ms:
            return [Drop("stale", f"l2Book {self.instrument} at {push.time} after {self._hl_time_ms}")]
        checked = apply_book(push, self._grids, ts_recv_ns)
        if isinstance(checked, Dropped):
            return [Drop(checked.reason, checked.detail[:200])]
        self._hl_time_ms = push.time
        return self._forward(dict(checked.bids), dict(checked.asks), checked.ts_event_ns, ts_recv_ns, ts_feed_ns)

    # ---- shared ----

    def _after_check(self, outcome: BookCheck, ts_event_ns: int, ts_recv_ns: int,
                     ts_feed_ns: int) -> list[FeedMessage | Drop]:
        book = self._book
        if outcome is BookCheck.LOADED:
            self._needs_snapshot = True
        if outcome is BookCheck.LOADED or outcome is BookCheck.APPLIED:
            return self._forward(_quantities(book.bids), _quantities(book.asks), ts_event_ns, ts_recv_ns, ts_feed_ns)
        if outcome is BookCheck.UNSYNCED:
            return [Drop("unsynced", f"{self.venue} {self.instrument}: an update before the book's snapshot")]
        drop = Drop(outcome.value, book.last_error[:200])
        if self._needs_snapshot:
            return [drop]  # nothing forwarded since the last invalidation
        self._needs_snapshot = True
        self.last_id += 2  # skips an id: the book stage's book goes invalid with the venue's
        self._sent[0].clear()
        self._sent[1].clear()
        return [DepthDiff(symbol=self.symbol, first_id=self.last_id, final_id=self.last_id,
                          prev_final_id=NO_PREV_ID, ts_event_ns=ts_event_ns, ts_recv_ns=ts_recv_ns,
                          ts_feed_ns=ts_feed_ns, bids=[], asks=[]), drop]

    def _forward(self, bids: dict[int, int], asks: dict[int, int], ts_event_ns: int, ts_recv_ns: int,
                 ts_feed_ns: int) -> list[FeedMessage | Drop]:
        """The venue book as it now is: a snapshot after a (re)load or a crossed book, else its changes."""
        sent_bids, sent_asks = self._sent
        crossed = bool(bids) and bool(asks) and max(bids) >= min(asks)
        if self._needs_snapshot:
            if crossed:
                return [Drop("crossed", f"{self.venue} {self.instrument}: snapshot crossed")]
            self._needs_snapshot = False
            self._sent = (bids, asks)
            self.last_id += 1
            return [BookSnapshot(symbol=self.symbol, last_id=self.last_id, ts_event_ns=ts_event_ns,
                                 ts_recv_ns=ts_recv_ns, ts_feed_ns=ts_feed_ns,
                                 bids=sorted(bids.items(), reverse=True), asks=sorted(asks.items()))]
        bid_changes = _changes(sent_bids, bids)
        ask_changes = _changes(sent_asks, asks)
        if not bid_changes and not ask_changes:
            return []
        self._sent = (bids, asks)
        self.last_id += 1
        if crossed:  # the book stage drops its book on this diff; a snapshot follows the uncrossing
            self._needs_snapshot = True
        return [DepthDiff(symbol=self.symbol, first_id=self.last_id, final_id=self.last_id,
                          prev_final_id=NO_PREV_ID, ts_event_ns=ts_event_ns, ts_recv_ns=ts_recv_ns,
                          ts_feed_ns=ts_feed_ns, bids=bid_changes, asks=ask_changes)]

    def _trade(self, trade_id: int, px: str, sz: str, taker_side: int, ts_event_ns: int, ts_recv_ns: int,
               ts_feed_ns: int) -> Trade:
        return Trade(symbol=self.symbol, trade_id=trade_id, px_tick=parse_price(self.grid, px),
                     qty_lot=parse_qty(self.grid, sz), taker_side=taker_side, ts_event_ns=ts_event_ns,
                     ts_recv_ns=ts_recv_ns, ts_feed_ns=ts_feed_ns)

    def _next_trade_id(self) -> int:
        self.trades += 1
        return self.trades


def _quantities(side: TextLevels) -> dict[int, int]:
    return {px: level[0] for px, level in side.levels.items()}


def _changes(before: dict[int, int], after: dict[int, int]) -> list[tuple[int, int]]:
    """The levels to send so that `before` becomes `after` (qty 0 removes a level)."""
    changes = [(px, qty) for px, qty in after.items() if before.get(px) != qty]
    changes.extend((px, 0) for px in before.keys() - after.keys())
    return changes
