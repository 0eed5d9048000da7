"""Quoter: on each book notice, read the newest book and the newest prediction from shared
memory, compute one quote per side (mm/quoting.py) and send the cancels and places that turn our
working orders into it. The prediction is read from its slot, never waited for (signal is off
the critical path), and its age is risk's concern. Tracks its own orders and position from the gateway's events.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from ipc.endpoints import shm_name
from ipc.messages import (
    Barrier,
    BarrierDone,
    BookChanged,
    CancelAll,
    BookMsg,
    CancelOrder,
    OrderAccepted,
    OrderBatch,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    RiskRejected,
    RiskStatus,
    SignalMsg,
    SignalUpdated,
    VenueState,
    unbatched,
)
from ipc.shm_layout import SIGNAL_DTYPE, book_top_dtype
from ipc.sockets import Codec, send
from mm.lifecycle import State
from mm.stages.commands import Cancel, Place
from mm.stages.quoter import QuoterStep
from processes.actor import Actor, actor_main
from processes.shm_views import SlotView

log = logging.getLogger(__name__)

QUOTE_DEPENDENCIES = ("book", "signal")


class Quoter(Actor):
    name = "quoter"
    forward_after = ("book",)
    downstream = ("risk",)

    def setup(self) -> None:
        cfg = self.config
        self.symbol = cfg.instrument.symbol
        self.book_view = SlotView(shm_name(cfg, "book", "top"), book_top_dtype(cfg.book.depth))
        self.signal_view = SlotView(shm_name(cfg, "signal", "prediction"), SIGNAL_DTYPE)
        # the fields a quote reads, bound once (SlotView.field: .item(0) is a Python scalar)
        book, sig = self.book_view.field, self.signal_view.field
        self._top = tuple(book(name) for name in ("n_bids", "n_asks", "bid_px", "ask_px", "ts_recv_ns", "ts_feed_ns",
                                                  "ts_book_ns"))
        self._pred = tuple(sig(name) for name in ("healthy", "predicted_return", "volatility_bps_per_s"))
        self._pred_update_id = sig("update_id")
        self.add_input(self.critical_subscriber("book", [b"book."]), Codec(BookMsg), self.on_book, eos_from="book")
        self.add_input(self.loop_subscriber("events", [b"ord."]), Codec(OrderEvent), self.on_order_event,
                       eos_from="gateway")
        self.event_time = cfg.pipeline.mode == "replay"
        self.lockstep = self.event_time and cfg.replay.lockstep
        if self.lockstep:  # deterministic replay: quote on the prediction of the same book update
            self.add_input(self.loop_subscriber("signal", [b"sig."]), Codec(SignalMsg), self.on_signal,
                           eos_from="signal")
        self._barrier: Barrier | None = None
        self._barrier_from_gateway = self._barrier_from_risk = self._barrier_from_signal = self._barrier_acked = 0
        if self.lockstep:  # where the round trip of a replay event closes: the book waits for it
            self.barrier_push = self.critical_push("barrier", "book")
        self.add_input(self.loop_subscriber("risk", [b"risk."]), Codec(OrderEvent | RiskStatus),
                       self.on_risk_event)
        self.intents = self.critical_push("intents", "risk", linger_ms=cfg.ipc.order_linger_ms)
        self.topic = f"int.{self.symbol}".encode()
        # replay ids must not depend on the pid: same input, same result, byte for byte
        instance = "r" if cfg.pipeline.mode == "replay" else f"q{self.pid}x"
        self.step = QuoterStep(cfg, f"{cfg.gateway.client_id_prefix}{cfg.pipeline.name[:8]}{instance}",
                               risk_position_authoritative=not self.lockstep)
        self._reconcile_pending = False
        self._notice: BookChanged | None = None

    def on_config_changed(self) -> None:
        self.step.config = self.config

    # ---- inputs ---------------------------------------------------------------------------------

    def on_book(self, topic: bytes, msg: Any) -> None:
        match msg:
            case BookChanged():
                self._notice = msg
            case Barrier():  # a barrier is not traffic (no act_once after the burst): act on it now
                self._barrier = msg
                self.act_once(0)

    def on_signal(self, topic: bytes, msg: Any) -> None:
        match msg:
            case SignalUpdated():
                pass
            case Barrier():  # the signal has read everything before it, its prediction is out
                self._barrier_from_signal = msg.seq
                self.act_once(0)
                self._maybe_ack_barrier()
            case _:
                log.warning("quoter: unexpected %s on signal", type(msg).__name__)

    def on_order_event(self, topic: bytes, msg: Any) -> None:
        for event in unbatched(msg):  # the gateway's answers of one turn, in order
            self._on_order_event(event)

    def _on_order_event(self, msg: Any) -> None:
        match msg:
            case OrderAccepted():
                pass
            case OrderFilled():
                self.step.on_fill(msg.client_id, msg.side, msg.qty_lot, msg.leaves_lot)
            case OrderCanceled() | OrderRejected():
                self.step.on_done(msg.client_id, rejected=isinstance(msg, OrderRejected))
            case Barrier():  # the gateway has answered everything before it
                self._barrier_from_gateway = msg.seq
                self._maybe_ack_barrier()
            case _:
                log.warning("quoter: unexpected %s on events", type(msg).__name__)

    def on_risk_event(self, topic: bytes, msg: Any) -> None:
        match msg:
            case RiskRejected():
                self.step.on_done(msg.client_id, rejected=True)
            case Barrier():  # risk has handled the gateway's answers before it; its rejects are in
                self._barrier_from_risk = msg.seq
                self._maybe_ack_barrier()
            case RiskStatus():
                self.step.on_risk_status(paused=msg.paused, trading=msg.trading, position_lot=msg.position_lot,
                                         size_ratio=msg.size_ratio, widen_ticks=msg.widen_ticks)
            case _:
                log.warning("quoter: unexpected %s from risk", type(msg).__name__)

    def _maybe_ack_barrier(self) -> None:
        """Every stage is past the barrier: risk's and the gateway's imply our orders reached them."""
        seq = self._barrier_from_gateway
        if seq == self._barrier_from_risk == self._barrier_from_signal > self._barrier_acked:
            self._barrier_acked = seq
            send(self.barrier_push, b"barrier", BarrierDone(process=self.name, seq=seq, ts_ns=time.time_ns()))

    # ---- decision: the step's ---------------------------------------------------------------------

    def act_once(self, now_ns: int) -> None:
        notice = self._notice
        if notice is not None:
            if self.lockstep and not self._signal_caught_up(notice):
                return  # the notice and the barrier wait for the prediction of this update
            self._notice = None
            self._quote(notice)
        if self._barrier is not None:
            send(self.intents, self.topic, self._barrier)
            self._barrier = None

    def _signal_caught_up(self, notice: BookChanged) -> bool:
        return self.signal_view.read() and self._pred_update_id.item(0) >= notice.update_id

    def _now_ns(self, notice: BookChanged) -> int:
        return notice.ts_recv_ns if self.event_time else time.monotonic_ns()

    def _quote(self, notice: BookChanged) -> None:
        if self.state != State.RUNNING or self.stop_requested or not self.book_view.read(notice.seq):
            return
        n_bids, n_asks, bid_px, ask_px, ts_recv_ns, ts_feed_ns, ts_book_ns = self._top
        if n_bids.item(0) == 0 or n_asks.item(0) == 0:
            return
        prediction = None
        if self.signal_view.read():
            healthy, predicted_return, volatility = self._pred
            if healthy.item(0):
                prediction = (predicted_return.item(0), volatility.item(0))
        commands = self.step.on_book(bid_px.item(0), ask_px.item(0), prediction, self._now_ns(notice))
        if commands:
            self._send_commands(commands, (ts_recv_ns.item(0), ts_feed_ns.item(0), ts_book_ns.item(0)))

    def _send_commands(self, commands: list[Place | Cancel], stamps: tuple[int, int, int]) -> None:
        """One frame per decision: a lone command as itself, several as an OrderBatch. The decision's
        commands share one quoter stamp."""
        ts_recv_ns, ts_feed_ns, ts_book_ns = stamps
        symbol, ts_quoter_ns = self.symbol, time.time_ns()
        msgs: list[PlaceOrder | CancelOrder] = []
        for command in commands:
            if type(command) is Cancel:
                msgs.append(CancelOrder(client_id=command.client_id, symbol=symbol, ts_recv_ns=ts_recv_ns,
                                        ts_feed_ns=ts_feed_ns, ts_book_ns=ts_book_ns, ts_quoter_ns=ts_quoter_ns))
            else:
                msgs.append(PlaceOrder(client_id=command.client_id, symbol=symbol, side=command.side,
                                       px_tick=command.px_tick, qty_lot=command.qty_lot, post_only=command.post_only,
                                       ts_recv_ns=ts_recv_ns, ts_feed_ns=ts_feed_ns, ts_book_ns=ts_book_ns,
                                       ts_quoter_ns=ts_quoter_ns))
        self.mark_forwarded(time.time_ns())
        send(self.intents, self.topic, msgs[0] if len(msgs) == 1 else OrderBatch(commands=msgs))
        self.msgs_out += 1

    def _cancel_all_working(self, reason: str) -> None:
        commands = self.step.cancel_working()
        if commands:
            log.warning("quoter: cancelling %d working orders: %s", len(commands), reason)
            self._send_commands(commands, (0, 0, 0))

    # ---- lifecycle --------------------------------------------------------------------------------

    def on_peer_died(self, peer: str, now_ns: int) -> None:
        if peer in QUOTE_DEPENDENCIES and self.state == State.RUNNING:
            self.set_state(State.DEGRADED)
            self._cancel_all_working(f"{peer} is silent")

    def on_running(self) -> None:
        if self.restarted:  # orders of our previous life may rest at the venue: nobody manages them now
            log.warning("quoter: restarted: cancelling our resting orders")
            send(self.intents, self.topic, CancelAll(symbol="", reason="quoter restarted", ts_ns=time.time_ns()))
            self.msgs_out += 1

    def on_control(self, msg: Any) -> None:
        if isinstance(msg, VenueState) and self._reconcile_pending:
            self._reconcile_pending = False  # only after a gateway restart: in-flight orders are not listed
            self.step.on_venue_orders({order.client_id for order in msg.orders})

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        if peer == "gateway":
            self._reconcile_pending = True
        if peer in ("book", "signal"):  # restarted writers made new segments under the same names
            (self.book_view if peer == "book" else self.signal_view).attach()
        if self.state == State.DEGRADED and all(self.liveness.is_alive(p) for p in QUOTE_DEPENDENCIES):
            self.set_state(State.RUNNING)

    def on_stop_begin(self, now_ns: int) -> None:
        self._cancel_all_working("stopping")

    def send_end_of_stream(self, now_ns: int) -> None:
        send(self.intents, self.topic, self.end_of_stream())

    def stats(self) -> dict[str, Any]:
        return self.step.stats()

    def close(self) -> None:
        super().close()
        for view in (getattr(self, "book_view", None), getattr(self, "signal_view", None)):
            if view is not None:
                view.close()


def main(argv: list[str] | None = None) -> int:
    return actor_main(Quoter, argv)


if __name__ == "__main__":
    sys.exit(main())
