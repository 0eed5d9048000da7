"""The whole pipeline live against `mm venue --market usdm` on loopback: orders over the signed
WebSocket API (`/ws-fapi/v1`), fills and order states from the listenKey user-data stream
(`/private/ws`), the dead-man's switch `countdownCancelAll` armed while quoting.

- A run of several seconds: every order over the ws-fapi (no REST order request on the hot path),
  order events from the stream, the countdown armed and renewed, the report's position equal to the
  venue's own one-way position; nothing of ours left open.
- kill -9 of the gateway mid-run with nobody to restart it: the venue's countdown cancels our orders
  within `countdown_ms`; a new run on the same journal reconciles: nothing orphaned, the position
  still the venue's (fills made before the kill counted once).
- The API secret appears in no output and no file of the run.
"""

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

from mm.signing import HmacSigner
from tests.conftest import REPO_ROOT, console_status, mm_command, wait_until
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

API_KEY = "usdmTestKey0123456789"
API_SECRET = "usdmTestSecret-never-printed-8e7f6a"
LOT = Decimal("0.00001")
ENV = {**os.environ, "MM_VENUE_KEYS": f"{API_KEY}:{API_SECRET}", "MM_API_KEY": API_KEY, "MM_API_SECRET": API_SECRET}
COUNTDOWN_MS = 2000


def signed_get(rest_url: str, path: str, params: dict[str, str]) -> object:
    query = HmacSigner(API_SECRET).signed_query({**params, "timestamp": str(time.time_ns() // 1_000_000)})
    request = urllib.request.Request(f"{rest_url}{path}?{query}", headers={"X-MBX-APIKEY": API_KEY})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def open_orders(rest_url: str) -> list:
    return signed_get(rest_url, "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})


def position_lot(rest_url: str) -> int:
    rows = signed_get(rest_url, "/fapi/v3/account", {})["positions"]
    return int(sum(Decimal(r["positionAmt"]) for r in rows if r["symbol"] == "BTCUSDT") / LOT)


class UsdmVenue:
    def __init__(self, *extra: str) -> None:
        self.port = free_port_pair()
        self.proc = subprocess.Popen(mm_command("venue", "--market", "usdm", "--port", str(self.port),
                                                "--maker-fee-bps", "0", "--taker-fee-bps", "0", *extra),
                                     cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().startswith("venue ws=")
        self.rest = f"http://127.0.0.1:{self.port + 1}"

    def sections(self, keepalive_s: float = 1800.0, **pipeline: object) -> dict:
        ws = f"ws://127.0.0.1:{self.port}"
        return {"pipeline": {"mode": "live", **pipeline}, "instrument": {"market": "binance_usdm"},
                "feed": {"ws_url": ws, "rest_url": self.rest},
                "gateway": {"venue": "binance-usdm", "rest_url": self.rest, "ws_api_url": f"{ws}/ws-fapi/v1",
                            "user_stream_url": f"{ws}/private/ws", "countdown_ms": COUNTDOWN_MS,
                            "listen_key_keepalive_s": keepalive_s,
                            "maker_fee_bps": 0.0, "taker_fee_bps": 0.0},
                "risk": {"max_orders_per_s": 20.0}}

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        return out + err


def run_report(path: Path, seconds: int, report_path: Path) -> tuple[dict, str]:
    run = subprocess.run(mm_command("run", "--config", str(path), "--duration", str(seconds), "--report",
                                    str(report_path)), cwd=REPO_ROOT, env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(report_path.read_text()), run.stdout + run.stderr


def assert_no_secret(texts: list[str], tmp_path: Path) -> None:
    texts = texts + [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png"]
    assert texts and all(API_SECRET not in text for text in texts)


LISTEN_KEY_TTL_S = 3.0
KEEPALIVE_S = {"kept_alive": 1.0, "expired": 1800.0}  # the venue's listenKeys live 3 s here


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c == "kept_alive" else pytest.mark.slow) for c in KEEPALIVE_S])
def test_live_usdm_orders_over_ws_fapi_events_from_the_listen_key_stream(make_config, tmp_path: Path, case: str):
    venue = UsdmVenue("--listen-key-ttl", str(LISTEN_KEY_TTL_S))
    output = ""
    try:
        _, path = make_config(**venue.sections(KEEPALIVE_S[case]))
        report, output = run_report(path, 10, tmp_path / "live.json")
        stats = report["gateway"]["venue"]
        requests = stats["requests"]
        print(json.dumps({"orders": report["orders"], "fills": report["fills"], "position_lot": report["position_lot"],
                          "venue": stats}, indent=1))
        assert stats["market"] == "usdm" and report["orders"]["sent"] > 0 and report["orders"]["acked"] > 0
        assert requests.get("ws_new_order", 0) == report["orders"]["sent"]
        for name in ("rest_new_order", "rest_cancel_order", "rest_query_order"):
            assert requests.get(name, 0) == 0, (name, requests)  # no REST order request on the hot path
        assert stats["events_ORDER_TRADE_UPDATE"] >= report["orders"]["sent"] - 1
        if case == "kept_alive":  # PUT well inside the key's life: one stream all along
            assert stats["stream_ups"] == 1 and stats["listen_key_keepalives"] >= 5
        else:  # listenKeyExpired: a new key, a new connection, a reconcile
            assert stats["events_listenKeyExpired"] >= 1 and stats["stream_ups"] >= 2
            assert stats["reconciles"] >= 2
        assert stats["countdown_arms"] >= 2 and stats["countdown_disarms"] == 1  # renewed while quoting
        assert requests["rest_listen_key"] >= stats["stream_ups"] + 1  # one per connection, then closed
        assert report["position_lot"] == position_lot(venue.rest)  # every fill counted, once
        assert open_orders(venue.rest) == []
    finally:
        venue_out = venue.stop()
    assert_no_secret([output, venue_out], tmp_path)


def test_live_usdm_gateway_killed_the_countdown_cancels_then_a_restart_reconciles(make_config, tmp_path: Path):
    venue = UsdmVenue()
    proc = None
    outputs: list[str] = []
    try:
        _, path = make_config(**venue.sections())
        proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "120", "--quiet"),
                                cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        trading = wait_until(lambda: (s := console_status(path)) and s.get("venue") and s["open_orders"] > 0 and s,
                             60, interval_s=0.3, what="live USD-M pipeline quoting at the venue")
        assert open_orders(venue.rest)
        gateway_pid = next(r["pid"] for r in trading["processes"] if r["name"] == "gateway")
        os.kill(gateway_pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: open_orders(venue.rest) == [], COUNTDOWN_MS / 1000 + 3, interval_s=0.05,
                   what="the venue's countdown cancelling our orders")
        gone_after_s = time.monotonic() - killed
        print(f"orders cancelled by the venue's countdown {gone_after_s:.2f} s after kill -9 (countdown {COUNTDOWN_MS} ms)")
        assert gone_after_s <= COUNTDOWN_MS / 1000 + 3
        proc.send_signal(signal.SIGTERM)
        outputs += list(proc.communicate(timeout=60))
        # a new run on the same journal: it reconciles with what the venue holds
        report, output = run_report(path, 6, tmp_path / "after.json")
        outputs.append(output)
        assert report["orders"]["sent"] > 0
        assert report["position_lot"] == position_lot(venue.rest)  # nothing counted twice, nothing missed
        assert open_orders(venue.rest) == []  # nothing orphaned
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            outputs += list(proc.communicate())
        venue_out = venue.stop()
    assert_no_secret([*outputs, venue_out], tmp_path)
