"""`mm venue`'s user-data fault switches (processes.venue_ws_api.WsApiFaults / EventFaults), set from
the real command-line flags, seen by a raw websocket client: on spot's ws-api subscription
(`userDataStream.subscribe.signature`) and on USD-M's `/private/ws?listenKey=` stream.

- `--duplicate-event-every N`: the N-th event arrives twice, identical.
- `--reorder-event-every N`: the N-th event arrives after the account's next one (two adjacent
  events swapped); with no next one it arrives alone after REORDER_HOLD_S.
- `--drop-event-every N`: the N-th event never arrives.
- `GET /_mm/counts` shows what was injected.

Each test runs one asyncio loop (venue + client), bounded by TEST_TIMEOUT_S; waits poll to a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from decimal import Decimal

import aiohttp
import pytest

from processes.venue_market import add_venue_arguments, venue_from_args
from processes.venue_orders import KEYS_ENV, attach, build_order_side
from processes.venue_ws_api import COUNTS_PATH, PATH, REORDER_HOLD_S, WsApiFaults, ws_api_from_args
from tests.conftest import run_async, wait_until_async
from tests.integration import test_venue_usdm as usdm
from tests.integration.test_venue_ws_api import KEY, SECRET, SYMBOL, TICK, Raw, order_params, signed

pytestmark = pytest.mark.integration

TEST_TIMEOUT_S = 30.0


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_venue_arguments(parser)
    return parser.parse_args(["--port", "0", "--http-port", "0", *flags])


def test_the_switches_are_off_by_default_and_refuse_negative_counts() -> None:
    args = parse()
    assert (args.duplicate_event_every, args.reorder_event_every, args.drop_event_every) == (0, 0, 0)
    for name in ("duplicate_event_every", "reorder_event_every"):
        with pytest.raises(ValueError, match=name):
            WsApiFaults(**{name: -1})


def test_spot_ws_api_subscription_sees_a_duplicate_and_a_swapped_pair() -> None:
    async def body() -> None:
        # events: 1 executionReport(a), 2 outboundAccountPosition(a), 3 executionReport(b) held back,
        # 4 outboundAccountPosition(b) sent twice (the 4th), then 3
        args = parse("--duplicate-event-every", "4", "--reorder-event-every", "3")
        market = venue_from_args(args)
        side = build_order_side(args, market, {KEYS_ENV: f"{KEY}:{SECRET}"})
        attach(market, side)
        api = ws_api_from_args(args, market, side)
        await market.start()
        try:
            await wait_until_async(lambda: market.books.books.get(SYMBOL) is not None
                                   and market.books.books[SYMBOL].sync.is_synced
                                   and market.book_top(SYMBOL, 1)["bids"], 5.0, what="venue book")
            bid = Decimal(market.book_top(SYMBOL, 1)["bids"][0][0])
            async with aiohttp.ClientSession() as session:
                raw = Raw(await session.ws_connect(market.ws_url + PATH))
                assert (await raw.call("userDataStream.subscribe.signature", signed({})))["status"] == 200
                for n, client_id in enumerate(("dup-a", "dup-b")):
                    reply = await raw.call("order.place", signed(order_params(
                        "BUY", bid - (200 + n) * TICK, newClientOrderId=client_id)))
                    assert reply["status"] == 200
                await wait_until_async(lambda: len(raw.events) == 5, 5.0, what="five user-data events")
                seen = [(e["event"]["e"], e["event"].get("c")) for e in raw.events]
                assert seen == [("executionReport", "dup-a"), ("outboundAccountPosition", None),
                                ("outboundAccountPosition", None), ("outboundAccountPosition", None),
                                ("executionReport", "dup-b")]
                assert raw.events[2] == raw.events[3]  # the very same event, twice
                assert api.hub.counts["events_duplicated"] == 1 and api.hub.counts["events_reordered"] == 1

                # at run time: every 2nd event held; the order's position event has no next one to follow
                api.set_faults(WsApiFaults(reorder_event_every=2))
                sent = time.monotonic()
                reply = await raw.call("order.place", signed(order_params("BUY", bid - 210 * TICK,
                                                                          newClientOrderId="alone")))
                assert reply["status"] == 200
                await wait_until_async(lambda: len(raw.events) == 6, 2.0, what="the report, not held")
                await wait_until_async(lambda: len(raw.events) == 7, REORDER_HOLD_S + 2.0,
                                       what="the held position event, alone")
                assert time.monotonic() - sent >= REORDER_HOLD_S * 0.9
                assert [e["event"]["e"] for e in raw.events[5:]] == ["executionReport", "outboundAccountPosition"]
                await raw.ws.close()
        finally:
            await market.stop()

    run_async(body, TEST_TIMEOUT_S)


def test_usdm_listen_key_stream_sees_a_duplicate_a_swapped_pair_and_a_drop() -> None:
    async def body() -> None:
        market, side = await usdm.start_venue("--duplicate-event-every", "4", "--reorder-event-every", "3",
                                              "--drop-event-every", "5")
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{market.http_url}/fapi/v1/listenKey",
                                        headers={"X-MBX-APIKEY": usdm.KEY}) as r:
                    listen_key = (await r.json())["listenKey"]
                events: list[dict] = []
                async with session.ws_connect(f"{market.ws_url}/private/ws?listenKey={listen_key}") as private, \
                        session.ws_connect(f"{market.ws_url}/ws-fapi/v1") as api:
                    async def read() -> None:
                        async for message in private:
                            events.append(json.loads(message.data))

                    reader = asyncio.create_task(read())
                    await wait_until_async(lambda: usdm.side_connections(market), 3.0, what="private connection")
                    _, ask = usdm.best(market)
                    request_id = 0

                    async def call(method: str, params: dict) -> dict:
                        nonlocal request_id
                        request_id += 1
                        await api.send_str(json.dumps({"id": request_id, "method": method,
                                                       "params": usdm.signed(params)}))
                        return json.loads((await asyncio.wait_for(api.receive(), 5.0)).data)

                    # events: 1 NEW a, 2 CANCELED a, 3 NEW b held, 4 CANCELED b twice then 3,
                    # 5 NEW c dropped, 6 CANCELED c held with no next: alone after REORDER_HOLD_S
                    for n, client_id in enumerate(("fa", "fb", "fc")):
                        placed = await call("order.place", {
                            "symbol": SYMBOL, "side": "SELL", "type": "LIMIT", "timeInForce": "GTX",
                            "quantity": usdm.min_qty(ask), "price": str(ask + Decimal(50 + n)),
                            "newClientOrderId": client_id})
                        assert placed["status"] == 200, placed
                        cancelled = await call("order.cancel", {"symbol": SYMBOL, "origClientOrderId": client_id})
                        assert cancelled["status"] == 200, cancelled
                    await wait_until_async(lambda: len(events) == 6, REORDER_HOLD_S + 3.0, what="six events")
                    seen = [(e["o"]["c"], e["o"]["x"]) for e in events]
                    assert seen == [("fa", "NEW"), ("fa", "CANCELED"), ("fb", "CANCELED"), ("fb", "CANCELED"),
                                    ("fb", "NEW"), ("fc", "CANCELED")]
                    assert events[2] == events[3]
                    async with session.get(market.http_url + COUNTS_PATH) as r:
                        counts = (await r.json())["user_data"]  # what a test of a whole run reads
                    assert (counts["events_duplicated"], counts["events_reordered"], counts["events_dropped"],
                            counts["events_ORDER_TRADE_UPDATE"]) == (1, 2, 1, 6)
                    reader.cancel()
        finally:
            await market.stop()

    run_async(body, TEST_TIMEOUT_S)
