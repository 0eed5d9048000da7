"""Offline, deterministic evaluation of the strategy over capture files (what `mm replay` reports).

`market_events` turns a capture into one symbol's market, in file order, on the capture's receive
time: the book built by `mm.book_sync` (through `mm.book_replay.BookReplay`), one event per
applied diff (or loaded snapshot) with the top `depth` levels, and one per trade. Prices are in
the venue's real ticks: the grid inferred from the first frame is the finest the venue writes,
so the tick is the gcd of the snapshot's prices (`mm.ticks.infer_grid_from_levels`' rule).

`evaluate_signal` runs `SignalModel` on every book event and trade and returns its report.
`backtest` runs the quoting strategy (signal + `compute_quotes` + `plan_requote_levels` + the
position limit) and a fixed-spread baseline (mid +- k ticks, no skew, no signal) against
`mm.fill_model.FillModel` with an order latency, on the same events, and returns for each: PnL
(marked to the last mid, fees included), PnL per traded notional, max |inventory|, fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from mm.book import ASK, BID
from mm.book_replay import BookReplay
from mm.book_sync import Outcome
from mm.capture import CaptureEvent, DepthSnapshot, DepthUpdate, TradeFrame, read_capture
from mm.config import QuoterConfig, SignalConfig
from mm.fill_model import Canceled, Filled, FillModel, Rejected
from mm.position import Position
from mm.quoting import CancelAction, WorkingOrder, compute_quotes, plan_requote_levels
from mm.signal import Prediction, SignalModel
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


class _Agent:
    """One quoting strategy against its own FillModel: working orders, position, fill counts."""

    def __init__(self, name: str, cfg: QuoterConfig, *, use_signal: bool, fill: FillModel, info: MarketInfo,
                 max_position_lot: int) -> None:
        self.name = name
        self.cfg = cfg
        self.use_signal = use_signal
        self.fill = fill
        self.position = Position(info.tick_size, info.lot_size)
        self.quote_per_tick_lot = info.tick_size * info.lot_size
        self.max_position_lot = max_position_lot
        self.working: dict[str, WorkingOrder] = {}
        self.max_abs_position_lot = 0
        self.notional_quote = 0.0
        self.maker_fills = 0
        self.places = 0
        self.cancels = 0
        self.rejects = 0
        self._next_id = 0
        self._max_age_ns = int(cfg.max_order_age_s * NS_PER_S)

    def on_fill_events(self, events: list) -> None:
        for event in events:
            kind = type(event)
            if kind is Filled:
                self.position.apply_fill(event.side, event.px_tick, event.qty_lot, event.fee_quote)
                self.notional_quote += event.px_tick * event.qty_lot * self.quote_per_tick_lot
                self.maker_fills += event.is_maker
                self.max_abs_position_lot = max(self.max_abs_position_lot, abs(self.position.position_lot))
                order = self.working.get(event.client_id)
                if order is not None:
                    if event.leaves_lot == 0:
                        del self.working[event.client_id]
                    else:
                        self.working[event.client_id] = msgspec.structs.replace(order, qty_lot=event.leaves_lot)
            elif kind is Canceled or kind is Rejected:
                if kind is Rejected:
                    self.rejects += 1
                self.working.pop(event.client_id, None)

    def decide(self, ts_ns: int, best_bid_tick: int, best_ask_tick: int, prediction: Prediction | None) -> None:
        predicted_return, volatility, alpha = 0.0, 0.0, False
        if self.use_signal and prediction is not None and prediction.healthy:
            predicted_return = prediction.predicted_return
            volatility = prediction.volatility_bps_per_s
            alpha = prediction.alpha_enabled
        ladder = compute_quotes(
            self.cfg, best_bid_tick=best_bid_tick, best_ask_tick=best_ask_tick,
            position_lot=self.position.position_lot, max_position_lot=self.max_position_lot,
            predicted_return=predicted_return, volatility_bps_per_s=volatility, alpha_enabled=alpha,
        )
        actions = plan_requote_levels(ladder, list(self.working.values()), tolerance_ticks=self.cfg.requote_tolerance_ticks,
                                      max_age_ns=self._max_age_ns, now_ns=ts_ns)
        for action in actions:
            if type(action) is CancelAction:
                self.cancels += 1
                self.working.pop(action.client_id, None)
                self.on_fill_events(self.fill.cancel(ts_ns, action.client_id))
            else:
                self._next_id += 1
                client_id = f"{self.name}-{self._next_id}"
                self.places += 1
                self.working[client_id] = WorkingOrder(client_id, action.side, action.px_tick, action.qty_lot, ts_ns)
                self.on_fill_events(self.fill.submit(ts_ns, client_id, action.side, action.px_tick, action.qty_lot,
                                                     True))

    def result(self, mark_px_tick: float) -> dict[str, Any]:
        snap = self.position.snapshot(mark_px_tick)
        pnl = snap["total"]
        return {
            "pnl_quote": pnl,
            "pnl_per_notional_bps": pnl / self.notional_quote * 1e4 if self.notional_quote > 0 else 0.0,
            "traded_notional_quote": self.notional_quote,
            "max_abs_inventory": self.max_abs_position_lot * self.position._lot_size,
            "fills": self.position.fills,
            "maker_fills": self.maker_fills,
            "realized_quote": snap["realized"],
            "unrealized_quote": snap["unrealized"],
            "fees_quote": snap["fees"],
            "final_inventory": snap["position"],
            "places": self.places,
            "cancels": self.cancels,
            "rejects": self.rejects,
        }


def default_strategy_quoter(size_lot: int) -> QuoterConfig:
    """The backtest's strategy quoter: GLFT pricing with the signal's drift, one level."""
    return QuoterConfig(size_lot=size_lot, min_half_spread_ticks=0.5, vol_spread_mult=0.0, risk_aversion=0.05,
                        arrival_intensity_per_s=1.0, arrival_decay_per_tick=1.0, alpha_weight=1.0,
                        requote_tolerance_ticks=1, max_order_age_s=30.0)


def backtest(
    paths: list[Path | str],
    *,
    signal_cfg: SignalConfig | None = None,
    quoter_cfg: QuoterConfig | None = None,
    order_qty: float,
    max_position: float,
    baseline_half_spread_ticks: float = 1.0,
    latency_ms: float = 10.0,
    maker_fee_bps: float = 0.0,
    taker_fee_bps: float = 4.0,
    cancel_ahead_ratio: float = 0.5,
    symbol: str | None = None,
    depth: int = 20,
) -> dict[str, Any]:
    """The quoting strategy vs a fixed-spread baseline (mid +- `baseline_half_spread_ticks`, no skew,
    no signal, same size and position limit) under the queue-position fill model, one pass.

    `order_qty` and `max_position` are in base units (e.g. 0.001 BTC); `quoter_cfg.size_lot` is
    replaced by `order_qty` in lots. Both quote on every book event (requote tolerance and max age
    from the quoter config); PnL is marked to the last mid and includes fees.
    """
    signal = SignalModel(signal_cfg or SignalConfig())
    info = MarketInfo()
    agents: list[_Agent] = []
    last_mid_tick = 0.0
    prediction: Prediction | None = None
    for event in market_events(read_capture(paths), symbol=symbol, depth=depth, info=info):
        if not agents:
            lot_size = Decimal(str(info.lot_size))
            size_lot = max(1, int(Decimal(str(order_qty)) / lot_size))
            max_position_lot = max(size_lot, int(Decimal(str(max_position)) / lot_size))
            strategy_cfg = msgspec.structs.replace(quoter_cfg or default_strategy_quoter(size_lot), size_lot=size_lot)
            baseline_cfg = QuoterConfig(size_lot=size_lot, min_half_spread_ticks=baseline_half_spread_ticks,
                                        vol_spread_mult=0.0, skew_ticks_per_lot=0.0, alpha_weight=0.0,
                                        requote_tolerance_ticks=strategy_cfg.requote_tolerance_ticks,
                                        max_order_age_s=strategy_cfg.max_order_age_s)
            for name, cfg, use_signal in (("strategy", strategy_cfg, True), ("fixed_spread", baseline_cfg, False)):
                fill = FillModel(latency_ns=int(latency_ms * 1_000_000), maker_fee_bps=maker_fee_bps,
                                 taker_fee_bps=taker_fee_bps, cancel_ahead_ratio=cancel_ahead_ratio,
                                 tick_size=info.tick_size, lot_size=info.lot_size)
                agents.append(_Agent(name, cfg, use_signal=use_signal, fill=fill, info=info,
                                     max_position_lot=max_position_lot))
        if type(event) is BookEvent:
            prediction = signal.on_book(event.ts_ns, event.bid_px, event.bid_qty, event.ask_px, event.ask_qty,
                                        event.n_bids, event.n_asks)
            for agent in agents:
                if event.is_load:
                    agent.on_fill_events(agent.fill.on_snapshot(event.ts_ns, event.diff_bids, event.diff_asks))
                else:
                    agent.on_fill_events(agent.fill.on_depth(event.ts_ns, event.diff_bids, event.diff_asks))
            if event.n_bids and event.n_asks:
                best_bid_tick = int(event.bid_px[0])
                best_ask_tick = int(event.ask_px[0])
                last_mid_tick = 0.5 * (best_bid_tick + best_ask_tick)
                for agent in agents:
                    agent.decide(event.ts_ns, best_bid_tick, best_ask_tick, prediction)
        else:
            for agent in agents:
                agent.on_fill_events(agent.fill.on_trade(event.ts_ns, event.px_tick, event.qty_lot, event.taker_side))
    results = {agent.name: agent.result(last_mid_tick) for agent in agents}
    results["settings"] = {"symbol": info.symbol, "tick_size": info.tick_size, "latency_ms": latency_ms,
                           "order_qty": order_qty, "max_position": max_position,
                           "baseline_half_spread_ticks": baseline_half_spread_ticks,
                           "maker_fee_bps": maker_fee_bps, "book_events": info.book_events, "trades": info.trades}
    results["signal"] = signal.report()
    return results
