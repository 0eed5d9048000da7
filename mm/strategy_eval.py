"""Offline, deterministic evaluation of the signal over capture files.

`market_events` turns a capture into one symbol's market, in file order, on the capture's receive
time: the book built by `mm.book_sync` (through `mm.book_replay.BookReplay`), one event per
applied diff (or loaded snapshot) with the top `depth` levels, and one per trade. Prices are in
the venue's real ticks: the grid inferred from the first frame is the finest the venue writes,
so the tick is the gcd of the snapshot's prices (`mm.ticks.infer_grid_from_levels`' rule).

`evaluate_signal` runs `SignalModel` on every book event and trade and returns its report (the
signal alone, fast, for tuning). Strategies are compared by the one engine (`mm replay`: the
pipeline's steps, and the fixed-spread baseline as another quoter step), not here.

A capture of several symbols is several markets: `book_symbols` names those with a REST depth
snapshot (the books a replay can build, one replay each), and `pooled_scores` pools their signal
reports' labels exactly (the sums of `versus_imbalance.all.sums`), as one predictor scoring all of
them would (bench/signal_acceptance.py, bench/signal_loco.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from mm.book import ASK, BID
from mm.book_replay import BookReplay
from mm.book_sync import Outcome
from mm.capture import CaptureEvent, DepthSnapshot, DepthUpdate, TradeFrame, read_capture
from mm.config import SignalConfig
from mm.signal import SignalModel
from mm.ticks import parse_price, parse_qty

BOOK = 0
TRADE = 1
SNAPSHOT_LEVELS = 5_000  # levels handed to the fill model on a (re)load
NS_PER_S = 1_000_000_000


class BookEvent(msgspec.Struct, gc=False):
    ts_ns: int
    bid_px: np.ndarray  # top `depth` levels, int64, best first, real ticks
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray
    n_bids: int
    n_asks: int
    diff_bids: list[tuple[int, int]]  # the levels this event changed (all levels on a load)
    diff_asks: list[tuple[int, int]]
    is_load: bool  # a snapshot (re)load: the fill model takes it whole


class TradeEvent(msgspec.Struct, gc=False):
    ts_ns: int
    px_tick: int
    qty_lot: int
    taker_side: int  # +1 buy / -1 sell


class MarketInfo:
    """What the stream learnt about the instrument: symbol, real tick and lot sizes, counts."""

    def __init__(self) -> None:
        self.symbol = ""
        self.tick_size = 0.0
        self.lot_size = 0.0
        self.tick_units = 0  # real tick in grid units
        self.book_events = 0
        self.trades = 0
        self.invalid_books = 0  # gap / crossed outcomes: the book was not usable


def market_events(
    events: Iterable[CaptureEvent], *, symbol: str | None = None, depth: int = 20, info: MarketInfo | None = None
) -> Iterator[BookEvent | TradeEvent]:
    """One symbol's book and trade events (the first symbol with a snapshot unless named)."""
    info = MarketInfo() if info is None else info
    replay = BookReplay()
    bid_px = np.zeros(depth, np.int64)
    bid_qty = np.zeros(depth, np.int64)
    ask_px = np.zeros(depth, np.int64)
    ask_qty = np.zeros(depth, np.int64)
    wanted = symbol.upper() if symbol else None
    tick_units = 0
    for event in events:
        frame = event.frame
        if wanted is not None and event.symbol != wanted:
            continue
        kind = type(frame)
        if kind is DepthUpdate or kind is DepthSnapshot:
            if wanted is None:
                if kind is DepthUpdate and event.symbol not in replay.books:
                    replay.book_of(event.symbol)
                if kind is DepthSnapshot:
                    wanted = event.symbol
            outcome = replay.on_event(event)
            if event.symbol != wanted:
                continue
            state = replay.books[wanted]
            if outcome is Outcome.LOADED:
                book = state.sync.book
                bids = book.levels(BID, SNAPSHOT_LEVELS)
                asks = book.levels(ASK, SNAPSHOT_LEVELS)
                if not tick_units:
                    for px, _ in bids + asks:
                        tick_units = math.gcd(tick_units, px)
                    tick_units = tick_units or 1
                    info.symbol = wanted
                    info.tick_units = tick_units
                    info.tick_size = float(state.grid.tick_size * tick_units)
                    info.lot_size = float(state.grid.lot_size)
                diff_bids = [(px // tick_units, qty) for px, qty in bids]
                diff_asks = [(px // tick_units, qty) for px, qty in asks]
                is_load = True
            elif outcome is Outcome.APPLIED and tick_units:
                raw_bids, raw_asks = state.parse(frame.b, frame.a)
                diff_bids = [(px // tick_units, qty) for px, qty in raw_bids]
                diff_asks = [(px // tick_units, qty) for px, qty in raw_asks]
                is_load = False
            else:
                if outcome is Outcome.GAP or outcome is Outcome.CROSSED:
                    info.invalid_books += 1
                continue
            n_bids, n_asks = state.sync.book.top(depth, bid_px, bid_qty, ask_px, ask_qty)
            if n_bids:
                bid_px[:n_bids] //= tick_units
            if n_asks:
                ask_px[:n_asks] //= tick_units
            info.book_events += 1
            yield BookEvent(event.recv_ts_ns, bid_px, bid_qty, ask_px, ask_qty, n_bids, n_asks, diff_bids,
                            diff_asks, is_load)
        elif kind is TradeFrame and tick_units and event.symbol == wanted:
            grid = replay.books[wanted].grid
            px_tick = parse_price(grid, frame.p) // tick_units
            qty_lot = parse_qty(grid, frame.q)
            info.trades += 1
            yield TradeEvent(event.recv_ts_ns, px_tick, qty_lot, -1 if frame.m else 1)


def evaluate_signal(
    paths: list[Path | str], cfg: SignalConfig | None = None, *, symbol: str | None = None, depth: int = 20
) -> dict[str, Any]:
    """SignalModel over every book event and trade of the capture: its report, market counts, and
    `second_half`: the same figures over the labels of the second half of the run only (the
    prequential predictions there were made online as well; comparable to a fit on the first half)."""
    model = SignalModel(cfg or SignalConfig(), keep_scored=True)
    info = MarketInfo()
    for event in market_events(read_capture(paths), symbol=symbol, depth=depth, info=info):
        if type(event) is BookEvent:
            model.on_book(event.ts_ns, event.bid_px, event.bid_qty, event.ask_px, event.ask_qty, event.n_bids,
                          event.n_asks)
        else:
            model.on_trade(event.ts_ns, event.px_tick, event.qty_lot, event.taker_side)
    report = model.report()  # with `second_half`: the model keeps its scored labels here
    report["market"] = {"symbol": info.symbol, "tick_size": info.tick_size, "book_events": info.book_events,
                        "trades": info.trades}
    return report


def book_symbols(path: Path | str) -> list[str]:
    """The symbols with a REST depth snapshot in a Binance capture, in file order."""
    from mm.capture import Envelope, read_lines, symbol_of_rest

    decoder = msgspec.json.Decoder(Envelope)
    found: list[str] = []
    for lines in read_lines(Path(path)):
        for line in lines:
            body = line.partition(b" ")[2]
            if not body.startswith(b'{"rest"'):
                continue
            rest = decoder.decode(body).rest
            symbol = symbol_of_rest(rest) if "/depth" in rest else ""
            if symbol and symbol not in found:
                found.append(symbol)
    return found


def pooled_scores(signal_reports: list[dict[str, Any]]) -> dict[str, float]:
    """The emitted prediction and the imbalance baseline scored on the labels of every report pooled
    (one per symbol: each its own book and model): r2_oos = 1 - sum SSE / sum SS, hit_rate = sum hits
    / sum moves, n and independent_labels summed. Labels of different symbols count as independent,
    an upper bound where the symbols move together."""
    n = moves = 0
    ss = sse = imbalance_sse = hits = independent = 0.0
    for report in signal_reports:
        sums = report["versus_imbalance"]["all"]["sums"]
        emitted, imbalance = sums["emitted"], sums["imbalance"]
        if emitted["n"] != imbalance["n"] or emitted["ss"] != imbalance["ss"]:
            raise ValueError(f"emitted and imbalance scores are not on the same labels "
                             f"({emitted['n']} vs {imbalance['n']} labels)")
        n += emitted["n"]
        ss += emitted["ss"]
        sse += emitted["sse"]
        imbalance_sse += imbalance["sse"]
        hits += emitted["hits"]
        moves += emitted["moves"]
        independent += float(report["independent_labels"])
    return {"r2_oos": 1.0 - sse / ss if ss > 0.0 else 0.0,
            "imbalance_r2_oos": 1.0 - imbalance_sse / ss if ss > 0.0 else 0.0,
            "hit_rate": hits / moves if moves else 0.0, "n": n, "independent_labels": independent}
