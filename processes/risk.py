"""Risk: every order intent passes the pre-trade checks of mm/risk_rules.py or is refused; holds
the authoritative position and PnL from the gateway's fills; halts and cancels all when a stage
it depends on goes silent; reads the book and the prediction straight from shared memory when
it checks an order (no wakeup per book change: the order path has the cores); hosts the operator console's REP endpoint (processes/control.py).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from typing import Any

import msgspec

from ipc.endpoints import shm_name
from ipc.messages import (
    Barrier,
    CancelAll,
    CancelOrder,
    OrderAccepted,
    OrderBatch,
    OrderCanceled,
    OrderCommand,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    RiskRejected,
    RiskStatus,
    StageReport,
    VenueState,
    unbatched,
)
from ipc.shm_layout import SIGNAL_DTYPE, book_top_dtype
from ipc.sockets import Codec, send
from mm.config import journal_path
from mm.journal import AuditEntry, FillRecorded, FsyncPolicy, PositionSnapshot, scan
from mm.risk_rules import dependency_policy
from mm.stages.commands import CancelEverything, Place, Rejection
from mm.stages.risk import MarketRead, RiskStep, StatusChanged
from processes.actor import Actor, actor_main
from processes.control import ControlPlane
from processes.journal_file import JournalFile
from processes.metrics import TRADING_STATE_CODE, StageMetrics, serve
from processes.shm_views import SlotView

log = logging.getLogger(__name__)

class Risk(Actor):
    name = "risk"
    consumers = {"risk": ("quoter",)}
    forward_after = ("quoter",)
    downstream = ("gateway",)

    def setup(self) -> None:
        cfg = self.config
        self.symbol = cfg.instrument.symbol
        self.book_view = SlotView(shm_name(cfg, "book", "top"), book_top_dtype(cfg.book.depth))
        self.signal_view = SlotView(shm_name(cfg, "signal", "prediction"), SIGNAL_DTYPE)
        # the fields a check reads, bound once (SlotView.field: .item(0) is a Python scalar)
        self.event_time = cfg.pipeline.mode == "replay"  # checks on the capture's clock: deterministic
        book, sig = self.book_view.field, self.signal_view.field
        self._top = (book("ts_recv_ns" if self.event_time else "ts_book_ns"), book("n_bids"), book("n_asks"),
                     book("bid_px"), book("ask_px"))
        self._pred = (sig("ts_ns"), sig("volatility_bps_per_s"))
        self.add_input(self.critical_pull("intents", "quoter"), Codec(OrderCommand), self.on_intent, eos_from="quoter")
        self.add_input(self.loop_subscriber("events", [b"ord."]), Codec(OrderEvent), self.on_order_event,
                       eos_from="gateway")
        self.orders_out = self.critical_push("orders", "gateway", linger_ms=cfg.ipc.order_linger_ms)
        self.pub = self.loop_publisher("risk")
        self.control = ControlPlane(self)
        self.metrics_server = serve(self.config) if self.metrics is not None else None
        self.add_ready_handler(self.control.sock, self.control.serve)  # console requests, when they come
        self.order_topic = f"ord.{self.symbol}".encode()
        self.risk_topic = f"risk.{self.symbol}".encode()
        self.step = RiskStep(cfg, f"{cfg.gateway.client_id_prefix}{cfg.pipeline.name[:8]}f{self.pid}x")
        # live: a run's first venue report settles fills our journal never saw (made while the gateway
        # was down after the last run, e.g. before a dead-man's switch fired); no order of ours is in flight yet
        self.step.reconcile_position = self.restarted or cfg.pipeline.mode == "live"
        self.stage_reports: dict[str, StageReport] = {}
        self.venue_state: VenueState | None = None  # the gateway's newest word on what the venue holds
        self.journal = self._open_journal()  # last: recovery needs the state above

    def on_config_changed(self) -> None:
        self.step.config = self.config

    # ---- the step's state, as the control plane reads it ------------------------------------------

    @property
    def paused(self) -> bool:
        return self.step.paused

    @property
    def trading(self) -> Any:
        return self.step.trading

    @property
    def halt_reason(self) -> str:
        return self.step.halt_reason

    @property
    def open_orders(self) -> dict[str, Any]:
        return self.step.open_orders

    @property
    def rejected_checks(self) -> Counter[str]:
        return self.step.rejected_checks

    @property
    def position(self) -> Any:
        return self.step.position

    @property
    def halts(self) -> int:
        return self.step.halts

    # ---- journal: fills, position snapshots, operator audit ------------------------------------------

    def _open_journal(self) -> JournalFile:
        """Open the journal and recover the position: the last snapshot, then the fills after it."""
        pipeline = self.config.pipeline
        path = journal_path(self.config, self.name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        journal, recovery = JournalFile.open(path, FsyncPolicy(mode=pipeline.journal_fsync,
                                                               interval_ms=pipeline.journal_fsync_interval_ms))
        self.journal_tail = recovery.tail.value
        replayed = self.step.recover(recovery.records)
        position = self.step.position
        if position.fills:
            log.warning("risk: position recovered from %s: %d lots after %d fills (%d replayed after the snapshot)",
                        path, position.position_lot, position.fills, replayed)
        return journal

    def audit(self, command: str, before: Any, after: Any, origin: str = "console") -> None:
        self.journal.append(AuditEntry(ts_ns=time.time_ns(), origin=origin, command=command,
                                       before=json.dumps(before, default=str), after=json.dumps(after, default=str)))

    def audit_log(self, limit: int) -> list[dict[str, Any]]:
        recovery = scan(journal_path(self.config, self.name).read_bytes())
        entries = [r for r in recovery.records if isinstance(r, AuditEntry)][-limit:]
        return [{"ts_ns": e.ts_ns, "origin": e.origin, "command": e.command, "before": json.loads(e.before),
                 "after": json.loads(e.after)} for e in entries]

    # ---- carrying out the step's actions ------------------------------------------------------------

    def execute(self, actions: list[Any]) -> None:
        status = False
        for action in actions:
            match action:
                case FillRecorded() | PositionSnapshot():
                    self.journal.append(action)
                case StatusChanged():
                    status = True
                case CancelEverything():
                    log.warning("risk: cancel all (%s)", action.reason)
                    self._forward(CancelAll(symbol="", reason=action.reason, ts_ns=time.time_ns()))
                case Place():  # a flatten: takes the touch
                    log.warning("risk: flatten: %s %d lots at %d ticks (%s)", "sell" if action.side < 0 else "buy",
                                action.qty_lot, action.px_tick, action.client_id)
                    self._forward(PlaceOrder(client_id=action.client_id, symbol=self.symbol, side=action.side,
                                             px_tick=action.px_tick, qty_lot=action.qty_lot,
                                             post_only=action.post_only, ts_recv_ns=0, ts_feed_ns=0, ts_book_ns=0,
                                             ts_quoter_ns=0, ts_risk_ns=time.time_ns()))
                case Rejection():
                    self._reject(action)
        if status:
            self.publish_status()

    def _reject(self, rejection: Rejection) -> None:
        send(self.pub.sock, self.risk_topic, RiskRejected(client_id=rejection.client_id, symbol=self.symbol,
                                                          reason=rejection.reason, ts_ns=rejection.ts_ns))

    def market_read(self) -> MarketRead:
        """The book and prediction slots, read once (zeros where a slot has nothing yet)."""
        book_ts = bid = ask = signal_ts = 0
        volatility = 0.0
        if self.book_view.read():
            ts, n_bids, n_asks, bid_px, ask_px = self._top
            book_ts = ts.item(0)
            if n_bids.item(0) and n_asks.item(0):
                bid, ask = bid_px.item(0), ask_px.item(0)
        if self.signal_view.read():
            ts, vol = self._pred
            signal_ts, volatility = ts.item(0), vol.item(0)
        return MarketRead(book_ts, bid, ask, signal_ts, volatility)

    # ---- order path -----------------------------------------------------------------------------

    def on_intent(self, topic: bytes, msg: Any) -> None:
        match msg:
            case PlaceOrder() | CancelOrder():
                approved = self._approve([msg])
                if approved:
                    self._forward(approved[0])
            case OrderBatch():
                commands = self._approve(msg.commands)
                if commands:
                    self._forward(commands[0] if len(commands) == 1 else OrderBatch(commands=commands))
            case CancelAll():
                self._forward(msg)
            case Barrier():  # replay lockstep
                self._forward(msg)
            case _:
                log.warning("risk: unexpected %s on intents", type(msg).__name__)

    def _approve(self, commands: list[PlaceOrder | CancelOrder]) -> list[PlaceOrder | CancelOrder]:
        """The commands stamped for the gateway, less the places a pre-trade check refused. Cancels
        always pass: they only reduce risk. One decision of the quoter is checked against one read of
        the market, one PnL mark and one liveness verdict (the step's begin_decision)."""
        approved: list[PlaceOrder | CancelOrder] = []
        market = None
        for msg in commands:
            if type(msg) is CancelOrder:
                approved.append(msg)
                continue
            now_ns = msg.ts_recv_ns if self.event_time else time.time_ns()
            if market is None:
                market, actions = self.step.begin_decision(msg.ts_recv_ns, self.market_read(), now_ns)
                self.execute(actions)
                peers_alive = self.dependencies_alive()
            rejection = self.step.check(msg, now_ns, market, peers_alive)
            if rejection is not None:
                self._reject(rejection)
            else:
                approved.append(msg)
        ts_risk_ns = time.time_ns()  # the decision's stamp, once its checks are done
        replace = msgspec.structs.replace
        return [replace(msg, ts_risk_ns=ts_risk_ns) for msg in approved]

    def _forward(self, msg: Any) -> None:
        self.mark_forwarded(time.time_ns())
        send(self.orders_out, self.order_topic, msg)
        self.msgs_out += 1

    def cancel_all(self, reason: str) -> None:
        self.execute([CancelEverything(reason)])

    # ---- events ---------------------------------------------------------------------------------

    def on_order_event(self, topic: bytes, msg: Any) -> None:
        for event in unbatched(msg):  # the gateway's answers of one turn, in order
            self._on_order_event(event)

    def _on_order_event(self, msg: Any) -> None:
        match msg:
            case OrderAccepted():
                self.step.on_accepted(msg.client_id, msg.side, msg.px_tick, msg.qty_lot)
            case OrderFilled():
                self.execute(self.step.on_fill(msg.client_id, msg.side, msg.px_tick, msg.qty_lot, msg.leaves_lot,
                                               msg.fee_quote, msg.ts_event_ns,
                                               None if self.event_time else time.time_ns(), self.market_read()))
            case OrderCanceled() | OrderRejected():
                self.step.on_done(msg.client_id)
            case Barrier():  # the gateway has answered everything before it, and so have we
                send(self.pub.sock, self.risk_topic, msg)
            case _:
                log.warning("risk: unexpected %s on events", type(msg).__name__)

    # ---- trading state: operator commands ---------------------------------------------------------

    def dependencies_alive(self) -> bool:
        return dependency_policy(self.liveness.dead()) is None

    def halt(self, reason: str) -> None:
        """Kill switch: cancel all and halt until an operator resumes."""
        self.execute(self.step.kill(reason, self.now_ns()))

    def pause(self) -> None:
        self.execute(self.step.pause())

    def resume(self) -> None:
        self.execute(self.step.resume(self.now_ns(), self.liveness.dead()))

    def reduce_only(self) -> None:
        self.execute(self.step.reduce_only(self.now_ns()))

    def flatten(self) -> dict[str, Any]:
        """Cancel all, go reduce-only, and take the touch for the whole position (not post-only)."""
        self.step.market_view(self.market_read())
        actions = self.step.flatten_orders(self.now_ns())
        self.execute(actions)
        places = [a for a in actions if isinstance(a, Place)]
        if not places:
            return {"sent": False, "position_lot": self.step.position.position_lot,
                    **({"why": "empty book"} if self.step.touch is None else {})}
        place = places[0]
        return {"sent": True, "client_id": place.client_id, "side": place.side, "px_tick": place.px_tick,
                "qty_lot": place.qty_lot}

    def now_ns(self) -> int:
        return self.step.last_event_ns if self.event_time else time.time_ns()

    def on_control(self, msg: Any) -> None:
        if isinstance(msg, StageReport):
            self.stage_reports[msg.kind] = msg
        elif isinstance(msg, VenueState):
            newer = (self.venue_state is None or msg.pid != self.venue_state.pid or msg.seq > self.venue_state.seq)
            if not newer:
                return  # an older snapshot than the one we hold
            self.venue_state = msg
            if self.step.reconcile_pending:
                self._reconcile(msg)

    def _reconcile(self, state: VenueState) -> None:
        self.step.market_view(self.market_read())
        rows = [(o.client_id, int(o.side), o.px_tick, o.leaves_lot) for o in state.orders]
        done = self.step.reconcile(rows, state.position_lot, time.time_ns())
        if done is None:
            return  # no mid to book the difference at yet: the next report (each second) settles it
        actions, changed = done
        self.execute(actions)
        if changed["missed_lot"]:
            log.warning("risk: the venue's position differs by %d lots (fills we never saw: a restart of risk "
                        "or of the gateway): booked at the mid %.0f", changed["missed_lot"], self.step.last_mid_tick)
        if changed["gone"] or changed["adopted"]:
            log.warning("risk: reconciled with the venue: %d gone, %d adopted", changed["gone"], changed["adopted"])

    def on_peer_died(self, peer: str, now_ns: int) -> None:
        actions = self.step.on_peer_died(peer)
        if actions:
            log.error("risk: HALTED: %s is silent", peer)
        self.execute(actions)

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        if peer in ("book", "signal"):  # restarted writers made new segments under the same names
            (self.book_view if peer == "book" else self.signal_view).attach()
        actions = self.step.on_peer_revived(peer, self.liveness.dead())
        if actions:
            log.warning("risk: dependencies alive again: the peer halt ends")
        self.execute(actions)

    def publish_status(self) -> None:
        step = self.step
        send(self.pub.sock, self.risk_topic, RiskStatus(trading=step.trading.value, paused=step.paused,
                                                         position_lot=step.position.position_lot,
                                                         ts_ns=time.time_ns(), size_ratio=step.stops.size_ratio,
                                                         widen_ticks=step.stops.widen_ticks))

    # ---- loop hooks -----------------------------------------------------------------------------

    def on_timer(self, now_ns: int) -> None:
        self.journal.on_timer(now_ns)

    def heartbeat(self) -> None:
        super().heartbeat()
        if hasattr(self, "pub"):
            self.publish_status()

    def export_metrics(self, metrics: StageMetrics) -> None:
        for reason, count in self.step.rejected_checks.items():
            metrics.add(metrics.risk_rejects, count, reason)
        pnl = self.pnl()
        metrics.position.labels(self.name).set(pnl["position"])
        for kind in ("realized", "unrealized", "fees", "total"):
            metrics.pnl.labels(self.name, kind).set(pnl[kind])
        metrics.risk_state.labels(self.name).set(TRADING_STATE_CODE[self.step.trading.value])
        metrics.paused.labels(self.name).set(int(self.step.paused))
        # the order-rate check's budget: orders still allowed in the sliding second, on the check's clock
        max_per_s = self.config.risk.max_orders_per_s
        metrics.rate_limit_tokens.labels(self.name, "order_rate").set(
            max(0, int(max_per_s - self.step.rate.count_without_evicting(self.now_ns()))))
        now = time.monotonic_ns()
        for peer in self.peers:
            age = self.liveness.age_ns(peer, now)
            if age is not None:
                metrics.heartbeat_age.labels(peer).set(age / 1e9)

    def send_end_of_stream(self, now_ns: int) -> None:
        send(self.orders_out, self.order_topic, self.end_of_stream())

    def pnl(self) -> dict[str, Any]:
        return self.step.pnl()

    def stats(self) -> dict[str, Any]:
        self.step.market_view(self.market_read())
        return {**self.step.stats(), "journal_tail": self.journal_tail}

    def close(self) -> None:
        if getattr(self, "journal", None) is not None:
            self.journal.append(self.step.position_snapshot(self.now_ns()))
            self.journal.close()
        if getattr(self, "control", None) is not None:
            self.control.close()
        if getattr(self, "metrics_server", None) is not None:
            self.metrics_server.shutdown()
        super().close()
        for view in (getattr(self, "book_view", None), getattr(self, "signal_view", None)):
            if view is not None:
                view.close()


def main(argv: list[str] | None = None) -> int:
    return actor_main(Risk, argv)


if __name__ == "__main__":
    sys.exit(main())
