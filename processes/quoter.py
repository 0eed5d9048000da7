"""Quoter: on each book notice, read the newest book and the newest prediction from shared
memory, compute one quote per side (mm/quoting.py) and send the cancels and places that turn our
working orders into it. The prediction is read from its slot, never waited for (signal is off
the critical path), and its age is risk's concern. Tracks its own orders and position from the gateway's events.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from typing import Any

import msgspec

from ipc.endpoints import shm_name
from ipc.messages import (
    Barrier,
    BarrierDone,
    BookChanged,
    CancelAll,
    BookMsg,
    CancelOrder,
    EndOfStream,
    OrderAccepted,
    OrderBatch,
    OrderCanceled,
    OrderEvent,
    OrderEvents,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    RiskRejected,
    RiskStatus,
    SignalMsg,
    SignalUpdated,
    StageReport,
)
from ipc.shm_layout import SIGNAL_DTYPE, book_top_dtype
from ipc.sockets import Codec, send
from mm.lifecycle import State
from mm.quoting import (
    CancelAction,
    PlaceAction,
    WorkingOrder,
    compute_quote,
    compute_quotes,
    defer_self_crossing,
    plan_requote,
    plan_requote_levels,
)
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
        self.add_input(self.sockets.subscriber(["book"], [b"book."]), Codec(BookMsg), self.on_book, eos_from="book")
        self.add_input(self.sockets.subscriber(["events"], [b"ord."]), Codec(OrderEvent), self.on_order_event,
                       eos_from="gateway")
        self.event_time = cfg.pipeline.mode == "replay"
        self.lockstep = self.event_time and cfg.replay.lockstep
        if self.lockstep:  # deterministic replay: quote on the prediction of the same book update
            self.add_input(self.sockets.subscriber(["signal"], [b"sig."]), Codec(SignalMsg), self.on_signal,
                           eos_from="signal")
        self._barrier: Barrier | None = None
        self._barrier_from_gateway = self._barrier_from_risk = self._barrier_acked = 0
        self.add_input(self.sockets.subscriber(["risk"], [b"risk."]), Codec(OrderEvent | RiskStatus),
                       self.on_risk_event)
        self.intents = self.sockets.push("intents", linger_ms=cfg.ipc.order_linger_ms)
        self.topic = f"int.{self.symbol}".encode()
        self._ids = itertools.count(1)
        # replay ids must not depend on the pid: same input, same result, byte for byte
        instance = "r" if cfg.pipeline.mode == "replay" else f"q{self.pid}x"
        self._id_prefix = f"{cfg.gateway.client_id_prefix}{cfg.pipeline.name[:8]}{instance}"
        self._placed_ns = 0
        self.working: dict[str, WorkingOrder] = {}  # acked or in flight, not cancel-pending
        self.cancel_pending: dict[str, WorkingOrder] = {}  # cancel sent, still at the venue until confirmed
        self.position_lot = 0
        self.paused = False
        self.trading = "active"
        self.size_ratio, self.widen_ticks = 1.0, 0.0  # the soft stop's shrink and widen, from risk
        self._reconcile_pending = False
        self._notice: BookChanged | None = None
        self.quotes = 0
        self.places = 0
        self.cancels = 0
        self.fills = 0
        self.rejects = 0

    # ---- inputs ---------------------------------------------------------------------------------

    def on_book(self, topic: bytes, msg: Any) -> None:
        match msg:
            case BookChanged():
                self._notice = msg
            case Barrier():
                self._barrier = msg

    def on_signal(self, topic: bytes, msg: Any) -> None:
        if not isinstance(msg, SignalUpdated):
            log.warning("quoter: unexpected %s on signal", type(msg).__name__)

    def on_order_event(self, topic: bytes, msg: Any) -> None:
        match msg:
            case OrderEvents():
                for event in msg.events:
                    self.on_order_event(topic, event)
            case OrderAccepted():
                pass
            case OrderFilled():
                self.fills += 1
                self.position_lot += msg.side * msg.qty_lot
                order = self.working.get(msg.client_id)
                if msg.leaves_lot == 0:
                    self._forget(msg.client_id)
                elif order is not None:
                    self.working[msg.client_id] = WorkingOrder(order.client_id, order.side, order.px_tick,
                                                               msg.leaves_lot, order.placed_ns)
            case OrderCanceled() | OrderRejected():
                if isinstance(msg, OrderRejected):
                    self.rejects += 1
                self._forget(msg.client_id)
            case Barrier():  # the gateway has answered everything before it
                self._barrier_from_gateway = msg.seq
                self._maybe_ack_barrier()
            case _:
                log.warning("quoter: unexpected %s on events", type(msg).__name__)

    def on_risk_event(self, topic: bytes, msg: Any) -> None:
        match msg:
            case RiskRejected():
                self.rejects += 1
                self._forget(msg.client_id)
            case Barrier():  # risk's rejects before it are in
                self._barrier_from_risk = msg.seq
                self._maybe_ack_barrier()
            case RiskStatus():
                self.paused = msg.paused
                self.trading = msg.trading
                if not self.lockstep:  # risk's position is authoritative (a restarted quoter learns it here);
                    self.position_lot = msg.position_lot  # in lockstep replay our own count is (deterministic)
                self.size_ratio, self.widen_ticks = msg.size_ratio, msg.widen_ticks
            case _:
                log.warning("quoter: unexpected %s from risk", type(msg).__name__)

    def _maybe_ack_barrier(self) -> None:
        if self._barrier_from_gateway == self._barrier_from_risk > self._barrier_acked:
            self._barrier_acked = self._barrier_from_gateway
            self.publish_control(BarrierDone(process=self.name, seq=self._barrier_acked, ts_ns=time.time_ns()))

    def _forget(self, client_id: str) -> None:
        self.working.pop(client_id, None)
        self.cancel_pending.pop(client_id, None)

    # ---- decision -------------------------------------------------------------------------------

    def may_quote(self) -> bool:
        return (self.state == State.RUNNING and not self.stop_requested and not self.paused
                and self.trading != "halted")

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
        return self.signal_view.read() and int(self.signal_view.value[0]["update_id"]) >= notice.update_id

    def _now_ns(self, notice: BookChanged) -> int:
        return notice.ts_recv_ns if self.event_time else time.monotonic_ns()

    def _quote(self, notice: BookChanged) -> None:
        if not self.may_quote() or not self.book_view.read(notice.seq):
            return
        top = self.book_view.value[0]
        if top["n_bids"] == 0 or top["n_asks"] == 0:
            return
        predicted_return, volatility = 0.0, self.config.signal.vol_prior_bps_per_s
        if self.signal_view.read():
            pred = self.signal_view.value[0]
            if pred["healthy"]:
                predicted_return = float(pred["predicted_return"])
                volatility = float(pred["volatility_bps_per_s"])
        cfg = self.config.quoter
        market = dict(best_bid_tick=int(top["bid_px"][0]), best_ask_tick=int(top["ask_px"][0]),
                      position_lot=self.position_lot, max_position_lot=self.config.risk.max_position_lot,
                      predicted_return=predicted_return, volatility_bps_per_s=volatility,
                      alpha_enabled=self.trading == "active")
        plan = dict(tolerance_ticks=cfg.requote_tolerance_ticks, max_age_ns=int(cfg.max_order_age_s * 1e9),
                    now_ns=self._now_ns(notice))
        working = list(self.working.values())
        if cfg.levels > 1:  # a ladder of N levels a side (the soft stop shrinks and widens it)
            ladder = compute_quotes(cfg, **market, size_ratio=self.size_ratio, extra_half_spread_ticks=self.widen_ticks)
            actions = plan_requote_levels(ladder, working, **plan)
        else:
            if self.size_ratio != 1.0 or self.widen_ticks:
                cfg = msgspec.structs.replace(cfg, size_lot=max(1, int(cfg.size_lot * self.size_ratio)),
                                              min_half_spread_ticks=cfg.min_half_spread_ticks + self.widen_ticks)
            actions = plan_requote(compute_quote(cfg, **market), working, **plan)
        actions = defer_self_crossing(actions, working, list(self.cancel_pending.values()))
        if not actions:
            return
        self.quotes += 1
        stamps = (int(top["ts_recv_ns"]), int(top["ts_feed_ns"]), int(top["ts_book_ns"]))
        self._placed_ns = self._now_ns(notice)
        self._send_commands([self._command(action, stamps) for action in actions])

    def _send_commands(self, commands: list[Any]) -> None:
        """One frame per decision: a lone command as itself, several as an OrderBatch."""
        send(self.intents, self.topic, commands[0] if len(commands) == 1 else OrderBatch(commands=commands))
        self.msgs_out += 1

    def _command(self, action: CancelAction | PlaceAction, stamps: tuple[int, int, int]) -> Any:
        ts_recv_ns, ts_feed_ns, ts_book_ns = stamps
        match action:
            case CancelAction():
                cancelled = self.working.pop(action.client_id, None)
                if cancelled is not None:
                    self.cancel_pending[action.client_id] = cancelled
                msg: Any = CancelOrder(client_id=action.client_id, symbol=self.symbol, ts_recv_ns=ts_recv_ns,
                                       ts_feed_ns=ts_feed_ns, ts_book_ns=ts_book_ns, ts_quoter_ns=time.time_ns())
                self.cancels += 1
            case PlaceAction():
                client_id = f"{self._id_prefix}{next(self._ids)}"
                self.working[client_id] = WorkingOrder(client_id, action.side, action.px_tick, action.qty_lot,
                                                       self._placed_ns)
                msg = PlaceOrder(client_id=client_id, symbol=self.symbol, side=action.side, px_tick=action.px_tick,
                                 qty_lot=action.qty_lot, post_only=True, ts_recv_ns=ts_recv_ns,
                                 ts_feed_ns=ts_feed_ns, ts_book_ns=ts_book_ns, ts_quoter_ns=time.time_ns())
                self.places += 1
        return msg

    def _cancel_all_working(self, reason: str) -> None:
        if self.working:
            log.warning("quoter: cancelling %d working orders: %s", len(self.working), reason)
        if self.working:
            self._send_commands([self._command(CancelAction(cid), (0, 0, 0)) for cid in list(self.working)])

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
        if isinstance(msg, StageReport) and msg.kind == "open_orders" and self._reconcile_pending:
            self._reconcile_pending = False  # only after a gateway restart: in-flight orders are not listed
            live = {row[0] for row in json.loads(msg.body)["orders"]}
            for client_id in [c for c in (*self.working, *self.cancel_pending) if c not in live]:
                self._forget(client_id)

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
        send(self.intents, self.topic, EndOfStream(process=self.name, sent=self.msgs_out, ts_ns=time.time_ns()))

    def stats(self) -> dict[str, Any]:
        return {"quotes": self.quotes, "places": self.places, "cancels": self.cancels, "fills": self.fills,
                "rejects": self.rejects, "position_lot": self.position_lot}

    def close(self) -> None:
        super().close()
        for view in (getattr(self, "book_view", None), getattr(self, "signal_view", None)):
            if view is not None:
                view.close()


def main(argv: list[str] | None = None) -> int:
    return actor_main(Quoter, argv)


if __name__ == "__main__":
    sys.exit(main())
