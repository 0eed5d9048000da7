"""Capture files -> the feed's messages for one symbol, in receive order.

Binance frames are decoded once (mm/capture.py); OKX, Kraken and Hyperliquid frames go through
their venue's book checks first. Either way processes/feed_convert.py turns them into messages,
the decimal text converted exactly to ticks and lots on the instrument's grid (mm/ticks.py) -- the
converter the live feed uses, so replay refuses what live refuses. A refused frame is counted by
its reason in `dropped`; a malformed line is counted by the capture reader. What the book stage
will refuse of a Binance capture or tardis CSV (a crossed snapshot, a gap in the update ids) is found
here too, by the book's own sync rules on the ids, since only here are the file and line known. Each
refusal is kept as `file:line: what` in `problems` (cached with the messages) and logged, the first
MAX_PROBLEMS of them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from ipc.messages import BookSnapshot, DepthDiff
from mm.book_sync import BookSync, Outcome
from mm.capture import CaptureStats, DepthSnapshot, read_capture, read_lines, read_stamped_lines
from mm.config import Config
from mm.errors import OffGridError
from mm.hyperliquid_frames import L2BookFrame, parse_frame
from mm.kraken_book import decode_kraken_book_frame
from mm.tardis_csv import csv_kind, tardis_instrument
from mm.okx_book import BOOK_CHANNELS, decode_okx_book_frame, infer_text_grid
from mm.ticks import TickGrid, format_price, grid_from_sizes, infer_grid_from_levels
from mm.venue_books import BINANCE, CHECKED_VENUES, KRAKEN, OKX, venue_of_file
from processes import capture_cache
from processes.feed_convert import CheckedBookFeed, Drop, binance_message, symbol_name

log = logging.getLogger(__name__)

GRID_FRAMES = 200  # book frames of the instrument whose decimals give a checked venue's grid
MAX_PROBLEMS = 20  # refusals kept and logged one by one; the rest are only counted


class CaptureInstrument(NamedTuple):
    """What a replay trades: the capture's venue, its name of the instrument, and the grid (whose
    `symbol` is the pipeline's name of it, feed_convert.symbol_name)."""

    venue: str
    instrument: str
    grid: TickGrid


def first_snapshot_grid(paths: list[Path], symbol: str | None) -> tuple[str, TickGrid]:
    """The symbol and grid of the first Binance depth snapshot in the files (of `symbol`, or of any
    symbol when None) that gives one. A snapshot with a NaN, negative or no level is passed over, as
    the book drops it; when no snapshot gives a grid, the error names the first refused by file:line
    (or, with none at all, the malformed lines that may have been one)."""
    stats = CaptureStats()
    files = ", ".join(map(str, paths))
    of = f" of {symbol}" if symbol else ""
    refused = ""
    for event in read_capture(paths, stats):
        frame = event.frame
        if type(frame) is DepthSnapshot and (symbol is None or event.symbol == symbol):
            try:
                return event.symbol, infer_grid_from_levels(event.symbol, [*frame.bids, *frame.asks])
            except OffGridError as e:
                refused = refused or f"{stats.where()}: depth snapshot {frame.lastUpdateId} refused: {e}"
    if refused:
        raise OffGridError(f"{refused}; no other depth snapshot{of} in {files}: cannot build a book")
    why = f"{stats.lines} lines"
    if stats.malformed_count:
        why += f", {stats.malformed_count} malformed; the first: {stats.malformed[0]}"
    if stats.damaged:
        why += f"; {stats.damaged[0]}"
    raise OffGridError(f"{files}: no depth snapshot{of} ({why}): cannot build a book")


def _book_levels(venue: str, body: bytes) -> tuple[str, list[tuple[str, str]], bool] | None:
    """(instrument, every level's (px, sz) text, is a snapshot) of a checked venue's book frame."""
    try:
        if venue == OKX:
            if b'"action":' not in body:
                return None
            frame = decode_okx_book_frame(body)
            if frame.arg.channel not in BOOK_CHANNELS:
                return None
            levels = [(lv[0], lv[1]) for data in frame.data for lv in (*data.bids, *data.asks)]
            return frame.arg.inst_id, levels, frame.action == "snapshot"
        if venue == KRAKEN:
            if not body.lstrip().startswith(b"["):
                return None
            kraken = decode_kraken_book_frame(body)
            if kraken is None:
                return None
            levels, snapshot = [], False
            for p in kraken.payloads:
                for side in (p.snapshot_bids, p.snapshot_asks, p.bids, p.asks):
                    levels.extend((lv[0], lv[1]) for lv in side or ())
                snapshot = snapshot or p.snapshot_bids is not None or p.snapshot_asks is not None
            return kraken.pair, levels, snapshot
        frame = parse_frame(body)
        if type(frame) is not L2BookFrame:
            return None
        bids, asks = frame.data.levels
        return frame.data.coin, [(lv.px, lv.sz) for lv in (*bids, *asks)], True
    except (msgspec.DecodeError, ValueError, IndexError, TypeError):
        return None  # the replay counts it, with its line number


