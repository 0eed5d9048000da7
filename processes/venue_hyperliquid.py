"""`mm venue --market hyperliquid`: a local Hyperliquid perp venue on loopback (HYPERLIQUID.md §10).

`POST /info` and `POST /exchange` on `--http-port`, `/ws` on `--port` (processes.venue_hyperliquid_ws),
market data from the simulator or a Hyperliquid capture (`--feed`), one perp coin (asset 0).

Authorisation (§7): the signer of every `/exchange` body is RECOVERED from its signature over the
body as received (processes.hyperliquid_verify) and must be an account of `MM_VENUE_WALLETS`
(comma-separated addresses) or an API wallet one of them approved with `approveAgent`; anything
else is `User or API Wallet 0x… does not exist.` Then: the signer's nonce set (§6, 100 kept,
window now-2d..now+1d), `expiresAfter` (a stale one costs 5 requests), the per-address budget
(§5: 10 000 + 1 per USDC traded, cancels capped higher, one request per 10 s once spent), the
price / size / $10 rules (§2), Alo post-only, Ioc, reduce-only and cross margin.

Matching: processes.venue_orders.MatchingEngine (the spot venue's queue-position fill model and
order records) with the perp's grid (tick 10^-(6 - szDecimals), lot 10^-szDecimals); every
whole-book push is turned into level updates for it and every trade fed to it. The engine's
spot balances are set far out of reach; the perp ledger is mm.usdm_account (one-way position,
average entry, cross margin), fees at the standard Hyperliquid tier (mm.fees) unless overridden.

Faults: the Binance side's order faults (`--order-latency-ms`, `--error-5xx-ratio`, `--timeout-ratio`,
`--drop-ratio`, `--fault-seed`, see `Faults`) and `--hl-address-budget` (a small budget: the venue
refuses with "Too many cumulative requests sent" early, the behaviour that hurts a maker most).

Info also answers what ccxt's unified methods ask: `historicalOrders` (every order's last status,
refused ones included), `userFillsByTime`, `userFees` (the venue's one tier), `exchangeStatus`,
`fundingHistory` / `userFunding` (empty: the venue pays no funding), `userNonFundingLedgerUpdates`
(empty: no deposits, withdrawals or transfers), `candleSnapshot` (candles of
the market's trades, every interval but "1M"). `updateLeverage` sets the
cross leverage (1..maxLeverage); isolated margin (`updateLeverage` with `isCross: false`,
`updateIsolatedMargin`) is refused: positions are cross only. Not served (422 as for any unknown
type): `approveBuilderFee`, `setReferrer`, transfers, TWAP, vaults.

Per-IP REST weight (§5): 1200 per minute (l2Book, orderStatus, clearinghouseState, allMids: 2;
other info 20, userFills + 1 per 20 fills; exchange 1 + floor(n / 40)); over it HTTP 429.

Test / paper only (real Hyperliquid has no such path): every body received on `POST /exchange` or
as a websocket `post` action is kept, as received and before any check, in a bounded log
(`HyperliquidExchange.exchange_log`, the last `EXCHANGE_LOG_KEPT`), and `GET /_mm/state` on the
HTTP port answers `{"exchange_log": [...], "exchange_log_dropped": n, "counts": {...}}`: what the
venue saw and did (e.g. `orders_schedule_cancelled`, `orders_modified`), so a test can check the
signed bodies (no builder fee, no referrer) and who cancelled an order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from aiohttp import web

from mm.fees import venue_tier
from mm.hyperliquid_rules import AddressBudget, NonceSet, order_error, parse_decimal
from mm.usdm_account import UsdmAccount
from processes.hyperliquid_verify import USER_SIGNED, SignatureError, recover_signer
from processes.venue_orders import MatchingEngine, OrderFaults, SymbolRules, VenueError, VenueOrder

log = logging.getLogger(__name__)

WALLETS_ENV = "MM_VENUE_WALLETS"
MS = 1_000_000
PERP_MAX_DECIMALS = 6
BOOK_LEVELS = 20
WEIGHT_LIMIT = 1200
EXPIRED_COST = 5  # an action refused for a stale expiresAfter costs 5 requests (§1)
SCHEDULE_MIN_MS = 5_000
SCHEDULE_TRIGGERS_PER_DAY = 10
MAX_FILLS_KEPT = 2000
EXCHANGE_LOG_KEPT = 10_000
CANDLES_KEPT = 5000  # "Only the most recent 5000 candles are available"
MINUTES_KEPT = 7 * 1440  # one-minute candles of the market trades, the base of every interval
CANDLE_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
             "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
             "3d": 259_200_000, "1w": 604_800_000}  # "1M" (calendar months) is not served
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_CLOID = re.compile(r"0x[0-9a-f]{32}")
_INFO_WEIGHT_2 = frozenset({"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState",
                            "exchangeStatus"})
_HUGE = "1000000000000000"  # the engine's spot balances: a perp never locks coin or USDC

# the venue's texts (HYPERLIQUID.md §1-§3, error-responses; where the docs give none, ours say what failed)
UNKNOWN_SIGNER = "User or API Wallet {} does not exist."
NEVER_PLACED = "Order was never placed, already canceled, or filled."
ALO_CROSS = "Post only order would have immediately matched, bbo was {}@{}."
IOC_NO_MATCH = "Order could not immediately match against any resting orders."
REDUCE_ONLY = "Reduce only order would increase position."
NO_MARGIN = "Insufficient margin to place order."
MODIFY_CLOSED = "Cannot modify canceled or filled order"
SCHEDULE_EARLY = "Scheduled cancel time too early, must be at least 5 seconds from now."
BAD_BODY = "Failed to deserialize the JSON body into the target type"
ISOLATED = "Isolated margin is not offered by this venue: positions are cross margin only."


def parse_wallets(text: str) -> set[str]:
    """`0xabc…,0xdef…` -> lower-case addresses; ValueError naming the bad entry."""
    wallets: set[str] = set()
    for number, item in enumerate(p.strip() for p in text.split(",") if p.strip()):
        address = item.lower()
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"{WALLETS_ENV}: entry {number + 1} is not an address (0x + 40 hex digits): {item!r}")
        wallets.add(address)
    return wallets


def wire(value: Decimal) -> str:
    """Numbers as the venue writes them in replies: plain decimals, integers with `.0`."""
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


class HlBook:
    """The coin's whole book as last pushed: levels best first, venue time."""

    __slots__ = ("asks", "bids", "time_ms")

    def __init__(self, bids: list[tuple[str, str, int]], asks: list[tuple[str, str, int]], time_ms: int) -> None:
        self.bids = bids
        self.asks = asks
        self.time_ms = time_ms

    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (float(self.bids[0][0]) + float(self.asks[0][0])) / 2

    def json(self, coin: str, n_sig_figs: int | None = None, mantissa: int | None = None) -> dict:
        """The `l2Book` data; `n_sig_figs` 2..5 buckets prices to that many significant figures
        (bids down, asks up; `mantissa` 2 or 5 with 5 figures: buckets of 2 or 5 units), summing sz and n."""
        sides = [self.bids, self.asks]
        if n_sig_figs is not None:
            sides = [_aggregate(side, n_sig_figs, mantissa or 1, is_bid) for side, is_bid in ((self.bids, True),
                                                                                             (self.asks, False))]
        return {"coin": coin, "time": self.time_ms,
                "levels": [[{"px": p, "sz": s, "n": n} for p, s, n in side[:BOOK_LEVELS]] for side in sides]}


