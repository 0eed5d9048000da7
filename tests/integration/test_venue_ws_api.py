"""The local venue's WebSocket API (processes.venue_ws_api at /ws-api/v3 on the streams' port) driven by
ccxt.pro 4.5.90's own, unmodified `binance` client and by a raw aiohttp websocket, in-process on
127.0.0.1 ephemeral ports.

Each test runs one asyncio loop (venue + clients), bounded by TEST_TIMEOUT_S; waits poll to a deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.pro as ccxtpro
import pytest

from mm.ws_api import signature_payload
from processes.venue_market import VenueMarket
from processes.venue_orders import (
    MatchingEngine,
    OrderFaults,
    OrderLimits,
    OrderSide,
    RateLimitRule,
    SymbolRules,
    attach,
    book_seeder,
)
from processes.venue_ws_api import PATH, WsApi, WsApiFaults
from tests.conftest import REPO_ROOT, run_async, wait_until, wait_until_async

TEST_TIMEOUT_S = 40.0
SYMBOL = "BTCUSDT"
UNIFIED = "BTC/USDT"
KEY = "mmWsKeyA1b2C3d4E5f6G7h8"
SECRET = "mmWsSecret-Qq9Xw8Vu7Ts6Rp5On4Ml3Kj2"
OTHER_KEY = "mmWsOtherKey9z8y7x6w5v4u3"
OTHER_SECRET = "mmWsOtherSecret-ffffgggghhhh"
RULES = SymbolRules(symbol=SYMBOL, base_asset="BTC", quote_asset="USDT", tick_size="0.01", lot_size="0.00001",
                    min_notional="5")
TICK = Decimal("0.01")


async def eventually(condition: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
    return await wait_until_async(condition, timeout_s, what)


class Venue:
    def __init__(self, market: VenueMarket, side: OrderSide, api: WsApi) -> None:
        self.market = market
        self.side = side
        self.api = api

    @property
    def ws_api_url(self) -> str:
        return self.market.ws_url + PATH

    def best(self) -> tuple[Decimal, Decimal]:
        top = self.market.book_top(SYMBOL, 1)
        return Decimal(top["bids"][0][0]), Decimal(top["asks"][0][0])

    async def stop(self) -> None:
        await self.market.stop()


async def start_venue(*, limits: OrderLimits | None = None, faults: OrderFaults | None = None,
                      ws_faults: WsApiFaults | None = None, **market_kwargs: Any) -> Venue:
    market = VenueMarket(symbol=SYMBOL, port=0, http_port=0, **market_kwargs)
    keys = {KEY: SECRET, OTHER_KEY: OTHER_SECRET}
    engine = MatchingEngine({SYMBOL: RULES}, keys=keys, seed_book=book_seeder(market))
    side = OrderSide(engine, keys=keys, symbols={SYMBOL: RULES}, faults=faults, limits=limits)
    attach(market, side)
    api = WsApi(market, side, ws_faults)
    api.mount()
    await market.start()
    await eventually(lambda: market.books.books.get(SYMBOL) is not None
                     and market.books.books[SYMBOL].sync.is_synced
                     and market.book_top(SYMBOL, 1)["asks"], what="venue book")
    return Venue(market, side, api)


def pro_client(venue: Venue, key: str = KEY, secret: str = SECRET) -> ccxtpro.binance:
    """ccxt.pro's binance as BINANCE.md §9 configures the REST one, plus the ws-api URL; nothing else."""
    exchange = ccxtpro.binance({"apiKey": key, "secret": secret, "options": {
        "fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}}})
    exchange.urls["api"]["public"] = venue.market.http_url + "/api/v3"
    exchange.urls["api"]["private"] = venue.market.http_url + "/api/v3"
    exchange.urls["api"]["ws"]["ws-api"]["spot"] = venue.ws_api_url
    return exchange


def signed(params: dict, key: str = KEY, secret: str = SECRET) -> dict:
    params = params | {"apiKey": key, "timestamp": time.time_ns() // 1_000_000}
    params["signature"] = hmac.new(secret.encode(), signature_payload(params).encode(), hashlib.sha256).hexdigest()
    return params


class Raw:
    """A raw ws-api client: one request at a time, events kept apart from replies."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self.replies: dict[object, dict] = {}
        self._next_id = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            body = json.loads(message.data)
            if "event" in body:
                self.events.append(body)
            else:
                self.replies[body.get("id")] = body

    async def call(self, method: str, params: dict | None = None, *, raw: bytes | None = None) -> dict:
        self._next_id += 1
        request_id = self._next_id
        if raw is not None:
            request_id = None  # the venue cannot read an id out of malformed JSON
            await self.ws.send_str(raw.decode())
        else:
            request: dict = {"id": request_id, "method": method}
            if params is not None:
                request["params"] = params
            await self.ws.send_str(json.dumps(request))
        return await eventually(lambda: self.replies.pop(request_id, None), what=f"reply to {method}")

    def event_types(self) -> list[str]:
        return [e["event"]["e"] for e in self.events]


async def raw_client(session: aiohttp.ClientSession, venue: Venue, query: str = "", **kwargs: Any) -> Raw:
    ws = await session.ws_connect(venue.ws_api_url + query, **kwargs)
    return Raw(ws)


def order_params(side: str, price: Decimal, qty: str = "0.00100", **extra: Any) -> dict:
    return {"symbol": SYMBOL, "side": side, "type": "LIMIT", "timeInForce": "GTC", "quantity": qty,
            "price": f"{price:.2f}"} | extra


def crossing_qty(price: Decimal) -> str:
    """A small quantity worth > the 5 USDT minimum notional at `price`."""
    return f"{Decimal(math.ceil(Decimal(12) / price / Decimal('0.00001'))) * Decimal('0.00001'):.5f}"


# ---- ccxt.pro, unmodified ---------------------------------------------------------------------------


def test_ccxt_pro_user_data_stream_sees_new_canceled_and_a_fill() -> None:
    async def body() -> None:
        venue = await start_venue()
        exchange = pro_client(venue)
        try:
            await exchange.load_markets()
            watch = asyncio.create_task(exchange.watch_orders(UNIFIED))
            await eventually(lambda: venue.api.counts["subscriptions"] == 1, what="ws-api user-data subscription")
            bid, ask = venue.best()
            placed = await exchange.create_order_ws(UNIFIED, "limit", "buy", 0.001, float(bid - 200 * TICK))
            assert placed["status"] == "open" and placed["id"]
            seen = await asyncio.wait_for(watch, 5)
            assert [(o["id"], o["status"]) for o in seen] == [(placed["id"], "open")]

            watch = asyncio.create_task(exchange.watch_orders(UNIFIED))
            canceled = await exchange.cancel_order_ws(placed["id"], UNIFIED)
            assert canceled["status"] == "canceled"
            seen = await asyncio.wait_for(watch, 5)
            assert (placed["id"], "canceled") in [(o["id"], o["status"]) for o in seen]

            trades = asyncio.create_task(exchange.watch_my_trades(UNIFIED))
            bid, ask = venue.best()
            price = ask + 50 * TICK  # crosses the ask: fills at once
            taker = await exchange.create_order_ws(UNIFIED, "limit", "buy", float(crossing_qty(ask)), float(price))
            got = await asyncio.wait_for(trades, 5)
            assert got and got[0]["order"] == taker["id"] and got[0]["side"] == "buy"
            assert got[0]["takerOrMaker"] == "taker" and got[0]["price"] <= float(price)
            engine_trades = [t for t in venue.side.engine.trades if t["orderId"] == int(taker["id"])]
            assert got[0]["id"] == str(engine_trades[0]["id"])

            # an order placed over REST is pushed on the same stream
            watch = asyncio.create_task(exchange.watch_orders(UNIFIED))
            bid, ask = venue.best()
            rest_order = await exchange.create_order(UNIFIED, "limit", "sell", 0.001, float(ask + 300 * TICK))
            seen = await asyncio.wait_for(watch, 5)
            assert (rest_order["id"], "open") in [(o["id"], o["status"]) for o in seen]
            assert venue.api.hub.counts["events_executionReport"] >= 5
            assert venue.api.hub.counts["events_outboundAccountPosition"] >= 5
        finally:
            await exchange.close()
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_ccxt_pro_wrong_secret_is_an_authentication_error() -> None:
    import ccxt

    async def body() -> None:
        venue = await start_venue()
        exchange = pro_client(venue, KEY, "not-the-secret")
        try:
            await exchange.load_markets()
            bid, _ = venue.best()
            with pytest.raises(ccxt.AuthenticationError):
                await exchange.create_order_ws(UNIFIED, "limit", "buy", 0.001, float(bid - 200 * TICK))
            assert venue.side.engine.counts["orders_accepted"] == 0
        finally:
            await exchange.close()
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


# ---- the protocol, raw --------------------------------------------------------------------------------


def test_raw_requests_signature_unknown_method_and_user_data_events() -> None:
    async def body() -> None:
        venue = await start_venue()
        try:
            async with aiohttp.ClientSession() as session:
                raw = await raw_client(session, venue)
                reply = await raw.call("ping")
                assert reply["status"] == 200 and reply["result"] == {}
                assert reply["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
                assert reply["rateLimits"][0]["count"] >= 3  # 2 to connect + 1
                reply = await raw.call("time", {"returnRateLimits": False})
                assert abs(reply["result"]["serverTime"] - time.time() * 1000) < 5000 and "rateLimits" not in reply
                reply = await raw.call("v3/session.status")
                assert reply["result"]["userDataStream"] is False

                reply = await raw.call("order.frobnicate", signed({}))
                assert reply["status"] == 400 and reply["error"]["code"] == -1020
                reply = await raw.call("", raw=b'{"id": 7, "method": ')
                assert reply["status"] == 400 and reply["error"]["code"] == -1135 and reply["id"] is None

                bid, ask = venue.best()
                bad = signed(order_params("BUY", bid - 200 * TICK))
                bad["price"] = f"{bid - 201 * TICK:.2f}"  # altered after signing
                reply = await raw.call("order.place", bad)
                assert reply["status"] == 400 and reply["error"] == {
                    "code": -1022, "msg": "Signature for this request is not valid."}
                reply = await raw.call("order.place", signed(order_params("BUY", bid - 200 * TICK), "nobody", "x"))
                assert reply["status"] == 401 and reply["error"]["code"] == -2015
                stale = signed(order_params("BUY", bid - 200 * TICK)) | {"timestamp": 1}
                stale["signature"] = hmac.new(SECRET.encode(), signature_payload(stale).encode(),
                                              hashlib.sha256).hexdigest()
                reply = await raw.call("order.place", stale)
                assert reply["error"]["code"] == -1021
                reply = await raw.call("order.place", signed(order_params("BUY", bid - 200 * TICK, qty="0.00000")))
                assert reply["error"] == {"code": -1013, "msg": "Filter failure: LOT_SIZE"}
                assert venue.side.engine.counts["orders_accepted"] == 0

                reply = await raw.call("userDataStream.subscribe.signature", signed({}))
                assert reply["status"] == 200 and reply["result"] == {"subscriptionId": 0}
                reply = await raw.call("userDataStream.subscribe.signature", signed({}))
                assert reply["error"]["code"] == -2035
                reply = await raw.call("order.place", signed(order_params("BUY", bid - 200 * TICK,
                                                                          newClientOrderId="mine-1")))
                assert reply["status"] == 200 and reply["result"]["status"] == "NEW"
                assert [r["rateLimitType"] for r in reply["rateLimits"]].count("ORDERS") == 2
                await eventually(lambda: raw.event_types() == ["executionReport", "outboundAccountPosition"])
                report = raw.events[0]["event"]
                assert raw.events[0]["subscriptionId"] == 0
                assert (report["x"], report["X"], report["c"], report["C"]) == ("NEW", "NEW", "mine-1", "")
                balances = {b["a"]: b for b in raw.events[1]["event"]["B"]}
                assert Decimal(balances["USDT"]["l"]) == Decimal(reply["result"]["price"]) * Decimal("0.001")

                reply = await raw.call("openOrders.status", signed({"symbol": SYMBOL}))
                assert [o["clientOrderId"] for o in reply["result"]] == ["mine-1"]
                reply = await raw.call("order.status", signed({"symbol": SYMBOL, "origClientOrderId": "mine-1"}))
                assert reply["result"]["status"] == "NEW"

                reply = await raw.call("order.cancelReplace", signed(order_params(
                    "BUY", bid - 300 * TICK, cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId="mine-1",
                    newClientOrderId="mine-2")))
                assert reply["status"] == 200
                assert (reply["result"]["cancelResult"], reply["result"]["newOrderResult"]) == ("SUCCESS", "SUCCESS")
                assert reply["result"]["cancelResponse"]["status"] == "CANCELED"
                assert reply["result"]["newOrderResponse"]["clientOrderId"] == "mine-2"
                reply = await raw.call("order.cancelReplace", signed(order_params(
                    "BUY", bid - 300 * TICK, cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId="gone")))
                assert reply["status"] == 400 and reply["error"]["code"] == -2022
                assert reply["error"]["data"]["newOrderResult"] == "NOT_ATTEMPTED"
                assert reply["error"]["data"]["cancelResponse"] == {"code": -2011, "msg": "Unknown order sent."}

                reply = await raw.call("openOrders.cancelAll", signed({"symbol": SYMBOL}))
                assert [o["status"] for o in reply["result"]] == ["CANCELED"]
                await eventually(lambda: [e["event"].get("x") for e in raw.events].count("CANCELED") == 2)
                canceled = [e["event"] for e in raw.events if e["event"].get("x") == "CANCELED"]
                assert canceled[0]["C"] == "mine-1"

                # another account's orders never reach this subscription
                other = await raw.call("order.place", signed(order_params("BUY", bid - 200 * TICK), OTHER_KEY,
                                                             OTHER_SECRET))
                assert other["status"] == 200
                count = len(raw.events)
                venue.api.hub.adjust_balance(KEY, "BTC", "0.5", time.time_ns())
                await eventually(lambda: len(raw.events) == count + 2)
                assert raw.events[count]["event"]["e"] == "balanceUpdate"
                assert raw.events[count]["event"]["d"] == "0.50000000"
                assert all(e["event"].get("i") != other["result"]["orderId"] for e in raw.events)

                reply = await raw.call("userDataStream.unsubscribe")
                assert reply["status"] == 200 and reply["result"] == {}
                reply = await raw.call("userDataStream.unsubscribe")
                assert reply["error"]["code"] == -2036
                await raw.ws.close()
        finally:
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_rate_limits_over_ws_api_429_then_418_and_orders_limit() -> None:
    limits = OrderLimits(rate_limits=(
        RateLimitRule(kind="REQUEST_WEIGHT", interval="MINUTE", interval_num=1, limit=12),
        RateLimitRule(kind="ORDERS", interval="SECOND", interval_num=10, limit=2),
        RateLimitRule(kind="ORDERS", interval="DAY", interval_num=1, limit=1000)), ban_after_429s=3, ban_s=60.0)

    async def body() -> None:
        venue = await start_venue(limits=limits)
        try:
            async with aiohttp.ClientSession() as session:
                raw = await raw_client(session, venue)
                bid, _ = venue.best()
                statuses = []
                for n in range(3):
                    reply = await raw.call("order.place", signed(order_params("BUY", bid - (200 + n) * TICK)))
                    statuses.append(reply["status"])
                assert statuses[:2] == [200, 200] and statuses[2] == 429
                assert reply["error"]["code"] == -1015
                orders = [r for r in reply["rateLimits"] if r["rateLimitType"] == "ORDERS"]
                assert orders[0]["count"] == 2 and orders[0]["limit"] == 2
                data = reply["error"]["data"]
                assert data["retryAfter"] > data["serverTime"]

                # weight: 2 (connect) + 3 orders = 5 of 12; REST shares the IP's budget (429s: 1 so far)
                async with session.get(venue.market.http_url + "/api/v3/exchangeInfo") as response:
                    assert response.status == 429  # 20 weight > 12 (2nd 429)
                reply = await raw.call("ping")  # 3rd 429; the next one bans
                assert reply["status"] == 429 and reply["error"]["code"] == -1003
                assert reply["rateLimits"][0]["count"] > 12
                reply = await raw.call("ping")
                assert reply["status"] == 418 and reply["error"]["code"] == -1003
                assert reply["error"]["data"]["retryAfter"] >= reply["error"]["data"]["serverTime"] + 59_000
                await eventually(lambda: raw.ws.closed, what="a banned client is disconnected")
        finally:
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


# ---- faults ---------------------------------------------------------------------------------------------


def test_faults_drop_event_close_connection_and_unknown_outcome() -> None:
    async def body() -> None:
        venue = await start_venue(ws_faults=WsApiFaults(drop_event_every=3))
        try:
            async with aiohttp.ClientSession() as session:
                raw = await raw_client(session, venue)
                assert (await raw.call("userDataStream.subscribe.signature", signed({})))["status"] == 200
                bid, _ = venue.best()
                for n in range(2):
                    reply = await raw.call("order.place", signed(order_params("BUY", bid - (200 + n) * TICK)))
                    assert reply["status"] == 200
                # 4 events made (2 x report + position), the 3rd not sent: a gap the client must reconcile
                await eventually(lambda: len(raw.events) == 3)
                assert venue.api.hub.counts["events_dropped"] == 1
                assert raw.event_types() == ["executionReport", "outboundAccountPosition", "outboundAccountPosition"]

                venue.api.set_faults(WsApiFaults(unknown_after_accept_every=1, unknown_kind="5xx"))
                reply = await raw.call("order.place", signed(order_params("BUY", bid - 210 * TICK,
                                                                          newClientOrderId="unknown-1")))
                assert reply["status"] == 503 and reply["error"]["code"] == -1007
                assert any(o.client_id == "unknown-1" and o.is_open for o in venue.side.engine.orders.values())
                await eventually(lambda: any(e["event"].get("c") == "unknown-1" for e in raw.events),
                                 what="the accepted order still reaches the user-data stream")

                venue.api.set_faults(WsApiFaults(unknown_after_accept_every=1, unknown_kind="close"))
                await raw.ws.send_str(json.dumps({"id": "c1", "method": "order.place", "params": signed(
                    order_params("BUY", bid - 220 * TICK, newClientOrderId="unknown-2"))}))
                await eventually(lambda: raw.ws.closed, what="connection dropped after the accept")
                assert "c1" not in raw.replies
                assert any(o.client_id == "unknown-2" for o in venue.side.engine.orders.values())

                venue.api.set_faults(WsApiFaults(close_every_requests=1))
                raw = await raw_client(session, venue)
                await raw.ws.send_str(json.dumps({"id": "c2", "method": "order.place", "params": signed(
                    order_params("BUY", bid - 230 * TICK, newClientOrderId="never"))}))
                await eventually(lambda: raw.ws.closed, what="connection dropped before the request")
                assert not any(o.client_id == "never" for o in venue.side.engine.orders.values())

                # the order side's own switches reach the ws-api: applied, then 503 -1007
                venue.api.set_faults(WsApiFaults())
                venue.side.set_faults(OrderFaults(error_5xx_ratio=1.0, endpoints=("new",)))
                raw = await raw_client(session, venue)
                reply = await raw.call("order.place", signed(order_params("BUY", bid - 240 * TICK,
                                                                          newClientOrderId="rest-5xx")))
                assert reply["status"] == 503 and reply["error"]["code"] == -1007
                assert any(o.client_id == "rest-5xx" for o in venue.side.engine.orders.values())
                await raw.ws.close()
        finally:
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


# ---- connection rules (§7.1) ------------------------------------------------------------------------


def test_server_pings_pong_deadline_and_max_age() -> None:
    async def body() -> None:
        venue = await start_venue(ping_interval_s=0.2, pong_timeout_s=0.6, max_connection_s=2.5)
        try:
            async with aiohttp.ClientSession() as session:
                answering = await raw_client(session, venue)  # aiohttp answers pings (autoping)
                silent = await raw_client(session, venue, autoping=False)
                opened = time.monotonic()
                await eventually(lambda: silent.ws.closed, timeout_s=3.0, what="a client silent to pings is dropped")
                assert venue.market.counts["pong_timeouts"] >= 1
                assert not answering.ws.closed
                assert (await answering.call("ping"))["status"] == 200
                await eventually(lambda: answering.ws.closed, timeout_s=5.0, what="the connection's age cut")
                assert time.monotonic() - opened >= 2.0
                assert venue.market.counts["aged_out"] >= 1 and venue.market.counts["pongs"] >= 2
        finally:
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_return_rate_limits_false_in_the_url() -> None:
    async def body() -> None:
        venue = await start_venue()
        try:
            async with aiohttp.ClientSession() as session:
                raw = await raw_client(session, venue, "?returnRateLimits=false")
                assert "rateLimits" not in await raw.call("ping")
                assert "rateLimits" in await raw.call("ping", {"returnRateLimits": True})
                await raw.ws.close()
        finally:
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)


# ---- secrets -------------------------------------------------------------------------------------------


def test_in_process_logs_never_show_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        venue = await start_venue()
        exchange = pro_client(venue)
        try:
            await exchange.load_markets()
            watch = asyncio.create_task(exchange.watch_orders(UNIFIED))
            bid, _ = venue.best()
            await eventually(lambda: venue.api.counts["subscriptions"] == 1)
            await exchange.create_order_ws(UNIFIED, "limit", "buy", 0.001, float(bid - 200 * TICK))
            await asyncio.wait_for(watch, 5)
            async with aiohttp.ClientSession() as session:
                raw = await raw_client(session, venue)
                await raw.call("order.place", signed(order_params("BUY", bid), KEY, SECRET + "x"))
                await raw.ws.close()
        finally:
            await exchange.close()
            await venue.stop()

    run_async(body, TEST_TIMEOUT_S)
    text = caplog.text + repr([r.args for r in caplog.records])
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert SECRET not in text


@pytest.mark.integration
def test_mm_venue_process_output_never_shows_the_secret(tmp_path) -> None:
    """`mm venue` as a process, driven by ccxt.pro over the ws-api: stdout and stderr hold no secret."""
    env = dict(os.environ, MM_VENUE_KEYS=f"{KEY}:{SECRET}", PYTHONUNBUFFERED="1")
    out = tmp_path / "venue.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "mm.cli", "venue", "--port", "0", "--duration", "30"],
                                cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        line = wait_until(lambda: next((l for l in out.read_text().splitlines() if l.startswith("venue ws=")), None),
                          20.0, what="venue start line")
        ws_url, http_url = (part.split("=", 1)[1] for part in line.split()[1:3])

        async def body() -> None:
            exchange = ccxtpro.binance({"apiKey": KEY, "secret": SECRET, "options": {
                "fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}}})
            exchange.urls["api"]["public"] = exchange.urls["api"]["private"] = http_url + "/api/v3"
            exchange.urls["api"]["ws"]["ws-api"]["spot"] = ws_url + PATH
            try:
                await exchange.load_markets()
                book = await exchange.fetch_order_book(UNIFIED, 5)
                await exchange.authenticate()  # the user-data subscription is live before we place
                watch = asyncio.create_task(exchange.watch_orders(UNIFIED))
                placed = await exchange.create_order_ws(UNIFIED, "limit", "buy", 0.001, book["bids"][0][0] - 2.0)
                assert (await asyncio.wait_for(watch, 10))[0]["id"] == placed["id"]
                await exchange.cancel_order_ws(placed["id"], UNIFIED)
            finally:
                await exchange.close()

        run_async(body, TEST_TIMEOUT_S)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    text = out.read_text()
    assert "venue ws=" in text
    assert SECRET not in text
