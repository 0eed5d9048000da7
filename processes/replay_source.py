"""Capture files -> the feed's messages for one symbol, in receive order.

Frames are decoded once (mm/capture.py) and their decimal text converted exactly to ticks and
lots on the instrument's grid (mm/ticks.py). A frame with a value off the grid, NaN or negative
is dropped and counted with its reason; a malformed line is counted by the capture reader.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ipc.messages import BookSnapshot, BookTicker, DepthDiff, Trade
from processes import capture_cache
from mm.capture import (
    AggTradeFrame,
    BookTickerFrame,
    CaptureStats,
    DepthSnapshot,
    DepthUpdate,
    TradeFrame,
    read_capture,
)
from mm.errors import OffGridError
from mm.ticks import TickGrid, infer_grid_from_levels, parse_levels, parse_price, parse_qty

log = logging.getLogger(__name__)

MS = 1_000_000


def first_snapshot(paths: list[Path], symbol: str | None) -> tuple[str, DepthSnapshot]:
    """The first depth snapshot in the files (of `symbol`, or of any symbol when None)."""
    for event in read_capture(paths):
        if isinstance(event.frame, DepthSnapshot) and (symbol is None or event.symbol == symbol):
            return event.symbol, event.frame
    raise OffGridError(f"{', '.join(map(str, paths))}: no depth snapshot"
                       + (f" of {symbol}" if symbol else "") + ": cannot build a book")


def grid_for(paths: list[Path], symbol: str | None) -> TickGrid:
    found, snapshot = first_snapshot(paths, symbol)
    return infer_grid_from_levels(found, [*snapshot.bids, *snapshot.asks])


class ReplaySource:
    def __init__(self, paths: list[Path], grid: TickGrid) -> None:
        self.paths = paths
        self.grid = grid
        self.symbol = grid.symbol
        self.capture_stats = CaptureStats()
        self.dropped: Counter[str] = Counter()
        self.first_ts_ns = 0
        self.last_ts_ns = 0
        self.from_cache = False

    def messages(self) -> Iterator[Any]:
        """Messages with ts_feed_ns = 0 (the feed stamps them when it sends), from the decoded-capture
        cache when it holds this input (processes/capture_cache.py), else decoded and then cached."""
        key = capture_cache.cache_key(self.paths, self.symbol, self.grid)
        where = capture_cache.cache_path(self.paths, key)
        cached = capture_cache.load(where, key)
        if cached is not None:
            stats = cached.capture
            self.capture_stats.lines = stats["lines"]
            self.capture_stats.events.update(stats["events"])
            self.capture_stats.skipped.update(stats["skipped"])
            self.capture_stats.malformed_count = stats["malformed"]
            self.capture_stats.malformed.extend(stats["malformed_lines"])
            self.dropped.update(cached.dropped)
            self.first_ts_ns, self.last_ts_ns = cached.first_ts_ns, cached.last_ts_ns
            self.from_cache = True
            yield from cached.messages
            return
        messages: list[Any] = []
        for msg in self._decode():
            messages.append(msg)
            yield msg
        capture_cache.store(where, capture_cache.CachedFeed(
            version=capture_cache.CONVERTER_VERSION, key=key, messages=messages, capture=self.capture_stats.as_dict(),
            dropped=dict(self.dropped), first_ts_ns=self.first_ts_ns, last_ts_ns=self.last_ts_ns))

    def _decode(self) -> Iterator[Any]:
        grid = self.grid
        symbol = self.symbol
        for event in read_capture(self.paths, self.capture_stats):
            if event.symbol != symbol:
                continue
            ts = event.recv_ts_ns
            if not self.first_ts_ns:
                self.first_ts_ns = ts
            self.last_ts_ns = ts
            frame = event.frame
            try:
                match frame:
                    case DepthUpdate():
                        yield DepthDiff(symbol=symbol, first_id=frame.U, final_id=frame.u, prev_final_id=frame.pu,
                                        ts_event_ns=frame.E * MS, ts_recv_ns=ts, ts_feed_ns=0,
                                        bids=parse_levels(grid, frame.b), asks=parse_levels(grid, frame.a))
                    case TradeFrame() | AggTradeFrame():
                        trade_id = frame.t if isinstance(frame, TradeFrame) else frame.a
                        yield Trade(symbol=symbol, trade_id=trade_id, px_tick=parse_price(grid, frame.p),
                                    qty_lot=parse_qty(grid, frame.q), taker_side=-1 if frame.m else 1,
                                    ts_event_ns=frame.T * MS, ts_recv_ns=ts, ts_feed_ns=0)
                    case BookTickerFrame():
                        yield BookTicker(symbol=symbol, update_id=frame.u, bid_px_tick=parse_price(grid, frame.b),
                                         bid_qty_lot=parse_qty(grid, frame.B), ask_px_tick=parse_price(grid, frame.a),
                                         ask_qty_lot=parse_qty(grid, frame.A), ts_event_ns=frame.E * MS,
                                         ts_recv_ns=ts, ts_feed_ns=0)
                    case DepthSnapshot():
                        yield BookSnapshot(symbol=symbol, last_id=frame.lastUpdateId, ts_event_ns=frame.E * MS,
                                           ts_recv_ns=ts, ts_feed_ns=0, bids=parse_levels(grid, frame.bids),
                                           asks=parse_levels(grid, frame.asks))
            except OffGridError as e:
                self.dropped[type(frame).__name__] += 1
                if self.dropped.total() <= 20:
                    log.warning("dropped %s frame at %d: %s", type(frame).__name__, ts, e)
