"""Validated books of the other venues (OKX `books`, Kraken `book-N`, Hyperliquid `l2Book`) built
from capture files.

Reads the capture line format of `../shared/data` (`<recv_ts_ns> <json>`, gzip or plain), tells
each frame's venue by its shape (`venue_of_frame`), and drives `mm.okx_book` / `mm.kraken_book`,
which validate the venue's CRC32 checksum on every frame that carries one, and
`mm.hyperliquid_book`, whose every push is a whole checked snapshot. A book that fails its
checksum stays invalid until the venue's next snapshot (live, the feed resubscribes; a capture
holds no new snapshot, so its book ends invalid and empty, and says so).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec

from mm.capture import CaptureStats, read_lines, read_stamped_lines
from mm.hyperliquid_book import HyperliquidBook
from mm.hyperliquid_frames import L2BookFrame, TradesFrame, parse_frame
from mm.kraken_book import KrakenBook, decode_kraken_book_frame
from mm.okx_book import BOOK_CHANNELS, OkxBook, decode_okx_book_frame

OKX = "okx"
KRAKEN = "kraken"
BINANCE = "binance"
HYPERLIQUID = "hyperliquid"
CHECKED_VENUES = (OKX, KRAKEN, HYPERLIQUID)  # venues build_checked_books builds
VENUE_SNIFF_LINES = 1000  # lines venue_of_file reads at most


def venue_of_frame(body: bytes) -> str | None:
    """The venue a frame's shape belongs to; None for a frame that names none (a Kraken
    heartbeat or status object, an empty line).

    Kraken v1 channel data are JSON arrays; OKX objects carry `"arg"` (pushes and subscribe
    replies alike); Binance combined streams `"stream"` and wrapped REST replies `"rest"`;
    Hyperliquid `"channel"` at the top level."""
    body = body.lstrip()
    if body.startswith(b"["):
        return KRAKEN
    if not body.startswith(b"{"):
        return None
    if body.startswith((b'{"stream":', b'{"rest":')):
        return BINANCE
    if b'"arg":' in body:
        return OKX
    if body.startswith(b'{"channel":'):
        return HYPERLIQUID
    if b'"connectionID"' in body or b'"channelName"' in body:
        return KRAKEN
    return None


def venue_of_file(path: Path | str, max_lines: int = VENUE_SNIFF_LINES) -> str | None:
    """The venue of the first of the file's first `max_lines` lines that names one."""
    seen = 0
    for lines in read_lines(Path(path)):
        for line in lines:
            _, _, body = line.partition(b" ")
            venue = venue_of_frame(body)
            if venue is not None:
                return venue
            seen += 1
            if seen >= max_lines:
                return None
    return None


class CheckedBooks:
    """Per-instrument OKX, Kraken and Hyperliquid books fed frame by frame (`on_frame`)."""

    def __init__(self) -> None:
        self.okx: dict[str, OkxBook] = {}
        self.kraken: dict[str, KrakenBook] = {}
        self.hyperliquid: dict[str, HyperliquidBook] = {}

    def on_frame(self, body: bytes, stats: CaptureStats, where: str) -> None:
        venue = venue_of_frame(body)
        try:
            if venue == OKX:
                if b'"action":' not in body:  # subscribe replies, trades, tickers
                    stats.skipped["okx"] += 1
                    return
                frame = decode_okx_book_frame(body)
                if frame.arg.channel not in BOOK_CHANNELS:
                    stats.skipped[f"okx {frame.arg.channel}"] += 1
                    return
                book = self.okx.get(frame.arg.inst_id)
                if book is None:
                    book = self.okx[frame.arg.inst_id] = OkxBook(frame.arg.inst_id)
                for outcome in book.apply_frame(frame):
                    stats.events[f"okx {outcome.value}"] += 1
            elif venue == KRAKEN and body.lstrip().startswith(b"["):
                frame = decode_kraken_book_frame(body)
                if frame is None:
                    stats.skipped["kraken"] += 1
                    return
                book = self.kraken.get(frame.pair)
                if book is None:
                    book = self.kraken[frame.pair] = KrakenBook(frame.pair, frame.depth)
                stats.events[f"kraken {book.apply_frame(frame).value}"] += 1
            elif venue == HYPERLIQUID:
                self._on_hyperliquid(body, stats)
            else:
                stats.skipped[venue or "control"] += 1
        except (msgspec.DecodeError, ValueError) as e:
            stats.add_malformed(where, str(e) or type(e).__name__)

    def _on_hyperliquid(self, body: bytes, stats: CaptureStats) -> None:
        frame = parse_frame(body)
        match frame:
            case L2BookFrame(data=push):
                book = self._hyperliquid_book(push.coin)
                stats.events[f"hyperliquid {book.apply(push)}"] += 1
            case TradesFrame(data=trades):
                for trade in trades:
                    self._hyperliquid_book(trade.coin).trades += 1
                stats.events["hyperliquid trades"] += len(trades)
            case _:
                stats.skipped[f"hyperliquid {type(frame).__name__}"] += 1

    def _hyperliquid_book(self, coin: str) -> HyperliquidBook:
        book = self.hyperliquid.get(coin)
        if book is None:
            book = self.hyperliquid[coin] = HyperliquidBook(coin)
        return book

    def result(self, depth: int) -> dict[str, dict]:
        books: list[tuple[str, str, OkxBook | KrakenBook]] = [
            *((OKX, name, book) for name, book in self.okx.items()),
            *((KRAKEN, name, book) for name, book in self.kraken.items()),
        ]
        out = {}
        for venue, name, book in sorted(books, key=lambda item: item[1]):
            bids, asks = book.top_text(depth)
            out[name] = {
                "bids": [list(level) for level in bids],
                "asks": [list(level) for level in asks],
                "venue": venue,
                "updates": book.updates,
                "checksum_ok": book.checksum_ok,
                "checksum_fail": book.checksum_fail,
                "gaps": book.gaps,
                "snapshots": book.snapshots,
                "resyncs": max(book.snapshots - 1, 0),
                "crossed": book.crossed,
                "invalid": book.rejected,
                "unsynced": book.unsynced,
                "synced": book.is_synced,
            }
        for name, hl_book in sorted(self.hyperliquid.items()):
            out[name] = hl_book.result(depth)
        return out


def build_checked_books(
    paths: Iterable[Path | str], depth: int = 10, stats: CaptureStats | None = None
) -> dict[str, dict]:
    """{INSTRUMENT: {"bids": [[price, qty], ...] best first, "asks": ..., "venue", "updates",
    "checksum_ok", "checksum_fail", "gaps", "snapshots", "resyncs", "crossed", "invalid",
    "unsynced", "synced"}} over the OKX and Kraken frames of the files, in file then line order;
    Hyperliquid coins with the keys of `HyperliquidBook.result`.

    Prices and quantities are the venue's text. `stats` (optional) collects lines, outcomes by
    venue (`events`), frames of other channels or venues (`skipped`) and malformed lines.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, was {depth}")
    stats = CaptureStats() if stats is None else stats
    books = CheckedBooks()
    on_frame = books.on_frame
    for where, _, body in read_stamped_lines(paths, stats):
        on_frame(body, stats, where)
    return books.result(depth)
