"""The quoter's fee and adverse-selection rules: each side's half-spread covers the maker fee plus
the expected adverse selection of its fills (online per-side markouts of our own fills), and the side
stop: a side is quoted only while its fills are expected to earn the fee (from a zero-profit or a
quote-distance prior), plus the signal's drift. The default prices the fee alone (weight 0)."""

from __future__ import annotations

import msgspec
import pytest

from mm.config import load_config
from mm.markouts import Markouts
from mm.stages.commands import Place
from mm.stages.quoter import QuoterStep

MS = 1_000_000
S = 1_000 * MS
T0 = 1_700_000_000_000_000_000
BID, ASK = 6_000_000, 6_000_001  # 60000.00 / 60000.01


def quoter(fee_bps: float, **quoting: object) -> QuoterStep:
    """The default quoter at `fee_bps`, pricing adverse selection in at weight 1 unless `quoting` says otherwise."""
    config = load_config(None)
    quoting.setdefault("adverse_selection_weight", 1.0)
    q = msgspec.structs.replace(config.quoter, maker_fee_bps=fee_bps, **quoting)
    return QuoterStep(msgspec.structs.replace(config, quoter=q), "t", risk_position_authoritative=False)


def sides(commands: list) -> set[int]:
    return {c.side for c in commands if isinstance(c, Place)}


def test_markout_estimate_is_capture_less_adverse_weighted_with_the_prior():
    m = Markouts(prior_fills=2.0, halflife_fills=1e9)  # no forgetting: plain weighted means
    assert m.expected_markout_bps(1) == 0.0 and m.expected_markout_bps(1, prior_bps=5.0) == pytest.approx(5.0)
    m.on_mid(0, 100.0)
    m.on_fill(0, 1, 99.0, 1)  # bought 1 below the mid: 100 bp captured
    m.on_mid(1 * S, 98.0)  # the mid fell 2: 200 bp against us at 5 s
    m.on_mid(6 * S, 98.0)
    assert m.expected_capture_bps(1) == pytest.approx(100.0 / 3)
    assert m.expected_adverse_bps(1) == pytest.approx(200.0 / 3)
    assert m.expected_markout_bps(1) == pytest.approx(-100.0 / 3)
    assert m.expected_markout_bps(1, adverse_weight=0.5) == pytest.approx(0.0)
    assert m.expected_markout_bps(1, prior_bps=30.0) == pytest.approx((2 * 30.0 - 100.0) / 3)
    assert m.expected_markout_bps(-1) == 0.0  # the sell side has heard nothing yet


def test_zero_profit_prior_stays_out_while_the_fee_is_not_covered():
    q = quoter(2.0)
    assert q.on_book(BID, ASK, (0.0, 1.0), T0) == []
    assert q.edge_stops == [1, 1] and q.stats()["quoted_s"] == {"bid": 0.0, "ask": 0.0}
    # a drift worth more than the fee opens the side it favours, and only that one
    places = q.on_book(BID, ASK, (3e-4, 1.0), T0 + MS)
    assert sides(places) == {1}


def test_at_zero_fee_both_sides_quote_until_toxic_fills_stop_one():
    q = quoter(0.0, adverse_selection_prior_fills=1.0)
    places = [c for c in q.on_book(BID, ASK, (0.0, 1.0), T0) if isinstance(c, Place)]
    assert sides(places) == {1, -1}
    bid = next(p for p in places if p.side == 1)
    ask = next(p for p in places if p.side == -1)
    q.on_fill(bid.client_id, 1, bid.qty_lot, 0)  # bought: long now, so the ask is kept whatever it costs
    q.on_fill(ask.client_id, -1, ask.qty_lot, 0)  # and sold: flat again
    # the mid runs 3000 ticks (5 bp) down after the fills and holds: the bid's fill lost, the ask's earned
    q.on_book(BID - 3000, ASK - 3000, (0.0, 1.0), T0 + S)
    q.on_book(BID - 3000, ASK - 3000, (0.0, 1.0), T0 + 6 * S)
    assert q.markouts.expected_markout_bps(1) < 0 < q.markouts.expected_markout_bps(-1)
    later = q.on_book(BID - 3000, ASK - 3000, (0.0, 1.0), T0 + 7 * S)
    assert 1 not in sides(later) and q.edge_stops[0] >= 1
    assert any(o.side == -1 for o in q.working.values()) and not any(o.side == 1 for o in q.working.values())


def test_the_side_that_unloads_inventory_is_kept():
    q = quoter(2.0)
    q.position_lot = -q.config.quoter.size_lot  # short: the bid reduces it
    assert sides(q.on_book(BID, ASK, (0.0, 1.0), T0)) == {1}


def test_quote_distance_prior_quotes_once_the_quote_covers_the_fee():
    q = quoter(2.0, edge_prior="quote_distance")
    assert sides(q.on_book(BID, ASK, (0.0, 1.0), T0)) == {1, -1}  # the half-spread priced the fee in
    assert q.edge_stops == [0, 0]


# ---- the "adverse_selection" rule: quote wider instead of not quoting ------------------------------------


