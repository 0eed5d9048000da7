"""`mm venue`'s public trade views (processes.venue_tape) and the account calls added beside them, driven
by ccxt 4.5.90's own, unmodified `binance` / `binanceusdm` / ccxt.pro clients against the venue built
from the real CLI flags, in-process on 127.0.0.1 ephemeral ports. Every figure is checked against the
venue's own tape (what its producer sent); bad input against Binance's error codes."""

from __future__ import annotations

import argparse
import asyncio

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxtpro
import pytest

from mm.ticks import format_price, format_qty
from processes.venue_market import VenueMarket, add_venue_arguments
from processes.venue_orders import KEYS_ENV
from processes.venue_usdm import build_usdm
from tests.conftest import run_async, wait_until_async
from tests.integration import test_venue_ccxt_sweep as spot
from tests.integration import test_venue_usdm_ccxt_sweep as usdm

TEST_TIMEOUT_S = 20.0
SYMBOL = "BTCUSDT"
MIN_AGGS = 6  # aggregate trades the sim must have sent before the views are read (~30 trades a second)


async def traded(venue: VenueMarket) -> None:
    await wait_until_async(lambda: SYMBOL in venue.tape.tapes and len(venue.tape.tapes[SYMBOL].agg_trades()) >= MIN_AGGS,
                           5.0, what=f"{MIN_AGGS} aggregate trades on the tape")


def unthrottled(exchange):
    """ccxt spaces calls by Binance's weights (aggTrades, commissionRate: 1 s each); the venue limits them."""
    exchange.enableRateLimit = False
    return exchange


def prints_between(venue: VenueMarket, first_id: int, last_id: int) -> list:
    return [p for p in venue.tape.tapes[SYMBOL].prints if first_id <= p.first_id and p.last_id <= last_id]


def check_ticker_against_tape(venue: VenueMarket, info: dict) -> None:
    """The 24 h figures are those of the tape's trades firstId..lastId (more may have come since)."""
    grid = venue.tape.grid(SYMBOL)
    prints = prints_between(venue, info["firstId"], info["lastId"])
    assert prints and info["count"] == len(prints) == info["lastId"] - info["firstId"] + 1
    pxs = [p.px_tick for p in prints]
    assert info["openPrice"] == format_price(grid, prints[0].px_tick)
    assert info["lastPrice"] == format_price(grid, prints[-1].px_tick)
    assert (info["highPrice"], info["lowPrice"]) == (format_price(grid, max(pxs)), format_price(grid, min(pxs)))
    assert info["volume"] == format_qty(grid, sum(p.qty_lot for p in prints))


