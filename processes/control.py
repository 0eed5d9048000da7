"""The operator's control endpoint, hosted by risk: a REP socket answering JSON requests.

Requests are `{"command": ..., "args": [...]}`; replies `{"ok": bool, "result": {...}, "error": str}`.
The ipc socket file is owner-only (ipc/sockets.py). Every command that changes state is logged
with its origin and the value before and after.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from ipc.curve import make_server
from ipc.messages import ConsoleReply, ConsoleRequest, SetParam, VenueState
from ipc.sockets import readable
from mm.config import PROCESS_NAMES, with_param
from mm.errors import ConfigError
from mm.risk_rules import TradingState

if TYPE_CHECKING:
    from processes.risk import Risk

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_TURN = 16


class ControlPlane:
    def __init__(self, risk: Risk) -> None:
        self.risk = risk
        curve_dir = risk.config.ipc.curve_keys_dir
        self.authenticator = None
        if risk.config.ipc.transport == "tcp":
            self.sock = risk.sockets.reply("control", configure=lambda sock: self._secure(sock, Path(curve_dir)))
        else:
            self.sock = risk.sockets.reply("control")
        self._decoder = msgspec.json.Decoder(ConsoleRequest)
        self._encoder = msgspec.json.Encoder()
        self.handlers = {
            "status": self.status, "pause": self.pause, "resume": self.resume, "cancel-all": self.cancel_all,
            "kill": self.kill, "set": self.set_param, "position": self.position, "pnl": self.position,
            "book": self.book, "orders": self.orders, "risk": self.risk_state, "signal": self.signal,
            "quotes": self.quotes, "latency": self.latency, "reduce-only": self.reduce_only, "flatten": self.flatten,
            "audit": self.audit,
        }

    def _secure(self, sock: zmq.Socket, directory: Path) -> None:
        self.authenticator = make_server(sock, self.risk.sockets.ctx, directory)

    def close(self) -> None:
        if self.authenticator is not None:
            self.authenticator.stop()

    def serve(self) -> None:
        for _ in range(MAX_REQUESTS_PER_TURN):
            if not readable(self.sock):  # called every loop turn: no exception per empty check
                return
            raw = self.sock.recv(zmq.NOBLOCK)
            self.sock.send(self._encoder.encode(self._answer(raw)))

    def _answer(self, raw: bytes) -> ConsoleReply:
        try:
            request = self._decoder.decode(raw)
        except msgspec.DecodeError as e:
            return ConsoleReply(ok=False, error=f"bad request: {e}")
        handler = self.handlers.get(request.command)
        if handler is None:
            return ConsoleReply(ok=False, error=f"unknown command {request.command!r}; one of: "
                                                + ", ".join(sorted(self.handlers)))
        try:
            return ConsoleReply(ok=True, result=handler(request.args))
        except ConfigError as e:
            return ConsoleReply(ok=False, error=str(e))

    # ---- commands ---------------------------------------------------------------------------------

    def status(self, args: list[str]) -> dict[str, Any]:
        risk = self.risk
        now_mono = time.monotonic_ns()
        rows = []
        for name in PROCESS_NAMES:
            if name == risk.name:
                rows.append({"name": name, "alive": True, "pid": risk.pid, "core": _core(risk.core),
                             "heartbeat_age_ms": 0.0, "in": risk.msgs_in, "out": risk.msgs_out,
                             "state": risk.state.value, "lag": risk.lag})
                continue
            hb = risk.peer_heartbeats.get(name)
            age = risk.liveness.age_ns(name, now_mono)
            rows.append({
                "name": name, "alive": risk.liveness.is_alive(name) and hb is not None,
                "pid": hb.pid if hb else 0, "core": _core(hb.core) if hb else None,
                "heartbeat_age_ms": round(age / 1e6, 3) if age is not None else -1.0,
                "in": hb.msgs_in if hb else 0, "out": hb.msgs_out if hb else 0,
                "state": hb.state if hb else "unknown", "lag": hb.lag if hb else 0,
            })
        return {
            "pipeline": risk.config.pipeline.name, "mode": risk.config.pipeline.mode, "paused": risk.paused,
            "trading": risk.trading.value, "halt_reason": risk.halt_reason, "processes": rows,
            "position": risk.pnl(), "open_orders": len(risk.open_orders),
            **{kind: json.loads(risk.stage_reports[kind].body) for kind in ("book", "feed")
               if kind in risk.stage_reports},
            "venue": venue_summary(risk.venue_state),
            "rejected_checks": dict(risk.rejected_checks),
        }

    def _audit(self, command: str, before: Any, after: Any) -> None:
        """Every state change an operator makes: logged, and written to risk's journal."""
        log.warning("operator %s: before=%s after=%s origin=console", command, before, after)
        self.risk.audit(command, before, after)

    def audit(self, args: list[str]) -> dict[str, Any]:
        return {"entries": self.risk.audit_log(_count_arg("audit", args, 50))}

    def pause(self, args: list[str]) -> dict[str, Any]:
        before = self.risk.paused
        self.risk.pause()
        self._audit("pause", before, True)
        return {"paused": True}

    def resume(self, args: list[str]) -> dict[str, Any]:
        before = (self.risk.paused, self.risk.trading.value)
        self.risk.resume()
        after = (self.risk.paused, self.risk.trading.value)
        self._audit("resume", before, after)
        return {"paused": self.risk.paused, "trading": self.risk.trading.value}

    def cancel_all(self, args: list[str]) -> dict[str, Any]:
        open_before = len(self.risk.open_orders)
        self.risk.cancel_all("operator cancel-all")
        self._audit("cancel-all", open_before, "cancel sent")
        return {"cancelled": open_before}

    def kill(self, args: list[str]) -> dict[str, Any]:
        before = self.risk.trading.value
        self.risk.halt("kill switch (operator)")
        self._audit("kill", before, TradingState.HALTED.value)
        return {"trading": self.risk.trading.value}

    def set_param(self, args: list[str]) -> dict[str, Any]:
        if len(args) != 2:
            raise ConfigError("usage: set SECTION.KEY VALUE")
        key, value = args
        new_config = with_param(self.risk.config, key, value)  # raises ConfigError naming the key
        section, _, field = key.partition(".")
        before = getattr(getattr(self.risk.config, section), field)
        after = getattr(getattr(new_config, section), field)
        if section == self.risk.name:
            self.risk.config = new_config
            self.risk.on_config_changed()
        self.risk.publish_control(SetParam(section=section, key=field, value=value, ts_ns=time.time_ns()))
        self._audit(f"set {key}", before, after)
        return {"key": key, "before": before, "after": after}

    def position(self, args: list[str]) -> dict[str, Any]:
        return self.risk.pnl()

    def book(self, args: list[str]) -> dict[str, Any]:
        depth = _count_arg("book", args, 5)
        view = self.risk.book_view
        if not view.read():
            return {"bids": [], "asks": []}
        top = view.value[0]
        n_bids = min(depth, int(top["n_bids"]))
        n_asks = min(depth, int(top["n_asks"]))
        return {
            "update_id": int(top["update_id"]),
            "bids": [[int(top["bid_px"][i]), int(top["bid_qty"][i])] for i in range(n_bids)],
            "asks": [[int(top["ask_px"][i]), int(top["ask_qty"][i])] for i in range(n_asks)],
        }

    def orders(self, args: list[str]) -> dict[str, Any]:
        return {"open": {cid: msgspec.to_builtins(o) for cid, o in sorted(self.risk.open_orders.items())}}

    def signal(self, args: list[str]) -> dict[str, Any]:
        view = self.risk.signal_view
        if not view.read():
            return {"available": False}
        pred = view.value[0]
        return {"available": True, "update_id": int(pred["update_id"]), "predicted_return": float(pred["predicted_return"]),
                "fair_px_tick": float(pred["fair_px_tick"]), "volatility_bps_per_s": float(pred["volatility_bps_per_s"]),
                "imbalance": float(pred["imbalance"]), "healthy": bool(pred["healthy"]),
                "age_ms": round((time.time_ns() - int(pred["ts_ns"])) / 1e6, 3)}

    def quotes(self, args: list[str]) -> dict[str, Any]:
        orders = self.risk.open_orders.values()
        bids = sorted(((o.px_tick, o.leaves_lot) for o in orders if o.side > 0), reverse=True)
        asks = sorted((o.px_tick, o.leaves_lot) for o in orders if o.side < 0)
        return {"bids": [list(b) for b in bids], "asks": [list(a) for a in asks], "book": self.book(["1"])}

    def latency(self, args: list[str]) -> dict[str, Any]:
        report = self.risk.stage_reports.get("latency")
        if report is None:
            return {"available": False}
        return {"available": True, "age_ms": round((time.time_ns() - report.ts_ns) / 1e6, 3), **json.loads(report.body)}

    def reduce_only(self, args: list[str]) -> dict[str, Any]:
        before = self.risk.trading.value
        self.risk.reduce_only()
        self._audit("reduce-only", before, self.risk.trading.value)
        return {"trading": self.risk.trading.value}

    def flatten(self, args: list[str]) -> dict[str, Any]:
        before = (self.risk.trading.value, self.risk.position.position_lot)
        result = self.risk.flatten()
        self._audit("flatten", before, result)
        return result

    def risk_state(self, args: list[str]) -> dict[str, Any]:
        return {"trading": self.risk.trading.value, "paused": self.risk.paused, "halt_reason": self.risk.halt_reason,
                "halts": self.risk.halts, "rejected_checks": dict(self.risk.rejected_checks)}


def venue_summary(state: VenueState | None) -> dict[str, Any]:
    """What the gateway says the venue holds: our open orders and the account's position."""
    if state is None:
        return {}
    return {"open_orders": len(state.orders), "position_lot": state.position_lot, "seq": state.seq}


def _count_arg(command: str, args: list[str], default: int) -> int:
    """The optional N of `book [N]` / `audit [N]`. Operator input: a bad one is a usage error in the
    reply (it used to raise ValueError in risk's loop, and `book abc` killed risk)."""
    if not args:
        return default
    try:
        count = int(args[0]) if len(args) == 1 else 0
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"usage: {command} [N], N a positive integer; got {' '.join(args)!r}")
    return count


def _core(core: int) -> int | None:
    return None if core < 0 else core
