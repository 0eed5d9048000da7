"""The gateway's Binance adapter (spot, or USD-M futures with `market="usdm"`): ccxt's async client for
REST, the persistent signed WebSocket API connection for orders (processes/binance_ws_api_client.py),
our rate limiter and the order tracker.

Order entry: with `ws` set and up, new orders, cancels and queries go over the WebSocket API
(spot `order.place` / `order.cancel` / `order.status`; USD-M the same on `/ws-fapi/v1`); its errors
are classified like REST's (mm.venue_sync.ws_error_kind) and its `rateLimits` feed the same limiter.
When it is down (not connected: nothing was sent) the request goes over REST instead. A request in
flight when the connection drops has an UNKNOWN outcome, settled like a REST timeout.

ccxt signs (HMAC-SHA256 over the form body, `timestamp` from its server-time offset set by
`load_time_difference`, our `recvWindow`) and maps the venue's errors to exceptions; we call its
implicit endpoints (`privatePostOrder`, ...) with exact decimal strings from the tick grid. Real
hosts keep ccxt's https URLs and TLS verification; a loopback `base_url` (the local `mm venue`)
gets the options of BINANCE.md §9 so ccxt talks to nothing else.

Every request passes `mm.rate_limit` first (seeded from the venue's exchangeInfo `rateLimits`,
corrected from the `X-MBX-*` usage headers; cancels HIGH, queries NORMAL, new quotes LOW), has a
timeout, and is classified by outcome (BINANCE.md §6, §9):
- 429 / 418 (`DDoSProtection`): the limiter blocks everything until `Retry-After`; idempotent calls
  wait and retry, a new order is rejected (a quote that late is stale).
- 5xx / timeout / dropped connection: the outcome is UNKNOWN. Cancels and queries are retried with
  exponential backoff and jitter. A new order is NEVER resent blindly (Lazy Pirate, made
  idempotent): it goes UNKNOWN and is settled by queries by client order id until found, or until
  the venue can no longer accept it (its timestamp + recvWindow passed) and "not found" is final.
- -1021 (`InvalidNonce`): the clock offset is refreshed and the request resent once (it was refused).
- any other venue error: a definite reject.

Cancels and cancel-all touch only orders whose client id carries our prefix (`mm.orders.is_ours`);
`DELETE /api/v3/openOrders` is never used, it would cancel the account's other orders too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async
import msgspec
from ccxt.base.errors import (
    DDoSProtection,
    ExchangeError,
    InvalidNonce,
    NetworkError,
    OrderNotFound as CcxtOrderNotFound,
    RequestTimeout,
)

from mm.keys import Secret
from mm.venue_sync import STATUSES, ErrorKind, ReconcilePlan, reconcile_plan, usage_headers, ws_error_kind
from mm.orders import (
    Applied,
    CancelDecision,
    CancelRejected,
    CancelTimedOut,
    FollowUp,
    OrderNotFound,
    OrderRecord,
    OrderState,
    OrderTracker,
    Outcome,
    RequestTimedOut,
    Side,
    VenueStatus,
    VenueUpdate,
    is_ours,
)
from mm.rate_limit import SPOT_COSTS, USDM_COSTS, Cost, Priority, RateLimiter, RateLimitPolicy, Verdict, limiter_from_exchange_info
from mm.ticks import TickGrid, format_price, format_qty, grid_from_sizes, parse_qty
from processes.binance_ws_api_client import WsApiClient, WsApiDown, WsApiRequestError, WsApiUnknown
from processes.redaction import RedactSecrets

log = logging.getLogger(__name__)

MS = 1_000_000
NS = 1_000_000_000
_STATUS = STATUSES
MARKETS = ("spot", "usdm")


class Endpoints(msgspec.Struct, frozen=True):
    """ccxt's implicit REST method names, and the WebSocket API methods ("" = REST only), of one market."""

    new: str
    cancel: str
    query: str
    open_orders: str
    account: str
    exchange_info: str
    ws_new: str = "order.place"
    ws_cancel: str = "order.cancel"
    ws_query: str = "order.status"


