"""`mm venue --market usdm`: Binance USD-M futures on loopback (BINANCE.md §1, §2.3, §7.2).

The spot venue's machinery, specialised, on the same two ports:
- market streams (`UsdmMarket`, a VenueMarket): `/public/ws/<s>` and `/public/stream?streams=` carry the
  book streams (`@depth*`, `@bookTicker`, and `@trade`), `/market/ws|stream` the others (`@aggTrade`,
  `@trade`); the route-less legacy `/ws/<s>` and `/stream` carry everything. The simulator writes USD-M
  frames: `depthUpdate` with `T` and `pu` (= the previous diff's `u`), `aggTrade`, `bookTicker` with
  `e`/`E`/`T`, and `@markPrice@1s` / `@markPrice` (the book's mid) on `/market`; prices with the tick's
  decimals, quantities with the lot's. A capture (`--feed`) is served verbatim, as on spot.
- REST `/fapi/v1|v2|v3` (`UsdmSide`, an OrderSide: the same HMAC over query‖body, `recvWindow`/`timestamp`
  rule, per-IP weight and per-key ORDERS windows, 429/418, faults) with USD-M's weights and error codes:
  `time`, `ping`, `exchangeInfo`, `depth`, `order` (POST / PUT modify / DELETE / GET), `openOrder`,
  `openOrders`, `batchOrders` (POST / DELETE), `allOpenOrders`, `positionRisk` (v2, v3), `account` (v2, v3),
  `balance` (v2, v3), `leverage`, `leverageBracket`, `positionSide/dual` (GET; POST refused: one-way only),
  `userTrades`, `income` (the fills' commissions and realized PnL), `forceOrders` (none), `accountConfig`,
  `countdownCancelAll`, `listenKey` POST/PUT/DELETE; `marginType` (cross margin only), `commissionRate`,
  `symbolConfig`; public `ticker/24hr`, `ticker/price`, `klines`, `aggTrades`, `trades` (processes.venue_tape),
  `markPriceKlines` / `indexPriceKlines` / `premiumIndexKlines` (of the marks published), `premiumIndex` (mark = index = the book's mid), `fundingRate` (the funding times passed while the venue
  ran), `fundingInfo`, `openInterest` (the venue's accounts' longs); `/sapi/v1/system/status`. Routes of
  histories the venue does not keep (UNSERVED_ROUTES, WALLET_ROUTES) answer 400 -1020.
- Orders (`UsdmEngine`, a MatchingEngine: the same FillModel matching): LIMIT with GTC, IOC, FOK or GTX
  (post-only: an order that would take is rejected -5022 and never recorded), MARKET (an IOC to the far end
  of the venue's book); one-way position mode
  (`positionSide` BOTH only, -4061 otherwise), `reduceOnly`; cross margin from mm.usdm_account
  (a new order needs its initial margin, notional / leverage, free: -2019 otherwise; the open orders'
  margin per symbol is the larger of the buy and the sell side's notional over the leverage); the mark
  price is the venue book's mid.
- The dead-man's switch: `countdownCancelAll` arms a per-account, per-symbol mm.usdm_account.Countdown,
  checked every 10 ms; when it runs out every open order of the account on that symbol is cancelled
  (ORDER_TRADE_UPDATE CANCELED each).

The user-data stream and the WebSocket API are in processes.venue_usdm_ws.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import string
import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from urllib.parse import urlsplit

import msgspec
from aiohttp import web
from picows import WSListener, WSUpgradeRequest

from mm.fees import venue_tier
from mm.fill_model import Accepted, Canceled, Rejected
from mm.queue_models import queue_model
from mm.ticks import decimals_of, format_price, format_qty, grid_from_sizes
from mm.trade_tape import INTERVAL_MS, sample_klines
from mm.usdm_account import Countdown, UsdmAccount, check_leverage
from processes.venue_market import (
    VenueFaults,
    VenueMarket,
    _Connection,
    streams_of_path,
)
from processes.venue_servers import cancel_all, run_from_args
from processes.venue_orders import (
    E_CANCEL_REJECTED,
    E_NO_SUCH_ORDER,
    E_REJECTED,
    KEYS_ENV,
    MS,
    MSG_DUPLICATE,
    MSG_NO_SUCH_ORDER,
    MSG_WOULD_TAKE,
    MatchingEngine,
    OrderFaults,
    OrderLimits,
    OrderSide,
    RateLimitRule,
    SymbolRules,
    VenueError,
    VenueOrder,
    WALLET_ROUTES,
    _decimal,
    book_seeder,
    key_secret,
    order_price,
    parse_venue_keys,
)
from processes.venue_tape import STREAM_KINDS, int_param, limit_param

log = logging.getLogger(__name__)

COUNTDOWN_TICK_S = 0.01  # Binance checks the countdown about every 10 ms
PING_INTERVAL_S = 180.0  # USD-M pings every 3 min and drops a client silent for 10 (BINANCE.md §1.1)
PONG_TIMEOUT_S = 600.0
FUNDING_MS = 8 * 3600 * 1000
DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
DEFAULT_DEPTH = 500
# Request weights (BINANCE.md §2.3); "new" and "modify" cost no IP weight but count on ORDERS
USDM_WEIGHTS = {"exchange_info": 1, "time": 1, "new": 0, "modify": 0, "cancel": 1, "query": 1, "open_orders": 1,
                "open_orders_all": 40, "cancel_all": 1, "account": 5, "balance": 5, "position_risk": 5,
                "leverage": 1, "leverage_bracket": 1, "position_mode": 30, "countdown": 10, "listen_key": 1,
                "my_trades": 5, "all_orders": 5, "margin_type": 1, "commission_rate": 20, "symbol_config": 5,
                "open_order": 1, "batch_new": 5, "batch_cancel": 1, "account_config": 5, "income": 30,
                "force_orders": 20, "position_mode_change": 1}
# served by Binance from histories this venue does not keep (continuous contract candles, the futures/data
# statistics): 400 -1020
# (OrderSide.mount_unserved)
UNSERVED_ROUTES = ("/fapi/v1/continuousKlines", "/fapi/data/openInterestHist", "/fapi/data/topLongShortAccountRatio",
                   "/fapi/data/topLongShortPositionRatio", "/fapi/data/globalLongShortAccountRatio",
                   "/fapi/data/takerlongshortRatio", "/futures/data/openInterestHist",
                   "/futures/data/topLongShortAccountRatio", "/futures/data/topLongShortPositionRatio",
                   "/futures/data/globalLongShortAccountRatio", "/futures/data/takerlongshortRatio")
INCOME_TYPES = ("REALIZED_PNL", "COMMISSION")  # what a fill books; the venue charges no funding
BATCH_NEW_MAX, BATCH_CANCEL_MAX = 5, 10  # orders one batchOrders request may place / cancel
MARK_HISTORY = 7 * 24 * 3600  # marks kept per symbol (one a second: a week)
FUNDING_RATE = "0.00010000"  # mark = index (both the book's mid): premium 0, so funding = the 0.01 % interest rate
INTEREST_RATE = "0.00010000"
# (notional cap, max leverage, maintenance margin ratio, maintenance amount): BTCUSDT's first brackets
BRACKETS = ((50_000, 125, 0.004, 0.0), (600_000, 100, 0.005, 50.0), (3_000_000, 75, 0.0065, 950.0),
            (12_000_000, 50, 0.01, 11_450.0), (70_000_000, 25, 0.02, 131_450.0))
PUBLIC_KINDS = frozenset({"depth", "depth5", "depth10", "depth20", "bookTicker", "trade"})  # /public route
MARKET_KINDS = frozenset({"aggTrade", "trade", "markPrice", "markPrice@1s"}) | STREAM_KINDS  # /market route

# -- USD-M error codes (BINANCE.md §6 and the futures error-code page) --
E_GTX = -5022
MSG_GTX = "Due to the order could not be executed as maker, the Post Only order will be rejected."
E_MARGIN = -2019
E_REDUCE_ONLY = -2022
E_CLIENT_ID = -4015
E_DUPLICATE = -4116
E_POSITION_SIDE = -4061
E_NO_MODIFY = -5027
E_LEVERAGE = -4028
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def usdm_rules(symbol: str, base: str, quote: str, tick_size: str, lot_size: str, min_notional: str) -> SymbolRules:
    """A USD-M symbol's rules: numbers written with the tick's and the lot's own decimals."""
    return SymbolRules(symbol=symbol, base_asset=base, quote_asset=quote, tick_size=tick_size, lot_size=lot_size,
                       min_price=tick_size, min_qty=lot_size, max_qty="1000", min_notional=min_notional,
                       max_notional="1000000000", decimals=max(decimals_of(tick_size), decimals_of(lot_size)))