def book_precision(request: dict) -> tuple[int | None, int | None] | str:
    """(nSigFigs, mantissa) of an l2Book request or subscription, or the refusal text."""
    n_sig_figs, mantissa = request.get("nSigFigs"), request.get("mantissa")
    if n_sig_figs is not None and (type(n_sig_figs) is not int or not 2 <= n_sig_figs <= 5):
        return f"nSigFigs must be null or 2..5, was {n_sig_figs!r}"
    if mantissa is not None and (n_sig_figs != 5 or mantissa not in (1, 2, 5)):
        return f"mantissa must be 1, 2 or 5 and only with nSigFigs 5, was {mantissa!r}"
    return n_sig_figs, mantissa


def _aggregate(levels: list[tuple[str, str, int]], n_sig_figs: int, mantissa: int, is_bid: bool
               ) -> list[tuple[str, str, int]]:
    buckets: dict[Decimal, tuple[Decimal, int]] = {}
    for px_text, sz_text, n in levels:
        px = Decimal(px_text)
        step = Decimal(mantissa).scaleb(px.adjusted() + 1 - n_sig_figs)
        units = (px / step).to_integral_value(rounding=ROUND_FLOOR if is_bid else ROUND_CEILING)
        key = units * step
        sz, count = buckets.get(key, (Decimal(0), 0))
        buckets[key] = (sz + Decimal(sz_text), count + n)
    ordered = sorted(buckets.items(), reverse=is_bid)
    return [(wire(px), wire(sz), n) for px, (sz, n) in ordered]


class _Meta:
    """What the engine's order record does not hold: the Hyperliquid side of one order."""

    __slots__ = ("cloid", "orig_sz", "reduce_only", "status", "status_ms", "tif")

    def __init__(self, cloid: str | None, tif: str, reduce_only: bool, orig_sz: str, now_ms: int) -> None:
        self.cloid = cloid
        self.tif = tif
        self.reduce_only = reduce_only
        self.orig_sz = orig_sz
        self.status = "open"
        self.status_ms = now_ms


