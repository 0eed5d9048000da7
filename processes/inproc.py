"""The in-process replay engine: the six stages' steps (mm/stages/) in one process, in the
replay lockstep's order, with no sockets, shared memory or barrier round trips.

It is the same schedule the six processes follow in a lockstep replay, written out:

1. the feed sends the capture's messages (book tickers skipped) in intervals: a trade-only run,
   or one book-changing message (diff or snapshot); each interval ends with a barrier;
2. the book and the sim venue apply the interval's messages (the venue's answers are held);
3. at the barrier the book publishes its top if it changed; the signal takes the trades since the
   last book change and the book, and predicts; the quoter decides on that book and prediction;
   risk checks the decision against the same book and prediction (at the event's time) and the
   gateway hands what passed to the sim venue after the interval's market data;
4. the venue's answers are released to risk and the quoter, and risk's status to the quoter;
5. at the end of the capture the quoter cancels its working orders, risk forwards the cancels,
   the gateway (which applies no command after the last barrier) cancels everything at the venue
   and lets the order-entry latency pass, and risk and the quoter take the last answers.

Every stage's counters (messages in and out, as the processes count them) and stats come out as
the processes write them, so both engines give the same report, byte for byte.

The book and the signal read only the capture, never an order: what they publish at each barrier
is the same whatever the strategy. `MarketTape` records it once (the market side run alone over
the messages), and `InprocReplay.run(..., tape=)` then runs a strategy's quoter, risk and gateway
on the record instead of running the book and the signal again: the pipeline and the fixed-spread
baseline (a forked child) share one market pass, with the same result as each running its own.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from ipc.messages import BookSnapshot, BookTicker, DepthDiff, Trade
from ipc.shm_layout import SIGNAL_DTYPE, TRADE_DTYPE, book_top_dtype
from mm.config import Config
from mm.fill_model import Accepted, Canceled, Filled, Rejected
from mm.journal import Tail
from mm.stages.book import BookStep
from mm.stages.commands import Cancel, CancelEverything, Place, Rejection
from mm.stages.gateway import GatewayStep
from mm.stages.quoter import QuoterStep
from mm.stages.risk import MarketRead, RiskStep, StatusChanged
from mm.stages.signal import SignalStep
from mm.stats import SampleBuffer, percentiles_ns

HOPS = ("feed_to_book", "book_to_quoter", "quoter_to_risk", "risk_to_gateway")
TRADE_BATCH = 256


class Counts:
    """Messages in and out of one stage, counted as the process's actor counts them."""

    __slots__ = ("msgs_in", "msgs_out")

    def __init__(self) -> None:
        self.msgs_in = self.msgs_out = 0


AFTER_TRADES, AFTER_BOOK = 0, 1  # the barriers of the schedule (lockstep), in its message stream


