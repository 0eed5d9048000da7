"""The Hyperliquid gateway's shell around plan_modifies (processes.gateway_hyperliquid.HyperliquidLive):
a requote of a resting order goes out as one batchModify entry with the replacement under a new
tracker id; a modify refused because the old order had closed places the new order on its own;
any other refusal rejects the new order and still cancels the old one. A fake client, no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from ipc.messages import CancelOrder, OrderRejected, PlaceOrder
from mm.hyperliquid_frames import cloid_for
from mm.orders import OrderState, OrderTracker, instance_token
from processes.gateway_hyperliquid import HyperliquidLive
from processes.hyperliquid_adapter import CancelResult, HyperliquidAsset, PlaceResult
from processes.venue_hyperliquid import MODIFY_CLOSED

PREFIX = "mm"


class FakeClient:
    def __init__(self, coin: str) -> None:
        self.prefix = PREFIX
        self.assets = {coin: HyperliquidAsset(coin, 0, 5)}
        self.calls: list[tuple[str, Any]] = []
        self.modify_results: list[tuple[str, str]] = []  # (status, error) per modify entry
        self._oid = 100

    async def place(self, orders: list) -> list[PlaceResult]:
        self.calls.append(("place", [o.client_id for o in orders]))
        self._oid += 1
        return [PlaceResult(client_id=o.client_id, cloid=cloid_for(o.client_id, PREFIX), status="resting",
                            oid=self._oid) for o in orders]

    async def modify(self, modifies: list) -> list[PlaceResult]:
        self.calls.append(("modify", [(old, o.client_id) for old, o in modifies]))
        out = []
        for (_, order), (status, error) in zip(modifies, self.modify_results):
            self._oid += 1
            out.append(PlaceResult(client_id=order.client_id, cloid=cloid_for(order.client_id, PREFIX),
                                   status=status, oid=self._oid if status == "resting" else None, error=error))
        return out

    async def cancel(self, cancels: list) -> list[CancelResult]:
        self.calls.append(("cancel", [cloid for _, cloid in cancels]))
        return [CancelResult(cloid=cloid, status="success") for _, cloid in cancels]


def make_live(make_config) -> tuple[HyperliquidLive, FakeClient, list]:
    config, _ = make_config(gateway={"client_id_prefix": PREFIX})
    live = HyperliquidLive(None, config, journal=[], baseline={})  # type: ignore[arg-type]  # a list journals
    client = FakeClient(live.symbol)
    live.client = client  # type: ignore[assignment]
    live.grid = client.assets[live.symbol].grid
    live.tracker = OrderTracker(PREFIX, instance_token(7), query_after_ns=10**10, cancel_timeout_ns=5 * 10**9)
    live._quoting, live._scheduled_ms = True, 10**15  # the dead-man's switch is armed far ahead
    sent: list = []
    live._send = sent.append  # type: ignore[method-assign]
    return live, client, sent


def place(cid: str, px_tick: int, side: int = 1) -> PlaceOrder:
    return PlaceOrder(client_id=cid, symbol="BTC", side=side, px_tick=px_tick, qty_lot=100, post_only=True,
                      ts_recv_ns=1, ts_feed_ns=1, ts_book_ns=1, ts_quoter_ns=1)


def cancel(cid: str) -> CancelOrder:
    return CancelOrder(client_id=cid, symbol="BTC", ts_recv_ns=1, ts_feed_ns=1, ts_book_ns=1, ts_quoter_ns=1)


def requote(live: HyperliquidLive, client: FakeClient, status: str, error: str = "") -> tuple[str, str]:
    """Rest q1, then requote it to q2 with the modify answered `status`; (q1's, q2's tracker ids)."""
    asyncio.run(live._execute_turn([place("q1", 1_000_000)]))
    old = live.ours_to_venue["q1"]
    assert live.tracker.get(old).state is OrderState.ACKED
    client.modify_results = [(status, error)]
    asyncio.run(live._execute_turn([cancel("q1"), place("q2", 1_000_010)]))
    return old, live.ours_to_venue["q2"]


def test_a_requote_is_one_modify_and_the_tracker_holds_both_orders(make_config):
    live, client, sent = make_live(make_config)
    old, new = requote(live, client, "resting")
    assert client.calls == [("place", [old]), ("modify", [(cloid_for(old, PREFIX), new)])]
    assert new != old and live.tracker.get(new).replaces == old
    assert live.tracker.get(old).state is OrderState.CANCEL_PENDING  # its canceled comes from the stream
    assert live.tracker.get(new).state is OrderState.ACKED
    assert live.by_cloid[cloid_for(new, PREFIX)] == new and live.venue_to_ours[new] == "q2"
    assert live.counts["modify_resting"] == 1 and not any(isinstance(m, OrderRejected) for m in sent)


def test_a_modify_of_an_order_already_closed_places_the_new_one(make_config):
    live, client, _ = make_live(make_config)
    old, new = requote(live, client, "error", MODIFY_CLOSED)
    assert client.calls[1:] == [("modify", [(cloid_for(old, PREFIX), new)]), ("place", [new])]
    assert live.tracker.get(new).state is OrderState.ACKED


def test_any_other_refusal_rejects_the_new_order_and_still_cancels_the_old(make_config):
    live, client, sent = make_live(make_config)
    old, new = requote(live, client, "error", "Post only order would have immediately matched, bbo was 1@2.")
    assert client.calls[1:] == [("modify", [(cloid_for(old, PREFIX), new)]), ("cancel", [cloid_for(old, PREFIX)])]
    assert live.tracker.get(new).state is OrderState.REJECTED
    assert [m.client_id for m in sent if isinstance(m, OrderRejected)] == ["q2"]


def test_a_cancel_of_an_order_not_acknowledged_yet_stays_a_cancel(make_config):
    live, client, _ = make_live(make_config)
    client.place = _never_answered(client)  # type: ignore[method-assign]
    asyncio.run(live._execute_turn([place("q1", 1_000_000)]))
    old = live.ours_to_venue["q1"]
    assert live.tracker.get(old).state is OrderState.SENT
    asyncio.run(live._execute_turn([cancel("q1"), place("q2", 1_000_010)]))
    assert [kind for kind, _ in client.calls] == ["place", "cancel", "place"]


def _never_answered(client: FakeClient):
    async def place(orders: list) -> list[PlaceResult]:
        client.calls.append(("place", [o.client_id for o in orders]))
        return [PlaceResult(client_id=o.client_id, cloid=cloid_for(o.client_id, PREFIX), status="unknown")
                for o in orders]
    return place
