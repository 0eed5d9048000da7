"""`mm venue`'s Binance spot WebSocket API at `/ws-api/v3` on the streams' port (BINANCE.md §7.1).

Requests `{"id", "method", "params"}` in text frames, one reply each: `{"id", "status", "result"}` or
`{"id", "status", "error": {"code", "msg"[, "data"]}}`, both with `rateLimits` (REQUEST_WEIGHT of the IP;
ORDERS of the account on order placement) unless `returnRateLimits` is false (per request, or for the
connection with `?returnRateLimits=false` in the URL). Methods (a `v3/` prefix is accepted):
`ping`, `time`, `session.status`, `order.place`, `order.cancel`, `order.cancelReplace`, `order.status`,
`openOrders.status`, `openOrders.cancelAll`, `account.status`, `allOrders`, `myTrades`, `trades.recent`,
`trades.historical`, `klines`, `userDataStream.subscribe.signature`, `userDataStream.unsubscribe`.
Anything else: 400 -1020.

The order methods run the REST order side's own actions (processes.venue_orders.OrderSide: the matching
engine, filters, balances, error codes), its per-IP weight and per-key ORDERS counters (one budget for
REST and ws-api, as on Binance), and its key/timing checks. The history methods read the same state:
`allOrders` and `myTrades` the matching engine's orders and fills (MatchingEngine.all_orders / my_trades:
Binance's startTime / endTime (24 h at most) / orderId / fromId / limit rules), `trades.recent` and
`trades.historical` (unsigned, `fromId` on the latter) the venue's public tape (processes.venue_tape).
Signed requests carry `apiKey`, `timestamp`, `signature` in `params`; the HMAC is over the params sorted
by name without `signature`, raw text (mm.ws_api.signature_payload, BINANCE.md §3.1 vector 4). Over a
limit: 429 with `error.data.retryAfter` = epoch ms of the window's end; banned: 418 with the ban's end,
then the connection is closed.

User-data stream: after `userDataStream.subscribe.signature` (reply `{"subscriptionId": n}`, one per
account per connection, else -2035), every state change and fill of that account's orders, however
placed (REST or ws-api), is pushed as `{"subscriptionId": n, "event": {...}}`: `executionReport`
(x = NEW, TRADE, CANCELED, EXPIRED) then `outboundAccountPosition` of the symbol's two assets;
`UserDataHub.adjust_balance` (a deposit/withdrawal by the operator or a test) pushes `balanceUpdate`.
`userDataStream.unsubscribe` (optional `subscriptionId`; none active: -2036) stops it.

Connection rules: the connection is one of the market side's connections, so its timers apply (a
server ping every `ping_interval_s` with a payload, dropped if the pong is late by `pong_timeout_s`,
cut at `max_connection_s` = 24 h; `disconnect_every_s` drops it too); client pings are answered.

Faults: the order side's `OrderFaults` (latency, 503 -1007, never answered, applied-but-unanswered) reach
the ws-api methods under the same endpoint names; `WsApiFaults` adds: `drop_event_every` N (every N-th
user-data event is not sent), `duplicate_event_every` N (every N-th is sent twice), `reorder_event_every`
N (every N-th is held back and sent after the account's next one: two adjacent events swapped; sent
alone after `REORDER_HOLD_S` when no next one comes), `close_every_requests` N (every N-th request drops
the connection unanswered and unapplied), `unknown_after_accept_every` N (every N-th accepted order is
applied, then `unknown_kind`: "5xx" answers 503 -1007, "close" drops the connection, "silent" never
answers). The user-data faults (class EventFaults) serve USD-M's listenKey stream too, counted as
`events_dropped`, `events_duplicated`, `events_reordered`.
Secrets never reach a log line or a reply: requests are logged by method and status only.

`GET /_mm/counts` on the REST port (test / paper only, like the Hyperliquid venue's `/_mm/state`): the
venue's counters (market, engine, ws-api, user-data: the faults a run met), no account data.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, urlsplit

import msgspec
from aiohttp import web
from picows import WSMsgType, WSTransport, WSUpgradeRequest

from mm.ticks import format_qty
from mm.ws_api import is_every, is_valid_request_id, signature_payload, text_params
from processes.venue_market import _Connection
from processes.venue_orders import (
    E_SIGNATURE,
    MS,
    MSG_5XX,
    MSG_BAD_SIGNATURE,
    OrderSide,
    VenueError,
    VenueOrder,
    _text,
    check_timing,
    key_secret,
    order_price,
)

log = logging.getLogger(__name__)

PATH = "/ws-api/v3"
COUNTS_PATH = "/_mm/counts"
CONNECT_WEIGHT = 2  # connecting to the WebSocket API costs 2 weight (BINANCE.md §4)
E_UNSUPPORTED = -1020
E_INVALID_JSON = -1135
E_SUBSCRIPTION_ACTIVE = -2035
E_SUBSCRIPTION_INACTIVE = -2036
UNKNOWN_KINDS = ("5xx", "close", "silent")


REORDER_HOLD_S = 1.0  # a held-back user-data event goes out alone after this long without a next one


class WsApiFaults(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    drop_event_every: int = 0
    duplicate_event_every: int = 0
    reorder_event_every: int = 0
    close_every_requests: int = 0
    unknown_after_accept_every: int = 0
    unknown_kind: str = "5xx"

    def __post_init__(self) -> None:
        for name in ("drop_event_every", "duplicate_event_every", "reorder_event_every", "close_every_requests",
                     "unknown_after_accept_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"'{name}' must be >= 0, was {getattr(self, name)}")
        if self.unknown_kind not in UNKNOWN_KINDS:
            raise ValueError(f"'unknown_kind' must be one of {UNKNOWN_KINDS}, was {self.unknown_kind!r}")


class WsApiError(VenueError):
    """A refused ws-api request; its `data` goes into `error.data`."""


# method -> (order side's endpoint name for faults, weight, security: "NONE" | "SIGNED" | "USER_STREAM")
METHODS: dict[str, tuple[str, int, str]] = {
    "ping": ("", 1, "NONE"),
    "time": ("", 1, "NONE"),
    "session.status": ("", 2, "NONE"),
    "order.place": ("new", 1, "SIGNED"),
    "order.cancel": ("cancel", 1, "SIGNED"),
    "order.cancelReplace": ("new", 1, "SIGNED"),
    "order.status": ("query", 4, "SIGNED"),
    "openOrders.status": ("open_orders", 6, "SIGNED"),
    "openOrders.cancelAll": ("cancel_all", 1, "SIGNED"),
    "account.status": ("account", 20, "SIGNED"),
    "allOrders": ("all_orders", 20, "SIGNED"),
    "myTrades": ("my_trades", 20, "SIGNED"),
    "trades.recent": ("", 25, "NONE"),
    "trades.historical": ("", 25, "NONE"),
    "klines": ("", 2, "NONE"),
    "userDataStream.subscribe.signature": ("", 2, "SIGNED"),
    "userDataStream.unsubscribe": ("", 2, "NONE"),
}
ORDER_METHODS = frozenset({"order.place", "order.cancelReplace"})
OPEN_ORDERS_ALL_WEIGHT = 80
MY_TRADES_BY_ORDER_WEIGHT = 5  # myTrades with orderId


def request_weight(method: str, params: Mapping[str, object], weight: int) -> int:
    """A method's weight where its params change it (openOrders.status without symbol, myTrades with orderId)."""
    if method == "openOrders.status" and "symbol" not in params:
        return OPEN_ORDERS_ALL_WEIGHT
    if method == "myTrades" and "orderId" in params:
        return MY_TRADES_BY_ORDER_WEIGHT
    return weight


