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
import zmq

from ipc.endpoints import shm_name
from ipc.messages import (
    Barrier,
    BarrierDone,
    CancelAll,
    CancelOrder,
    EndOfStream,
    OrderAccepted,
    OrderBatch,
    OrderCanceled,
    OrderCommand,
    OrderEvent,
    OrderEvents,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    RiskRejected,
    RiskStatus,
    StageReport,
)
from ipc.shm_layout import SIGNAL_DTYPE, book_top_dtype
from ipc.sockets import Codec, send
from mm.position import Position
from mm.risk_rules import (
    AdjustQuotesAction,
    CancelAllAction,
    Exposure,
    FlattenAction,
    KillSwitch,
    MarketView,
    MarkEvent,
    OperatorReduceOnly,
    OperatorResume,
    OrderCheck,
    RateWindow,
    StopEvent,
    StopState,
    TradingState,
    apply_stop_event,
    check_order,
    dependency_policy,
)
from mm.config import journal_path
from mm.orders import Side
from mm.journal import AuditEntry, FillRecorded, FsyncPolicy, PositionSnapshot, scan
from processes.actor import Actor, actor_main
from processes.journal_file import JournalFile
from processes.metrics import TRADING_STATE_CODE, StageMetrics, serve
from processes.control import ControlPlane
from processes.shm_views import SlotView

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_FILLS = 100  # recovery replays at most this many fills after the last snapshot


class OpenOrder(msgspec.Struct):
    side: int
    px_tick: int
    leaves_lot: int


