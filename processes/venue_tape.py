"""`mm venue`'s public trade data (spot and USD-M), derived from the trades its own producer sent: the
REST views `ticker/24hr`, `klines`, `aggTrades`, `trades` and the streams `<s>@ticker`, `<s>@miniTicker`
and `<s>@kline_<interval>`. No canned numbers: every figure comes from mm.trade_tape fed by
`VenueTape.on_frame` (a frame listener of the market side) and the venue's own book (bid / ask).

A symbol's tape takes its `@trade` frames; a capture that recorded only `@aggTrade` gives a tape of
aggregates (its `trades` view then lists one row per aggregate, named by its first trade id). The USD-M
simulator sends both for every trade: the `@trade` ones are used. The 24 h window and the open kline run
on the simulator's wall clock, or on a capture's own time (its last print).
Streams: every `STREAM_INTERVAL_S` each subscribed `@ticker` / `@miniTicker` gets a `24hrTicker` /
`24hrMiniTicker` (once the symbol has traded) and each subscribed `@kline_<i>` the open kline (x false);
when an interval ends its kline goes out once more with x true.

Errors are Binance's (VenueError): -1121 unknown symbol, -1102 a missing `symbol` / `interval`, -1120 a
bad interval, -1100 a number that is not one, -1130 a `limit` out of range, -1127 a time range too long,
-1128 `symbol` with `symbols`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal

import msgspec
from aiohttp import web

from mm.capture import AggTradeFrame, TradeFrame
from mm.errors import OffGridError
from mm.ticks import TickGrid, format_price, format_qty, parse_price, parse_qty
from mm.trade_tape import DAY_MS, INTERVAL_MS, Kline, Print, Stats, TradeTape
from processes.venue_orders import MS, VenueError

STREAM_INTERVAL_S = 1.0  # Binance pushes @ticker and @kline_<i> about every second (spot klines: 2 s)
KLINE_KINDS = frozenset(f"kline_{i}" for i in INTERVAL_MS)
TICKER_KINDS = frozenset({"ticker", "miniTicker"})  # ccxt.pro's watch_ticker subscribes `@miniTicker`
STREAM_KINDS = TICKER_KINDS | KLINE_KINDS
MAX_AGG_RANGE_MS = 3_600_000  # aggTrades: startTime and endTime at most 1 h apart
_QUOTE = Decimal("0.00000001")


def requested_symbols(params: Mapping[str, str], served: Iterable[str]) -> tuple[list[str], bool]:
    """The symbols a ticker request names, upper case, and whether it asked for one object (`symbol=`);
    `symbols=["A","B"]` (a JSON array) or neither (every served symbol) ask for a list."""
    one = params.get("symbol")
    many = params.get("symbols")
    if one is not None and many is not None:
        raise VenueError(400, -1128, "Combination of optional parameters invalid.")
    if one is not None:
        return [one.upper()], True
    if many is None:
        return sorted(served), False
    try:
        names = json.loads(many)
    except ValueError:
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise VenueError(400, -1100, "Illegal characters found in parameter 'symbols'.")
    return [n.upper() for n in names], False


def int_param(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise VenueError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None


def limit_param(params: Mapping[str, str], max_limit: int, default: int = 500) -> int:
    """`limit` (default `default`) within [1, max_limit]."""
    limit = int_param(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= max_limit:
        raise VenueError(400, -1130, f"Data sent for parameter 'limit' is not valid: {limit} is not in [1, {max_limit}].")
    return limit


def _mandatory(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise VenueError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _quote(grid: TickGrid, notional_tick_lot: int) -> str:
    value = Decimal(notional_tick_lot) * grid.tick_size * grid.lot_size
    return f"{value.quantize(_QUOTE):f}"


class VenueTape:
    """Per-symbol tapes of a VenueMarket, and their Binance renderings (`futures`: USD-M's shapes)."""

    def __init__(self, market, *, futures: bool = False) -> None:
        self.market = market
        self.futures = futures
        self.tapes: dict[str, TradeTape] = {}  # from @trade
        self.agg_tapes: dict[str, TradeTape] = {}  # from @aggTrade
        self._kline_open: dict[tuple[str, str], Kline] = {}  # (symbol, interval) -> last open kline streamed

    # -- recording --

    def on_frame(self, symbol: str, frame: object) -> None:
        if type(frame) is TradeFrame:
            tapes, is_aggregated, ids = self.tapes, False, (frame.t, frame.t, frame.t)
        elif type(frame) is AggTradeFrame:
            tapes, is_aggregated, ids = self.agg_tapes, True, (frame.a, frame.f, frame.l)
        else:
            return
        grid = self.grid(symbol)
        if grid is None:
            return
        try:
            px_tick, qty_lot = parse_price(grid, frame.p), parse_qty(grid, frame.q)
        except OffGridError:
            self.market.counts["tape_off_grid"] += 1
            return
        tape = tapes.get(symbol)
        if tape is None:
            tape = tapes[symbol] = TradeTape(is_aggregated=is_aggregated)
        agg_id, first_id, last_id = ids
        tape.append(Print(agg_id, px_tick, qty_lot, first_id, last_id, frame.T or time.time_ns() // MS, frame.m))

    def grid(self, symbol: str) -> TickGrid | None:
        state = self.market.books.books.get(symbol)
        return state.grid if state is not None else None

    def _served(self, params: Mapping[str, str]) -> tuple[TickGrid, TradeTape]:
        """The grid and tape of the request's mandatory `symbol`."""
        return self._tape_of(_mandatory(params, "symbol").upper())

    def _tape_of(self, symbol: str) -> tuple[TickGrid, TradeTape]:
        """The symbol's grid and tape (`@trade`, else `@aggTrade`), or -1121 for a symbol not served."""
        grid = self.grid(symbol)
        if grid is None:
            raise VenueError(400, -1121, "Invalid symbol.")
        tape = self.tapes.get(symbol) or self.agg_tapes.get(symbol) or TradeTape()
        return grid, tape

    # -- REST views --

    def ticker_24h(self, params: Mapping[str, str], now_ms: int) -> dict | list:
        """`ticker/24hr`: `symbol=` one object; `symbols=["A",..]` or neither: a list."""
        names, is_one = requested_symbols(params, self.market.books.books)
        tickers = [self.ticker_json(name, now_ms) for name in names]
        return tickers[0] if is_one else tickers

    def ticker_price(self, params: Mapping[str, str], now_ms: int) -> dict | list:
        """`ticker/price`: the tape's last print (zero before the first); one object for `symbol=`, else a list.
        USD-M adds the print's `time`."""
        names, is_one = requested_symbols(params, self.market.books.books)
        prices = []
        for name in names:
            grid, tape = self._tape_of(name)
            last = tape.prints[-1] if tape.prints else None
            body = {"symbol": name, "price": format_price(grid, last.px_tick if last is not None else 0)}
            if self.futures:
                body["time"] = last.time_ms if last is not None else now_ms
            prices.append(body)
        return prices[0] if is_one else prices

    def market_ms(self, tape: TradeTape, now_ms: int) -> int:
        """The tape's clock: the wall clock for the simulator; a capture's own time (its last print) for a
        capture, so that its 24 h window and its open kline are those of the recorded market."""
        if self.market.feed is not None and tape.prints:
            return tape.prints[-1].time_ms
        return now_ms

    def ticker_json(self, symbol: str, now_ms: int) -> dict:
        grid, tape = self._tape_of(symbol)
        now_ms = self.market_ms(tape, now_ms)
        stats = tape.stats(now_ms)
        if stats is None:
            zero_px, zero_qty = format_price(grid, 0), format_qty(grid, 0)
            body = {"symbol": symbol, "priceChange": zero_px, "priceChangePercent": "0.000",
                    "weightedAvgPrice": zero_px, "lastPrice": zero_px, "lastQty": zero_qty, "openPrice": zero_px,
                    "highPrice": zero_px, "lowPrice": zero_px, "volume": zero_qty, "quoteVolume": _quote(grid, 0),
                    "openTime": now_ms - DAY_MS, "closeTime": now_ms, "firstId": -1, "lastId": -1, "count": 0}
        else:
            body = self._stats_json(symbol, grid, stats)
        if not self.futures:
            top = self.market.book_top(symbol, 1)
            none = [format_price(grid, 0), format_qty(grid, 0)]
            bid = top["bids"][0] if top["bids"] else none
            ask = top["asks"][0] if top["asks"] else none
            before = tape.px_before(now_ms - DAY_MS)
            body |= {"prevClosePrice": format_price(grid, before) if before is not None else body["openPrice"],
                     "bidPrice": bid[0], "bidQty": bid[1], "askPrice": ask[0], "askQty": ask[1]}
        return body

    @staticmethod
    def _stats_json(symbol: str, grid: TickGrid, stats: Stats) -> dict:
        change = stats.last_px_tick - stats.open_px_tick
        percent = Decimal(change) * 100 / Decimal(stats.open_px_tick)
        weighted = Decimal(stats.notional_tick_lot) / Decimal(stats.volume_lot) * grid.tick_size
        return {"symbol": symbol, "priceChange": ("-" if change < 0 else "") + format_price(grid, abs(change)),
                "priceChangePercent": f"{percent.quantize(Decimal('0.001')):f}",
                "weightedAvgPrice": f"{weighted.quantize(_QUOTE):f}",
                "lastPrice": format_price(grid, stats.last_px_tick), "lastQty": format_qty(grid, stats.last_qty_lot),
                "openPrice": format_price(grid, stats.open_px_tick), "highPrice": format_price(grid, stats.high_px_tick),
                "lowPrice": format_price(grid, stats.low_px_tick), "volume": format_qty(grid, stats.volume_lot),
                "quoteVolume": _quote(grid, stats.notional_tick_lot), "openTime": stats.open_ms,
                "closeTime": stats.close_ms, "firstId": stats.first_id, "lastId": stats.last_id,
                "count": stats.count}

    def klines(self, params: Mapping[str, str], max_limit: int) -> list:
        """`klines`: `symbol`, `interval` (INTERVAL_MS), optional `startTime`, `endTime`, `limit`."""
        grid, tape = self._served(params)
        interval_ms = INTERVAL_MS.get(_mandatory(params, "interval"))
        if interval_ms is None:
            raise VenueError(400, -1120, "Invalid interval.")
        limit = limit_param(params, max_limit)
        found = tape.klines(interval_ms, int_param(params, "startTime"), int_param(params, "endTime"), limit)
        return [kline_row(grid, k) for k in found]

    def agg_trades(self, params: Mapping[str, str]) -> list:
        """`aggTrades`: from `fromId`, or within [startTime, endTime] (at most 1 h apart), else the last
        `limit` (default 500, max 1000)."""
        grid, tape = self._served(params)
        from_id, start, end = (int_param(params, n) for n in ("fromId", "startTime", "endTime"))
        limit = limit_param(params, 1000)
        if start is not None and end is not None and not 0 <= end - start <= MAX_AGG_RANGE_MS:
            raise VenueError(400, -1127, "More than 1 hours between startTime and endTime.")
        aggs = tape.agg_trades()
        if from_id is not None:
            picked = [a for a in aggs if a.agg_id >= from_id][:limit]
        elif start is not None or end is not None:
            picked = [a for a in aggs if (start is None or a.time_ms >= start) and (end is None or a.time_ms <= end)]
            picked = picked[:limit] if start is not None else picked[-limit:]
        else:
            picked = aggs[-limit:]
        rows = []
        for a in picked:
            row = {"a": a.agg_id, "p": format_price(grid, a.px_tick), "q": format_qty(grid, a.qty_lot),
                   "f": a.first_id, "l": a.last_id, "T": a.time_ms, "m": a.is_buyer_maker}
            if not self.futures:
                row["M"] = True
            rows.append(row)
        return rows

    def recent_trades(self, params: Mapping[str, str], *, is_historical: bool = False) -> list:
        """`trades`: the last `limit` (default 500, max 1000), oldest first; `historicalTrades` (`is_historical`):
        from trade id `fromId` on when it is given."""
        grid, tape = self._served(params)
        limit = limit_param(params, 1000)
        from_id = int_param(params, "fromId") if is_historical else None
        rows = []
        for t in tape.recent(limit) if from_id is None else tape.from_id(from_id, limit):
            row = {"id": t.first_id, "price": format_price(grid, t.px_tick), "qty": format_qty(grid, t.qty_lot),
                   "quoteQty": _quote(grid, t.px_tick * t.qty_lot), "time": t.time_ms,
                   "isBuyerMaker": t.is_buyer_maker}
            if not self.futures:
                row["isBestMatch"] = True
            rows.append(row)
        return rows

    # -- spot REST routes (USD-M's go through processes.venue_usdm.UsdmSide, for its weights) --

    def mount_spot(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/api/v3/ticker/24hr", self._route(self.ticker_24h))
        router.add_get("/api/v3/ticker/price", self._route(self.ticker_price))
        router.add_get("/api/v3/klines", self._route(lambda params, now_ms: self.klines(params, 1000)))
        router.add_get("/api/v3/uiKlines", self._route(lambda params, now_ms: self.klines(params, 1000)))
        router.add_get("/api/v3/aggTrades", self._route(lambda params, now_ms: self.agg_trades(params)))
        router.add_get("/api/v3/trades", self._route(lambda params, now_ms: self.recent_trades(params)))

    def _route(self, view):
        async def handle(request: web.Request) -> web.Response:
            try:
                body = view(request.query, time.time_ns() // MS)
            except VenueError as e:
                self.market.counts[f"tape_error_{e.code}"] += 1
                return web.Response(status=e.status, body=msgspec.json.encode({"code": e.code, "msg": e.msg}),
                                    content_type="application/json")
            self.market.counts["tape_requests"] += 1
            return web.Response(body=msgspec.json.encode(body), content_type="application/json")

        return handle

    # -- streams --

    async def run_streams(self) -> None:
        while True:
            await asyncio.sleep(STREAM_INTERVAL_S)
            self.push_streams(time.time_ns() // MS)

    def push_streams(self, now_ms: int) -> None:
        wanted: set[tuple[str, str]] = set()
        for conn in tuple(self.market._conns):
            wanted |= {k for k in conn.keys if k[1] in STREAM_KINDS}
        encode = msgspec.json.encode
        for lower, kind in sorted(wanted):
            symbol = lower.upper()
            if self.grid(symbol) is None:
                continue
            name = f"{lower}@{kind}"
            events = [self._ticker_event(symbol, now_ms, kind == "miniTicker")] if kind in TICKER_KINDS else \
                self._kline_events(symbol, kind.removeprefix("kline_"), now_ms)
            for event in events:
                if event is not None:
                    self.market._broadcast((lower, kind), encode({"stream": name, "data": event}))

    def _ticker_event(self, symbol: str, now_ms: int, is_mini: bool) -> dict | None:
        """`24hrTicker` (`@ticker`) or `24hrMiniTicker` (`@miniTicker`: close, open, high, low, volumes)."""
        ticker = self.ticker_json(symbol, now_ms)
        if ticker["count"] == 0:
            return None  # Binance pushes a ticker only for a symbol that traded
        event = {"e": "24hrMiniTicker" if is_mini else "24hrTicker", "E": now_ms, "s": symbol,
                 "c": ticker["lastPrice"], "o": ticker["openPrice"], "h": ticker["highPrice"],
                 "l": ticker["lowPrice"], "v": ticker["volume"], "q": ticker["quoteVolume"]}
        if is_mini:
            return event
        event |= {"p": ticker["priceChange"], "P": ticker["priceChangePercent"], "w": ticker["weightedAvgPrice"],
                  "Q": ticker["lastQty"], "O": ticker["openTime"], "C": ticker["closeTime"], "F": ticker["firstId"],
                  "L": ticker["lastId"], "n": ticker["count"]}
        if not self.futures:
            event |= {"x": ticker["prevClosePrice"], "b": ticker["bidPrice"], "B": ticker["bidQty"],
                      "a": ticker["askPrice"], "A": ticker["askQty"]}
        return event

    def _kline_events(self, symbol: str, interval: str, now_ms: int) -> list[dict]:
        """The kline that closed since the last push (x true), then the open one (x false)."""
        grid, tape = self._tape_of(symbol)
        interval_ms = INTERVAL_MS[interval]
        market_ms = self.market_ms(tape, now_ms)
        open_ms = market_ms - market_ms % interval_ms
        events = []
        previous = self._kline_open.pop((symbol, interval), None)
        if previous is not None and previous.open_ms < open_ms:
            closed = tape.klines(interval_ms, previous.open_ms, previous.open_ms, 1)
            events.append(_kline_event(symbol, grid, interval, closed[0] if closed else previous, True, now_ms))
        current = tape.klines(interval_ms, open_ms, open_ms, 1)
        if current:
            self._kline_open[(symbol, interval)] = current[0]
            events.append(_kline_event(symbol, grid, interval, current[0], False, now_ms))
        return events


def kline_row(grid: TickGrid, k: Kline) -> list:
    """One kline as the REST `klines` row (Binance's 12 fields, the last one unused)."""
    px = lambda tick: format_price(grid, tick)  # noqa: E731
    return [k.open_ms, px(k.open_px_tick), px(k.high_px_tick), px(k.low_px_tick), px(k.close_px_tick),
            format_qty(grid, k.volume_lot), k.close_ms, _quote(grid, k.notional_tick_lot), k.count,
            format_qty(grid, k.taker_buy_lot), _quote(grid, k.taker_buy_notional_tick_lot), "0"]


def _kline_event(symbol: str, grid: TickGrid, interval: str, k: Kline, is_closed: bool, now_ms: int) -> dict:
    row = kline_row(grid, k)
    return {"e": "kline", "E": now_ms, "s": symbol, "k": {
        "t": k.open_ms, "T": k.close_ms, "s": symbol, "i": interval, "f": k.first_id, "L": k.last_id,
        "o": row[1], "c": row[4], "h": row[2], "l": row[3], "v": row[5], "n": k.count, "x": is_closed,
        "q": row[7], "V": row[9], "Q": row[10], "B": "0"}}
