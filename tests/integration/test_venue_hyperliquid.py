"""`mm venue --market hyperliquid` (processes.venue_hyperliquid*): ccxt's own unmodified `hyperliquid`
client against the venue on 127.0.0.1, the official signing vectors against the venue's signature
check, the order rules with their texts, and the websocket. In-process, ephemeral ports, bounded.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from processes.hyperliquid_adapter import HyperliquidSigner
from processes.hyperliquid_verify import USER_SIGNED, SignatureError, recover_signer
from processes.venue_hyperliquid import HlBook, HyperliquidExchange, parse_wallets
from processes.venue_hyperliquid_ws import HyperliquidVenue
from processes.venue_orders import OrderFaults
from tests.conftest import run_async, wait_until_async
from tests.integration.hyperliquid_bodies import action_types, body_problems
from tests.unit.test_hyperliquid_signing import ADDRESS, L1_VECTORS, PRIVATE_KEY

TIMEOUT_S = 30.0
ACCOUNT = ADDRESS.lower()
OTHER_KEY = "0x" + "42" * 32
AGENT_KEY = "0x" + "17" * 32
SYMBOL = "BTC/USDC:USDC"
NOW_MS = 1_800_000_000_000
CCXT_OPTIONS = {"approvedBuilderFee": True, "builderFee": False, "refSet": True}


def make_exchange(**kw: Any) -> tuple[HyperliquidExchange, list[int]]:
    clock = [NOW_MS]
    exchange = HyperliquidExchange("BTC", 5, {ACCOUNT}, clock_ms=lambda: clock[0], **kw)
    exchange.on_book(HlBook([("100000.0", "1.0", 3), ("99999.0", "2.0", 1)],
                            [("100001.0", "0.5", 2), ("100002.0", "3.0", 1)], NOW_MS))
    return exchange, clock


def order_action(px: str, sz: str, tif: str = "Alo", is_buy: bool = True, cloid: str | None = None) -> dict:
    wire: dict[str, Any] = {"a": 0, "b": is_buy, "p": px, "s": sz, "r": False, "t": {"limit": {"tif": tif}}}
    if cloid is not None:
        wire["c"] = cloid
    return {"type": "order", "orders": [wire], "grouping": "na"}


class Nonces:
    def __init__(self) -> None:
        self.last = NOW_MS

    def __call__(self) -> int:
        self.last += 1
        return self.last


def mutations(action: Any) -> list[Any]:
    """Copies of `action` with one thing changed: a key's or a string's last character, an int + 1, a bool flipped."""
    out: list[Any] = []

    def walk(node: Any, path: tuple) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            changed = copy.deepcopy(action)
            target = changed
            for step in path:
                target = target[step]
            if isinstance(node, dict):  # the key's last character, keeping the key order
                renamed = {(k[:-1] + "_" if k == key else k): v for k, v in target.items()}
                target.clear()
                target.update(renamed)
                out.append(changed)
                changed = copy.deepcopy(action)
                target = changed
                for step in path:
                    target = target[step]
            if isinstance(value, (dict, list)):
                walk(value, (*path, key))
                continue
            if isinstance(value, bool):
                target[key] = not value
            elif isinstance(value, int):
                target[key] = value + 1
            else:
                target[key] = value[:-1] + ("0" if value[-1:] != "0" else "1")
            out.append(changed)

    walk(action, ())
    return out


# ---- signing vectors vs the venue's check ---------------------------------------------------------


@pytest.mark.parametrize("name,action,is_mainnet,vault,nonce,r,s,v", L1_VECTORS, ids=[v[0] for v in L1_VECTORS])
def test_every_vector_accepted_by_the_venue_check_and_refused_when_one_byte_changes(
        name, action, is_mainnet, vault, nonce, r, s, v):
    body = {"action": action, "nonce": nonce, "signature": {"r": r, "s": s, "v": v}}
    if vault is not None:
        body["vaultAddress"] = vault
    assert recover_signer(body, is_mainnet) == ACCOUNT  # the vector's own signature, as published
    assert recover_signer(body, not is_mainnet) != ACCOUNT
    changed_bodies = [dict(body, action=a) for a in mutations(action)]
    changed_bodies.append(dict(body, nonce=nonce + 1))
    changed_bodies.append(dict(body, vaultAddress="0x" + "11" * 20 if vault is None else None))
    changed_bodies.append(dict(body, expiresAfter=NOW_MS))
    assert len(changed_bodies) >= 5
    for changed in changed_bodies:
        try:
            assert recover_signer(changed, is_mainnet) != ACCOUNT, changed
        except SignatureError:
            pass


def test_venue_accepts_vector_actions_signed_by_the_key_and_refuses_them_changed():
    exchange, _ = make_exchange()
    signer = HyperliquidSigner(PRIVATE_KEY)
    nonces = Nonces()
    for action in (order_action("99000", "0.001"), {"type": "scheduleCancel", "time": NOW_MS + 60_000}):
        body = signer.signed_body(action, nonces())
        status, reply = exchange.exchange(body)
        assert status == 200 and reply["status"] == "ok", reply
        for changed in mutations(action)[:6]:
            status, reply = exchange.exchange(dict(body, action=changed))  # same nonce: only the action differs
            if status == 422:  # the change made the action unreadable (e.g. its type)
                continue
            assert reply["status"] == "err" and reply["response"].startswith("User or API Wallet 0x"), reply
            assert reply["response"].endswith(" does not exist.") and ACCOUNT not in reply["response"]
    assert len(exchange.engine.open_orders(ACCOUNT, "BTC")) == 1


def test_user_signed_approve_agent_makes_the_api_wallet_count_as_its_account():
    exchange, _ = make_exchange()
    master, agent = HyperliquidSigner(PRIVATE_KEY), HyperliquidSigner(AGENT_KEY)
    nonces = Nonces()
    refused = exchange.exchange(agent.signed_body(order_action("99000", "0.001"), nonces()))[1]
    assert refused == {"status": "err", "response": f"User or API Wallet {agent.address} does not exist."}
    nonce = nonces()
    approve = {"type": "approveAgent", "signatureChainId": "0x66eee", "hyperliquidChain": "Mainnet",
               "agentAddress": agent.address, "agentName": "mm", "nonce": nonce}
    primary, fields = USER_SIGNED["approveAgent"]
    body = {"action": approve, "nonce": nonce, "signature": master.sign_user_signed_action(primary, fields, approve)}
    assert exchange.exchange(body)[1]["status"] == "ok"
    placed = exchange.exchange(agent.signed_body(order_action("99000", "0.001"), nonces()))[1]
    assert "resting" in placed["response"]["data"]["statuses"][0]
    assert [o["oid"] for o in exchange.info({"type": "openOrders", "user": ACCOUNT})[1]] == [
        placed["response"]["data"]["statuses"][0]["resting"]["oid"]]


# ---- rules and their texts ---------------------------------------------------------------------


def test_order_rules_nonces_expiry_and_budget_with_the_venue_texts():
    exchange, clock = make_exchange(address_budget=6)
    signer = HyperliquidSigner(PRIVATE_KEY)
    nonces = Nonces()

    def statuses(action: dict, **kw: Any) -> list:
        return exchange.exchange(signer.signed_body(action, nonces(), **kw))[1]["response"]["data"]["statuses"]

    assert statuses(order_action("99999.5", "0.001")) == [{"error": "Price must be divisible by tick size."}]
    assert statuses(order_action("99000", "0.000001")) == [{"error": "Order has invalid size."}]
    assert statuses(order_action("99000", "0.0001")) == [{"error": "Order must have minimum value of $10."}]
    assert statuses(order_action("100001", "0.001", cloid="0x" + "ab" * 16)) == [
        {"error": "Post only order would have immediately matched, bbo was 100000.0@100001.0."}]
    assert exchange.info({"type": "orderStatus", "user": ACCOUNT, "oid": "0x" + "ab" * 16})[1]["order"]["status"] \
        == "badAloPxRejected"
    assert statuses(order_action("99000", "0.001", tif="Ioc")) == [
        {"error": "Order could not immediately match against any resting orders."}]
    body = signer.signed_body({"type": "scheduleCancel"}, nonces())
    assert exchange.exchange(body)[1]["status"] == "ok"
    assert exchange.exchange(body)[1] == {"status": "err", "response": f"Invalid nonce: duplicate nonce {body['nonce']}"}
    stale = exchange.exchange(signer.signed_body({"type": "scheduleCancel"}, nonces(), expires_after=NOW_MS - 1))[1]
    assert stale["status"] == "err" and "expiresAfter" in stale["response"]
    used = exchange.info({"type": "userRateLimit", "user": ACCOUNT})[1]["nRequestsUsed"]
    assert used == 6 + 5  # five orders + one scheduleCancel, and 5 for the stale expiresAfter
    over = exchange.exchange(signer.signed_body(order_action("99000", "0.001"), nonces()))[1]
    assert over["status"] == "err" and over["response"].startswith("Too many cumulative requests sent")
    clock[0] += 10_001  # once spent: one request per 10 s
    assert "resting" in statuses(order_action("99000", "0.001"))[0]


def test_taker_fill_moves_the_position_and_schedule_cancel_clears_orders():
    exchange, clock = make_exchange()
    signer = HyperliquidSigner(PRIVATE_KEY)
    nonces = Nonces()
    events: list[tuple[str, Any]] = []
    exchange.listeners.append(lambda channel, user, data: events.append((channel, data)))
    reply = exchange.exchange(signer.signed_body(order_action("100002", "0.7", tif="Gtc"), nonces()))[1]
    filled = reply["response"]["data"]["statuses"][0]["filled"]
    assert filled["totalSz"] == "0.7" and float(filled["avgPx"]) == pytest.approx((0.5 * 100001 + 0.2 * 100002) / 0.7)
    state = exchange.info({"type": "clearinghouseState", "user": ACCOUNT})[1]
    assert state["assetPositions"][0]["position"]["szi"] == "0.7"
    fills = exchange.info({"type": "userFills", "user": ACCOUNT})[1]
    assert sorted(f["sz"] for f in fills) == ["0.2", "0.5"] and all(f["crossed"] for f in fills)
    assert [d[0]["status"] for c, d in events if c == "orderUpdates"][-1] == "filled"
    assert exchange.info({"type": "userRateLimit", "user": ACCOUNT})[1]["cumVlm"].startswith("70000.")
    exchange.exchange(signer.signed_body(order_action("99000", "0.001"), nonces()))
    assert exchange.exchange(signer.signed_body({"type": "scheduleCancel", "time": NOW_MS + 1000}, nonces()))[1] == {
        "status": "err", "response": "Scheduled cancel time too early, must be at least 5 seconds from now."}
    assert exchange.exchange(signer.signed_body({"type": "scheduleCancel", "time": NOW_MS + 6000}, nonces()))[1][
        "status"] == "ok"
    clock[0] += 6000
    exchange.tick()
    assert exchange.info({"type": "openOrders", "user": ACCOUNT})[1] == []
    assert [d[0]["status"] for c, d in events if c == "orderUpdates"][-1] == "scheduledCancel"


def test_resting_alo_fills_by_queue_position_when_trades_pass_the_queue_ahead():
    exchange, _ = make_exchange()
    signer = HyperliquidSigner(PRIVATE_KEY)
    reply = exchange.exchange(signer.signed_body(order_action("100000", "0.2", cloid="0x" + "0c" * 16), NOW_MS + 1))[1]
    assert "resting" in reply["response"]["data"]["statuses"][0]  # behind the 1.0 shown at 100000
    trade = {"coin": "BTC", "side": "A", "px": "100000.0", "sz": "0.9", "time": NOW_MS, "tid": 1, "hash": "0x0",
             "users": []}
    exchange.on_trades([trade])
    assert exchange.info({"type": "userFills", "user": ACCOUNT})[1] == []  # 0.1 of the queue still ahead
    exchange.on_trades([dict(trade, sz="0.25", tid=2)])
    fills = exchange.info({"type": "userFills", "user": ACCOUNT})[1]
    assert [(f["sz"], f["crossed"], f["dir"], f["cloid"]) for f in fills] == [("0.15", False, "Open Long",
                                                                              "0x" + "0c" * 16)]
    status = exchange.info({"type": "orderStatus", "user": ACCOUNT, "oid": "0x" + "0c" * 16})[1]
    assert status["order"]["status"] == "open" and status["order"]["order"]["sz"] == "0.05"


def test_l2book_nsigfigs_buckets_levels_and_bad_precision_is_refused():
    exchange, _ = make_exchange()
    book = exchange.info({"type": "l2Book", "coin": "BTC", "nSigFigs": 4})[1]["levels"]
    assert book[0] == [{"px": "100000.0", "sz": "1.0", "n": 3}, {"px": "99990.0", "sz": "2.0", "n": 1}]
    assert book[1] == [{"px": "100100.0", "sz": "3.5", "n": 3}]  # 4 figures of 100001 and 100002, rounded up
    assert exchange.info({"type": "l2Book", "coin": "BTC", "nSigFigs": 4, "mantissa": 2})[0] == 422
    assert exchange.info({"type": "l2Book", "coin": "ETH"}) == (200, None)


def test_parse_wallets_names_the_bad_entry():
    assert parse_wallets(f" {ADDRESS} ,") == {ACCOUNT}
    with pytest.raises(ValueError, match="MM_VENUE_WALLETS: entry 2"):
        parse_wallets(f"{ADDRESS},0x123")


# ---- ccxt, unmodified, over HTTP ---------------------------------------------------------------


def ccxt_client(venue: HyperliquidVenue, private_key: str, address: str) -> Any:
    client = ccxt_async.hyperliquid({"walletAddress": address, "privateKey": private_key,
                                     "options": dict(CCXT_OPTIONS), "enableRateLimit": False})
    client.urls["api"] = {"public": venue.http_url, "private": venue.http_url}
    return client


def test_ccxt_hyperliquid_loads_reads_places_alo_finds_cancels_and_unknown_wallet_refused():
    async def scenario() -> None:
        exchange = HyperliquidExchange("BTC", 5, {ACCOUNT})
        venue = HyperliquidVenue(exchange)
        await venue.start()
        client = ccxt_client(venue, PRIVATE_KEY, ADDRESS)
        stranger = ccxt_client(venue, OTHER_KEY, HyperliquidSigner(OTHER_KEY).address)
        try:
            await wait_until_async(lambda: exchange.book.bids and exchange.book.asks, 5.0, "a simulated book")
            markets = await client.load_markets()
            assert markets[SYMBOL]["swap"] and markets[SYMBOL]["baseId"] == "0"
            book = await client.fetch_order_book(SYMBOL)
            best_bid = book["bids"][0][0]
            assert 0 < best_bid < book["asks"][0][0]
            price = float(client.price_to_precision(SYMBOL, best_bid * 0.99))
            order = await client.create_order(SYMBOL, "limit", "buy", 0.001, price, {"postOnly": True})
            listed = await client.fetch_open_orders(SYMBOL)
            assert [o["id"] for o in listed] == [order["id"]] and listed[0]["price"] == price
            moved = await client.edit_order(order["id"], SYMBOL, "limit", "buy", 0.002, price, {"postOnly": True})
            listed = await client.fetch_open_orders(SYMBOL)
            assert [(o["id"], o["amount"]) for o in listed] == [(moved["id"], 0.002)] and moved["id"] != order["id"]
            assert (await client.fetch_order(order["id"], SYMBOL))["status"] == "canceled"
            await client.cancel_all_orders_after(10_000)  # scheduleCancel, the dead-man's switch
            assert ACCOUNT in exchange.schedule
            await client.cancel_order(moved["id"], SYMBOL)
            assert await client.fetch_open_orders(SYMBOL) == []
            await stranger.load_markets()
            with pytest.raises(ccxt_async.BaseError, match="does not exist"):
                await stranger.create_order(SYMBOL, "limit", "buy", 0.001, price, {"postOnly": True})
            assert exchange.counts["unknown_signer"] >= 1 and exchange.engine.open_orders(ACCOUNT, "BTC") == []
            exchange.weights.limit = 0  # per-IP weight spent: HTTP 429, which ccxt reads as a rate limit
            with pytest.raises(ccxt_async.RateLimitExceeded):
                await client.fetch_order_book(SYMBOL)
        finally:
            await client.close()
            await stranger.close()
            await venue.stop()

    run_async(scenario, TIMEOUT_S)


def test_exchange_log_keeps_every_body_and_the_check_catches_ccxt_defaults():
    """The venue's test-only log of received /exchange bodies (GET /_mm/state, ws posts too), and
    the check the pipeline test applies to it: ccxt with its default options signs an
    approveBuilderFee and a setReferrer, which the check names; a builder on an order too."""
    async def scenario() -> None:
        exchange = HyperliquidExchange("BTC", 5, {ACCOUNT})
        venue = HyperliquidVenue(exchange)
        await venue.start()
        client = ccxt_async.hyperliquid({"walletAddress": ADDRESS, "privateKey": PRIVATE_KEY, "enableRateLimit": False})
        client.urls["api"] = {"public": venue.http_url, "private": venue.http_url}
        try:
            await wait_until_async(lambda: exchange.book.bids, 5.0, "a simulated book")
            await client.load_markets()
            price = float(client.price_to_precision(SYMBOL, float(exchange.book.bids[0][0]) * 0.99))
            await client.create_order(SYMBOL, "limit", "buy", 0.001, price, {"postOnly": True})
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{venue.http_url}/exchange", data=b"not json") as response:
                    assert response.status == 422
                async with session.get(f"{venue.http_url}/_mm/state") as response:
                    state = await response.json()
        finally:
            await client.close()
            await venue.stop()
        log = state["exchange_log"]
        assert state["exchange_log_dropped"] == 0 and log[-1] == {"time_ms": log[-1]["time_ms"], "via": "http",
                                                                 "body": "not json", "answer": 422}
        kinds = action_types(log)
        assert {"approveBuilderFee", "setReferrer", "order"} <= set(kinds), kinds
        problems = body_problems(log)
        assert any("'approveBuilderFee' is not a trading action" in p for p in problems), problems
        assert any("'setReferrer' is not a trading action" in p for p in problems), problems
        assert any(p.endswith("body.action.builder") for p in problems), problems  # the approval names it
        assert any("not a signed action body" in p for p in problems), problems
        order = next(e for e in log if action_types([e]) == ["order"])
        with_builder = copy.deepcopy(order)
        with_builder["body"]["action"]["builder"] = {"b": "0x6530512a6c89c7cfcebc3ba7fcd9ada5f30827a6", "f": 0}
        assert body_problems([with_builder]) == ["body 0: body.action.builder",
                                                 "body 0: order wire keys ['a', 'b', 'p', 's', 'r', 't']"]
        clean = copy.deepcopy(order)
        clean["body"]["action"]["orders"][0]["c"] = "0x" + "01" * 16
        assert body_problems([clean]) == []

    run_async(scenario, TIMEOUT_S)


def test_order_fault_5xx_is_applied_and_answered_500_once():
    async def scenario() -> None:
        exchange = HyperliquidExchange("BTC", 5, {ACCOUNT})
        faults = OrderFaults(error_5xx_ratio=1.0, endpoints=("new",), max_faults=1)
        venue = HyperliquidVenue(exchange, order_faults=faults)
        await venue.start()
        signer = HyperliquidSigner(PRIVATE_KEY)
        try:
            await wait_until_async(lambda: exchange.book.bids, 5.0, "a simulated book")
            price = f"{float(exchange.book.bids[0][0]) - 100:.0f}"
            async with aiohttp.ClientSession() as session:
                for expected_status in (500, 200):
                    body = signer.signed_body(order_action(price, "0.001"), exchange.clock_ms())
                    async with session.post(f"{venue.http_url}/exchange", json=body) as response:
                        assert response.status == expected_status
            assert len(exchange.engine.open_orders(ACCOUNT, "BTC")) == 2  # the 5xx one was applied
            assert exchange.counts["fault_5xx"] == 1
        finally:
            await venue.stop()

    run_async(scenario, TIMEOUT_S)


# ---- websocket -----------------------------------------------------------------------------------


class _Client(WSListener):
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self.messages.append(json.loads(frame.get_payload_as_bytes()))

    def channel(self, name: str) -> list[dict]:
        return [m for m in self.messages if m.get("channel") == name]


def test_websocket_subscriptions_ping_post_and_user_streams():
    async def scenario() -> None:
        exchange = HyperliquidExchange("BTC", 5, {ACCOUNT})
        venue = HyperliquidVenue(exchange, idle_close_s=0.5)
        await venue.start()
        transport, client = await ws_connect(_Client, f"{venue.ws_url}/ws")
        signer = HyperliquidSigner(PRIVATE_KEY)

        def send(message: dict) -> None:
            transport.send(WSMsgType.TEXT, json.dumps(message).encode())

        try:
            await wait_until_async(lambda: exchange.book.bids, 5.0, "a simulated book")
            for sub in ({"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"},
                        {"type": "orderUpdates", "user": ADDRESS}, {"type": "userFills", "user": ADDRESS}):
                send({"method": "subscribe", "subscription": sub})
            send({"method": "ping"})
            await wait_until_async(lambda: len(client.channel("subscriptionResponse")) == 4 and client.channel("pong")
                                   and len(client.channel("l2Book")) >= 2, 5.0, "acks, pong, snapshot and a push")
            assert client.channel("userFills")[0]["data"] == {"isSnapshot": True, "user": ACCOUNT, "fills": []}
            assert len(client.channel("l2Book")[0]["data"]["levels"][0]) == 20
            send({"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}})
            await wait_until_async(lambda: client.channel("error"), 5.0, "already subscribed")
            best_ask = exchange.book.asks[0][0]
            action = order_action(f"{float(best_ask):.0f}", "0.001", tif="Gtc", cloid="0x" + "01" * 16)
            body = signer.signed_body(action, exchange.clock_ms())
            send({"method": "post", "id": 7, "request": {"type": "action", "payload": body}})
            send({"method": "post", "id": 8, "request": {"type": "info", "payload": {"type": "meta"}}})
            await wait_until_async(lambda: len(client.channel("post")) == 2 and [
                m for m in client.channel("userFills") if not m["data"].get("isSnapshot")], 5.0, "posts and a fill")
            posts = {m["data"]["id"]: m["data"]["response"] for m in client.channel("post")}
            assert posts[7]["type"] == "action" and "filled" in posts[7]["payload"]["response"]["data"]["statuses"][0]
            assert [(e["via"], e["body"], e["answer"]) for e in exchange.exchange_log] == [("ws", body, 200)]
            assert posts[8] == {"type": "info", "payload": {"type": "meta", "data": exchange.info({"type": "meta"})[1]}}
            fill = [m for m in client.channel("userFills") if not m["data"].get("isSnapshot")][0]["data"]
            assert fill["user"] == ACCOUNT and fill["fills"][0]["cloid"] == "0x" + "01" * 16
            assert client.channel("orderUpdates")[-1]["data"][0]["status"] == "filled"
            send({"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": "BTC"}})
            send({"method": "unsubscribe", "subscription": {"type": "trades", "coin": "BTC"}})
            await wait_until_async(lambda: transport.is_disconnected, 5.0, "idle close once nothing is sent")
            assert venue.counts["idle_closed"] == 1
        finally:
            transport.disconnect()
            await venue.stop()

    run_async(scenario, TIMEOUT_S)


def test_capture_feed_serves_its_book_and_trades():
    path = "/work/shared/data/hyperliquid-btc-20250126.jsonl.gz"

    async def scenario() -> None:
        from pathlib import Path

        from processes.venue_hyperliquid_ws import capture_coin

        exchange = HyperliquidExchange(capture_coin(Path(path)), 5, {ACCOUNT})
        venue = HyperliquidVenue(exchange, feed=Path(path), speed=0)
        await venue.start()
        assert exchange.book.bids[0][0] == "105055.0"
        transport, client = await ws_connect(_Client, f"{venue.ws_url}/ws")
        try:
            transport.send(WSMsgType.TEXT, json.dumps(
                {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}).encode())
            await asyncio.wait_for(venue.finished.wait(), 20.0)
            assert venue.counts["books"] > 10 and venue.counts["trades"] > 0
            assert exchange.info({"type": "l2Book", "coin": "BTC"})[1]["levels"][0][0]["px"] == \
                exchange.book.bids[0][0]
        finally:
            transport.disconnect()
            await venue.stop()

    run_async(scenario, TIMEOUT_S)
