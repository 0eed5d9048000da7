"""The real six processes in live mode against `mm venue` on loopback: the gateway trades through
the real ccxt client (HMAC-signed REST), stops with none of our orders left, and no output of
the session contains the API secret."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mm.signing import HmacSigner
from tests.conftest import DATA_DIR, REPO_ROOT, console_status, mm_command
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

API_KEY = "liveTestKey0123456789"
API_SECRET = "liveTestSecret-do-not-print-9f8e7d"


def open_orders(rest_url: str) -> list:
    query = HmacSigner(API_SECRET).signed_query({"symbol": "BTCUSDT", "timestamp": str(time.time_ns() // 1_000_000)})
    request = urllib.request.Request(f"{rest_url}/api/v3/openOrders?{query}", headers={"X-MBX-APIKEY": API_KEY})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def test_live_pipeline_trades_through_ccxt_and_leaves_no_order_or_secret(make_config, tmp_path: Path):
    port = free_port_pair()
    env = {**os.environ, "MM_VENUE_KEYS": f"{API_KEY}:{API_SECRET}", "MM_API_KEY": API_KEY,
           "MM_API_SECRET": API_SECRET}
    venue = subprocess.Popen(mm_command("venue", "--port", str(port)), cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert venue.stdout.readline().startswith("venue ws=")
        rest = f"http://127.0.0.1:{port + 1}"
        config, path = make_config(pipeline={"mode": "live"},
                                   feed={"ws_url": f"ws://127.0.0.1:{port}", "rest_url": rest},
                                   gateway={"venue": "binance", "rest_url": rest, "ws_api_url": f"ws://127.0.0.1:{port}/ws-api/v3"},
                                   risk={"max_orders_per_s": 10.0})
        report_path = tmp_path / "live.json"
        run = subprocess.run(mm_command("run", "--config", str(path), "--duration", "8", "--report", str(report_path)),
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        report = json.loads(report_path.read_text())
        assert report["orders"]["sent"] > 0 and report["orders"]["acked"] > 0
        assert report["stages"]["gateway"]["clean_stop"]
        # a real venue matches our orders: the gateway reads only risk's orders, never market data
        assert 0 < report["stages"]["gateway"]["in"] <= report["stages"]["risk"]["out"] < report["events"]
        assert open_orders(rest) == []  # the gateway cancelled ours on its way out
    finally:
        venue.send_signal(signal.SIGTERM)
        venue_out, venue_err = venue.communicate(timeout=20)
    outputs = [run.stdout, run.stderr, venue_out, venue_err, report_path.read_text()]
    outputs += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png"]
    for text in outputs:
        assert API_SECRET not in text


REPLAYED = DATA_DIR / "binance-spot-btcusdt-20240808.jsonl.gz"
VENUE_SOURCES = {
    "simulator": [],
    "replayed_capture": ["--feed", str(REPLAYED), "--speed", "1"],  # the venue replays a real capture
}


@pytest.mark.parametrize("source", list(VENUE_SOURCES))
def test_live_gateway_killed_mid_run_restarts_and_agrees_with_the_venue(make_config, tmp_path: Path, source: str):
    from tests.conftest import wait_until

    if source == "replayed_capture" and not REPLAYED.exists():
        pytest.skip(f"captured feeds not found at {DATA_DIR}")
    port = free_port_pair()
    env = {**os.environ, "MM_VENUE_KEYS": f"{API_KEY}:{API_SECRET}", "MM_API_KEY": API_KEY,
           "MM_API_SECRET": API_SECRET}
    venue = subprocess.Popen(mm_command("venue", "--port", str(port), *VENUE_SOURCES[source]), cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = None
    try:
        assert venue.stdout.readline().startswith("venue ws=")
        rest = f"http://127.0.0.1:{port + 1}"
        _, path = make_config(pipeline={"mode": "live", "restart_dead": True},
                              feed={"ws_url": f"ws://127.0.0.1:{port}", "rest_url": rest},
                              gateway={"venue": "binance", "rest_url": rest, "ws_api_url": f"ws://127.0.0.1:{port}/ws-api/v3"}, risk={"max_orders_per_s": 10.0})
        proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "120", "--quiet"),
                                cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        trading = wait_until(lambda: (s := console_status(path)) and s.get("venue") and s["open_orders"] > 0 and s, 40,
                             interval_s=0.3, what="live pipeline quoting at the venue")
        gateway_pid = next(r["pid"] for r in trading["processes"] if r["name"] == "gateway")
        os.kill(gateway_pid, signal.SIGKILL)

        def rejoined_and_agrees() -> bool:
            status = console_status(path)
            if not status or not all(r["alive"] for r in status["processes"]) or status["trading"] != "active":
                return False
            row = next(r for r in status["processes"] if r["name"] == "gateway")
            venue_orders = open_orders(rest)
            return (row["pid"] != gateway_pid and status["position"]["position_lot"] == status["venue"]["position_lot"]
                    and status["open_orders"] == len(venue_orders))

        wait_until(rejoined_and_agrees, 40, interval_s=0.3,
                   what="gateway restarted; risk's position and open orders equal the venue's")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert open_orders(rest) == []  # the restarted gateway cancelled ours on its way out
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        venue.send_signal(signal.SIGTERM)
        venue.communicate(timeout=20)
