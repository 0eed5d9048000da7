"""The whole pipeline live against `mm venue` on loopback, with orders over the signed WebSocket API
and fills from the user-data stream: spot (`/ws-api/v3`, userDataStream.subscribe.signature).

- A run of several seconds places its orders over the ws-api (no REST order request at all on the
  hot path), learns its fills from the stream, and ends with the report's position equal to the
  venue's own account (its base balance change); nothing of ours is left open.
- With the venue dropping, duplicating and reordering user-data events (`--drop-event-every`,
  `--duplicate-event-every`, `--reorder-event-every`), the fills are still all counted, once (the
  report's position and traded notional equal the venue's account and trades): a lost event shows as
  a gap that triggers a REST reconcile.
- With the venue closing the ws-api connection every N-th request, orders and cancels go over REST
  while it is down, and back over the ws-api once it is up again.
- kill -9 of the gateway mid-run: the restarted gateway reconciles; risk's position equals the
  venue's account (read from the venue itself) and nothing of ours is orphaned.
- The API secret appears in no output of any process, nor in any file the run wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, console_status, mm_command, wait_until
from tests.integration import live_helpers
from tests.integration.live_helpers import run_report, traded_quote, venue_counts
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

API_KEY = "streamTestKey0123456789"
API_SECRET = "streamTestSecret-never-printed-4c3b2a"
LOT = Decimal("0.00001")
ENV = {**os.environ, "MM_VENUE_KEYS": f"{API_KEY}:{API_SECRET}", "MM_API_KEY": API_KEY, "MM_API_SECRET": API_SECRET}


def signed_get(rest_url: str, path: str, params: dict[str, str]) -> object:
    return live_helpers.signed_get(rest_url, path, params, key=API_KEY, secret=API_SECRET)


def open_orders(rest_url: str) -> list:
    return signed_get(rest_url, "/api/v3/openOrders", {"symbol": "BTCUSDT"})


def btc_total(rest_url: str) -> Decimal:
    account = signed_get(rest_url, "/api/v3/account", {})
    btc = next(b for b in account["balances"] if b["asset"] == "BTC")
    return Decimal(btc["free"]) + Decimal(btc["locked"])


class SpotVenue:
    def __init__(self, *extra: str) -> None:
        self.port = free_port_pair()
        # zero fees, so the quoter joins the touch and fills come within seconds
        self.proc = subprocess.Popen(mm_command("venue", "--port", str(self.port), "--maker-fee-bps", "0",
                                                "--taker-fee-bps", "0", *extra), cwd=REPO_ROOT, env=ENV,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().startswith("venue ws=")
        self.rest = f"http://127.0.0.1:{self.port + 1}"
        self.out = ""

    def gateway(self, **extra: object) -> dict:
        return {"venue": "binance", "rest_url": self.rest, "ws_api_url": f"ws://127.0.0.1:{self.port}/ws-api/v3",
                "maker_fee_bps": 0.0, "taker_fee_bps": 0.0, **extra}

    def feed(self) -> dict:
        return {"ws_url": f"ws://127.0.0.1:{self.port}", "rest_url": self.rest}

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        self.out = out + err
        return self.out


def assert_no_secret(texts: list[str], tmp_path: Path) -> None:
    live_helpers.assert_no_secret(texts, tmp_path, API_SECRET)


def run_live(make_config, tmp_path: Path, venue: SpotVenue, seconds: int, name: str) -> tuple[dict, str]:
    _, path = make_config(pipeline={"mode": "live"}, feed=venue.feed(), gateway=venue.gateway(),
                          risk={"max_orders_per_s": 20.0}, quoter={"size_lot": 100})
    return run_report(path, seconds, tmp_path / f"{name}.json", ENV)


FAULTS = {"clean": [],
          "user_data_faults": ["--drop-event-every", "7", "--duplicate-event-every", "5", "--reorder-event-every", "4"],
          "ws_api_dropped": ["--ws-api-close-every", "9"]}


@pytest.mark.parametrize("case", [pytest.param(case, marks=() if case == "clean" else pytest.mark.slow) for case in FAULTS])
def test_live_spot_orders_over_ws_api_fills_from_the_stream(make_config, tmp_path: Path, case: str):
    venue = SpotVenue(*FAULTS[case])
    output = ""
    try:
        btc_before = btc_total(venue.rest)
        report, output = run_live(make_config, tmp_path, venue, 8, "live")
        stats = report["gateway"]["venue"]
        requests = stats["requests"]
        print(json.dumps({"orders": report["orders"], "fills": report["fills"], "position_lot": report["position_lot"],
                          "venue": stats}, indent=1))
        assert report["orders"]["sent"] > 0 and report["orders"]["acked"] > 0
        assert stats["events_executionReport"] > 0
        assert report["fills"] > 0 and stats.get("fills_from_stream", 0) > 0
        if case == "ws_api_dropped":  # every 9th request drops the connection (and the stream with it)
            assert stats["stream_downs"] > 0 and stats["stream_ups"] > stats["stream_downs"] - 1
            assert requests.get("ws_new_order", 0) > 0
            # while it is down, orders go over REST; every reconnect reconciles
            assert requests.get("rest_new_order", 0) + requests.get("rest_cancel_order", 0) > 0
            # and once it is back, over the ws-api again: more than one connection's worth (the 9th closes it)
            assert requests.get("ws_new_order", 0) + requests.get("ws_cancel_order", 0) > 8
            assert stats["reconciles"] >= stats["stream_ups"] - 1  # the last reconnect may come as it stops
        else:
            assert requests.get("ws_new_order", 0) == report["orders"]["sent"]  # every order over the ws-api
            for name in ("rest_new_order", "rest_cancel_order", "rest_query_order"):
                assert requests.get(name, 0) == 0, (name, requests)  # no REST order request on the hot path
            assert stats["stream_ups"] == 1
        met = venue_counts(venue.rest)
        assert API_SECRET not in json.dumps(met) and API_KEY not in json.dumps(met)  # counters only
        if case == "user_data_faults":
            injected = met["user_data"]
            assert min(injected.get(f"events_{k}", 0) for k in ("dropped", "duplicated", "reordered")) > 0, injected
            # a lost event shows as a fill the account saw and we did not, or a cumulative quantity jump
            assert stats.get("account_gaps", 0) + stats.get("stream_gaps", 0) > 0
            assert stats["reconciles"] >= 2  # the first when the stream came up, then on a gap
        if case == "ws_api_dropped":
            assert met["ws_api"]["fault_close_request"] > 0 and met["ws_api"]["ws_api_connections"] >= 2
        venue_position_lot = int((btc_total(venue.rest) - btc_before) / LOT)
        assert report["position_lot"] == venue_position_lot  # every fill counted, once (a buy and a sell may net out)
        trades = signed_get(venue.rest, "/api/v3/myTrades", {"symbol": "BTCUSDT"})
        assert len(trades) == report["fills"]
        assert report["traded_notional"] == pytest.approx(traded_quote(trades), rel=1e-9)  # none counted twice
        assert open_orders(venue.rest) == []  # cancelled on the way out
    finally:
        venue_out = venue.stop()
    assert_no_secret([output, venue_out], tmp_path)


def test_live_spot_gateway_killed_restarts_reconciles_nothing_orphaned_or_double_counted(make_config, tmp_path: Path):
    venue = SpotVenue()
    proc = None
    try:
        btc_before = btc_total(venue.rest)
        _, path = make_config(pipeline={"mode": "live", "restart_dead": True}, feed=venue.feed(),
                              gateway=venue.gateway(), risk={"max_orders_per_s": 20.0})
        proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "120", "--quiet"),
                                cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        trading = wait_until(lambda: (s := console_status(path)) and s.get("venue") and s["open_orders"] > 0
                             and s["position"]["position_lot"] != 0 and s, 60, interval_s=0.3,
                             what="live pipeline quoting and filled at the venue")
        gateway_pid = next(r["pid"] for r in trading["processes"] if r["name"] == "gateway")
        os.kill(gateway_pid, signal.SIGKILL)

        def rejoined_and_agrees() -> bool:
            status = console_status(path)
            if not status or not all(r["alive"] for r in status["processes"]) or status["trading"] != "active":
                return False
            row = next(r for r in status["processes"] if r["name"] == "gateway")
            if row["pid"] == gateway_pid:
                return False
            theirs = int((btc_total(venue.rest) - btc_before) / LOT)
            ours_open = [o for o in open_orders(venue.rest)]
            return (status["position"]["position_lot"] == status["venue"]["position_lot"] == theirs
                    and status["open_orders"] == len(ours_open))

        wait_until(rejoined_and_agrees, 40, interval_s=0.3,
                   what="gateway restarted; risk's position equals the venue's account, open orders agree")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert open_orders(venue.rest) == []  # the restarted gateway cancelled ours on its way out: none orphaned
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            out, err = proc.communicate()
        venue_out = venue.stop()
    assert_no_secret([out, err, venue_out], tmp_path)