def capture_instrument(paths: list[Path], symbol: str | None) -> CaptureInstrument:
    """The instrument a replay of `paths` trades: `symbol` (the venue's name or the pipeline's), or
    the first with a book snapshot; its grid from the first snapshot (Binance) or the finest
    decimals of its first GRID_FRAMES book frames (venues that drop trailing zeros); a tardis CSV's
    from the finest decimals and the GCD of the prices of its first rows (mm.tardis_csv)."""
    if csv_kind(paths[0]) is not None:  # tardis CSV: its rows are Binance-shaped frames (mm/tardis_csv.py)
        name, price_decimals, qty_decimals, tick_units, _ = tardis_instrument(paths, symbol)
        return CaptureInstrument(BINANCE, name, TickGrid(name, price_decimals, qty_decimals, tick_units, 1))
    venue = venue_of_file(paths[0]) or BINANCE
    if venue not in CHECKED_VENUES:
        found, grid = first_snapshot_grid(paths, symbol)
        return CaptureInstrument(BINANCE, found, grid)
    wanted = symbol_name(symbol) if symbol else None
    instrument, levels, frames = None, [], 0
    for path in paths:
        for lines in read_lines(path):
            for line in lines:
                found = _book_levels(venue, line.partition(b" ")[2])
                if found is None:
                    continue
                name, frame_levels, is_snapshot = found
                if instrument is None:
                    if not is_snapshot or (wanted is not None and symbol_name(name) != wanted):
                        continue
                    instrument = name
                elif name != instrument:
                    continue
                levels.extend(frame_levels)
                frames += 1
                if frames >= GRID_FRAMES:
                    break
            if frames >= GRID_FRAMES:
                break
    if instrument is None:
        raise OffGridError(f"{', '.join(map(str, paths))}: no {venue} book snapshot"
                           + (f" of {symbol}" if symbol else "") + ": cannot build a book")
    return CaptureInstrument(venue, instrument, infer_text_grid(symbol_name(instrument), levels))


def grid_for(paths: list[Path], symbol: str | None) -> TickGrid:
    return capture_instrument(paths, symbol).grid


def replay_source(config: Config) -> ReplaySource:
    """The replay of `[replay] files` for `[instrument] symbol`, on the config's tick and lot sizes
    written in the decimals the capture uses."""
    paths = [Path(p) for p in config.replay.files]
    inst = config.instrument
    found = capture_instrument(paths, inst.symbol)
    grid = grid_from_sizes(inst.symbol, inst.tick_size, inst.lot_size,
                           found.grid.price_decimals, found.grid.qty_decimals)
    return ReplaySource(paths, grid, venue=found.venue, instrument=found.instrument)


