"""The real six processes in live mode against `mm venue --market hyperliquid` on loopback: the feed
reads its /ws, the gateway signs orders with the test wallet's key (MM_VENUE_WALLETS names its
address, so the venue recovers and accepts every signature), fills come from the userFills stream,
the report's position equals the venue's clearinghouseState, and no output holds the key. Every
body the venue received (its test-only GET /_mm/state log) is a trading action without a builder
fee, a referrer or an approval; requotes went out as batchModify. Killed with kill -9, the
gateway's orders are cleared by the venue's scheduleCancel (the launcher held stopped meanwhile, so
no restarted gateway can sweep them first); restarted, it reconciles to the venue's state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from processes.hyperliquid_adapter import HyperliquidSigner
from tests.conftest import REPO_ROOT, console_status, mm_command, wait_until
from tests.integration.hyperliquid_bodies import action_types, body_problems, venue_state
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

KEY = "0x" + "5e" * 32  # the test wallet (never a real one)
ADDRESS = HyperliquidSigner(KEY).address
LOT = Decimal("0.00001")


def info(http: str, body: dict) -> object:
    request = urllib.request.Request(f"{http}/info", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def venue_position_lot(http: str) -> int:
    state = info(http, {"type": "clearinghouseState", "user": ADDRESS})
    szi = sum((Decimal(p["position"]["szi"]) for p in state["assetPositions"]), Decimal(0))
    return int(szi / LOT)


def start_venue(port: int) -> subprocess.Popen:
    env = {**os.environ, "MM_VENUE_WALLETS": ADDRESS}
    venue = subprocess.Popen(mm_command("venue", "--market", "hyperliquid", "--symbol", "BTC", "--port", str(port)),
                             cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert venue.stdout.readline().startswith("venue ws="), venue.stderr.read()[-2000:]
    return venue


def hl_config(make_config, port: int, **pipeline):
    http = f"http://127.0.0.1:{port + 1}"
    ws = f"ws://127.0.0.1:{port}/ws"
    return make_config(pipeline={"mode": "live", **pipeline},
                       instrument={"symbol": "BTC", "tick_size": "1", "lot_size": "0.00001", "market": "hyperliquid"},
                       feed={"venue": "hyperliquid", "ws_url": ws, "rest_url": http},
                       gateway={"venue": "hyperliquid", "rest_url": http, "user_stream_url": ws, "countdown_ms": 6000},
                       quoter={"size_lot": 100, "min_half_spread_ticks": 0.5, "adverse_selection_weight": 0.0,
                               "requote_tolerance_ticks": 0},  # every move of the quote is a requote: modifies
                       risk={"max_orders_per_s": 10.0, "max_notional_quote": 100_000.0, "max_position_lot": 5000})


def test_hyperliquid_live_pipeline_trades_and_agrees_with_the_venue(make_config, tmp_path: Path):
    port = free_port_pair()
    env = {**os.environ, "MM_HYPERLIQUID_PRIVATE_KEY": KEY}
    venue = start_venue(port)
    http = f"http://127.0.0.1:{port + 1}"
    run = None
    try:
        _, path = hl_config(make_config, port)
        report_path = tmp_path / "hl.json"
        run = subprocess.run(mm_command("run", "--config", str(path), "--duration", "10", "--report", str(report_path)),
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        report = json.loads(report_path.read_text())
        assert report["orders"]["sent"] > 0 and report["orders"]["acked"] > 0, report["orders"]
        assert report["stages"]["gateway"]["clean_stop"]
        gateway_venue = report["gateway"]["venue"]
        print("gateway venue:", json.dumps(gateway_venue), "position:", report["position"], "venue lots:", venue_position_lot(http))
        assert gateway_venue["schedule_cancel_ok"] >= 1
        assert gateway_venue.get("fills_from_stream", 0) >= 1, gateway_venue  # filled, learned from userFills
        assert info(http, {"type": "frontendOpenOrders", "user": ADDRESS}) == []  # ours cancelled on the way out
        assert round(Decimal(str(report["position"])) / LOT) == venue_position_lot(http)  # report: in BTC
        state = venue_state(http)
        log = state["exchange_log"]
        assert state["exchange_log_dropped"] == 0 and log
        assert body_problems(log) == []  # no builder fee, no referrer, no approval, ever
        kinds = set(action_types(log))
        assert {"order", "cancelByCloid", "batchModify", "scheduleCancel"} <= kinds, kinds
        modified = [e for e in log if action_types([e]) == ["batchModify"] and e["answer"] == 200]
        assert modified and state["counts"]["orders_modified"] >= 1, state["counts"]
        assert gateway_venue["modify_resting"] + gateway_venue.get("modify_filled", 0) >= 1, gateway_venue
    finally:
        venue.send_signal(signal.SIGTERM)
        venue_out, venue_err = venue.communicate(timeout=20)
    outputs = [venue_out, venue_err] + ([run.stdout, run.stderr] if run is not None else [])
    outputs += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png"]
    for text in outputs:
        assert KEY[2:] not in text


def order_status(http: str, oid: int) -> str:
    return info(http, {"type": "orderStatus", "user": ADDRESS, "oid": oid})["order"]["status"]


def test_hyperliquid_gateway_killed_mid_run_schedule_cancel_clears_and_restart_reconciles(make_config, tmp_path: Path):
    port = free_port_pair()
    env = {**os.environ, "MM_HYPERLIQUID_PRIVATE_KEY": KEY}
    venue = start_venue(port)
    http = f"http://127.0.0.1:{port + 1}"
    proc = None
    stopped = False
    try:
        _, path = hl_config(make_config, port, restart_dead=True)
        report_path = tmp_path / "killed.json"
        proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "120", "--quiet",
                                           "--report", str(report_path)),
                                cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        trading = wait_until(lambda: (s := console_status(path)) and s.get("venue") and s["open_orders"] > 0
                             and info(http, {"type": "frontendOpenOrders", "user": ADDRESS}) and s, 40,
                             interval_s=0.3, what="live pipeline quoting at the venue")
        gateway_pid = next(r["pid"] for r in trading["processes"] if r["name"] == "gateway")
        os.kill(proc.pid, signal.SIGSTOP)  # the launcher cannot restart the gateway until we let it
        stopped = True
        os.kill(gateway_pid, signal.SIGKILL)
        killed_ms = time.time_ns() // 1_000_000
        left = info(http, {"type": "frontendOpenOrders", "user": ADDRESS})
        assert left, "the killed gateway left no order at the venue: nothing for the dead-man's switch to do"
        wait_until(lambda: info(http, {"type": "frontendOpenOrders", "user": ADDRESS}) == [], 20, interval_s=0.2,
                   what="the venue's scheduleCancel clears the dead gateway's orders")
        state = venue_state(http)
        assert [e for e in state["exchange_log"] if e["time_ms"] > killed_ms] == []  # no one cancelled them
        fates = [order_status(http, o["oid"]) for o in left]  # one may still fill while its gateway is dead
        assert "scheduledCancel" in fates and set(fates) <= {"scheduledCancel", "filled"}, fates
        assert state["counts"]["scheduled_cancels"] == 1
        assert state["counts"]["orders_schedule_cancelled"] == fates.count("scheduledCancel")
        os.kill(proc.pid, signal.SIGCONT)
        stopped = False

        def rejoined_and_agrees() -> bool:
            status = console_status(path)
            if not status or not all(r["alive"] for r in status["processes"]) or status["trading"] != "active":
                return False
            row = next(r for r in status["processes"] if r["name"] == "gateway")
            venue_orders = info(http, {"type": "frontendOpenOrders", "user": ADDRESS})
            return (row["pid"] != gateway_pid and status["position"]["position_lot"] == venue_position_lot(http)
                    and status["open_orders"] == len(venue_orders) > 0)

        wait_until(rejoined_and_agrees, 40, interval_s=0.3,
                   what="gateway restarted and quoting; risk's position and open orders equal the venue's")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert info(http, {"type": "frontendOpenOrders", "user": ADDRESS}) == []  # nothing orphaned
        report = json.loads(report_path.read_text())
        gateway_venue = report["gateway"]["venue"]
        print("restarted gateway venue:", json.dumps(gateway_venue), "position:", report["position"],
              "venue lots:", venue_position_lot(http), "left at the kill:", fates)
        assert gateway_venue["start_cancelled"] == 0  # the switch had cleared them: nothing left to sweep
        assert round(Decimal(str(report["position"])) / LOT) == venue_position_lot(http)  # counted once
        assert body_problems(venue_state(http)["exchange_log"]) == []
    finally:
        if proc is not None and stopped:
            os.kill(proc.pid, signal.SIGCONT)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the launcher stops its children (they hold its pipes)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)
        venue.send_signal(signal.SIGTERM)
        venue.communicate(timeout=20)
