"""Gateway: approved orders -> the venue; acks, fills and rejects back to risk and the quoter.

The `sim` venue is the queue-position fill model of mm/fill_model.py fed with the same market
data the book sees; orders reach it after the configured order-entry latency. Records the
tick-to-order latency and every hop of each order it sends. On stop (or when risk goes silent)
it cancels every order of ours.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq

from ipc.endpoints import latency_path
from ipc.messages import (
    Barrier,
    BookSnapshot,
    StageReport,
    VenueOrder,
    VenueState,
    BookTicker,
    CancelAll,
    CancelOrder,
    DepthDiff,
    FeedMsg,
    OrderAccepted,
    OrderBatch,
    OrderCanceled,
    OrderCommand,
    OrderEvent,
    OrderEvents,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    Trade,
)
from ipc.sockets import Codec, send
from mm.fill_model import Accepted, Canceled, Filled, Rejected
from mm.stages.commands import CancelEverything
from mm.stages.gateway import GatewayStep
from mm.stats import SampleBuffer, percentiles_ns
from mm.config import journal_path, md_readers
from mm.journal import FillRecorded, FsyncPolicy, PositionSnapshot
from mm.orders import OrdersView, Side
from processes.actor import Actor, actor_main
from processes.journal_file import JournalFile
from processes.metrics import StageMetrics

if TYPE_CHECKING:
    from processes.gateway_hyperliquid import HyperliquidLive
    from processes.gateway_live import LiveVenue

log = logging.getLogger(__name__)

HOPS = ("feed_to_book", "book_to_quoter", "quoter_to_risk", "risk_to_gateway")
REPORT_EVERY_NS = 1_000_000_000
REPORT_WINDOW = 10_000


class Gateway(Actor):
    name = "gateway"
    consumers = {"events": ("risk", "quoter")}
    forward_after = ("risk",)
    downstream = ("risk", "quoter")

    def setup(self) -> None:
        cfg = self.config
        self.symbol = cfg.instrument.symbol
        self.add_input(self.critical_pull("orders", "risk"), Codec(OrderCommand), self.on_order, eos_from="risk")
        self.md_input = None  # the sim venue's market (a live gateway reads none)
        if self.name in md_readers(cfg):
            self.md_input = self.add_input(self.critical_subscriber("md", [b"md."]), Codec(FeedMsg),
                                           self.on_market_data, eos_from="feed")
        self.events = self.loop_publisher("events")
        self.live: LiveVenue | HyperliquidLive | None = None
        self.topic = f"ord.{self.symbol}".encode()
        # our orders: the sim venue's tracker is the step's own; a real venue's is its adapter's, read here
        self.step = GatewayStep(cfg, orders=None if cfg.gateway.venue == "sim" else OrdersView())
        self._latency_ns = self.step.latency_ns
        self._venue_state_seq = 0
        self._in_flight_until_ns = 0
        self._last_cause_ns = 0
        self.venue_baseline: dict[str, str] = {}  # live: the account's balances when this pipeline began
        self.journal = self._open_journal()
        if cfg.gateway.venue != "sim":  # a real venue (binance, binance-usdm): its answers come back over inproc
            # imported here: ccxt and aiohttp cost a sim gateway ~0.8 s of start-up it has no use for
            from processes.gateway_hyperliquid import HyperliquidLive
            from processes.gateway_live import INPROC as LIVE_INPROC
            from processes.gateway_live import LiveVenue

            pull = self.sockets.ctx.socket(zmq.PULL)
            pull.setsockopt(zmq.LINGER, 0)
            pull.bind(LIVE_INPROC)
            self.sockets.adopt(pull)
            self.add_input(pull, Codec(OrderEvent), self.on_venue_event)
            venue_class = HyperliquidLive if cfg.gateway.venue == "hyperliquid" else LiveVenue
            self.live = venue_class(self.sockets.ctx, cfg, journal=self.journal, baseline=self.venue_baseline,
                                    orders=self.step.orders)
            self.live.start()
        self._observed = 0  # latency samples already exported to metrics
        self._next_report_ns = 0
        self.event_time = cfg.pipeline.mode == "replay"
        self.market_ts_ns = 0
        self._barrier_md = self._barrier_orders = self._barrier_passed = 0
        self.lockstep = self.event_time and cfg.replay.lockstep
        self._held: list[Any] = []
        self._batch_out: list[Any] | None = None  # the answers to one OrderBatch, sent as one frame
        self._orders_waiting: list[Any] = []  # lockstep: commands that arrived before their market event
        self.tick_to_order = SampleBuffer()
        self.hops = {hop: SampleBuffer() for hop in HOPS}

    def turn(self, events: list[tuple[Any, int]]) -> None:
        """One wakeup, its order events in one frame: the answers to the orders, the fills the market
        caused and what the timers delivered. Each send on the events socket wakes ZeroMQ's I/O
        thread (about 30 us of our CPU per send on a 2-core VM, bench/bench_stage_turn.py), and
        each frame is a wakeup of risk and the quoter. Not in lockstep replay (its answers are held
        until a barrier) nor with a real venue (its answers come one by one as the venue sends them)."""
        if self.lockstep or self.live is not None:
            super().turn(events)
            return
        self._batch_out = []
        try:
            super().turn(events)
        finally:
            self._flush_turn()

    def _flush_turn(self) -> None:
        out, self._batch_out = self._batch_out, None
        if out:
            self._send_events(out)

    # ---- inputs ---------------------------------------------------------------------------------

    def clock_ns(self) -> int:
        """The venue's clock: wall time live and in sim; the capture's time in replay (deterministic)."""
        return self.market_ts_ns if self.event_time else time.time_ns()

    def on_order(self, topic: bytes, msg: Any) -> None:
        if self.lockstep and self._barrier_md <= self._barrier_passed and not isinstance(msg, Barrier):
            self._orders_waiting.append(msg)  # the market event that caused it has not been applied yet
            return
        self._on_order(msg)

    def on_venue_event(self, topic: bytes, msg: Any) -> None:
        """The real venue's answers, already in the pipeline's terms: record and publish them (the
        live adapter journals its own fills)."""
        event = venue_event_of(msg)
        if event is not None:
            self.step.record([event], self.clock_ns())
        send(self.events.sock, self.topic, msg)
        self.msgs_out += 1

    def _on_order(self, msg: Any) -> None:
        if self.live is not None:
            if isinstance(msg, (PlaceOrder, CancelOrder)):
                wall = time.time_ns()
                self.mark_forwarded(wall)
                self._record_latency(msg, wall)
            if isinstance(msg, PlaceOrder):
                self.step.count_sent()
            if isinstance(msg, OrderBatch):
                for command in msg.commands:
                    self._on_order(command)
            elif not isinstance(msg, Barrier):
                self.live.submit(msg)
            return
        wall = time.time_ns()
        self.mark_forwarded(wall)
        self._in_flight_until_ns = wall + self._latency_ns
        match msg:
            case PlaceOrder() | CancelOrder():
                self._on_commands((msg,))
            case OrderBatch():  # one decision's commands: their immediate answers leave in one frame
                if self._batch_out is not None:  # within a turn's frame (turn): it goes with the rest
                    self._on_commands(msg.commands)
                    return
                self._batch_out = []
                try:
                    self._on_commands(msg.commands)
                finally:
                    out, self._batch_out = self._batch_out, None
                self._send_events(out)
            case CancelAll():
                self._emit(self.step.on_command(self.clock_ns(), CancelEverything(msg.reason)))
            case Barrier():
                self._barrier_orders = msg.seq
                self._maybe_pass_barrier()
            case _:
                log.warning("gateway: unexpected %s on orders", type(msg).__name__)

    def _on_commands(self, commands: Sequence[PlaceOrder | CancelOrder]) -> None:
        """Each command to the sim venue as it leaves (its wall time), on the venue's clock."""
        step = self.step
        for command in commands:
            wall = time.time_ns()
            now = self.market_ts_ns if self.event_time else wall  # clock_ns(), without a call per command
            self._in_flight_until_ns = wall + self._latency_ns
            if command.ts_feed_ns != self._last_cause_ns:  # else not its market event's first order
                self._record_latency(command, wall)
            if type(command) is PlaceOrder:
                events = step.place(now, command.client_id, command.side, command.px_tick, command.qty_lot,
                                    command.post_only)
            else:
                events = step.cancel(now, command.client_id)
            if events:
                self._emit(events)

    def _record_latency(self, msg: PlaceOrder | CancelOrder, now: int) -> None:
        """Tick-to-order: from the market event to the FIRST order message it caused leaving for the venue."""
        if msg.ts_feed_ns <= 0 or msg.ts_feed_ns == self._last_cause_ns:  # operator/shutdown, or not the first
            return
        self._last_cause_ns = msg.ts_feed_ns
        self.tick_to_order.add(now - msg.ts_feed_ns)
        self.hops["feed_to_book"].add(msg.ts_book_ns - msg.ts_feed_ns)
        self.hops["book_to_quoter"].add(msg.ts_quoter_ns - msg.ts_book_ns)
        self.hops["quoter_to_risk"].add(msg.ts_risk_ns - msg.ts_quoter_ns)
        self.hops["risk_to_gateway"].add(now - msg.ts_risk_ns)

    def _maybe_pass_barrier(self) -> None:
        """Replay lockstep: once the market and the order path are both past barrier N, release the
        venue's answers held since barrier N-1, then the barrier. Held, because a fill caused by the
        market event that also caused a quote must not race that quote to risk and the quoter: in
        event time they could not have known of it yet."""
        if self._barrier_md == self._barrier_orders > self._barrier_passed:
            self._barrier_passed = self._barrier_md
            self._release_held()
            send(self.events.sock, self.topic, Barrier(seq=self._barrier_passed, ts_ns=time.time_ns()))
            if self.md_input is not None:
                self.resume_input(self.md_input)

    def _release_held(self) -> None:
        for msg in self._held:
            send(self.events.sock, self.topic, msg)
        self.msgs_out += len(self._held)
        self._held.clear()

    def on_market_data(self, topic: bytes, msg: Any) -> None:
        """The simulated venue's market: only a sim gateway reads md (mm/config.py md_readers)."""
        if self.event_time and not isinstance(msg, Barrier):
            self.market_ts_ns = max(self.market_ts_ns, msg.ts_recv_ns)
        now = self.clock_ns()
        match msg:
            case DepthDiff():
                self._emit(self.step.on_diff(now, msg.final_id, msg.bids, msg.asks))
            case Trade():
                self._emit(self.step.on_trade(now, msg.px_tick, msg.qty_lot, msg.taker_side))
            case BookSnapshot():
                self._emit(self.step.on_snapshot(now, msg.last_id, msg.bids, msg.asks))
            case BookTicker():
                pass
            case Barrier():  # the next events wait until the order path has passed this barrier too
                self._barrier_md = msg.seq
                if self.lockstep and self.md_input is not None:
                    self.pause_input(self.md_input)
                waiting, self._orders_waiting = self._orders_waiting, []
                for order in waiting:
                    self._on_order(order)
                self._maybe_pass_barrier()
            case _:
                log.warning("gateway: unexpected %s on md", type(msg).__name__)

    def on_timer(self, now_ns: int) -> None:
        if self.live is not None and self.live.error is not None:
            raise RuntimeError(f"venue adapter failed: {self.live.error}") from self.live.error
        self._emit(self.step.advance(self.clock_ns()))
        self.journal.on_timer(now_ns)
        self.on_timer_report(now_ns)

    def next_timer_ns(self) -> int | None:
        """Wake when requests in flight to the venue are due (order-entry latency)."""
        if self.event_time or time.time_ns() > self._in_flight_until_ns:
            return None
        return time.monotonic_ns() + min(1_000_000, self._latency_ns)

    # ---- venue events -> order events ------------------------------------------------------------

    def _emit(self, events: list[Any]) -> None:
        if not events:
            return
        for record in self.step.record(events, self.clock_ns()):
            self.journal.append(record)
        out = self._held if self.lockstep else self._batch_out  # None: they leave now, in a frame of their own
        if out is None:
            self._send_events([self._message(event) for event in events])
        else:
            out.extend(map(self._message, events))

    def _send_events(self, out: list[Any]) -> None:
        """One frame of order events: a lone event as itself, several as an OrderEvents (each frame
        is a send here and a wakeup, a receive and a readiness check in risk and the quoter)."""
        if out:
            send(self.events.sock, self.topic, out[0] if len(out) == 1 else OrderEvents(events=out))
            self.msgs_out += 1

    def _message(self, event: Any) -> Any:
        match event:
            case Accepted():
                return OrderAccepted(client_id=event.client_id, venue_order_id=event.venue_order_id,
                                     symbol=self.symbol, side=event.side, px_tick=event.px_tick,
                                     qty_lot=event.qty_lot, ts_ns=event.ts_ns)
            case Rejected():
                return OrderRejected(client_id=event.client_id, symbol=self.symbol, reason=event.reason,
                                     ts_ns=event.ts_ns)
            case Canceled():
                return OrderCanceled(client_id=event.client_id, symbol=self.symbol, leaves_lot=event.leaves_lot,
                                     ts_ns=event.ts_ns)
            case Filled():
                return OrderFilled(client_id=event.client_id, symbol=self.symbol, side=event.side,
                                   px_tick=event.px_tick, qty_lot=event.qty_lot, leaves_lot=event.leaves_lot,
                                   fee_quote=event.fee_quote, is_maker=event.is_maker, ts_event_ns=event.ts_ns,
                                   ts_ns=self.clock_ns())
        raise TypeError(f"fill model produced an unknown event {type(event).__name__}")

    def on_timer_report(self, now_ns: int) -> None:
        """Latency percentiles of the last REPORT_WINDOW orders, for `mm console latency`."""
        if now_ns < self._next_report_ns:
            return
        self._next_report_ns = now_ns + REPORT_EVERY_NS
        body = {"tick_to_order": percentiles_ns(self.tick_to_order.values()[-REPORT_WINDOW:]),
                **{hop: percentiles_ns(buf.values()[-REPORT_WINDOW:]) for hop, buf in self.hops.items()}}
        self.publish_control(StageReport(process=self.name, kind="latency", body=json.dumps(body), ts_ns=time.time_ns()))
        self.publish_open_orders()

    def export_metrics(self, metrics: StageMetrics) -> None:
        for state in ("sent", "acked", "filled", "cancelled", "rejected"):
            metrics.add(metrics.orders, self.step.counts[state], state)
        done = self._observed
        metrics.observe_many(metrics.tick_to_order, self.tick_to_order.values()[done:])
        for hop, buf in self.hops.items():
            metrics.observe_many(metrics.hop, buf.values()[done:], hop)
        self._observed = len(self.tick_to_order)

    # ---- lifecycle --------------------------------------------------------------------------------

    def _open_journal(self) -> JournalFile:
        """The simulated venue's account survives a gateway restart (its resting orders do not: like a
        venue's cancel-on-disconnect, they are gone, and risk and the quoter reconcile)."""
        pipeline = self.config.pipeline
        path = journal_path(self.config, self.name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        journal, recovery = JournalFile.open(path, FsyncPolicy(mode=pipeline.journal_fsync,
                                                               interval_ms=pipeline.journal_fsync_interval_ms))
        for record in recovery.records:
            if isinstance(record, FillRecorded) and record.symbol == self.symbol:
                self.step.account_position_lot += record.qty_lot if record.side is Side.BUY else -record.qty_lot
            elif isinstance(record, PositionSnapshot) and record.balances and not self.venue_baseline:
                self.venue_baseline = dict(record.balances)
        if recovery.records:
            log.warning("gateway: the sim venue's account recovered from %s: position %d lots",
                        path, self.step.account_position_lot)
        return journal

    def close(self) -> None:
        if getattr(self, "journal", None) is not None:
            self.journal.close()
        super().close()

    def on_running(self) -> None:
        self.publish_open_orders()

    def publish_open_orders(self) -> None:
        """What the venue holds (our open orders, the account's position), at start and once a second:
        a restarted risk or quoter reconciles with it (a restarted sim venue holds none)."""
        if self.live is not None:
            if not self.live.ready:
                return  # not connected yet: risk and the quoter wait for the venue's word
            rows, position_lot = self.live.venue_state()
        else:
            rows = self.step.open_orders()
            position_lot = self.step.account_position_lot
        self._venue_state_seq += 1
        self.publish_control(VenueState(process=self.name, pid=self.pid, seq=self._venue_state_seq,
                                        orders=[VenueOrder(*row) for row in rows], position_lot=position_lot,
                                        ts_ns=time.time_ns()))

    def _drain_venue_events(self) -> None:
        for inp in self.inputs:
            if inp.handler == self.on_venue_event:
                self._drain(inp)

    def on_peer_died(self, peer: str, now_ns: int) -> None:
        if peer == "risk" and self.live is not None:
            log.error("gateway: risk is silent: cancelling all our orders at the venue")
            self.live.submit(CancelAll(symbol="", reason="risk silent", ts_ns=time.time_ns()))
            return
        if peer == "risk":
            log.error("gateway: risk is silent: cancelling all our orders")
            self._emit(self.step.on_command(time.time_ns(), CancelEverything("risk silent")))

    def send_end_of_stream(self, now_ns: int) -> None:
        """Cancel every order of ours and wait out the entry latency so the cancels land first."""
        if self.live is not None:
            self.live.stop()  # cancels ours at the venue, then closes
            self._drain_venue_events()
        else:
            now = self.clock_ns()
            self._emit(self.step.on_command(now, CancelEverything("stopping")))
            self._emit(self.step.advance(now + self._latency_ns + 1))
        self._release_held()
        if self._batch_out is not None:  # stopping within a turn: its events go before the marker
            self._flush_turn()
        send(self.events.sock, self.topic, self.end_of_stream())

    def stats(self) -> dict[str, Any]:
        np.savez(latency_path(self.config), tick_to_order=self.tick_to_order.values(),
                 **{hop: buf.values() for hop, buf in self.hops.items()})
        return {**self.step.stats(), **({"venue": self.live.stats()} if self.live is not None else {}),
                "latency_ns": {"tick_to_order": percentiles_ns(self.tick_to_order.values()),
                               **{hop: percentiles_ns(buf.values()) for hop, buf in self.hops.items()}}}


def venue_event_of(msg: Any) -> Any:
    """A real venue's answer as the venue event the gateway step records (None: not one)."""
    match msg:
        case OrderAccepted():
            return Accepted(msg.client_id, msg.venue_order_id, msg.side, msg.px_tick, msg.qty_lot, msg.ts_ns)
        case OrderRejected():
            return Rejected(msg.client_id, msg.reason, msg.ts_ns)
        case OrderCanceled():
            return Canceled(msg.client_id, msg.leaves_lot, msg.ts_ns)
        case OrderFilled():
            return Filled(msg.client_id, msg.side, msg.px_tick, msg.qty_lot, msg.leaves_lot, msg.fee_quote,
                          msg.is_maker, msg.ts_ns)
    return None


def main(argv: list[str] | None = None) -> int:
    return actor_main(Gateway, argv)


if __name__ == "__main__":
    sys.exit(main())
