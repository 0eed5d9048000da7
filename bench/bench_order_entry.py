"""Order entry round trip on loopback, through the gateway's adapter: `place` called -> the order's NEW
on the user-data stream, with the order sent over the persistent signed WebSocket API (`order.place`)
vs over REST (ccxt). Each round cancels the previous order first (not timed).

- spot: the stream is userDataStream.subscribe.signature on the ws-api (`executionReport`); REST is
  `POST /api/v3/order`. The local venue (matching engine, REST app, ws-api) runs in the same asyncio
  loop, so both paths share its cost.
- usdm: `mm venue --market usdm` in its own process; orders over `/ws-fapi/v1` vs `POST /fapi/v1/order`,
  the NEW `ORDER_TRADE_UPDATE` on the listenKey stream (`/private/ws`).

Run: `.venv/bin/pytest -q -p no:cacheprovider bench/bench_order_entry.py --benchmark-columns=min,median,mean,max,rounds`
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from mm.orders import OrderState, Side
from mm.ticks import parse_price
from processes.binance_adapter import AdapterConfig, BinanceAdapter
from processes.binance_ws_api_client import WsApiClient
from processes.venue_market import VenueMarket
from processes.venue_orders import (
    MatchingEngine,
    OrderLimits,
    OrderSide,
    RateLimitRule,
    SymbolRules,
    attach,
    book_seeder,
)
from processes.venue_ws_api import PATH, WsApi
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.benchmark(group="order_entry")

SYMBOL = "BTCUSDT"
KEY = "benchOrderEntryKey123"
SECRET = "benchOrderEntrySecret-456"
RULES = SymbolRules(symbol=SYMBOL, base_asset="BTC", quote_asset="USDT", tick_size="0.01", lot_size="0.00001",
                    min_notional="5")
LIMITS = OrderLimits(rate_limits=(  # roomy: the bench measures latency, not the limiter
    RateLimitRule(kind="REQUEST_WEIGHT", interval="MINUTE", interval_num=1, limit=1_000_000),
    RateLimitRule(kind="ORDERS", interval="SECOND", interval_num=10, limit=1_000_000),
    RateLimitRule(kind="ORDERS", interval="DAY", interval_num=1, limit=10_000_000)))
ROUNDS = 300
DEADLINE_S = 5.0


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: {what} not within {DEADLINE_S} s")
        await asyncio.sleep(0)  # yield to the venue and the stream in this loop


class Rig:
    """The venue, the adapter and the user-data stream in one loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.acks: dict[str, int] = {}
        self.last = ""
        self.n = 0
        self.extra: list = []
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        keys = {KEY: SECRET}
        self.market = VenueMarket(symbol=SYMBOL, port=0, http_port=0)
        engine = MatchingEngine({SYMBOL: RULES}, keys=keys, seed_book=book_seeder(self.market))
        side = OrderSide(engine, keys=keys, symbols={SYMBOL: RULES}, limits=LIMITS)
        attach(self.market, side)
        WsApi(self.market, side).mount()
        await self.market.start()
        await until(lambda: self.market.book_top(SYMBOL, 1)["bids"], "venue book")
        self.adapter = BinanceAdapter(AdapterConfig(symbol=SYMBOL, prefix="mmb", base_url=self.market.http_url),
                                      KEY, SECRET)
        await self.adapter.start()
        url = self.market.ws_url + PATH

        async def ws_url() -> str:
            return url

        self.stop = asyncio.Event()
        self.stream = WsApiClient("bench", ws_url, api_key=KEY, secret=SECRET, subscribe_user_data=True,
                                  on_event=self._on_event,
                                  venue_now_ms=lambda: self.adapter.venue_now_ns() // 1_000_000)
        self.task = asyncio.create_task(self.stream.run(self.stop))
        await until(lambda: self.stream.up, "user-data stream")
        if self.path == "ws":
            self.adapter.ws = self.stream
        self.bid_tick = parse_price(self.adapter.grid, str(self.market.book_top(SYMBOL, 1)["bids"][0][0]))

    def _on_event(self, event: dict) -> None:
        if event.get("e") == "executionReport" and event.get("x") == "NEW":
            self.acks[event["c"]] = time.perf_counter_ns()
        elif event.get("e") == "ORDER_TRADE_UPDATE" and event["o"].get("x") == "NEW":
            self.acks[event["o"]["c"]] = time.perf_counter_ns()

    def cancel_previous(self) -> tuple[tuple, dict]:
        if self.last:
            outcome = self.loop.run_until_complete(self.adapter.cancel(self.last))
            assert outcome.state is OrderState.CANCELLED, outcome
        return (), {}

    def place_until_ack(self) -> int:
        return self.loop.run_until_complete(self._place())

    async def _place(self) -> int:
        self.n += 1
        started = time.perf_counter_ns()
        outcome = await self.adapter.place(Side.BUY, self.bid_tick - 500 - self.n % 50, 100)
        self.last = outcome.client_id
        assert outcome.state is not OrderState.REJECTED, self.adapter.tracker.get(outcome.client_id)
        await until(lambda: outcome.client_id in self.acks,
                    f"the NEW of {self.adapter.tracker.get(outcome.client_id)} (stream {self.stream.counts})")
        return self.acks[outcome.client_id] - started

    def close(self) -> None:
        async def finish() -> None:
            self.stop.set()
            await asyncio.gather(self.task, *self.extra)
            await self.adapter.close()
            await self.market.stop()

        self.loop.run_until_complete(finish())
        self.loop.close()


class UsdmRig(Rig):
    """`mm venue --market usdm` as a process; the adapter, ws-fapi and the listenKey stream in this loop."""

    async def _start(self) -> None:
        port = free_port_pair()
        env = {**os.environ, "MM_VENUE_KEYS": f"{KEY}:{SECRET}"}
        self.venue = subprocess.Popen([sys.executable, "-m", "mm.cli", "venue", "--market", "usdm", "--port", str(port),
                                       "--orders-1m", "1000000", "--orders-10s", "1000000"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        assert self.venue.stdout.readline().startswith("venue ws=")
        base = f"ws://127.0.0.1:{port}"
        self.adapter = BinanceAdapter(AdapterConfig(symbol=SYMBOL, prefix="mmb", market="usdm",
                                                    base_url=f"http://127.0.0.1:{port + 1}"), KEY, SECRET)
        await self.adapter.start()
        listen_key = (await self.adapter.exchange.fapiPrivatePostListenKey())["listenKey"]

        async def stream_url() -> str:
            return f"{base}/private/ws?listenKey={listen_key}"

        async def fapi_url() -> str:
            return f"{base}/ws-fapi/v1"

        self.stop = asyncio.Event()
        self.stream = WsApiClient("bench stream", stream_url, on_event=self._on_event)
        self.orders_ws = WsApiClient("bench ws-fapi", fapi_url, api_key=KEY, secret=SECRET,
                                     venue_now_ms=lambda: self.adapter.venue_now_ns() // 1_000_000)
        self.task = asyncio.create_task(self.stream.run(self.stop))
        self.extra = [asyncio.create_task(self.orders_ws.run(self.stop))]
        await until(lambda: self.stream.up and self.orders_ws.up, "listenKey stream and ws-fapi")
        if self.path == "ws":
            self.adapter.ws = self.orders_ws
        depth = await self.adapter.exchange.fapiPublicGetDepth({"symbol": SYMBOL, "limit": 5})
        self.bid_tick = parse_price(self.adapter.grid, depth["bids"][0][0])

    def close(self) -> None:
        async def finish() -> None:
            self.stop.set()
            await asyncio.gather(self.task, *self.extra)
            await self.adapter.close()

        try:
            self.loop.run_until_complete(finish())
            self.loop.close()
        finally:
            self.venue.send_signal(signal.SIGTERM)
            self.venue.communicate(timeout=20)


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("path", ["ws", "rest"])
def test_bench_place_to_user_stream_ack(benchmark, path: str, market: str) -> None:
    rig = (Rig if market == "spot" else UsdmRig)(path)
    try:
        benchmark.pedantic(rig.place_until_ack, setup=rig.cancel_previous, rounds=ROUNDS, iterations=1,
                           warmup_rounds=20)
        rig.cancel_previous()
        counts = rig.adapter.counts
        sent_ws, sent_rest = counts["ws_new_order"], counts["rest_new_order"]
        assert rig.n > 0 and (sent_ws, sent_rest) == ((rig.n, 0) if path == "ws" else (0, rig.n)), dict(counts)
        benchmark.extra_info.update({"market": market, "path": path, "orders_ws": sent_ws, "orders_rest": sent_rest})
    finally:
        rig.close()
