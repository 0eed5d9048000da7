"""`mm venue --market usdm`'s websockets: the listenKey user-data stream and the WebSocket API.

User-data stream (BINANCE.md §7.2): `POST /fapi/v1/listenKey` (processes.venue_usdm.UsdmSide) makes or
returns the account's live key and extends it by `ttl_s` (Binance: 60 min), `PUT` extends it (-1125 when
there is none), `DELETE` closes it. Connect `/private/ws?listenKey=K` (raw events), `/private/stream?
listenKey=K` (`{"stream": K, "data": ...}`), optionally `&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE`, or the
legacy `/ws/K`; an unknown key is refused (404). Every state change and fill of the account's orders,
however placed (REST, ws-fapi, the countdown), is pushed as `ORDER_TRADE_UPDATE` (x = NEW, TRADE,
CANCELED, EXPIRED, AMENDMENT); each fill then an `ACCOUNT_UPDATE` (reason ORDER: the wallet and the
symbol's position). When a key expires, its connections get `listenKeyExpired` and nothing more.
The spot user-data faults (processes.venue_ws_api.WsApiFaults: `drop_event_every`,
`duplicate_event_every`, `reorder_event_every`) apply to these events too (`listenKeyExpired` excepted).

WebSocket API at `/ws-fapi/v1` on the streams' port: processes.venue_ws_api.WsApi (the same request
shapes, HMAC over the sorted params, weights, 429/418, faults) with USD-M's methods: `ping`, `time`,
`session.status`, `depth`, `ticker.book`, `ticker.price` (the venue's book and tape), `order.place`, `order.cancel`, `order.modify`, `order.status`, `account.status`,
`account.position` / `v2/account.position`, and `userDataStream.start|ping|stop` (`apiKey` only).
`session.logon` is not served: Binance accepts it only with Ed25519 keys, and this venue has HMAC keys.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import msgspec
from picows import WSMsgType, WSUpgradeRequest

from mm.ticks import format_qty
from processes.venue_market import _Connection
from processes.venue_orders import MS, VenueError, VenueOrder, key_secret
from processes.venue_usdm import UsdmSide, order_tif
from processes.venue_ws_api import EventFaults, WsApi, WsApiError, WsApiFaults

E_NO_LISTEN_KEY = -1125
MSG_NO_LISTEN_KEY = "This listenKey does not exist."
EXPIRY_TICK_S = 0.05
PRIVATE_PATHS = ("/private/ws", "/private/stream")


class ListenKeys:
    """One listenKey per API key, each alive until `expires` (monotonic s) unless kept alive."""

    def __init__(self, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError(f"'listen_key_ttl' must be > 0 s, was {ttl_s}")
        self.ttl_s = ttl_s
        self._of_account: dict[str, tuple[str, float]] = {}  # api key -> (listen key, expires)
        self._account_of: dict[str, str] = {}  # listen key -> api key

    def create(self, api_key: str) -> str:
        live = self._live(api_key)
        listen_key = live if live is not None else secrets.token_hex(32)
        self._of_account[api_key] = (listen_key, time.monotonic() + self.ttl_s)
        self._account_of[listen_key] = api_key
        return listen_key

    def keep_alive(self, api_key: str) -> str:
        live = self._live(api_key)
        if live is None:
            raise VenueError(400, E_NO_LISTEN_KEY, MSG_NO_LISTEN_KEY)
        self._of_account[api_key] = (live, time.monotonic() + self.ttl_s)
        return live

    def close(self, api_key: str) -> None:
        entry = self._of_account.pop(api_key, None)
        if entry is not None:
            self._account_of.pop(entry[0], None)

    def account_of(self, listen_key: str) -> str | None:
        api_key = self._account_of.get(listen_key)
        return api_key if api_key is not None and self._live(api_key) == listen_key else None

    def live_key(self, api_key: str) -> str | None:
        return self._live(api_key)

    def expire(self, now_mono: float) -> list[str]:
        """Drop the keys past their time; returns them."""
        gone = [(a, k) for a, (k, expires) in self._of_account.items() if expires <= now_mono]
        for api_key, listen_key in gone:
            del self._of_account[api_key]
            self._account_of.pop(listen_key, None)
        return [k for _, k in gone]

    def _live(self, api_key: str) -> str | None:
        entry = self._of_account.get(api_key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]


class UserDataConnection(_Connection):
    """A `/private` (or legacy `/ws/<key>`) connection bound to one listenKey; no market streams."""

    def __init__(self, hub: UsdmUserData, listen_key: str, is_combined: bool, events: frozenset[str] | None) -> None:
        super().__init__(hub.market, [], is_combined)
        self.hub = hub
        self.listen_key = listen_key
        self.events = events

    def on_ws_connected(self, transport) -> None:
        super().on_ws_connected(transport)
        self.hub.connections.add(self)

    def on_ws_disconnected(self, transport) -> None:
        super().on_ws_disconnected(transport)
        self.hub.connections.discard(self)

    def push(self, event: dict) -> None:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        if self.events is not None and event["e"] not in self.events and event["e"] != "listenKeyExpired":
            return
        body = {"stream": self.listen_key, "data": event} if self.is_combined else event
        transport.send(WSMsgType.TEXT, msgspec.json.encode(body))


def order_trade_update(side: UsdmSide, execution_type: str, order: VenueOrder, trade: dict | None,
                       now_ns: int) -> dict:
    engine = side.engine
    grid = engine.grids[order.symbol]
    reply = engine.usdm_order_json(order, with_time=False)
    buys, sells = engine._side_notional(order.api_key, order.symbol)
    now_ms = now_ns // MS
    event = {"s": order.symbol, "c": order.client_id, "S": reply["side"], "o": reply["type"], "f": order_tif(order),
             "q": reply["origQty"], "p": reply["price"], "ap": reply["avgPrice"], "sp": "0", "x": execution_type,
             "X": order.status, "i": order.order_id, "l": format_qty(grid, 0), "z": reply["executedQty"],
             "L": "0", "N": engine.usdm[order.api_key].asset, "n": "0", "T": now_ms, "t": 0,
             "b": f"{buys:.8f}", "a": f"{sells:.8f}", "m": False, "R": reply["reduceOnly"], "wt": "CONTRACT_PRICE",
             "ot": reply["origType"], "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0,
             "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0}
    if trade is not None:
        event |= {"l": trade["qty"], "L": trade["price"], "n": trade["commission"], "N": trade["commissionAsset"],
                  "T": trade["time"], "t": trade["id"], "m": trade["isMaker"], "rp": trade["realizedPnl"]}
    if execution_type == "EXPIRED":
        event["er"] = "2" if order.tif == "IOC" else "0"
    return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": now_ms, "o": event}


def account_update(side: UsdmSide, api_key: str, symbol: str, realized_total: float, now_ns: int) -> dict:
    engine = side.engine
    account = engine.usdm[api_key]
    position = engine.position_json(api_key, symbol, now_ns, v3=True)
    now_ms = now_ns // MS
    return {"e": "ACCOUNT_UPDATE", "E": now_ms, "T": now_ms, "a": {
        "m": "ORDER",
        "B": [{"a": account.asset, "wb": f"{account.wallet:.8f}", "cw": f"{account.wallet:.8f}", "bc": "0"}],
        "P": [{"s": symbol, "pa": position["positionAmt"], "ep": position["entryPrice"],
               "bep": position["breakEvenPrice"], "cr": f"{realized_total:.8f}", "up": position["unRealizedProfit"],
               "mt": "cross", "iw": "0", "ps": "BOTH"}]}}


class UsdmUserData:
    """listenKeys, the `/private` connections, and the engine's events rendered for them."""

    def __init__(self, market, side: UsdmSide, *, ttl_s: float = 3600.0, faults: WsApiFaults | None = None) -> None:
        self.market = market
        self.side = side
        self.keys = ListenKeys(ttl_s)
        self.connections: set[UserDataConnection] = set()
        self.counts: Counter[str] = Counter()
        self.event_faults = EventFaults(faults or WsApiFaults(), self.counts)
        self._realized: dict[tuple[str, str], float] = {}  # (api key, symbol) -> accumulated realized PnL

    def mount(self) -> None:
        """Before `market.start()`."""
        self.side.listen_keys = self.keys
        for path in PRIVATE_PATHS:
            self.market.ws_routes[path] = self._private_listener
        self.market.private_route = self._legacy_listener
        self.market.timers.append(self._expiry_timer)
        self.side.engine.listeners.append(self.on_order_event)

    def set_faults(self, faults: WsApiFaults) -> None:
        """Switch the user-data faults at run time (tests); their count starts again."""
        self.event_faults.reset(faults)

    def _private_listener(self, request: WSUpgradeRequest) -> UserDataConnection | None:
        parts = urlsplit(request.path.decode("latin-1"))
        query = parse_qs(parts.query)
        listen_key = query.get("listenKey", [""])[0]
        if self.keys.account_of(listen_key) is None:
            self.counts["refused_listen_key"] += 1
            return None
        events = query.get("events")
        wanted = frozenset(e for e in events[0].split("/") if e) if events else None
        return UserDataConnection(self, listen_key, parts.path.endswith("/stream"), wanted)

    def _legacy_listener(self, request: WSUpgradeRequest, listen_key: str) -> UserDataConnection | None:
        if self.keys.account_of(listen_key) is None:
            return None
        return UserDataConnection(self, listen_key, False, None)

    async def _expiry_timer(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_TICK_S)
            for listen_key in self.keys.expire(time.monotonic()):
                self.counts["listen_keys_expired"] += 1
                event = {"e": "listenKeyExpired", "E": str(time.time_ns() // MS), "listenKey": listen_key}
                for conn in tuple(self.connections):
                    if conn.listen_key == listen_key:
                        conn.push(event)

    def on_order_event(self, execution_type: str, order: VenueOrder, trade: dict | None, now_ns: int,
                       cancel_id: str) -> None:
        """MatchingEngine listener: ORDER_TRADE_UPDATE, and after a fill the ACCOUNT_UPDATE it caused."""
        if trade is not None:
            key = (order.api_key, order.symbol)
            self._realized[key] = self._realized.get(key, 0.0) + float(trade["realizedPnl"])
        listen_key = self.keys.live_key(order.api_key)
        if not listen_key or not any(c.listen_key == listen_key for c in self.connections):
            return
        events = [order_trade_update(self.side, execution_type, order, trade, now_ns)]
        if trade is not None:
            events.append(account_update(self.side, order.api_key, order.symbol,
                                         self._realized[(order.api_key, order.symbol)], now_ns))
        for event in events:
            self.event_faults.push(order.api_key, event, lambda e, key=listen_key: self._send(key, e))

    def _send(self, listen_key: str, event: dict) -> None:
        self.counts[f"events_{event['e']}"] += 1
        for conn in tuple(self.connections):
            if conn.listen_key == listen_key:
                conn.push(event)


class UsdmWsApi(WsApi):
    """`/ws-fapi/v1`: the spot WebSocket API's machinery with USD-M's methods and replies."""

    path = "/ws-fapi/v1"
    methods = {
        "ping": ("", 1, "NONE"),
        "time": ("", 1, "NONE"),
        "session.status": ("", 1, "NONE"),
        "depth": ("", 5, "NONE"),
        "ticker.book": ("", 2, "NONE"),
        "ticker.price": ("", 1, "NONE"),
        "order.place": ("new", 0, "SIGNED"),
        "order.cancel": ("cancel", 1, "SIGNED"),
        "order.modify": ("modify", 0, "SIGNED"),
        "order.status": ("query", 1, "SIGNED"),
        "account.status": ("account", 5, "SIGNED"),
        "account.position": ("position_risk", 5, "SIGNED"),
        "v2/account.position": ("position_risk", 5, "SIGNED"),
        "userDataStream.start": ("", 1, "NONE"),
        "userDataStream.ping": ("", 1, "NONE"),
        "userDataStream.stop": ("", 1, "NONE"),
    }
    order_methods = frozenset({"order.place", "order.modify"})

    def __init__(self, market, side: UsdmSide, faults: WsApiFaults | None = None) -> None:
        super().__init__(market, side, faults)
        self.side: UsdmSide = side
        positions = side._positions(v3=True)
        self._handlers = {
            "ping": lambda conn, api_key, params, now_ns: {},
            "time": lambda conn, api_key, params, now_ns: {"serverTime": now_ns // MS},
            "session.status": self._session_status,
            "depth": lambda conn, api_key, params, now_ns: side.depth_json(params, now_ns // MS),
            "ticker.book": lambda conn, api_key, params, now_ns: side.book_ticker_json(params, now_ns // MS),
            "ticker.price": lambda conn, api_key, params, now_ns: market.tape.ticker_price(params, now_ns // MS),
            "order.place": lambda conn, api_key, params, now_ns: side._new(api_key, params, now_ns),
            "order.cancel": lambda conn, api_key, params, now_ns: side._cancel(api_key, params, now_ns),
            "order.modify": lambda conn, api_key, params, now_ns: side._modify(api_key, params, now_ns),
            "order.status": lambda conn, api_key, params, now_ns: side._query(api_key, params, now_ns),
            "account.status": lambda conn, api_key, params, now_ns: side.engine.account_json(api_key, now_ns),
            "account.position": lambda conn, api_key, params, now_ns: positions(api_key, params, now_ns),
            "v2/account.position": lambda conn, api_key, params, now_ns: positions(api_key, params, now_ns),
            "userDataStream.start": self._stream("start"),
            "userDataStream.ping": self._stream("ping"),
            "userDataStream.stop": self._stream("stop"),
        }

    def mount(self) -> None:
        self.market.ws_routes[self.path] = self._listener_for

    def _stream(self, verb: str):
        def handle(conn, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
            api_key = params.get("apiKey", "")
            key_secret(self.side.keys, api_key)
            keys = self.side.listen_keys
            if keys is None:
                raise WsApiError(400, E_NO_LISTEN_KEY, MSG_NO_LISTEN_KEY)
            if verb == "start":
                return {"listenKey": keys.create(api_key)}
            if verb == "ping":
                return {"listenKey": keys.keep_alive(api_key)}
            keys.close(api_key)
            return {}

        return handle
