"""`mm venue --market usdm` (processes.venue_usdm, processes.venue_usdm_ws) driven by ccxt 4.5.90's own,
unmodified `binanceusdm` (REST) and ccxt.pro's `binanceusdm` (listenKey stream, ws-fapi), and by raw
aiohttp websockets, in-process on 127.0.0.1 ephemeral ports; the venue is built from the real CLI flags.

Each test runs one asyncio loop (venue + clients), bounded by TEST_TIMEOUT_S; waits poll to a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import subprocess
import sys
import urllib.error
import urllib.request
import time
from decimal import Decimal

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxtpro
import pytest

from mm.ws_api import signature_payload
from processes.venue_market import add_venue_arguments
from processes.venue_orders import KEYS_ENV
from processes.venue_usdm import UsdmMarket, UsdmSide, build_usdm
from tests.conftest import run_async, wait_until_async

TEST_TIMEOUT_S = 30.0
SYMBOL = "BTCUSDT"
UNIFIED = "BTC/USDT:USDT"
KEY = "mmUsdmKeyA1b2C3d4E5f6"
SECRET = "mmUsdmSecret-Zz9Yy8Xx7Ww6"


async def start_venue(*flags: str) -> tuple[UsdmMarket, UsdmSide]:
    parser = argparse.ArgumentParser()
    add_venue_arguments(parser)
    args = parser.parse_args(["--market", "usdm", "--port", "0", "--http-port", "0", "--speed", "1", *flags])
    market, side, _ = build_usdm(args, {KEYS_ENV: f"{KEY}:{SECRET}"})
    await market.start()
    await wait_until_async(lambda: market.mid(SYMBOL), 5.0, what="venue book")
    return market, side


def best(market: UsdmMarket) -> tuple[Decimal, Decimal]:
    top = market.book_top(SYMBOL, 1)
    return Decimal(top["bids"][0][0]), Decimal(top["asks"][0][0])


def min_qty(price: Decimal) -> str:
    """A quantity on the 0.00001 lot whose notional clears the 5 USDT minimum twice over."""
    return str(Decimal(math.ceil(10 / float(price) / 0.00001)) * Decimal("0.00001"))


def point_ccxt(exchange, market: UsdmMarket) -> None:
    """BINANCE.md §9: every `fapi*` REST url at the venue; the pro client's ws urls too."""
    for name in list(exchange.urls["api"]):
        if name.startswith("fapi"):
            version = exchange.urls["api"][name].rsplit("/", 1)[-1]
            exchange.urls["api"][name] = f"{market.http_url}/fapi/{version}"
    if "ws" in exchange.urls["api"]:
        exchange.urls["api"]["ws"]["linear"] = market.ws_url + "/ws"
        exchange.urls["api"]["ws"]["ws-api"]["linear"] = market.ws_url + "/ws-fapi/v1"


OPTIONS = {"fetchCurrencies": False, "fetchMargins": False}