class ReplaySource:
    def __init__(self, paths: list[Path], grid: TickGrid, venue: str = BINANCE, instrument: str | None = None) -> None:
        self.paths = paths
        self.grid = grid
        self.symbol = grid.symbol
        self.venue = venue
        self.instrument = instrument or grid.symbol
        self.capture_stats = CaptureStats()
        self.dropped: Counter[str] = Counter()
        self.problems: list[str] = []  # the first MAX_PROBLEMS refusals, "file:line: what"
        self.problem_count = 0
        self.first_ts_ns = 0
        self.last_ts_ns = 0
        self.from_cache = False

    def messages(self) -> Iterator[Any]:
        """Messages with ts_feed_ns = 0 (the feed stamps them when it sends), from the decoded-capture
        cache when it holds this input (processes/capture_cache.py), else decoded and then cached."""
        key = capture_cache.cache_key(self.paths, self.symbol, self.grid)
        where = capture_cache.cache_path(self.paths, key)
        cached = capture_cache.load(where, key)
        if cached is not None and "problems" in cached.capture:  # a cache from before problems were kept: decode
            stats = cached.capture
            self.capture_stats.lines = stats["lines"]
            self.capture_stats.events.update(stats["events"])
            self.capture_stats.skipped.update(stats["skipped"])
            self.capture_stats.malformed_count = stats["malformed"]
            self.capture_stats.malformed.extend(stats["malformed_lines"])
            self.dropped.update(cached.dropped)
            self.first_ts_ns, self.last_ts_ns = cached.first_ts_ns, cached.last_ts_ns
            self.problem_count = stats["problem_count"]
            self.problems.extend(stats["problems"])
            if self.problem_count:  # each was logged when the capture was decoded: say them once, in one line
                log.warning("replay: %d refusal(s) of this capture, found when it was decoded (from the cache; the "
                            "report's feed.problems lists them), the first: %s", self.problem_count, self.problems[0])
            self.from_cache = True
            yield from cached.messages
            return
        messages: list[Any] = []
        for msg in self._decode():
            messages.append(msg)
            yield msg
        self._log_more_problems()
        capture = {**self.capture_stats.as_dict(), "problems": self.problems, "problem_count": self.problem_count}
        capture_cache.store(where, capture_cache.CachedFeed(
            version=capture_cache.CONVERTER_VERSION, key=key, messages=messages, capture=capture,
            dropped=dict(self.dropped), first_ts_ns=self.first_ts_ns, last_ts_ns=self.last_ts_ns))

    def _decode(self) -> Iterator[Any]:
        return self._decode_checked() if self.venue in CHECKED_VENUES else self._decode_binance()

    def _decode_binance(self) -> Iterator[Any]:
        grid = self.grid
        symbol = self.symbol
        stats = self.capture_stats
        # the book's sync rules on the ids and the snapshots' levels (diffs' levels left out: cheap), to name
        # by file:line the crossed snapshot and the gap that the book stage will count
        sync = BookSync(symbol)
        sync.price_text = partial(format_price, grid)
        on_diff = sync.on_diff
        no_levels: list[tuple[int, int]] = []
        for event in read_capture(self.paths, stats):
            if event.symbol != symbol:
                continue
            ts = event.recv_ts_ns
            if not self.first_ts_ns:
                self.first_ts_ns = ts
            self.last_ts_ns = ts
            msg = binance_message(symbol, event.frame, grid, ts, 0)
            kind = type(msg)
            if kind is DepthDiff:
                outcome = on_diff(msg.first_id, msg.final_id, msg.prev_final_id, no_levels, no_levels)
            elif kind is BookSnapshot:
                outcome = sync.on_snapshot(msg.last_id, msg.bids, msg.asks)
            elif kind is Drop:
                self._count_drop(msg, stats.where())
                continue
            else:
                yield msg
                continue
            if outcome is Outcome.GAP or outcome is Outcome.CROSSED:
                self._problem(stats.where(), sync.last_problem)
            yield msg

    def _decode_checked(self) -> Iterator[Any]:
        """OKX / Kraken / Hyperliquid lines (`<recv_ts_ns> <json>`) through the venue's checks."""
        stats = self.capture_stats
        feed = CheckedBookFeed(self.venue, self.instrument, self.grid)
        convert = feed.convert
        for where, ts, body in read_stamped_lines(self.paths, stats):
            items = convert(body, ts, 0)
            if not items:
                stats.skipped[self.venue] += 1
                continue
            if not self.first_ts_ns:
                self.first_ts_ns = ts
            self.last_ts_ns = ts
            for item in items:
                if type(item) is Drop:
                    if item.reason == "decode_error":
                        stats.add_malformed(where, item.detail)
                    else:
                        self._count_drop(item, where)
                else:
                    stats.events[type(item).__name__] += 1
                    yield item

    def _count_drop(self, drop: Drop, where: str) -> None:
        self.dropped[drop.reason] += 1
        self._problem(where, f"frame dropped ({drop.reason}): {drop.detail}")

    def _problem(self, where: str, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            problem = f"{where}: {what}" if where else what
            self.problems.append(problem)
            self._log_problem(problem)

    def _log_problem(self, problem: str) -> None:
        log.warning("replay: %s", problem)

    def _log_more_problems(self) -> None:
        if self.problem_count > len(self.problems):
            log.warning("replay: %d more refusals like these, counted only", self.problem_count - len(self.problems))