class Risk(Actor):
    name = "risk"
    consumers = {"risk": ("quoter",)}
    forward_after = ("quoter",)
    downstream = ("gateway",)

    def setup(self) -> None:
        cfg = self.config
        self.symbol = cfg.instrument.symbol
        self.tick_size = float(cfg.instrument.tick_size)
        self.lot_size = float(cfg.instrument.lot_size)
        self.book_view = SlotView(shm_name(cfg, "book", "top"), book_top_dtype(cfg.book.depth))
        self.signal_view = SlotView(shm_name(cfg, "signal", "prediction"), SIGNAL_DTYPE)
        self.add_input(self.sockets.pull("intents"), Codec(OrderCommand), self.on_intent, eos_from="quoter")
        self.add_input(self.sockets.subscriber(["events"], [b"ord."]), Codec(OrderEvent), self.on_order_event,
                       eos_from="gateway")
        self.orders_out = self.sockets.push("orders", linger_ms=cfg.ipc.order_linger_ms)
        self.pub = self.add_publisher("risk")
        self.control = ControlPlane(self)
        self.metrics_server = serve(self.config) if self.metrics is not None else None
        self.poller.register(self.control.sock, zmq.POLLIN)
        self.order_topic = f"ord.{self.symbol}".encode()
        self.risk_topic = f"risk.{self.symbol}".encode()
        self.position = Position(self.tick_size, self.lot_size)
        self.event_time = cfg.pipeline.mode == "replay"  # checks on the capture's clock: deterministic
        self.open_orders: dict[str, OpenOrder] = {}
        self.rate = RateWindow()
        self.stops = StopState()
        self.max_abs_position_lot = 0
        self.traded_quote = 0.0
        self.peer_halt = ""  # "peer_dead:<name>" while a dependency is silent
        self.last_event_ns = 0
        self.paused = False
        self.rejected_checks: Counter[str] = Counter()
        self.approved = 0
        self.halts = 0
        self.last_mid_tick = 0.0
        self.stage_reports: dict[str, StageReport] = {}
        self._reconcile_pending = True  # with the gateway's first open-orders report
        self._reconcile_position = self.restarted
        self.reconciled_gone = self.reconciled_adopted = self.reconciled_position_lot = 0
        self._flattens = 0
        self.journal = self._open_journal()  # last: recovery needs the state above

    # ---- journal: fills, position snapshots, operator audit ------------------------------------------

    def _open_journal(self) -> JournalFile:
        """Open the journal and recover the position: the last snapshot, then the fills after it."""
        pipeline = self.config.pipeline
        path = journal_path(self.config, self.name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        journal, recovery = JournalFile.open(path, FsyncPolicy(mode=pipeline.journal_fsync,
                                                               interval_ms=pipeline.journal_fsync_interval_ms))
        self.journal_tail = recovery.tail.value
        base = 0
        for i, record in enumerate(recovery.records):
            if isinstance(record, PositionSnapshot) and record.symbol == self.symbol:
                base = i
        replayed = 0
        for record in recovery.records[base:]:
            match record:
                case PositionSnapshot(symbol=symbol) if symbol == self.symbol:
                    self.position.restore(record.position_lot, record.cost_tick_lot, record.realized_tick_lot,
                                          record.fees_quote, record.traded_lot, record.fills)
                case FillRecorded(symbol=symbol) if symbol == self.symbol:
                    self.position.apply_fill(1 if record.side is Side.BUY else -1, record.px_tick, record.qty_lot,
                                             record.fee_quote)
                    replayed += 1
        if self.position.fills:
            log.warning("risk: position recovered from %s: %d lots after %d fills (%d replayed after the snapshot)",
                        path, self.position.position_lot, self.position.fills, replayed)
        return journal

    def journal_position(self, ts_ns: int) -> None:
        lot, cost, realized, fees, traded, fills = self.position.state()
        self.journal.append(PositionSnapshot(symbol=self.symbol, position_lot=lot, cost_tick_lot=cost,
                                             realized_tick_lot=realized, fees_quote=fees, traded_lot=traded,
                                             fills=fills, ts_ns=ts_ns))

    def audit(self, command: str, before: Any, after: Any, origin: str = "console") -> None:
        self.journal.append(AuditEntry(ts_ns=time.time_ns(), origin=origin, command=command,
                                       before=json.dumps(before, default=str), after=json.dumps(after, default=str)))

    def audit_log(self, limit: int) -> list[dict[str, Any]]:
        recovery = scan(journal_path(self.config, self.name).read_bytes())
        entries = [r for r in recovery.records if isinstance(r, AuditEntry)][-limit:]
        return [{"ts_ns": e.ts_ns, "origin": e.origin, "command": e.command, "before": json.loads(e.before),
                 "after": json.loads(e.after)} for e in entries]

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
            case Barrier():  # replay lockstep: our rejects to the quoter precede it too
                self._forward(msg)
                send(self.pub.sock, self.risk_topic, msg)
            case _:
                log.warning("risk: unexpected %s on intents", type(msg).__name__)

    def _market_view(self) -> MarketView:
        book_ts = signal_ts = 0
        if self.book_view.read():
            top = self.book_view.value[0]
            book_ts = int(top["ts_recv_ns"] if self.event_time else top["ts_book_ns"])
            if top["n_bids"] and top["n_asks"]:
                self.last_mid_tick = 0.5 * (int(top["bid_px"][0]) + int(top["ask_px"][0]))
        if self.signal_view.read():
            signal_ts = int(self.signal_view.value[0]["ts_ns"])
        equity = self.config.risk.equity_quote + self.position.snapshot(self.last_mid_tick)["total"]
        return MarketView(mid_px_tick=self.last_mid_tick, book_ts_ns=book_ts, signal_ts_ns=signal_ts,
                          equity_quote=equity)

    def _exposure(self) -> Exposure:
        buys = [o for o in self.open_orders.values() if o.side > 0]
        sells = [o for o in self.open_orders.values() if o.side < 0]
        return Exposure(
            position_lot=self.position.position_lot,
            open_buy_lot=sum(o.leaves_lot for o in buys),
            open_sell_lot=sum(o.leaves_lot for o in sells),
            best_own_bid_tick=max((o.px_tick for o in buys), default=None),
            best_own_ask_tick=min((o.px_tick for o in sells), default=None),
        )

    def _approve(self, commands: list[PlaceOrder | CancelOrder]) -> list[PlaceOrder | CancelOrder]:
        """The commands stamped for the gateway, less the places a pre-trade check refused. Cancels
        always pass: they only reduce risk. One decision of the quoter is checked against one read of
        the market, one PnL mark and one liveness verdict; the exposure is re-read after each approval."""
        approved: list[PlaceOrder | CancelOrder] = []
        market: MarketView | None = None
        for msg in commands:
            if isinstance(msg, CancelOrder):
                approved.append(msgspec.structs.replace(msg, ts_risk_ns=time.time_ns()))
                continue
            now_ns = msg.ts_recv_ns if self.event_time else time.time_ns()
            if market is None:
                self.last_event_ns = max(self.last_event_ns, msg.ts_recv_ns)
                market = self._market_view()  # the book and prediction slots, read once
                self.mark(now_ns, market)
                peers_alive = self.dependencies_alive()
            checked = self._check(msg, now_ns, market, peers_alive)
            if checked is not None:
                approved.append(checked)
        return approved

    def _check(self, msg: PlaceOrder, now_ns: int, market: MarketView, peers_alive: bool) -> PlaceOrder | None:
        reject = check_order(
            self.config.risk, OrderCheck(msg.side, msg.px_tick, msg.qty_lot), self._exposure(), market,
            tick_size=self.tick_size, lot_size=self.lot_size, now_ns=now_ns, state=self.trading,
            paused=self.paused, peers_alive=peers_alive, recent_orders=self.rate,
        )
        if reject is not None:
            self.rejected_checks[reject.value] += 1
            send(self.pub.sock, self.risk_topic, RiskRejected(client_id=msg.client_id, symbol=msg.symbol,
                                                              reason=reject.value, ts_ns=now_ns))
            return None
        self.rate.record(now_ns)
        self.open_orders[msg.client_id] = OpenOrder(msg.side, msg.px_tick, msg.qty_lot)
        self.approved += 1
        return msgspec.structs.replace(msg, ts_risk_ns=time.time_ns())

    def _forward(self, msg: Any) -> None:
        send(self.orders_out, self.order_topic, msg)
        self.msgs_out += 1

    def cancel_all(self, reason: str) -> None:
        log.warning("risk: cancel all (%s)", reason)
        self._forward(CancelAll(symbol="", reason=reason, ts_ns=time.time_ns()))

    # ---- events ---------------------------------------------------------------------------------

    def on_order_event(self, topic: bytes, msg: Any) -> None:
        match msg:
            case OrderEvents():
                for event in msg.events:
                    self.on_order_event(topic, event)
            case OrderAccepted():
                if msg.client_id not in self.open_orders:  # adopted: e.g. sent before a risk restart
                    self.open_orders[msg.client_id] = OpenOrder(msg.side, msg.px_tick, msg.qty_lot)
            case OrderFilled():
                self.journal.append(FillRecorded(client_id=msg.client_id, symbol=msg.symbol, side=side_of(msg.side),
                                                 px_tick=msg.px_tick, qty_lot=msg.qty_lot, fee_quote=msg.fee_quote,
                                                 trade_id=0, ts_ns=msg.ts_event_ns))
                self.position.apply_fill(msg.side, msg.px_tick, msg.qty_lot, msg.fee_quote)
                if self.position.fills % SNAPSHOT_EVERY_FILLS == 0:
                    self.journal_position(msg.ts_event_ns)
                self.max_abs_position_lot = max(self.max_abs_position_lot, abs(self.position.position_lot))
                self.traded_quote += msg.px_tick * msg.qty_lot * self.tick_size * self.lot_size
                self.last_event_ns = max(self.last_event_ns, msg.ts_event_ns)
                order = self.open_orders.get(msg.client_id)
                if order is not None:
                    order.leaves_lot = msg.leaves_lot
                    if msg.leaves_lot == 0:
                        del self.open_orders[msg.client_id]
                self.mark(self.now_ns())
                self.publish_status()
            case OrderCanceled() | OrderRejected():
                self.open_orders.pop(msg.client_id, None)
            case Barrier():  # the gateway has answered everything before it
                self.publish_control(BarrierDone(process=self.name, seq=msg.seq, ts_ns=time.time_ns()))
            case _:
                log.warning("risk: unexpected %s on events", type(msg).__name__)

    # ---- trading state --------------------------------------------------------------------------

    def dependencies_alive(self) -> bool:
        return dependency_policy(self.liveness.dead()) is None

    @property
    def trading(self) -> TradingState:
        """HALTED while a dependency is dead (auto-clears) or a stop / kill holds; else the stops' state."""
        return TradingState.HALTED if self.peer_halt else self.stops.trading

    @property
    def halt_reason(self) -> str:
        return self.peer_halt or (self.stops.reason if self.stops.trading != TradingState.ACTIVE else "")

    def apply_stop(self, event: StopEvent, now_ns: int) -> None:
        """Run the pure stop-loss / kill-switch state machine and carry out what it says."""
        before = self.stops
        self.stops, actions = apply_stop_event(self.config.risk, self.stops, event, now_ns)
        if self.stops.trading != before.trading:
            log.warning("risk: trading %s -> %s: %s", before.trading.value, self.stops.trading.value, self.stops.reason)
            if self.stops.trading == TradingState.HALTED:
                self.halts += 1
        for action in actions:
            match action:
                case CancelAllAction():
                    self.cancel_all(action.reason)
                case FlattenAction():
                    self.flatten()
                case AdjustQuotesAction():
                    pass  # carried to the quoter by RiskStatus (size_ratio, widen_ticks)
        if quoting_terms(self.stops) != quoting_terms(before):  # a mark alone changes only the PnL figures
            self.publish_status()

    def mark(self, now_ns: int, market: MarketView | None = None) -> None:
        """A PnL mark for the stops: on every fill and every order check (event time in replay).
        No mark before the book gives a mid: PnL marked at 0 would be a false peak or drawdown."""
        market = market or self._market_view()  # also refreshes the prediction slot's copy
        if market.mid_px_tick <= 0:
            return
        volatility = float(self.signal_view.value[0]["volatility_bps_per_s"]) if market.signal_ts_ns else 0.0
        self.apply_stop(MarkEvent(self.pnl()["total"], volatility), now_ns)

    def halt(self, reason: str) -> None:
        """Kill switch: cancel all and halt until an operator resumes."""
        self.apply_stop(KillSwitch(reason), self.now_ns())

    def resume(self) -> None:
        self.paused = False
        self.apply_stop(OperatorResume(), self.now_ns())
        if self.stops.is_operator_reduce_only:
            self.apply_stop(OperatorReduceOnly(False), self.now_ns())
        if self.peer_halt and self.dependencies_alive():
            self.peer_halt = ""
        self.publish_status()

    def now_ns(self) -> int:
        return self.last_event_ns if self.event_time else time.time_ns()

    def on_control(self, msg: Any) -> None:
        if isinstance(msg, StageReport):
            self.stage_reports[msg.kind] = msg
            if msg.kind == "open_orders" and self._reconcile_pending:
                body = json.loads(msg.body)
                self._reconcile(body["orders"], body["position_lot"])

    def _reconcile(self, rows: list[list[Any]], venue_position_lot: int) -> None:
        """The venue's open orders and position are the truth after a restart (ours or the gateway's):
        adopt the unknown, drop the gone; a position the journal missed (fills while we were down) is
        booked at the mid. Each difference logged and counted."""
        # the position only after a restart (ours or the gateway's): in steady state a fill can be on
        # its way to us while the venue already counts it, and booking that difference would double it
        missed = venue_position_lot - self.position.position_lot if self._reconcile_position else 0
        if missed and self._market_view().mid_px_tick <= 0:
            return  # no mid to book the difference at yet: the next report (each second) settles it
        self._reconcile_pending = self._reconcile_position = False
        if missed:
            side = 1 if missed > 0 else -1
            px_tick = round(self.last_mid_tick)
            self.journal.append(FillRecorded(client_id="reconcile", symbol=self.symbol, side=side_of(side), px_tick=px_tick,
                                             qty_lot=abs(missed), fee_quote=0.0, trade_id=0, ts_ns=time.time_ns()))
            self.position.apply_fill(side, px_tick, abs(missed), 0.0)
            self.reconciled_position_lot += missed
            log.warning("risk: the venue's position differs by %d lots (fills we never saw: a restart of risk "
                        "or of the gateway): booked at the mid %d", missed, px_tick)
        venue = {cid: OpenOrder(side, px, leaves) for cid, side, px, leaves in rows}
        gone = [cid for cid in self.open_orders if cid not in venue]
        adopted = [cid for cid in venue if cid not in self.open_orders]
        for cid in gone:
            del self.open_orders[cid]
        for cid in adopted:
            self.open_orders[cid] = venue[cid]
        self.reconciled_gone += len(gone)
        self.reconciled_adopted += len(adopted)
        if gone or adopted:
            log.warning("risk: reconciled with the venue: %d gone, %d adopted", len(gone), len(adopted))

    def reduce_only(self) -> None:
        self.apply_stop(OperatorReduceOnly(True), self.now_ns())

    def flatten(self) -> dict[str, Any]:
        """Cancel all, go reduce-only, and take the touch for the whole position (not post-only)."""
        self.cancel_all("operator flatten")
        self.reduce_only()
        position = self.position.position_lot
        if position == 0 or not self.book_view.read():
            return {"sent": False, "position_lot": position}
        top = self.book_view.value[0]
        if not (top["n_bids"] and top["n_asks"]):
            return {"sent": False, "position_lot": position, "why": "empty book"}
        side = -1 if position > 0 else 1
        px_tick = int(top["bid_px"][0]) if side < 0 else int(top["ask_px"][0])
        self._flattens += 1
        client_id = f"{self.config.gateway.client_id_prefix}{self.config.pipeline.name[:8]}f{self.pid}x{self._flattens}"
        order = PlaceOrder(client_id=client_id, symbol=self.symbol, side=side, px_tick=px_tick, qty_lot=abs(position),
                           post_only=False, ts_recv_ns=0, ts_feed_ns=0, ts_book_ns=0, ts_quoter_ns=0,
                           ts_risk_ns=time.time_ns())
        self.open_orders[client_id] = OpenOrder(side, px_tick, abs(position))
        self._forward(order)
        log.warning("risk: flatten: %s %d lots at %d ticks (%s)", "sell" if side < 0 else "buy", abs(position),
                    px_tick, client_id)
        return {"sent": True, "client_id": client_id, "side": side, "px_tick": px_tick, "qty_lot": abs(position)}

    def on_peer_died(self, peer: str, now_ns: int) -> None:
        if dependency_policy({peer}) == TradingState.HALTED:
            if not self.peer_halt:
                self.halts += 1
            self.peer_halt = f"peer_dead:{peer}"
            log.error("risk: HALTED: %s is silent", peer)
            self.cancel_all(self.peer_halt)
            self.publish_status()

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        if peer == "gateway":
            self._reconcile_pending = self._reconcile_position = True
        if peer in ("book", "signal"):  # restarted writers made new segments under the same names
            (self.book_view if peer == "book" else self.signal_view).attach()
        if self.peer_halt and self.dependencies_alive():
            log.warning("risk: dependencies alive again: the peer halt ends")
            self.peer_halt = ""
            self.publish_status()

    def publish_status(self) -> None:
        send(self.pub.sock, self.risk_topic, RiskStatus(trading=self.trading.value, paused=self.paused,
                                                         position_lot=self.position.position_lot,
                                                         ts_ns=time.time_ns(), size_ratio=self.stops.size_ratio,
                                                         widen_ticks=self.stops.widen_ticks))

    # ---- loop hooks -----------------------------------------------------------------------------

    def on_timer(self, now_ns: int) -> None:
        self.control.serve()
        self.journal.on_timer(now_ns)

    def heartbeat(self) -> None:
        super().heartbeat()
        if hasattr(self, "pub"):
            self.publish_status()

    def export_metrics(self, metrics: StageMetrics) -> None:
        for reason, count in self.rejected_checks.items():
            metrics.add(metrics.risk_rejects, count, reason)
        pnl = self.pnl()
        metrics.position.labels(self.name).set(pnl["position"])
        for kind in ("realized", "unrealized", "fees", "total"):
            metrics.pnl.labels(self.name, kind).set(pnl[kind])
        metrics.risk_state.labels(self.name).set(TRADING_STATE_CODE[self.trading.value])
        metrics.paused.labels(self.name).set(int(self.paused))
        now = time.monotonic_ns()
        for peer in self.peers:
            age = self.liveness.age_ns(peer, now)
            if age is not None:
                metrics.heartbeat_age.labels(peer).set(age / 1e9)

    def send_end_of_stream(self, now_ns: int) -> None:
        send(self.orders_out, self.order_topic, EndOfStream(process=self.name, sent=self.msgs_out,
                                                            ts_ns=time.time_ns()))

    def pnl(self) -> dict[str, Any]:
        return self.position.snapshot(self.last_mid_tick)

    def stats(self) -> dict[str, Any]:
        self._market_view()
        return {
            "approved": self.approved, "position": self.pnl(), "trading": self.trading.value,
            "halts": self.halts, "soft_stops": self.stops.soft_stops, "hard_stops": self.stops.hard_stops,
            "kills": self.stops.kills, "stop_reason": self.stops.reason,
            "max_abs_position": self.max_abs_position_lot * self.lot_size, "traded_quote": self.traded_quote,
            "reconciled": {"gone": self.reconciled_gone, "adopted": self.reconciled_adopted,
                           "position_lot": self.reconciled_position_lot},
            "journal_tail": self.journal_tail,
            "rejected_checks": dict(sorted(self.rejected_checks.items())),
            "mid_px_tick": self.last_mid_tick,
        }

    def close(self) -> None:
        if getattr(self, "journal", None) is not None:
            self.journal_position(self.now_ns())
            self.journal.close()
        if getattr(self, "control", None) is not None:
            self.control.close()
        if getattr(self, "metrics_server", None) is not None:
            self.metrics_server.shutdown()
        super().close()
        for view in (getattr(self, "book_view", None), getattr(self, "signal_view", None)):
            if view is not None:
                view.close()


def quoting_terms(stops: StopState) -> tuple[TradingState, float, float]:
    """What of the stops' state the quoter acts on (carried by RiskStatus)."""
    return stops.trading, stops.size_ratio, stops.widen_ticks


def side_of(side: int) -> Side:
    return Side.BUY if side > 0 else Side.SELL


def main(argv: list[str] | None = None) -> int:
    return actor_main(Risk, argv)


if __name__ == "__main__":
    sys.exit(main())
