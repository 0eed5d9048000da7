import heapq
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.rate_limit import (
    SPOT_COSTS,
    USDM_COSTS,
    Cost,
    LimitKind,
    Priority,
    RateLimitPolicy,
    Verdict,
    limiter_from_exchange_info,
    spot_depth_cost,
)

S = 1_000_000_000
MS = 1_000_000

# Real spot capture, 2021-10 (BINANCE.md §4)
SPOT_INFO = {"timezone": "UTC", "serverTime": 1634899329421, "rateLimits": [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 6100},
]}
# A small venue so a short simulation hits every limit.
SMALL_INFO = {"rateLimits": [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 1, "limit": 40},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 12},
    {"rateLimitType": "RAW_REQUESTS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]}
T0 = 1_723_161_240 * S  # a minute boundary


def test_limiter_from_exchange_info_builds_one_bucket_per_limiter():
    limiter = limiter_from_exchange_info(SPOT_INFO)
    assert [(b.kind, b.interval_ns, b.limit, b.header) for b in limiter.buckets] == [
        (LimitKind.REQUEST_WEIGHT, 60 * S, 1200, "x-mbx-used-weight-1m"),
        (LimitKind.ORDERS, 10 * S, 50, "x-mbx-order-count-10s"),
        (LimitKind.ORDERS, 86_400 * S, 160000, "x-mbx-order-count-1d"),
        (LimitKind.RAW_REQUESTS, 300 * S, 6100, ""),
    ]


@pytest.mark.parametrize("info", [{}, {"rateLimits": [{"rateLimitType": "WEIRD", "interval": "MINUTE",
                                                       "intervalNum": 1, "limit": 5}]},
                                  {"rateLimits": [{"rateLimitType": "ORDERS", "interval": "WEEK",
                                                   "intervalNum": 1, "limit": 5}]}])
def test_limiter_from_exchange_info_bad_entries_raise(info):
    with pytest.raises(ValueError, match="rateLimits"):
        limiter_from_exchange_info(info)


def test_costs_follow_the_venue_tables():
    assert SPOT_COSTS["new_order"] == Cost(1, 1) and USDM_COSTS["new_order"] == Cost(0, 1)
    assert [spot_depth_cost(n).weight for n in (100, 500, 1000, 5000)] == [5, 25, 50, 250]


def test_orders_per_10s_stop_at_headroom_of_the_limit():
    limiter = limiter_from_exchange_info(SPOT_INFO, RateLimitPolicy(headroom_ratio=0.9, low_reserve_ratio=0.0,
                                                                    normal_reserve_ratio=0.0, max_latency_ns=0))
    now = T0 + S
    verdicts = [limiter.decide(SPOT_COSTS["new_order"], Priority.HIGH, now).verdict for _ in range(50)]
    assert verdicts.count(Verdict.ALLOW) == 45  # 90 % of 50
    denied = limiter.decide(SPOT_COSTS["new_order"], Priority.HIGH, now)
    assert denied.verdict is Verdict.DELAY and denied.blocking == "ORDERS/10s"
    assert denied.retry_at_ns == T0 + 10 * S + limiter.policy.clock_skew_ns
    assert limiter.decide(SPOT_COSTS["new_order"], Priority.HIGH, denied.retry_at_ns).verdict is Verdict.ALLOW


def test_cancels_pass_when_quotes_are_shed():
    limiter = limiter_from_exchange_info(SPOT_INFO)
    now = T0 + S
    quotes = Counter()
    for _ in range(2000):
        quotes[limiter.decide(SPOT_COSTS["query_order"], Priority.LOW, now).verdict] += 1
    assert quotes[Verdict.SHED] > 0  # the 1-minute weight bucket is closed to low priority
    for _ in range(50):
        assert limiter.decide(SPOT_COSTS["cancel_order"], Priority.HIGH, now).verdict is Verdict.ALLOW


def test_low_priority_waiting_briefly_is_delayed_not_shed():
    limiter = limiter_from_exchange_info(SMALL_INFO, RateLimitPolicy(clock_skew_ns=0, max_latency_ns=0,
                                                                     max_delay_low_ns=300 * MS))
    now = T0 + 900 * MS  # 100 ms before the 1 s windows roll
    while (decision := limiter.decide(SPOT_COSTS["new_order"], Priority.LOW, now)).verdict is Verdict.ALLOW:
        pass
    assert decision.verdict is Verdict.DELAY and decision.retry_at_ns == T0 + S


def test_usage_header_raises_our_count_to_the_venues():
    limiter = limiter_from_exchange_info(SPOT_INFO)
    sent = T0 + 5 * S
    corrected = limiter.apply_usage_headers({"X-MBX-USED-WEIGHT-1M": "1075", "x-mbx-order-count-10s": "3",
                                             "Content-Type": "application/json"}, sent)
    assert corrected == 2
    # low priority may use 70 % of 1080: 756 < 1075 -> refused; cancels still have room up to 1080
    assert limiter.decide(SPOT_COSTS["new_order"], Priority.LOW, sent + MS).verdict is Verdict.SHED
    assert limiter.decide(SPOT_COSTS["cancel_order"], Priority.HIGH, sent + MS).verdict is Verdict.ALLOW


def test_usage_header_never_lowers_and_skips_ambiguous_windows():
    limiter = limiter_from_exchange_info(SPOT_INFO)
    sent = T0 + 5 * S
    for _ in range(10):
        limiter.decide(SPOT_COSTS["new_order"], Priority.HIGH, sent)
    assert limiter.apply_usage_headers({"X-MBX-ORDER-COUNT-10S": "2"}, sent) == 0
    near_boundary = T0 + 10 * S - 100 * MS  # the reply may count in this window or the next
    assert limiter.apply_usage_headers({"X-MBX-ORDER-COUNT-10S": "49"}, near_boundary) == 0
    assert limiter.apply_usage_headers({"X-MBX-ORDER-COUNT-10S": "not a number"}, sent) == 0


def test_retry_after_blocks_every_priority_until_it_passes():
    limiter = limiter_from_exchange_info(SPOT_INFO)
    now = T0 + S
    limiter.on_rate_limited(2 * S, now)
    cancel = limiter.decide(SPOT_COSTS["cancel_order"], Priority.HIGH, now + S)
    assert (cancel.verdict, cancel.retry_at_ns, cancel.blocking) == (Verdict.DELAY, now + 2 * S, "retry-after")
    assert limiter.decide(SPOT_COSTS["new_order"], Priority.LOW, now + S).verdict is Verdict.SHED
    assert limiter.decide(SPOT_COSTS["cancel_order"], Priority.HIGH, now + 2 * S).verdict is Verdict.ALLOW


ENDPOINTS = ["new_order", "new_order", "new_order", "cancel_order", "query_order", "open_orders", "cancel_replace"]
PRIORITY = {"new_order": Priority.LOW, "cancel_replace": Priority.LOW, "cancel_order": Priority.HIGH,
            "query_order": Priority.NORMAL, "open_orders": Priority.NORMAL}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ENDPOINTS), st.integers(0, 40 * MS)), min_size=50, max_size=400),
       st.integers(-50 * MS, 50 * MS), st.lists(st.integers(0, 1_000 * MS), min_size=1, max_size=20),
       st.integers(0, 10 * S))