def test_spot_ticker_klines_and_agg_trades_are_the_tape() -> None:
    async def scenario() -> None:
        venue = await spot.start_spot()
        exchange = unthrottled(spot.client(venue))
        try:
            await exchange.load_markets()
            await traded(venue)
            ticker = await exchange.fetch_ticker(spot.UNIFIED)  # GET /api/v3/ticker/24hr?symbol=
            check_ticker_against_tape(venue, ticker["info"])
            assert 0 < ticker["bid"] < ticker["ask"] and ticker["last"] == float(ticker["info"]["lastPrice"])
            grid = venue.tape.grid(SYMBOL)
            candles = await exchange.fetch_ohlcv(spot.UNIFIED, "1s", limit=5)  # GET /api/v3/klines
            tape = venue.tape.tapes[SYMBOL]
            first_open_ms = tape.prints[0].time_ms - tape.prints[0].time_ms % 1000
            opens = [candle[0] for candle in candles]
            # the last 5 one-second intervals from the first with a trade, none skipped (an empty one is flat)
            assert len(candles) == min(5, (opens[-1] - first_open_ms) // 1000 + 1)
            assert opens == list(range(opens[0], opens[-1] + 1, 1000))
            expected = tape.klines(1000, opens[0], opens[-1], 5)
            assert [k.open_ms for k in expected] == opens
            for (open_ms, o, h, low, c, v), k in zip(candles[:-1], expected):  # the last may still be taking trades
                assert (o, h, low, c) == tuple(float(format_price(grid, px)) for px in (
                    k.open_px_tick, k.high_px_tick, k.low_px_tick, k.close_px_tick))
                inside = [p for p in tape.prints if open_ms <= p.time_ms < open_ms + 1000]
                assert k.volume_lot == sum(p.qty_lot for p in inside) and k.count == len(inside)
                pxs = [p.px_tick for p in inside] or [tape.px_before(open_ms)]  # empty: flat at the last close
                assert (k.open_px_tick, k.high_px_tick, k.low_px_tick, k.close_px_tick) == (
                    pxs[0], max(pxs), min(pxs), pxs[-1])
                assert v == pytest.approx(k.volume_lot * float(grid.lot_size))
            trades = await exchange.fetch_trades(spot.UNIFIED, limit=MIN_AGGS)  # GET /api/v3/aggTrades
            assert len(trades) == MIN_AGGS and [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)
            aggs = {a.agg_id: a for a in venue.tape.tapes[SYMBOL].agg_trades()}
            for t in trades[:-1]:  # the last aggregate may still grow
                agg = aggs[int(t["id"])]
                assert t["info"]["p"] == format_price(grid, agg.px_tick)
                assert t["info"]["q"] == format_qty(grid, agg.qty_lot)
                assert (t["info"]["f"], t["info"]["l"], t["timestamp"]) == (agg.first_id, agg.last_id, agg.time_ms)
                assert t["side"] == ("sell" if agg.is_buyer_maker else "buy")
            recent = await exchange.publicGetTrades({"symbol": SYMBOL, "limit": 3})  # GET /api/v3/trades
            by_id = {p.first_id: p for p in venue.tape.tapes[SYMBOL].prints}
            assert [r["id"] for r in recent] == list(range(recent[0]["id"], recent[0]["id"] + 3))
            assert all(r["price"] == format_price(grid, by_id[r["id"]].px_tick) for r in recent)
            every = await exchange.publicGetTicker24hr({"symbols": f'["{SYMBOL}"]'})
            assert [t["symbol"] for t in every] == [SYMBOL]
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.publicGetKlines({"symbol": "NOPEUSDT", "interval": "1m"})
            with pytest.raises(ccxt_async.BadRequest, match="-1120"):
                await exchange.publicGetKlines({"symbol": SYMBOL, "interval": "7m"})
            with pytest.raises(ccxt_async.BadRequest, match="-1102.*'interval'"):
                await exchange.publicGetKlines({"symbol": SYMBOL})
            with pytest.raises(ccxt_async.BadRequest, match="-1130.*'limit'"):
                await exchange.publicGetKlines({"symbol": SYMBOL, "interval": "1m", "limit": 1001})
            with pytest.raises(ccxt_async.BadRequest, match="-1100.*'limit'"):
                await exchange.publicGetAggTrades({"symbol": SYMBOL, "limit": "ten"})
            with pytest.raises(ccxt_async.BadRequest, match="-1127"):
                await exchange.publicGetAggTrades({"symbol": SYMBOL, "startTime": 0, "endTime": 7_200_000})
            with pytest.raises(ccxt_async.BadRequest, match="-1102.*'symbol'"):
                await exchange.publicGetAggTrades({})
            with pytest.raises(ccxt_async.BadRequest, match="-1128"):
                await exchange.publicGetTicker24hr({"symbol": SYMBOL, "symbols": f'["{SYMBOL}"]'})
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.publicGetTicker24hr({"symbol": "NOPEUSDT"})
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_spot_ticker_and_kline_streams_reach_ccxt_pro() -> None:
    async def scenario() -> None:
        venue = await spot.start_spot()
        exchange = ccxtpro.binance({"options": dict(spot.OPTIONS)})
        exchange.urls["api"]["public"] = venue.http_url + "/api/v3"
        exchange.urls["api"]["ws"]["spot"] = venue.ws_url + "/ws"
        try:
            await traded(venue)
            mini, ticker, candles = await asyncio.gather(  # each pushed every second
                exchange.watch_ticker(spot.UNIFIED),  # ccxt.pro's default: <s>@miniTicker
                exchange.watch_ticker(spot.UNIFIED, {"name": "ticker"}),  # <s>@ticker
                exchange.watch_ohlcv(spot.UNIFIED, "1m"))  # <s>@kline_1m: the open kline
            assert ticker["info"]["e"] == "24hrTicker" and mini["info"]["e"] == "24hrMiniTicker"
            info = ticker["info"]
            check_ticker_against_tape(venue, {"firstId": info["F"], "lastId": info["L"], "count": info["n"],
                                              "openPrice": info["o"], "lastPrice": info["c"], "highPrice": info["h"],
                                              "lowPrice": info["l"], "volume": info["v"]})
            grid = venue.tape.grid(SYMBOL)
            assert mini["info"]["c"] in {format_price(grid, p.px_tick) for p in venue.tape.tapes[SYMBOL].prints}
            open_ms, o, h, low, c, v = candles[-1]
            assert open_ms % 60_000 == 0 and low <= min(o, c) <= max(o, c) <= h and v > 0
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_spot_edit_order_is_cancel_replace_and_its_failures_carry_both_halves() -> None:
    async def scenario() -> None:
        venue = await spot.start_spot()
        exchange = unthrottled(spot.client(venue))
        try:
            await exchange.load_markets()
            bid = (await exchange.fetch_order_book(spot.UNIFIED, 5))["bids"][0][0]
            old = await exchange.create_order(spot.UNIFIED, "limit", "buy", 0.0003, round(bid * 0.98, 2))
            new = await exchange.edit_order(old["id"], spot.UNIFIED, "limit", "buy", 0.0004, round(bid * 0.97, 2))
            assert new["id"] != old["id"] and new["status"] == "open" and new["amount"] == 0.0004
            assert (await exchange.fetch_order(old["id"], spot.UNIFIED))["status"] == "canceled"
            assert [o["id"] for o in await exchange.fetch_open_orders(spot.UNIFIED)] == [new["id"]]
            with pytest.raises(ccxt_async.ExchangeError, match="-2022") as failed:  # STOP_ON_FAILURE: no new
                await exchange.edit_order(old["id"], spot.UNIFIED, "limit", "buy", 0.0004, round(bid * 0.96, 2))
            assert '"cancelResult":"FAILURE","newOrderResult":"NOT_ATTEMPTED"' in str(failed.value)
            with pytest.raises(ccxt_async.ExchangeError, match="-2021") as partial:  # ALLOW_FAILURE: new placed
                await exchange.privatePostOrderCancelReplace({
                    "symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.00030",
                    "price": "%.2f" % round(bid * 0.95, 2), "cancelReplaceMode": "ALLOW_FAILURE",
                    "cancelOrderId": old["id"]})
            assert '"cancelResult":"FAILURE","newOrderResult":"SUCCESS"' in str(partial.value)
            assert len(await exchange.fetch_open_orders(spot.UNIFIED)) == 2
            with pytest.raises(ccxt_async.BadRequest, match="-1102.*cancelOrderId"):
                await exchange.privatePostOrderCancelReplace({
                    "symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.00030",
                    "price": "%.2f" % round(bid * 0.95, 2), "cancelReplaceMode": "STOP_ON_FAILURE"})
            with pytest.raises(ccxt_async.BadRequest, match="-1102.*cancelReplaceMode"):
                await exchange.privatePostOrderCancelReplace({"symbol": SYMBOL, "cancelOrderId": new["id"]})
            assert (await exchange.fetch_order(new["id"], spot.UNIFIED))["status"] == "open"
        finally:
            await exchange.close()
            await venue.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_usdm_views_funding_margin_mode_and_fees() -> None:
    async def scenario() -> None:
        parser = argparse.ArgumentParser()
        add_venue_arguments(parser)
        args = parser.parse_args(["--market", "usdm", "--port", "0", "--http-port", "0", "--speed", "1"])
        market, side, _ = build_usdm(args, {KEYS_ENV: f"{usdm.KEY}:{usdm.SECRET}"})
        await market.start()
        await wait_until_async(lambda: market.mid(SYMBOL), 5.0, what="venue book")
        exchange = unthrottled(usdm.client(market))
        try:
            await exchange.load_markets()
            await traded(market)
            ticker = await exchange.fetch_ticker(usdm.UNIFIED)  # GET /fapi/v1/ticker/24hr
            check_ticker_against_tape(market, ticker["info"])
            assert "bidPrice" not in ticker["info"]  # USD-M's ticker has no book fields
            candles = await exchange.fetch_ohlcv(usdm.UNIFIED, "1m", limit=3)  # GET /fapi/v1/klines
            stats = market.tape.tapes[SYMBOL].stats(candles[-1][0] + 60_000, 60_000)
            assert candles and candles[-1][0] % 60_000 == 0 and stats is not None
            trades = await exchange.fetch_trades(usdm.UNIFIED, limit=5)  # GET /fapi/v1/aggTrades
            assert len(trades) == 5 and "M" not in trades[0]["info"]
            ids = {a.agg_id for a in market.tape.tapes[SYMBOL].agg_trades()}
            assert {int(t["id"]) for t in trades} <= ids
            funding = await exchange.fetch_funding_rate(usdm.UNIFIED)  # GET /fapi/v1/premiumIndex
            mid = market.mid(SYMBOL)
            assert funding["markPrice"] == funding["indexPrice"] and funding["fundingRate"] == 0.0001
            assert abs(funding["markPrice"] - mid) < 1e-3 * mid  # the book moves meanwhile
            assert funding["fundingTimestamp"] % (8 * 3600 * 1000) == 0
            assert await exchange.fapiPublicGetFundingRate({"symbol": SYMBOL}) == []  # no funding time passed yet
            fee = await exchange.fetch_trading_fee(usdm.UNIFIED)  # GET /fapi/v1/commissionRate
            assert (fee["maker"], fee["taker"]) == (side.engine.maker_fee_bps / 1e4, side.engine.taker_fee_bps / 1e4)
            with pytest.raises(ccxt_async.MarginModeAlreadySet, match="-4046"):  # the venue is cross margin
                await exchange.set_margin_mode("cross", usdm.UNIFIED)
            with pytest.raises(ccxt_async.ExchangeError, match="-1020"):
                await exchange.set_margin_mode("isolated", usdm.UNIFIED)
            bid = ticker["bid"] or float(ticker["info"]["lastPrice"])
            await exchange.create_order(usdm.UNIFIED, "limit", "buy", 0.002, round(bid * 0.98, 1))
            with pytest.raises(ccxt_async.ExchangeError, match="-4047"):
                await exchange.set_margin_mode("isolated", usdm.UNIFIED)
            with pytest.raises(ccxt_async.BadSymbol, match="-1121"):
                await exchange.fapiPublicGetPremiumIndex({"symbol": "NOPEUSDT"})
            with pytest.raises(ccxt_async.ExchangeError, match="-1130.*1500"):
                await exchange.fapiPublicGetKlines({"symbol": SYMBOL, "interval": "1m", "limit": 1501})
            with pytest.raises(ccxt_async.ExchangeError, match="-1120"):
                await exchange.fapiPublicGetKlines({"symbol": SYMBOL, "interval": "2s"})
            with pytest.raises(ccxt_async.ExchangeError, match="-1130"):
                await exchange.fapiPublicGetFundingRate({"symbol": SYMBOL, "limit": 0})
            assert len(await exchange.fapiPublicGetTrades({"symbol": SYMBOL, "limit": 2})) == 2
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)
