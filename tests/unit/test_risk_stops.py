"""Stop-losses, reduce-only, kill switch as a pure state machine; position limit; stale data."""

from __future__ import annotations

import msgspec
import pytest

from mm.config import RiskConfig
from mm.risk_rules import (
    AdjustQuotesAction,
    CancelAllAction,
    Exposure,
    FlattenAction,
    KillSwitch,
    MarketView,
    MarkEvent,
    OperatorReduceOnly,
    OperatorResume,
    OrderCheck,
    RateWindow,
    Reject,
    RejectCounts,
    StopState,
    TradingState,
    apply_stop_event,
    check_order,
)

S = 1_000_000_000
LIMITS = RiskConfig(max_order_lot=100, max_position_lot=300, max_notional_quote=1e9, price_band_bps=100.0,
                    max_orders_per_s=1e6, max_book_age_ms=500.0, max_signal_age_ms=2_000.0,
                    soft_stop_drawdown_quote=10.0, soft_stop_vol_bps_per_s=20.0, soft_stop_size_ratio=0.5,
                    soft_stop_widen_ticks=2.0, soft_stop_cooldown_s=60.0, hard_stop_drawdown_quote=30.0,
                    flatten_on_hard_stop=True)


def run(events, state=None, limits=LIMITS):
    state = state or StopState()
    all_actions = []
    for now_ns, event in events:
        state, actions = apply_stop_event(limits, state, event, now_ns)
        all_actions.extend(actions)
    return state, all_actions


def check(state: TradingState, order: OrderCheck, position_lot: int = 0, now_ns: int = 10 * S,
          book_ts_ns: int = 10 * S, signal_ts_ns: int = 10 * S) -> Reject | None:
    return check_order(LIMITS, order, Exposure(position_lot, 0, 0), MarketView(10_000.0, book_ts_ns, signal_ts_ns),
                       tick_size=0.01, lot_size=0.001, now_ns=now_ns, state=state, paused=False, peers_alive=True,
                       recent_orders=RateWindow())


def test_soft_stop_on_drawdown_from_peak_not_start():
    state, actions = run([(0, MarkEvent(50.0)), (1, MarkEvent(39.0))])  # up 39 from start, 11 off the peak

    assert state.trading is TradingState.REDUCING
    assert state.is_soft_stopped and state.soft_stops == 1
    assert CancelAllAction in {type(a) for a in actions}
    assert AdjustQuotesAction(0.5, 2.0) in actions


def test_soft_stop_on_volatility():
    state, _ = run([(0, MarkEvent(0.0, volatility_bps_per_s=25.0))])

    assert state.trading is TradingState.REDUCING


def test_soft_stop_recovers_after_cooldown_when_calm_and_rebases_peak():
    state, _ = run([(0, MarkEvent(50.0)), (S, MarkEvent(39.0)), (30 * S, MarkEvent(38.0))])
    assert state.trading is TradingState.REDUCING  # still cooling down

    state, actions = run([(62 * S, MarkEvent(38.0))], state)

    assert state.trading is TradingState.ACTIVE
    assert actions == [AdjustQuotesAction(1.0, 0.0)]
    assert state.soft_peak_pnl_quote == 38.0
    assert state.peak_pnl_quote == 50.0  # the hard stop still measures from the overall peak


def test_hard_stop_halts_cancels_flattens_and_stays_until_resume():
    state, actions = run([(0, MarkEvent(40.0)), (S, MarkEvent(5.0))])
    assert state.trading is TradingState.HALTED and state.hard_stops == 1
    assert CancelAllAction in {type(a) for a in actions} and FlattenAction in {type(a) for a in actions}

    state, _ = run([(100 * S, MarkEvent(100.0)), (200 * S, OperatorReduceOnly(False))], state)
    assert state.trading is TradingState.HALTED  # a recovery of PnL does not resume
    assert check(state.trading, OrderCheck(-1, 10_000, 1), position_lot=50) is Reject.HALTED

    state, _ = run([(300 * S, OperatorResume())], state)
    assert state.trading is TradingState.ACTIVE
    assert state.peak_pnl_quote == 100.0


def test_after_hard_stop_nothing_is_approved_until_resume():
    state, _ = run([(0, KillSwitch("operator"))])
    orders = [OrderCheck(side, px, qty) for side in (1, -1) for px in (9_990, 10_000, 10_010) for qty in (1, 50)]

    assert all(check(state.trading, order, position_lot=pos) is Reject.HALTED for order in orders
               for pos in (-100, 0, 100))
    state, _ = run([(S, OperatorResume())], state)
    assert check(state.trading, OrderCheck(1, 9_990, 1)) is None


def test_operator_reduce_only_passes_only_reducing_orders():
    state, actions = run([(0, OperatorReduceOnly(True))])

    assert state.trading is TradingState.REDUCING
    assert actions == [CancelAllAction("operator reduce-only")]
    assert check(state.trading, OrderCheck(-1, 10_000, 50), position_lot=100) is None
    assert check(state.trading, OrderCheck(1, 10_000, 50), position_lot=100) is Reject.REDUCE_ONLY
    assert check(state.trading, OrderCheck(-1, 10_000, 150), position_lot=100) is Reject.REDUCE_ONLY  # flips


@pytest.mark.parametrize("position_lot", [300, -300])
def test_at_position_limit_no_order_increases_exposure(position_lot):
    side_adding = 1 if position_lot > 0 else -1

    assert check(TradingState.ACTIVE, OrderCheck(side_adding, 10_000, 1), position_lot=position_lot) is Reject.MAX_POSITION
    assert check(TradingState.ACTIVE, OrderCheck(-side_adding, 10_000, 1), position_lot=position_lot) is None


def test_stale_data_guard_stops_quoting_when_a_stage_goes_quiet():
    assert check(TradingState.ACTIVE, OrderCheck(1, 10_000, 1), book_ts_ns=9 * S) is Reject.STALE_BOOK
    assert check(TradingState.ACTIVE, OrderCheck(1, 10_000, 1), signal_ts_ns=7 * S) is Reject.STALE_SIGNAL


def test_reject_counts_by_reason():
    counts = RejectCounts()
    for reject in (Reject.HALTED, None, Reject.HALTED, Reject.STALE_BOOK):
        counts.record(reject)

    assert counts.as_dict() == {"halted": 2, "stale_book": 1}
    assert counts.total == 3


def test_stop_state_round_trips_through_msgspec():
    state, _ = run([(0, MarkEvent(50.0)), (1, MarkEvent(39.0))])

    assert msgspec.json.decode(msgspec.json.encode(state), type=StopState) == state