class MarketSide:
    """The book and the signal steps: each market message into the book (trades into the signal's
    buffer), and at a barrier the book's top, if it changed, published and predicted on."""

    def __init__(self, config: Config) -> None:
        self.book = BookStep(config)
        self.signal = SignalStep(config, keep_scored=True)
        self.book_counts, self.signal_counts = Counts(), Counts()
        self.top = np.zeros(1, book_top_dtype(config.book.depth))[0]  # the book slot
        self._levels = (self.top["bid_px"], self.top["bid_qty"], self.top["ask_px"], self.top["ask_qty"])
        self.prediction = np.zeros(1, SIGNAL_DTYPE)[0]  # the prediction slot
        self.trades = np.zeros(TRADE_BATCH, TRADE_DTYPE)
        self.n_trades = 0

    def on_message(self, msg: Any, t: type) -> None:
        self.book_counts.msgs_in += 1
        book = self.book
        if t is DepthDiff:
            book.on_diff(msg.first_id, msg.final_id, msg.prev_final_id, msg.bids, msg.asks, msg.ts_recv_ns,
                         msg.ts_feed_ns, msg.ts_recv_ns)
        elif t is Trade:
            book.on_trade()
            self._push_trade(msg)
        elif t is BookSnapshot:
            book.on_snapshot(msg.last_id, msg.bids, msg.asks, msg.ts_recv_ns, msg.ts_feed_ns, msg.ts_recv_ns)

    def _push_trade(self, msg: Trade) -> None:
        if self.n_trades == TRADE_BATCH:
            self.signal.on_trades(self.trades)
            self.n_trades = 0
        rec = self.trades[self.n_trades]
        rec["ts_event_ns"], rec["px_tick"], rec["qty_lot"], rec["taker_side"] = (
            msg.ts_event_ns, msg.px_tick, msg.qty_lot, msg.taker_side)
        self.n_trades += 1

    def finish(self) -> None:
        """End of stream: the trades no book change took (after a gap the book may publish no more)
        go to the signal, as the signal process reads what is left of its ring at end of stream."""
        if self.n_trades:
            self.signal.on_trades(self.trades[:self.n_trades])
            self.n_trades = 0

    def at_barrier(self) -> bool:
        """Publish the top and predict on it if the book changed since the last barrier: True if so."""
        if not self.book.has_news():
            return False
        published = self.book.publish(*self._levels)
        assert published is not None
        top = self.top
        top["update_id"], top["ts_recv_ns"], top["ts_feed_ns"] = (
            published.update_id, published.ts_recv_ns, published.ts_feed_ns)
        top["n_bids"], top["n_asks"] = published.n_bids, published.n_asks
        self.book_counts.msgs_out += 1
        self.signal_counts.msgs_in += 1
        signal = self.signal
        if self.n_trades:
            signal.on_trades(self.trades[:self.n_trades])
            self.n_trades = 0
        pred = signal.on_book(int(top["ts_recv_ns"]), top["bid_px"], top["bid_qty"], top["ask_px"], top["ask_qty"],
                              int(top["n_bids"]), int(top["n_asks"]))
        slot = self.prediction
        slot["ts_ns"], slot["update_id"] = int(top["ts_recv_ns"]), published.update_id
        slot["predicted_return"], slot["fair_px_tick"] = pred.predicted_return, pred.fair_px_tick
        slot["volatility_bps_per_s"], slot["imbalance"] = pred.volatility_bps_per_s, pred.imbalance
        slot["healthy"] = int(pred.healthy)
        self.signal_counts.msgs_out += 1
        return True


class Schedule:
    """The lockstep order of a replay's messages: book tickers skipped (counted), a barrier
    (AFTER_TRADES) before a book change that follows other messages, one (AFTER_BOOK) after every
    book change, and one at the end after any messages left."""

    def __init__(self) -> None:
        self.events = self.barriers = self.tickers_skipped = 0

    def steps(self, messages: Any) -> Any:
        since_barrier = 0
        for msg in messages:
            t = type(msg)
            if t is BookTicker:
                self.tickers_skipped += 1
                continue
            changes_book = t is DepthDiff or t is BookSnapshot
            if changes_book and since_barrier:
                since_barrier = 0
                self.barriers += 1
                yield AFTER_TRADES  # the trades before it: their fills land first
            self.events += 1
            since_barrier += 1
            yield msg
            if changes_book:
                since_barrier = 0
                self.barriers += 1
                yield AFTER_BOOK
        if since_barrier:
            self.barriers += 1
            yield AFTER_TRADES


class MarketTape:
    """The market side of a replay run once over its messages: at each barrier of the schedule,
    None (the book did not change) or copies of the book and prediction slots as published."""

    def __init__(self, config: Config, messages: Any, progress: Any = None) -> None:
        side = self.side = MarketSide(config)
        self.records: list[tuple[Any, Any] | None] = []
        record = self.records.append
        on_message, at_barrier = side.on_message, side.at_barrier
        schedule = Schedule()
        for step in schedule.steps(messages):
            if type(step) is int:
                record((side.top.copy(), side.prediction.copy()) if at_barrier() else None)
            else:
                on_message(step, type(step))
                if progress is not None and not schedule.events & 0x3FF:
                    progress(schedule.events + schedule.tickers_skipped)  # messages read
        side.finish()
        if progress is not None:
            progress(schedule.events + schedule.tickers_skipped)


