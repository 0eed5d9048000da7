"""Per order on the gateway's path: tracker submit, encode the Binance new-order form body, HMAC
sign it, and the rate-limit decision (target: under 50 µs in Python). Each timed call places one
order; the limiter is reset per round so every decision is a real ALLOW path."""

from __future__ import annotations

import pytest

from mm.orders import OrderState, OrderTracker, Side
from mm.rate_limit import SPOT_COSTS, Priority, RateLimitPolicy, Verdict, limiter_from_exchange_info
from mm.signing import HmacSigner, encode_params
from mm.ticks import format_price, format_qty, grid_from_sizes

pytestmark = pytest.mark.benchmark(group="order_path")

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT_INFO = {"rateLimits": [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]}
NOW_NS = 1_723_161_255_208_000_000
SIGNER = HmacSigner(SECRET)
GRID = grid_from_sizes("BTCUSDT", "0.01", "0.00001")  # BTCUSDT spot PRICE_FILTER / LOT_SIZE


def place_one(tracker: OrderTracker, limiter, now_ns: int) -> str:
    record = tracker.submit("BTCUSDT", Side.BUY, 6_183_763, 2_000, now_ns)
    decision = limiter.decide(SPOT_COSTS["new_order"], Priority.LOW, now_ns)
    if decision.verdict is not Verdict.ALLOW:
        return ""
    query = encode_params((
        ("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT_MAKER"),
        ("quantity", format_qty(GRID, record.qty_lot)), ("price", format_price(GRID, record.px_tick)),
        ("newClientOrderId", record.client_id), ("newOrderRespType", "ACK"),
        ("recvWindow", 5000), ("timestamp", now_ns // 1_000_000)))
    body = f"{query}&signature={SIGNER.sign(query)}"
    tracker.mark_sent(record.client_id, now_ns)
    return body


def test_bench_order_path_submit_encode_sign_decide(benchmark):
    state = {}

    def setup():
        state["tracker"] = OrderTracker("mm1-", "a", query_after_ns=6_000_000_000, cancel_timeout_ns=2_000_000_000)
        state["limiter"] = limiter_from_exchange_info(SPOT_INFO, RateLimitPolicy())
        return (state["tracker"], state["limiter"], NOW_NS), {}

    body = benchmark.pedantic(place_one, setup=setup, rounds=2000, iterations=1, warmup_rounds=50)
    assert body.startswith("symbol=BTCUSDT&side=BUY&type=LIMIT_MAKER&quantity=0.02000&price=61837.63")
    assert body.endswith(f"&signature={SIGNER.sign(body.rpartition('&signature=')[0])}")
    assert state["tracker"].get("mm1-a1").state is OrderState.SENT


def test_bench_order_path_sign_only(benchmark):
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT_MAKER&quantity=0.02000000&price=61837.63000000&timestamp=1723161255208"
    signature = benchmark(SIGNER.sign, query)
    assert len(signature) == 64


def test_bench_order_path_rate_limit_decision_only(benchmark):
    limiter = limiter_from_exchange_info(SPOT_INFO, RateLimitPolicy())
    decision = benchmark(limiter.decide, SPOT_COSTS["cancel_order"], Priority.HIGH, NOW_NS)
    assert decision.verdict in (Verdict.ALLOW, Verdict.DELAY)
