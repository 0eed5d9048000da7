"""The local venue's WebSocket API history methods (processes.venue_ws_api: `allOrders`, `myTrades`,
`trades.recent`, `trades.historical`, `klines`) driven by ccxt.pro 4.5.90's own, unmodified `binance` client
(fetchOrdersWs, fetchMyTradesWs, fetchTradesWs, fetchOHLCVWs) and by a raw websocket, in-process on 127.0.0.1
ephemeral ports. What comes back is checked against what was placed and against the venue's own
state: the matching engine's orders and fills, and its public tape.

USD-M is left out on purpose: Binance's `/ws-fapi/v1` serves none of these methods (its WebSocket API
lists order.place/modify/cancel/status, account and position requests, depth and tickers: those are
in test_venue_usdm_ccxt_sweep.py), so the venue answers them 400 -1020 although ccxt.pro's binanceusdm would send `myTrades` and
`trades.historical` there.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest

from processes.venue_market import VenueMarket
from processes.venue_orders import MatchingEngine, OrderSide, attach, book_seeder
from processes.venue_ws_api import WsApi
from tests.conftest import run_async
from tests.integration.test_venue_ws_api import (
    KEY,
    OTHER_KEY,
    OTHER_SECRET,
    RULES,
    SECRET,
    SYMBOL,
    TICK,
    UNIFIED,
    Venue,
    crossing_qty,
    eventually,
    order_params,
    pro_client,
    raw_client,
    signed,
)

TEST_TIMEOUT_S = 20.0
MAKER_FEE_BPS = 2.0
TAKER_FEE_BPS = 7.5  # fills pay a commission, so fees are compared too
DAY_MS = 24 * 3600 * 1000


async def start_venue() -> Venue:
    market = VenueMarket(symbol=SYMBOL, port=0, http_port=0)
    keys = {KEY: SECRET, OTHER_KEY: OTHER_SECRET}
    engine = MatchingEngine({SYMBOL: RULES}, keys=keys, seed_book=book_seeder(market), maker_fee_bps=MAKER_FEE_BPS,
                            taker_fee_bps=TAKER_FEE_BPS)
    side = OrderSide(engine, keys=keys, symbols={SYMBOL: RULES})
    attach(market, side)
    api = WsApi(market, side)
    api.mount()
    await market.start()
    await eventually(lambda: market.books.books.get(SYMBOL) is not None
                     and market.books.books[SYMBOL].sync.is_synced
                     and market.book_top(SYMBOL, 1)["asks"], what="venue book")
    return Venue(market, side, api)


def client(venue: Venue):
    """ccxt.pro's binance (test_venue_ws_api.pro_client), not spacing its calls by Binance's weights."""
    exchange = pro_client(venue)
    exchange.enableRateLimit = False
    return exchange


async def place_history(exchange, venue: Venue) -> dict[str, dict]:
    """Through ccxt.pro over the ws-api: a resting bid, a canceled bid, a buy and a sell that cross (fill)."""
    bid, ask = venue.best()
    placed = {"resting": await exchange.create_order_ws(UNIFIED, "limit", "buy", 0.001, float(bid - 200 * TICK))}
    gone = await exchange.create_order_ws(UNIFIED, "limit", "buy", 0.002, float(bid - 300 * TICK))
    await exchange.cancel_order_ws(gone["id"], UNIFIED)
    placed["canceled"] = gone
    bid, ask = venue.best()
    placed["bought"] = await exchange.create_order_ws(UNIFIED, "limit", "buy", float(crossing_qty(ask)),
                                                      float(ask + 50 * TICK))
    bid, ask = venue.best()
    placed["sold"] = await exchange.create_order_ws(UNIFIED, "limit", "sell", float(crossing_qty(bid)),
                                                    float(bid - 50 * TICK))
    return placed


def engine_trades(venue: Venue, key: str = KEY) -> list[dict]:
    return [t for t in venue.side.engine.trades if t["_key"] == key]


def by_number(rows: list[dict]) -> list[dict]:
    """ccxt sorts what it parses by (timestamp, id as text): "10" before "7" within one ms."""
    return sorted(rows, key=lambda row: int(row["id"]))


# ---- ccxt.pro, unmodified ---------------------------------------------------------------------------


def test_fetch_orders_ws_lists_every_order_placed_as_the_engine_holds_it() -> None:
    async def body() -> None:
        venue = await start_venue()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            placed = await place_history(exchange, venue)
            bid, _ = venue.best()
            venue.side._new_order(OTHER_KEY, order_params("BUY", bid - 200 * TICK), time.time_ns())

            orders = by_number(await exchange.fetch_orders_ws(UNIFIED))  # allOrders
            assert [o["id"] for o in orders] == [placed[k]["id"] for k in ("resting", "canceled", "bought", "sold")]
            by_id = {o["id"]: o for o in orders}
            assert by_id[placed["resting"]["id"]]["status"] == "open"
            assert by_id[placed["canceled"]["id"]]["status"] == "canceled"
            assert by_id[placed["bought"]["id"]]["status"] == "closed"
            assert by_id[placed["sold"]["id"]]["status"] == "closed"
            for name, sent in placed.items():
                got = by_id[sent["id"]]
                record = venue.side.engine.orders[int(sent["id"])]
                assert (got["side"], got["type"], got["price"], got["amount"]) == (
                    sent["side"], "limit", sent["price"], sent["amount"]), name
                assert got["clientOrderId"] == sent["clientOrderId"] == record.client_id, name
                assert got["timestamp"] == record.time_ms and got["info"]["updateTime"] == record.update_ms, name
                fills = [t for t in engine_trades(venue) if t["orderId"] == record.order_id]
                assert Decimal(got["info"]["executedQty"]) == sum((Decimal(t["qty"]) for t in fills), Decimal(0))
                assert Decimal(got["info"]["cummulativeQuoteQty"]) == sum(
                    (Decimal(t["quoteQty"]) for t in fills), Decimal(0)), name
            assert by_id[placed["bought"]["id"]]["filled"] == placed["bought"]["amount"]

            # from orderId on (the server's paging); closed orders (ccxt filters allOrders itself)
            later = by_number(await exchange.fetch_orders_ws(UNIFIED, params={"orderId": int(placed["bought"]["id"])}))
            assert [o["id"] for o in later] == [placed["bought"]["id"], placed["sold"]["id"]]
            closed = by_number(await exchange.fetch_closed_orders_ws(UNIFIED))
            assert [o["id"] for o in closed] == [placed["bought"]["id"], placed["sold"]["id"]]
            assert venue.api.counts["requests_allOrders"] == 3
        finally:
            await exchange.close()
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_fetch_my_trades_ws_returns_the_engines_fills_with_ids_prices_and_fees() -> None:
    async def body() -> None:
        venue = await start_venue()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            placed = await place_history(exchange, venue)
            fills = engine_trades(venue)
            filled_ids = {placed["bought"]["id"], placed["sold"]["id"]}
            assert {str(t["orderId"]) for t in fills} == filled_ids

            trades = by_number(await exchange.fetch_my_trades_ws(UNIFIED))  # myTrades
            assert [t["id"] for t in trades] == [str(t["id"]) for t in fills]
            for got, fill in zip(trades, fills):
                assert got["order"] == str(fill["orderId"])
                assert got["side"] == ("buy" if fill["isBuyer"] else "sell")
                assert (got["price"], got["amount"]) == (float(fill["price"]), float(fill["qty"]))
                assert got["takerOrMaker"] == "taker"  # both crossed the book
                assert got["fee"] == {"cost": float(fill["commission"]), "currency": "USDT"}
                assert got["timestamp"] == fill["time"]
                expected_fee = Decimal(fill["quoteQty"]) * Decimal(str(TAKER_FEE_BPS)) / 10000
                assert abs(Decimal(fill["commission"]) - expected_fee) <= Decimal("0.00000001")
            for name in ("bought", "sold"):
                mine = [t for t in trades if t["order"] == placed[name]["id"]]
                assert sum(t["amount"] for t in mine) == placed[name]["amount"]
                # the order's own FULL reply listed the same fills
                assert [str(f["tradeId"]) for f in placed[name]["info"]["fills"]] == [t["id"] for t in mine]

            # fromId, limit and startTime go to the server
            second = int(trades[1]["id"])
            got = await exchange.fetch_my_trades_ws(UNIFIED, limit=1, params={"fromId": second})
            assert [t["id"] for t in got] == [str(second)]
            got = await exchange.fetch_my_trades_ws(UNIFIED, since=fills[-1]["time"] + 1)
            assert got == []
            got = by_number(await exchange.fetch_my_trades_ws(UNIFIED, since=fills[0]["time"]))
            assert [t["id"] for t in got] == [str(t["id"]) for t in fills]
            by_order = await exchange.fetch_my_trades_ws(UNIFIED, params={"orderId": int(placed["sold"]["id"])})
            assert {t["order"] for t in by_order} == {placed["sold"]["id"]}
        finally:
            await exchange.close()
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_fetch_trades_ws_is_the_venues_tape() -> None:
    async def body() -> None:
        venue = await start_venue()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            tapes = venue.market.tape.tapes
            await eventually(lambda: SYMBOL in tapes and len(tapes[SYMBOL].prints) >= 5, what="5 prints on the tape")
            tape = venue.market.tape.tapes[SYMBOL]
            grid = venue.market.tape.grid(SYMBOL)
            by_id = {p.first_id: p for p in tape.prints}
            recent = by_number(await exchange.fetch_trades_ws(UNIFIED, limit=3))  # trades.historical: the latest
            ids = [int(t["id"]) for t in recent]
            assert len(ids) == 3
            assert ids[-1] >= max(by_id)  # nothing older than what the tape held when asked
            first = tape.prints[0]
            got = by_number(await exchange.fetch_trades_ws(UNIFIED, limit=4, params={"fromId": first.first_id}))
            assert [int(t["id"]) for t in got] == [p.first_id for p in tape.from_id(first.first_id, 4)]
            for trade in recent + got:
                p = tape.from_id(int(trade["id"]), 1)[0]
                assert trade["price"] == float(grid.tick_size * p.px_tick)
                assert trade["amount"] == float(grid.lot_size * p.qty_lot)
                assert trade["timestamp"] == p.time_ms
                assert trade["side"] == ("sell" if p.is_buyer_maker else "buy")
        finally:
            await exchange.close()
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_fetch_ohlcv_ws_is_the_tapes_klines() -> None:
    async def body() -> None:
        venue = await start_venue()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            tapes = venue.market.tape.tapes
            await eventually(lambda: SYMBOL in tapes and tapes[SYMBOL].prints and tapes[SYMBOL].prints[0].time_ms
                             < time.time_ns() // 1_000_000 // 1000 * 1000, what="a print in a closed second")
            end_ms = time.time_ns() // 1_000_000 // 1000 * 1000 - 1  # only closed 1 s klines
            candles = await exchange.fetch_ohlcv_ws(UNIFIED, "1s", params={"endTime": end_ms})  # klines
            rows = venue.market.tape.klines({"symbol": SYMBOL, "interval": "1s", "endTime": str(end_ms)}, 1000)
            assert candles and candles == [[r[0], *map(float, r[1:6])] for r in rows]
            with pytest.raises(ccxt_async.BadRequest, match="-1120"):
                await exchange.fetch_ohlcv_ws(UNIFIED, "1s", params={"interval": "7m"})
        finally:
            await exchange.close()
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


# ---- the protocol, raw: parameters and Binance's error codes -------------------------------------------


def test_history_methods_refuse_bad_params_with_binances_codes_and_charge_their_weights() -> None:
    async def body() -> None:
        venue = await start_venue()
        try:
            async with aiohttp.ClientSession() as session:
                raw = await raw_client(session, venue)

                async def error(method: str, params: dict[str, Any]) -> dict:
                    reply = await raw.call(method, params)
                    assert reply["status"] == 400, (method, params, reply)
                    return reply["error"]

                missing = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
                for method in ("allOrders", "myTrades"):
                    assert await error(method, signed({})) == {"code": -1102, "msg": missing}
                    assert await error(method, signed({"symbol": "NOPEUSDT"})) == {"code": -1121,
                                                                                  "msg": "Invalid symbol."}
                    assert (await error(method, signed({"symbol": SYMBOL, "limit": "ten"})))["code"] == -1100
                    now_ms = time.time_ns() // 1_000_000
                    too_long = {"symbol": SYMBOL, "startTime": now_ms - DAY_MS - 1, "endTime": now_ms}
                    assert await error(method, signed(too_long)) == {
                        "code": -1127, "msg": "More than 24 hours between startTime and endTime."}
                for extra in ({"fromId": 1}, {"orderId": 1}):
                    combined = signed({"symbol": SYMBOL, "startTime": 1} | extra)
                    assert await error("myTrades", combined) == {
                        "code": -1128, "msg": "Combination of optional parameters invalid."}
                for method in ("trades.recent", "trades.historical"):
                    assert (await error(method, {}))["code"] == -1102
                    assert (await error(method, {"symbol": "NOPEUSDT"}))["code"] == -1121
                    assert (await error(method, {"symbol": SYMBOL, "limit": 1001}))["code"] == -1130
                assert (await error("trades.historical", {"symbol": SYMBOL, "fromId": "x"}))["code"] == -1100
                assert await error("order.status", signed({"symbol": SYMBOL, "orderId": 999})) == {
                    "code": -2013, "msg": "Order does not exist."}

                weight = lambda reply: reply["rateLimits"][0]["count"]  # noqa: E731
                before = weight(await raw.call("ping"))
                after = weight(await raw.call("myTrades", signed({"symbol": SYMBOL})))
                assert after - before == 20
                by_order = weight(await raw.call("myTrades", signed({"symbol": SYMBOL, "orderId": 1})))
                assert by_order - after == 5
                orders = weight(await raw.call("allOrders", signed({"symbol": SYMBOL})))
                assert orders - by_order == 20
                reply = await raw.call("trades.recent", {"symbol": SYMBOL, "limit": 1})
                assert reply["status"] == 200 and weight(reply) - orders == 25
                await raw.ws.close()
        finally:
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_history_paging_follows_start_end_order_id_from_id_and_limit() -> None:
    async def body() -> None:
        venue = await start_venue()
        try:
            async with aiohttp.ClientSession() as session:
                raw = await raw_client(session, venue)
                bid, ask = venue.best()
                ids = []
                for i in range(3):  # resting
                    reply = await raw.call("order.place", signed(order_params("BUY", bid - (200 + i) * TICK)))
                    ids.append(reply["result"]["orderId"])
                for _ in range(3):  # crossing: filled at once
                    bid, ask = venue.best()
                    reply = await raw.call("order.place", signed(order_params("BUY", ask + 50 * TICK,
                                                                              qty=crossing_qty(ask))))
                    assert reply["result"]["status"] == "FILLED"
                    ids.append(reply["result"]["orderId"])
                orders = venue.side.engine.orders
                fills = engine_trades(venue)
                assert len(fills) >= 3

                async def listed(method: str, params: dict, key: str) -> list:
                    reply = await raw.call(method, signed({"symbol": SYMBOL} | params))
                    assert reply["status"] == 200, reply
                    return [row[key] for row in reply["result"]]

                assert await listed("allOrders", {}, "orderId") == ids
                assert await listed("allOrders", {"limit": 2}, "orderId") == ids[-2:]  # the most recent
                assert await listed("allOrders", {"orderId": ids[1], "limit": 2}, "orderId") == ids[1:3]
                assert await listed("allOrders", {"limit": 5000}, "orderId") == ids  # at most 1000
                start = orders[ids[2]].time_ms
                # with a time bound orderId is ignored; the first `limit` from startTime
                assert await listed("allOrders", {"startTime": start, "orderId": ids[-1], "limit": 1},
                                    "orderId") == [o for o in ids if orders[o].time_ms >= start][:1]
                assert await listed("allOrders", {"endTime": start - 1}, "orderId") == [
                    o for o in ids if orders[o].time_ms < start]
                assert await listed("allOrders", {"startTime": orders[ids[-1]].time_ms + 1}, "orderId") == []

                trade_ids = [t["id"] for t in fills]
                assert await listed("myTrades", {}, "id") == trade_ids
                assert await listed("myTrades", {"limit": 1}, "id") == trade_ids[-1:]
                assert await listed("myTrades", {"fromId": trade_ids[1], "limit": 1}, "id") == trade_ids[1:2]
                assert await listed("myTrades", {"orderId": ids[3]}, "id") == [
                    t["id"] for t in fills if t["orderId"] == ids[3]]
                assert await listed("myTrades", {"orderId": ids[0]}, "id") == []  # resting: no fills
                last_ms = fills[-1]["time"]
                assert await listed("myTrades", {"startTime": last_ms}, "id") == [
                    t["id"] for t in fills if t["time"] >= last_ms]
                assert await listed("myTrades", {"endTime": fills[0]["time"] - 1}, "id") == []
                # another account sees none of them
                reply = await raw.call("myTrades", signed({"symbol": SYMBOL}, OTHER_KEY, OTHER_SECRET))
                assert reply["result"] == []
                reply = await raw.call("allOrders", signed({"symbol": SYMBOL}, OTHER_KEY, OTHER_SECRET))
                assert reply["result"] == []
                await raw.ws.close()
        finally:
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)
