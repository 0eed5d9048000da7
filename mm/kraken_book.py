"""Kraken v1 `book` order book per pair, its CRC32 checksum validated on every update that has one.

Protocol (Kraken websocket v1, `{"name": "book", "depth": N}`): frames are arrays
`[channelID, payload, ..., channelName, pair]` with `channelName` "book-<N>". The first payload
is a snapshot `{"as": [...], "bs": [...]}`; later ones are updates `{"a": [...]}`, `{"b": [...]}`,
or both as two payloads in one frame, the last carrying `"c"`, the checksum. A level is
`[price, volume, timestamp]` (text), with a 4th element "r" when it is republished (a level that
comes back into view); volume is absolute, 0 removes the level. The book is kept at the
subscribed depth: after an update each side is truncated to its best N levels.

Checksum (Kraken "Book Checksum"): after applying the frame, for the top 10 asks (lowest first)
then the top 10 bids (highest first), each of price and volume as the venue wrote it with the '.'
removed and leading zeros stripped, all concatenated; CRC32 of that string, unsigned, equals
`int(c)`. Kraken has no sequence numbers: the checksum is the only gap detection.

A mismatch or a value off the grid makes the book invalid until the next snapshot (the caller
resubscribes); updates meanwhile are dropped (`UNSYNCED`).
"""

from __future__ import annotations

import zlib

import msgspec

from mm.errors import OffGridError
from mm.okx_book import BookCheck, TextLevels, infer_text_grid, level_pairs
from mm.ticks import TickGrid, parse_levels

KRAKEN_CHECKSUM_LEVELS = 10  # levels per side in the checksum string
DEFAULT_DEPTH = 1000  # book-1000
BOOK_CHANNEL_PREFIX = "book-"


class KrakenBookPayload(msgspec.Struct, gc=False):
    """One payload object of a book frame: a snapshot (`as`/`bs`) or an update (`a`/`b`/`c`)."""

    snapshot_asks: list[list[str]] | None = msgspec.field(default=None, name="as")
    snapshot_bids: list[list[str]] | None = msgspec.field(default=None, name="bs")
    asks: list[list[str]] | None = msgspec.field(default=None, name="a")
    bids: list[list[str]] | None = msgspec.field(default=None, name="b")
    checksum: str | None = msgspec.field(default=None, name="c")  # unsigned CRC32, decimal text


class KrakenBookFrame(msgspec.Struct, gc=False):
    channel_id: int
    payloads: list[KrakenBookPayload]
    channel_name: str  # "book-1000"
    pair: str  # "XBT/USD"

    @property
    def depth(self) -> int:
        return int(self.channel_name.removeprefix(BOOK_CHANNEL_PREFIX))


_ARRAY_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_PAYLOAD_DECODER = msgspec.json.Decoder(KrakenBookPayload)


def decode_kraken_book_frame(body: bytes | str) -> KrakenBookFrame | None:
    """A `book-N` channel frame; None for another channel's array; raises msgspec.DecodeError
    (or ValueError) on an event object, junk or a malformed array."""
    parts = _ARRAY_DECODER.decode(body)
    if len(parts) < 4:
        raise ValueError(f"kraken frame has {len(parts)} elements, a channel frame has >= 4")
    channel_name = msgspec.json.decode(parts[-2], type=str)
    if not channel_name.startswith(BOOK_CHANNEL_PREFIX):
        return None
    return KrakenBookFrame(
        channel_id=msgspec.json.decode(parts[0], type=int),
        payloads=[_PAYLOAD_DECODER.decode(raw) for raw in parts[1:-2]],
        channel_name=channel_name,
        pair=msgspec.json.decode(parts[-1], type=str),
    )


