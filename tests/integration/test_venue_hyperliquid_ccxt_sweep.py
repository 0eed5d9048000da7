"""ccxt's own unmodified `hyperliquid` clients (`ccxt.async_support`, `ccxt.pro`) against `mm venue
--market hyperliquid` on 127.0.0.1, over the unified methods a new user calls beyond the basics of
test_venue_hyperliquid.py: history (historicalOrders, userFillsByTime), fees, status / time,
funding, leverage, candles, the error paths and the websocket channels beyond books and user
streams (activeAssetCtx, allMids, clearinghouseState, candle). Each error path must raise the ccxt class ccxt maps the venue's text to, as it
would from Hyperliquid. In-process, ephemeral ports, bounded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from processes.hyperliquid_adapter import HyperliquidSigner
from processes.venue_hyperliquid import HyperliquidExchange
from processes.venue_hyperliquid_ws import HyperliquidVenue
from tests.conftest import run_async, wait_until_async
from tests.unit.test_hyperliquid_signing import ADDRESS, PRIVATE_KEY

TIMEOUT_S = 30.0
ACCOUNT = ADDRESS.lower()
OTHER_KEY = "0x" + "42" * 32
SYMBOL = "BTC/USDC:USDC"
CCXT_OPTIONS = {"approvedBuilderFee": True, "builderFee": False, "refSet": True}


def client_for(cls: Any, venue: HyperliquidVenue, key: str = PRIVATE_KEY, address: str = ADDRESS) -> Any:
    client = cls({"walletAddress": address, "privateKey": key, "options": dict(CCXT_OPTIONS),
                  "enableRateLimit": False})
    client.urls["api"] = {"public": venue.http_url, "private": venue.http_url, "ws": {"public": f"{venue.ws_url}/ws"}}
    return client


async def started() -> tuple[HyperliquidExchange, HyperliquidVenue]:
    exchange = HyperliquidExchange("BTC", 5, {ACCOUNT})
    venue = HyperliquidVenue(exchange)
    await venue.start()
    await wait_until_async(lambda: exchange.book.bids and exchange.book.asks, 5.0, "a simulated book")
    return exchange, venue


def test_ccxt_history_fees_status_funding_and_leverage():
    async def scenario() -> None:
        exchange, venue = await started()
        client = client_for(ccxt_async.hyperliquid, venue)
        try:
            await client.load_markets()
            status = await client.fetch_status()
            assert status["status"] == "ok" and abs(status["updated"] - exchange.clock_ms()) < 5_000
            assert abs(await client.fetch_time() - exchange.clock_ms()) < 5_000
            fee = await client.fetch_trading_fee(SYMBOL)
            assert (fee["maker"], fee["taker"]) == (pytest.approx(exchange.engine.maker_fee_bps / 1e4),
                                                    pytest.approx(exchange.engine.taker_fee_bps / 1e4))
            t0 = 1_699_999_860_000  # a past minute no simulated trade falls in, 1 min into a 5-min bucket
            exchange.on_trades([{"coin": "BTC", "side": side, "px": px, "sz": sz, "time": t0 + dt, "tid": i,
                                 "hash": "0x0", "users": []} for i, (side, px, sz, dt) in enumerate(
                [("B", "100.0", "1.0", 0), ("A", "90.0", "2.0", 10), ("B", "95.0", "0.5", 59_999),
                 ("B", "96.0", "0.25", 60_000), ("A", "97.0", "0.25", 120_001)])])
            candles = await client.fetch_ohlcv(SYMBOL, "1m", since=t0, params={"until": t0 + 60_000})
            assert candles == [[t0, 100.0, 100.0, 90.0, 95.0, 3.5], [t0 + 60_000, 96.0, 96.0, 96.0, 96.0, 0.25]]
            assert await client.fetch_ohlcv(SYMBOL, "5m", since=t0 - 60_000, params={"until": t0}) == [
                [t0 - 60_000, 100.0, 100.0, 90.0, 97.0, 4.0]]
            assert await client.fetch_funding_rate_history(SYMBOL) == []
            assert await client.fetch_funding_history(SYMBOL) == []
            assert await client.fetch_ledger() == []  # userNonFundingLedgerUpdates: the venue moves no money
            assert await client.fetch_deposits() == [] and await client.fetch_withdrawals() == []
            assert await client.set_leverage(5, SYMBOL) == {"status": "ok", "response": {"type": "default"}}
            with pytest.raises(ccxt_async.ExchangeError, match="cross margin only"):
                await client.set_margin_mode("isolated", SYMBOL, {"leverage": 5})
            with pytest.raises(ccxt_async.ExchangeError, match="Invalid leverage value"):
                await client.set_leverage(41, SYMBOL)  # the venue's maxLeverage is 40

            since = exchange.clock_ms()
            ask = float(exchange.book.asks[0][0])
            low = float(client.price_to_precision(SYMBOL, float(exchange.book.bids[0][0]) * 0.98))
            taker = await client.create_order(SYMBOL, "limit", "buy", 0.002,
                                              float(client.price_to_precision(SYMBOL, ask * 1.02)),
                                              {"timeInForce": "IOC"})
            assert taker["filled"] == 0.002
            resting = await client.create_order(SYMBOL, "limit", "buy", 0.001, low)
            canceled = await client.create_order(SYMBOL, "limit", "buy", 0.001, low)
            await client.cancel_order(canceled["id"], SYMBOL)
            with pytest.raises(ccxt_async.InvalidOrder):  # refused: in the history as iocCancelRejected
                await client.create_order(SYMBOL, "limit", "buy", 0.001, low, {"timeInForce": "IOC"})

            positions = await client.fetch_positions([SYMBOL])
            assert [(p["side"], p["contracts"], p["leverage"]) for p in positions] == [("long", 0.002, 5)]
            assert (await client.fetch_open_interest(SYMBOL))["openInterestAmount"] == 0.002  # the venue's longs
            trades = await client.fetch_my_trades(SYMBOL, since=since)  # userFillsByTime
            assert trades and sum(t["amount"] for t in trades) == pytest.approx(0.002)
            assert all(t["order"] == taker["id"] and t["takerOrMaker"] == "taker" for t in trades)
            assert await client.fetch_my_trades(SYMBOL, since=exchange.clock_ms() + 60_000) == []

            orders = {o["id"]: o["status"] for o in await client.fetch_orders(SYMBOL)}  # historicalOrders
            assert orders[taker["id"]] == "closed" and orders[resting["id"]] == "open"
            assert orders[canceled["id"]] == "canceled" and len(orders) == 4
            closed = await client.fetch_closed_orders(SYMBOL)
            assert [o["id"] for o in closed] == [taker["id"]] and closed[0]["filled"] == 0.002
            assert canceled["id"] in [o["id"] for o in await client.fetch_canceled_orders(SYMBOL)]
        finally:
            await client.close()
            await venue.stop()

    run_async(scenario, TIMEOUT_S)


async def _signed_order(client: Any, price: str, size: str) -> Any:
    """An order ccxt's own create_orders_request would not build (its precision rounds the numbers),
    signed by ccxt's own sign_l1_action and sent through its own privatePostExchange."""
    request = client.create_orders_request([{"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 0.001,
                                             "price": float(price)}])
    action = request["action"]
    action["orders"][0].update(p=price, s=size)
    nonce = client.milliseconds()
    request.update(nonce=nonce, signature=client.sign_l1_action(action, nonce))
    return await client.privatePostExchange(request)