def test_ccxt_binanceusdm_book_gtx_positions_and_countdown_cancel() -> None:
    async def scenario() -> None:
        market, side = await start_venue()
        exchange = ccxt_async.binanceusdm({"apiKey": KEY, "secret": SECRET, "options": dict(OPTIONS)})
        point_ccxt(exchange, market)
        try:
            markets = await exchange.load_markets()
            assert markets[UNIFIED]["id"] == SYMBOL and markets[UNIFIED]["linear"]
            assert exchange.last_response_headers.get("X-MBX-USED-WEIGHT-1M") == "1"
            book = await exchange.fetch_order_book(UNIFIED, 100)
            assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
            assert book["nonce"] <= market.last_update_id(SYMBOL)
            bid, ask = best(market)
            qty = min_qty(ask)
            with pytest.raises(ccxt_async.InvalidOrder, match="-5022"):  # GTX that would take (ccxt: InvalidOrder)
                await exchange.create_order(UNIFIED, "limit", "buy", qty, float(ask + Decimal("20")),
                                            {"postOnly": True})
            assert not side.engine.open_orders(KEY, SYMBOL)  # the rejected GTX order was never recorded
            resting = await exchange.create_order(UNIFIED, "limit", "buy", qty, float(bid - Decimal("50")),
                                                  {"postOnly": True})
            assert resting["status"] == "open" and resting["timeInForce"] == "PO"
            opened = await exchange.fetch_open_orders(UNIFIED)
            assert [o["id"] for o in opened] == [resting["id"]]
            positions = await exchange.fetch_positions([UNIFIED])
            assert positions == []  # an open order, no position: ccxt lists none
            # a crossing LIMIT takes liquidity: a long position, margin used
            taker = await exchange.create_order(UNIFIED, "limit", "buy", qty, float(ask + Decimal("20")))
            assert taker["status"] == "closed" and taker["filled"] == float(qty)
            positions = await exchange.fetch_positions([UNIFIED])
            assert positions[0]["side"] == "long" and positions[0]["contracts"] == float(qty)
            balance = await exchange.fetch_balance()
            assert balance["USDT"]["used"] > 0 and balance["USDT"]["total"] < 100_000  # taker fee paid
            armed_ms = time.time_ns() // 1_000_000
            armed = await exchange.fapiPrivatePostCountdownCancelAll({"symbol": SYMBOL, "countdownTime": 500})
            assert armed == {"symbol": SYMBOL, "countdownTime": "500"}
            await wait_until_async(lambda: not side.engine.open_orders(KEY, SYMBOL), 3.0, what="countdown cancel")
            cancelled = await exchange.fetch_order(resting["id"], UNIFIED)
            assert cancelled["status"] == "canceled"
            assert cancelled["lastUpdateTimestamp"] >= armed_ms + 500  # not before the countdown ran out
            assert side.engine.counts["countdown_fired"] == 1 and side.engine.counts["countdown_cancelled"] == 1
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_ccxt_pro_binanceusdm_watch_orders_sees_new_and_canceled_and_ws_fapi_places(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        market, side = await start_venue()
        exchange = ccxtpro.binanceusdm({"apiKey": KEY, "secret": SECRET, "options": dict(OPTIONS)})
        point_ccxt(exchange, market)
        try:
            await exchange.load_markets()
            watcher = asyncio.create_task(exchange.watch_orders(UNIFIED))
            await wait_until_async(lambda: any(c.listen_key for c in side_connections(market)), 5.0,
                                   what="listenKey stream connected")
            bid, _ = best(market)
            placed = await exchange.create_order(UNIFIED, "limit", "buy", min_qty(bid),
                                                 float(bid - Decimal("50")), {"postOnly": True})
            seen = await asyncio.wait_for(watcher, 5.0)
            assert seen[-1]["id"] == placed["id"] and seen[-1]["status"] == "open"
            watcher = asyncio.create_task(exchange.watch_orders(UNIFIED))  # before the event can arrive
            await asyncio.sleep(0)
            await exchange.cancel_order(placed["id"], UNIFIED)
            seen = await asyncio.wait_for(watcher, 5.0)
            assert seen[-1]["id"] == placed["id"] and seen[-1]["status"] == "canceled"
            # ws-fapi: ccxt.pro's create_order_ws / cancel_order_ws, answered on /ws-fapi/v1
            ws_order = await exchange.create_order_ws(UNIFIED, "limit", "sell", min_qty(bid),
                                                      float(best(market)[1] + Decimal("50")), {"postOnly": True})
            assert ws_order["status"] == "open"
            assert [o.order_id for o in side.engine.open_orders(KEY, SYMBOL)] == [int(ws_order["id"])]
            await exchange.cancel_order_ws(ws_order["id"], UNIFIED)
            assert not side.engine.open_orders(KEY, SYMBOL)
            wrong = ccxtpro.binanceusdm({"apiKey": KEY, "secret": SECRET + "x", "options": dict(OPTIONS)})
            point_ccxt(wrong, market)
            try:
                await wrong.load_markets()
                with pytest.raises(ccxt_async.AuthenticationError, match="-1022"):
                    await wrong.create_order_ws(UNIFIED, "limit", "buy", min_qty(bid), float(bid - 50))
            finally:
                await wrong.close()
        finally:
            await exchange.close()
            await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)
    assert SECRET not in caplog.text


def side_connections(market: UsdmMarket) -> list:
    return [c for c in market._conns if hasattr(c, "listen_key")]