def places_by_side(commands: list) -> dict[int, Place]:
    return {c.side: c for c in commands if isinstance(c, Place)}


def distance_bps(px_tick: int, side: int, bid: int = BID, ask: int = ASK) -> float:
    mid = 0.5 * (bid + ask)
    return side * (mid - px_tick) / mid * 1e4


def test_adverse_selection_rule_quotes_both_sides_at_a_half_spread_that_covers_the_fee():
    q = quoter(2.0, edge_prior="adverse_selection")
    quotes = places_by_side(q.on_book(BID, ASK, (0.0, 1.0), T0))
    assert set(quotes) == {1, -1} and q.edge_stops == [0, 0]
    assert all(2.0 <= distance_bps(quotes[s].px_tick, s) < 2.0 + 1.5 for s in (1, -1))  # the fee and GLFT's ~1 tick
    q.on_book(BID, ASK, (0.0, 1.0), T0 + S)
    assert q.stats()["quoted_s"] == {"bid": 1.0, "ask": 1.0}


def test_a_side_whose_fills_meet_adverse_selection_is_quoted_wider_by_it():
    q = quoter(2.0, edge_prior="adverse_selection", adverse_selection_prior_fills=1.0,
               adverse_selection_halflife_fills=1e9)
    bid = places_by_side(q.on_book(BID, ASK, (0.0, 1.0), T0))[1]
    q.on_fill(bid.client_id, 1, bid.qty_lot, 0)  # bought; the mid then falls 6 bp and stays there
    low_bid, low_ask = BID - 3600, ASK - 3600
    q.on_book(low_bid, low_ask, (0.0, 1.0), T0 + S)
    q.on_book(low_bid, low_ask, (0.0, 1.0), T0 + 6 * S)
    adverse = q.markouts.expected_adverse_bps(1)
    assert adverse == pytest.approx(3.0, rel=0.01)  # 6 bp against us, weighed with one pseudo-fill that met none
    assert q.markouts.expected_adverse_bps(-1) == 0.0
    q.position_lot = 0  # flat again: neither side is kept for unloading inventory
    later = places_by_side(q.on_book(low_bid, low_ask, (0.0, 1.0), T0 + 7 * S))
    assert distance_bps(later[1].px_tick, 1, low_bid, low_ask) >= 2.0 + adverse  # fee + expected adverse selection
    assert 2.0 <= distance_bps(later[-1].px_tick, -1, low_bid, low_ask) < 2.0 + 1.5
    assert q.stats()["expected_adverse_bps"]["bid"] == pytest.approx(adverse, abs=1e-6)


def test_adverse_selection_rule_prices_a_drift_in_instead_of_stopping_a_side():
    q = quoter(2.0, edge_prior="adverse_selection")
    # a predicted rise of 1 bp lifts the reservation by 1 bp: the bid comes 1 bp closer to the mid and
    # earns the rise, the ask goes 1 bp further out and pays it; both still cover the fee
    quotes = places_by_side(q.on_book(BID, ASK, (1e-4, 1.0), T0))
    assert set(quotes) == {1, -1} and q.edge_stops == [0, 0]
    bid, ask = distance_bps(quotes[1].px_tick, 1), distance_bps(quotes[-1].px_tick, -1)
    assert ask - bid == pytest.approx(2.0, abs=0.01)
    assert bid + 1.0 >= 2.0 and ask - 1.0 >= 2.0


def test_without_adverse_selection_weight_the_half_spread_covers_the_fee_alone_and_no_side_stops():
    q = quoter(2.0, adverse_selection_weight=0.0)
    quotes = places_by_side(q.on_book(BID, ASK, (1e-4, 1.0), T0))
    assert set(quotes) == {1, -1} and q.edge_stops == [0, 0]


def test_a_ladder_prices_each_side_s_own_adverse_selection_in():
    q = quoter(2.0, edge_prior="adverse_selection", levels=3, adverse_selection_prior_fills=1.0,
               adverse_selection_halflife_fills=1e9)
    q.markouts.on_mid(T0, 0.5 * (BID + ASK))
    q.markouts.on_fill(T0, -1, ASK, 1)  # sold at the ask; the mid then rises 6 bp: the ask's fills are toxic
    q.markouts.on_mid(T0 + S, BID + 3600 + 0.5)
    q.markouts.on_mid(T0 + 6 * S, BID + 3600 + 0.5)
    bid, ask = BID + 3600, ASK + 3600
    places = [c for c in q.on_book(bid, ask, (0.0, 1.0), T0 + 7 * S) if isinstance(c, Place)]
    bids = sorted((p.px_tick for p in places if p.side == 1), reverse=True)
    asks = sorted(p.px_tick for p in places if p.side == -1)
    assert len(bids) == len(asks) == 3
    adverse = q.markouts.expected_adverse_bps(-1)
    assert adverse > 2.5 and q.markouts.expected_adverse_bps(1) == 0.0
    assert distance_bps(asks[0], -1, bid, ask) >= 2.0 + adverse > distance_bps(bids[0], 1, bid, ask) + 2.0