ENDPOINTS = {
    "spot": Endpoints("privatePostOrder", "privateDeleteOrder", "privateGetOrder", "privateGetOpenOrders",
                      "privateGetAccount", "publicGetExchangeInfo"),
    "usdm": Endpoints("fapiPrivatePostOrder", "fapiPrivateDeleteOrder", "fapiPrivateGetOrder",
                      "fapiPrivateGetOpenOrders", "fapiPrivateV3GetAccount", "fapiPublicGetExchangeInfo"),
}


class RequestShedError(Exception):
    """The rate limiter shed a low-priority request (it would have waited too long)."""


class AdapterConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    prefix: str                        # this pipeline's client-id prefix
    market: str = "spot"               # "spot" (/api/v3) or "usdm" (/fapi)
    instance: str = "a"                # letters, one per start (mm.orders.instance_token)
    base_url: str = ""                 # "" = the real Binance spot API; loopback = a local venue
    recv_window_ms: int = 5000
    timeout_s: float = 5.0             # per request
    max_attempts: int = 4              # idempotent calls: tries in all
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 2.0
    max_wait_s: float = 10.0           # longest a call waits for the limiter or Retry-After
    settle_attempts: int = 20          # queries to settle one UNKNOWN order
    policy: RateLimitPolicy = RateLimitPolicy()

    def __post_init__(self) -> None:
        if not 0 < self.recv_window_ms <= 60000:
            raise ValueError(f"'recv_window_ms' must be in (0, 60000], was {self.recv_window_ms}")
        if self.market not in MARKETS:
            raise ValueError(f"'market' must be one of {MARKETS}, was {self.market!r}")
        if self.timeout_s <= 0 or self.max_attempts < 1 or self.settle_attempts < 1:
            raise ValueError("'timeout_s' must be > 0, 'max_attempts' and 'settle_attempts' >= 1")
        if self.base_url:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"'base_url' must be http(s)://host:port, was {self.base_url!r}")
            if parts.scheme == "http" and not is_loopback(parts.hostname):
                raise ValueError(f"'base_url' {self.base_url!r}: plain http only to loopback; use https")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_exchange(api_key: str, secret: str, config: AdapterConfig) -> ccxt_async.binance:
    maker = ccxt_async.binanceusdm if config.market == "usdm" else ccxt_async.binance
    exchange = maker({
        "apiKey": api_key,
        "secret": secret,
        "enableRateLimit": False,          # mm.rate_limit decides, with the venue's own numbers
        "timeout": int(config.timeout_s * 1000),
        "options": {
            "fetchCurrencies": False,
            "fetchMargins": False,
            "fetchMarkets": {"types": ["linear" if config.market == "usdm" else "spot"]},
            "recvWindow": config.recv_window_ms,
            "adjustForTimeDifference": False,  # start() loads it explicitly
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
    })
    exchange.verify = True  # TLS verification for every real host
    if config.base_url and config.market == "usdm":
        root = config.base_url.rstrip("/")
        for name, url in list(exchange.urls["api"].items()):
            if name.startswith("fapi"):
                exchange.urls["api"][name] = root + urlsplit(url).path
    elif config.base_url:
        api = config.base_url.rstrip("/") + "/api/v3"
        exchange.urls["api"]["public"] = api
        exchange.urls["api"]["private"] = api
    return exchange


class BinanceAdapter:
    """One symbol at Binance spot (or the local venue). Async calls return mm.orders Outcomes;
    every record for the journal goes to `journal` before the request it describes leaves."""

    def __init__(self, config: AdapterConfig, api_key: Secret | str, api_secret: Secret | str, *,
                 journal: Callable[[OrderRecord], Any] | None = None, rng: random.Random | None = None,
                 tracker: OrderTracker | None = None) -> None:
        key = api_key.reveal() if isinstance(api_key, Secret) else api_key
        secret = api_secret.reveal() if isinstance(api_secret, Secret) else api_secret
        RedactSecrets.register(key)
        RedactSecrets.register(secret)
        self.config = config
        self.symbol = config.symbol.upper()
        self.exchange = make_exchange(key, secret, config)
        self.journal = journal or (lambda record: None)
        self.rng = rng or random.Random()
        # the venue can no longer accept a request once its timestamp + recvWindow passed
        query_after_ns = (config.recv_window_ms + 1000) * MS + int(config.timeout_s * NS)
        self.tracker = tracker or OrderTracker(config.prefix, config.instance, query_after_ns=query_after_ns,
                                               cancel_timeout_ns=int(config.timeout_s * NS))
        self.limiter: RateLimiter | None = None
        self.grid: TickGrid | None = None
        self.time_offset_ms = 0      # local - venue clock
        self.balances: dict[str, dict[str, Decimal]] = {}
        self.position = Decimal(0)   # USD-M: the symbol's one-way position (account.positions)
        self.exchange_info: dict = {}
        self.counts: Counter[str] = Counter()
        self.endpoints = ENDPOINTS[config.market]
        self.costs = USDM_COSTS if config.market == "usdm" else SPOT_COSTS
        self.ws: WsApiClient | None = None  # the WebSocket API for orders; None or down: REST
        # set: an UNKNOWN new order is settled in a background task that hands its outcome here
        self.on_settled: Callable[[Outcome], Any] | None = None
        self._settling: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"BinanceAdapter(symbol={self.symbol!r}, prefix={self.config.prefix!r})"

    # ---- lifecycle ----

    async def start(self) -> list[Outcome]:
        """Clock offset, exchangeInfo (limits, filters), safe start: cancel our stale orders, balances."""
        await self.sync_time()
        info = await self._raw("exchange_info", Priority.NORMAL, self._rest(self.endpoints.exchange_info), {})
        self.exchange_info = info
        self.limiter = limiter_from_exchange_info(info, self.config.policy)
        self.limiter.decide(self.costs["exchange_info"], Priority.HIGH, self.venue_now_ns())
        self.limiter.apply_usage_headers(self.exchange.last_response_headers or {}, self.venue_now_ns())
        self.grid = grid_from_exchange_info(info, self.symbol)
        outcomes = await self.cancel_all_ours()
        await self.fetch_balances()
        log.info("binance adapter %s: started, time offset %d ms, %d stale orders of ours cancelled",
                 self.symbol, self.time_offset_ms, len(outcomes))
        return outcomes

    async def close(self) -> None:
        for task in list(self._settling):
            task.cancel()
        await asyncio.gather(*self._settling, return_exceptions=True)
        await self.exchange.close()

    async def sync_time(self) -> int:
        self.time_offset_ms = int(await self._call_with_timeout(self.exchange.load_time_difference()))
        return self.time_offset_ms

    def venue_now_ns(self) -> int:
        return time.time_ns() - self.time_offset_ms * MS

    # ---- synchronous parts (also benchmarked) ----

    def prepare_new_order(self, side: Side, px_tick: int, qty_lot: int, *, post_only: bool = True,
                          time_in_force: str = "GTC", now_ns: int | None = None
                          ) -> tuple[str, dict[str, str] | None]:
        """Tracker submit, the rate-limit decision (LOW) and the request params: (client id, params), or
        (client id, None) when the limiter shed it (the order is then cancelled locally)."""
        now_ns = self.venue_now_ns() if now_ns is None else now_ns
        assert self.grid is not None and self.limiter is not None, "start() first"
        record = self.tracker.submit(self.symbol, side, px_tick, qty_lot, now_ns)
        self.journal(record)
        decision = self.limiter.decide(self.costs["new_order"], Priority.LOW, now_ns)
        if decision.verdict is not Verdict.ALLOW:
            self.counts[f"new_{decision.verdict.value}"] += 1
            if decision.verdict is Verdict.SHED:
                _, cancel = self.tracker.request_cancel(record.client_id, now_ns)
                if cancel is not None:
                    self.journal(cancel)
                return record.client_id, None
            return record.client_id, {"_retry_at_ns": str(decision.retry_at_ns)}
        return record.client_id, self.order_params(record.client_id, side, px_tick, qty_lot, post_only, time_in_force)

    def order_params(self, client_id: str, side: Side, px_tick: int, qty_lot: int, post_only: bool,
                     time_in_force: str) -> dict[str, str]:
        assert self.grid is not None
        params = {"symbol": self.symbol, "side": side.value, "type": "LIMIT_MAKER" if post_only else "LIMIT",
                  "quantity": format_qty(self.grid, qty_lot), "price": format_price(self.grid, px_tick),
                  "newClientOrderId": client_id, "newOrderRespType": "RESULT"}
        if self.config.market == "usdm":  # post-only is LIMIT + GTX (BINANCE.md §2.4)
            params["type"] = "LIMIT"
            params["timeInForce"] = "GTX" if post_only else time_in_force
        elif not post_only:
            params["timeInForce"] = time_in_force
        return params

    def sign_new_order(self, params: dict[str, str]) -> dict:
        """What ccxt would send for these params (url, body, headers): encode + HMAC, no network."""
        return self.exchange.sign("order", ["private"], "POST", dict(params))

    # ---- orders ----

    async def place(self, side: Side, px_tick: int, qty_lot: int, *, post_only: bool = True,
                    time_in_force: str = "GTC", named: Callable[[str], Any] | None = None) -> Outcome:
        """`named(client_id)` is called before the request leaves (the user stream may report the
        order before its reply comes)."""
        client_id, params = self.prepare_new_order(side, px_tick, qty_lot, post_only=post_only,
                                                   time_in_force=time_in_force)
        if named is not None:
            named(client_id)
        if params is not None and "_retry_at_ns" in params:  # delayed, not shed: wait, then decide again
            await self._wait_until(int(params["_retry_at_ns"]))
            decision = self.limiter.decide(self.costs["new_order"], Priority.LOW, self.venue_now_ns())
            params = (self.order_params(client_id, side, px_tick, qty_lot, post_only, time_in_force)
                      if decision.verdict is Verdict.ALLOW else None)
            if params is None:
                _, cancel = self.tracker.request_cancel(client_id, self.venue_now_ns())
                if cancel is not None:
                    self.journal(cancel)
        if params is None:
            order = self.tracker.get(client_id)
            return Outcome(Applied.APPLIED, client_id, order.state if order else None, OrderState.NEW)
        return await self._send_new(client_id, params)

    async def _send_new(self, client_id: str, params: dict[str, str]) -> Outcome:
        for attempt in range(2):  # a second try only after -1021 (definitely refused)
            sent_ns = self.venue_now_ns()
            self.journal(self.tracker.mark_sent(client_id, sent_ns))
            try:
                reply = await self._order_call("new_order", self.endpoints.ws_new, self.endpoints.new, params)
            except DDoSProtection as e:
                self._on_rate_limited()
                return self._apply(VenueUpdate(client_id, VenueStatus.REJECTED, 0, self.venue_now_ns(),
                                               reason=f"rate limited: {_reason(e)}"))
            except InvalidNonce as e:
                self.counts["timestamp_rejects"] += 1
                if attempt == 0:
                    await self.sync_time()
                    continue
                return self._apply(VenueUpdate(client_id, VenueStatus.REJECTED, 0, self.venue_now_ns(),
                                               reason=_reason(e)))
            except NetworkError as e:  # 5xx, timeout, dropped connection: unknown outcome
                self.counts["new_unknown"] += 1
                log.warning("binance adapter: new order %s: outcome unknown (%s): settling by query",
                            client_id, type(e).__name__)
                outcome = self._apply(RequestTimedOut(client_id, self.venue_now_ns()))
                if self.on_settled is not None:  # settle beside the order flow, not in front of it
                    self._settling.add(asyncio.get_running_loop().create_task(self._settle_later(client_id)))
                    return outcome
                return await self.settle(client_id)
            except ExchangeError as e:  # 4xx with a venue code: a definite reject
                self.counts["new_rejected"] += 1
                return self._apply(VenueUpdate(client_id, VenueStatus.REJECTED, 0, self.venue_now_ns(),
                                               reason=_reason(e)))
            finally:
                self._after_reply(sent_ns)
            return self._apply(self._update_of(reply))
        raise AssertionError("unreachable")

    async def cancel(self, client_id: str) -> Outcome:
        decision, record = self.tracker.request_cancel(client_id, self.venue_now_ns())
        if record is not None:
            self.journal(record)
        order = self.tracker.get(client_id)
        if decision is not CancelDecision.SEND:
            return Outcome(Applied.DUPLICATE if order else Applied.UNTRACKED, client_id,
                           order.state if order else None, order.state if order else None)
        try:
            reply = await self._idempotent("cancel_order", Priority.HIGH, self.endpoints.cancel,
                                           {"symbol": self.symbol, "origClientOrderId": client_id},
                                           ws_method=self.endpoints.ws_cancel)
        except CcxtOrderNotFound as e:  # -2011: not open at the venue now
            outcome = self._apply(CancelRejected(client_id, self.venue_now_ns(), _reason(e)))
            return await self._follow(outcome)
        except NetworkError:
            outcome = self._apply(CancelTimedOut(client_id, self.venue_now_ns()))
            return await self._follow(outcome)
        return await self._follow(self._apply(self._update_of(reply)))

    async def query(self, client_id: str) -> Outcome:
        now_ns = self.venue_now_ns()
        self.tracker.mark_queried(client_id, now_ns)
        try:
            reply = await self._idempotent("query_order", Priority.NORMAL, self.endpoints.query,
                                           {"symbol": self.symbol, "origClientOrderId": client_id},
                                           ws_method=self.endpoints.ws_query)
        except CcxtOrderNotFound:  # -2013
            return self._apply(OrderNotFound(client_id, self.venue_now_ns()))
        return self._apply(self._update_of(reply))

    async def settle(self, client_id: str) -> Outcome:
        """Query an UNKNOWN order by client id until the venue's answer is final (bounded)."""
        outcome = Outcome(Applied.INCONCLUSIVE, client_id)
        for _ in range(self.config.settle_attempts):
            try:
                outcome = await self.query(client_id)
            except NetworkError as e:
                log.warning("binance adapter: settle %s: query failed (%s)", client_id, type(e).__name__)
                outcome = Outcome(Applied.INCONCLUSIVE, client_id)
            if outcome.applied is not Applied.INCONCLUSIVE:
                return await self._follow(outcome)
            order = self.tracker.get(client_id)
            if order is None:
                return outcome
            due_ns = max(order.sent_ns + self.tracker.query_after_ns, self.venue_now_ns() + 50 * MS)
            await self._wait_until(min(due_ns, self.venue_now_ns() + int(self.config.max_wait_s * NS)))
        return outcome

    async def _settle_later(self, client_id: str) -> None:
        try:
            outcome = await self.settle(client_id)
        except Exception as e:  # noqa: BLE001 - the next reconcile settles it
            log.warning("binance adapter: settling %s failed (%s); the next reconcile settles it",
                        client_id, type(e).__name__)
            return
        finally:
            self._settling.discard(asyncio.current_task())
        if self.on_settled is not None:
            self.on_settled(outcome)

    async def cancel_all_ours(self) -> list[Outcome]:
        """Cancel every open order at the venue whose client id has our prefix; never anyone else's."""
        venue_open = await self.fetch_open_orders()
        outcomes = []
        for entry in venue_open:
            client_id = entry.get("clientOrderId", "")
            if not is_ours(client_id, self.config.prefix):
                self.counts["foreign_orders_left"] += 1
                continue
            if self.tracker.get(client_id) is not None:
                outcomes.append(await self.cancel(client_id))
                continue
            try:
                await self._idempotent("cancel_order", Priority.HIGH, self.endpoints.cancel,
                                       {"symbol": self.symbol, "origClientOrderId": client_id})
                outcomes.append(Outcome(Applied.UNTRACKED, client_id, OrderState.CANCELLED))
            except CcxtOrderNotFound:
                outcomes.append(Outcome(Applied.UNTRACKED, client_id))
        for order in self.tracker.open_orders():  # ours in flight or unknown: settle, then cancel
            if order.state in (OrderState.SENT, OrderState.UNKNOWN, OrderState.NEW):
                outcomes.append(await self.cancel(order.client_id))
        return outcomes

    async def reconcile(self) -> tuple[ReconcilePlan, list[Outcome]]:
        """Venue open orders vs the tracker (mm.venue_sync.reconcile_plan): cancel ours the tracker
        lacks, update the tracked ones from the venue's rows, query ours the venue does not list;
        then the balances. Returns the plan and the outcomes of the updates and queries."""
        venue_open = await self.fetch_open_orders()
        plan = reconcile_plan(self.tracker, [self._update_of(entry) for entry in venue_open])
        outcomes = []
        for client_id in plan.cancel_untracked:
            try:
                await self._idempotent("cancel_order", Priority.HIGH, self.endpoints.cancel,
                                       {"symbol": self.symbol, "origClientOrderId": client_id})
            except CcxtOrderNotFound:
                pass  # gone meanwhile
        for update in plan.apply:
            outcomes.append(self._apply(update))
        for client_id in plan.query:
            outcomes.append(await self.query(client_id))
        await self.fetch_balances()
        self.counts["reconciles"] += 1
        if plan.differences:
            self.counts["reconcile_differences"] += plan.differences
            log.warning("binance adapter %s: reconcile: %d untracked of ours cancelled, %d not listed queried",
                        self.symbol, len(plan.cancel_untracked), len(plan.query))
        return plan, outcomes

    async def fetch_open_orders(self) -> list[dict]:
        return await self._idempotent("open_orders", Priority.NORMAL, self.endpoints.open_orders,
                                      {"symbol": self.symbol})

    async def fetch_balances(self) -> dict[str, dict[str, Decimal]]:
        reply = await self._idempotent("account", Priority.NORMAL, self.endpoints.account, {})
        if self.config.market == "usdm":  # wallet balances, and the symbol's one-way position as "position"
            self.balances = {a["asset"]: {"free": Decimal(a.get("availableBalance", "0")),
                                          "locked": Decimal(a.get("walletBalance", "0"))
                                          - Decimal(a.get("availableBalance", "0"))}
                             for a in reply.get("assets", [])}
            self.position = sum((Decimal(p.get("positionAmt", "0")) for p in reply.get("positions", [])
                                 if p.get("symbol") == self.symbol), Decimal(0))
            return self.balances
        self.balances = {b["asset"]: {"free": Decimal(b["free"]), "locked": Decimal(b["locked"])}
                         for b in reply.get("balances", [])}
        return self.balances

    # ---- internals ----

    def _apply(self, event) -> Outcome:
        self.journal(event)
        outcome = self.tracker.apply(event, self.venue_now_ns())
        self.counts[f"applied_{outcome.applied.value}"] += 1
        return outcome

    async def _follow(self, outcome: Outcome) -> Outcome:
        if outcome.follow_up is FollowUp.QUERY:
            return await self.query(outcome.client_id)
        if outcome.follow_up is FollowUp.SEND_CANCEL:
            order = self.tracker.get(outcome.client_id)
            if order is not None and order.state is OrderState.CANCEL_PENDING:
                try:
                    reply = await self._idempotent("cancel_order", Priority.HIGH, self.endpoints.cancel,
                                                   {"symbol": self.symbol, "origClientOrderId": outcome.client_id},
                                                   ws_method=self.endpoints.ws_cancel)
                except CcxtOrderNotFound as e:
                    return await self.query(self._apply(
                        CancelRejected(outcome.client_id, self.venue_now_ns(), _reason(e))).client_id)
                return self._apply(self._update_of(reply))
        return outcome

    def _update_of(self, reply: dict) -> VenueUpdate:
        assert self.grid is not None
        client_id = reply.get("origClientOrderId") or reply["clientOrderId"]
        status = _STATUS.get(reply.get("status", ""), VenueStatus.NEW)
        filled = parse_qty(self.grid, reply.get("executedQty", "0"))
        last_px = 0
        if filled:
            average = Decimal(reply.get("avgPrice") or "0")  # USD-M; spot: from the cumulative quote
            if not average:
                quote = Decimal(reply.get("cummulativeQuoteQty") or reply.get("cumQuote") or "0")
                average = quote / (Decimal(filled) * self.grid.lot_size)
            last_px = int(average / self.grid.tick_size)
        return VenueUpdate(client_id, status, filled, self.venue_now_ns(), int(reply.get("orderId", -1)),
                           last_px, "")

    async def _idempotent(self, cost_name: str, priority: Priority, method: str | Callable[[dict], Awaitable],
                          params: dict, *, ws_method: str = "") -> Any:
        """Retry an idempotent request on 5xx / timeout / 429 with exponential backoff and jitter."""
        delay_s = self.config.backoff_initial_s
        for attempt in range(self.config.max_attempts):
            try:
                return await self._raw(cost_name, priority, method, params, ws_method=ws_method)
            except DDoSProtection:
                self._on_rate_limited()
                if attempt + 1 == self.config.max_attempts:
                    raise
            except InvalidNonce:
                await self.sync_time()
                if attempt + 1 == self.config.max_attempts:
                    raise
            except NetworkError:
                if attempt + 1 == self.config.max_attempts:
                    raise
                self.counts[f"retry_{cost_name}"] += 1
                await asyncio.sleep(self.rng.uniform(0, delay_s))  # backoff with full jitter
                delay_s = min(delay_s * 2, self.config.backoff_max_s)
        raise AssertionError("unreachable")

    async def _raw(self, cost_name: str, priority: Priority, method: str | Callable[[dict], Awaitable], params: dict,
                   *, ws_method: str = "") -> Any:
        await self._admit(self.costs[cost_name], priority)
        return await self._order_call(cost_name, ws_method, method, params)

    def _rest(self, name: str) -> Callable[[dict], Awaitable]:
        return getattr(self.exchange, name)

    async def _order_call(self, cost_name: str, ws_method: str, rest_method: str | Callable[[dict], Awaitable],
                          params: dict) -> Any:
        """Over the WebSocket API when it is up (its errors raised as ccxt's REST exceptions, so one
        classification serves both), else over REST. Counted by path: `ws_<name>` / `rest_<name>`."""
        ws = self.ws
        sent_ns = self.venue_now_ns()
        if ws_method and ws is not None and ws.up:
            try:
                result, rate_limits = await ws.request(ws_method, dict(params))
            except WsApiDown:
                self.counts["ws_down_fallbacks"] += 1
            except WsApiUnknown as e:
                self.counts[f"ws_{cost_name}"] += 1
                raise RequestTimeout(str(e)) from None
            except WsApiRequestError as e:
                self.counts[f"ws_{cost_name}"] += 1
                self._apply_ws_limits(e.data if isinstance(e.data, list) else [], sent_ns)
                raise ccxt_error(e) from None
            else:
                self.counts[f"ws_{cost_name}"] += 1
                self._apply_ws_limits(rate_limits, sent_ns)
                return result
        self.counts[f"rest_{cost_name}"] += 1
        method = self._rest(rest_method) if isinstance(rest_method, str) else rest_method
        try:
            return await self._call_with_timeout(method(dict(params)))
        finally:
            self._after_reply(sent_ns)

    def _apply_ws_limits(self, rate_limits: list, sent_ns: int) -> None:
        if self.limiter is not None and rate_limits:
            self.limiter.apply_usage_headers(usage_headers(rate_limits), sent_ns)

    async def _admit(self, cost: Cost, priority: Priority) -> None:
        if self.limiter is None:
            return
        deadline_ns = self.venue_now_ns() + int(self.config.max_wait_s * NS)
        for _ in range(1000):
            decision = self.limiter.decide(cost, priority, self.venue_now_ns())
            if decision.verdict is Verdict.ALLOW:
                return
            if decision.verdict is Verdict.SHED or decision.retry_at_ns > deadline_ns:
                self.counts["shed"] += 1
                raise RequestShedError(f"rate limiter: {decision.blocking} would hold this request too long")
            self.counts["delayed"] += 1
            await self._wait_until(decision.retry_at_ns)
        raise RequestShedError("rate limiter: no slot after 1000 decisions")

    async def _wait_until(self, venue_ns: int) -> None:
        wait_s = (venue_ns - self.venue_now_ns()) / NS
        if wait_s > 0:
            await asyncio.sleep(min(wait_s, self.config.max_wait_s))  # a deadline, not a state

    async def _call_with_timeout(self, awaitable: Awaitable) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.config.timeout_s + 1.0)  # ccxt has its own too
        except asyncio.TimeoutError:
            raise RequestTimeout("binance adapter: request timed out") from None

    def _after_reply(self, sent_ns: int) -> None:
        headers = self.exchange.last_response_headers
        if self.limiter is not None and headers:
            self.limiter.apply_usage_headers(headers, sent_ns)

    def _on_rate_limited(self) -> None:
        headers = self.exchange.last_response_headers or {}
        retry_after = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            retry_after_s = float(retry_after) if retry_after is not None else self.config.backoff_max_s
        except ValueError:
            retry_after_s = self.config.backoff_max_s
        self.counts["rate_limited"] += 1
        log.warning("binance adapter %s: rate limited by the venue, Retry-After %.1f s", self.symbol, retry_after_s)
        if self.limiter is not None:
            self.limiter.on_rate_limited(int(retry_after_s * NS), self.venue_now_ns())