class InprocReplay:
    def __init__(self, config: Config, quoter: Any | None = None) -> None:
        """`quoter`: a quoter step to run in place of the configured strategy (a baseline), with the
        same interface as mm.stages.quoter.QuoterStep."""
        self.config = config
        prefix = f"{config.gateway.client_id_prefix}{config.pipeline.name[:8]}r"
        self.quoter = quoter if quoter is not None else QuoterStep(config, prefix, risk_position_authoritative=False)
        self.risk = RiskStep(config, f"{config.gateway.client_id_prefix}{config.pipeline.name[:8]}f0x")
        self.gateway = GatewayStep(config)
        self.counts = {name: Counts() for name in ("feed", "book", "signal", "quoter", "risk", "gateway")}
        self.market_side: MarketSide | None = None  # run here, or read off a MarketTape (run())
        self.top: Any = None  # the book and prediction slots, as last published
        self.prediction: Any = None
        self.has_prediction = False
        self.market_ts_ns = 0
        self.held: list[Any] = []  # the venue's answers of this interval
        # what risk sent the venue while it handled an interval's answers (a stop's cancel-all or
        # flatten after a fill): the process engine's gateway has read on into the next interval's
        # market by then, so the venue takes it after that market, before that interval's quotes
        self.next_interval: list[CancelEverything | Place] = []
        self.schedule = Schedule()
        self.tick_to_order = SampleBuffer()
        self.hops = {hop: SampleBuffer() for hop in HOPS}
        self.wall_by_stage_ns = dict.fromkeys(self.counts, 0)
        self._perf = time.perf_counter_ns

    # ---- the schedule -----------------------------------------------------------------------------

    def run(self, messages: Any, progress: Any = None, tape: MarketTape | None = None) -> None:
        """Replay `messages` (feed messages in order) to the end, then shut down as the processes do;
        with `tape` (a MarketTape of the same messages and config) the book and the signal are
        read off it instead of run here."""
        if tape is None:
            market = self.market_side = MarketSide(self.config)
            self.top, self.prediction = market.top, market.prediction  # written in place at each barrier
            on_market = market.on_message
        else:
            market = self.market_side = tape.side
            self.top, self.prediction = (np.zeros(1, market.top.dtype)[0],
                                         np.zeros(1, market.prediction.dtype)[0])  # as a fresh book's
            on_market = None
        self.counts["book"], self.counts["signal"] = market.book_counts, market.signal_counts
        records = iter(tape.records) if tape is not None else None
        feed = self.counts["feed"]
        gateway_in = self.counts["gateway"]
        venue = self.gateway
        held = self.held
        schedule = self.schedule
        for step in schedule.steps(messages):
            t = type(step)
            if t is int:
                if records is None:
                    news = market.at_barrier()
                else:
                    record = next(records)
                    news = record is not None
                    if news:
                        self.top, self.prediction = record
                self._barrier(news, time.time_ns() if step == AFTER_BOOK else 0)
                held = self.held
                continue
            if on_market is not None:
                on_market(step, t)
            gateway_in.msgs_in += 1
            if step.ts_recv_ns > self.market_ts_ns:
                self.market_ts_ns = step.ts_recv_ns
            now = self.market_ts_ns
            if t is DepthDiff:
                held.extend(venue.on_diff(now, step.final_id, step.bids, step.asks))
            elif t is Trade:
                held.extend(venue.on_trade(now, step.px_tick, step.qty_lot, step.taker_side))
            elif t is BookSnapshot:
                held.extend(venue.on_snapshot(now, step.last_id, step.bids, step.asks))
            feed.msgs_out += 1
            if progress is not None and not schedule.events & 0x3FF:
                progress(schedule.events + schedule.tickers_skipped)  # messages read, of len(messages)
        if progress is not None:
            progress(schedule.events + schedule.tickers_skipped)
        if records is None:
            market.finish()
        self._shutdown()

    def _barrier(self, news: bool, ts_feed_ns: int) -> None:
        """The end of an interval: every consequence of its messages, in the lockstep's order;
        `news`: the book published a changed top (and the signal predicted on it)."""
        self.counts["risk"].msgs_out += 1  # risk forwards each barrier on its order socket (and counts it)
        for action in self.next_interval:
            self.held.extend(self.gateway.on_command(self.market_ts_ns, action))
        self.next_interval.clear()
        commands: list[Place | Cancel] = []
        if news:
            self.counts["quoter"].msgs_in += 2  # the book's notice, and the signal's (read in lockstep)
            self.has_prediction = True
            commands = self._quote()
        if commands:
            self._check_and_send(commands, ts_feed_ns)
        self.held.extend(self.gateway.advance(self.market_ts_ns))
        self._release()

    def _quote(self) -> list[Place | Cancel]:
        top = self.top
        if top["n_bids"] == 0 or top["n_asks"] == 0:
            return []
        prediction = None
        slot = self.prediction
        if self.has_prediction and slot["healthy"]:
            prediction = (float(slot["predicted_return"]), float(slot["volatility_bps_per_s"]))
        commands = self.quoter.on_book(int(top["bid_px"][0]), int(top["ask_px"][0]), prediction,
                                       int(top["ts_recv_ns"]))
        if commands:
            self.counts["quoter"].msgs_out += 1
        return commands

    def _market_read(self) -> MarketRead:
        top = self.top
        bid = ask = 0
        if top["n_bids"] and top["n_asks"]:
            bid, ask = int(top["bid_px"][0]), int(top["ask_px"][0])
        slot = self.prediction
        if not self.has_prediction:
            return MarketRead(int(top["ts_recv_ns"]), bid, ask)
        return MarketRead(int(top["ts_recv_ns"]), bid, ask, int(slot["ts_ns"]), float(slot["volatility_bps_per_s"]))

    def _check_and_send(self, commands: list[Place | Cancel], ts_feed_ns: int) -> None:
        """Risk's checks of one decision, then the gateway's orders (after the interval's market)."""
        risk = self.risk
        self.counts["risk"].msgs_in += 1
        now_ns = int(self.top["ts_recv_ns"])
        approved: list[Place | Cancel] = []
        market = None
        for command in commands:
            if type(command) is Cancel:
                approved.append(command)
                continue
            if market is None:
                market, actions = risk.begin_decision(now_ns, self._market_read(), now_ns)
                self._risk_actions(actions)
            rejection = risk.check(command, now_ns, market, True)
            if rejection is None:
                approved.append(command)
            else:
                self.quoter.on_done(rejection.client_id, rejected=True)
        if not approved:
            return
        self.counts["risk"].msgs_out += 1
        self.counts["gateway"].msgs_in += 1
        if ts_feed_ns:  # tick-to-order on this machine's clock: the event's stamp to the venue hand-off
            now = time.time_ns()
            self.tick_to_order.add(now - ts_feed_ns)
            self.hops["feed_to_book"].add(0)
            self.hops["book_to_quoter"].add(0)
            self.hops["quoter_to_risk"].add(0)
            self.hops["risk_to_gateway"].add(now - ts_feed_ns)
        for command in approved:
            self.held.extend(self.gateway.on_command(self.market_ts_ns, command))

    def _risk_actions(self, actions: list[Any], *, answering: bool = False) -> None:
        """What risk's step said to do, carried out in the engine's terms; `answering`: while it
        handles the venue's answers of an interval (its orders then reach the venue in the next)."""
        status = False
        for action in actions:
            if isinstance(action, StatusChanged):
                status = True
            elif isinstance(action, CancelEverything | Place):
                self.counts["risk"].msgs_out += 1
                self.counts["gateway"].msgs_in += 1
                if answering:
                    self.next_interval.append(action)
                else:
                    self.held.extend(self.gateway.on_command(self.market_ts_ns, action))
            elif isinstance(action, Rejection):
                self.quoter.on_done(action.client_id, rejected=True)
        if status:
            self._status()

    def _status(self) -> None:
        risk = self.risk
        self.quoter.on_risk_status(paused=risk.paused, trading=risk.trading.value,
                                   position_lot=risk.position.position_lot, size_ratio=risk.stops.size_ratio,
                                   widen_ticks=risk.stops.widen_ticks)

    def _release(self) -> None:
        """The venue's answers of the interval, to risk and the quoter (one message each)."""
        held = self.held
        if not held:
            return
        self.held = []
        self.gateway.record(held, self.market_ts_ns)
        n = len(held)
        self.counts["gateway"].msgs_out += n
        self.counts["risk"].msgs_in += n
        self.counts["quoter"].msgs_in += n
        risk, quoter = self.risk, self.quoter
        for event in held:
            t = type(event)
            if t is Filled:
                quoter.on_fill(event.client_id, event.side, event.qty_lot, event.leaves_lot)
                self._risk_actions(risk.on_fill(event.client_id, event.side, event.px_tick, event.qty_lot,
                                                event.leaves_lot, event.fee_quote, event.ts_ns, None,
                                                self._market_read()), answering=True)
            elif t is Accepted:
                risk.on_accepted(event.client_id, event.side, event.px_tick, event.qty_lot)
            elif t is Canceled or t is Rejected:
                risk.on_done(event.client_id)
                quoter.on_done(event.client_id, rejected=t is Rejected)

    def _shutdown(self) -> None:
        cancels = self.quoter.cancel_working()
        if cancels:  # sent, forwarded by risk, and never applied: the gateway is past its last barrier
            self.counts["quoter"].msgs_out += 1
            self.counts["risk"].msgs_in += 1
            self.counts["risk"].msgs_out += 1
            self.counts["gateway"].msgs_in += 1
        now = self.market_ts_ns
        self.held.extend(self.gateway.on_command(now, CancelEverything("stopping")))
        self.held.extend(self.gateway.advance(now + self.gateway.latency_ns + 1))
        self._release()

    # ---- what each stage writes at its clean stop -------------------------------------------------------

    def stats(self, source: Any) -> dict[str, dict[str, Any]]:
        """Per process, what its actor writes at a clean stop (JSON-normalised as the files are)."""
        def base(name: str) -> dict[str, Any]:
            c = self.counts[name]
            return {"in": c.msgs_in, "out": c.msgs_out, "decode_errors": 0, "clean_stop": True, "cpu_s": 0.0,
                    "wakeups": 0, "work_turns": 0, "work_cpu_s": 0.0}

        self.risk.market_view(self._market_read())  # PnL marked at the final book, as risk does at its stop
        stats = {
            "feed": {**base("feed"), "events": self.schedule.events, "snapshots": 0,
                     "barriers": self.schedule.barriers, "tickers_skipped": self.schedule.tickers_skipped,
                     "dropped": dict(source.dropped), "problems": source.problems,
                     "problem_count": source.problem_count,
                     "capture": source.capture_stats.as_dict(), "first_ts_ns": source.first_ts_ns,
                     "last_ts_ns": source.last_ts_ns},
            "book": {**base("book"), **self.market_side.book.stats()},
            "signal": {**base("signal"), **self.market_side.signal.stats(), "trade_overruns": 0},
            "quoter": {**base("quoter"), **self.quoter.stats()},
            "risk": {**base("risk"), **self.risk.stats(), "journal_tail": Tail.EMPTY.value},
            "gateway": {**base("gateway"), **self.gateway.stats(),
                        "latency_ns": {"tick_to_order": percentiles_ns(self.tick_to_order.values()),
                                       **{hop: percentiles_ns(buf.values()) for hop, buf in self.hops.items()}}},
        }
        return json.loads(json.dumps(stats, sort_keys=True))
