"""`mm venue`'s order side: Binance spot's REST order API on loopback, matched by mm.fill_model.

Mounted on the market side's aiohttp app (`add_order_routes`, or `OrderSide.mount`):
`GET /api/v3/exchangeInfo`; `POST / DELETE / GET /api/v3/order` (new, cancel, query by `orderId` or
`origClientOrderId`); `POST /api/v3/order/cancelReplace` (both halves in the reply, or in the error's
`data`); `GET / DELETE /api/v3/openOrders`; `GET /api/v3/account`; `GET /api/v3/myTrades`;
`GET /api/v3/allOrders`; `GET /sapi/v1/system/status`, `GET /sapi/v1/asset/tradeFee` (for a client whose
sapi URL is the venue); the sapi wallet routes (WALLET_ROUTES) answer 400 -1020.
LIMIT and LIMIT_MAKER (post-only: -2010 if it would cross), timeInForce GTC / IOC / FOK; MARKET by
`quantity` or `quoteOrderQty` (the whole lots that quote buys or sells, best price first; then, as with
`quantity`, MatchingEngine.market_reach: an IOC to the far end of the venue's book). Parameters come
from the query string and the form body; a name in both takes the query's value (BINANCE.md §2.1).

Security (BINANCE.md §3.1): `X-MBX-APIKEY` names a key of `MM_VENUE_KEYS` (`key:secret[,...]`);
the HMAC-SHA256 is checked over the RAW (still percent-encoded) query text followed by the body,
without the `signature` parameter; then `timestamp < serverTime + 1000` and
`serverTime - timestamp <= recvWindow` (default 5000, at most 60000) or -1021.

Limits (BINANCE.md §4): per-IP REQUEST_WEIGHT and per-key ORDERS in fixed windows aligned to the
clock, as `rateLimits` in exchangeInfo say; every reply carries `X-MBX-USED-WEIGHT-<n><l>`, accepted
new orders `X-MBX-ORDER-COUNT-<n><l>`. Over a limit: 429 (-1003 weight, -1015 orders) with
`Retry-After` (seconds to the window's end); `ban_after_429s` more requests while limited: 418 and an
IP ban of `ban_s` (Retry-After = seconds left).

Matching: one FillModel per symbol (no latency: the request has arrived when we handle it), fed by
the market side's frames through `OrderSide.on_frame(symbol, frame)` (mm.capture DepthUpdate /
TradeFrame / AggTradeFrame) and seeded from the venue's own book at the first request. Balances
(`free`, `locked` per asset, Decimal) lock on accept and move with fills; commissions in the quote
asset.

Faults (`OrderFaults`, off by default; each request to a faulted endpoint draws once from a seeded
RNG, at most `max_faults` times in all when > 0): `latency_ms` before handling; `error_5xx_ratio`:
HTTP 503 -1007 "execution status unknown", the request applied first when `is_5xx_applied`;
`timeout_ratio`: never answered and not applied; `drop_ratio`: applied, never answered. An
unanswered request is held until the app shuts down or `hang_s` passes.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hmac
import hashlib
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from mm.capture import AggTradeFrame, DepthUpdate, TradeFrame
from mm.errors import OffGridError
from mm.fees import venue_tier
from mm.fill_model import Accepted, Canceled, FillModel, Filled, Rejected
from mm.queue_models import QUEUE_MODELS, QueueModel, queue_model
from mm.ticks import TickGrid, format_price, format_qty, grid_from_sizes, parse_levels
from mm.trade_tape import NewTrades
from mm.ws_api import Half, cancel_replace_outcome, should_attempt_new

log = logging.getLogger(__name__)

MS = 1_000_000
KEYS_ENV = "MM_VENUE_KEYS"
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
FUTURE_TOLERANCE_MS = 1000
SEED_DEPTH = 1000  # levels per side copied from the venue's book into a new matching engine
HISTORY_LIMIT, HISTORY_MAX_LIMIT = 500, 1000  # allOrders / myTrades `limit`: default, most
SPOT_HISTORY_RANGE_MS = 24 * 3600 * 1000  # spot allOrders / myTrades: startTime..endTime at most 24 h apart
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}

# Binance routes ccxt calls that this venue has no state for (it is no wallet): 400 -1020, not a 404
WALLET_ROUTES = ("/sapi/v1/capital/deposit/address", "/sapi/v1/capital/deposit/hisrec",
                 "/sapi/v1/capital/withdraw/history", "/sapi/v1/capital/withdraw/apply", "/sapi/v1/asset/transfer")

# Request weights (BINANCE.md §2.2, spot)
WEIGHTS = {"exchange_info": 20, "new": 1, "cancel": 1, "query": 4, "open_orders": 6,
           "open_orders_all": 80, "cancel_all": 1, "account": 20, "my_trades": 20,
           "all_orders": 20, "system_status": 1, "trade_fee": 1}

# -- errors: (HTTP status, code, message) as Binance writes them (BINANCE.md §6) --
E_FILTER = -1013
E_TIMESTAMP = -1021
E_SIGNATURE = -1022
E_REJECTED = -2010
E_CANCEL_REJECTED = -2011
E_NO_SUCH_ORDER = -2013
E_KEY_FORMAT = -2014
E_KEY_REJECTED = -2015
MSG_WOULD_TAKE = "Order would immediately match and take."
MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_DUPLICATE = "Duplicate order sent."
MSG_NO_LIQUIDITY = "Order book liquidity is less than LOT_SIZE filter minimum quantity."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_BAD_SIGNATURE = "Signature for this request is not valid."
MSG_BAD_KEY = "Invalid API-key, IP, or permissions for action."
MSG_5XX = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
_CLIENT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class VenueError(Exception):
    """A request the venue refuses: becomes `{"code", "msg"}` with `status`."""

    def __init__(self, status: int, code: int, msg: str, data: dict | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.data = data  # `data` of the error body (cancelReplace's two halves), when set


# ---- configuration ---------------------------------------------------------------------------


class SymbolRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One symbol's exchangeInfo entry: assets and the PRICE_FILTER / LOT_SIZE / NOTIONAL rules."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str = "0.01"
    lot_size: str = "0.00001"
    min_price: str = "0.01"
    max_price: str = "1000000"
    min_qty: str = "0.00001"
    max_qty: str = "9000"
    min_notional: str = "5"
    max_notional: str = "9000000"
    decimals: int = 8  # Binance spot writes 8 decimals

    @property
    def grid(self) -> TickGrid:
        return grid_from_sizes(self.symbol, self.tick_size, self.lot_size, self.decimals, self.decimals)


class RateLimitRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: str          # REQUEST_WEIGHT | ORDERS
    interval: str      # SECOND | MINUTE | HOUR | DAY
    interval_num: int
    limit: int

    def __post_init__(self) -> None:
        if self.kind not in ("REQUEST_WEIGHT", "ORDERS"):
            raise ValueError(f"'kind' must be REQUEST_WEIGHT or ORDERS, was {self.kind!r}")
        if self.interval not in _INTERVAL_S:
            raise ValueError(f"'interval' must be one of {sorted(_INTERVAL_S)}, was {self.interval!r}")
        if self.interval_num <= 0 or self.limit <= 0:
            raise ValueError(f"'interval_num' and 'limit' must be > 0, were {self.interval_num}, {self.limit}")

    @property
    def window_s(self) -> int:
        return _INTERVAL_S[self.interval] * self.interval_num

    @property
    def header(self) -> str:
        what = "WEIGHT" if self.kind == "REQUEST_WEIGHT" else "ORDER-COUNT"
        prefix = "X-MBX-USED-" if self.kind == "REQUEST_WEIGHT" else "X-MBX-"
        return f"{prefix}{what}-{self.interval_num}{_LETTER[self.interval]}"


DEFAULT_RATE_LIMITS = (
    RateLimitRule(kind="REQUEST_WEIGHT", interval="MINUTE", interval_num=1, limit=6000),
    RateLimitRule(kind="ORDERS", interval="SECOND", interval_num=10, limit=100),
    RateLimitRule(kind="ORDERS", interval="DAY", interval_num=1, limit=200000),
)


class OrderLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rate_limits: tuple[RateLimitRule, ...] = DEFAULT_RATE_LIMITS
    ban_after_429s: int = 5    # requests answered 429 in one window before the IP is banned (418)
    ban_s: float = 120.0       # Binance bans for 2 minutes first

    def __post_init__(self) -> None:
        if self.ban_after_429s < 1 or self.ban_s <= 0:
            raise ValueError(f"'ban_after_429s' must be >= 1 and 'ban_s' > 0, were {self.ban_after_429s}, {self.ban_s}")


class OrderFaults(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    latency_ms: float = 0.0
    error_5xx_ratio: float = 0.0
    is_5xx_applied: bool = True
    timeout_ratio: float = 0.0
    drop_ratio: float = 0.0
    endpoints: tuple[str, ...] = ("new", "cancel", "query", "open_orders", "cancel_all", "account")
    max_faults: int = 0        # 0: no cap
    hang_s: float = 30.0       # an unanswered request is released (503) after this long
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("error_5xx_ratio", "timeout_ratio", "drop_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"'{name}' must be in [0, 1], was {value}")
        if self.error_5xx_ratio + self.timeout_ratio + self.drop_ratio > 1.0:
            raise ValueError("'error_5xx_ratio' + 'timeout_ratio' + 'drop_ratio' must be <= 1")
        if self.latency_ms < 0 or self.hang_s <= 0 or self.max_faults < 0:
            raise ValueError("'latency_ms' and 'max_faults' must be >= 0, 'hang_s' > 0")
        unknown = set(self.endpoints) - set(WEIGHTS)
        if unknown:
            raise ValueError(f"'endpoints' has unknown names {sorted(unknown)}; known: {sorted(WEIGHTS)}")


def parse_venue_keys(text: str) -> dict[str, str]:
    """`key:secret[,key:secret...]` -> {key: secret}; raises ValueError (never showing a secret)."""
    keys: dict[str, str] = {}
    for number, pair in enumerate(p for p in text.split(",") if p.strip()):
        key, sep, secret = pair.strip().partition(":")
        if not sep or not key or not secret:
            raise ValueError(f"{KEYS_ENV}: pair {number + 1} is not 'key:secret'")
        keys[key] = secret
    return keys


# ---- signature ---------------------------------------------------------------------------------


def strip_signature(raw_query: str, body: str) -> tuple[str, str]:
    """(signed payload = query‖body without the `signature` parameter, the signature or "")."""
    for part_index, part in enumerate((raw_query, body)):
        pieces = part.split("&") if part else []
        for i, piece in enumerate(pieces):
            if piece.startswith("signature="):
                rest = "&".join(pieces[:i] + pieces[i + 1:])
                signature = piece[len("signature="):]
                return (rest + body, signature) if part_index == 0 else (raw_query + rest, signature)
    return raw_query + body, ""


def key_secret(keys: Mapping[str, str], api_key: str) -> str:
    """The secret of `api_key`, or -2014 (malformed key) / -2015 (unknown key); shared by REST and ws-api."""
    if not api_key or len(api_key) > 128 or not api_key.isascii() or not api_key.isprintable():
        raise VenueError(401, E_KEY_FORMAT, "API-key format invalid.")
    secret = keys.get(api_key)
    if secret is None:
        raise VenueError(401, E_KEY_REJECTED, MSG_BAD_KEY)
    return secret


def check_timing(params: Mapping[str, str], now_ns: int) -> None:
    """`timestamp < serverTime + 1000` and `serverTime - timestamp <= recvWindow`, else -1021 (BINANCE.md §3.1)."""
    try:
        timestamp_ms = int(params["timestamp"])
    except (KeyError, ValueError):
        raise VenueError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.") from None
    try:
        recv_window_ms = float(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except ValueError:
        raise VenueError(400, -1100, "Illegal characters found in parameter 'recvWindow'.") from None
    if not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS:
        raise VenueError(400, -1131, "recvWindow must be less than 60000")
    server_ms = now_ns / MS
    if timestamp_ms >= server_ms + FUTURE_TOLERANCE_MS:
        raise VenueError(400, E_TIMESTAMP, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - timestamp_ms > recv_window_ms:
        raise VenueError(400, E_TIMESTAMP, "Timestamp for this request is outside of the recvWindow.")


def verify_request(secret: str, raw_query: str, body: str) -> bool:
    payload, signature = strip_signature(raw_query, body)
    if not signature:
        return False
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


# ---- the venue's orders and balances -------------------------------------------------------------


class VenueOrder:
    __slots__ = ("symbol", "order_id", "client_id", "side", "type", "tif", "px_tick", "qty_lot",
                 "filled_lot", "quote_filled", "status", "time_ms", "update_ms", "api_key", "fills")

    def __init__(self, symbol: str, order_id: int, client_id: str, side: int, order_type: str, tif: str,
                 px_tick: int, qty_lot: int, now_ms: int, api_key: str) -> None:
        self.symbol = symbol
        self.order_id = order_id
        self.client_id = client_id
        self.side = side
        self.type = order_type
        self.tif = tif
        self.px_tick = px_tick
        self.qty_lot = qty_lot
        self.filled_lot = 0
        self.quote_filled = Decimal(0)
        self.status = "NEW"
        self.time_ms = now_ms
        self.update_ms = now_ms
        self.api_key = api_key
        self.fills: list[dict] = []

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


class Account:
    """Balances of one API key: free and locked per asset."""

    def __init__(self, balances: Mapping[str, str]) -> None:
        self.free: dict[str, Decimal] = {a: Decimal(v) for a, v in balances.items()}
        self.locked: dict[str, Decimal] = {a: Decimal(0) for a in balances}

    def lock(self, asset: str, amount: Decimal) -> bool:
        if self.free.get(asset, Decimal(0)) < amount:
            return False
        self.free[asset] = self.free.get(asset, Decimal(0)) - amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount
        return True

    def unlock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, Decimal(0)) - amount
        self.free[asset] = self.free.get(asset, Decimal(0)) + amount

    def move(self, asset: str, amount: Decimal, *, from_locked: bool = False) -> None:
        book = self.locked if from_locked else self.free
        book[asset] = book.get(asset, Decimal(0)) + amount


DEFAULT_BALANCES = {"BTC": "10", "USDT": "1000000", "ETH": "100", "BNB": "100"}


class MatchingEngine:
    """Every symbol's FillModel, the venue's order records and the accounts: pure bookkeeping on
    `now_ns`; the HTTP handlers call it."""

    client_id_chars = _CLIENT_ID_CHARS  # USD-M allows more (processes.venue_usdm)

    def __init__(self, symbols: Mapping[str, SymbolRules], *, keys: Mapping[str, str],
                 balances: Mapping[str, str] | None = None, maker_fee_bps: float = 0.0,
                 taker_fee_bps: float = 0.0, seed_book=None, queue: QueueModel | None = None) -> None:
        """`queue`: how the matching engine places a cancel at our price (mm/queue_models.py);
        None: `ratio` with half of each unexplained shrink from ahead."""
        self.symbols = dict(symbols)
        self.queue = queue if queue is not None else queue_model("ratio", ratio=0.5)
        self.grids = {s: r.grid for s, r in self.symbols.items()}
        self.models: dict[str, FillModel] = {}
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        self.accounts = {key: Account(balances or DEFAULT_BALANCES) for key in keys}
        self.orders: dict[int, VenueOrder] = {}
        self.by_client: dict[tuple[str, str], int] = {}  # (symbol, client id) -> latest order id
        self._model_ids: dict[tuple[str, str], int] = {}  # (symbol, model client id) -> order id
        self._next_order_id = 1
        self._next_trade_id = 1
        self._seed_book = seed_book  # callable(symbol) -> (bids, asks) text levels, or None
        self.counts: Counter[str] = Counter()
        self.trades: list[dict] = []
        # callables(execution_type, order, trade | None, now_ns, cancel_id) on every state change and fill of
        # a recorded order, however it was placed: "NEW", "TRADE" (trade = the myTrades entry), "CANCELED",
        # "EXPIRED"; cancel_id names the cancel request ("" when it had none). The user-data stream uses it.
        self.listeners: list = []

    def model(self, symbol: str, now_ns: int) -> FillModel:
        model = self.models.get(symbol)
        if model is None:
            rules = self.symbols[symbol]
            grid = self.grids[symbol]
            model = FillModel(latency_ns=0, maker_fee_bps=self.maker_fee_bps, taker_fee_bps=self.taker_fee_bps,
                              queue=self.queue, tick_size=float(grid.tick_size), lot_size=float(grid.lot_size))
            self.models[symbol] = model
            if self._seed_book is not None:
                seeded = self._seed_book(symbol)
                if seeded is not None:
                    bids, asks = seeded
                    try:
                        model.on_snapshot(now_ns, parse_levels(grid, bids), parse_levels(grid, asks))
                    except (ValueError, OffGridError):
                        self.counts["seed_off_grid"] += 1
            del rules
        return model

    # -- market data --

    def on_depth(self, symbol: str, bids: list, asks: list, now_ns: int) -> None:
        if symbol not in self.symbols or symbol not in self.models:
            return  # a model is seeded from the full book when first used
        grid = self.grids[symbol]
        try:
            parsed_bids, parsed_asks = parse_levels(grid, bids), parse_levels(grid, asks)
        except (ValueError, OffGridError):  # a level off the symbol's lot grid: the diff is left out
            self.counts["market_off_grid"] += 1
            return
        self._apply(self.models[symbol].on_depth(now_ns, parsed_bids, parsed_asks), symbol, now_ns)

    def on_trade(self, symbol: str, px_text: str, qty_text: str, is_buyer_maker: bool, now_ns: int) -> None:
        if symbol not in self.models:
            return
        grid = self.grids[symbol]
        try:
            px, qty = parse_levels(grid, [(px_text, qty_text)])[0]
        except (ValueError, OffGridError):
            self.counts["market_off_grid"] += 1
            return
        events = self.models[symbol].on_trade(now_ns, px, qty, -1 if is_buyer_maker else 1)
        self._apply(events, symbol, now_ns)

    # -- requests --

    def new_order(self, api_key: str, params: Mapping[str, str], now_ns: int) -> VenueOrder:
        symbol = params.get("symbol", "").upper()
        rules = self.symbols.get(symbol)
        if rules is None:
            raise VenueError(400, -1121, "Invalid symbol.")
        side_text = params.get("side", "")
        if side_text not in ("BUY", "SELL"):
            raise VenueError(400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        order_type = params.get("type", "")
        if order_type not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise VenueError(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce", "")
        if order_type == "LIMIT":
            if tif not in ("GTC", "IOC", "FOK"):
                raise VenueError(400, -1115, "Invalid timeInForce.")
        elif tif:
            raise VenueError(400, -1106, "Parameter 'timeInForce' sent when not required.")
        grid = self.grids[symbol]
        side = 1 if side_text == "BUY" else -1
        if order_type == "MARKET":
            if "price" in params:
                raise VenueError(400, -1106, "Parameter 'price' sent when not required.")
            best, price = self.market_reach(symbol, side, now_ns)
            if "quoteOrderQty" in params:
                if "quantity" in params:
                    raise VenueError(400, -1106, "Parameter 'quantity' sent when not required.")
                qty = self._qty_for_quote(symbol, side, price, _decimal(params, "quoteOrderQty"), now_ns)
            else:
                qty = _decimal(params, "quantity")
            _check_filters(rules, grid, best, qty)
        else:
            price = _decimal(params, "price")
            qty = _decimal(params, "quantity")
            _check_filters(rules, grid, price, qty)
        px_tick = int(price / grid.tick_size)
        qty_lot = int(qty / grid.lot_size)
        client_id = params.get("newClientOrderId") or f"venue-{self._next_order_id}"
        if not 1 <= len(client_id) <= 36 or not set(client_id) <= self.client_id_chars:
            raise VenueError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.")
        existing = self.by_client.get((symbol, client_id))
        if existing is not None and self.orders[existing].is_open:
            raise VenueError(400, E_REJECTED, MSG_DUPLICATE)
        self._reserve(api_key, symbol, side, price, qty)
        model = self.model(symbol, now_ns)
        order_id = self._next_order_id
        self._next_order_id += 1
        model_id = f"{order_id}"  # FillModel never reuses ids; the venue's ids are unique already
        order = VenueOrder(symbol, order_id, client_id, side, order_type, tif or "GTC", px_tick, qty_lot,
                           now_ns // MS, api_key)
        self._model_ids[(symbol, model_id)] = order_id
        is_killed = tif == "FOK" and not _fills_whole(model, now_ns, side, px_tick, qty_lot)
        events = [] if is_killed else model.submit(now_ns, model_id, side, px_tick, qty_lot,
                                                   order_type == "LIMIT_MAKER")
        if any(type(e) is Rejected for e in events):
            self._unreserve(api_key, symbol, side, price, qty)
            del self._model_ids[(symbol, model_id)]
            reason = next(e.reason for e in events if type(e) is Rejected)
            raise VenueError(400, E_REJECTED, MSG_WOULD_TAKE if "post-only" in reason else reason)
        self.orders[order_id] = order
        self.by_client[(symbol, client_id)] = order_id
        self.counts["orders_accepted"] += 1
        self._apply(events, symbol, now_ns)
        if is_killed:  # recorded, never in the book: NEW then EXPIRED with nothing filled, as on Binance
            self._notify("NEW", order, None, now_ns)
            self._release(order)
            order.status = "EXPIRED"
            self._notify("EXPIRED", order, None, now_ns)
        elif (tif in ("IOC", "FOK") or order_type == "MARKET") and order.is_open:
            self._apply(model.cancel(now_ns, model_id), symbol, now_ns, expire=True)
        return order

    def _qty_for_quote(self, symbol: str, side: int, reach: Decimal, quote: Decimal, now_ns: int) -> Decimal:
        """A MARKET `quoteOrderQty`'s quantity: the whole lots the book, best price first, gives for at most
        `quote` (tried on a copy of the model: the levels the order will take)."""
        grid = self.grids[symbol]
        trial = copy.deepcopy(self.model(symbol, now_ns))
        most = int(Decimal(self.symbols[symbol].max_qty) / grid.lot_size)
        left, lots = quote, 0
        for event in trial.submit(now_ns, "quote trial", side, int(reach / grid.tick_size), most, False):
            if type(event) is not Filled:
                continue
            lot_cost = Decimal(event.px_tick) * grid.tick_size * grid.lot_size
            take = min(event.qty_lot, int(left / lot_cost))
            lots += take
            left -= take * lot_cost
            if take < event.qty_lot:
                break
        return lots * grid.lot_size

    def market_reach(self, symbol: str, side: int, now_ns: int) -> tuple[Decimal, Decimal]:
        """A MARKET order's (best, farthest) price on the other side of the venue's book: it is matched as an
        IOC limit at the farthest, taking the book best price first; what the book cannot fill expires."""
        self.model(symbol, now_ns)
        book = self._seed_book(symbol) if self._seed_book is not None else None
        levels = (book[1] if side > 0 else book[0]) if book is not None else []
        if not levels:
            raise VenueError(400, E_REJECTED, MSG_NO_LIQUIDITY)
        return Decimal(levels[0][0]), Decimal(levels[-1][0])

    def find(self, params: Mapping[str, str]) -> VenueOrder | None:
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        order_id_text = params.get("orderId")
        client_id = params.get("origClientOrderId")
        if order_id_text is None and client_id is None:
            raise VenueError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id_text is not None:
            try:
                order = self.orders.get(int(order_id_text))
            except ValueError:
                raise VenueError(400, -1100, "Illegal characters found in parameter 'orderId'.") from None
            if order is None or order.symbol != symbol or (client_id is not None and order.client_id != client_id):
                return None
            return order
        order_id = self.by_client.get((symbol, client_id or ""))
        return self.orders.get(order_id) if order_id is not None else None

    def cancel(self, api_key: str, params: Mapping[str, str], now_ns: int) -> VenueOrder:
        order = self.find(params)
        if order is None or order.api_key != api_key or not order.is_open:
            raise VenueError(400, E_CANCEL_REJECTED, MSG_UNKNOWN_ORDER)
        self._cancel(order, now_ns, params.get("newClientOrderId", ""))
        return order

    def cancel_all(self, api_key: str, symbol: str, now_ns: int) -> list[VenueOrder]:
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        open_orders = self.open_orders(api_key, symbol)
        if not open_orders:
            raise VenueError(400, E_CANCEL_REJECTED, MSG_UNKNOWN_ORDER)
        for order in open_orders:
            self._cancel(order, now_ns)
        return open_orders

    def open_orders(self, api_key: str, symbol: str | None) -> list[VenueOrder]:
        return [o for o in self.orders.values()
                if o.is_open and o.api_key == api_key and (symbol is None or o.symbol == symbol)]

    def all_orders(self, api_key: str, params: Mapping[str, str], max_range_ms: int | None = None) -> list[VenueOrder]:
        """allOrders (spot and USD-M): this key's orders on `symbol`, any status, ascending by id: within
        [startTime, endTime] by `time` (`orderId` is then ignored), else from `orderId` on, else the most recent;
        `limit` of them (default 500, max 1000). Spot passes `max_range_ms` (24 h, -1127 past it)."""
        symbol = self._history_symbol(params)
        numbers = _history_numbers(params, ("orderId", "startTime", "endTime", "limit"), max_range_ms)
        orders = [o for o in self.orders.values() if o.api_key == api_key and o.symbol == symbol]
        return _page(orders, numbers, "orderId", lambda o: o.order_id, lambda o: o.time_ms)

    def my_trades(self, api_key: str, params: Mapping[str, str], max_range_ms: int | None = None) -> list[dict]:
        """myTrades (spot REST and ws-api): this key's fills on `symbol`, ascending by trade id, only those of
        `orderId` when it is given: within [startTime, endTime] by `time`, else from trade id `fromId` on, else
        the most recent; `limit` of them (default 500, max 1000). A time bound with `fromId` or `orderId`: -1128."""
        symbol = self._history_symbol(params)
        numbers = _history_numbers(params, ("orderId", "fromId", "startTime", "endTime", "limit"), max_range_ms)
        if ("startTime" in numbers or "endTime" in numbers) and ("fromId" in numbers or "orderId" in numbers):
            raise VenueError(400, -1128, "Combination of optional parameters invalid.")
        order_id = numbers.get("orderId")
        trades = [t for t in self.trades if t["_key"] == api_key and t["symbol"] == symbol
                  and (order_id is None or t["orderId"] == order_id)]
        picked = _page(trades, numbers, "fromId", lambda t: t["id"], lambda t: t["time"])
        return [{k: v for k, v in t.items() if k != "_key"} for t in picked]

    def _history_symbol(self, params: Mapping[str, str]) -> str:
        symbol = params.get("symbol", "").upper()
        if not symbol:
            raise VenueError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        return symbol

    def _cancel(self, order: VenueOrder, now_ns: int, cancel_id: str = "") -> None:
        model = self.model(order.symbol, now_ns)
        self._apply(model.cancel(now_ns, str(order.order_id)), order.symbol, now_ns, cancel_id=cancel_id)

    # -- fill model events -> venue orders and balances --

    def _apply(self, events: list, symbol: str, now_ns: int, expire: bool = False, cancel_id: str = "") -> None:
        for event in events:
            order_id = self._model_ids.get((symbol, event.client_id))
            order = self.orders.get(order_id) if order_id is not None else None
            if order is None:
                continue
            match event:
                case Filled():
                    self._on_fill(order, event, now_ns)
                    self._notify("TRADE", order, self.trades[-1], now_ns)
                case Canceled():
                    self._release(order)
                    order.status = "EXPIRED" if expire else "CANCELED"
                    order.update_ms = now_ns // MS
                    self._notify(order.status, order, None, now_ns, cancel_id)
                case Accepted():
                    self._notify("NEW", order, None, now_ns)
                case Rejected():
                    pass

    def _notify(self, execution_type: str, order: VenueOrder, trade: dict | None, now_ns: int,
                cancel_id: str = "") -> None:
        for listener in self.listeners:
            listener(execution_type, order, trade, now_ns, cancel_id)

    def _on_fill(self, order: VenueOrder, event: Filled, now_ns: int) -> None:
        rules = self.symbols[order.symbol]
        grid = self.grids[order.symbol]
        qty = Decimal(event.qty_lot) * grid.lot_size
        fill_px = Decimal(event.px_tick) * grid.tick_size
        order_px = Decimal(order.px_tick) * grid.tick_size
        quote = fill_px * qty
        commission = Decimal(repr(round(event.fee_quote, 8)))
        extra = self._settle_fill(order, qty, order_px, fill_px, commission)
        order.filled_lot += event.qty_lot
        order.quote_filled += quote
        order.status = "FILLED" if order.filled_lot >= order.qty_lot else "PARTIALLY_FILLED"
        order.update_ms = now_ns // MS
        trade = {"symbol": order.symbol, "id": self._next_trade_id, "orderId": order.order_id, "orderListId": -1,
                 "price": format_price(grid, event.px_tick), "qty": format_qty(grid, event.qty_lot),
                 "quoteQty": _text(quote), "commission": _text(commission), "commissionAsset": rules.quote_asset,
                 "time": now_ns // MS, "isBuyer": order.side > 0, "isMaker": event.is_maker, "isBestMatch": True}
        trade.update(extra)
        self._next_trade_id += 1
        order.fills.append({"price": trade["price"], "qty": trade["qty"], "commission": trade["commission"],
                            "commissionAsset": rules.quote_asset, "tradeId": trade["id"]})
        self.trades.append(trade | {"_key": order.api_key})
        self.counts["fills"] += 1

    def _release(self, order: VenueOrder) -> None:
        grid = self.grids[order.symbol]
        leaves = Decimal(order.qty_lot - order.filled_lot) * grid.lot_size
        self._unreserve(order.api_key, order.symbol, order.side, Decimal(order.px_tick) * grid.tick_size, leaves)

    # -- accounting hooks (spot: balances lock on accept; processes.venue_usdm overrides them with margin) --

    def _reserve(self, api_key: str, symbol: str, side: int, price: Decimal, qty: Decimal) -> None:
        """Hold what a new order needs, or raise VenueError."""
        rules = self.symbols[symbol]
        asset, amount = (rules.quote_asset, price * qty) if side > 0 else (rules.base_asset, qty)
        if not self.accounts[api_key].lock(asset, amount):
            raise VenueError(400, E_REJECTED, MSG_INSUFFICIENT)

    def _unreserve(self, api_key: str, symbol: str, side: int, price: Decimal, qty: Decimal) -> None:
        """Give back what `_reserve` held for `qty` at `price` (a rejected order, or a cancel's leaves)."""
        rules = self.symbols[symbol]
        asset, amount = (rules.quote_asset, price * qty) if side > 0 else (rules.base_asset, qty)
        self.accounts[api_key].unlock(asset, amount)

    def _settle_fill(self, order: VenueOrder, qty: Decimal, order_px: Decimal, fill_px: Decimal,
                     commission: Decimal) -> dict:
        """Move the account for one fill; returns extra fields for the trade record (none on spot)."""
        rules = self.symbols[order.symbol]
        account = self.accounts[order.api_key]
        quote = fill_px * qty
        if order.side > 0:
            account.move(rules.quote_asset, -(order_px * qty), from_locked=True)
            account.move(rules.quote_asset, order_px * qty - quote - commission)
            account.move(rules.base_asset, qty)
        else:
            account.move(rules.base_asset, -qty, from_locked=True)
            account.move(rules.quote_asset, quote - commission)
        return {}

    # -- replies --

    def order_json(self, order: VenueOrder, *, full: bool = False) -> dict:
        grid = self.grids[order.symbol]
        reply = {
            "symbol": order.symbol, "orderId": order.order_id, "orderListId": -1, "clientOrderId": order.client_id,
            "price": order_price(grid, order), "origQty": format_qty(grid, order.qty_lot),
            "executedQty": format_qty(grid, order.filled_lot), "cummulativeQuoteQty": _text(order.quote_filled),
            "status": order.status, "timeInForce": order.tif, "type": order.type,
            "side": "BUY" if order.side > 0 else "SELL", "stopPrice": "0.00000000", "icebergQty": "0.00000000",
            "time": order.time_ms, "updateTime": order.update_ms, "isWorking": True, "workingTime": order.time_ms,
            "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "NONE",
        }
        if full:
            reply["transactTime"] = order.update_ms
            reply["fills"] = list(order.fills)
        return reply

    def account_json(self, api_key: str, now_ns: int) -> dict:
        account = self.accounts[api_key]
        assets = sorted(set(account.free) | set(account.locked))
        return {
            "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": _text(Decimal(repr(self.maker_fee_bps)) / 10000),
                                "taker": _text(Decimal(repr(self.taker_fee_bps)) / 10000),
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ns // MS,
            "accountType": "SPOT", "permissions": ["SPOT"], "uid": 1,
            "balances": [{"asset": a, "free": _text(account.free.get(a, Decimal(0))),
                          "locked": _text(account.locked.get(a, Decimal(0)))} for a in assets],
        }


def _fills_whole(model: FillModel, now_ns: int, side: int, px_tick: int, qty_lot: int) -> bool:
    """Whether a limit order would fill all of `qty_lot` on arrival (FOK): tried on a copy of the model,
    so the book it walks is the one the real order would meet."""
    trial = copy.deepcopy(model)
    events = trial.submit(now_ns, "fill-or-kill trial", side, px_tick, qty_lot, False)
    return sum(e.qty_lot for e in events if type(e) is Filled) >= qty_lot


def order_price(grid: TickGrid, order: VenueOrder) -> str:
    """The order's limit price as Binance shows it: zero for a MARKET order (its reach is the venue's own)."""
    return format_price(grid, 0 if order.type == "MARKET" else order.px_tick)


def _text(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.00000001')):f}"


def _decimal(params: Mapping[str, str], name: str) -> Decimal:
    text = params.get(name)
    if not text:
        raise VenueError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise VenueError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    if not value.is_finite() or "e" in text.lower():
        raise VenueError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return value


def _history_numbers(params: Mapping[str, str], names: tuple[str, ...], max_range_ms: int | None) -> dict[str, int]:
    """The integer params of a history request that were sent (-1100 for one that is not an integer), `limit`
    always (default 500, within [1, 1000]); -1127 when startTime and endTime are more than `max_range_ms` apart."""
    numbers = {}
    for name in names:
        text = params.get(name)
        if text is not None:
            try:
                numbers[name] = int(text)
            except ValueError:
                raise VenueError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    numbers["limit"] = min(max(numbers.get("limit", HISTORY_LIMIT), 1), HISTORY_MAX_LIMIT)
    if (max_range_ms is not None and "startTime" in numbers and "endTime" in numbers
            and numbers["endTime"] - numbers["startTime"] > max_range_ms):
        raise VenueError(400, -1127, f"More than {max_range_ms // 3_600_000} hours between startTime and endTime.")
    return numbers


def _page(rows: list, numbers: Mapping[str, int], from_name: str, id_of, time_of) -> list:
    """Binance's history paging over `rows` (ascending by id): with a time bound, those within
    [startTime, endTime] (the first `limit` from startTime, else the last `limit` up to endTime); else from
    id `numbers[from_name]` on (the first `limit`); else the last `limit`."""
    limit = numbers["limit"]
    start, end = numbers.get("startTime"), numbers.get("endTime")
    if start is not None or end is not None:
        rows = [r for r in rows if (start is None or time_of(r) >= start) and (end is None or time_of(r) <= end)]
        return rows[:limit] if start is not None else rows[-limit:]
    from_id = numbers.get(from_name)
    if from_id is not None:
        return [r for r in rows if id_of(r) >= from_id][:limit]
    return rows[-limit:]


def _check_filters(rules: SymbolRules, grid: TickGrid, price: Decimal, qty: Decimal) -> None:
    """BINANCE.md §5: PRICE_FILTER, LOT_SIZE, NOTIONAL; -1013 naming the filter."""
    if price <= 0 or price < Decimal(rules.min_price) or price > Decimal(rules.max_price) or price % grid.tick_size:
        raise VenueError(400, E_FILTER, "Filter failure: PRICE_FILTER")
    if qty <= 0 or qty < Decimal(rules.min_qty) or qty > Decimal(rules.max_qty) or qty % grid.lot_size:
        raise VenueError(400, E_FILTER, "Filter failure: LOT_SIZE")
    notional = price * qty
    if notional < Decimal(rules.min_notional) or notional > Decimal(rules.max_notional):
        raise VenueError(400, E_FILTER, "Filter failure: NOTIONAL")


def exchange_info_json(symbols: Mapping[str, SymbolRules], limits: OrderLimits, now_ns: int) -> dict:
    entries = []
    for rules in symbols.values():
        entries.append({
            "symbol": rules.symbol, "status": "TRADING", "baseAsset": rules.base_asset,
            "baseAssetPrecision": rules.decimals, "quoteAsset": rules.quote_asset,
            "quotePrecision": rules.decimals, "quoteAssetPrecision": rules.decimals,
            "baseCommissionPrecision": rules.decimals, "quoteCommissionPrecision": rules.decimals,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
            "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
            "cancelReplaceAllowed": True, "amendAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": rules.min_price, "maxPrice": rules.max_price,
                 "tickSize": rules.tick_size},
                {"filterType": "LOT_SIZE", "minQty": rules.min_qty, "maxQty": rules.max_qty,
                 "stepSize": rules.lot_size},
                {"filterType": "NOTIONAL", "minNotional": rules.min_notional, "applyMinToMarket": True,
                 "maxNotional": rules.max_notional, "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": ["NONE"],
        })
    return {
        "timezone": "UTC", "serverTime": now_ns // MS,
        "rateLimits": [{"rateLimitType": r.kind, "interval": r.interval, "intervalNum": r.interval_num,
                        "limit": r.limit} for r in limits.rate_limits],
        "exchangeFilters": [], "symbols": entries,
    }


# ---- the HTTP side -----------------------------------------------------------------------------


class _Limits:
    """Per-IP weight and per-key order counters in clock-aligned windows, and 429/418 escalation."""

    def __init__(self, limits: OrderLimits) -> None:
        self.limits = limits
        self.weight_used: dict[tuple[str, int, int], int] = {}  # (ip, rule index, window) -> units
        self.orders_used: dict[tuple[str, int, int], int] = {}  # (key, rule index, window) -> orders
        self.limited_count: dict[str, int] = {}  # ip -> 429s answered since the last clean request
        self.banned_until: dict[str, float] = {}  # ip -> wall-clock s

    def weight_headers(self, ip: str, now_s: float) -> dict[str, str]:
        headers = {}
        for index, rule in enumerate(self.limits.rate_limits):
            if rule.kind == "REQUEST_WEIGHT":
                window = int(now_s // rule.window_s)
                headers[rule.header] = str(self.weight_used.get((ip, index, window), 0))
        return headers

    def order_headers(self, key: str, now_s: float) -> dict[str, str]:
        headers = {}
        for index, rule in enumerate(self.limits.rate_limits):
            if rule.kind == "ORDERS":
                window = int(now_s // rule.window_s)
                headers[rule.header] = str(self.orders_used.get((key, index, window), 0))
        return headers

    def charge_weight(self, ip: str, weight: int, now_s: float) -> VenueError | None:
        banned = self.banned_until.get(ip, 0.0)
        if now_s < banned:
            return self._ban_error(banned, now_s)
        for index, rule in enumerate(self.limits.rate_limits):
            if rule.kind != "REQUEST_WEIGHT":
                continue
            window = int(now_s // rule.window_s)
            used = self.weight_used.get((ip, index, window), 0) + weight
            self.weight_used[(ip, index, window)] = used  # a refused request still costs its weight
            if used > rule.limit:
                return self._limited(ip, rule, window, now_s, -1003,
                                     f"Too much request weight used; current limit is {rule.limit} request weight "
                                     f"per {rule.interval_num} {rule.interval}. Please use WebSocket Streams for "
                                     f"live updates to avoid polling the API.")
        self.limited_count[ip] = 0
        self._prune(now_s)
        return None

    def charge_order(self, ip: str, key: str, now_s: float) -> VenueError | None:
        for index, rule in enumerate(self.limits.rate_limits):
            if rule.kind != "ORDERS":
                continue
            window = int(now_s // rule.window_s)
            used = self.orders_used.get((key, index, window), 0)
            if used + 1 > rule.limit:
                return self._limited(ip, rule, window, now_s, -1015,
                                     f"Too many new orders; current limit is {rule.limit} orders per "
                                     f"{rule.interval_num} {rule.interval}.")
        for index, rule in enumerate(self.limits.rate_limits):
            if rule.kind == "ORDERS":
                window = int(now_s // rule.window_s)
                self.orders_used[(key, index, window)] = self.orders_used.get((key, index, window), 0) + 1
        return None

    def _limited(self, ip: str, rule: RateLimitRule, window: int, now_s: float, code: int, msg: str) -> VenueError:
        count = self.limited_count.get(ip, 0) + 1
        self.limited_count[ip] = count
        if count > self.limits.ban_after_429s:
            self.banned_until[ip] = now_s + self.limits.ban_s
            self.limited_count[ip] = 0
            return self._ban_error(self.banned_until[ip], now_s)
        error = VenueError(429, code, msg)
        error.retry_after_s = max(1, math.ceil((window + 1) * rule.window_s - now_s))  # type: ignore[attr-defined]
        return error

    def _ban_error(self, banned_until: float, now_s: float) -> VenueError:
        error = VenueError(418, -1003, f"Way too much request weight used; IP banned until {int(banned_until * 1000)}. "
                                       f"Please use WebSocket Streams for live updates to avoid bans.")
        error.retry_after_s = max(1, math.ceil(banned_until - now_s))  # type: ignore[attr-defined]
        return error

    def _prune(self, now_s: float) -> None:
        if len(self.weight_used) + len(self.orders_used) < 4096:
            return
        for used in (self.weight_used, self.orders_used):
            for k in [k for k in used if (k[2] + 1) * self.limits.rate_limits[k[1]].window_s < now_s]:
                del used[k]


class OrderSide:
    """The order API of the local venue: handlers, limits, faults and the matching engine."""

    def __init__(self, engine: MatchingEngine, *, keys: Mapping[str, str], symbols: Mapping[str, SymbolRules],
                 faults: OrderFaults | None = None, limits: OrderLimits | None = None) -> None:
        self.engine = engine
        self._new_trades = NewTrades()  # one trade on @trade and @aggTrade fills once
        self.keys = dict(keys)
        self.symbols = dict(symbols)
        self.limits = limits or OrderLimits()
        self.counts: Counter[str] = Counter()
        self._limits = _Limits(self.limits)
        self.weights = dict(WEIGHTS)  # endpoint -> request weight (USD-M has its own table)
        self.order_endpoints = frozenset({"new"})  # endpoints that count on the ORDERS limits
        self._released = asyncio.Event()
        self.set_faults(faults or OrderFaults())

    def __repr__(self) -> str:
        return f"OrderSide(symbols={sorted(self.symbols)}, keys={len(self.keys)})"

    def set_faults(self, faults: OrderFaults) -> None:
        """Switch faults at run time (tests); the fault count starts again."""
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._faults_done = 0

    def mount(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/api/v3/exchangeInfo", self._on_exchange_info)
        router.add_post("/api/v3/order", self._handler("new", self._new_order))
        router.add_delete("/api/v3/order", self._handler("cancel", self._cancel_order))
        router.add_get("/api/v3/order", self._handler("query", self._query_order))
        router.add_get("/api/v3/openOrders", self._handler("open_orders", self._open_orders))
        router.add_delete("/api/v3/openOrders", self._handler("cancel_all", self._cancel_all))
        router.add_post("/api/v3/order/cancelReplace", self._handler("new", self._cancel_replace))
        router.add_get("/api/v3/account", self._handler("account", self._account))
        router.add_get("/api/v3/myTrades", self._handler("my_trades", self._my_trades))
        router.add_get("/api/v3/allOrders", self._handler("all_orders", self._all_orders))
        router.add_get("/sapi/v1/system/status", self._on_system_status)
        router.add_get("/sapi/v1/asset/tradeFee", self._handler("trade_fee", self._trade_fee))
        self.mount_unserved(router, WALLET_ROUTES)
        app.on_shutdown.append(self._on_shutdown)

    # -- market side hook --

    def on_frame(self, symbol: str, frame: object) -> None:
        """Call for every depth diff and trade the market side produces (after its own book took it)."""
        now_ns = time.time_ns()
        match frame:
            case DepthUpdate():
                self.engine.on_depth(symbol, frame.b, frame.a, now_ns)
            case TradeFrame():
                if self._new_trades.take(symbol, frame.t, frame.t):
                    self.engine.on_trade(symbol, frame.p, frame.q, frame.m, now_ns)
            case AggTradeFrame():
                if self._new_trades.take(symbol, frame.f, frame.l):
                    self.engine.on_trade(symbol, frame.p, frame.q, frame.m, now_ns)
            case _:
                pass

    # -- handlers --

    async def _on_shutdown(self, app: web.Application) -> None:
        self._released.set()

    async def _on_exchange_info(self, request: web.Request) -> web.Response:
        ip = request.remote or ""
        now_ns = time.time_ns()
        error = self._limits.charge_weight(ip, WEIGHTS["exchange_info"], now_ns / 1e9)
        if error is not None:
            return self._error_response(error, ip, now_ns)
        return self._json(exchange_info_json(self.symbols, self.limits, now_ns), ip, now_ns)

    async def _on_system_status(self, request: web.Request) -> web.Response:
        """sapi system/status (ccxt's fetch_status, with `urls["api"]["sapi"]` at the venue): 0, normal."""
        ip = request.remote or ""
        now_ns = time.time_ns()
        error = self._limits.charge_weight(ip, WEIGHTS["system_status"], now_ns / 1e9)
        if error is not None:
            return self._error_response(error, ip, now_ns)
        return self._json({"status": 0, "msg": "normal"}, ip, now_ns)

    def mount_unserved(self, router: web.UrlDispatcher, paths: tuple[str, ...]) -> None:
        """Routes of the real venue this one has nothing behind: weight 1, then 400 -1020."""

        async def handle(request: web.Request) -> web.Response:
            ip = request.remote or ""
            now_ns = time.time_ns()
            self.counts["requests_unserved"] += 1
            error = self._limits.charge_weight(ip, 1, now_ns / 1e9) or VenueError(
                400, -1020, "This operation is not supported.")
            return self._error_response(error, ip, now_ns)

        for path in paths:
            router.add_route("*", path, handle)

    def _handler(self, endpoint: str, action):
        async def handle(request: web.Request) -> web.StreamResponse:
            self.counts[f"requests_{endpoint}"] += 1
            faults = self.faults
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)  # injected network latency
            ip = request.remote or ""
            now_ns = time.time_ns()
            body = await request.text() if request.can_read_body else ""
            raw_query = request.rel_url.raw_query_string
            params = dict(parse_qsl(body, keep_blank_values=True))
            params.update(parse_qsl(raw_query, keep_blank_values=True))  # the query wins
            weight = self.weights[endpoint]
            if endpoint == "open_orders" and "symbol" not in params:
                weight = self.weights["open_orders_all"]
            try:
                error = self._limits.charge_weight(ip, weight, now_ns / 1e9)
                if error is not None:
                    raise error
                api_key = self._authenticate(request, params, raw_query, body, now_ns)
                fault = self._draw_fault(endpoint)
                if fault == "timeout":
                    return await self._hang(endpoint, applied=False)
                if fault == "5xx" and not faults.is_5xx_applied:
                    return self._unknown_outcome(endpoint, ip, now_ns)
                if endpoint in self.order_endpoints:
                    error = self._limits.charge_order(ip, api_key, now_ns / 1e9)
                    if error is not None:
                        raise error
                reply = action(api_key, params, now_ns)
                if fault == "drop":
                    return await self._hang(endpoint, applied=True)
                if fault == "5xx":
                    return self._unknown_outcome(endpoint, ip, now_ns)
            except VenueError as e:
                self.counts[f"error_{e.code}"] += 1
                return self._error_response(e, ip, now_ns)
            extra = self._limits.order_headers(api_key, now_ns / 1e9) if endpoint in self.order_endpoints else {}
            return self._json(reply, ip, now_ns, extra)

        return handle

    def _authenticate(self, request: web.Request, params: Mapping[str, str], raw_query: str, body: str,
                      now_ns: int) -> str:
        api_key = request.headers.get("X-MBX-APIKEY", "")
        secret = key_secret(self.keys, api_key)
        if not verify_request(secret, raw_query, body):
            raise VenueError(400, E_SIGNATURE, MSG_BAD_SIGNATURE)
        check_timing(params, now_ns)
        return api_key

    def _draw_fault(self, endpoint: str) -> str:
        faults = self.faults
        if endpoint not in faults.endpoints:
            return ""
        if faults.max_faults and self._faults_done >= faults.max_faults:
            return ""
        draw = self._rng.random()
        kind = ""
        if draw < faults.error_5xx_ratio:
            kind = "5xx"
        elif draw < faults.error_5xx_ratio + faults.timeout_ratio:
            kind = "timeout"
        elif draw < faults.error_5xx_ratio + faults.timeout_ratio + faults.drop_ratio:
            kind = "drop"
        if kind:
            self._faults_done += 1
            self.counts[f"fault_{kind}_{endpoint}"] += 1
        return kind

    async def _hang(self, endpoint: str, *, applied: bool) -> web.Response:
        """Never answer (until shutdown or hang_s): the client times out."""
        try:
            await asyncio.wait_for(self._released.wait(), self.faults.hang_s)
        except asyncio.TimeoutError:
            pass
        return web.Response(status=503, text="")

    def _unknown_outcome(self, endpoint: str, ip: str, now_ns: int) -> web.Response:
        return self._error_response(VenueError(503, -1007, MSG_5XX), ip, now_ns)

    # -- actions (sync: the engine is pure bookkeeping) --

    def _new_order(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        order = self.engine.new_order(api_key, params, now_ns)
        response_type = params.get("newOrderRespType", "FULL")
        reply = self.engine.order_json(order, full=True)
        if response_type == "ACK":
            return {k: reply[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")}
        if response_type == "RESULT":
            reply.pop("fills")
        return reply

    def _cancel_order(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        order = self.engine.cancel(api_key, params, now_ns)
        reply = self.engine.order_json(order)
        reply["origClientOrderId"] = order.client_id
        reply["clientOrderId"] = params.get("newClientOrderId") or f"cancel-{order.order_id}"
        reply["transactTime"] = now_ns // MS
        return reply

    def _cancel_replace(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        """order/cancelReplace (REST and ws-api): cancel `cancelOrderId` / `cancelOrigClientOrderId`, then
        place the new order unless STOP_ON_FAILURE and the cancel failed. Both done: the halves; otherwise
        VenueError 409 -2021 (one half done) or 400 -2022 (neither) carrying the halves (BINANCE.md §2.2)."""
        mode = params.get("cancelReplaceMode", "")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise VenueError(400, -1102, "Mandatory parameter 'cancelReplaceMode' was not sent, was empty/null, "
                                         "or malformed.")
        cancel_params = {"symbol": params.get("symbol", "")}
        for ours, theirs in (("cancelOrderId", "orderId"), ("cancelOrigClientOrderId", "origClientOrderId"),
                             ("cancelNewClientOrderId", "newClientOrderId")):
            if ours in params:
                cancel_params[theirs] = params[ours]
        if "orderId" not in cancel_params and "origClientOrderId" not in cancel_params:
            raise VenueError(400, -1102, "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both "
                                         "were empty/null!")
        new_params = {k: v for k, v in params.items() if not k.startswith("cancel")}
        cancel, cancel_response = self._attempt(self._cancel_order, api_key, cancel_params, now_ns)
        new, new_response = Half.NOT_ATTEMPTED, None
        if should_attempt_new(mode, cancel):
            new, new_response = self._attempt(self._new_order, api_key, new_params, now_ns)
        halves = {"cancelResult": cancel.value, "newOrderResult": new.value,
                  "cancelResponse": cancel_response, "newOrderResponse": new_response}
        status, code, msg = cancel_replace_outcome(cancel, new)
        if status != 200:
            raise VenueError(status, code, msg, halves)
        return halves

    @staticmethod
    def _attempt(action, api_key: str, params: Mapping[str, str], now_ns: int) -> tuple[Half, dict]:
        """One half of a cancel-replace: (SUCCESS, its reply) or (FAILURE, its error as Binance writes it)."""
        try:
            return Half.SUCCESS, action(api_key, params, now_ns)
        except VenueError as e:
            return Half.FAILURE, {"code": e.code, "msg": e.msg}

    def _query_order(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        order = self.engine.find(params)
        if order is None or order.api_key != api_key:
            raise VenueError(400, E_NO_SUCH_ORDER, MSG_NO_SUCH_ORDER)
        return self.engine.order_json(order)

    def _open_orders(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        symbol = params.get("symbol", "").upper() or None
        if symbol is not None and symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        return [self.engine.order_json(o) for o in self.engine.open_orders(api_key, symbol)]

    def _cancel_all(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        symbol = params.get("symbol", "").upper()
        result = []
        for order in self.engine.cancel_all(api_key, symbol, now_ns):
            reply = self.engine.order_json(order)
            reply["origClientOrderId"] = order.client_id
            result.append(reply)
        return result

    def _trade_fee(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        """sapi asset/tradeFee (ccxt's fetch_trading_fee(s)): the engine's maker and taker rates per symbol."""
        symbol = params.get("symbol", "").upper()
        if symbol and symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        engine = self.engine
        maker, taker = (_text(Decimal(repr(bps)) / 10000) for bps in (engine.maker_fee_bps, engine.taker_fee_bps))
        return [{"symbol": name, "makerCommission": maker, "takerCommission": taker}
                for name in ([symbol] if symbol else sorted(self.symbols))]

    def _account(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        return self.engine.account_json(api_key, now_ns)

    def _my_trades(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        return self.engine.my_trades(api_key, params, SPOT_HISTORY_RANGE_MS)

    def _all_orders(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        return [self.engine.order_json(o) for o in self.engine.all_orders(api_key, params, SPOT_HISTORY_RANGE_MS)]

    # -- replies --

    def _json(self, body: object, ip: str, now_ns: int, extra: Mapping[str, str] | None = None) -> web.Response:
        headers = self._limits.weight_headers(ip, now_ns / 1e9)
        if extra:
            headers.update(extra)
        return web.Response(body=msgspec.json.encode(body), content_type="application/json", headers=headers)

    def _error_response(self, error: VenueError, ip: str, now_ns: int) -> web.Response:
        headers = self._limits.weight_headers(ip, now_ns / 1e9)
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
            self.counts[f"http_{error.status}"] += 1
        body: dict = {"code": error.code, "msg": error.msg}
        if error.data is not None:
            body["data"] = error.data
        return web.Response(status=error.status, body=msgspec.json.encode(body),
                            content_type="application/json", headers=headers)


def add_order_routes(app: web.Application, engine: MatchingEngine, *, keys: dict[str, str],
                     symbols: dict[str, SymbolRules], faults: OrderFaults,
                     limits: OrderLimits | None = None) -> OrderSide:
    side = OrderSide(engine, keys=keys, symbols=symbols, faults=faults, limits=limits)
    side.mount(app)
    return side


# ---- command line ------------------------------------------------------------------------------


def add_order_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("order API (keys from MM_VENUE_KEYS=key:secret[,key:secret...])")
    group.add_argument("--base-asset", default="BTC", help="base asset of --symbol")
    group.add_argument("--quote-asset", default="USDT", help="quote asset of --symbol")
    group.add_argument("--min-notional", default="5", help="NOTIONAL filter minimum (quote)")
    group.add_argument("--balances", default="BTC:10,USDT:1000000",
                       help="starting balances of every key, ASSET:AMOUNT[,...]")
    group.add_argument("--maker-fee-bps", type=float, default=None,
                       help="default: the standard tier of --market (mm/fees.py)")
    group.add_argument("--taker-fee-bps", type=float, default=None,
                       help="default: the standard tier of --market (mm/fees.py)")
    group.add_argument("--weight-limit", type=int, default=6000, help="REQUEST_WEIGHT per minute per IP")
    group.add_argument("--orders-10s", type=int, default=100, help="ORDERS per 10 s per key")
    group.add_argument("--orders-day", type=int, default=200000, help="ORDERS per day per key")
    group.add_argument("--ban-after", type=int, default=5, help="429s before an IP ban (418)")
    group.add_argument("--ban-s", type=float, default=120.0, help="IP ban length in seconds")
    group.add_argument("--order-latency-ms", type=float, default=0.0, help="fault: added latency per order request")
    group.add_argument("--error-5xx-ratio", type=float, default=0.0, help="fault: share answered 503 -1007")
    group.add_argument("--timeout-ratio", type=float, default=0.0, help="fault: share never answered, not applied")
    group.add_argument("--drop-ratio", type=float, default=0.0, help="fault: share applied but never answered")
    group.add_argument("--fault-seed", type=int, default=1)
    group.add_argument("--queue-model", choices=QUEUE_MODELS, default="ratio",
                       help="how the matching engine places a cancel at our price (mm/queue_models.py; ratio: half ahead)")
    group.add_argument("--queue-power", type=float, default=2.0, help="n of the power_prob queue models")


def _parse_balances(text: str) -> dict[str, str]:
    balances = {}
    for item in (p for p in text.split(",") if p):
        asset, sep, amount = item.partition(":")
        if not sep:
            raise ValueError(f"--balances: {item!r} is not ASSET:AMOUNT")
        try:
            Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"--balances: {item!r}: amount is not a decimal") from None
        balances[asset.upper()] = amount
    return balances


def build_order_side(args: argparse.Namespace, market, environ: Mapping[str, str] | None = None) -> OrderSide:
    """The order side for `mm venue` (raises ValueError on bad flags or MM_VENUE_KEYS). `market` is the
    VenueMarket: its symbol, tick/lot sizes and its book (to seed the matching engine)."""
    environ = os.environ if environ is None else environ
    keys = parse_venue_keys(environ.get(KEYS_ENV, ""))
    if not keys:
        log.warning("venue order API: %s is empty: every signed request gets -2015", KEYS_ENV)
    rules = SymbolRules(symbol=market.symbol, base_asset=args.base_asset.upper(), quote_asset=args.quote_asset.upper(),
                        tick_size=market.tick_size, lot_size=market.lot_size, min_price=market.tick_size,
                        min_qty=market.lot_size, min_notional=args.min_notional)
    limits = OrderLimits(
        rate_limits=(RateLimitRule(kind="REQUEST_WEIGHT", interval="MINUTE", interval_num=1, limit=args.weight_limit),
                     RateLimitRule(kind="ORDERS", interval="SECOND", interval_num=10, limit=args.orders_10s),
                     RateLimitRule(kind="ORDERS", interval="DAY", interval_num=1, limit=args.orders_day)),
        ban_after_429s=args.ban_after, ban_s=args.ban_s)
    faults = OrderFaults(latency_ms=args.order_latency_ms, error_5xx_ratio=args.error_5xx_ratio,
                         timeout_ratio=args.timeout_ratio, drop_ratio=args.drop_ratio, seed=args.fault_seed)
    symbols = {rules.symbol: rules}
    tier = venue_tier(getattr(args, "market", "spot"))
    engine = MatchingEngine(symbols, keys=keys, balances=_parse_balances(args.balances),
                            maker_fee_bps=tier.maker_bps if args.maker_fee_bps is None else args.maker_fee_bps,
                            taker_fee_bps=tier.taker_bps if args.taker_fee_bps is None else args.taker_fee_bps,
                            seed_book=book_seeder(market),
                            queue=queue_model(args.queue_model, power=args.queue_power, ratio=0.5))
    return OrderSide(engine, keys=keys, symbols=symbols, faults=faults, limits=limits)


def book_seeder(market):
    """(bids, asks) text levels of the venue's own book for a symbol, or None when it has none yet."""

    def seed(symbol: str):
        state = market.books.books.get(symbol)
        if state is None or not state.sync.is_synced:
            return None
        top = market.book_top(symbol, SEED_DEPTH)
        return [tuple(level) for level in top["bids"]], [tuple(level) for level in top["asks"]]

    return seed


def attach(market, side: OrderSide) -> None:
    """Mount `side` on the market's REST app and feed it the market's frames; before `market.start()`.
    Needs VenueMarket's two hook lists `app_hooks` and `frame_listeners` (see the report of the
    change that added this module)."""
    market.app_hooks.append(side.mount)
    market.frame_listeners.append(side.on_frame)