def signed(params: dict) -> dict:
    params = params | {"apiKey": KEY, "timestamp": time.time_ns() // 1_000_000}
    params["signature"] = hmac.new(SECRET.encode(), signature_payload(params).encode(), hashlib.sha256).hexdigest()
    return params


def test_raw_routes_pu_chain_ws_fapi_modify_and_listen_key_expiry() -> None:
    async def scenario() -> None:
        market, side = await start_venue("--listen-key-ttl", "1.5")
        base = market.ws_url
        async with aiohttp.ClientSession() as session:
            # /public carries the book streams (pu-chained diffs, bookTicker with e/T), not aggTrade
            async with session.ws_connect(f"{base}/public/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade"
                                          "/btcusdt@bookTicker") as ws:
                kinds: set[str] = set()
                prev_u = None
                while len(kinds) < 2:
                    frame = json.loads((await asyncio.wait_for(ws.receive(), 5.0)).data)
                    data = frame["data"]
                    kinds.add(data["e"])
                    assert data["e"] != "aggTrade"
                    if data["e"] == "depthUpdate":
                        assert "T" in data and (prev_u is None or data["pu"] == prev_u)
                        prev_u = data["u"]
            async with session.ws_connect(f"{base}/market/ws/btcusdt@markPrice@1s") as ws:
                mark = json.loads((await asyncio.wait_for(ws.receive(), 5.0)).data)
                assert mark["e"] == "markPriceUpdate" and mark["s"] == SYMBOL and float(mark["p"]) > 0
            async with session.post(f"{market.http_url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
                listen_key = (await r.json())["listenKey"]
            async with session.post(f"{market.http_url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
                assert (await r.json())["listenKey"] == listen_key  # the live key comes back, extended
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await session.ws_connect(f"{base}/private/ws?listenKey=not-a-live-key")
            async with session.ws_connect(f"{base}/private/ws?listenKey={listen_key}") as private, \
                    session.ws_connect(f"{base}/private/stream?listenKey={listen_key}&events=ACCOUNT_UPDATE") as only, \
                    session.ws_connect(f"{base}/ws/{listen_key}") as legacy, \
                    session.ws_connect(f"{base}/ws-fapi/v1") as api:
                await wait_until_async(lambda: len(side_connections(market)) == 3, 3.0, what="private connections")
                bid, ask = best(market)
                qty = min_qty(bid)

                async def call(request_id: int, method: str, params: dict) -> dict:
                    await api.send_str(json.dumps({"id": request_id, "method": method, "params": signed(params)}))
                    return json.loads((await asyncio.wait_for(api.receive(), 5.0)).data)

                crossing = await call(1, "order.place", {"symbol": SYMBOL, "side": "SELL", "type": "LIMIT",
                                                         "timeInForce": "GTX", "quantity": qty, "price": str(bid - Decimal("20"))})
                assert crossing["status"] == 400 and crossing["error"]["code"] == -5022
                placed = await call(2, "order.place", {"symbol": SYMBOL, "side": "SELL", "type": "LIMIT",
                                                       "timeInForce": "GTX", "quantity": qty,
                                                       "price": str(ask + Decimal("50"))})
                assert placed["status"] == 200 and placed["result"]["timeInForce"] == "GTX"
                order_id = placed["result"]["orderId"]
                modified = await call(3, "order.modify", {"symbol": SYMBOL, "orderId": order_id, "side": "SELL",
                                                          "quantity": qty, "price": str(ask + Decimal("60"))})
                assert modified["status"] == 200 and modified["result"]["price"] == f"{ask + Decimal(60):.2f}"
                cancelled = await call(4, "order.cancel", {"symbol": SYMBOL, "orderId": order_id})
                assert cancelled["status"] == 200 and cancelled["result"]["status"] == "CANCELED"
                taker = await call(5, "order.place", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                      "timeInForce": "IOC", "quantity": qty,
                                                      "price": str(ask + Decimal("20"))})
                assert taker["status"] == 200 and taker["result"]["status"] == "FILLED"
                events = []
                while not events or events[-1]["e"] != "ACCOUNT_UPDATE":
                    events.append(json.loads((await asyncio.wait_for(private.receive(), 5.0)).data))
                assert [(e["e"], e["o"]["x"], e["o"]["i"]) for e in events[:3]] == [
                    ("ORDER_TRADE_UPDATE", x, order_id) for x in ("NEW", "AMENDMENT", "CANCELED")]
                fills = [e["o"] for e in events[3:-1] if e["o"]["x"] == "TRADE"]
                assert events[3]["o"]["x"] == "NEW" and fills and fills[-1]["X"] == "FILLED"
                assert fills[-1]["i"] == taker["result"]["orderId"] and fills[-1]["m"] is False
                position = events[-1]["a"]["P"][0]
                assert position["s"] == SYMBOL and position["pa"] == qty and position["ps"] == "BOTH"
                assert float(events[-1]["a"]["B"][0]["wb"]) < 100_000  # the taker fee left the wallet
                first_legacy = json.loads((await asyncio.wait_for(legacy.receive(), 5.0)).data)
                assert first_legacy["e"] == "ORDER_TRADE_UPDATE" and first_legacy["o"]["x"] == "NEW"
                filtered = json.loads((await asyncio.wait_for(only.receive(), 5.0)).data)
                assert filtered["stream"] == listen_key and filtered["data"] == events[-1]  # events= keeps one kind
                expired = json.loads((await asyncio.wait_for(private.receive(), 5.0)).data)  # ttl 1.5 s
                assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == listen_key
            async with session.put(f"{market.http_url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
                assert r.status == 400 and (await r.json())["code"] == -1125
        await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_rest_refusals_carry_usdm_codes_and_the_fapi_signature_vector() -> None:
    # BINANCE.md §3.1 vector 5 (the USD-M docs' example) passes the venue's HMAC check
    from processes.venue_orders import verify_request

    payload = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
               "&timestamp=1591702613943")
    assert verify_request("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9", payload +
                          "&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9", "")

    async def scenario() -> None:
        market, side = await start_venue("--wallet", "15", "--leverage", "1", "--weight-limit", "30")
        async with aiohttp.ClientSession() as session:
            async def send(verb: str, path: str, params: dict, secret: str = SECRET) -> tuple[int, dict]:
                query = "&".join(f"{k}={v}" for k, v in (params | {"timestamp": time.time_ns() // 1_000_000}).items())
                signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
                async with session.request(verb, f"{market.http_url}{path}", data=f"{query}&signature={signature}",
                                           headers={"X-MBX-APIKEY": KEY,
                                                    "Content-Type": "application/x-www-form-urlencoded"}) as r:
                    return r.status, await r.json()

            bid, ask = best(market)
            order = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
            low = str(bid - Decimal("100"))
            assert (await send("POST", "/fapi/v1/order", order | {"quantity": "0.00030", "price": low}))[1][
                "code"] == -2019  # 18 USDT of margin at 1x with 15 in the wallet
            codes = {}
            for name, extra in (("tick", {"quantity": "0.0002", "price": low + "1"}),
                                ("notional", {"quantity": "0.00001", "price": low}),
                                ("position side", {"quantity": "0.0002", "price": low, "positionSide": "LONG"}),
                                ("reduce only", {"quantity": "0.0002", "price": low, "reduceOnly": "true"}),
                                ("client id", {"quantity": "0.0002", "price": low, "newClientOrderId": "x" * 37})):
                codes[name] = (await send("POST", "/fapi/v1/order", order | extra))[1]["code"]
            assert codes == {"tick": -4014, "notional": -4164, "position side": -4061, "reduce only": -2022,
                             "client id": -4015}
            status, placed = await send("POST", "/fapi/v1/order", order | {"quantity": "0.0002", "price": low,
                                                                          "newClientOrderId": "mm.a:b/1"})
            assert status == 200 and placed["status"] == "NEW" and placed["clientOrderId"] == "mm.a:b/1"
            assert (await send("POST", "/fapi/v1/order", order | {"quantity": "0.0002", "price": low,
                                                                 "newClientOrderId": "mm.a:b/1"}))[1][
                "code"] == -4116
            assert (await send("PUT", "/fapi/v1/order", {"symbol": SYMBOL, "orderId": placed["orderId"], "side": "BUY",
                                                          "quantity": "0.0002", "price": low}))[1]["code"] == -5027
            assert (await send("PUT", "/fapi/v1/order", {"symbol": SYMBOL, "orderId": placed["orderId"], "side": "BUY",
                                                          "quantity": "0.0003", "price": low}))[1]["code"] == -2019
            assert (await send("DELETE", "/fapi/v1/order", {"symbol": SYMBOL, "orderId": placed["orderId"]},
                               secret="wrong"))[1]["code"] == -1022
            assert (await send("DELETE", "/fapi/v1/allOpenOrders", {"symbol": SYMBOL}))[1]["code"] == 200
            assert not side.engine.open_orders(KEY, SYMBOL)
            for _ in range(40):  # 1 weight each against a limit of 30 a minute
                async with session.get(f"{market.http_url}/fapi/v1/time") as r:
                    if r.status == 429:
                        assert int(r.headers["Retry-After"]) >= 1 and (await r.json())["code"] == -1003
                        break
            else:
                pytest.fail("no 429 over the weight limit")
        await market.stop()

    run_async(scenario, TEST_TIMEOUT_S)


def test_mm_venue_market_usdm_command_serves_and_never_prints_the_secret() -> None:
    env = os.environ | {KEYS_ENV: f"{KEY}:{SECRET}"}
    process = subprocess.Popen([sys.executable, "-m", "mm.cli", "venue", "--market", "usdm", "--port", "0",
                                "--duration", "20"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    try:
        first = process.stdout.readline()
        assert first.startswith("venue ws="), first
        http = first.split("http=")[1].strip()
        with urllib.request.urlopen(f"{http}/fapi/v1/time", timeout=5) as reply:
            assert abs(json.loads(reply.read())["serverTime"] - time.time() * 1000) < 5000
        query = f"symbol={SYMBOL}&timestamp={time.time_ns() // 1_000_000}"
        signature = hmac.new((SECRET + "x").encode(), query.encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(f"{http}/fapi/v1/openOrders?{query}&signature={signature}",
                                         headers={"X-MBX-APIKEY": KEY})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert json.loads(refused.value.read())["code"] == -1022
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert SECRET not in output