def grid_from_exchange_info(info: dict, symbol: str) -> TickGrid:
    for entry in info.get("symbols", []):
        if entry.get("symbol") == symbol:
            filters = {f["filterType"]: f for f in entry.get("filters", [])}
            tick = Decimal(filters["PRICE_FILTER"]["tickSize"]).normalize()
            lot = Decimal(filters["LOT_SIZE"]["stepSize"]).normalize()
            decimals = int(entry.get("baseAssetPrecision", 8))
            return grid_from_sizes(symbol, f"{tick:f}", f"{lot:f}", decimals, decimals)
    raise ValueError(f"exchangeInfo has no symbol {symbol!r}")


def ccxt_error(error: WsApiRequestError) -> Exception:
    """A ws-api error as the ccxt exception its REST twin raises (BINANCE.md §9's mapping)."""
    text = f'binance {msgspec.json.encode({"code": error.code, "msg": error.msg}).decode()}'
    match ws_error_kind(error.status, error.code):
        case ErrorKind.RATE_LIMITED:
            return DDoSProtection(text)
        case ErrorKind.TIMESTAMP:
            return InvalidNonce(text)
        case ErrorKind.UNKNOWN:
            return RequestTimeout(text)
        case ErrorKind.NOT_FOUND:
            return CcxtOrderNotFound(text)
    return ExchangeError(text)


def _reason(error: Exception) -> str:
    """The venue's {code, msg} text from a ccxt exception (its message ends with the JSON body)."""
    text = str(error)
    at = text.find("{")
    return text[at:] if at >= 0 else type(error).__name__