# ---- user-data events -----------------------------------------------------------------------------


def execution_report(side: OrderSide, execution_type: str, order: VenueOrder, trade: dict | None, now_ns: int,
                     cancel_id: str, event_seq: int) -> dict:
    """The `executionReport` of one state change or fill (BINANCE.md §7.1's field table)."""
    engine = side.engine
    grid = engine.grids[order.symbol]
    zero = "0.00000000"
    is_cancel = execution_type in ("CANCELED", "EXPIRED")
    client_id = order.client_id
    if is_cancel and execution_type == "CANCELED":
        client_id = cancel_id or f"cancel-{order.order_id}"
    event = {
        "e": "executionReport", "E": now_ns // MS, "s": order.symbol, "c": client_id,
        "S": "BUY" if order.side > 0 else "SELL", "o": order.type, "f": order.tif,
        "q": format_qty(grid, order.qty_lot), "p": order_price(grid, order), "P": zero, "F": zero,
        "g": -1, "C": order.client_id if execution_type == "CANCELED" else "",
        "x": execution_type, "X": order.status, "r": "NONE", "i": order.order_id,
        "l": zero, "z": format_qty(grid, order.filled_lot), "L": zero, "n": "0", "N": None,
        "T": now_ns // MS, "t": -1, "I": event_seq, "w": order.is_open, "m": False, "M": False,
        "O": order.time_ms, "Z": _text(order.quote_filled), "Y": zero, "Q": zero, "W": order.time_ms,
        "V": "NONE",
    }
    if trade is not None:
        event.update({"l": trade["qty"], "L": trade["price"], "n": trade["commission"],
                      "N": trade["commissionAsset"], "T": trade["time"], "t": trade["id"], "m": trade["isMaker"],
                      "M": True, "Y": trade["quoteQty"]})
    return event


