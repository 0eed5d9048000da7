"""Strategy hot paths: signal per book event (20 levels; 8 features + predict, + the RLS update when
a label on the sampling grid matures), RLS update alone, quote + requote plan per event (one level and a 3-level
ladder), pre-trade check per order, stop state machine per mark. Inputs are a seeded synthetic
BTCUSDT-like stream prepared outside the timed call (captures stay out of the repo)."""

from __future__ import annotations

import numpy as np
import pytest

from mm.config import QuoterConfig, RiskConfig, SignalConfig
from mm.quoting import (
    Quote,
    WorkingOrder,
    compute_quote,
    compute_quotes,
    defer_self_crossing,
    plan_requote,
    plan_requote_levels,
)
from mm.risk_rules import (Exposure, MarketView, MarkEvent, OrderCheck, RateWindow, StopState, TradingState,
                           apply_stop_event, check_order)
from mm.rls import RLS
from mm.signal import SignalModel

DEPTH = 20
EVENTS = 4_096
S = 1_000_000_000
# the per-event target is stated for 8 features (the default model has 4): every kind but spread
EIGHT_FEATURES = SignalConfig(features=("imbalance", "imbalance_weighted", "micro_offset", "trade_flow", "momentum",
                                        "volatility"), momentum_lookbacks_s=(1.0, 5.0, 30.0))


def synthetic_books(events: int = EVENTS, depth: int = DEPTH, seed: int = 7):
    """(ts_ns, bid_px, bid_qty, ask_px, ask_qty) per event: a random-walk mid at ~60 000.00."""
    rng = np.random.default_rng(seed)
    mid_low = 6_000_000 + np.cumsum(rng.integers(-3, 4, events))
    spreads = rng.integers(1, 4, events)
    gaps_ns = rng.exponential(0.01 * S, events).astype(np.int64) + 1
    books = []
    ts_ns = 1_700_000_000 * S
    offsets = np.arange(depth, dtype=np.int64)
    for i in range(events):
        ts_ns += int(gaps_ns[i])
        bid_px = mid_low[i] - offsets
        ask_px = mid_low[i] + spreads[i] + offsets
        bid_qty = rng.integers(1, 5_000, depth).astype(np.int64)
        ask_qty = rng.integers(1, 5_000, depth).astype(np.int64)
        books.append((ts_ns, bid_px, bid_qty, ask_px, ask_qty))
    return books


@pytest.fixture(scope="module")
def books():
    return synthetic_books()


