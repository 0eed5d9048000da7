"""The book builder over captures: the core of `mm book FEED... [--depth N] [--json]`.

Drives one `BookSync` per symbol from the capture's depth diffs and REST snapshots, with the
same rules the book process uses (`mm.book_sync`), and writes the final top N levels back as the
venue wrote them. Each symbol's grid is inferred from the first level seen (`mm.ticks`). A diff
with an off-grid, NaN or negative value is dropped and counted (`invalid`); the next diff then
finds the gap and the symbol resyncs. A capture holds one snapshot per symbol, so a resync
only completes if the file holds a later snapshot; otherwise the symbol ends `synced: false`.
The first few refusals per symbol (a gap, a crossed book, an invalid value) are kept as
`problems`, each with the file and line of the frame that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from mm.book import ASK, BID
from mm.book_sync import BookSync, Outcome
import msgspec

from mm.capture import (
    CaptureEvent,
    CaptureStats,
    DepthSnapshot,
    DepthUpdate,
    RawDepthUpdate,
    read_capture,
)
from mm.errors import OffGridError
from mm.ticks import TickGrid, format_price, format_qty, infer_grid, parse_json_sides, parse_sides


class ParsedDiff(msgspec.Struct, gc=False):
    """A depth diff whose levels `BookReplay.fast_depth` already parsed into ticks and lots."""

    U: int
    u: int
    pu: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


MAX_PROBLEMS = 5  # refusals named per symbol; the rest are only counted (gaps, crossed, invalid)


class SymbolBook:
    """One symbol's grid (None until its first level is seen), sync state and input drops."""

    __slots__ = ("symbol", "grid", "sync", "invalid", "last_error", "problems")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.grid: TickGrid | None = None
        self.sync = BookSync(symbol)
        self.invalid = 0  # frames dropped for an off-grid / NaN / negative value
        self.last_error = ""
        self.problems: list[str] = []  # the first MAX_PROBLEMS refusals, "file:line: what"

    def parse(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]):
        grid = self.grid
        if grid is None:
            first = bids[0] if bids else asks[0] if asks else None
            if first is None:
                return [], []
            grid = self.grid = infer_grid(self.symbol, first[0], first[1])
            self.sync.price_text = partial(format_price, grid)
        return parse_sides(grid, bids, asks)

    def top(self, depth: int) -> dict:
        book = self.sync.book
        grid = self.grid
        sides = {}
        for name, side in (("bids", BID), ("asks", ASK)):
            levels = book.levels(side, depth) if grid is not None else []
            sides[name] = [[format_price(grid, px), format_qty(grid, qty)] for px, qty in levels]
        sync = self.sync
        return {
            **sides,
            "updates": sync.updates,
            "gaps": sync.gaps,
            "resyncs": sync.resyncs,
            "crossed": sync.crossed,
            "stale": sync.stale,
            "invalid": self.invalid,
            "synced": sync.is_synced,
            "last_update_id": sync.last_id,
            "market": sync.market.value if sync.market is not None else None,
            "problems": list(self.problems),
        }


