"""Calls a new user makes with ccxt 4.5.90's own, unmodified `binance` against `mm venue --market spot`
(built from the real CLI flags, in-process on 127.0.0.1 ephemeral ports), found by sweeping ccxt's unified
methods (/tmp/ccxt_sweep): what the venue answers, and the ccxt exception classes its Binance error bodies
map to. Each test runs one asyncio loop, bounded by TEST_TIMEOUT_S.
"""

from __future__ import annotations

import argparse

import ccxt.async_support as ccxt_async
import pytest

from mm.ticks import format_price
from processes.venue_market import VenueMarket, add_venue_arguments, venue_from_args
from processes.venue_orders import KEYS_ENV, attach, build_order_side
from processes.venue_ws_api import ws_api_from_args
from tests.conftest import run_async, wait_until_async

TEST_TIMEOUT_S = 20.0
SYMBOL = "BTCUSDT"
UNIFIED = "BTC/USDT"
KEY = "mmSweepKeyA1b2C3d4E5f6"
SECRET = "mmSweepSecret-Zz9Yy8Xx7"
OPTIONS = {"fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}}


async def start_spot() -> VenueMarket:
    parser = argparse.ArgumentParser()
    add_venue_arguments(parser)
    args = parser.parse_args(["--market", "spot", "--port", "0", "--http-port", "0", "--speed", "1"])
    venue = venue_from_args(args)
    side = build_order_side(args, venue, {KEYS_ENV: f"{KEY}:{SECRET}"})
    attach(venue, side)
    ws_api_from_args(args, venue, side)
    await venue.start()
    await wait_until_async(lambda: venue.book_top(SYMBOL, 1)["asks"] and venue.book_top(SYMBOL, 1)["bids"],
                           5.0, what="venue book")
    return venue


def client(venue: VenueMarket, secret: str = SECRET) -> ccxt_async.binance:
    exchange = ccxt_async.binance({"apiKey": KEY, "secret": secret, "options": dict(OPTIONS)})
    exchange.urls["api"]["public"] = exchange.urls["api"]["private"] = venue.http_url + "/api/v3"
    return exchange


def test_fetch_bids_asks_and_book_ticker_match_the_venue_book() -> None:
    async def scenario() -> None:
        venue = await start_spot()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            tickers = await exchange.fetch_bids_asks([UNIFIED])  # GET /api/v3/ticker/bookTicker?symbols=[..]
            ticker = tickers[UNIFIED]
            assert ticker["bid"] is not None and ticker["ask"] is not None
            assert 0 < ticker["bid"] < ticker["ask"] and ticker["bidVolume"] > 0 and ticker["askVolume"] > 0
            one = await exchange.publicGetTickerBookTicker({"symbol": SYMBOL})  # one symbol: one object
            assert set(one) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"} and one["symbol"] == SYMBOL
            assert float(one["bidPrice"]) < float(one["askPrice"])
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.publicGetTickerBookTicker({"symbol": "NOPEUSDT"})
            with pytest.raises(ccxt_async.BadRequest, match="-1100"):
                await exchange.publicGetTickerBookTicker({"symbols": "BTCUSDT"})  # not a JSON array
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_user_errors_raise_the_ccxt_class_real_binance_gets() -> None:
    async def scenario() -> None:
        venue = await start_spot()
        exchange = client(venue)
        wrong = client(venue, secret="not-the-secret")
        try:
            await exchange.load_markets()
            book = await exchange.fetch_order_book(UNIFIED, 5)
            bid = book["bids"][0][0]
            with pytest.raises(ccxt_async.InvalidOrder):  # PRICE_FILTER (-1013 with that message)
                await exchange.privatePostOrder({"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                 "timeInForce": "GTC", "quantity": "0.001",
                                                 "price": "%.3f" % (round(bid * 0.98, 2) + 0.001)})
            with pytest.raises(ccxt_async.BadRequest, match="NOTIONAL"):  # ccxt's spot -1013 is BadRequest
                await exchange.create_order(UNIFIED, "limit", "buy", 0.00001, round(bid * 0.98, 2))
            with pytest.raises(ccxt_async.InsufficientFunds):
                await exchange.create_order(UNIFIED, "limit", "buy", 100.0, round(bid * 0.98, 2))
            with pytest.raises(ccxt_async.OrderNotFound, match="-2011"):
                await exchange.cancel_order("999999999", UNIFIED)
            with pytest.raises(ccxt_async.OrderNotFound, match="-2013"):
                await exchange.fetch_order("999999999", UNIFIED)
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.publicGetDepth({"symbol": "NOPEUSDT"})
            with pytest.raises(ccxt_async.AuthenticationError, match="-1022"):
                await wrong.fetch_balance()
        finally:
            await exchange.close()
            await wrong.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_fetch_orders_closed_and_canceled_read_all_orders() -> None:
    async def scenario() -> None:
        venue = await start_spot()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            book = await exchange.fetch_order_book(UNIFIED, 5)
            bid, ask = book["bids"][0][0], book["asks"][0][0]
            resting = await exchange.create_order(UNIFIED, "limit", "buy", 0.0003, round(bid * 0.98, 2))
            gone = await exchange.create_order(UNIFIED, "limit", "buy", 0.0003, round(bid * 0.97, 2))
            await exchange.cancel_order(gone["id"], UNIFIED)
            taker = await exchange.create_order(UNIFIED, "limit", "buy", 0.0003, round(ask * 1.01, 2))
            assert taker["status"] == "closed"
            every = await exchange.fetch_orders(UNIFIED)  # GET /api/v3/allOrders
            assert [o["id"] for o in every] == [resting["id"], gone["id"], taker["id"]]
            assert [o["status"] for o in every] == ["open", "canceled", "closed"]
            assert [o["id"] for o in await exchange.fetch_closed_orders(UNIFIED)] == [taker["id"]]
            assert [o["id"] for o in await exchange.fetch_canceled_orders(UNIFIED)] == [gone["id"]]
            since = await exchange.privateGetAllOrders({"symbol": SYMBOL, "orderId": gone["id"], "limit": 1})
            assert [str(o["orderId"]) for o in since] == [gone["id"]]
            last = await exchange.privateGetAllOrders({"symbol": SYMBOL, "limit": 1})
            assert [str(o["orderId"]) for o in last] == [taker["id"]]
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.privateGetAllOrders({"symbol": "NOPEUSDT"})
            with pytest.raises(ccxt_async.BadRequest, match="-1100"):
                await exchange.privateGetAllOrders({"symbol": SYMBOL, "orderId": "x"})
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_market_orders_take_the_venue_book_and_their_fills_are_the_engines() -> None:
    async def scenario() -> None:
        venue = await start_spot()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            assert "MARKET" in exchange.market(UNIFIED)["info"]["orderTypes"]
            start = (await exchange.fetch_balance())["BTC"]["total"]
            bought = await exchange.create_order(UNIFIED, "market", "buy", 0.0003)
            assert (bought["type"], bought["status"], bought["filled"]) == ("market", "closed", 0.0003)
            assert bought["info"]["price"] == "0.00000000" and bought["average"] > 0
            assert (await exchange.fetch_balance())["BTC"]["total"] == pytest.approx(start + 0.0003)
            sold = await exchange.create_market_sell_order(UNIFIED, 0.0003)
            assert (sold["status"], sold["filled"]) == ("closed", 0.0003)
            mine = await exchange.fetch_my_trades(UNIFIED)  # GET /api/v3/myTrades: the engine's fills
            assert {t["order"] for t in mine} == {bought["id"], sold["id"]}
            assert sum(t["amount"] for t in mine if t["side"] == "buy") == pytest.approx(0.0003)
            assert all(t["takerOrMaker"] == "taker" for t in mine)
            assert (await exchange.fetch_balance())["BTC"]["total"] == pytest.approx(start)
            spent = await exchange.create_market_buy_order_with_cost(UNIFIED, 20)  # quoteOrderQty=20
            assert spent["status"] == "closed" and 20 - 0.00001 * spent["average"] * 1.01 < spent["cost"] <= 20
            assert spent["filled"] == pytest.approx(sum(t["amount"] for t in await exchange.fetch_my_trades(UNIFIED)
                                                        if t["order"] == spent["id"]))
            with pytest.raises(ccxt_async.BadRequest, match="-1106"):
                await exchange.privatePostOrder({"symbol": SYMBOL, "side": "BUY", "type": "MARKET",
                                                 "quantity": "0.0003", "price": "1.00"})
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_fetch_last_prices_is_the_tapes_last_print() -> None:
    async def scenario() -> None:
        venue = await start_spot()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            await wait_until_async(lambda: venue.tape.tapes.get(SYMBOL) and venue.tape.tapes[SYMBOL].prints, 5.0,
                                   what="a print on the tape")
            last = (await exchange.fetch_last_prices([UNIFIED]))[UNIFIED]  # GET /api/v3/ticker/price?symbols=
            grid = venue.tape.grid(SYMBOL)
            assert last["info"]["price"] in {format_price(grid, p.px_tick) for p in venue.tape.tapes[SYMBOL].prints}
            one = await exchange.publicGetTickerPrice({"symbol": SYMBOL})
            assert set(one) == {"symbol", "price"} and float(one["price"]) > 0
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.publicGetTickerPrice({"symbol": "NOPEUSDT"})
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_fetch_status_and_trading_fees_with_sapi_at_the_venue() -> None:
    async def scenario() -> None:
        venue = await start_spot()
        exchange = client(venue)
        exchange.urls["api"]["sapi"] = venue.http_url + "/sapi/v1"  # ccxt asks sapi for these two
        exchange.enableRateLimit = False
        try:
            await exchange.load_markets()
            assert (await exchange.fetch_status())["status"] == "ok"  # GET /sapi/v1/system/status
            fee = await exchange.fetch_trading_fee(UNIFIED)  # GET /sapi/v1/asset/tradeFee?symbol=
            account = (await exchange.fetch_balance())["info"]["commissionRates"]  # the engine's rates
            assert (fee["maker"], fee["taker"]) == (float(account["maker"]), float(account["taker"]))
            assert (await exchange.fetch_trading_fees())[UNIFIED]["taker"] == fee["taker"]
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.sapiGetAssetTradeFee({"symbol": "NOPEUSDT"})
            with pytest.raises(ccxt_async.BadRequest, match="-1020"):  # the venue is no wallet: not a 404
                await exchange.fetch_deposits("USDT")
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_fill_or_kill_fills_whole_or_expires_with_nothing_filled() -> None:
    async def scenario() -> None:
        venue = await start_spot()
        exchange = client(venue)
        try:
            await exchange.load_markets()
            book = await exchange.fetch_order_book(UNIFIED, 5)
            usdt = (await exchange.fetch_balance())["USDT"]["free"]
            killed = await exchange.create_order(UNIFIED, "limit", "buy", 0.0003, round(book["bids"][0][0] - 0.1, 2),
                                                 {"timeInForce": "FOK"})  # nothing to take at that price
            assert (killed["status"], killed["filled"], killed["timeInForce"]) == ("expired", 0.0, "FOK")
            assert (await exchange.fetch_balance())["USDT"]["free"] == usdt  # nothing stays locked
            partly = await exchange.create_order(UNIFIED, "limit", "buy", 9.0, book["asks"][0][0],
                                                 {"timeInForce": "FOK"})  # more than the book holds that low
            assert (partly["status"], partly["filled"]) == ("expired", 0.0)
            assert await exchange.fetch_my_trades(UNIFIED) == []
            filled = await exchange.create_order(UNIFIED, "limit", "buy", 0.0003, round(book["asks"][0][0] * 1.01, 2),
                                                 {"timeInForce": "FOK"})
            assert (filled["status"], filled["filled"]) == ("closed", 0.0003)
            assert [o["status"] for o in await exchange.fetch_orders(UNIFIED)] == ["expired", "expired", "closed"]
            assert await exchange.fetch_open_orders(UNIFIED) == []
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)