def _grid(rules: SymbolRules):
    return grid_from_sizes(rules.symbol, rules.tick_size, rules.lot_size, decimals_of(rules.tick_size),
                           decimals_of(rules.lot_size))


def _num(value: float, decimals: int = 8) -> str:
    return f"{value:.{decimals}f}"


# ---- orders, positions and margin ----------------------------------------------------------------


class UsdmEngine(MatchingEngine):
    """The spot matching engine with USD-M order rules and a cross-margin account per key."""

    client_id_chars = frozenset(string.ascii_letters + string.digits + "._:/-")

    def __init__(self, symbols: Mapping[str, SymbolRules], *, keys: Mapping[str, str], wallet: float = 100_000.0,
                 leverage: int = 20, mark_of: Callable[[str], float | None] | None = None, **kwargs) -> None:
        super().__init__(symbols, keys=keys, **kwargs)
        self.grids = {s: _grid(r) for s, r in self.symbols.items()}
        self.usdm = {key: UsdmAccount(wallet, self._margin_asset()) for key in keys}
        for account in self.usdm.values():
            for symbol in self.symbols:
                account.set_leverage(symbol, leverage)
        self.countdowns = {key: Countdown() for key in keys}
        self.reduce_only: set[int] = set()  # order ids sent with reduceOnly=true
        self.mark_of = mark_of
        self._model_id_of: dict[int, str] = {}  # order id -> its current FillModel id (changes on modify)
        self._modifications = 0

    def _margin_asset(self) -> str:
        return next(iter(self.symbols.values())).quote_asset if self.symbols else "USDT"

    def mark(self, api_key: str, symbol: str) -> float:
        mark = self.mark_of(symbol) if self.mark_of is not None else None
        if mark:
            return mark
        return self.usdm[api_key].position(symbol).entry_price

    def marks(self, api_key: str) -> dict[str, float]:
        return {s: self.mark(api_key, s) for s in self.usdm[api_key].positions}

    def open_order_notional(self, api_key: str) -> dict[str, float]:
        """Per symbol: the larger of the open buy and the open sell notional (their initial margin base)."""
        sides: dict[str, list[float]] = {}
        for order in self.open_orders(api_key, None):
            grid = self.grids[order.symbol]
            notional = float(Decimal(order.px_tick) * grid.tick_size * Decimal(order.qty_lot - order.filled_lot)
                              * grid.lot_size)
            pair = sides.setdefault(order.symbol, [0.0, 0.0])
            pair[0 if order.side > 0 else 1] += notional
        return {s: max(pair) for s, pair in sides.items()}

    def available(self, api_key: str) -> float:
        return self.usdm[api_key].available(self.marks(api_key), self.open_order_notional(api_key))

    # -- requests --

    def new_order(self, api_key: str, params: Mapping[str, str], now_ns: int) -> VenueOrder:
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        order_type = params.get("type", "")
        if order_type not in ("LIMIT", "MARKET"):
            raise VenueError(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce", "")
        if order_type == "LIMIT" and tif not in ("GTC", "IOC", "FOK", "GTX"):
            raise VenueError(400, -1115, "Invalid timeInForce.")
        if params.get("positionSide", "BOTH") != "BOTH":
            raise VenueError(400, E_POSITION_SIDE, "Order's position side does not match user's setting.")
        client_id = params.get("newClientOrderId")
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise VenueError(400, E_CLIENT_ID, "Client order id is not valid.")
        side = params.get("side", "")
        qty = _decimal(params, "quantity")
        if order_type == "MARKET":
            if "price" in params:
                raise VenueError(400, -1106, "Parameter 'price' sent when not required.")
            self._check_usdm_qty(symbol, qty)
            best, _ = self.market_reach(symbol, 1 if side == "BUY" else -1, now_ns)
            self._check_usdm_notional(symbol, best, qty)
        else:
            self._check_usdm_filters(symbol, _decimal(params, "price"), qty)
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        if reduce_only:
            amount = self.usdm[api_key].position(symbol).amount
            if amount == 0 or (amount > 0) == (side == "BUY") or float(qty) > abs(amount) + 1e-12:
                raise VenueError(400, E_REDUCE_ONLY, "ReduceOnly Order is rejected.")
        spot = {"symbol": symbol, "side": side, "quantity": params["quantity"]}
        if order_type == "MARKET":
            spot["type"] = "MARKET"
        elif tif == "GTX":
            spot["type"] = "LIMIT_MAKER"
        else:
            spot["type"], spot["timeInForce"] = "LIMIT", tif
        if order_type == "LIMIT":
            spot["price"] = params["price"]
        if client_id is not None:
            spot["newClientOrderId"] = client_id
        try:
            order = super().new_order(api_key, spot, now_ns)
        except VenueError as e:
            if e.code == E_REJECTED and e.msg == MSG_WOULD_TAKE:
                self.counts["gtx_rejected"] += 1
                raise VenueError(400, E_GTX, MSG_GTX) from None
            if e.code == E_REJECTED and e.msg == MSG_DUPLICATE:
                raise VenueError(400, E_DUPLICATE, "ClientOrderId is duplicated.") from None
            raise
        if reduce_only:
            self.reduce_only.add(order.order_id)
        return order

    def _check_usdm_filters(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        """USD-M's filter codes (BINANCE.md §5: the grid is anchored at minPrice / minQty)."""
        rules = self.symbols[symbol]
        grid = self.grids[symbol]
        if price < Decimal(rules.min_price):
            raise VenueError(400, -4013, "Price less than min price.")
        if price > Decimal(rules.max_price):
            raise VenueError(400, -4016, "Price greater than max price.")
        if (price - Decimal(rules.min_price)) % grid.tick_size:
            raise VenueError(400, -4014, "Price not increased by tick size.")
        self._check_usdm_qty(symbol, qty)
        self._check_usdm_notional(symbol, price, qty)

    def _check_usdm_qty(self, symbol: str, qty: Decimal) -> None:
        """LOT_SIZE and MARKET_LOT_SIZE (the same numbers here)."""
        rules = self.symbols[symbol]
        grid = self.grids[symbol]
        if qty <= 0:
            raise VenueError(400, -4003, "Quantity less than or equal to zero.")
        if qty < Decimal(rules.min_qty):
            raise VenueError(400, -4004, "Quantity less than min quantity.")
        if qty > Decimal(rules.max_qty):
            raise VenueError(400, -4005, "Quantity greater than max quantity.")
        if (qty - Decimal(rules.min_qty)) % grid.lot_size:
            raise VenueError(400, -4023, "Quantity not increased by step size.")

    def _check_usdm_notional(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        """MIN_NOTIONAL at the order's price (a MARKET order's: the best it would take)."""
        rules = self.symbols[symbol]
        if price * qty < Decimal(rules.min_notional):
            raise VenueError(400, -4164, f"Order's notional must be no smaller than {rules.min_notional} "
                                         f"(unless you choose reduce only).")

    def modify(self, api_key: str, params: Mapping[str, str], now_ns: int) -> VenueOrder:
        """PUT /fapi/v1/order: a new price and quantity for an open order; it loses its queue place. A GTX
        order whose new price would take is cancelled (EXPIRED)."""
        order = self.find(params)
        if order is None or order.api_key != api_key or not order.is_open:
            raise VenueError(400, E_NO_SUCH_ORDER, MSG_NO_SUCH_ORDER)
        if params.get("side", "") != ("BUY" if order.side > 0 else "SELL"):
            raise VenueError(400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        price = _decimal(params, "price")
        qty = _decimal(params, "quantity")
        self._check_usdm_filters(order.symbol, price, qty)
        grid = self.grids[order.symbol]
        px_tick = int(price / grid.tick_size)
        qty_lot = int(qty / grid.lot_size)
        if px_tick == order.px_tick and qty_lot == order.qty_lot:
            raise VenueError(400, E_NO_MODIFY, "No need to modify the order.")
        if qty_lot <= order.filled_lot:
            raise VenueError(400, -4003, "Quantity less than or equal to zero.")
        self._check_modify_margin(order, price, Decimal(qty_lot - order.filled_lot) * grid.lot_size)
        model = self.model(order.symbol, now_ns)
        old_id = self._model_id(order)
        for event in model.cancel(now_ns, old_id):
            if not (type(event) is Canceled and event.client_id == old_id):
                self._apply([event], order.symbol, now_ns)
        self._modifications += 1
        new_id = f"{order.order_id}m{self._modifications}"
        self._model_ids[(order.symbol, new_id)] = order.order_id
        self._model_id_of[order.order_id] = new_id
        order.px_tick, order.qty_lot = px_tick, qty_lot
        order.update_ms = now_ns // MS
        events = model.submit(now_ns, new_id, order.side, px_tick, qty_lot - order.filled_lot,
                              order.type == "LIMIT_MAKER")
        if any(type(e) is Rejected for e in events):
            order.status = "EXPIRED"
            self.counts["modify_gtx_expired"] += 1
            self._notify("EXPIRED", order, None, now_ns)
            return order
        self.counts["modified"] += 1
        self._notify("AMENDMENT", order, None, now_ns)
        self._apply([e for e in events if type(e) is not Accepted], order.symbol, now_ns)
        return order

    def _check_modify_margin(self, order: VenueOrder, price: Decimal, leaves: Decimal) -> None:
        """-2019 when the new price and quantity need more initial margin than is available."""
        grid = self.grids[order.symbol]
        old = float(Decimal(order.px_tick) * grid.tick_size * Decimal(order.qty_lot - order.filled_lot) * grid.lot_size)
        buys, sells = self._side_notional(order.api_key, order.symbol)
        delta = float(price * leaves) - old
        after = max(buys + delta, sells) if order.side > 0 else max(buys, sells + delta)
        need = (after - max(buys, sells)) / self.usdm[order.api_key].position(order.symbol).leverage
        if need > 0 and self.available(order.api_key) < need:
            raise VenueError(400, E_MARGIN, "Margin is insufficient.")

    def _model_id(self, order: VenueOrder) -> str:
        return self._model_id_of.get(order.order_id, str(order.order_id))

    def _cancel(self, order: VenueOrder, now_ns: int, cancel_id: str = "") -> None:
        model = self.model(order.symbol, now_ns)
        self._apply(model.cancel(now_ns, self._model_id(order)), order.symbol, now_ns, cancel_id=cancel_id)

    def run_countdowns(self, now_ns: int) -> int:
        """Cancel every open order of each (account, symbol) whose countdown ran out; returns how many."""
        cancelled = 0
        for api_key, countdown in self.countdowns.items():
            for symbol in countdown.due(now_ns // MS):
                self.counts["countdown_fired"] += 1
                for order in self.open_orders(api_key, symbol):
                    self._cancel(order, now_ns)
                    cancelled += 1
        self.counts["countdown_cancelled"] += cancelled
        return cancelled

    # -- accounting hooks: margin instead of locked balances --

    def _reserve(self, api_key: str, symbol: str, side: int, price: Decimal, qty: Decimal) -> None:
        account = self.usdm[api_key]
        position = account.position(symbol)
        opening = float(qty)
        if position.amount and (position.amount > 0) != (side > 0):
            opening = max(0.0, opening - abs(position.amount))  # what closes the position needs no margin
        notional = self.open_order_notional(api_key)
        before = notional.get(symbol, 0.0)
        buys, sells = self._side_notional(api_key, symbol)
        after = max(buys + (float(price) * opening if side > 0 else 0.0),
                    sells + (float(price) * opening if side < 0 else 0.0))
        need = (after - before) / position.leverage
        if need > 0 and self.available(api_key) < need:
            raise VenueError(400, E_MARGIN, "Margin is insufficient.")

    def _side_notional(self, api_key: str, symbol: str) -> tuple[float, float]:
        grid = self.grids[symbol]
        buys = sells = 0.0
        for order in self.open_orders(api_key, symbol):
            value = float(Decimal(order.px_tick) * grid.tick_size * Decimal(order.qty_lot - order.filled_lot)
                          * grid.lot_size)
            if order.side > 0:
                buys += value
            else:
                sells += value
        return buys, sells

    def _unreserve(self, api_key: str, symbol: str, side: int, price: Decimal, qty: Decimal) -> None:
        """Nothing is held: an order's margin is counted from the open orders themselves."""

    def _settle_fill(self, order: VenueOrder, qty: Decimal, order_px: Decimal, fill_px: Decimal,
                     commission: Decimal) -> dict:
        side = "BUY" if order.side > 0 else "SELL"
        realized = self.usdm[order.api_key].apply_fill(order.symbol, side, float(fill_px), float(qty),
                                                       float(commission))
        return {"realizedPnl": _num(realized), "side": side}

    # -- replies --

    def usdm_order_json(self, order: VenueOrder, *, with_time: bool = True) -> dict:
        grid = self.grids[order.symbol]
        filled = Decimal(order.filled_lot) * grid.lot_size
        avg = order.quote_filled / filled if filled else Decimal(0)
        reply = {
            "orderId": order.order_id, "symbol": order.symbol, "status": order.status,
            "clientOrderId": order.client_id, "price": order_price(grid, order),
            "avgPrice": _num(float(avg), max(decimals_of(str(grid.tick_size)), 2)),
            "origQty": format_qty(grid, order.qty_lot), "executedQty": format_qty(grid, order.filled_lot),
            "cumQty": format_qty(grid, order.filled_lot), "cumQuote": _num(float(order.quote_filled)),
            "timeInForce": order_tif(order), "type": usdm_type(order), "reduceOnly": order.order_id in self.reduce_only,
            "closePosition": False, "side": "BUY" if order.side > 0 else "SELL", "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": usdm_type(order),
            "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
            "updateTime": order.update_ms,
        }
        if with_time:
            reply["time"] = order.time_ms
        return reply

    def position_json(self, api_key: str, symbol: str, now_ns: int, *, v3: bool) -> dict:
        account = self.usdm[api_key]
        position = account.position(symbol)
        mark = self.mark(api_key, symbol)
        notional = position.notional(mark)
        maint = maintenance_margin(abs(notional))
        grid = self.grids[symbol]
        lots = round(position.amount / float(grid.lot_size))
        amount = ("-" if lots < 0 else "") + format_qty(grid, abs(lots))  # a short one-way position is negative
        buys, sells = self._side_notional(api_key, symbol)
        base = {
            "symbol": symbol, "positionSide": "BOTH", "positionAmt": amount, "entryPrice": _num(position.entry_price),
            "breakEvenPrice": _num(position.entry_price), "markPrice": _num(mark),
            "unRealizedProfit": _num(position.unrealized(mark)), "liquidationPrice": "0", "isolatedMargin": "0",
            "notional": _num(notional), "isolatedWallet": "0", "updateTime": now_ns // MS,
        }
        if v3:
            base |= {"marginAsset": account.asset, "initialMargin": _num(position.initial_margin(mark)
                                                                        + max(buys, sells) / position.leverage),
                     "maintMargin": _num(maint), "positionInitialMargin": _num(position.initial_margin(mark)),
                     "openOrderInitialMargin": _num(max(buys, sells) / position.leverage), "adl": 0,
                     "bidNotional": _num(buys), "askNotional": _num(sells)}
        else:
            base |= {"marginType": "cross", "isAutoAddMargin": "false", "leverage": str(position.leverage),
                     "maxNotionalValue": str(max_notional(position.leverage))}
        return base

    def account_json(self, api_key: str, now_ns: int, *, v3: bool = True) -> dict:
        account = self.usdm[api_key]
        marks = self.marks(api_key)
        unrealized = account.unrealized(marks)
        position_im = account.position_initial_margin(marks)
        order_im = sum(n / account.position(s).leverage for s, n in self.open_order_notional(api_key).items())
        maint = sum(maintenance_margin(abs(p.notional(marks[s]))) for s, p in account.positions.items() if p.amount)
        available = account.available(marks, self.open_order_notional(api_key))
        margin_balance = account.wallet + unrealized
        asset = {"asset": account.asset, "walletBalance": _num(account.wallet), "unrealizedProfit": _num(unrealized),
                 "marginBalance": _num(margin_balance), "maintMargin": _num(maint),
                 "initialMargin": _num(position_im + order_im), "positionInitialMargin": _num(position_im),
                 "openOrderInitialMargin": _num(order_im), "crossWalletBalance": _num(account.wallet),
                 "crossUnPnl": _num(unrealized), "availableBalance": _num(available),
                 "maxWithdrawAmount": _num(max(available, 0.0)), "updateTime": now_ns // MS}
        positions = [self.position_json(api_key, s, now_ns, v3=True) for s in self.symbols
                     if account.position(s).amount or self.open_orders(api_key, s)]
        reply = {"totalInitialMargin": _num(position_im + order_im), "totalMaintMargin": _num(maint),
                 "totalWalletBalance": _num(account.wallet), "totalUnrealizedProfit": _num(unrealized),
                 "totalMarginBalance": _num(margin_balance), "totalPositionInitialMargin": _num(position_im),
                 "totalOpenOrderInitialMargin": _num(order_im), "totalCrossWalletBalance": _num(account.wallet),
                 "totalCrossUnPnl": _num(unrealized), "availableBalance": _num(available),
                 "maxWithdrawAmount": _num(max(available, 0.0)), "assets": [asset],
                 "positions": [{k: p[k] for k in ("symbol", "positionSide", "positionAmt", "unRealizedProfit",
                                                  "isolatedMargin", "notional", "isolatedWallet", "initialMargin",
                                                  "maintMargin", "updateTime")} for p in positions]}
        if not v3:
            reply |= {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "updateTime": 0,
                      "multiAssetsMargin": False, "tradeGroupId": -1}
        return reply


def _klines_weight(params: Mapping[str, str]) -> int:
    """USD-M klines weight by `limit` (default 500): [1,100) 1, [100,500) 2, [500,1000] 5, more 10."""
    try:
        limit = int(params.get("limit", 500))
    except ValueError:
        return 1
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _rate_of_bps(bps: float) -> str:
    """A fee in bps as commissionRate writes it: 2.0 -> "0.000200"."""
    return f"{Decimal(repr(bps)) / 10000:.6f}"


def depth_weight(params: Mapping[str, str]) -> int:
    """depth's weight by `limit` (the most for a limit it refuses)."""
    try:
        limit = int(params.get("limit", DEFAULT_DEPTH))
    except (TypeError, ValueError):
        return 20
    return DEPTH_WEIGHTS.get(limit, 20)


def _batch_list(params: Mapping[str, str], name: str, most: int) -> list:
    """A batch parameter: a JSON list of 1..`most` entries, or -1102 / -1130 naming it."""
    text = params.get(name)
    if not text:
        raise VenueError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    try:
        entries = json.loads(text)
    except ValueError:
        entries = None
    if not isinstance(entries, list) or not 1 <= len(entries) <= most:
        raise VenueError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    return entries


def _param_text(value: object) -> str:
    """A batch entry's value as the text a query parameter would carry (JSON true -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def usdm_type(order: VenueOrder) -> str:
    return "MARKET" if order.type == "MARKET" else "LIMIT"  # GTX rests in the engine as LIMIT_MAKER


def order_tif(order: VenueOrder) -> str:
    return "GTX" if order.type == "LIMIT_MAKER" else order.tif


def maintenance_margin(notional: float) -> float:
    for cap, _, ratio, amount in BRACKETS:
        if notional <= cap:
            return notional * ratio - amount
    _, _, ratio, amount = BRACKETS[-1]
    return notional * ratio - amount


def max_notional(leverage: int) -> int:
    return max((cap for cap, max_lev, _, _ in BRACKETS if max_lev >= leverage), default=BRACKETS[0][0])


# ---- REST ----------------------------------------------------------------------------------------


class UsdmSide(OrderSide):
    """The `/fapi` REST API: OrderSide's checks, limits and faults with USD-M routes, weights and replies."""

    def __init__(self, engine: UsdmEngine, *, market: VenueMarket, **kwargs) -> None:
        super().__init__(engine, **kwargs)
        self.engine: UsdmEngine = engine
        self.market = market
        self.weights = dict(USDM_WEIGHTS)
        self.order_endpoints = frozenset({"new", "modify", "batch_new"})
        self.listen_keys = None  # processes.venue_usdm_ws.ListenKeys, when the user-data stream is mounted

    def mount(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/fapi/v1/ping", self._public("time", lambda request, now_ns: {}))
        r.add_get("/fapi/v1/time", self._public("time", lambda request, now_ns: {"serverTime": now_ns // MS}))
        r.add_get("/sapi/v1/system/status", self._on_system_status)  # binanceusdm's fetch_status asks sapi
        self.mount_unserved(r, WALLET_ROUTES + UNSERVED_ROUTES)
        r.add_get("/fapi/v1/exchangeInfo", self._public("exchange_info", self._exchange_info))
        r.add_get("/fapi/v1/depth", self._on_depth)
        r.add_get("/fapi/v1/ticker/bookTicker", self._on_book_ticker)
        tape = self.market.tape
        r.add_get("/fapi/v1/ticker/24hr", self._market_view(lambda p: 1 if "symbol" in p else 40,
                                                            lambda p, now_ms: tape.ticker_24h(p, now_ms)))
        r.add_get("/fapi/v1/klines", self._market_view(_klines_weight, lambda p, now_ms: tape.klines(p, 1500)))
        for path, name, is_premium in (("markPriceKlines", "symbol", False), ("indexPriceKlines", "pair", False),
                                       ("premiumIndexKlines", "symbol", True)):
            r.add_get(f"/fapi/v1/{path}", self._market_view(_klines_weight, self._mark_klines(name, is_premium)))
        r.add_get("/fapi/v1/aggTrades", self._market_view(lambda p: 20, lambda p, now_ms: tape.agg_trades(p)))
        r.add_get("/fapi/v1/trades", self._market_view(lambda p: 5, lambda p, now_ms: tape.recent_trades(p)))
        for version in ("v1", "v2"):
            r.add_get(f"/fapi/{version}/ticker/price", self._market_view(lambda p: 1 if "symbol" in p else 2,
                                                                         tape.ticker_price))
        r.add_get("/fapi/v1/fundingInfo", self._market_view(lambda p: 1, self._funding_info))
        r.add_get("/fapi/v1/premiumIndex", self._market_view(lambda p: 1 if "symbol" in p else 10, self._premium_index))
        r.add_get("/fapi/v1/fundingRate", self._market_view(lambda p: 1, self._funding_rates))
        r.add_post("/fapi/v1/marginType", self._handler("margin_type", self._margin_type))
        r.add_get("/fapi/v1/commissionRate", self._handler("commission_rate", self._commission_rate))
        r.add_get("/fapi/v1/symbolConfig", self._handler("symbol_config", self._symbol_config))
        r.add_post("/fapi/v1/order", self._handler("new", self._new))
        r.add_put("/fapi/v1/order", self._handler("modify", self._modify))
        r.add_delete("/fapi/v1/order", self._handler("cancel", self._cancel))
        r.add_get("/fapi/v1/order", self._handler("query", self._query))
        r.add_get("/fapi/v1/openOrders", self._handler("open_orders", self._open))
        r.add_get("/fapi/v1/openOrder", self._handler("open_order", self._open_order))
        r.add_post("/fapi/v1/batchOrders", self._handler("batch_new", self._batch_new))
        r.add_delete("/fapi/v1/batchOrders", self._handler("batch_cancel", self._batch_cancel))
        r.add_delete("/fapi/v1/allOpenOrders", self._handler("cancel_all", self._cancel_all_usdm))
        for version in ("v2", "v3"):
            v3 = version == "v3"
            r.add_get(f"/fapi/{version}/positionRisk", self._handler("position_risk", self._positions(v3)))
            r.add_get(f"/fapi/{version}/account", self._handler(
                "account", lambda key, params, now_ns, v3=v3: self.engine.account_json(key, now_ns, v3=v3)))
            r.add_get(f"/fapi/{version}/balance", self._handler("balance", self._balance))
        r.add_post("/fapi/v1/leverage", self._handler("leverage", self._leverage))
        r.add_get("/fapi/v1/leverageBracket", self._handler("leverage_bracket", self._brackets))
        r.add_post("/fapi/v1/positionSide/dual", self._handler("position_mode_change", self._position_mode))
        r.add_get("/fapi/v1/accountConfig", self._handler("account_config", self._account_config))
        r.add_get("/fapi/v1/income", self._handler("income", self._income))
        r.add_get("/fapi/v1/forceOrders", self._handler("force_orders", self._force_orders))
        r.add_get("/fapi/v1/openInterest", self._market_view(lambda p: 1, self._open_interest))
        r.add_get("/fapi/v1/positionSide/dual", self._handler(
            "position_mode", lambda key, params, now_ns: {"dualSidePosition": False}))
        r.add_get("/fapi/v1/userTrades", self._handler("my_trades", self._user_trades))
        r.add_get("/fapi/v1/allOrders", self._handler("all_orders", lambda key, params, now_ns: [
            self.engine.usdm_order_json(o) for o in self.engine.all_orders(key, params)]))
        r.add_post("/fapi/v1/countdownCancelAll", self._handler("countdown", self._countdown))
        r.add_post("/fapi/v1/listenKey", self._user_stream("post"))
        r.add_put("/fapi/v1/listenKey", self._user_stream("put"))
        r.add_delete("/fapi/v1/listenKey", self._user_stream("delete"))
        app.on_shutdown.append(self._on_shutdown)

    # -- unsigned endpoints --

    def _public(self, endpoint: str, action):
        async def handle(request: web.Request) -> web.Response:
            self.counts[f"requests_{endpoint}"] += 1
            ip = request.remote or ""
            now_ns = time.time_ns()
            error = self._limits.charge_weight(ip, self.weights[endpoint], now_ns / 1e9)
            if error is not None:
                return self._error_response(error, ip, now_ns)
            return self._json(action(request, now_ns), ip, now_ns)

        return handle

    def _market_view(self, weight_of: Callable[[Mapping[str, str]], int], view):
        """A public view of the venue's own market (processes.venue_tape, premiumIndex): IP weight, then
        the view, or its Binance error."""

        async def handle(request: web.Request) -> web.Response:
            ip = request.remote or ""
            now_ns = time.time_ns()
            params = request.query
            error = self._limits.charge_weight(ip, weight_of(params), now_ns / 1e9)
            if error is not None:
                return self._error_response(error, ip, now_ns)
            try:
                body = view(params, now_ns // MS)
            except VenueError as e:
                self.counts[f"error_{e.code}"] += 1
                return self._error_response(e, ip, now_ns)
            return self._json(body, ip, now_ns)

        return handle

    def _premium_index(self, params: Mapping[str, str], now_ms: int) -> dict | list:
        """Mark and index price: the venue book's mid (as `@markPrice`); funding as FUNDING_RATE says."""
        one = params.get("symbol")
        names = [one.upper()] if one is not None else sorted(self.symbols)
        entries = []
        for name in names:
            if name not in self.symbols:
                raise VenueError(400, -1121, "Invalid symbol.")
            mid = self.market.mid(name)
            price = f"{mid:.8f}" if mid is not None else "0.00000000"
            entries.append({"symbol": name, "markPrice": price, "indexPrice": price, "estimatedSettlePrice": price,
                            "lastFundingRate": FUNDING_RATE, "interestRate": INTEREST_RATE,
                            "nextFundingTime": (now_ms // FUNDING_MS + 1) * FUNDING_MS, "time": now_ms})
        return entries[0] if one is not None else entries

    def _funding_rates(self, params: Mapping[str, str], now_ms: int) -> list:
        """fundingRate: the funding times that passed while this venue ran, oldest first; `startTime` gives
        the first `limit` from it, else the last `limit` (default 100, max 1000)."""
        symbol = params.get("symbol", "").upper()
        if symbol and symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = limit_param(params, 1000, default=100)
        rows = [f for f in self.market.funding_history if (not symbol or f["symbol"] == symbol)
                and (start is None or f["fundingTime"] >= start) and (end is None or f["fundingTime"] <= end)]
        return rows[:limit] if start is not None else rows[-limit:]

    def _mark_klines(self, name: str, is_premium: bool):
        """mark / index / premium index klines from the marks the venue published (UsdmMarket.marks); the
        symbol is in `name`; index = mark and the premium is 0 here, as premiumIndex says."""

        def view(params: Mapping[str, str], now_ms: int) -> list:
            symbol = params.get(name, "").upper()
            if not symbol:
                raise VenueError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
            if symbol not in self.symbols:
                raise VenueError(400, -1121, "Invalid symbol.")
            interval_ms = INTERVAL_MS.get(params.get("interval", ""))
            if interval_ms is None:
                raise VenueError(400, -1120, "Invalid interval.")
            found = sample_klines(self.market.marks.get(symbol, ()), interval_ms, int_param(params, "startTime"),
                                  int_param(params, "endTime"), limit_param(params, 1500))
            return [[k.open_ms, *(f"{0.0 if is_premium else px:.8f}" for px in (k.open_px, k.high_px, k.low_px,
                                                                                 k.close_px)),
                     "0", k.open_ms + interval_ms - 1, "0", k.count, "0", "0", "0"] for k in found]

        return view

    def _funding_info(self, params: Mapping[str, str], now_ms: int) -> list:
        """fundingInfo: every symbol funds every FUNDING_MS, capped as Binance's default."""
        return [{"symbol": name, "adjustedFundingRateCap": "0.02000000", "adjustedFundingRateFloor": "-0.02000000",
                 "fundingIntervalHours": FUNDING_MS // 3_600_000, "disclaimer": False} for name in sorted(self.symbols)]

    def _margin_type(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        """The venue runs cross margin only: CROSSED is -4046 (already so, which ccxt takes as done);
        ISOLATED is refused as Binance refuses it (-4048 with a position, -4047 with open orders), else
        -1020: this venue has no isolated margin."""
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        margin_type = params.get("marginType", "")
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise VenueError(400, -1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
        if margin_type == "CROSSED":
            raise VenueError(400, -4046, "No need to change margin type.")
        if self.engine.usdm[api_key].position(symbol).amount:
            raise VenueError(400, -4048, "Margin type cannot be changed if there exists position.")
        if self.engine.open_orders(api_key, symbol):
            raise VenueError(400, -4047, "Margin type cannot be changed if there exists open orders.")
        raise VenueError(400, -1020, "This operation is not supported.")

    def _position_mode(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        """The venue runs one-way mode only: `false` is -4059 (already so); hedge mode is refused as Binance
        refuses it (-4068 with a position, -4067 with open orders), else -1020."""
        dual = params.get("dualSidePosition", "").lower()
        if dual not in ("true", "false"):
            raise VenueError(400, -1102, "Mandatory parameter 'dualSidePosition' was not sent, was empty/null, "
                                         "or malformed.")
        if dual == "false":
            raise VenueError(400, -4059, "No need to change position side.")
        if any(p.amount for p in self.engine.usdm[api_key].positions.values()):
            raise VenueError(400, -4068, "Position side cannot be changed if there exists position.")
        if self.engine.open_orders(api_key, None):
            raise VenueError(400, -4067, "Position side cannot be changed if there exists open orders.")
        raise VenueError(400, -1020, "This operation is not supported.")

    def _account_config(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "dualSidePosition": False,
                "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}

    def _income(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        """income: what this key's fills booked (INCOME_TYPES), oldest first, within [startTime, endTime];
        the first `limit` (default 100, max 1000) from `startTime`, else the last `limit`."""
        symbol = params.get("symbol", "").upper()
        if symbol and symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        kind = params.get("incomeType", "")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = limit_param(params, 1000, default=100)
        rows = []
        for trade in self.engine.trades:
            if trade["_key"] != api_key or (symbol and trade["symbol"] != symbol) or not (
                    (start is None or trade["time"] >= start) and (end is None or trade["time"] <= end)):
                continue
            booked = {"COMMISSION": f"{-Decimal(trade['commission']):f}", "REALIZED_PNL": trade["realizedPnl"]}
            for n, name in enumerate(INCOME_TYPES):
                if (not kind or kind == name) and float(booked[name]):
                    rows.append({"symbol": trade["symbol"], "incomeType": name, "income": booked[name],
                                 "asset": trade["commissionAsset"], "info": name, "time": trade["time"],
                                 "tranId": trade["id"] * len(INCOME_TYPES) + n, "tradeId": str(trade["id"])})
        return rows[:limit] if start is not None else rows[-limit:]

    def _force_orders(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        """forceOrders: the venue never liquidates, so there are none."""
        symbol = params.get("symbol", "").upper()
        if symbol and symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        return []

    def _open_interest(self, params: Mapping[str, str], now_ms: int) -> dict:
        """openInterest: the long contracts open at this venue, which are all its accounts' longs."""
        symbol = params.get("symbol", "").upper()
        if not symbol:
            raise VenueError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        grid = self.engine.grids[symbol]
        lots = sum(max(0, round(a.position(symbol).amount / float(grid.lot_size))) for a in self.engine.usdm.values())
        return {"openInterest": format_qty(grid, lots), "symbol": symbol, "time": now_ms}

    def _commission_rate(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        return {"symbol": symbol, "makerCommissionRate": _rate_of_bps(self.engine.maker_fee_bps),
                "takerCommissionRate": _rate_of_bps(self.engine.taker_fee_bps)}

    def _symbol_config(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        symbol = params.get("symbol", "").upper()
        if symbol and symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        account = self.engine.usdm[api_key]
        return [{"symbol": s, "marginType": "CROSSED", "isAutoAddMargin": "false",
                 "leverage": account.position(s).leverage,
                 "maxNotionalValue": str(max_notional(account.position(s).leverage))}
                for s in self.symbols if not symbol or s == symbol]

    def _user_stream(self, verb: str):
        """listenKey POST / PUT / DELETE: the API-key header only, no signature (BINANCE.md §7.2)."""

        async def handle(request: web.Request) -> web.Response:
            self.counts[f"requests_listen_key_{verb}"] += 1
            ip = request.remote or ""
            now_ns = time.time_ns()
            try:
                error = self._limits.charge_weight(ip, self.weights["listen_key"], now_ns / 1e9)
                if error is not None:
                    raise error
                api_key = request.headers.get("X-MBX-APIKEY", "")
                key_secret(self.keys, api_key)
                if self.listen_keys is None:
                    raise VenueError(400, -1125, "This listenKey does not exist.")
                if verb == "post":
                    reply: dict = {"listenKey": self.listen_keys.create(api_key)}
                elif verb == "put":
                    reply = {"listenKey": self.listen_keys.keep_alive(api_key)}
                else:
                    self.listen_keys.close(api_key)
                    reply = {}
            except VenueError as e:
                self.counts[f"error_{e.code}"] += 1
                return self._error_response(e, ip, now_ns)
            return self._json(reply, ip, now_ns)

        return handle

    def _exchange_info(self, request: web.Request, now_ns: int) -> dict:
        return usdm_exchange_info(self.symbols, self.limits, now_ns, self.engine.grids)

    async def _on_depth(self, request: web.Request) -> web.Response:
        ip = request.remote or ""
        now_ns = time.time_ns()
        error = self._limits.charge_weight(ip, depth_weight(request.query), now_ns / 1e9)
        if error is not None:
            return self._error_response(error, ip, now_ns)
        try:
            body = self.depth_json(request.query, now_ns // MS)
        except VenueError as e:
            return self._error_response(e, ip, now_ns)
        self.counts["depth_requests"] += 1
        return self._json(body, ip, now_ns)

    def depth_json(self, params: Mapping[str, str], now_ms: int) -> dict:
        """depth (REST and ws-fapi): the venue book's top `limit` levels and its last update id."""
        try:
            limit = int(params.get("limit", DEFAULT_DEPTH))
        except (TypeError, ValueError):
            limit = -1
        if limit not in DEPTH_WEIGHTS:
            raise VenueError(400, -1100, "Illegal characters found in parameter 'limit'; "
                                         "legal range is '5, 10, 20, 50, 100, 500, 1000'.")
        state = self._book_of(params.get("symbol", ""))
        if not state.sync.is_synced:
            raise VenueError(503, -1001, "Internal error; unable to process your request. Please try again.")
        top = state.top(limit)
        return {"lastUpdateId": state.sync.last_id, "E": now_ms, "T": now_ms, "bids": top["bids"], "asks": top["asks"]}

    async def _on_book_ticker(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ticker/bookTicker: `symbol=` one object (weight 2), none: a list of every symbol
        (weight 5), each with the depth stream's `lastUpdateId` and `time` (ccxt's fetch_bids_asks)."""
        ip = request.remote or ""
        now_ns = time.time_ns()
        one = request.query.get("symbol")
        error = self._limits.charge_weight(ip, 2 if one is not None else 5, now_ns / 1e9)
        if error is not None:
            return self._error_response(error, ip, now_ns)
        try:
            body = self.book_ticker_json(request.query, now_ns // MS)
        except VenueError as e:
            return self._error_response(e, ip, now_ns)
        self.counts["book_ticker_requests"] += 1
        return self._json(body, ip, now_ns)

    def book_ticker_json(self, params: Mapping[str, str], now_ms: int) -> dict | list:
        """ticker/bookTicker (REST) and ticker.book (ws-fapi): `symbol=` one object, none: every symbol."""
        one = params.get("symbol")
        tickers = []
        for name in [one] if one is not None else sorted(self.market.books.books):
            state = self._book_of(name)
            top = state.top(1)
            bid = top["bids"][0] if top["bids"] else ["0", "0"]
            ask = top["asks"][0] if top["asks"] else ["0", "0"]
            tickers.append({"lastUpdateId": state.sync.last_id, "symbol": name.upper(), "bidPrice": bid[0],
                            "bidQty": bid[1], "askPrice": ask[0], "askQty": ask[1], "time": now_ms})
        return tickers[0] if one is not None else tickers

    def _book_of(self, symbol: str):
        state = self.market.books.books.get(symbol.upper())
        if state is None or state.grid is None:
            raise VenueError(400, -1121, "Invalid symbol.")
        return state

    # -- signed actions (sync) --

    def _new(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        order = self.engine.new_order(api_key, params, now_ns)
        return self.engine.usdm_order_json(order, with_time=False)

    def _modify(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        return self.engine.usdm_order_json(self.engine.modify(api_key, params, now_ns), with_time=False)

    def _cancel(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        return self.engine.usdm_order_json(self.engine.cancel(api_key, params, now_ns), with_time=False)

    def _query(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        order = self.engine.find(params)
        if order is None or order.api_key != api_key:
            raise VenueError(400, E_NO_SUCH_ORDER, MSG_NO_SUCH_ORDER)
        return self.engine.usdm_order_json(order)

    def _open_order(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        """openOrder: one open order; a filled or cancelled one "does not exist" (-2013), as on Binance."""
        order = self.engine.find(params)
        if order is None or order.api_key != api_key or not order.is_open:
            raise VenueError(400, E_NO_SUCH_ORDER, MSG_NO_SUCH_ORDER)
        return self.engine.usdm_order_json(order)

    def _batch_new(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        """POST batchOrders: up to BATCH_NEW_MAX orders, each placed as POST /order would place it, in
        order; each answer is the order or its own error."""
        replies = []
        for one in _batch_list(params, "batchOrders", BATCH_NEW_MAX):
            if not isinstance(one, dict):
                raise VenueError(400, -1130, "Data sent for parameter 'batchOrders' is not valid.")
            try:
                replies.append(self._new(api_key, {k: _param_text(v) for k, v in one.items()}, now_ns))
            except VenueError as e:
                self.counts[f"error_{e.code}"] += 1
                replies.append({"code": e.code, "msg": e.msg})
        return replies

    def _batch_cancel(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        """DELETE batchOrders: `orderIdList` or `origClientOrderIdList` (JSON lists, up to BATCH_CANCEL_MAX;
        ccxt writes the names in lower case, which Binance accepts); each answer is the order or its error."""
        names = {k.lower(): k for k in params}
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        if "orderidlist" in names:
            wanted = [{"symbol": symbol, "orderId": _param_text(i)}
                      for i in _batch_list(params, names["orderidlist"], BATCH_CANCEL_MAX)]
        elif "origclientorderidlist" in names:
            wanted = [{"symbol": symbol, "origClientOrderId": _param_text(c)}
                      for c in _batch_list(params, names["origclientorderidlist"], BATCH_CANCEL_MAX)]
        else:
            raise VenueError(400, -1102, "Param 'origClientOrderIdList' or 'orderIdList' must be sent, "
                                         "but both were empty/null!")
        replies = []
        for one in wanted:
            try:
                replies.append(self._cancel(api_key, one, now_ns))
            except VenueError as e:
                self.counts[f"error_{e.code}"] += 1
                replies.append({"code": e.code, "msg": e.msg})
        return replies

    def _open(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        symbol = params.get("symbol", "").upper() or None
        if symbol is not None and symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        return [self.engine.usdm_order_json(o) for o in self.engine.open_orders(api_key, symbol)]

    def _cancel_all_usdm(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        symbol = params.get("symbol", "").upper()
        try:
            self.engine.cancel_all(api_key, symbol, now_ns)
        except VenueError as e:
            if e.code != E_CANCEL_REJECTED:  # none open: still "done" on USD-M
                raise
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _positions(self, v3: bool):
        def positions(api_key: str, params: Mapping[str, str], now_ns: int) -> list:
            symbol = params.get("symbol", "").upper()
            if symbol and symbol not in self.symbols:
                raise VenueError(400, -1121, "Invalid symbol.")
            engine = self.engine
            wanted = [symbol] if symbol else list(self.symbols)
            if v3:  # only symbols with a position or an open order
                wanted = [s for s in wanted if engine.usdm[api_key].position(s).amount or engine.open_orders(api_key, s)]
            return [engine.position_json(api_key, s, now_ns, v3=v3) for s in wanted]

        return positions

    def _balance(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        asset = self.engine.account_json(api_key, now_ns)["assets"][0]
        return [{"accountAlias": "mm", "asset": asset["asset"], "balance": asset["walletBalance"],
                 "crossWalletBalance": asset["crossWalletBalance"], "crossUnPnl": asset["crossUnPnl"],
                 "availableBalance": asset["availableBalance"], "maxWithdrawAmount": asset["maxWithdrawAmount"],
                 "marginAvailable": True, "updateTime": now_ns // MS}]

    def _leverage(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        text = params.get("leverage", "")
        try:
            leverage = check_leverage(int(text))
        except ValueError:
            raise VenueError(400, E_LEVERAGE, f"Leverage {text} is not valid") from None
        self.engine.usdm[api_key].set_leverage(symbol, leverage)
        return {"leverage": leverage, "maxNotionalValue": str(max_notional(leverage)), "symbol": symbol}

    def _brackets(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        floor = 0
        brackets = []
        for number, (cap, leverage, ratio, amount) in enumerate(BRACKETS, 1):
            brackets.append({"bracket": number, "initialLeverage": leverage, "notionalCap": cap,
                             "notionalFloor": floor, "maintMarginRatio": ratio, "cum": amount})
            floor = cap
        symbol = params.get("symbol", "").upper()
        entries = [{"symbol": s, "notionalCoef": 1.0, "brackets": brackets} for s in self.symbols
                   if not symbol or s == symbol]
        return entries[0] if symbol and entries else entries

    def _user_trades(self, api_key: str, params: Mapping[str, str], now_ns: int) -> list:
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        return [{"buyer": t["isBuyer"], "commission": t["commission"], "commissionAsset": t["commissionAsset"],
                 "id": t["id"], "maker": t["isMaker"], "orderId": t["orderId"], "price": t["price"], "qty": t["qty"],
                 "quoteQty": t["quoteQty"], "realizedPnl": t["realizedPnl"], "side": t["side"],
                 "positionSide": "BOTH", "symbol": symbol, "time": t["time"]}
                for t in self.engine.trades if t["_key"] == api_key and t["symbol"] == symbol]

    def _countdown(self, api_key: str, params: Mapping[str, str], now_ns: int) -> dict:
        symbol = params.get("symbol", "").upper()
        if symbol not in self.symbols:
            raise VenueError(400, -1121, "Invalid symbol.")
        text = params.get("countdownTime", "")
        try:
            countdown_ms = int(text)
            self.engine.countdowns[api_key].arm(symbol, now_ns // MS, countdown_ms)
        except ValueError:
            raise VenueError(400, -1102, "Mandatory parameter 'countdownTime' was not sent, was empty/null, "
                                         "or malformed.") from None
        self.counts["countdown_armed" if countdown_ms else "countdown_stopped"] += 1
        return {"symbol": symbol, "countdownTime": str(countdown_ms)}


def usdm_exchange_info(symbols: Mapping[str, SymbolRules], limits: OrderLimits, now_ns: int, grids) -> dict:
    entries = []
    for rules in symbols.values():
        grid = grids[rules.symbol]
        entries.append({
            "symbol": rules.symbol, "pair": rules.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000", "baseAsset": rules.base_asset, "quoteAsset": rules.quote_asset,
            "marginAsset": rules.quote_asset, "pricePrecision": grid.price_decimals,
            "quantityPrecision": grid.qty_decimals, "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": rules.min_price, "maxPrice": rules.max_price,
                 "tickSize": rules.tick_size},
                {"filterType": "LOT_SIZE", "minQty": rules.min_qty, "maxQty": rules.max_qty,
                 "stepSize": rules.lot_size},
                {"filterType": "MARKET_LOT_SIZE", "minQty": rules.min_qty, "maxQty": rules.max_qty,
                 "stepSize": rules.lot_size},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": rules.min_notional},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                 "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "permissionSets": ["GRID", "COPY"],
        })
    asset = next(iter(symbols.values())).quote_asset if symbols else "USDT"
    return {"timezone": "UTC", "serverTime": now_ns // MS, "futuresType": "U_MARGINED",
            "rateLimits": [{"rateLimitType": r.kind, "interval": r.interval, "intervalNum": r.interval_num,
                            "limit": r.limit} for r in limits.rate_limits],
            "exchangeFilters": [],
            "assets": [{"asset": asset, "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": entries}


# ---- market streams ------------------------------------------------------------------------------


class _RoutedConnection(_Connection):
    """A market-stream connection on `/public` or `/market`: only that route's stream kinds reach it."""

    def __init__(self, venue: VenueMarket, streams: list[str], is_combined: bool, kinds: frozenset[str]) -> None:
        super().__init__(venue, streams, is_combined)
        self.kinds = kinds
        self._filter()

    def _on_control(self, body: bytes) -> None:
        super()._on_control(body)
        self._filter()

    def _filter(self) -> None:
        self.keys = {k for k in self.keys if k[1] in self.kinds}


class UsdmMarket(VenueMarket):
    """VenueMarket with USD-M's routes and frames; `timers` are extra coroutines run while it is up."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.timers: list[Callable] = []  # async callables() run from start() until stop()
        self.private_route: Callable[[WSUpgradeRequest, str], WSListener | None] | None = None  # /ws/<listenKey>
        self._timer_tasks: list[asyncio.Task] = []
        self.tape.futures = True  # USD-M's ticker and trade shapes
        self.funding_history: list[dict] = []  # the funding times passed while the venue ran (fundingRate)
        self.marks: dict[str, deque[tuple[int, float]]] = {}  # symbol -> (ms, mark) published (markPriceKlines)
        self._last_mark_ms = 0

    @property
    def sim_decimals(self) -> tuple[int, int]:  # type: ignore[override]
        return decimals_of(self.tick_size), decimals_of(self.lot_size)

    async def start(self) -> None:
        await super().start()
        timers = list(self.timers) + ([self._mark_prices] if self.feed is None else [])
        self._timer_tasks = [asyncio.create_task(timer(), name="usdm-timer") for timer in timers]

    async def _mark_prices(self) -> None:
        """The simulator's `<s>@markPrice@1s` (every second) and `<s>@markPrice` (every 3 s): the book's mid
        as mark and index price, funding rate 0.0001, next funding at the next 8-hour mark."""
        symbol, lower = self.symbol, self.symbol.lower()
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            mid = self.mid(symbol)
            if mid is None:
                continue
            now_ms = time.time_ns() // MS
            self.marks.setdefault(symbol, deque(maxlen=MARK_HISTORY)).append((now_ms, mid))
            price = f"{mid:.8f}"
            data = {"e": "markPriceUpdate", "E": now_ms, "s": symbol, "p": price, "ap": price, "P": price,
                    "i": price, "r": FUNDING_RATE, "T": (now_ms // FUNDING_MS + 1) * FUNDING_MS}
            if self._last_mark_ms and now_ms // FUNDING_MS > self._last_mark_ms // FUNDING_MS:
                self.funding_history.append({"symbol": symbol, "fundingTime": now_ms // FUNDING_MS * FUNDING_MS,
                                             "fundingRate": FUNDING_RATE, "markPrice": price})
            self._last_mark_ms = now_ms
            for kind in ("markPrice@1s", "markPrice") if ticks % 3 == 0 else ("markPrice@1s",):
                self._broadcast((lower, kind), msgspec.json.encode({"stream": f"{lower}@{kind}", "data": data}))

    async def stop(self) -> None:
        await cancel_all(self._timer_tasks)
        self._timer_tasks = []
        await super().stop()

    def stream_names(self, symbol: str | None = None) -> list[str]:
        lower = (symbol or self.symbol).lower()
        return [f"{lower}@depth@100ms", f"{lower}@aggTrade", f"{lower}@bookTicker"]

    def _listener_for(self, request: WSUpgradeRequest) -> WSListener | None:
        path = request.path.decode("latin-1")
        route_path = urlsplit(path).path
        if route_path in self.ws_routes:
            return self.ws_routes[route_path](request)
        if route_path.startswith("/ws/") and self.private_route is not None:
            listener = self.private_route(request, route_path[4:])
            if listener is not None:
                return listener
        for prefix, kinds in (("/public", PUBLIC_KINDS), ("/market", MARKET_KINDS)):
            if route_path.startswith(prefix + "/"):
                parsed = streams_of_path(path[len(prefix):])
                if parsed is None:
                    self.counts["bad_path"] += 1
                    return None
                return _RoutedConnection(self, parsed[0], parsed[1], kinds)
        return super()._listener_for(request)

    async def _produce_sim(self):
        """The simulator's frames in USD-M form: diffs chained by `pu`, `aggTrade` and `trade` for trades."""
        decode = msgspec.json.decode
        encode = msgspec.json.encode
        lower = self.symbol.lower()
        prev_u = -1
        async for body in super()._produce_sim():
            data = decode(body)["data"]
            if data["e"] == "depthUpdate":
                if prev_u < 0:
                    prev_u = data["U"] - 1  # the snapshot's lastUpdateId: U <= lastUpdateId <= u holds
                yield encode({"stream": f"{lower}@depth@100ms", "data": {
                    "e": "depthUpdate", "E": data["E"], "T": data["E"], "s": data["s"], "U": prev_u,
                    "u": data["u"], "pu": prev_u, "b": data["b"], "a": data["a"]}})
                prev_u = data["u"]
            else:
                yield encode({"stream": f"{lower}@aggTrade", "data": {
                    "e": "aggTrade", "E": data["E"], "a": data["t"], "s": data["s"], "p": data["p"], "q": data["q"],
                    "f": data["t"], "l": data["t"], "T": data["T"], "m": data["m"]}})
                # `@trade` too (BINANCE.md §3: served, with `X`, no `M`): ccxt.pro's watch_trades subscribes it
                yield encode({"stream": f"{lower}@trade", "data": {
                    "e": "trade", "E": data["E"], "T": data["T"], "s": data["s"], "t": data["t"], "p": data["p"],
                    "q": data["q"], "X": "MARKET", "m": data["m"]}})

    def _send_book_ticker(self, symbol: str, frame) -> None:
        state = self.books.books[symbol]
        book = state.sync.book
        best_bid, best_ask, grid = book.best_bid(), book.best_ask(), state.grid
        if best_bid is None or best_ask is None or grid is None or not state.sync.is_synced:
            return
        now_ms = time.time_ns() // MS
        data = {"e": "bookTicker", "u": frame.u, "s": symbol, "b": format_price(grid, best_bid[0]),
                "B": format_qty(grid, best_bid[1]), "a": format_price(grid, best_ask[0]),
                "A": format_qty(grid, best_ask[1]), "T": frame.T or now_ms, "E": now_ms}
        name = f"{symbol.lower()}@bookTicker"
        self._broadcast((symbol.lower(), "bookTicker"), msgspec.json.encode({"stream": name, "data": data}))

    def mid(self, symbol: str) -> float | None:
        state = self.books.books.get(symbol)
        if state is None or not state.sync.is_synced:
            return None
        top = state.top(1)
        if not top["bids"] or not top["asks"]:
            return None
        return (float(top["bids"][0][0]) + float(top["asks"][0][0])) / 2


def countdown_timer(engine: UsdmEngine) -> Callable:
    async def run() -> None:
        while True:
            await asyncio.sleep(COUNTDOWN_TICK_S)
            if any(c.next_deadline_ms() is not None for c in engine.countdowns.values()):
                engine.run_countdowns(time.time_ns())

    return run


# ---- building it ---------------------------------------------------------------------------------


def add_usdm_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--market usdm")
    group.add_argument("--wallet", type=float, default=100_000.0, help="USDT wallet balance of every key")
    group.add_argument("--leverage", type=int, default=20, help="starting leverage of every symbol")
    group.add_argument("--listen-key-ttl", type=float, default=3600.0,
                       help="seconds a listenKey lives without a keep-alive (Binance: 60 min)")
    group.add_argument("--orders-1m", type=int, default=1200, help="ORDERS per minute per key (USD-M)")


def build_usdm(args: argparse.Namespace, environ: Mapping[str, str] | None = None):
    """(UsdmMarket, UsdmSide, UsdmWsApi) from the command line; raises ValueError on a bad flag."""
    import os

    from processes.venue_usdm_ws import UsdmUserData, UsdmWsApi
    from processes.venue_ws_api import mount_counts, ws_api_faults_from_args

    environ = os.environ if environ is None else environ
    keys = parse_venue_keys(environ.get(KEYS_ENV, ""))
    if not keys:
        log.warning("venue order API: %s is empty: every signed request gets -2015", KEYS_ENV)
    faults = VenueFaults(drop_diffs=args.drop_diffs, duplicate_every=args.duplicate_every,
                         reorder_every=args.reorder_every, disconnect_every_s=args.disconnect_every,
                         stall_s=args.stall, malformed_every=args.malformed_every, skip_pongs=args.skip_pongs,
                         fault_after_diffs=args.fault_after)
    http_port = args.http_port if args.http_port is not None else (args.port + 1 if args.port else 0)
    market = UsdmMarket(feed=args.feed, symbol=args.symbol, speed=args.speed, faults=faults, port=args.port,
                        http_port=http_port,
                        ping_interval_s=PING_INTERVAL_S if args.ping_interval is None else args.ping_interval,
                        pong_timeout_s=PONG_TIMEOUT_S if args.pong_timeout is None else args.pong_timeout)
    rules = usdm_rules(market.symbol, args.base_asset.upper(), args.quote_asset.upper(), market.tick_size,
                       market.lot_size, args.min_notional)
    tier = venue_tier("usdm")
    engine = UsdmEngine({rules.symbol: rules}, keys=keys, wallet=args.wallet, leverage=args.leverage,
                        mark_of=market.mid,
                        maker_fee_bps=tier.maker_bps if args.maker_fee_bps is None else args.maker_fee_bps,
                        taker_fee_bps=tier.taker_bps if args.taker_fee_bps is None else args.taker_fee_bps,
                        seed_book=book_seeder(market),
                        queue=queue_model(args.queue_model, power=args.queue_power, ratio=0.5))
    limits = OrderLimits(
        rate_limits=(RateLimitRule(kind="REQUEST_WEIGHT", interval="MINUTE", interval_num=1, limit=args.weight_limit),
                     RateLimitRule(kind="ORDERS", interval="SECOND", interval_num=10, limit=args.orders_10s),
                     RateLimitRule(kind="ORDERS", interval="MINUTE", interval_num=1, limit=args.orders_1m)),
        ban_after_429s=args.ban_after, ban_s=args.ban_s)
    order_faults = OrderFaults(latency_ms=args.order_latency_ms, error_5xx_ratio=args.error_5xx_ratio,
                               timeout_ratio=args.timeout_ratio, drop_ratio=args.drop_ratio, seed=args.fault_seed)
    side = UsdmSide(engine, market=market, keys=keys, symbols={rules.symbol: rules}, faults=order_faults,
                    limits=limits)
    market.app_hooks.append(side.mount)
    market.frame_listeners.append(side.on_frame)
    market.timers.append(countdown_timer(engine))
    ws_faults = ws_api_faults_from_args(args)
    user_data = UsdmUserData(market, side, ttl_s=args.listen_key_ttl, faults=ws_faults)
    user_data.mount()
    api = UsdmWsApi(market, side, ws_faults)
    api.mount()
    mount_counts(market, {"market": market.counts, "engine": engine.counts, "ws_api": api.counts,
                          "user_data": user_data.counts})
    return market, side, api


def run_usdm_venue(args: argparse.Namespace) -> int:
    return run_from_args(lambda: build_usdm(args)[0], args)