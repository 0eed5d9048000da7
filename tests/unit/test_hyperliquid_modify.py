"""The Hyperliquid gateway's pure choice between one `batchModify` entry and cancel + place
(processes.hyperliquid_adapter.plan_modifies), the fallback rule for a refused modify, and the
signed batchModify body (the replacement under its own new cloid, the old one named by cloid)."""

from __future__ import annotations

import asyncio

from ipc.messages import CancelAll, CancelOrder, PlaceOrder
from mm.hyperliquid_frames import cloid_for
from processes.hyperliquid_adapter import (
    HyperliquidAsset,
    HyperliquidClient,
    HyperliquidOrder,
    HyperliquidSigner,
    Modify,
    modify_falls_back_to_place,
    plan_modifies,
)
from processes.venue_hyperliquid import MODIFY_CLOSED

KEY = "0x" + "5e" * 32
PREFIX = "mmt"


def place(cid: str, side: int, px: int = 100, post_only: bool = True) -> PlaceOrder:
    return PlaceOrder(client_id=cid, symbol="BTC", side=side, px_tick=px, qty_lot=10, post_only=post_only,
                      ts_recv_ns=1, ts_feed_ns=1, ts_book_ns=1, ts_quoter_ns=1)


def cancel(cid: str) -> CancelOrder:
    return CancelOrder(client_id=cid, symbol="BTC", ts_recv_ns=1, ts_feed_ns=1, ts_book_ns=1, ts_quoter_ns=1)


def test_a_requote_of_both_sides_becomes_two_modifies_paired_by_side():
    commands = [cancel("b1"), cancel("a1"), place("a2", -1, 105), place("b2", 1, 99)]
    assert plan_modifies(commands, {"b1": 1, "a1": -1}) == [Modify(commands[0], commands[3]),
                                                            Modify(commands[1], commands[2])]


def test_cancel_and_place_stay_when_a_modify_would_not_mean_the_same():
    bid, new_bid = cancel("b1"), place("b2", 1)
    # the order is not known to rest (not acknowledged yet, or its cancel is already pending)
    assert plan_modifies([bid, new_bid], {}) == [bid, new_bid]
    # no place on the same side: a plain cancel, the ask's place stays a place
    ask = place("a2", -1)
    assert plan_modifies([bid, ask], {"b1": 1}) == [bid, ask]
    # not post-only: a modify would turn a Gtc into Alo
    gtc = place("b3", 1, post_only=False)
    assert plan_modifies([bid, gtc], {"b1": 1}) == [bid, gtc]
    # a turn holding a cancel-all: nothing paired
    every = CancelAll(symbol="", reason="stop", ts_ns=0)
    assert plan_modifies([bid, new_bid, every], {"b1": 1}) == [bid, new_bid, every]


def test_a_ladder_pairs_in_order_and_leftovers_keep_their_order():
    c1, c2, c3 = cancel("b1"), cancel("b2"), cancel("b3")
    p1, p2 = place("n1", 1, 98), place("n2", 1, 97)
    out = plan_modifies([c1, c2, c3, p1, p2], {"b1": 1, "b2": 1, "b3": 1})
    assert out == [Modify(c1, p1), Modify(c2, p2), c3]
    # the same order named twice is paired once
    assert plan_modifies([c1, c1, p1, p2], {"b1": 1}) == [Modify(c1, p1), c1, p2]


def test_only_a_modify_of_an_order_already_closed_falls_back_to_a_place():
    assert modify_falls_back_to_place(MODIFY_CLOSED)  # the venue's text is the one the rule reads
    assert not modify_falls_back_to_place("Post only order would have immediately matched, bbo was 1@2.")
    assert not modify_falls_back_to_place("Order must have minimum value of $10.")


class _Transport:
    def __init__(self) -> None:
        self.bodies: list[dict] = []

    async def info(self, body: dict) -> object:
        raise AssertionError("no info expected")

    async def exchange(self, body: dict) -> object:
        self.bodies.append(body)
        n = len(body["action"]["modifies"])
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": [
            {"resting": {"oid": 7}}] + [{"error": MODIFY_CLOSED}] * (n - 1)}}}


def test_batch_modify_body_names_the_old_cloid_and_gives_the_new_order_its_own():
    transport = _Transport()
    client = HyperliquidClient(HyperliquidSigner(KEY), transport, {"BTC": HyperliquidAsset("BTC", 0, 5)}, PREFIX)
    old_a, old_b = cloid_for(f"{PREFIX}A1", PREFIX), cloid_for(f"{PREFIX}A2", PREFIX)
    new_a = HyperliquidOrder(coin="BTC", is_buy=True, px_tick=100_000, qty_lot=100, client_id=f"{PREFIX}B1")
    new_b = HyperliquidOrder(coin="BTC", is_buy=False, px_tick=100_010, qty_lot=100, client_id=f"{PREFIX}B2")
    results = asyncio.run(client.modify([(old_a, new_a), (old_b, new_b)]))
    [body] = transport.bodies
    action = body["action"]
    assert list(action) == ["type", "modifies"] and action["type"] == "batchModify"
    assert [m["oid"] for m in action["modifies"]] == [old_a, old_b]
    assert [m["order"]["c"] for m in action["modifies"]] == [cloid_for(f"{PREFIX}B1", PREFIX),
                                                             cloid_for(f"{PREFIX}B2", PREFIX)]
    assert all(m["order"]["c"] != m["oid"] for m in action["modifies"])
    assert [(r.client_id, r.status, r.oid) for r in results] == [(f"{PREFIX}B1", "resting", 7),
                                                                 (f"{PREFIX}B2", "error", None)]
    assert "builder" not in action
