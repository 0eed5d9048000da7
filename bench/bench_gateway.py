"""Per order through the Binance adapter's synchronous parts, no network: tracker submit, the
rate-limit decision, the new-order params from the tick grid, and ccxt's encode + HMAC sign of the
request (what `privatePostOrder` would send). The limiter and tracker are fresh per round so every
decision is a real ALLOW path."""

from __future__ import annotations

import random

import pytest

from mm.orders import OrderState, OrderTracker, Side
from mm.rate_limit import RateLimitPolicy, limiter_from_exchange_info
from mm.signing import sign_payload
from mm.ticks import grid_from_sizes
from processes.binance_adapter import AdapterConfig, BinanceAdapter

pytestmark = pytest.mark.benchmark(group="gateway")

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT_INFO = {"rateLimits": [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
]}
NOW_NS = 1_723_161_255_208_000_000


def make_adapter() -> BinanceAdapter:
    adapter = BinanceAdapter(AdapterConfig(symbol="BTCUSDT", prefix="mm1-", base_url="http://127.0.0.1:9"),
                             KEY, SECRET, rng=random.Random(1))
    adapter.exchange.options["timeDifference"] = 0
    adapter.grid = grid_from_sizes("BTCUSDT", "0.01", "0.00001", 8, 8)
    return adapter


def place_one(adapter: BinanceAdapter) -> dict:
    client_id, params = adapter.prepare_new_order(Side.BUY, 6_183_763, 2_000, now_ns=NOW_NS)
    assert params is not None
    adapter.tracker.mark_sent(client_id, NOW_NS)
    return adapter.sign_new_order(params)


def test_bench_gateway_adapter_encode_sign_decide(benchmark):
    adapter = make_adapter()

    def setup():
        adapter.tracker = OrderTracker("mm1-", "a", query_after_ns=6_000_000_000, cancel_timeout_ns=2_000_000_000)
        adapter.limiter = limiter_from_exchange_info(SPOT_INFO, RateLimitPolicy())
        return (adapter,), {}

    request = benchmark.pedantic(place_one, setup=setup, rounds=2000, iterations=1, warmup_rounds=50)
    body = request["body"]
    assert body.startswith("timestamp=")
    assert "symbol=BTCUSDT&side=BUY&type=LIMIT_MAKER&quantity=0.02000000&price=61837.63000000" in body
    assert "newClientOrderId=mm1-a1" in body and "recvWindow=5000" in body
    payload, _, signature = body.rpartition("&signature=")
    assert signature == sign_payload(SECRET, payload)
    assert request["headers"]["X-MBX-APIKEY"] == KEY
    assert adapter.tracker.get("mm1-a1").state is OrderState.SENT
