"""`mm console`: one-shot (`mm console status`) or interactive, over the control endpoint.

Replies are tables a person reads, or JSON with --json. When the control endpoint (hosted by
risk) does not answer, `status` still reports which processes are alive from their pid files.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from typing import Any

from ipc.console_client import ControlClient, ControlUnreachableError
from mm.config import PROCESS_NAMES, Config
from processes.launcher import live_pids

HELP = """commands:
  status            the six processes: alive, pid, core, heartbeat age, messages in/out
  book [N]          top N levels (ticks, lots)
  position | pnl    position and PnL
  orders            our open orders
  quotes            our best bids / asks and the touch
  signal            the newest prediction (return, fair price, volatility, imbalance, age)
  latency           tick-to-order and per-hop percentiles of recent orders (ns)
  risk              trading state and rejected checks
  reduce-only       only orders that shrink the position pass
  flatten           cancel all, reduce-only, and take the touch for the whole position
  pause | resume    stop / restart quoting (pause cancels our orders)
  cancel-all        cancel every order of ours
  kill              kill switch: cancel all and halt until resume
  set KEY VALUE     change a runtime parameter, e.g. set quoter.size_lot 200
  audit [N]         the last N operator actions (time, origin, before, after) from the journal
  help | quit"""


def format_status(status: dict[str, Any]) -> str:
    lines = [f"pipeline {status['pipeline']} mode={status['mode']} trading={status.get('trading', '?')}"
             f"{' PAUSED' if status['paused'] else ''}"]
    lines.append(f"{'process':<8} {'alive':<5} {'pid':>7} {'core':>4} {'hb_age_ms':>9} {'in':>9} {'out':>9} state")
    for row in status["processes"]:
        core = "-" if row["core"] is None else str(row["core"])
        lines.append(f"{row['name']:<8} {'yes' if row['alive'] else 'NO':<5} {row['pid']:>7} {core:>4} "
                     f"{row['heartbeat_age_ms']:>9.1f} {row['in']:>9} {row['out']:>9} {row.get('state', '')}")
    book = status.get("book")
    if book:
        lines.append(f"book {'synced' if book['synced'] else 'RESYNCING'} update {book['last_update_id']}: "
                     f"updates {book['updates']} gaps {book['gaps']} resyncs {book['resyncs']} crossed "
                     f"{book['crossed']} shadow ok/mismatch {book.get('shadow_matches', 0)}/"
                     f"{book.get('shadow_mismatches', 0)} recover max {book.get('recover_ms_max', 0)} ms")
    stream = status.get("feed", {}).get("stream")
    if stream:
        lines.append("feed stream " + " ".join(f"{k}={v}" for k, v in sorted(stream.items())))
    pos = status.get("position")
    if pos:
        lines.append(f"position {pos['position']:+.8f} pnl total {pos['total']:+.4f} (realized {pos['realized']:+.4f}, "
                     f"unrealized {pos['unrealized']:+.4f}, fees {pos['fees']:.4f}) open orders {status['open_orders']}")
    return "\n".join(lines)


def format_latency(result: dict[str, Any]) -> str:
    if not result.get("available"):
        return "no latency figures yet"
    lines = [f"{'ns':<16} {'p50':>10} {'p90':>10} {'p99':>10} {'max':>10} {'count':>7}"]
    for name, p in result.items():
        if isinstance(p, dict):
            lines.append(f"{name:<16} {p['p50']:>10} {p['p90']:>10} {p['p99']:>10} {p['max']:>10} {p['count']:>7}")
    return "\n".join(lines)


def format_book(result: dict[str, Any]) -> str:
    bids, asks = result.get("bids", []), result.get("asks", [])
    lines = [f"update {result.get('update_id', '-')}", f"{'bid qty':>12} {'bid':>12} | {'ask':<12} {'ask qty':<12}"]
    for i in range(max(len(bids), len(asks))):
        bid = bids[i] if i < len(bids) else ["", ""]
        ask = asks[i] if i < len(asks) else ["", ""]
        lines.append(f"{bid[1]!s:>12} {bid[0]!s:>12} | {ask[0]!s:<12} {ask[1]!s:<12}")
    return "\n".join(lines)


def _utc(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ns / 1e9)) + f".{ts_ns // 1_000_000 % 1000:03d}Z"


def format_reply(command: str, result: dict[str, Any]) -> str:
    if command == "status":
        return format_status(result)
    if command == "latency":
        return format_latency(result)
    if command == "book":
        return format_book(result)
    if command == "audit":
        return "\n".join(f"{_utc(e['ts_ns'])} {e['origin']} {e['command']}: {e['before']} -> {e['after']}"
                         for e in result["entries"]) or "no operator actions yet"
    return "\n".join(f"{key}: {value}" for key, value in result.items())


def fallback_status(config: Config) -> dict[str, Any]:
    """What the pid files say when risk (the control endpoint) does not answer."""
    pids = live_pids(config)
    return {
        "pipeline": config.pipeline.name, "mode": config.pipeline.mode, "paused": False, "control": "unreachable",
        "processes": [{"name": name, "alive": name in pids, "pid": pids.get(name, 0), "core": None,
                       "heartbeat_age_ms": -1.0, "in": 0, "out": 0} for name in PROCESS_NAMES],
    }


def execute(client: ControlClient, config: Config, words: list[str], as_json: bool) -> int:
    command, args = words[0], words[1:]
    try:
        reply = client.request(command, args)
    except ControlUnreachableError as e:
        if command != "status":
            print(f"mm console: {e}", file=sys.stderr)
            return 1
        status = fallback_status(config)
        print(json.dumps(status) if as_json else format_status(status) + f"\n(control endpoint unreachable: {e})")
        print(f"mm console: {e}", file=sys.stderr)  # the one line that says why, --json or not
        return 1
    if not reply.ok:
        print(f"mm console {command}: {reply.error}", file=sys.stderr)
        return 2 if command == "set" or reply.error.startswith(("unknown command", "usage:")) else 1
    print(json.dumps(reply.result) if as_json else format_reply(command, reply.result))
    return 0


def interactive(client: ControlClient, config: Config, as_json: bool) -> int:
    try:
        import readline  # noqa: F401  (history and line editing for input())

        words = ["status", "book", "position", "pnl", "orders", "quotes", "signal", "latency", "risk", "pause",
                 "resume", "cancel-all", "kill", "reduce-only", "flatten", "set", "audit", "help", "quit"]
        readline.set_completer(lambda text, i: ([w for w in words if w.startswith(text)] + [None])[i])
        readline.parse_and_bind("tab: complete")
    except ImportError:
        pass
    print(f"mm console: pipeline {config.pipeline.name}. 'help' lists commands.")
    while True:
        try:
            line = input("mm> ")
        except EOFError:
            return 0
        try:
            words = shlex.split(line)
        except ValueError as e:
            print(f"bad input: {e}")
            continue
        if not words:
            continue
        if words[0] in ("quit", "exit"):
            return 0
        if words[0] == "help":
            print(HELP)
            continue
        execute(client, config, words, as_json)


def run_console(config: Config, words: list[str], *, as_json: bool, timeout_ms: int) -> int:
    with ControlClient(config, timeout_ms=timeout_ms) as client:
        if words:
            return execute(client, config, words, as_json)
        return interactive(client, config, as_json)