class _Weights:
    """Per-IP REST weight in fixed one-minute windows."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used: dict[tuple[str, int], int] = {}

    def charge(self, ip: str, weight: int, now_ms: int) -> bool:
        window = now_ms // 60_000
        if len(self._used) > 1000:
            self._used = {k: v for k, v in self._used.items() if k[1] == window}
        used = self._used.get((ip, window), 0) + weight
        self._used[(ip, window)] = used
        return used <= self.limit


class _Rejected(Exception):
    """One order of a batch refused: its per-order error text and orderUpdates status."""

    def __init__(self, text: str, status: str, record: bool = True) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.record = record  # False: the engine already told orderUpdates


class HyperliquidExchange:
    """The venue's state and its two endpoints, on `clock_ms` (pure bookkeeping; no I/O)."""

    def __init__(self, coin: str, sz_decimals: int, wallets: set[str], *, balance_usdc: float = 1_000_000.0,
                 maker_fee_bps: float | None = None, taker_fee_bps: float | None = None, is_mainnet: bool = True,
                 address_budget: int = 10_000, weight_limit: int = WEIGHT_LIMIT, max_leverage: int = 40,
                 clock_ms: Callable[[], int] | None = None) -> None:
        if not 0 <= sz_decimals <= PERP_MAX_DECIMALS:
            raise ValueError(f"'sz_decimals' must be 0..{PERP_MAX_DECIMALS}, was {sz_decimals}")
        self.coin = coin
        self.sz_decimals = sz_decimals
        self.wallets = set(wallets)
        self.agents: dict[str, str] = {}  # API wallet -> the account it signs for
        self.is_mainnet = is_mainnet
        self.max_leverage = max_leverage
        self.clock_ms = clock_ms or (lambda: time.time_ns() // MS)
        tick = Decimal(1).scaleb(sz_decimals - PERP_MAX_DECIMALS)
        lot = Decimal(1).scaleb(-sz_decimals)
        rules = SymbolRules(symbol=coin, base_asset=coin, quote_asset="USDC", tick_size=str(tick), lot_size=str(lot),
                            min_price=str(tick), max_price=_HUGE, min_qty=str(lot), max_qty=_HUGE, min_notional="0",
                            max_notional=_HUGE + _HUGE)
        tier = venue_tier("hyperliquid")
        self.engine = MatchingEngine({coin: rules}, keys=dict.fromkeys(self.wallets, ""),
                                     balances={coin: _HUGE, "USDC": _HUGE + _HUGE},
                                     maker_fee_bps=tier.maker_bps if maker_fee_bps is None else maker_fee_bps,
                                     taker_fee_bps=tier.taker_bps if taker_fee_bps is None else taker_fee_bps,
                                     seed_book=self._seed)
        self.engine.listeners.append(self._on_engine)
        self.grid = self.engine.grids[coin]
        self.accounts = {w: UsdmAccount(balance_usdc, "USDC") for w in self.wallets}
        self.budgets = {w: AddressBudget(address_budget) for w in self.wallets}
        self.nonces: dict[str, NonceSet] = {}
        self.meta: dict[int, _Meta] = {}
        self.by_cloid: dict[tuple[str, str], int] = {}
        self.rejected: dict[tuple[str, str], dict] = {}  # (user, cloid) -> orderStatus of a refused order
        self.refused: dict[str, deque] = {w: deque(maxlen=MAX_FILLS_KEPT) for w in self.wallets}  # historicalOrders
        self.fills: dict[str, deque] = {w: deque(maxlen=MAX_FILLS_KEPT) for w in self.wallets}
        self.schedule: dict[str, int] = {}  # user -> scheduled cancel time (ms)
        self.schedule_fired: dict[str, tuple[int, int]] = {}  # user -> (UTC day, triggers that day)
        self.book = HlBook([], [], 0)
        self.trades: deque = deque(maxlen=50)  # recent trades, for the trades subscription's first frame
        self.minutes: dict[int, list] = {}  # minute open ms -> [o, h, l, c, volume, trades] of the market's trades
        self.counts: Counter[str] = Counter()
        self.exchange_log: deque[dict] = deque(maxlen=EXCHANGE_LOG_KEPT)  # test / paper only, see above
        self.exchange_log_dropped = 0
        self.weights = _Weights(weight_limit)
        # callables(channel, user, data): "orderUpdates" (WsOrder list), "userFills" (fill list)
        self.listeners: list[Callable[[str, str, Any], None]] = []
        self._pending: list[tuple[str, str, Any]] | None = None  # events held while an order is placed
        self._cancel_status = "canceled"
        self._next_rejected_oid = 1 << 40  # refused orders get oids from their own range
        self._next_tid = 1

    # ---- market data -----------------------------------------------------------------------

    def _seed(self, symbol: str):
        if not self.book.bids and not self.book.asks:
            return None
        return [(p, s) for p, s, _ in self.book.bids], [(p, s) for p, s, _ in self.book.asks]

    def on_book(self, book: HlBook) -> None:
        """A whole-book push: the engine gets every level of it (absolute sizes) and those no longer
        shown at 0 (a level that only fell below the 20 shown is taken as gone too)."""
        old = self.book
        self.book = book
        now_ns = self.clock_ms() * MS
        diffs = []
        for old_side, new_side in ((old.bids, book.bids), (old.asks, book.asks)):
            new = {p: s for p, s, _ in new_side}
            changed = [(p, s) for p, s in new.items()]
            changed += [(p, "0") for p, _, _ in old_side if p not in new]
            diffs.append(changed)
        self.engine.on_depth(self.coin, diffs[0], diffs[1], now_ns)

    def on_trades(self, trades: list[dict]) -> None:
        now_ns = self.clock_ms() * MS
        for trade in trades:
            self.trades.append(trade)
            self._add_to_candle(trade)
            self.engine.on_trade(self.coin, trade["px"], trade["sz"], trade["side"] == "A", now_ns)

    def _add_to_candle(self, trade: dict) -> None:
        px, sz = Decimal(trade["px"]), Decimal(trade["sz"])
        minute = trade["time"] // 60_000 * 60_000
        bar = self.minutes.get(minute)
        if bar is None:
            self.minutes[minute] = [px, px, px, px, sz, 1]
            if len(self.minutes) > MINUTES_KEPT:
                del self.minutes[min(self.minutes)]
            return
        bar[1], bar[2], bar[3] = max(bar[1], px), min(bar[2], px), px
        bar[4] += sz
        bar[5] += 1

    def candles(self, interval: str, start_ms: int, end_ms: int) -> list[dict]:
        """Candles of `interval` whose open lies in [start_ms, end_ms], oldest first, the last 5000."""
        step = CANDLE_MS[interval]
        out: dict[int, list] = {}
        for minute in sorted(self.minutes):
            t = minute // step * step
            if not start_ms <= t <= end_ms:
                continue
            o, h, low, c, v, n = self.minutes[minute]
            bar = out.get(t)
            if bar is None:
                out[t] = [o, h, low, c, v, n]
            else:
                bar[1], bar[2], bar[3], bar[4], bar[5] = max(bar[1], h), min(bar[2], low), c, bar[4] + v, bar[5] + n
        return [{"t": t, "T": t + step - 1, "s": self.coin, "i": interval, "o": wire(o), "c": wire(c), "h": wire(h),
                 "l": wire(low), "v": wire(v), "n": n} for t, (o, h, low, c, v, n) in list(out.items())[-CANDLES_KEPT:]]

    def tick(self) -> None:
        """Fire the scheduled cancels that are due."""
        now_ms = self.clock_ms()
        for user, due_ms in list(self.schedule.items()):
            if due_ms <= now_ms:
                del self.schedule[user]
                day = now_ms // 86_400_000
                fired_day, fired = self.schedule_fired.get(user, (day, 0))
                self.schedule_fired[user] = (day, (fired if fired_day == day else 0) + 1)
                self.counts["scheduled_cancels"] += 1
                self.counts["orders_schedule_cancelled"] += self._cancel_all(user, "scheduledCancel")

    # ---- /info -----------------------------------------------------------------------------

    def info_weight(self, body: object) -> int:
        kind = body.get("type") if isinstance(body, dict) else None
        if kind in _INFO_WEIGHT_2:
            return 2
        if kind == "userFills" and isinstance(body.get("user"), str):
            return 20 + len(self.fills.get(body["user"].lower(), ())) // 20
        return 20

    def info(self, body: object) -> tuple[int, Any]:
        """(HTTP status, reply) of one `/info` request."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return 422, BAD_BODY
        kind = body["type"]
        handler = _INFO.get(kind)
        if handler is None:
            return 422, BAD_BODY
        user = body.get("user")
        if kind in _USER_INFO:
            if not isinstance(user, str) or not _ADDRESS.fullmatch(user.lower()):
                return 422, BAD_BODY
            body = dict(body, user=user.lower())
        reply = handler(self, body)
        if kind in ("l2Book", "userFillsByTime", "candleSnapshot") and isinstance(reply, str):
            return 422, reply
        return 200, reply

    def _meta(self, body: dict | None = None) -> dict:
        return {"universe": [{"name": self.coin, "szDecimals": self.sz_decimals, "maxLeverage": self.max_leverage,
                              "marginTableId": self.max_leverage}],
                "marginTables": [[self.max_leverage, {"description": "", "marginTiers": [
                    {"lowerBound": "0.0", "maxLeverage": self.max_leverage}]}]]}

    def asset_ctx(self) -> dict:
        """The coin's context: mark = oracle = the book's mid, open interest = the venue's accounts' longs."""
        mid = self.book.mid()
        mid_text = wire(Decimal(repr(mid))) if mid is not None else None
        mark = mid_text or "0.0"
        longs = sum(max(0.0, a.positions[self.coin].amount) for a in self.accounts.values() if self.coin in a.positions)
        return {"funding": "0.0", "openInterest": _float_text(longs), "prevDayPx": mark, "dayNtlVlm": "0.0", "premium": "0.0",
                "oraclePx": mark, "markPx": mark, "midPx": mid_text,
                "impactPxs": [self.book.bids[0][0], self.book.asks[0][0]] if mid is not None else None,
                "dayBaseVlm": "0.0"}

    def _meta_and_ctxs(self, body: dict) -> list:
        return [self._meta(), [self.asset_ctx()]]

    def _spot_meta(self, body: dict | None = None) -> dict:
        return {"universe": [], "tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                                            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True,
                                            "evmContract": None, "fullName": None}]}

    def _spot_meta_and_ctxs(self, body: dict) -> list:
        return [self._spot_meta(), []]

    def _l2_book(self, body: dict) -> dict | str | None:
        if body.get("coin") != self.coin:
            return None
        precision = book_precision(body)
        return precision if isinstance(precision, str) else self.book.json(self.coin, *precision)

    def _all_mids(self, body: dict) -> dict:
        mid = self.book.mid()
        return {self.coin: wire(Decimal(repr(mid)))} if mid is not None else {}

    def _open_orders(self, body: dict) -> list:
        return [self._order_json(o) for o in self._open(body["user"])]

    def _frontend_open_orders(self, body: dict) -> list:
        return [self._order_json(o, frontend=True) for o in self._open(body["user"])]

    def _order_status(self, body: dict) -> dict:
        user, oid = body["user"], body.get("oid")
        order = self._find(user, oid)
        if order is None:
            refused = self.rejected.get((user, oid)) if isinstance(oid, str) else None
            return {"status": "order", "order": refused} if refused else {"status": "unknownOid"}
        meta = self.meta[order.order_id]
        return {"status": "order", "order": {"order": self._order_json(order, frontend=True), "status": meta.status,
                                             "statusTimestamp": meta.status_ms}}

    def _user_fills(self, body: dict) -> list:
        return list(reversed(self.fills.get(body["user"], ())))

    def _clearinghouse_state(self, body: dict) -> dict:
        user = body["user"]
        account = self.accounts.get(user) or UsdmAccount(0.0, "USDC")
        mid = self.book.mid()
        mark = mid if mid is not None else 0.0
        marks = {self.coin: mark}
        positions = []
        ntl = used = 0.0
        for coin, pos in account.positions.items():
            if not pos.amount:
                continue
            margin = pos.initial_margin(mark)
            ntl += abs(pos.notional(mark))
            used += margin
            positions.append({"type": "oneWay", "position": {
                "coin": coin, "szi": _float_text(pos.amount), "leverage": {"type": "cross", "value": pos.leverage},
                "entryPx": _float_text(pos.entry_price), "positionValue": _float_text(abs(pos.notional(mark))),
                "unrealizedPnl": _float_text(pos.unrealized(mark)),
                "returnOnEquity": _float_text(pos.unrealized(mark) / margin if margin else 0.0),
                "liquidationPx": None, "marginUsed": _float_text(margin), "maxLeverage": self.max_leverage,
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}})
        value = account.margin_balance(marks) if account.positions else account.wallet
        summary = {"accountValue": _float_text(value), "totalNtlPos": _float_text(ntl),
                   "totalRawUsd": _float_text(value - sum(p.notional(mark) for p in account.positions.values())),
                   "totalMarginUsed": _float_text(used)}
        return {"marginSummary": summary, "crossMarginSummary": dict(summary),
                "crossMaintenanceMarginUsed": _float_text(used / 2),
                "withdrawable": _float_text(max(0.0, value - used)), "assetPositions": positions,
                "time": self.clock_ms()}

    def _user_rate_limit(self, body: dict) -> dict:
        budget = self.budgets.get(body["user"])
        if budget is None:
            return {"cumVlm": "0.0", "nRequestsUsed": 0, "nRequestsCap": 10_000, "nRequestsSurplus": 0}
        return {"cumVlm": wire(budget.cum_volume), "nRequestsUsed": budget.used, "nRequestsCap": budget.cap,
                "nRequestsSurplus": max(0, budget.cap - budget.used)}

    def _user_fills_by_time(self, body: dict) -> list | str:
        """Fills with startTime <= time <= endTime (default now), oldest first, at most 2000."""
        start, end = body.get("startTime"), body.get("endTime")
        if type(start) is not int or (end is not None and type(end) is not int):
            return BAD_BODY
        end = self.clock_ms() if end is None else end
        return [f for f in self.fills.get(body["user"], ()) if start <= f["time"] <= end][:2000]

    def _candle_snapshot(self, body: dict) -> list | None | str:
        req = body.get("req")
        if not isinstance(req, dict) or req.get("interval") not in CANDLE_MS or type(req.get("startTime")) is not int \
                or type(req.get("endTime", 0)) is not int:
            return BAD_BODY
        if req.get("coin") != self.coin:
            return None
        return self.candles(req["interval"], req["startTime"], req.get("endTime", self.clock_ms()))

    def _historical_orders(self, body: dict) -> list:
        """The user's orders (open, closed, refused), newest first, at most 2000, each with its
        last status (frontend order fields, as orderStatus)."""
        user = body["user"]
        rows = []
        for oid, meta in self.meta.items():
            order = self.engine.orders.get(oid)
            if order is not None and order.api_key == user:
                rows.append({"order": self._order_json(order, frontend=True), "status": meta.status,
                             "statusTimestamp": meta.status_ms})
        rows += self.refused.get(user, ())
        rows.sort(key=lambda r: (r["statusTimestamp"], r["order"]["oid"]), reverse=True)
        return rows[:2000]

    def _user_fees(self, body: dict) -> dict:
        """The fee rates the venue charges (fractions, not bps): one tier for everyone."""
        add, cross = wire(Decimal(repr(self.engine.maker_fee_bps)) / 10_000), wire(
            Decimal(repr(self.engine.taker_fee_bps)) / 10_000)
        return {"dailyUserVlm": [], "feeSchedule": {"cross": cross, "add": add, "spotCross": cross, "spotAdd": add,
                                                     "tiers": {"vip": [], "mm": []}, "referralDiscount": "0.0",
                                                     "stakingDiscountTiers": []},
                "userCrossRate": cross, "userAddRate": add, "userSpotCrossRate": cross, "userSpotAddRate": add,
                "activeReferralDiscount": "0.0", "trial": None, "feeTrialReward": "0.0",
                "nextTrialAvailableTimestamp": None, "stakingLink": None, "activeStakingDiscount": None}

    # ---- /exchange -------------------------------------------------------------------------

    def record(self, body: object, via: str) -> dict:
        """Keep one received /exchange body (as received, before any check); the caller adds
        `answer` (HTTP status, or the fault that kept it unanswered) once it has one."""
        if len(self.exchange_log) == self.exchange_log.maxlen:
            self.exchange_log_dropped += 1
        entry = {"time_ms": self.clock_ms(), "via": via, "body": body}
        self.exchange_log.append(entry)
        return entry

    def state(self) -> dict:
        """`GET /_mm/state` (test / paper only)."""
        return {"exchange_log": list(self.exchange_log), "exchange_log_dropped": self.exchange_log_dropped,
                "counts": dict(self.counts)}

    def exchange(self, body: object) -> tuple[int, Any]:
        """(HTTP status, reply) of one `/exchange` request."""
        if not isinstance(body, dict) or not isinstance(body.get("action"), dict) or "signature" not in body:
            return 422, BAD_BODY
        action = body["action"]
        kind = action.get("type")
        handler = _ACTIONS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return 422, BAD_BODY
        nonce = body.get("nonce")
        if type(nonce) is not int:
            return 422, BAD_BODY
        try:
            signer = recover_signer(body, self.is_mainnet)
        except SignatureError as e:
            return 200, _err(str(e))
        account = signer if signer in self.wallets else self.agents.get(signer)
        if account is None:
            self.counts["unknown_signer"] += 1
            return 200, _err(UNKNOWN_SIGNER.format(signer))
        vault = body.get("vaultAddress")
        if vault is not None and (not isinstance(vault, str) or vault.lower() != account):
            return 200, _err(f"Vault {vault} does not exist.")  # no sub-accounts or vaults here
        now_ms = self.clock_ms()
        refusal = self.nonces.setdefault(signer, NonceSet()).check(nonce, now_ms)
        if refusal is not None:
            return 200, _err(refusal)
        if kind in USER_SIGNED:
            if action.get("nonce") != nonce:
                return 200, _err("User-signed action: the action's nonce must equal the body's nonce.")
            return 200, handler(self, account, action, now_ms)
        expires_after = body.get("expiresAfter")
        if expires_after is not None:
            if type(expires_after) is not int:
                return 422, BAD_BODY
            if expires_after < now_ms:
                self.budgets[account].spend(EXPIRED_COST, now_ms)
                return 200, _err(f"Action expired: expiresAfter {expires_after} is before {now_ms}.")
        n, is_cancel = _request_count(action)
        over = self.budgets[account].spend(n, now_ms, is_cancel)
        if over is not None:
            self.counts["budget_refused"] += 1
            return 200, _err(over)
        return 200, handler(self, account, action, now_ms)

    def _approve_agent(self, account: str, action: dict, now_ms: int) -> dict:
        agent = action.get("agentAddress")
        if not isinstance(agent, str) or not _ADDRESS.fullmatch(agent.lower()):
            return _err("approveAgent: agentAddress must be 0x + 40 lower-case hex digits")
        if agent.lower() in self.wallets:
            return _err("approveAgent: the agent address is an account")
        self.agents[agent.lower()] = account
        return {"status": "ok", "response": {"type": "default"}}

    def _order_action(self, user: str, action: dict, now_ms: int) -> dict:
        orders = action.get("orders")
        if not isinstance(orders, list) or not orders:
            return _err("Order list must not be empty.")
        builder = action.get("builder")
        if builder is not None and (not isinstance(builder, dict) or builder.get("f", 0) != 0):
            return _err("Builder fee has not been approved.")  # we approve none: only f = 0 passes
        return _ok("order", [self._place(user, wire_order, now_ms) for wire_order in orders])

    def _place(self, user: str, order: object, now_ms: int) -> object:
        try:
            return self._place_checked(user, order, now_ms)
        except _Rejected as e:
            if e.record and isinstance(order, dict):
                self._record_refused(user, order, e.status, now_ms)
            return {"error": e.text}

    def _place_checked(self, user: str, order: object, now_ms: int) -> object:
        if not isinstance(order, dict) or order.get("a") != 0 or type(order.get("b")) is not bool:
            raise _Rejected("Invalid asset or order: only asset 0 (" + self.coin + ") is listed.", "rejected")
        tif = (order.get("t") or {}).get("limit", {}).get("tif") if isinstance(order.get("t"), dict) else None
        if tif not in ("Alo", "Gtc", "Ioc"):
            raise _Rejected("Only limit orders with tif Alo, Gtc or Ioc are supported by this venue.", "rejected")
        px, sz = parse_decimal(order.get("p")), parse_decimal(order.get("s"))
        if px is None or sz is None:
            raise _Rejected("Order has invalid price or size.", "rejected")
        error = order_error(px, sz, self.sz_decimals)
        if error is not None:
            raise _Rejected(error, "tickRejected" if "tick" in error else "minTradeNtlRejected")
        cloid = order.get("c")
        if cloid is not None and (not isinstance(cloid, str) or not _CLOID.fullmatch(cloid)):
            raise _Rejected("Invalid cloid: must be 0x + 32 lower-case hex digits.", "rejected")
        is_buy = order["b"]
        reduce_only = order.get("r") is True
        position = self.accounts[user].position(self.coin).amount
        if reduce_only and (position == 0 or (position > 0) == is_buy):
            raise _Rejected(REDUCE_ONLY, "reduceOnlyRejected")
        if not reduce_only and not self._has_margin(user, float(px * sz)):
            raise _Rejected(NO_MARGIN, "perpMarginRejected")
        params = {"symbol": self.coin, "side": "BUY" if is_buy else "SELL", "price": str(px), "quantity": str(sz),
                  "type": "LIMIT_MAKER" if tif == "Alo" else "LIMIT"}
        if tif != "Alo":
            params["timeInForce"] = "GTC" if tif == "Gtc" else "IOC"
        if cloid is not None:
            params["newClientOrderId"] = cloid
        self._pending = []
        try:
            placed = self.engine.new_order(user, params, now_ms * MS)
        except VenueError as e:
            self._pending = None
            if e.msg == "Order would immediately match and take.":
                bid = self.book.bids[0][0] if self.book.bids else "0.0"
                ask = self.book.asks[0][0] if self.book.asks else "0.0"
                raise _Rejected(ALO_CROSS.format(bid, ask), "badAloPxRejected") from None
            raise _Rejected(e.msg, "rejected") from None
        pending, self._pending = self._pending, None
        meta = self._meta_of(placed, now_ms)
        meta.tif, meta.reduce_only = tif, reduce_only
        for event in pending:
            if not (tif == "Ioc" and event[0] == "orderUpdates" and event[2][0]["status"] == "open"):
                self._emit(*event)
        result: dict[str, Any] = {"oid": placed.order_id}
        if cloid is not None:
            result["cloid"] = cloid
        if placed.filled_lot:
            filled = Decimal(placed.filled_lot) * self.grid.lot_size
            result = {"totalSz": wire(filled), "avgPx": wire(placed.quote_filled / filled), **result}
            return {"filled": result}
        if tif == "Ioc":
            raise _Rejected(IOC_NO_MATCH, "iocCancelRejected", record=False)
        return {"resting": result}

    def _has_margin(self, user: str, notional: float) -> bool:
        account = self.accounts[user]
        mid = self.book.mid() or 0.0
        resting = sum(float(self._px(o) * self._leaves(o)) for o in self._open(user))
        leverage = account.position(self.coin).leverage
        return account.available({self.coin: mid}, {self.coin: resting}) - notional / leverage >= 0

    def _record_refused(self, user: str, order: dict, status: str, now_ms: int) -> None:
        oid = self._next_rejected_oid
        self._next_rejected_oid += 1
        record = {"coin": self.coin, "side": "B" if order.get("b") else "A", "limitPx": str(order.get("p")),
                  "sz": str(order.get("s")), "oid": oid, "timestamp": now_ms, "origSz": str(order.get("s")),
                  "cloid": order.get("c") if isinstance(order.get("c"), str) else None}
        entry = {"order": record, "status": status, "statusTimestamp": now_ms}
        if record["cloid"] is not None:
            self.rejected[(user, record["cloid"])] = entry
        if user in self.refused:
            self.refused[user].append(entry)
        self._emit("orderUpdates", user, [{"order": record, "status": status, "statusTimestamp": now_ms}])

    def _cancel_action(self, user: str, action: dict, now_ms: int) -> dict:
        by_cloid = action["type"] == "cancelByCloid"
        cancels = action.get("cancels")
        if not isinstance(cancels, list) or not cancels:
            return _err("Cancel list must not be empty.")
        statuses: list[object] = []
        for item in cancels:
            ref = (item.get("cloid") if by_cloid else item.get("o")) if isinstance(item, dict) else None
            order = self._find(user, ref) if ref is not None else None
            if order is None or not order.is_open:
                statuses.append({"error": NEVER_PLACED})
                continue
            self.engine.cancel(user, {"symbol": self.coin, "orderId": str(order.order_id)}, now_ms * MS)
            statuses.append("success")
        return _ok("cancel", statuses)

    def _modify_action(self, user: str, action: dict, now_ms: int) -> dict:
        if action["type"] == "modify":
            status = self._modify(user, action, now_ms)
            if isinstance(status, dict) and "error" in status:
                return _err(status["error"])
            return {"status": "ok", "response": {"type": "default"}}
        modifies = action.get("modifies")
        if not isinstance(modifies, list) or not modifies:
            return _err("Modify list must not be empty.")
        return _ok("order", [self._modify(user, m, now_ms) for m in modifies])

    def _modify(self, user: str, modify: object, now_ms: int) -> object:
        if not isinstance(modify, dict) or not isinstance(modify.get("order"), dict):
            return {"error": "Modify needs oid and order."}
        order = self._find(user, modify.get("oid"))
        if order is None or not order.is_open:
            return {"error": MODIFY_CLOSED}
        self.engine.cancel(user, {"symbol": self.coin, "orderId": str(order.order_id)}, now_ms * MS)
        status = self._place(user, modify["order"], now_ms)
        self.counts["orders_modified" if isinstance(status, dict) and "error" not in status else "modifies_refused"] += 1
        return status

    def _schedule_cancel(self, user: str, action: dict, now_ms: int) -> dict:
        due = action.get("time")
        if due is None:
            self.schedule.pop(user, None)
            return {"status": "ok", "response": {"type": "default"}}
        if type(due) is not int:
            return _err("scheduleCancel: time must be an integer of ms")
        if due < now_ms + SCHEDULE_MIN_MS:
            return _err(SCHEDULE_EARLY)
        day, fired = self.schedule_fired.get(user, (now_ms // 86_400_000, 0))
        if day == now_ms // 86_400_000 and fired >= SCHEDULE_TRIGGERS_PER_DAY:
            return _err(f"Too many scheduled cancel triggers today (at most {SCHEDULE_TRIGGERS_PER_DAY}).")
        self.schedule[user] = due
        return {"status": "ok", "response": {"type": "default"}}

    def _update_leverage(self, user: str, action: dict, now_ms: int) -> dict:
        """Cross leverage of asset 0, 1..maxLeverage; isolated margin is not offered (cross only)."""
        leverage, is_cross = action.get("leverage"), action.get("isCross")
        if action.get("asset") != 0:
            return _err(f"updateLeverage: only asset 0 ({self.coin}) is listed, was {action.get('asset')!r}")
        if is_cross is not True:
            return _err(ISOLATED)
        if type(leverage) is not int or not 1 <= leverage <= self.max_leverage:
            return _err(f"Invalid leverage value: must be an integer in 1..{self.max_leverage}, was {leverage!r}")
        self.accounts[user].set_leverage(self.coin, leverage)
        return {"status": "ok", "response": {"type": "default"}}

    def _update_isolated_margin(self, user: str, action: dict, now_ms: int) -> dict:
        return _err(ISOLATED)

    # ---- orders ----------------------------------------------------------------------------

    def _open(self, user: str) -> list[VenueOrder]:
        return self.engine.open_orders(user, self.coin) if user in self.wallets else []

    def _find(self, user: str, ref: object) -> VenueOrder | None:
        if isinstance(ref, str):
            oid = self.by_cloid.get((user, ref))
        elif type(ref) is int:
            oid = ref
        else:
            return None
        order = self.engine.orders.get(oid) if oid is not None else None
        return order if order is not None and order.api_key == user else None

    def _cancel_all(self, user: str, status: str) -> int:
        """Cancel every open order of `user` with that orderUpdates status; how many were open."""
        self._cancel_status = status
        try:
            orders = self._open(user)
            for order in orders:
                self.engine.cancel(user, {"symbol": self.coin, "orderId": str(order.order_id)}, self.clock_ms() * MS)
        finally:
            self._cancel_status = "canceled"
        return len(orders)

    def _px(self, order: VenueOrder) -> Decimal:
        return Decimal(order.px_tick) * self.grid.tick_size

    def _leaves(self, order: VenueOrder) -> Decimal:
        return Decimal(order.qty_lot - order.filled_lot) * self.grid.lot_size

    def _order_json(self, order: VenueOrder, frontend: bool = False) -> dict:
        meta = self.meta[order.order_id]
        reply: dict[str, Any] = {"coin": self.coin, "side": "B" if order.side > 0 else "A",
                                 "limitPx": wire(self._px(order)), "sz": wire(self._leaves(order)),
                                 "oid": order.order_id, "timestamp": order.time_ms, "origSz": meta.orig_sz}
        if meta.cloid is not None:
            reply["cloid"] = meta.cloid
        if frontend:
            reply.update({"triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0", "children": [],
                          "isPositionTpsl": False, "reduceOnly": meta.reduce_only, "orderType": "Limit",
                          "tif": meta.tif})
        return reply

    def _meta_of(self, order: VenueOrder, now_ms: int) -> _Meta:
        meta = self.meta.get(order.order_id)
        if meta is None:
            cloid = order.client_id if order.client_id.startswith("0x") else None
            orig = wire(Decimal(order.qty_lot) * self.grid.lot_size)
            meta = self.meta[order.order_id] = _Meta(cloid, "Gtc", False, orig, now_ms)
            if cloid is not None:
                self.by_cloid[(order.api_key, cloid)] = order.order_id
        return meta

    def _on_engine(self, execution_type: str, order: VenueOrder, trade: dict | None, now_ns: int,
                   cancel_id: str) -> None:
        now_ms = now_ns // MS
        user = order.api_key
        meta = self._meta_of(order, now_ms)
        if execution_type == "TRADE" and trade is not None:
            self._on_fill(user, order, trade, now_ms)
            if order.status != "FILLED":
                return
            status = "filled"
        elif execution_type == "NEW":
            status = "open"
        elif execution_type == "EXPIRED":
            status = "canceled" if order.filled_lot else "iocCancelRejected"
        else:
            status = self._cancel_status
        meta.status, meta.status_ms = status, now_ms
        self._emit("orderUpdates", user, [{"order": self._order_json(order), "status": status,
                                           "statusTimestamp": now_ms}])

    def _on_fill(self, user: str, order: VenueOrder, trade: dict, now_ms: int) -> None:
        account = self.accounts[user]
        position = account.position(self.coin)
        start = position.amount
        px, qty, fee = Decimal(trade["price"]), Decimal(trade["qty"]), Decimal(trade["commission"])
        is_buy = order.side > 0
        closed_pnl = account.apply_fill(self.coin, "BUY" if is_buy else "SELL", float(px), float(qty), float(fee))
        self.budgets[user].cum_volume += px * qty
        after = position.amount
        fill = {"coin": self.coin, "px": wire(px), "sz": wire(qty), "side": "B" if is_buy else "A", "time": now_ms,
                "startPosition": _float_text(start), "dir": _direction(start, after),
                "closedPnl": _float_text(closed_pnl), "hash": "0x" + format(self._next_tid, "064x"),
                "oid": order.order_id, "crossed": not trade["isMaker"], "fee": wire(fee), "tid": self._next_tid,
                "feeToken": "USDC"}
        meta = self.meta[order.order_id]
        if meta.cloid is not None:
            fill["cloid"] = meta.cloid
        self._next_tid += 1
        self.fills[user].append(fill)
        self.counts["fills"] += 1
        self._emit("userFills", user, [fill])

    def _emit(self, channel: str, user: str, data: Any) -> None:
        if self._pending is not None:
            self._pending.append((channel, user, data))
            return
        for listener in self.listeners:
            listener(channel, user, data)


def _request_count(action: dict) -> tuple[int, bool]:
    """(requests against the address budget, is it a cancel) of an L1 action (§5: a batch of n is n)."""
    kind = action["type"]
    if kind == "order":
        return max(1, len(action.get("orders") or ())), False
    if kind in ("cancel", "cancelByCloid"):
        return max(1, len(action.get("cancels") or ())), True
    if kind == "batchModify":
        return max(1, len(action.get("modifies") or ())), False
    return 1, kind == "scheduleCancel"


def _direction(start: float, after: float) -> str:
    if start >= 0 and after >= 0:
        return "Open Long" if after > start else "Close Long"
    if start <= 0 and after <= 0:
        return "Open Short" if after < start else "Close Short"
    return "Long > Short" if start > 0 else "Short > Long"


def _float_text(value: float) -> str:
    return wire(Decimal(repr(round(value, 8))))


def _ok(kind: str, statuses: list) -> dict:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _err(text: str) -> dict:
    return {"status": "err", "response": text}


_INFO: dict[str, Callable[[HyperliquidExchange, dict], Any]] = {
    "meta": HyperliquidExchange._meta,
    "metaAndAssetCtxs": HyperliquidExchange._meta_and_ctxs,
    "spotMeta": HyperliquidExchange._spot_meta,
    "spotMetaAndAssetCtxs": HyperliquidExchange._spot_meta_and_ctxs,
    "l2Book": HyperliquidExchange._l2_book,
    "allMids": HyperliquidExchange._all_mids,
    "perpDexs": lambda self, body: [None],  # the main dex only: no builder-deployed perps
    "userAbstraction": lambda self, body: "default",  # a plain perp account (ccxt asks before private calls)
    "openOrders": HyperliquidExchange._open_orders,
    "frontendOpenOrders": HyperliquidExchange._frontend_open_orders,
    "orderStatus": HyperliquidExchange._order_status,
    "userFills": HyperliquidExchange._user_fills,
    "clearinghouseState": HyperliquidExchange._clearinghouse_state,
    "userRateLimit": HyperliquidExchange._user_rate_limit,
    "userFillsByTime": HyperliquidExchange._user_fills_by_time,
    "historicalOrders": HyperliquidExchange._historical_orders,
    "userFees": HyperliquidExchange._user_fees,
    "candleSnapshot": HyperliquidExchange._candle_snapshot,
    "exchangeStatus": lambda self, body: {"specialStatuses": None, "time": self.clock_ms()},
    "fundingHistory": lambda self, body: [],  # the venue pays no funding (its funding rate is 0)
    "userFunding": lambda self, body: [],
    # deposits, withdrawals, transfers: accounts start funded and the venue moves no money (ccxt's fetch_ledger,
    # fetch_deposits, fetch_withdrawals)
    "userNonFundingLedgerUpdates": lambda self, body: [],
}
_USER_INFO = frozenset({"openOrders", "frontendOpenOrders", "orderStatus", "userFills", "clearinghouseState",
                        "userRateLimit", "userAbstraction", "userFillsByTime", "historicalOrders", "userFees",
                        "userFunding", "userNonFundingLedgerUpdates"})
_ACTIONS: dict[str, Callable[[HyperliquidExchange, str, dict, int], dict]] = {
    "order": HyperliquidExchange._order_action,
    "cancel": HyperliquidExchange._cancel_action,
    "cancelByCloid": HyperliquidExchange._cancel_action,
    "modify": HyperliquidExchange._modify_action,
    "batchModify": HyperliquidExchange._modify_action,
    "scheduleCancel": HyperliquidExchange._schedule_cancel,
    "approveAgent": HyperliquidExchange._approve_agent,
    "updateLeverage": HyperliquidExchange._update_leverage,
    "updateIsolatedMargin": HyperliquidExchange._update_isolated_margin,
}


# ---- HTTP ------------------------------------------------------------------------------------


# OrderFaults endpoint names (processes.venue_orders) -> the Hyperliquid requests they fault
FAULT_ENDPOINTS = {"new": ("order", "modify", "batchModify"), "cancel": ("cancel", "cancelByCloid"),
                   "cancel_all": ("scheduleCancel",), "query": ("orderStatus",),
                   "open_orders": ("openOrders", "frontendOpenOrders"), "account": ("clearinghouseState",)}


class Faults:
    """The Binance side's order faults (venue_orders.OrderFaults) on the Hyperliquid requests: each
    faulted request draws once from a seeded RNG: 5xx (HTTP 500, applied first when `is_5xx_applied`),
    timeout (never answered, not applied), drop (applied, never answered); an unanswered request
    is released after `hang_s` with HTTP 504."""

    def __init__(self, faults: OrderFaults) -> None:
        self.faults = faults
        self.kinds = {kind for name in faults.endpoints for kind in FAULT_ENDPOINTS.get(name, ())}
        self._rng = random.Random(faults.seed)
        self.done = 0

    def draw(self, kind: object) -> str:
        faults = self.faults
        if kind not in self.kinds or (faults.max_faults and self.done >= faults.max_faults):
            return ""
        x = self._rng.random()
        for name, ratio in (("5xx", faults.error_5xx_ratio), ("timeout", faults.timeout_ratio),
                            ("drop", faults.drop_ratio)):
            if x < ratio:
                self.done += 1
                return name
            x -= ratio
        return ""


def mount(app: web.Application, exchange: HyperliquidExchange, faults: OrderFaults | None = None) -> None:
    """`POST /info` and `POST /exchange` on an aiohttp app, with the order faults switched on."""
    injected = Faults(faults or OrderFaults())
    released = asyncio.Event()  # set at shutdown: held (unanswered) requests end at once

    async def on_shutdown(app: web.Application) -> None:
        released.set()

    async def handle(request: web.Request) -> web.Response:
        is_info = request.path == "/info"
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        entry = None if is_info else exchange.record(body if body is not None else raw.decode("utf-8", "replace"),
                                                     "http")
        if body is None:
            reply = web.Response(status=422, text=BAD_BODY)
        else:
            reply = await _faulted(body, is_info) or _answer(request, body, is_info)
        if entry is not None:
            entry["answer"] = reply.status
        return reply

    async def state(request: web.Request) -> web.Response:
        return web.json_response(exchange.state())

    async def _faulted(body: object, is_info: bool) -> web.Response | None:
        if injected.faults.latency_ms:
            await asyncio.sleep(injected.faults.latency_ms / 1000)  # injected network latency
        inner = body if is_info else (body.get("action") if isinstance(body, dict) else None)
        kind = injected.draw(inner.get("type") if isinstance(inner, dict) else None)
        if not kind:
            return None
        exchange.counts[f"fault_{kind}"] += 1
        if kind == "drop" or (kind == "5xx" and injected.faults.is_5xx_applied):
            _apply(body, is_info)
        if kind == "5xx":
            return web.Response(status=500, text="Internal Server Error")
        try:
            await asyncio.wait_for(released.wait(), injected.faults.hang_s)  # never answered in time
        except asyncio.TimeoutError:
            pass
        return web.Response(status=504, text="Gateway Timeout")

    def _apply(body: object, is_info: bool) -> tuple[int, Any]:
        return exchange.info(body) if is_info else exchange.exchange(body)

    def _answer(request: web.Request, body: object, is_info: bool) -> web.Response:
        if is_info:
            weight = exchange.info_weight(body)
        else:
            action = body.get("action") if isinstance(body, dict) else None
            n = _request_count(action)[0] if isinstance(action, dict) and isinstance(action.get("type"), str) else 1
            weight = 1 + n // 40
        if not exchange.weights.charge(request.remote or "", weight, exchange.clock_ms()):
            exchange.counts["weight_refused"] += 1
            return web.Response(status=429, text="null", content_type="application/json")
        status, reply = _apply(body, is_info)
        if status != 200:
            return web.Response(status=status, text=str(reply))
        return web.json_response(reply)

    app.router.add_post("/info", handle)
    app.router.add_post("/exchange", handle)
    app.router.add_get("/_mm/state", state)  # test / paper only: the exchange log and counts
    app.on_shutdown.append(on_shutdown)


def faults_from_args(args: argparse.Namespace) -> OrderFaults:
    return OrderFaults(latency_ms=args.order_latency_ms, error_5xx_ratio=args.error_5xx_ratio,
                       timeout_ratio=args.timeout_ratio, drop_ratio=args.drop_ratio, seed=args.fault_seed)


def exchange_from_args(args: argparse.Namespace, coin: str, environ: Mapping[str, str] | None = None
                       ) -> HyperliquidExchange:
    environ = os.environ if environ is None else environ
    wallets = parse_wallets(environ.get(WALLETS_ENV, ""))
    if not wallets:
        log.warning("hyperliquid venue: %s is empty: every action gets 'User or API Wallet ... does not exist.'",
                    WALLETS_ENV)
    return HyperliquidExchange(coin, args.sz_decimals, wallets, balance_usdc=args.hl_balance,
                               maker_fee_bps=args.maker_fee_bps, taker_fee_bps=args.taker_fee_bps,
                               is_mainnet=not args.hl_testnet, address_budget=args.hl_address_budget,
                               weight_limit=args.hl_weight_limit)


def add_hyperliquid_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--market hyperliquid")
    group.add_argument("--sz-decimals", type=int, default=5, help="the coin's szDecimals (BTC: 5)")
    group.add_argument("--hl-balance", type=float, default=1_000_000.0, help="USDC of each MM_VENUE_WALLETS account")
    group.add_argument("--hl-testnet", action="store_true", help="verify signatures as testnet (phantom agent 'b')")
    group.add_argument("--hl-address-budget", type=int, default=10_000,
                       help="fault: initial per-address request budget (Hyperliquid: 10000)")
    group.add_argument("--hl-weight-limit", type=int, default=WEIGHT_LIMIT, help="per-IP REST weight per minute")
    group.add_argument("--hl-idle-close", type=float, default=60.0,
                       help="close a websocket to which nothing was sent for S seconds")


def run_hyperliquid_venue(args: argparse.Namespace) -> int:
    from processes.venue_hyperliquid_ws import run

    return run(args)