def account_position(side: OrderSide, api_key: str, assets: tuple[str, ...], now_ns: int) -> dict:
    account = side.engine.accounts[api_key]
    zero = Decimal(0)
    return {"e": "outboundAccountPosition", "E": now_ns // MS, "u": now_ns // MS,
            "B": [{"a": a, "f": _text(account.free.get(a, zero)), "l": _text(account.locked.get(a, zero))}
                  for a in assets]}


class EventFaults:
    """The user-data faults of one venue: every N-th event (all accounts counted together) dropped,
    sent twice, or held back and sent after that account's next event."""

    def __init__(self, faults: WsApiFaults, counts: Counter[str]) -> None:
        self.faults = faults
        self.counts = counts
        self._events = 0
        self._held: dict[str, tuple[dict, Callable[[dict], None], asyncio.TimerHandle]] = {}  # account -> held

    def reset(self, faults: WsApiFaults) -> None:
        """New switches; the count starts again (a held event is sent now)."""
        self.faults = faults
        self._events = 0
        for account in tuple(self._held):
            self._release(account)

    def push(self, account: str, event: dict, send: Callable[[dict], None]) -> None:
        """Send `event` (to `account`'s listeners, by `send`), or not, or twice, or later."""
        self._events += 1
        faults = self.faults
        held = self._held.pop(account, None)
        if held is not None:
            held[2].cancel()
        if is_every(self._events, faults.drop_event_every):
            self.counts["events_dropped"] += 1
        elif held is None and is_every(self._events, faults.reorder_event_every):
            self.counts["events_reordered"] += 1
            handle = asyncio.get_running_loop().call_later(REORDER_HOLD_S, self._release, account)
            self._held[account] = (event, send, handle)
            return
        else:
            send(event)
            if is_every(self._events, faults.duplicate_event_every):
                self.counts["events_duplicated"] += 1
                send(event)
        if held is not None:
            held[1](held[0])  # after the one that came next

    def _release(self, account: str) -> None:
        event, send, handle = self._held.pop(account)
        handle.cancel()
        send(event)