def test_simulated_load_never_exceeds_a_venue_limit(requests, venue_offset_ns, latencies_ns, start_offset_ns):
    """Requests (bursts included) go through the limiter; a venue whose clock is off by up to the
    skew bound counts each arrival (after up to max_latency) in its own fixed windows."""
    policy = RateLimitPolicy()  # skew 50 ms, latency 1 s
    limiter = limiter_from_exchange_info(SMALL_INFO, policy)
    queue = []
    now = T0 + start_offset_ns
    for seq, (endpoint, gap) in enumerate(requests):
        now += gap
        heapq.heappush(queue, (now, seq, endpoint))
    venue = Counter()
    sent = 0
    while queue:
        at, seq, endpoint = heapq.heappop(queue)
        decision = limiter.decide(SPOT_COSTS[endpoint], PRIORITY[endpoint], at)
        if decision.verdict is Verdict.DELAY:
            assert decision.retry_at_ns > at
            heapq.heappush(queue, (decision.retry_at_ns, seq, endpoint))
            continue
        if decision.verdict is Verdict.SHED:
            assert PRIORITY[endpoint] is Priority.LOW
            continue
        sent += 1
        arrival = at + venue_offset_ns + latencies_ns[seq % len(latencies_ns)]
        cost = SPOT_COSTS[endpoint]
        venue["weight", arrival // S] += cost.weight
        venue["orders", arrival // S] += cost.orders
        venue["raw", arrival // (10 * S)] += 1
    limits = {"weight": 40, "orders": 12, "raw": 300}
    assert all(count <= limits[kind] for (kind, _), count in venue.items())
    assert sent > 0
