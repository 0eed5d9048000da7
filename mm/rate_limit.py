"""Request budgets for one venue: a bucket per limiter in the venue's own exchangeInfo `rateLimits`,
per-endpoint costs, correction from the usage headers, and priorities (cancels before quotes).

Binance counts in fixed windows aligned to the clock (a 1 MINUTE window starts at :00, 10 SECOND
windows at :00, :10, ...; DAY at 00:00 UTC); each bucket refills completely at its window's start.
A request is counted in the window of the venue's clock when it arrives, which we know only within
[now - clock_skew, now + clock_skew + max_latency]: it is charged to every window that range touches
(at most two), so the venue's count in any window never exceeds ours, and ours never exceeds
`headroom_ratio` x the limit. Usage headers raise our count to the venue's (another client on the
same IP spends the same weight) when the reply's window is unambiguous; they never lower it.

Priorities: each priority may fill a bucket only up to its cap; the reserve above LOW's cap is kept
for cancels and queries, so when new quotes are shed or delayed, cancels still pass. A LOW request
that would wait longer than `max_delay_low_ns` is SHED (a quote that late is stale); HIGH and NORMAL
requests are only ever delayed. After a 429/418 everything waits until Retry-After.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import msgspec


class Priority(enum.IntEnum):
    HIGH = 0     # cancels, cancel-all, the dead-man's switch
    NORMAL = 1   # queries, reconciliation, account
    LOW = 2      # new quotes


class LimitKind(enum.Enum):
    REQUEST_WEIGHT = "REQUEST_WEIGHT"
    ORDERS = "ORDERS"
    RAW_REQUESTS = "RAW_REQUESTS"


class Cost(msgspec.Struct, frozen=True):
    weight: int        # REQUEST_WEIGHT units
    orders: int = 0    # ORDERS units


# Costs per endpoint (BINANCE.md §2.2, §2.3). Depth snapshots: spot_depth_cost / usdm_depth_cost.
SPOT_COSTS: dict[str, Cost] = {
    "new_order": Cost(1, 1),
    "cancel_order": Cost(1),
    "cancel_all": Cost(1),
    "cancel_replace": Cost(1, 1),
    "amend_keep_priority": Cost(4),
    "query_order": Cost(4),
    "open_orders": Cost(6),
    "open_orders_all_symbols": Cost(80),
    "account": Cost(20),
    "exchange_info": Cost(20),
    "time": Cost(1),
    "order_count": Cost(40),
}
USDM_COSTS: dict[str, Cost] = {
    "new_order": Cost(0, 1),
    "modify_order": Cost(0, 1),
    "cancel_order": Cost(1),
    "cancel_all": Cost(1),
    "countdown_cancel_all": Cost(10),
    "query_order": Cost(1),
    "open_orders": Cost(1),
    "open_orders_all_symbols": Cost(40),
    "position_risk": Cost(5),
    "account": Cost(5),
    "exchange_info": Cost(1),
    "time": Cost(1),
    "listen_key": Cost(1),
}


def spot_depth_cost(limit: int) -> Cost:
    return Cost(5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250)


def usdm_depth_cost(limit: int) -> Cost:
    return Cost(2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20)


class Verdict(enum.Enum):
    ALLOW = "allow"    # tokens taken: send now
    DELAY = "delay"    # retry at retry_at_ns
    SHED = "shed"      # drop it (a low-priority request that would wait too long, or can never fit)


class Decision(msgspec.Struct, frozen=True):
    verdict: Verdict
    retry_at_ns: int = 0
    blocking: str = ""   # the limiter that said no, e.g. "ORDERS/10s"


ALLOWED = Decision(Verdict.ALLOW)


class RateLimitPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    headroom_ratio: float = 0.9        # never plan past this share of a venue limit
    low_reserve_ratio: float = 0.3     # share of a bucket new quotes may not touch
    normal_reserve_ratio: float = 0.1  # share queries may not touch; cancels may use all
    clock_skew_ns: int = 50_000_000    # |our clock - venue clock| bound (after the /time offset)
    max_latency_ns: int = 1_000_000_000  # request send -> venue arrival bound
    max_delay_low_ns: int = 200_000_000  # a quote waiting longer than this is shed

    def __post_init__(self) -> None:
        if not 0 < self.headroom_ratio <= 1:
            raise ValueError(f"'headroom_ratio' must be in (0, 1], was {self.headroom_ratio}")
        if not 0 <= self.normal_reserve_ratio <= self.low_reserve_ratio < 1:
            raise ValueError(f"need 0 <= normal_reserve_ratio <= low_reserve_ratio < 1, were "
                             f"{self.normal_reserve_ratio}, {self.low_reserve_ratio}")
        if self.clock_skew_ns < 0 or self.max_latency_ns < 0 or self.max_delay_low_ns < 0:
            raise ValueError("'clock_skew_ns', 'max_latency_ns', 'max_delay_low_ns' must be >= 0")


_INTERVAL_NS = {"SECOND": 1_000_000_000, "MINUTE": 60_000_000_000, "HOUR": 3_600_000_000_000,
                "DAY": 86_400_000_000_000}
_INTERVAL_LETTER = {"SECOND": "s", "MINUTE": "m", "HOUR": "h", "DAY": "d"}


class Bucket:
    """One venue limiter: `limit` units per fixed window of `interval_ns`, refilled at each start."""

    __slots__ = ("kind", "interval_ns", "limit", "caps", "header", "name", "used")

    def __init__(self, kind: LimitKind, interval_ns: int, limit: int, policy: RateLimitPolicy,
                 header: str, name: str) -> None:
        usable = int(limit * policy.headroom_ratio)
        self.kind = kind
        self.interval_ns = interval_ns
        self.limit = limit
        self.caps = (usable, usable - int(usable * policy.normal_reserve_ratio),
                     usable - int(usable * policy.low_reserve_ratio))  # indexed by Priority
        self.header = header          # lower-case usage header, "" if the venue sends none
        self.name = name
        self.used: dict[int, int] = {}  # window index -> units charged

    def amount(self, cost: Cost) -> int:
        if self.kind is LimitKind.REQUEST_WEIGHT:
            return cost.weight
        if self.kind is LimitKind.ORDERS:
            return cost.orders
        return 1


class RateLimiter:
    """Every bucket of one venue (shared by everything that talks to it). Pure: time is `now_ns`,
    on the venue's clock as best known (wall clock + server-time offset)."""

    def __init__(self, buckets: list[Bucket], policy: RateLimitPolicy) -> None:
        self.buckets = buckets
        self.policy = policy
        self.blocked_until_ns = 0
        self._before_ns = policy.clock_skew_ns
        self._after_ns = policy.clock_skew_ns + policy.max_latency_ns

    def decide(self, cost: Cost, priority: Priority, now_ns: int) -> Decision:
        """ALLOW (and charge the cost) or say when to retry; LOW waits only max_delay_low_ns."""
        retry_at_ns = self.blocked_until_ns
        blocking = "retry-after" if now_ns < retry_at_ns else ""
        if not blocking:
            retry_at_ns = 0
        early = now_ns - self._before_ns
        late = now_ns + self._after_ns
        for bucket in self.buckets:
            amount = bucket.amount(cost)
            if amount == 0:
                continue
            cap = bucket.caps[priority]
            if amount > cap:
                return Decision(Verdict.SHED, 0, bucket.name)
            interval = bucket.interval_ns
            used = bucket.used
            for index in range(early // interval, late // interval + 1):
                if used.get(index, 0) + amount > cap:
                    at_ns = (index + 1) * interval + self._before_ns
                    if at_ns > retry_at_ns:
                        retry_at_ns, blocking = at_ns, bucket.name
        if blocking:
            if priority is Priority.LOW and retry_at_ns - now_ns > self.policy.max_delay_low_ns:
                return Decision(Verdict.SHED, retry_at_ns, blocking)
            return Decision(Verdict.DELAY, retry_at_ns, blocking)
        for bucket in self.buckets:
            amount = bucket.amount(cost)
            if amount == 0:
                continue
            interval = bucket.interval_ns
            used = bucket.used
            first = early // interval
            for index in range(first, late // interval + 1):
                used[index] = used.get(index, 0) + amount
            if len(used) > 3:
                for index in [i for i in used if i < first]:
                    del used[index]
        return ALLOWED

    def apply_usage_headers(self, headers: Mapping[str, str], sent_ns: int) -> int:
        """Raise our counts to the venue's `X-MBX-USED-WEIGHT-*` / `X-MBX-ORDER-COUNT-*` for the
        request sent at sent_ns; returns how many buckets were corrected."""
        lowered = {k.lower(): v for k, v in headers.items() if k[:6].lower() == "x-mbx-"}
        corrected = 0
        for bucket in self.buckets:
            text = lowered.get(bucket.header) if bucket.header else None
            if text is None:
                continue
            try:
                venue_used = int(text)
            except ValueError:
                continue  # a malformed header corrects nothing
            first = (sent_ns - self._before_ns) // bucket.interval_ns
            if first != (sent_ns + self._after_ns) // bucket.interval_ns:
                continue  # the reply may belong to either of two windows
            if venue_used > bucket.used.get(first, 0):
                bucket.used[first] = venue_used
                corrected += 1
        return corrected

    def on_rate_limited(self, retry_after_ns: int, now_ns: int) -> None:
        """A 429 or 418 arrived: nothing goes out until now + retry_after_ns (Retry-After)."""
        self.blocked_until_ns = max(self.blocked_until_ns, now_ns + retry_after_ns)

    def remaining(self, now_ns: int) -> dict[str, int]:
        """Units left under the HIGH cap in the current window, per bucket (for metrics)."""
        return {b.name: b.caps[Priority.HIGH] - b.used.get(now_ns // b.interval_ns, 0) for b in self.buckets}


def limiter_from_exchange_info(info: Mapping, policy: RateLimitPolicy | None = None) -> RateLimiter:
    """Buckets from exchangeInfo's `rateLimits` (spot or USD-M); unknown limiter types are refused
    rather than ignored, so a venue change is noticed."""
    policy = policy or RateLimitPolicy()
    entries = info.get("rateLimits")
    if not entries:
        raise ValueError("exchangeInfo has no 'rateLimits'")
    buckets = []
    for entry in entries:
        try:
            kind = LimitKind(entry["rateLimitType"])
            unit = entry["interval"]
            count = int(entry["intervalNum"])
            limit = int(entry["limit"])
            interval_ns = _INTERVAL_NS[unit] * count
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"exchangeInfo rateLimits entry {entry!r}: {e!r}") from None
        if count <= 0 or limit <= 0:
            raise ValueError(f"exchangeInfo rateLimits entry {entry!r}: intervalNum and limit must be > 0")
        letter = _INTERVAL_LETTER[unit]
        header = {LimitKind.REQUEST_WEIGHT: f"x-mbx-used-weight-{count}{letter}",
                  LimitKind.ORDERS: f"x-mbx-order-count-{count}{letter}"}.get(kind, "")
        buckets.append(Bucket(kind, interval_ns, limit, policy, header, f"{kind.value}/{count}{letter}"))
    return RateLimiter(buckets, policy)