@pytest.mark.benchmark(group="strategy")
def test_bench_signal_on_book_per_event(benchmark, books):
    """Steady state: 10 s of warm-up first, then a label matures (and the RLS updates) on the default
    50 ms sampling grid, about one event in five here (events ~10 ms apart); the rest predict only."""
    model = SignalModel(EIGHT_FEATURES)
    assert len(model.features.columns) == 8
    for ts_ns, bid_px, bid_qty, ask_px, ask_qty in books[:1_000]:
        model.on_book(ts_ns, bid_px, bid_qty, ask_px, ask_qty, DEPTH, DEPTH)
    assert model.rls.updates > 0
    cursor = [1_000]

    def on_next_book():
        ts_ns, bid_px, bid_qty, ask_px, ask_qty = books[cursor[0] % EVENTS]
        ts_ns += (cursor[0] // EVENTS) * 60 * S  # time keeps moving forward across laps
        cursor[0] += 1
        return model.on_book(ts_ns, bid_px, bid_qty, ask_px, ask_qty, DEPTH, DEPTH)

    prediction = benchmark(on_next_book)

    assert prediction.healthy
    assert -1.0 <= prediction.imbalance <= 1.0
    assert prediction.volatility_bps_per_s > 0


@pytest.mark.benchmark(group="strategy")
def test_bench_quote_and_plan_requote_per_event(benchmark, books):
    cfg = QuoterConfig()
    rng = np.random.default_rng(11)
    inputs = [
        (int(b[1][0]), int(b[3][0]), int(rng.integers(-5_000, 5_000)), float(rng.normal(0, 1e-5)),
         float(rng.uniform(0.5, 3.0)))
        for b in books
    ]
    working = [
        WorkingOrder("mm-1", 1, 5_999_990, cfg.size_lot, 1_700_000_000 * S),
        WorkingOrder("mm-2", -1, 6_000_010, cfg.size_lot, 1_700_000_000 * S),
    ]
    max_age_ns = int(cfg.max_order_age_s * S)
    now_ns = 1_700_000_001 * S
    cursor = [0]

    def quote_and_plan():
        best_bid_tick, best_ask_tick, position_lot, predicted_return, volatility = inputs[cursor[0] % EVENTS]
        cursor[0] += 1
        quote = compute_quote(
            cfg,
            best_bid_tick=best_bid_tick,
            best_ask_tick=best_ask_tick,
            position_lot=position_lot,
            max_position_lot=10_000,
            predicted_return=predicted_return,
            volatility_bps_per_s=volatility,
        )
        actions = plan_requote(
            quote, working, tolerance_ticks=cfg.requote_tolerance_ticks, max_age_ns=max_age_ns, now_ns=now_ns
        )
        return quote, defer_self_crossing(actions, working, [])

    quote, actions = benchmark(quote_and_plan)

    assert isinstance(quote, Quote)
    assert quote.bid_px_tick < quote.ask_px_tick
    assert len(actions) <= 4


@pytest.mark.benchmark(group="strategy")
def test_bench_check_order_per_order(benchmark):
    limits = RiskConfig(
        max_order_lot=2_000,
        max_position_lot=10_000,
        max_notional_quote=2_000.0,
        price_band_bps=50.0,
        max_orders_per_s=1e9,
        max_book_age_ms=2_000.0,
        max_signal_age_ms=5_000.0,
    )
    now_ns = 1_700_000_000 * S
    order = OrderCheck(1, 5_999_990, 100)
    exposure = Exposure(1_200, 100, 100, 5_999_980, 6_000_020)
    market = MarketView(6_000_000.5, now_ns - 1_000_000, now_ns - 2_000_000)
    window = RateWindow()
    for i in range(20):
        window.record(now_ns - i * 10_000_000)

    def check():
        return check_order(
            limits,
            order,
            exposure,
            market,
            tick_size=0.01,
            lot_size=0.00001,
            now_ns=now_ns,
            state=TradingState.ACTIVE,
            paused=False,
            peers_alive=True,
            recent_orders=window,
        )

    result = benchmark(check)

    assert result is None


@pytest.mark.benchmark(group="strategy")
def test_bench_rls_update_8_features(benchmark):
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(EVENTS, 8))
    ys = xs @ np.linspace(-1, 1, 8) + rng.normal(size=EVENTS)
    rls = RLS(8, forgetting=0.9999, ridge=1_000.0)
    cursor = [0]

    def update():
        i = cursor[0] % EVENTS
        cursor[0] += 1
        return rls.update(xs[i], float(ys[i]))

    assert benchmark(update)
    assert rls.resets == 0


@pytest.mark.benchmark(group="strategy")
def test_bench_ladder_and_plan_per_event(benchmark, books):
    cfg = QuoterConfig(levels=3, risk_aversion=0.05, arrival_decay_per_tick=1.0)
    working = [WorkingOrder(f"mm-{i}", 1 if i < 3 else -1, 5_999_990 - i if i < 3 else 6_000_010 + i, cfg.size_lot,
                            1_700_000_000 * S) for i in range(6)]
    max_age_ns = int(cfg.max_order_age_s * S)
    now_ns = 1_700_000_001 * S
    cursor = [0]

    def ladder_and_plan():
        _, bid_px, _, ask_px, _ = books[cursor[0] % EVENTS]
        cursor[0] += 1
        ladder = compute_quotes(cfg, best_bid_tick=int(bid_px[0]), best_ask_tick=int(ask_px[0]), position_lot=300,
                                max_position_lot=10_000, predicted_return=1e-5, volatility_bps_per_s=1.5)
        return ladder, plan_requote_levels(ladder, working, tolerance_ticks=1, max_age_ns=max_age_ns, now_ns=now_ns)

    ladder, actions = benchmark(ladder_and_plan)

    assert len(ladder.bids) == 3 and ladder.bids[0][0] < ladder.asks[0][0]
    assert len(actions) <= 12


@pytest.mark.benchmark(group="strategy")
def test_bench_stop_state_machine_per_mark(benchmark):
    limits = RiskConfig(max_order_lot=2_000, max_position_lot=10_000, max_notional_quote=2_000.0,
                        price_band_bps=50.0, max_orders_per_s=50.0, max_book_age_ms=2_000.0,
                        max_signal_age_ms=5_000.0, soft_stop_drawdown_quote=50.0, hard_stop_drawdown_quote=200.0)
    state = StopState()
    event = MarkEvent(1.0, 1.5)

    new_state, actions = benchmark(apply_stop_event, limits, state, event, 1_700_000_000 * S)

    assert new_state.trading is TradingState.ACTIVE and actions == []
