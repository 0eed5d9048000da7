"""Properties of the strategy core: quotes never cross, risk never approves a breach,
position accounting matches cash flows, and every Reject reason can happen."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.config import QuoterConfig, RiskConfig
from mm.position import Position
from mm.quoting import CancelAction, PlaceAction, WorkingOrder, compute_quote, plan_requote
from mm.risk_rules import (
    Exposure,
    MarketView,
    OrderCheck,
    RateWindow,
    Reject,
    TradingState,
    check_order,
)

S = 1_000_000_000
MS = 1_000_000
TICK = 0.01
LOT = 0.00001

quoter_configs = st.builds(
    QuoterConfig,
    size_lot=st.integers(1, 10_000),
    min_half_spread_ticks=st.integers(1, 50),
    vol_spread_mult=st.floats(0, 5),
    skew_ticks_per_lot=st.floats(0, 1),
    alpha_weight=st.floats(0, 3),
)
returns = st.floats(-0.05, 0.05)
vols = st.floats(0, 500)


@st.composite
def markets(draw):
    best_bid_tick = draw(st.integers(1, 10_000_000))
    best_ask_tick = best_bid_tick + draw(st.integers(1, 1_000))
    return best_bid_tick, best_ask_tick


@settings(max_examples=500)
@given(
    cfg=quoter_configs,
    market=markets(),
    max_position_lot=st.integers(1, 100_000),
    position_lot=st.integers(-200_000, 200_000),
    predicted_return=returns,
    volatility_bps_per_s=vols,
    alpha_enabled=st.booleans(),
)
def test_compute_quote_any_input_never_crosses_and_respects_limits(
    cfg, market, max_position_lot, position_lot, predicted_return, volatility_bps_per_s, alpha_enabled
):
    best_bid_tick, best_ask_tick = market

    quote = compute_quote(
        cfg,
        best_bid_tick=best_bid_tick,
        best_ask_tick=best_ask_tick,
        position_lot=position_lot,
        max_position_lot=max_position_lot,
        predicted_return=predicted_return,
        volatility_bps_per_s=volatility_bps_per_s,
        alpha_enabled=alpha_enabled,
    )

    assert quote.bid_px_tick < quote.ask_px_tick
    assert quote.bid_px_tick <= best_ask_tick - 1
    assert quote.ask_px_tick >= best_bid_tick + 1
    assert 0 <= quote.bid_qty_lot <= cfg.size_lot
    assert 0 <= quote.ask_qty_lot <= cfg.size_lot
    if quote.bid_qty_lot:
        assert quote.bid_px_tick >= 1
        assert position_lot + quote.bid_qty_lot <= max_position_lot
    if quote.ask_qty_lot:
        assert position_lot - quote.ask_qty_lot >= -max_position_lot


working_orders = st.lists(
    st.builds(
        WorkingOrder,
        client_id=st.uuids().map(str),
        side=st.sampled_from([1, -1]),
        px_tick=st.integers(90, 120),
        qty_lot=st.integers(1, 3),
        placed_ns=st.integers(0, 60 * S),
    ),
    max_size=6,
    unique_by=lambda o: o.client_id,
)


@settings(max_examples=500)
@given(
    cfg=st.builds(QuoterConfig, size_lot=st.integers(1, 3), min_half_spread_ticks=st.integers(1, 5)),
    market=st.tuples(st.integers(95, 110), st.integers(1, 5)),
    position_lot=st.integers(-4, 4),
    working=working_orders,
    tolerance_ticks=st.integers(0, 3),
)
def test_plan_requote_any_working_set_ends_with_one_uncrossed_order_per_side(
    cfg, market, position_lot, working, tolerance_ticks
):
    best_bid_tick, spread_tick = market
    desired = compute_quote(
        cfg,
        best_bid_tick=best_bid_tick,
        best_ask_tick=best_bid_tick + spread_tick,
        position_lot=position_lot,
        max_position_lot=4,
        predicted_return=0.0,
        volatility_bps_per_s=1.0,
    )

    actions = plan_requote(desired, working, tolerance_ticks=tolerance_ticks, max_age_ns=30 * S, now_ns=60 * S)

    kinds = [type(action) for action in actions]
    assert kinds == sorted(kinds, key=lambda kind: kind is PlaceAction)  # cancels first
    cancelled = {action.client_id for action in actions if isinstance(action, CancelAction)}
    resting = [(o.side, o.px_tick, o.qty_lot) for o in working if o.client_id not in cancelled]
    resting += [(a.side, a.px_tick, a.qty_lot) for a in actions if isinstance(a, PlaceAction)]
    bids = [r for r in resting if r[0] == 1]
    asks = [r for r in resting if r[0] == -1]
    assert len(bids) == (1 if desired.bid_qty_lot else 0)
    assert len(asks) == (1 if desired.ask_qty_lot else 0)
    for side, px_tick, qty_lot in bids:
        assert abs(px_tick - desired.bid_px_tick) <= tolerance_ticks and qty_lot == desired.bid_qty_lot
    for side, px_tick, qty_lot in asks:
        assert abs(px_tick - desired.ask_px_tick) <= tolerance_ticks and qty_lot == desired.ask_qty_lot
    if bids and asks:
        assert bids[0][1] < asks[0][1]


risk_limits = st.builds(
    RiskConfig,
    max_order_lot=st.integers(1, 5_000),
    max_position_lot=st.integers(1, 20_000),
    max_notional_quote=st.floats(1.0, 10_000.0),
    price_band_bps=st.floats(0.1, 500.0),
    max_orders_per_s=st.floats(1.0, 100.0),
    max_book_age_ms=st.floats(1.0, 5_000.0),
    max_signal_age_ms=st.floats(1.0, 10_000.0),
)


@settings(max_examples=1_000)
@given(
    limits=risk_limits,
    side=st.sampled_from([1, -1]),
    px_offset_bps=st.floats(-1_000, 1_000),
    qty_lot=st.integers(1, 6_000),
    position_lot=st.integers(-25_000, 25_000),
    open_buy_lot=st.integers(0, 5_000),
    open_sell_lot=st.integers(0, 5_000),
    mid_px_tick=st.floats(1_000.0, 10_000_000.0),
    state=st.sampled_from(list(TradingState)),
    paused=st.booleans(),
    peers_alive=st.booleans(),
)
def test_check_order_approved_never_breaches_limits(
    limits, side, px_offset_bps, qty_lot, position_lot, open_buy_lot, open_sell_lot, mid_px_tick, state, paused,
    peers_alive,
):
    px_tick = max(1, round(mid_px_tick * (1 + px_offset_bps * 1e-4)))
    order = OrderCheck(side, px_tick, qty_lot)
    exposure = Exposure(position_lot, open_buy_lot, open_sell_lot)
    now_ns = 1_000 * S

    result = check_order(
        limits,
        order,
        exposure,
        MarketView(mid_px_tick, now_ns, now_ns),
        tick_size=TICK,
        lot_size=LOT,
        now_ns=now_ns,
        state=state,
        paused=paused,
        peers_alive=peers_alive,
        recent_orders=RateWindow(),
    )

    if result is None:
        assert state is not TradingState.HALTED and not paused and peers_alive
        assert qty_lot <= limits.max_order_lot
        assert px_tick * qty_lot * TICK * LOT <= limits.max_notional_quote
        if side == 1:
            assert position_lot + open_buy_lot + qty_lot <= limits.max_position_lot
        else:
            assert position_lot - open_sell_lot - qty_lot >= -limits.max_position_lot
        assert abs(px_tick - mid_px_tick) / mid_px_tick * 1e4 <= limits.price_band_bps * (1 + 1e-12)
        if state is TradingState.REDUCING:
            assert abs(position_lot + side * qty_lot) < abs(position_lot)


fills = st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(1, 10_000_000), st.integers(1, 10_000)), max_size=30)


@settings(max_examples=500)
@given(buy_px_tick=st.integers(1, 10_000_000), sell_px_tick=st.integers(1, 10_000_000),
       parts=st.lists(st.integers(1, 1_000), min_size=1, max_size=10), sell_first=st.booleans())
def test_position_flat_round_trip_realizes_price_difference_times_qty(buy_px_tick, sell_px_tick, parts, sell_first):
    position = Position(TICK, LOT)
    qty_lot = sum(parts)
    legs = [(-1, sell_px_tick), (1, buy_px_tick)] if sell_first else [(1, buy_px_tick), (-1, sell_px_tick)]

    for side, px_tick in legs:
        for part in parts:
            position.apply_fill(side, px_tick, part, 0.0)

    assert position.position_lot == 0
    assert position.realized_quote == pytest.approx((sell_px_tick - buy_px_tick) * qty_lot * TICK * LOT, rel=1e-9,
                                                    abs=1e-9)
    assert position.unrealized_quote(123.0) == 0.0


@settings(max_examples=500)
@given(sequence=fills, mark_px_tick=st.integers(1, 10_000_000))
def test_position_any_fills_pnl_equals_cash_flow_plus_marked_inventory(sequence, mark_px_tick):
    position = Position(TICK, LOT)
    cash_tick_lot = 0

    for side, px_tick, qty_lot in sequence:
        position.apply_fill(side, px_tick, qty_lot, 0.01)
        cash_tick_lot -= side * px_tick * qty_lot

    expected = (cash_tick_lot + position.position_lot * mark_px_tick) * TICK * LOT
    snapshot = position.snapshot(mark_px_tick)
    assert snapshot["realized"] + snapshot["unrealized"] == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert snapshot["total"] == pytest.approx(expected - 0.01 * len(sequence), rel=1e-9, abs=1e-6)
    assert position.position_lot == sum(side * qty_lot for side, _, qty_lot in sequence)


# ---- every Reject reason is reachable ---------------------------------------------------------

NOW = 100 * S
LIMITS = RiskConfig(
    max_order_lot=2_000,
    max_position_lot=10_000,
    max_notional_quote=2_000.0,
    price_band_bps=50.0,
    max_orders_per_s=2.0,
    max_book_age_ms=2_000.0,
    max_signal_age_ms=5_000.0,
)
BASE = dict(
    limits=LIMITS,
    order=OrderCheck(1, 6_000_000, 100),
    exposure=Exposure(0, 0, 0),
    market=MarketView(6_000_000.0, NOW, NOW),
    state=TradingState.ACTIVE,
    paused=False,
    peers_alive=True,
    recent=(),
    reconciled=True,
)
CASES: dict[Reject, dict] = {
    Reject.HALTED: dict(state=TradingState.HALTED),
    Reject.PAUSED: dict(paused=True),
    Reject.PEER_DEAD: dict(peers_alive=False),
    Reject.STALE_BOOK: dict(market=MarketView(6_000_000.0, NOW - 3 * S, NOW)),
    Reject.STALE_SIGNAL: dict(market=MarketView(6_000_000.0, NOW, NOW - 6 * S)),
    Reject.REDUCE_ONLY: dict(state=TradingState.REDUCING),
    Reject.MAX_ORDER_SIZE: dict(order=OrderCheck(1, 6_000_000, 2_001)),
    Reject.MAX_NOTIONAL: dict(limits=msgspec.structs.replace(LIMITS, max_notional_quote=10.0)),
    Reject.MAX_POSITION: dict(exposure=Exposure(9_950, 0, 0)),
    Reject.MAX_POSITION_EQUITY: dict(limits=msgspec.structs.replace(LIMITS, max_position_equity_pct=1.0),
                                     market=MarketView(6_000_000.0, NOW, NOW, equity_quote=5.0)),
    Reject.PRICE_BAND: dict(order=OrderCheck(1, 5_900_000, 100)),
    Reject.SELF_TRADE: dict(exposure=Exposure(0, 0, 100, None, 6_000_000)),
    Reject.ORDER_RATE: dict(recent=(NOW - 10 * MS, NOW - 5 * MS)),
    Reject.UNRECONCILED: dict(reconciled=False),
}


def test_reachability_cases_cover_every_reject():
    assert set(CASES) == set(Reject)


@pytest.mark.parametrize("reason", list(Reject), ids=lambda reason: reason.value)
def test_check_order_every_reject_reachable(reason):
    case = {**BASE, **CASES[reason]}
    window = RateWindow()
    for sent_ns in case["recent"]:
        window.record(sent_ns)

    result = check_order(
        case["limits"],
        case["order"],
        case["exposure"],
        case["market"],
        tick_size=TICK,
        lot_size=LOT,
        now_ns=NOW,
        state=case["state"],
        paused=case["paused"],
        peers_alive=case["peers_alive"],
        recent_orders=window,
        reconciled=case["reconciled"],
    )

    assert result is reason


def test_check_order_base_case_approved():
    window = RateWindow()

    result = check_order(
        BASE["limits"], BASE["order"], BASE["exposure"], BASE["market"], tick_size=TICK, lot_size=LOT, now_ns=NOW,
        state=TradingState.ACTIVE, paused=False, peers_alive=True, recent_orders=window,
    )

    assert result is None