def _checksum_text(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def compute_kraken_checksum(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Unsigned CRC32 over the top 10 asks then top 10 bids, each best first, venue text."""
    parts = [
        _checksum_text(px) + _checksum_text(qty)
        for levels in (asks[:KRAKEN_CHECKSUM_LEVELS], bids[:KRAKEN_CHECKSUM_LEVELS])
        for px, qty in levels
    ]
    return zlib.crc32("".join(parts).encode())


class KrakenBook:
    """One pair's book at a fixed depth. Counters are totals since construction (`gaps` stays 0:
    Kraken v1 has no sequence numbers; a missed update shows as a checksum failure)."""

    __slots__ = (
        "pair",
        "depth",
        "bids",
        "asks",
        "is_synced",
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

    def __init__(self, pair: str, depth: int = DEFAULT_DEPTH, grid: TickGrid | None = None) -> None:
        if depth < KRAKEN_CHECKSUM_LEVELS:
            raise ValueError(f"book {pair}: 'depth' must be >= {KRAKEN_CHECKSUM_LEVELS}, was {depth}")
        self.pair = pair
        self.depth = depth
        self.bids = TextLevels(is_bid=True)
        self.asks = TextLevels(is_bid=False)
        self.is_synced = False
        self.grid = grid
        self._fixed_grid = grid is not None
        self.snapshots = 0
        self.updates = 0  # update frames applied to a synced book (checksum good, bad or absent)
        self.checksum_ok = 0
        self.checksum_fail = 0
        self.gaps = 0
        self.rejected = 0
        self.unsynced = 0
        self.crossed = 0  # frames after which best bid >= best ask (checksum still decides)
        self.last_error = ""

    def apply_frame(self, frame: KrakenBookFrame) -> BookCheck:
        """Apply every payload of one frame, then validate the checksum if the frame has one."""
        snapshot = next((p for p in frame.payloads if p.snapshot_asks is not None or p.snapshot_bids is not None), None)
        if snapshot is not None:
            return self._load(snapshot)
        if not self.is_synced:
            self.unsynced += 1
            return BookCheck.UNSYNCED
        grid = self.grid  # set: a synced book has loaded a snapshot
        changes = []
        checksum = None
        try:
            for payload in frame.payloads:
                for side, levels in ((self.asks, payload.asks), (self.bids, payload.bids)):
                    if levels:
                        texts = level_pairs(self.pair, levels)
                        changes.append((side, texts, parse_levels(grid, texts)))
                if payload.checksum is not None:
                    checksum = int(payload.checksum)
        except (OffGridError, ValueError) as e:
            self.rejected += 1
            return self._invalidate(BookCheck.REJECTED, f"book {self.pair}: {e}")
        self.updates += 1
        for side, texts, ticks in changes:
            for (px_text, qty_text), (px_tick, qty_lot) in zip(texts, ticks):
                side.set(px_tick, qty_lot, px_text, qty_text)
            side.truncate(self.depth)
        return self._check(checksum, BookCheck.APPLIED)

    def top_text(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(bids, asks) best first, as the venue wrote them; empty while the book is invalid."""
        return self.bids.top_text(depth), self.asks.top_text(depth)

    def _load(self, snapshot: KrakenBookPayload) -> BookCheck:
        try:
            ask_text = level_pairs(self.pair, snapshot.snapshot_asks or [])
            bid_text = level_pairs(self.pair, snapshot.snapshot_bids or [])
            grid = self.grid if self._fixed_grid else infer_text_grid(self.pair, bid_text + ask_text)
            ask_ticks = parse_levels(grid, ask_text)
            bid_ticks = parse_levels(grid, bid_text)
        except OffGridError as e:
            self.rejected += 1
            return self._invalidate(BookCheck.REJECTED, f"book {self.pair}: {e}")
        self.grid = grid
        self.bids.clear()
        self.asks.clear()
        for side, texts, ticks in ((self.asks, ask_text, ask_ticks), (self.bids, bid_text, bid_ticks)):
            for (px_text, qty_text), (px_tick, qty_lot) in zip(texts, ticks):
                side.set(px_tick, qty_lot, px_text, qty_text)
            side.truncate(self.depth)
        self.snapshots += 1
        self.is_synced = True
        return self._check(None, BookCheck.LOADED)

    def _check(self, checksum: int | None, outcome: BookCheck) -> BookCheck:
        best_bid, best_ask = self.bids.best(), self.asks.best()
        if best_bid is not None and best_ask is not None and best_bid >= best_ask:
            self.crossed += 1
        if checksum is None:
            return outcome
        expected = compute_kraken_checksum(
            self.asks.top_text(KRAKEN_CHECKSUM_LEVELS), self.bids.top_text(KRAKEN_CHECKSUM_LEVELS)
        )
        if expected != checksum:
            self.checksum_fail += 1
            return self._invalidate(
                BookCheck.CHECKSUM_FAIL,
                f"book {self.pair}: checksum after update {self.updates}: venue {checksum}, ours {expected}",
            )
        self.checksum_ok += 1
        return outcome

    def _invalidate(self, outcome: BookCheck, error: str) -> BookCheck:
        self.is_synced = False
        self.bids.clear()
        self.asks.clear()
        self.last_error = error
        return outcome