def test_ccxt_error_paths_raise_the_classes_ccxt_maps_the_venue_texts_to():
    async def scenario() -> None:
        exchange, venue = await started()
        client = client_for(ccxt_async.hyperliquid, venue)
        stranger = client_for(ccxt_async.hyperliquid, venue, OTHER_KEY, HyperliquidSigner(OTHER_KEY).address)
        wrong_wallet = client_for(ccxt_async.hyperliquid, venue, OTHER_KEY, ADDRESS)  # key of another address
        try:
            await client.load_markets()
            bid, ask = float(exchange.book.bids[0][0]), float(exchange.book.asks[0][0])
            low = float(client.price_to_precision(SYMBOL, bid * 0.98))
            high = float(client.price_to_precision(SYMBOL, ask * 1.02))
            with pytest.raises(ccxt_async.InvalidOrder, match="Price must be divisible by tick size"):
                await _signed_order(client, f"{low:.0f}.5", "0.001")  # 6 significant figures
            with pytest.raises(ccxt_async.InvalidOrder, match="Order has invalid size"):
                await _signed_order(client, f"{low:.0f}", "0.0012345")  # szDecimals 5
            with pytest.raises(ccxt_async.InvalidOrder, match="minimum value of \\$10"):
                await client.create_order(SYMBOL, "limit", "buy", 0.00001, low)
            with pytest.raises(ccxt_async.InsufficientFunds, match="Insufficient margin"):
                await client.create_order(SYMBOL, "limit", "buy", 900, low)
            with pytest.raises(ccxt_async.InvalidOrder, match="Post only order would have immediately matched"):
                await client.create_order(SYMBOL, "limit", "buy", 0.001, high, {"postOnly": True})
            with pytest.raises(ccxt_async.InvalidOrder, match="could not immediately match"):
                await client.create_order(SYMBOL, "limit", "buy", 0.001, low, {"timeInForce": "IOC"})
            with pytest.raises(ccxt_async.InvalidOrder, match="Reduce only order would increase position"):
                await client.create_order(SYMBOL, "limit", "sell", 0.001, high, {"reduceOnly": True})
            with pytest.raises(ccxt_async.OrderNotFound):
                await client.cancel_order("123456789", SYMBOL)
            with pytest.raises(ccxt_async.OrderNotFound):
                await client.fetch_order("123456789", SYMBOL)
            with pytest.raises(ccxt_async.BadSymbol):  # an unknown market never leaves ccxt
                await client.create_order("ETH/USDC:USDC", "limit", "buy", 1, 2000)
            for other in (stranger, wrong_wallet):
                await other.load_markets()
                with pytest.raises(ccxt_async.InvalidOrder, match="User or API Wallet 0x[0-9a-f]{40} does not exist"):
                    await other.create_order(SYMBOL, "limit", "buy", 0.001, low)
            assert exchange.engine.open_orders(ACCOUNT, "BTC") == []
            refused = {o["status"] for o in exchange.info({"type": "historicalOrders", "user": ACCOUNT})[1]}
            assert {"tickRejected", "minTradeNtlRejected", "perpMarginRejected", "badAloPxRejected",
                    "iocCancelRejected", "reduceOnlyRejected"} <= refused
        finally:
            for c in (client, stranger, wrong_wallet):
                await c.close()
            await venue.stop()

    run_async(scenario, TIMEOUT_S)