class BookReplay:
    """Feeds capture events to per-symbol books; `on_event` returns the sync outcome of a
    diff or snapshot (None for other frames and for dropped invalid ones). `where` (optional)
    names the event being fed (`CaptureStats.where`: file:line) in the problems kept."""

    def __init__(self, where: Callable[[], str] | None = None) -> None:
        self.books: dict[str, SymbolBook] = {}
        self._where = where

    def book_of(self, symbol: str) -> SymbolBook:
        state = self.books.get(symbol)
        if state is None:
            state = self.books[symbol] = SymbolBook(symbol)
        return state

    def fast_depth(self, symbol: str, frame: RawDepthUpdate) -> ParsedDiff | None:
        """`read_capture`'s hook: the diff's levels parsed from its JSON text on the symbol's
        grid, or None (grid not known yet, or text off the fast path) for the typed decode."""
        state = self.books.get(symbol)
        if state is None or state.grid is None:
            return None
        sides = parse_json_sides(state.grid, bytes(frame.b), bytes(frame.a))
        if sides is None:
            return None
        return ParsedDiff(frame.U, frame.u, frame.pu, sides[0], sides[1])

    def on_event(self, event: CaptureEvent) -> Outcome | None:
        frame = event.frame
        if type(frame) is ParsedDiff:
            state = self.books[event.symbol]
            outcome = state.sync.on_diff(frame.U, frame.u, frame.pu, frame.bids, frame.asks)
        elif type(frame) is DepthUpdate or type(frame) is DepthSnapshot:
            state = self.book_of(event.symbol)
            snapshot = type(frame) is DepthSnapshot
            try:
                bids, asks = state.parse(frame.bids, frame.asks) if snapshot else state.parse(frame.b, frame.a)
            except OffGridError as e:
                state.invalid += 1
                state.last_error = f"book {state.symbol}: {'snapshot' if snapshot else 'diff'} dropped: {e}"
                self._problem(state, state.last_error)
                return None
            if snapshot:
                outcome = state.sync.on_snapshot(frame.lastUpdateId, bids, asks)
            else:
                outcome = state.sync.on_diff(frame.U, frame.u, frame.pu, bids, asks)
        else:
            return None
        if outcome is Outcome.GAP or outcome is Outcome.CROSSED:
            self._problem(state, state.sync.last_problem)
        return outcome

    def _problem(self, state: SymbolBook, what: str) -> None:
        if len(state.problems) < MAX_PROBLEMS:
            where = self._where() if self._where is not None else ""
            state.problems.append(f"{where}: {what}" if where else what)

    def result(self, depth: int) -> dict[str, dict]:
        return {symbol: self.books[symbol].top(depth) for symbol in sorted(self.books)}


def replay_events(events: Iterable[CaptureEvent]) -> BookReplay:
    replay = BookReplay()
    on_event = replay.on_event
    for event in events:
        on_event(event)
    return replay


def build_books(
    paths: list[Path], depth: int, stats: CaptureStats | None = None
) -> dict[str, dict]:
    """{SYMBOL: {"bids": [[price, qty], ...] best first, "asks": ..., "updates", "gaps",
    "resyncs", "crossed", "stale", "invalid", "synced", "last_update_id", "market", "problems"}}.

    `stats` (optional) collects what the read saw, malformed lines included; only depth frames
    are decoded, so the other streams count in `stats.skipped`, by kind.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, was {depth}")
    stats = CaptureStats() if stats is None else stats
    replay = BookReplay(stats.where)
    on_event = replay.on_event
    for event in read_capture(paths, stats, kinds=("depth",), fast_depth=replay.fast_depth):
        on_event(event)
    return replay.result(depth)


def format_table(result: dict[str, dict]) -> str:
    """Human output of `mm book` without --json: per symbol a counts line and the ladder."""
    blocks = []
    for symbol, book in result.items():
        state = "synced" if book.get("synced", True) else "NOT SYNCED"
        head = (
            f"{symbol}  {state}  updates={book['updates']} gaps={book['gaps']} "
            f"resyncs={book.get('resyncs', 0)} crossed={book.get('crossed', 0)} "
            f"stale={book.get('stale', 0)} invalid={book.get('invalid', 0)}"
        )
        bids, asks = book["bids"], book["asks"]
        rows = [(f"{q}", f"{p}", f"{ap}", f"{aq}") for (p, q), (ap, aq) in zip(bids, asks)]
        rows += [(q, p, "", "") for p, q in bids[len(asks) :]]
        rows += [("", "", p, q) for p, q in asks[len(bids) :]]
        header = ("bid qty", "bid", "ask", "ask qty")
        widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(4)]
        lines = [head, _table_row(header, widths)]
        lines += [_table_row(row, widths) for row in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "(no books)"


def _table_row(cells: tuple[str, str, str, str], widths: list[int]) -> str:
    qty_bid, bid, ask, qty_ask = cells
    return (
        f"{qty_bid:>{widths[0]}}  {bid:>{widths[1]}} | {ask:<{widths[2]}}  {qty_ask:<{widths[3]}}"
    ).rstrip()