class UserDataHub:
    """Who listens to which account, and the events of the matching engine rendered for them."""

    def __init__(self, side: OrderSide, faults: WsApiFaults) -> None:
        self.side = side
        self.counts: Counter[str] = Counter()
        self.event_faults = EventFaults(faults, self.counts)
        self._subscribers: dict[str, dict[WsApiConnection, int]] = {}  # api key -> {connection: subscription id}
        self._seq = 0

    def subscribe(self, conn: WsApiConnection, api_key: str, subscription_id: int) -> None:
        self._subscribers.setdefault(api_key, {})[conn] = subscription_id

    def unsubscribe(self, conn: WsApiConnection, api_key: str) -> None:
        subscribers = self._subscribers.get(api_key)
        if subscribers is not None:
            subscribers.pop(conn, None)

    def on_order_event(self, execution_type: str, order: VenueOrder, trade: dict | None, now_ns: int,
                       cancel_id: str) -> None:
        """MatchingEngine listener: one executionReport, then the balances it moved."""
        if not self._subscribers.get(order.api_key):
            return
        self._seq += 1
        self._push(order.api_key, execution_report(self.side, execution_type, order, trade, now_ns, cancel_id,
                                                   self._seq))
        rules = self.side.engine.symbols[order.symbol]
        self._push(order.api_key, account_position(self.side, order.api_key,
                                                   (rules.base_asset, rules.quote_asset), now_ns))

    def adjust_balance(self, api_key: str, asset: str, delta: str, now_ns: int) -> None:
        """Credit (or debit, negative) an account's free balance, as a deposit or withdrawal would:
        pushes `balanceUpdate` and `outboundAccountPosition`. Raises ValueError on a bad amount or key."""
        try:
            amount = Decimal(delta)
        except InvalidOperation:
            raise ValueError(f"balance delta {delta!r} is not a decimal") from None
        account = self.side.engine.accounts.get(api_key)
        if account is None:
            raise ValueError("unknown API key")
        asset = asset.upper()
        if account.free.get(asset, Decimal(0)) + amount < 0:
            raise ValueError(f"{asset}: a withdrawal of {-amount} exceeds the free balance")
        account.move(asset, amount)
        account.locked.setdefault(asset, Decimal(0))
        self._push(api_key, {"e": "balanceUpdate", "E": now_ns // MS, "a": asset, "d": _text(amount),
                             "T": now_ns // MS})
        self._push(api_key, account_position(self.side, api_key, (asset,), now_ns))

    def _push(self, api_key: str, event: dict) -> None:
        if self._subscribers.get(api_key):
            self.event_faults.push(api_key, event, lambda e: self._send(api_key, e))

    def _send(self, api_key: str, event: dict) -> None:
        for conn, subscription_id in tuple(self._subscribers.get(api_key, {}).items()):
            conn.send_json({"subscriptionId": subscription_id, "event": event})
            self.counts[f"events_{event['e']}"] += 1


# ---- the connection and the dispatcher ------------------------------------------------------------


class WsApiConnection(_Connection):
    """One ws-api client: a market-side connection (pings, pong deadline, 24 h cut) with no streams,
    whose text frames are requests."""

    def __init__(self, api: WsApi, return_rate_limits: bool) -> None:
        super().__init__(api.market, [], False)
        self.api = api
        self.return_rate_limits = return_rate_limits
        self.ip = ""
        self.connected_ms = time.time_ns() // MS
        self.subscriptions: dict[int, str] = {}  # subscription id -> api key
        self.next_subscription_id = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        peer = transport.underlying_transport.get_extra_info("peername")
        self.ip = peer[0] if peer else ""
        super().on_ws_connected(transport)
        self.api._on_connected(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        self.api._on_disconnected(self)

    def _on_control(self, body: bytes) -> None:
        self.api.on_request(self, body)

    def send_json(self, body: object) -> None:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        transport.send(WSMsgType.TEXT, msgspec.json.encode(body))

    def drop(self) -> None:
        """TCP close without a close frame (a fault, or a ban)."""
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect(graceful=False)


class WsApi:
    """The WebSocket API of the local venue, riding on the market side's websocket server and the
    order side's engine. `mount()` before `market.start()`."""

    path = PATH
    methods = METHODS  # processes.venue_usdm_ws serves USD-M's /ws-fapi/v1 with its own tables
    order_methods = ORDER_METHODS

    def __init__(self, market, side: OrderSide, faults: WsApiFaults | None = None) -> None:
        self.market = market
        self.side = side
        self.faults = faults or WsApiFaults()
        self.hub = UserDataHub(side, self.faults)
        self.counts: Counter[str] = Counter()
        self.connections: set[WsApiConnection] = set()
        self._requests = 0
        self._accepted_orders = 0
        self._decoder = msgspec.json.Decoder()
        self._handlers: dict[str, Callable] = {
            "ping": lambda conn, api_key, params, now_ns: {},
            "time": lambda conn, api_key, params, now_ns: {"serverTime": now_ns // MS},
            "session.status": self._session_status,
            "order.place": self._order_place,
            "order.cancel": lambda conn, api_key, params, now_ns: side._cancel_order(api_key, params, now_ns),
            "order.cancelReplace": lambda conn, api_key, params, now_ns: side._cancel_replace(api_key, params, now_ns),
            "order.status": lambda conn, api_key, params, now_ns: side._query_order(api_key, params, now_ns),
            "openOrders.status": lambda conn, api_key, params, now_ns: side._open_orders(api_key, params, now_ns),
            "openOrders.cancelAll": lambda conn, api_key, params, now_ns: side._cancel_all(api_key, params, now_ns),
            "account.status": lambda conn, api_key, params, now_ns: side._account(api_key, params, now_ns),
            "allOrders": lambda conn, api_key, params, now_ns: side._all_orders(api_key, params, now_ns),
            "myTrades": lambda conn, api_key, params, now_ns: side._my_trades(api_key, params, now_ns),
            "trades.recent": lambda conn, api_key, params, now_ns: market.tape.recent_trades(params),
            "trades.historical": lambda conn, api_key, params, now_ns: market.tape.recent_trades(
                params, is_historical=True),
            "klines": lambda conn, api_key, params, now_ns: market.tape.klines(params, 1000),
            "userDataStream.subscribe.signature": self._subscribe,
            "userDataStream.unsubscribe": self._unsubscribe,
        }

    def __repr__(self) -> str:
        return f"WsApi(connections={len(self.connections)})"

    def mount(self) -> None:
        self.market.ws_routes[self.path] = self._listener_for
        self.side.engine.listeners.append(self.hub.on_order_event)

    def set_faults(self, faults: WsApiFaults) -> None:
        """Switch faults at run time (tests); the fault counts start again."""
        self.faults = faults
        self.hub.event_faults.reset(faults)
        self._requests = 0
        self._accepted_orders = 0

    def _listener_for(self, request: WSUpgradeRequest) -> WsApiConnection:
        query = parse_qs(urlsplit(request.path.decode("latin-1")).query)
        return_rate_limits = query.get("returnRateLimits", ["true"])[0].lower() != "false"
        return WsApiConnection(self, return_rate_limits)

    def _on_connected(self, conn: WsApiConnection) -> None:
        self.connections.add(conn)
        self.counts["ws_api_connections"] += 1
        error = self.side._limits.charge_weight(conn.ip, CONNECT_WEIGHT, time.time_ns() / 1e9)
        if error is not None and error.status == 418:
            self.counts["ws_api_refused_banned"] += 1
            conn.drop()

    def _on_disconnected(self, conn: WsApiConnection) -> None:
        self.connections.discard(conn)
        for api_key in set(conn.subscriptions.values()):
            self.hub.unsubscribe(conn, api_key)
        conn.subscriptions.clear()

    # -- requests --

    def on_request(self, conn: WsApiConnection, body: bytes) -> None:
        latency_ms = self.side.faults.latency_ms
        if latency_ms:
            # the same delay for every request keeps them in order
            asyncio.get_running_loop().call_later(latency_ms / 1000, self._handle, conn, body)
        else:
            self._handle(conn, body)

    def _handle(self, conn: WsApiConnection, body: bytes) -> None:
        if conn.transport is None or conn.transport.is_disconnected:
            return
        self._requests += 1
        if is_every(self._requests, self.faults.close_every_requests):
            self.counts["fault_close_request"] += 1
            conn.drop()
            return
        now_ns = time.time_ns()
        try:
            request = self._decoder.decode(body)
        except msgspec.DecodeError:
            request = None
        if not isinstance(request, dict):
            self.counts["bad_json"] += 1
            self._reply_error(conn, None, WsApiError(400, E_INVALID_JSON, "Invalid JSON Request"), "", now_ns)
            return
        request_id = request.get("id")
        if not is_valid_request_id(request_id):
            self._reply_error(conn, None, WsApiError(400, -1100, "Illegal characters found in parameter 'id'."),
                              "", now_ns)
            return
        method = request.get("method")
        params = request.get("params", {})
        if isinstance(method, str) and method.startswith("v3/"):
            method = method[3:]
        if not isinstance(method, str) or method not in self.methods:
            self.counts["unknown_method"] += 1
            self._reply_error(conn, request_id, WsApiError(400, E_UNSUPPORTED, "This operation is not supported."),
                              "", now_ns)
            return
        if not isinstance(params, dict) or any(isinstance(v, (dict, list)) for v in params.values()):
            self._reply_error(conn, request_id, WsApiError(400, -1102, "Parameter 'params' is malformed."),
                              "", now_ns)
            return
        self.counts[f"requests_{method}"] += 1
        return_rate_limits = params.get("returnRateLimits", conn.return_rate_limits) is not False
        self._dispatch(conn, request_id, method, params, return_rate_limits, now_ns)

    def _dispatch(self, conn: WsApiConnection, request_id: object, method: str, params: dict,
                  return_rate_limits: bool, now_ns: int) -> None:
        endpoint, weight, security = self.methods[method]
        weight = request_weight(method, params, weight)
        text = text_params(params)
        limits = self.side._limits
        api_key = ""
        rate_limits = return_rate_limits
        try:
            error = limits.charge_weight(conn.ip, weight, now_ns / 1e9)
            if error is not None:
                raise error
            if security == "SIGNED":
                api_key = self._authenticate(params, text, now_ns)
            fault = self.side._draw_fault(endpoint) if endpoint else ""
            if fault == "timeout":
                return  # never answered, not applied
            if fault == "5xx" and not self.side.faults.is_5xx_applied:
                raise WsApiError(503, -1007, MSG_5XX)
            if method in self.order_methods:
                error = limits.charge_order(conn.ip, api_key, now_ns / 1e9)
                if error is not None:
                    raise error
            result = self._handlers[method](conn, api_key, text, now_ns)
            if fault == "drop":
                return  # applied, never answered
            if fault == "5xx":
                raise WsApiError(503, -1007, MSG_5XX)
            if method in self.order_methods and self._unknown_after_accept(conn, request_id, api_key, now_ns,
                                                                      rate_limits):
                return
        except VenueError as e:
            self.counts[f"error_{e.code}"] += 1
            self._reply_error(conn, request_id, e, api_key, now_ns, orders=method in self.order_methods,
                              rate_limits=rate_limits)
            if e.status == 418:
                conn.drop()  # a banned IP is disconnected
            return
        reply: dict = {"id": request_id, "status": 200, "result": result}
        if rate_limits:
            reply["rateLimits"] = self._rate_limits(conn.ip, api_key, now_ns, orders=method in self.order_methods)
        conn.send_json(reply)

    def _authenticate(self, params: Mapping[str, object], text: Mapping[str, str], now_ns: int) -> str:
        api_key = text.get("apiKey", "")
        secret = key_secret(self.side.keys, api_key)
        signature = text.get("signature", "")
        expected = hmac.new(secret.encode(), signature_payload(params).encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(expected, signature.lower()):
            raise VenueError(400, E_SIGNATURE, MSG_BAD_SIGNATURE)
        check_timing(text, now_ns)
        return api_key

    def _unknown_after_accept(self, conn: WsApiConnection, request_id: object, api_key: str, now_ns: int,
                              rate_limits: bool) -> bool:
        """The fault: this accepted order's outcome is hidden from the client. True when it took it."""
        self._accepted_orders += 1
        if not is_every(self._accepted_orders, self.faults.unknown_after_accept_every):
            return False
        kind = self.faults.unknown_kind
        self.counts[f"fault_unknown_{kind}"] += 1
        if kind == "5xx":
            self._reply_error(conn, request_id, WsApiError(503, -1007, MSG_5XX), api_key, now_ns,
                              orders=True, rate_limits=rate_limits)
        elif kind == "close":
            conn.drop()
        return True

    # -- replies --

    def _rate_limits(self, ip: str, api_key: str, now_ns: int, *, orders: bool) -> list[dict]:
        now_s = now_ns / 1e9
        limits = self.side._limits
        weight = limits.weight_headers(ip, now_s)
        order_counts = limits.order_headers(api_key, now_s) if orders and api_key else {}
        entries = []
        for rule in self.side.limits.rate_limits:
            counts = weight if rule.kind == "REQUEST_WEIGHT" else order_counts
            if rule.header in counts:
                entries.append({"rateLimitType": rule.kind, "interval": rule.interval,
                                "intervalNum": rule.interval_num, "limit": rule.limit,
                                "count": int(counts[rule.header])})
        return entries

    def _reply_error(self, conn: WsApiConnection, request_id: object, error: VenueError, api_key: str,
                     now_ns: int, *, orders: bool = False, rate_limits: bool = True) -> None:
        body: dict = {"code": error.code, "msg": error.msg}
        data = error.data
        retry_after_s = getattr(error, "retry_after_s", None)
        if retry_after_s is not None:  # 429 / 418: when to retry, as epoch ms (BINANCE.md §4)
            server_ms = now_ns // MS
            if error.status == 418:
                banned_until = self.side._limits.banned_until.get(conn.ip, now_ns / 1e9)
                retry_ms = math.ceil(banned_until * 1000)
            else:
                retry_ms = server_ms + int(retry_after_s) * 1000
            data = {"serverTime": server_ms, "retryAfter": retry_ms}
        if data is not None:
            body["data"] = data
        reply: dict = {"id": request_id, "status": error.status, "error": body}
        if rate_limits:
            reply["rateLimits"] = self._rate_limits(conn.ip, api_key, now_ns, orders=orders)
        conn.send_json(reply)

    # -- methods --

    def _session_status(self, conn: WsApiConnection, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        return {"apiKey": None, "authorizedSince": None, "connectedSince": conn.connected_ms,
                "returnRateLimits": conn.return_rate_limits, "serverTime": now_ns // MS,
                "userDataStream": bool(conn.subscriptions)}

    def _order_place(self, conn: WsApiConnection, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        return self.side._new_order(api_key, params, now_ns)

    def _subscribe(self, conn: WsApiConnection, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        if api_key in conn.subscriptions.values():
            raise WsApiError(400, E_SUBSCRIPTION_ACTIVE, "User Data Stream subscription already active.")
        subscription_id = conn.next_subscription_id
        conn.next_subscription_id += 1
        conn.subscriptions[subscription_id] = api_key
        self.hub.subscribe(conn, api_key, subscription_id)
        self.counts["subscriptions"] += 1
        return {"subscriptionId": subscription_id}

    def _unsubscribe(self, conn: WsApiConnection, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        wanted = params.get("subscriptionId")
        if wanted is None:
            ids = list(conn.subscriptions)
        else:
            try:
                ids = [int(wanted)] if int(wanted) in conn.subscriptions else []
            except ValueError:
                raise WsApiError(400, -1100, "Illegal characters found in parameter 'subscriptionId'.") from None
        if not ids:
            raise WsApiError(400, E_SUBSCRIPTION_INACTIVE, "User Data Stream subscription not active.")
        for subscription_id in ids:
            self.hub.unsubscribe(conn, conn.subscriptions.pop(subscription_id))
        return {}


# ---- command line ---------------------------------------------------------------------------------


def add_ws_api_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(f"WebSocket API ({PATH} on --port; faults)")
    group.add_argument("--drop-event-every", type=int, default=0,
                       help="fault: every N-th user-data event is not sent")
    group.add_argument("--duplicate-event-every", type=int, default=0,
                       help="fault: every N-th user-data event is sent twice")
    group.add_argument("--reorder-event-every", type=int, default=0,
                       help="fault: every N-th user-data event is sent after the account's next one")
    group.add_argument("--ws-api-close-every", type=int, default=0,
                       help="fault: every N-th ws-api request drops the connection, unanswered and unapplied")
    group.add_argument("--unknown-after-accept-every", type=int, default=0,
                       help="fault: every N-th accepted ws-api order is applied but its outcome is hidden")
    group.add_argument("--unknown-kind", choices=UNKNOWN_KINDS, default="5xx",
                       help="how the outcome is hidden: 503 -1007, the connection dropped, or no answer")


def ws_api_faults_from_args(args: argparse.Namespace) -> WsApiFaults:
    """The command line's ws-api and user-data faults (spot and USD-M); raises ValueError on a bad one."""
    return WsApiFaults(drop_event_every=args.drop_event_every, duplicate_event_every=args.duplicate_event_every,
                       reorder_event_every=args.reorder_event_every, close_every_requests=args.ws_api_close_every,
                       unknown_after_accept_every=args.unknown_after_accept_every, unknown_kind=args.unknown_kind)


def mount_counts(market, sources: Mapping[str, Counter[str]]) -> None:
    """`GET /_mm/counts` on the venue's REST app: {source: {name: count}}. Before `market.start()`."""

    async def counts(request: web.Request) -> web.Response:
        return web.json_response({name: dict(counter) for name, counter in sources.items()})

    market.app_hooks.append(lambda app: app.router.add_get(COUNTS_PATH, counts))


def ws_api_from_args(args: argparse.Namespace, market, side: OrderSide) -> WsApi:
    api = WsApi(market, side, ws_api_faults_from_args(args))
    api.mount()
    mount_counts(market, {"market": market.counts, "engine": side.engine.counts, "ws_api": api.counts,
                          "user_data": api.hub.counts})
    return api
