"""The feed's Hyperliquid client (processes/hyperliquid_ws.py) against `mm venue --market hyperliquid`
on 127.0.0.1: the coin's grid from /info meta, l2Book and trades through the one converter into a
synced book, JSON pings answered, and a dropped connection survived with the book whole again."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
from pathlib import Path

import pytest

from ipc.messages import BookSnapshot, DepthDiff, Trade
from mm.book_sync import BookSync
from processes.hyperliquid_ws import HyperliquidStreamClient, fetch_coin_grid
from processes.venue_hyperliquid import HyperliquidExchange
from processes.venue_hyperliquid_ws import HyperliquidVenue
from tests.conftest import REPO_ROOT, mm_command, run_async, wait_until_async
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

COIN = "BTC"


def test_hyperliquid_feed_syncs_pings_and_survives_a_disconnect():
    async def scenario() -> None:
        venue = HyperliquidVenue(HyperliquidExchange(COIN, 5, set()), speed=20.0, disconnect_every_s=1.5)
        await venue.start()
        stop = asyncio.Event()
        try:
            grid = await fetch_coin_grid(venue.http_url, COIN)
            assert (grid.price_decimals, grid.qty_decimals) == (1, 5)  # szDecimals 5: 6 - 5 price decimals
            client = HyperliquidStreamClient(f"{venue.ws_url}/ws", COIN, grid, ping_interval_s=0.2,
                                             backoff_initial_s=0.05, backoff_max_s=0.2, rng=random.Random(1))
            sync = BookSync(COIN)
            seen: list[object] = []

            def on_message(msg: object) -> None:
                seen.append(msg)
                if isinstance(msg, BookSnapshot):
                    sync.on_snapshot(msg.last_id, msg.bids, msg.asks)
                elif isinstance(msg, DepthDiff):
                    sync.on_diff(msg.first_id, msg.final_id, msg.prev_final_id, msg.bids, msg.asks)

            task = asyncio.create_task(client.run(on_message, stop))
            await wait_until_async(lambda: client.counts["reconnects"] >= 1 and sync.is_synced
                                   and sum(isinstance(m, BookSnapshot) for m in seen) >= 2, 15.0)
            assert isinstance(seen[0], BookSnapshot)  # the first push of a connection is a whole book
            assert any(isinstance(m, DepthDiff) for m in seen)
            await wait_until_async(lambda: client.counts["pongs"] >= 1 and any(isinstance(m, Trade) for m in seen), 10.0)
            assert sync.gaps == 0 and sync.crossed == 0
            bid, ask = sync.book.best_bid()[0], sync.book.best_ask()[0]
            assert 0 < bid < ask
            assert not any(key.startswith("drop_") for key in client.counts), client.counts
            stop.set()
            await asyncio.wait_for(task, 5.0)
        finally:
            stop.set()
            await venue.stop()

    run_async(scenario, 40.0)


def test_paper_pipeline_on_hyperliquid_market_data(make_config, tmp_path: Path):
    """The six processes in paper mode on `mm venue --market hyperliquid`'s streams: signal, quoter
    and risk unchanged, the book synced from whole-book pushes."""
    port = free_port_pair()
    venue = subprocess.Popen(mm_command("venue", "--market", "hyperliquid", "--port", str(port), "--symbol", COIN,
                                        "--speed", "5"),
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = venue.stdout.readline()
        assert line.startswith("venue ws="), line + venue.stderr.read()
        _, path = make_config(pipeline={"mode": "paper"},
                              instrument={"symbol": COIN, "tick_size": "0.1", "lot_size": "0.00001",
                                          "market": "hyperliquid"},
                              feed={"venue": "hyperliquid", "ws_url": f"ws://127.0.0.1:{port}/ws",
                                    "rest_url": f"http://127.0.0.1:{port + 1}", "silent_s": 2.0})
        report_path = tmp_path / "report.json"
        done = subprocess.run(mm_command("run", "--config", str(path), "--duration", "6", "--report",
                                         str(report_path), "--quiet"),
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(report_path.read_text())
        book = report["book"]
        assert book["updates"] > 5 and book["gaps"] == 0 and book["crossed"] == 0
        assert 0 < book["top"]["bid_px"] < book["top"]["ask_px"]
        assert report["feed"]["stream"]["connections"] >= 1
        assert report["orders"]["sent"] > 0 and report["signal"]["predictions"] > 0 and report["signal"]["trades"] > 0
    finally:
        venue.send_signal(signal.SIGTERM)
        venue.communicate(timeout=10)
