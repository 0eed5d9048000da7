"""Calls a new user makes with ccxt 4.5.90's own, unmodified `binanceusdm` against `mm venue --market usdm`
(built from the real CLI flags, in-process on 127.0.0.1 ephemeral ports), found by sweeping ccxt's unified
methods (/tmp/ccxt_sweep). Each test runs one asyncio loop, bounded by TEST_TIMEOUT_S.
"""

from __future__ import annotations

import argparse

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxtpro
import pytest

from mm.ticks import format_price
from processes.venue_market import add_venue_arguments
from processes.venue_orders import KEYS_ENV
from processes.venue_usdm import UsdmMarket, UsdmSide, build_usdm
from tests.conftest import run_async, wait_until_async

TEST_TIMEOUT_S = 20.0
SYMBOL = "BTCUSDT"
UNIFIED = "BTC/USDT:USDT"
KEY = "mmUsdmSweepKeyA1b2C3"
SECRET = "mmUsdmSweepSecret-Zz9Yy8"


async def start_usdm() -> UsdmMarket:
    return (await start_usdm_side())[0]


async def start_usdm_side() -> tuple[UsdmMarket, UsdmSide]:
    parser = argparse.ArgumentParser()
    add_venue_arguments(parser)
    args = parser.parse_args(["--market", "usdm", "--port", "0", "--http-port", "0", "--speed", "1"])
    market, side, _ = build_usdm(args, {KEYS_ENV: f"{KEY}:{SECRET}"})
    await market.start()
    await wait_until_async(lambda: market.mid(SYMBOL), 5.0, what="venue book")
    return market, side


def client(market: UsdmMarket) -> ccxt_async.binanceusdm:
    exchange = ccxt_async.binanceusdm({"apiKey": KEY, "secret": SECRET,
                                       "options": {"fetchCurrencies": False, "fetchMargins": False}})
    for name in list(exchange.urls["api"]):
        if name.startswith("fapi"):
            version = exchange.urls["api"][name].rsplit("/", 1)[-1]
            exchange.urls["api"][name] = f"{market.http_url}/fapi/{version}"
    return exchange


