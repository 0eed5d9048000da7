"""The whole pipeline live against `mm venue --market usdm` on loopback: orders over the signed
WebSocket API (`/ws-fapi/v1`), fills and order states from the listenKey user-data stream
(`/private/ws`), the dead-man's switch `countdownCancelAll` armed while quoting.

- A run of several seconds: every order over the ws-fapi (no REST order request on the hot path),
  order events from the stream, the countdown armed and renewed, the report's position equal to the
  venue's own one-way position; nothing of ours left open.
- With the venue dropping, duplicating and reordering the listenKey stream's events, the fills are
  still counted once (position and traded notional equal the venue's position and userTrades): a
  lost event shows as a gap that triggers a REST reconcile.
- With the venue closing the ws-fapi connection every N-th request, the requests it took unanswered
  are settled and orders go back over the ws-fapi once it is up again; with the ws-fapi refused (a
  dead port), every order and cancel goes over REST `/fapi` and the run trades as well.
- kill -9 of the gateway mid-run with nobody to restart it: the venue's countdown cancels our orders
  within `countdown_ms`; a new run on the same journal reconciles: nothing orphaned, the position
  still the venue's (fills made before the kill counted once).
- The API secret appears in no output and no file of the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, console_status, mm_command, wait_until
from tests.integration import live_helpers
from tests.integration.live_helpers import traded_quote, venue_counts
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

API_KEY = "usdmTestKey0123456789"
API_SECRET = "usdmTestSecret-never-printed-8e7f6a"
LOT = Decimal("0.00001")
ENV = {**os.environ, "MM_VENUE_KEYS": f"{API_KEY}:{API_SECRET}", "MM_API_KEY": API_KEY, "MM_API_SECRET": API_SECRET}
COUNTDOWN_MS = 2000


def signed_get(rest_url: str, path: str, params: dict[str, str]) -> object:
    return live_helpers.signed_get(rest_url, path, params, key=API_KEY, secret=API_SECRET)


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
    return live_helpers.run_report(path, seconds, report_path, ENV)


def assert_no_secret(texts: list[str], tmp_path: Path) -> None:
    live_helpers.assert_no_secret(texts, tmp_path, API_SECRET)


def dead_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LISTEN_KEY_TTL_S = 3.0  # the venue's listenKeys live 3 s here
CASES = {  # case -> (the gateway's listen_key_keepalive_s, the venue's fault switches)
    "kept_alive": (1.0, []),
    "expired": (1800.0, []),
    "user_data_faults": (1.0, ["--drop-event-every", "7", "--duplicate-event-every", "5", "--reorder-event-every", "4"]),
    "ws_fapi_dropped": (1.0, ["--ws-api-close-every", "9"]),
    "ws_fapi_refused": (1.0, []),  # the gateway's ws_api_url is a dead port
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c == "kept_alive" else pytest.mark.slow) for c in CASES])
def test_live_usdm_orders_over_ws_fapi_events_from_the_listen_key_stream(make_config, tmp_path: Path, case: str):
    keepalive_s, faults = CASES[case]
    venue = UsdmVenue("--listen-key-ttl", str(LISTEN_KEY_TTL_S), *faults)
    output = ""
    try:
        sections = venue.sections(keepalive_s)
        if case == "ws_fapi_refused":
            sections["gateway"]["ws_api_url"] = f"ws://127.0.0.1:{dead_port()}/ws-fapi/v1"
        _, path = make_config(**sections)
        report, output = run_report(path, 10, tmp_path / "live.json")
        stats = report["gateway"]["venue"]
        requests = stats["requests"]
        print(json.dumps({"orders": report["orders"], "fills": report["fills"], "position_lot": report["position_lot"],
                          "venue": stats}, indent=1))
        assert stats["market"] == "usdm" and report["orders"]["sent"] > 0 and report["orders"]["acked"] > 0
        met = venue_counts(venue.rest)
        assert API_SECRET not in json.dumps(met) and API_KEY not in json.dumps(met)  # counters only
        if case == "ws_fapi_dropped":  # every 9th ws-fapi request drops the connection, unanswered
            assert met["ws_api"]["fault_close_request"] > 0 and met["ws_api"]["ws_api_connections"] >= 2
            assert stats["connections"]["orders_ws"]["connections"] >= 2
            # once it is back, over the ws-fapi again: more than one connection's worth
            assert requests.get("ws_new_order", 0) + requests.get("ws_cancel_order", 0) > 9
        elif case == "ws_fapi_refused":  # never up: every order and cancel over REST /fapi
            assert stats["connections"]["orders_ws"].get("up", 0) == 0 and "ws_api_connections" not in met["ws_api"]
            assert requests.get("rest_new_order", 0) == report["orders"]["sent"]
            assert requests.get("rest_cancel_order", 0) >= report["orders"]["cancelled"] > 0
            assert not any(name.startswith("ws_") for name in requests), requests
        else:
            assert requests.get("ws_new_order", 0) == report["orders"]["sent"]
            for name in ("rest_new_order", "rest_cancel_order"):
                assert requests.get(name, 0) == 0, (name, requests)  # no REST order request on the hot path
        if case in ("kept_alive", "expired"):  # a reconcile after a gap may query an order; none here
            assert requests.get("rest_query_order", 0) == 0, requests
        assert stats["events_ORDER_TRADE_UPDATE"] >= report["orders"]["sent"] - 1
        assert report["fills"] > 0 and stats.get("fills_from_stream", 0) > 0  # fills learned from the stream
        if case == "expired":  # listenKeyExpired: a new key, a new connection, a reconcile
            assert stats["events_listenKeyExpired"] >= 1 and stats["stream_ups"] >= 2
            assert stats["reconciles"] >= 2
        else:  # PUT well inside the key's life: one stream all along
            assert stats["stream_ups"] == 1 and stats["listen_key_keepalives"] >= 5
        if case == "user_data_faults":
            injected = met["user_data"]
            assert min(injected.get(f"events_{k}", 0) for k in ("dropped", "duplicated", "reordered")) > 0, injected
            # a lost event shows as a fill the account saw and we did not, or a cumulative quantity jump
            assert stats.get("account_gaps", 0) + stats.get("stream_gaps", 0) > 0
            assert stats["reconciles"] >= 2  # the first when the stream came up, then on a gap
        assert stats["countdown_arms"] >= 2 and stats["countdown_disarms"] == 1  # renewed while quoting
        assert requests["rest_listen_key"] >= stats["stream_ups"] + 1  # one per connection, then closed
        assert report["position_lot"] == position_lot(venue.rest)  # every fill counted, once
        trades = signed_get(venue.rest, "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
        assert report["traded_notional"] == pytest.approx(traded_quote(trades), rel=1e-9)  # none counted twice
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