def test_ccxt_pro_watch_ticker_tickers_balance_positions_orders_and_fills():
    async def scenario() -> None:
        exchange, venue = await started()
        rest = client_for(ccxt_async.hyperliquid, venue)
        pro = client_for(ccxt_pro.hyperliquid, venue)
        try:
            await rest.load_markets()
            await pro.load_markets()
            ticker = await asyncio.wait_for(pro.watch_ticker(SYMBOL), 5)  # activeAssetCtx
            assert 0 < ticker["bid"] < ticker["ask"] and ticker["close"] == pytest.approx(
                (ticker["bid"] + ticker["ask"]) / 2)
            tickers = await asyncio.wait_for(pro.watch_tickers([SYMBOL]), 5)  # allMids
            assert tickers[SYMBOL]["last"] > 0
            await wait_until_async(lambda: exchange.minutes, 10.0, "a simulated trade")
            candle = (await asyncio.wait_for(pro.watch_ohlcv(SYMBOL, "1m"), 5))[-1]  # candle
            assert candle[0] % 60_000 == 0 and candle[3] <= min(candle[1], candle[4]) <= max(
                candle[1], candle[4]) <= candle[2] and candle[5] > 0
            balance = await asyncio.wait_for(pro.watch_balance(), 5)  # clearinghouseState
            assert balance["USDC"]["total"] == pytest.approx(1_000_000.0)

            orders = asyncio.ensure_future(pro.watch_orders(SYMBOL))
            fills = asyncio.ensure_future(pro.watch_my_trades(SYMBOL))
            await wait_until_async(lambda: len(venue._conns) == 1 and sum(
                1 for key in next(iter(venue._conns)).subs if key[0] in ("orderUpdates", "userFills")) == 2,
                5.0, "orderUpdates and userFills subscribed")
            assert not fills.done()  # ccxt resolves nothing on the empty userFills snapshot
            high = float(rest.price_to_precision(SYMBOL, float(exchange.book.asks[0][0]) * 1.02))
            placed = await rest.create_order(SYMBOL, "limit", "buy", 0.002, high, {"timeInForce": "IOC"})
            updates = await asyncio.wait_for(orders, 5)
            assert placed["id"] in [o["id"] for o in updates]
            mine = await asyncio.wait_for(fills, 5)
            assert {t["order"] for t in mine} == {placed["id"]}
            positions = await asyncio.wait_for(pro.watch_positions(), 5)  # next block's clearinghouseState
            while not positions:
                positions = await asyncio.wait_for(pro.watch_positions(), 5)
            assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(SYMBOL, "long", 0.002)]
        finally:
            await rest.close()
            await pro.close()
            await venue.stop()

    run_async(scenario, TIMEOUT_S)