def test_bids_asks_all_orders_and_error_codes() -> None:
    async def scenario() -> None:
        market = await start_usdm()
        exchange = client(market)
        try:
            await exchange.load_markets()
            ticker = (await exchange.fetch_bids_asks([UNIFIED]))[UNIFIED]  # GET /fapi/v1/ticker/bookTicker
            assert 0 < ticker["bid"] < ticker["ask"] and ticker["timestamp"] > 0
            every = await exchange.fapiPublicGetTickerBookTicker()  # no symbol: a list
            assert [t["symbol"] for t in every] == [SYMBOL] and every[0]["lastUpdateId"] > 0
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.fapiPublicGetTickerBookTicker({"symbol": "NOPEUSDT"})
            bid, ask = ticker["bid"], ticker["ask"]
            resting = await exchange.create_order(UNIFIED, "limit", "buy", 0.002, round(bid * 0.98, 1))
            gone = await exchange.create_order(UNIFIED, "limit", "buy", 0.002, round(bid * 0.97, 1))
            await exchange.cancel_order(gone["id"], UNIFIED)
            taker = await exchange.create_order(UNIFIED, "limit", "buy", 0.002, round(ask * 1.01, 1))
            every = await exchange.fetch_orders(UNIFIED)  # GET /fapi/v1/allOrders
            assert [(o["id"], o["status"]) for o in every] == [
                (resting["id"], "open"), (gone["id"], "canceled"), (taker["id"], "closed")]
            assert [o["id"] for o in await exchange.fetch_closed_orders(UNIFIED)] == [taker["id"]]
            assert [o["id"] for o in await exchange.fetch_canceled_orders(UNIFIED)] == [gone["id"]]
            # ccxt keys its USD-M table by the fapi.binance.com host, so on loopback these two land on
            # ExchangeError; the venue's codes are the ones that table maps to InvalidOrder / InsufficientFunds
            linear = exchange.exceptions["linear"]["exact"]
            with pytest.raises(ccxt_async.ExchangeError, match="-4164") as small:
                await exchange.create_order(UNIFIED, "limit", "buy", 0.00001, round(bid * 0.98, 1))
            assert linear["-4164"] is ccxt_async.InvalidOrder, small.value
            with pytest.raises(ccxt_async.ExchangeError, match="-2019"):
                await exchange.create_order(UNIFIED, "limit", "buy", 100.0, round(bid * 0.98, 1))
            assert linear["-2019"] is ccxt_async.InsufficientFunds
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_ccxt_pro_watch_trades_gets_the_trade_stream() -> None:
    """ccxt.pro's binanceusdm watch_trades subscribes `<s>@trade` by default; the sim served only `@aggTrade`."""
    async def scenario() -> None:
        market = await start_usdm()
        exchange = ccxtpro.binanceusdm({"options": {"fetchCurrencies": False, "fetchMargins": False}})
        for name in list(exchange.urls["api"]):
            if name.startswith("fapi"):
                exchange.urls["api"][name] = f"{market.http_url}/fapi/" + exchange.urls["api"][name].rsplit("/", 1)[-1]
        exchange.urls["api"]["ws"]["linear"] = market.ws_url + "/ws"
        try:
            trades = await exchange.watch_trades(UNIFIED)
            assert trades and trades[0]["symbol"] == UNIFIED and trades[0]["info"]["e"] == "trade"
            assert trades[0]["price"] > 0 and trades[0]["amount"] > 0 and trades[0]["side"] in ("buy", "sell")
            agg = await exchange.watch_trades(UNIFIED, params={"name": "aggTrade"})
            assert agg and agg[-1]["price"] > 0
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_market_orders_open_and_reduce_only_close_the_position_and_fok_expires() -> None:
    async def scenario() -> None:
        market = await start_usdm()
        exchange = client(market)
        try:
            await exchange.load_markets()
            assert "MARKET" in exchange.market(UNIFIED)["info"]["orderTypes"]
            bought = await exchange.create_order(UNIFIED, "market", "buy", 0.002)
            assert (bought["type"], bought["status"], bought["filled"]) == ("market", "closed", 0.002)
            assert bought["info"]["origType"] == "MARKET" and bought["average"] > 0
            [position] = await exchange.fetch_positions([UNIFIED])
            assert (position["side"], position["contracts"]) == ("long", 0.002)
            assert position["entryPrice"] == pytest.approx(bought["average"])
            closed = await exchange.create_order(UNIFIED, "market", "sell", 0.002, None, {"reduceOnly": True})
            assert (closed["status"], closed["filled"], closed["reduceOnly"]) == ("closed", 0.002, True)
            assert await exchange.fetch_positions([UNIFIED]) == []
            with pytest.raises(ccxt_async.ExchangeError, match="-2022"):  # nothing left to reduce
                await exchange.create_order(UNIFIED, "market", "sell", 0.002, None, {"reduceOnly": True})
            bid = (await exchange.fetch_order_book(UNIFIED, 5))["bids"][0][0]
            killed = await exchange.create_order(UNIFIED, "limit", "buy", 0.002, round(bid - 1, 1), {"timeInForce": "FOK"})
            assert (killed["status"], killed["filled"], killed["timeInForce"]) == ("expired", 0.0, "FOK")
            assert await exchange.fetch_positions([UNIFIED]) == [] and await exchange.fetch_open_orders(UNIFIED) == []
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_batch_orders_open_order_last_prices_and_funding_interval() -> None:
    async def scenario() -> None:
        market = await start_usdm()
        exchange = client(market)
        try:
            await exchange.load_markets()
            bid = (await exchange.fetch_bids_asks([UNIFIED]))[UNIFIED]["bid"]
            placed = await exchange.create_orders([  # POST /fapi/v1/batchOrders
                {"symbol": UNIFIED, "type": "limit", "side": "buy", "amount": 0.002, "price": round(bid * 0.98, 1)},
                {"symbol": UNIFIED, "type": "limit", "side": "buy", "amount": 0.002, "price": round(bid * 0.97, 1)},
                {"symbol": UNIFIED, "type": "limit", "side": "buy", "amount": 0.00001, "price": round(bid * 0.97, 1)}])
            refused = [o["info"] for o in placed if o["id"] is None]  # ccxt sorts the answers by time
            assert [r["code"] for r in refused] == [-4164]  # the third one's own error; the others stand
            ids = [o["id"] for o in placed if o["id"] is not None]
            assert len(ids) == 2 and all(o["status"] == "open" for o in placed if o["id"] is not None)
            assert sorted(o["id"] for o in await exchange.fetch_open_orders(UNIFIED)) == sorted(ids)
            one = await exchange.fetch_open_order(ids[0], UNIFIED)  # GET /fapi/v1/openOrder
            assert (one["id"], one["status"], one["amount"]) == (ids[0], "open", 0.002)
            canceled = await exchange.cancel_orders([ids[0], ids[1]], UNIFIED)  # DELETE /fapi/v1/batchOrders
            assert [(o["id"], o["status"]) for o in canceled] == [(ids[0], "canceled"), (ids[1], "canceled")]
            assert await exchange.fetch_open_orders(UNIFIED) == []
            with pytest.raises(ccxt_async.ExchangeError, match="-2013"):  # cancelled: "does not exist"
                await exchange.fetch_open_order(ids[0], UNIFIED)
            with pytest.raises(ccxt_async.OrderNotFound, match="-2011"):  # ccxt reads the entry's own error
                await exchange.fapiPrivateDeleteBatchOrders({"symbol": SYMBOL, "orderIdList": f"[{ids[0]}]"})
            with pytest.raises(ccxt_async.BadRequest, match="-1130"):
                await exchange.fapiPrivatePostBatchOrders({"batchOrders": "[]"})
            last = (await exchange.fetch_last_prices([UNIFIED]))[UNIFIED]  # GET /fapi/v2/ticker/price
            tape = market.tape.tapes[SYMBOL].prints
            assert last["price"] in {float(market.tape.grid(SYMBOL).tick_size) * p.px_tick for p in tape}
            interval = await exchange.fetch_funding_interval(UNIFIED)  # GET /fapi/v1/fundingInfo
            assert interval["interval"] == "8h"
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_ledger_open_interest_position_mode_and_liquidations_from_the_engines_fills() -> None:
    async def scenario() -> None:
        market, side = await start_usdm_side()
        exchange = client(market)
        exchange.enableRateLimit = False  # ccxt spaces income (weight 30) by seconds; the venue limits weights
        try:
            await exchange.load_markets()
            assert await exchange.fetch_ledger() == []  # GET /fapi/v1/income: nothing booked yet
            with pytest.raises(ccxt_async.ExchangeError, match="-4059"):  # one-way already
                await exchange.set_position_mode(False, UNIFIED)
            bought = await exchange.create_order(UNIFIED, "market", "buy", 0.004)
            sold = await exchange.create_order(UNIFIED, "market", "sell", 0.002, None, {"reduceOnly": True})
            ledger = await exchange.fetch_ledger()
            fills = [t for t in side.engine.trades if t["orderId"] in (int(bought["id"]), int(sold["id"]))]
            commissions = [e for e in ledger if e["info"]["incomeType"] == "COMMISSION"]
            assert [e["info"]["tradeId"] for e in commissions] == [str(t["id"]) for t in fills]
            assert [e["amount"] for e in commissions] == [float(t["commission"]) for t in fills]
            assert all(e["direction"] == "out" and e["currency"] == "USDT" for e in commissions)
            pnl = [e["info"]["income"] for e in ledger if e["info"]["incomeType"] == "REALIZED_PNL"]
            assert pnl == [t["realizedPnl"] for t in fills if float(t["realizedPnl"])]
            assert len({e["id"] for e in ledger}) == len(ledger)
            assert await exchange.fetch_funding_history(UNIFIED) == []  # the venue charges no funding
            interest = await exchange.fetch_open_interest(UNIFIED)  # GET /fapi/v1/openInterest
            assert interest["openInterestAmount"] == pytest.approx(0.002)
            assert await exchange.fetch_my_liquidations(UNIFIED) == []  # GET /fapi/v1/forceOrders
            with pytest.raises(ccxt_async.ExchangeError, match="-4068"):  # hedge mode, with a position
                await exchange.set_position_mode(True, UNIFIED)
            fees = await exchange.fetch_trading_fees()  # GET /fapi/v1/accountConfig: ccxt reads the tier
            assert fees[UNIFIED]["info"] == {"feeTier": 0}
            exchange.urls["api"]["sapi"] = market.http_url + "/sapi/v1"
            assert (await exchange.fetch_status())["status"] == "ok"  # binanceusdm asks GET /sapi/v1/system/status
            with pytest.raises(ccxt_async.BadRequest, match="-1020"):  # no history kept: -1020, not a 404
                await exchange.fetch_open_interest_history(UNIFIED)
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_ws_fapi_depth_and_book_ticker_are_the_venue_book() -> None:
    async def scenario() -> None:
        market = await start_usdm()
        exchange = ccxtpro.binanceusdm({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False,
                                        "options": {"fetchCurrencies": False, "fetchMargins": False}})
        for name in list(exchange.urls["api"]):
            if name.startswith("fapi"):
                exchange.urls["api"][name] = f"{market.http_url}/fapi/" + exchange.urls["api"][name].rsplit("/", 1)[-1]
        exchange.urls["api"]["ws"]["ws-api"]["linear"] = market.ws_url + "/ws-fapi/v1"
        try:
            await exchange.load_markets()
            state = market.books.books[SYMBOL]
            book = await exchange.fetch_order_book_ws(UNIFIED, 5)  # ws-fapi depth
            assert len(book["bids"]) == len(book["asks"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
            assert 0 < book["nonce"] <= state.sync.last_id
            if book["nonce"] == state.sync.last_id:  # the book has not moved since: the same levels
                assert book["bids"] == [[float(p), float(q)] for p, q in state.top(5)["bids"]]
            ticker = await exchange.fetch_ticker_ws(UNIFIED)  # ws-fapi ticker.book
            assert ticker["symbol"] == UNIFIED and 0 < ticker["bid"] < ticker["ask"]
            assert float(ticker["info"]["bidQty"]) > 0 and ticker["info"]["lastUpdateId"] <= state.sync.last_id
            tape = await wait_until_async(lambda: market.tape.tapes.get(SYMBOL) or market.tape.agg_tapes.get(SYMBOL),
                                          5.0, what="a print on the tape")
            price = await exchange.fetch_ticker_ws(UNIFIED, {"method": "ticker.price"})  # the tape's last print
            grid = market.tape.grid(SYMBOL)
            assert price["info"]["price"] in {format_price(grid, p.px_tick) for p in tape.prints}
            with pytest.raises(ccxt_async.BadRequest, match="-1100"):
                await exchange.fetch_order_book_ws(UNIFIED, 7)
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_mark_index_and_premium_candles_are_the_marks_the_venue_published() -> None:
    async def scenario() -> None:
        market = await start_usdm()
        exchange = client(market)
        exchange.enableRateLimit = False
        try:
            await exchange.load_markets()
            await wait_until_async(lambda: market.marks.get(SYMBOL), 3.0, what="a published mark")
            marks = [px for _, px in market.marks[SYMBOL]]
            mark = await exchange.fetch_mark_ohlcv(UNIFIED, "1m")  # GET /fapi/v1/markPriceKlines
            index = await exchange.fetch_index_ohlcv(UNIFIED, "1m")  # indexPriceKlines?pair=: index = mark here
            assert len(mark) == 1 and mark == index and mark[0][0] % 60_000 == 0
            assert mark[0][1:5] == [round(p, 8) for p in (marks[0], max(marks), min(marks), marks[-1])]
            premium = await exchange.fetch_premium_index_ohlcv(UNIFIED, "1m")
            assert [c[1:5] for c in premium] == [[0.0] * 4]  # mark = index: no premium
            assert await exchange.fetch_mark_ohlcv(UNIFIED, "1m", since=mark[0][0] + 60_000) == []
            with pytest.raises(ccxt_async.BadRequest, match="-1120"):
                await exchange.fapiPublicGetMarkPriceKlines({"symbol": SYMBOL, "interval": "7m"})
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)
