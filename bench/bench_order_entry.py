"""Order entry round trip on loopback, through the gateway's adapter: `place` called -> the order's NEW
`executionReport` received on the user-data stream (userDataStream.subscribe.signature on the ws-api),
with the order sent over the persistent signed WebSocket API (`order.place`) vs over REST (ccxt,
`POST /api/v3/order`). The local venue (matching engine, REST app, ws-api) runs in the same asyncio
loop, so both paths share its cost; each round cancels the previous order first (not timed).

Run: `.venv/bin/pytest -q -p no:cacheprovider bench/bench_order_entry.py --benchmark-columns=min,median,mean,max,rounds`
"""

from __future__ import annotations

import asyncio
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
        await until(lambda: outcome.client_id in self.acks, "the NEW executionReport")
        return self.acks[outcome.client_id] - started

    def close(self) -> None:
        async def finish() -> None:
            self.stop.set()
            await self.task
            await self.adapter.close()
            await self.market.stop()

        self.loop.run_until_complete(finish())
        self.loop.close()


@pytest.mark.parametrize("path", ["ws", "rest"])
def test_bench_place_to_user_stream_ack(benchmark, path: str) -> None:
    rig = Rig(path)
    try:
        benchmark.pedantic(rig.place_until_ack, setup=rig.cancel_previous, rounds=ROUNDS, iterations=1,
                           warmup_rounds=20)
        rig.cancel_previous()
        counts = rig.adapter.counts
        sent_ws, sent_rest = counts["ws_new_order"], counts["rest_new_order"]
        assert rig.n > 0 and (sent_ws, sent_rest) == ((rig.n, 0) if path == "ws" else (0, rig.n)), dict(counts)
        benchmark.extra_info.update({"path": path, "orders_ws": sent_ws, "orders_rest": sent_rest})
    finally:
        rig.close()
