"""Pre-trade checks, the order-rate window and the dependency policy."""

from __future__ import annotations

import math

import msgspec
import pytest

from mm.config import RiskConfig
from mm.risk_rules import (
    Exposure,
    MarketView,
    OrderCheck,
    RateWindow,
    Reject,
    TradingState,
    check_order,
    dependency_policy,
)

S = 1_000_000_000
MS = 1_000_000
NOW = 100 * S
LIMITS = RiskConfig(
    max_order_lot=2_000,
    max_position_lot=10_000,
    max_notional_quote=2_000.0,
    price_band_bps=50.0,
    max_orders_per_s=5.0,
    max_book_age_ms=2_000.0,
    max_signal_age_ms=5_000.0,
)
MID = 6_000_000.0  # 60 000.00 at tick 0.01
FLAT = Exposure(position_lot=0, open_buy_lot=0, open_sell_lot=0)
FRESH = MarketView(mid_px_tick=MID, book_ts_ns=NOW, signal_ts_ns=NOW)
BUY = OrderCheck(side=1, px_tick=5_999_000, qty_lot=100)  # 60 quote
SELL = OrderCheck(side=-1, px_tick=6_001_000, qty_lot=100)


def check(
    order: OrderCheck = BUY,
    exposure: Exposure = FLAT,
    market: MarketView = FRESH,
    *,
    limits: RiskConfig = LIMITS,
    state: TradingState = TradingState.ACTIVE,
    paused: bool = False,
    peers_alive: bool = True,
    window: RateWindow | None = None,
    now_ns: int = NOW,
) -> Reject | None:
    return check_order(
        limits,
        order,
        exposure,
        market,
        tick_size=0.01,
        lot_size=0.00001,
        now_ns=now_ns,
        state=state,
        paused=paused,
        peers_alive=peers_alive,
        recent_orders=window or RateWindow(),
    )


def test_check_order_ordinary_buy_and_sell_approved():
    assert check(BUY) is None
    assert check(SELL) is None


def test_check_order_halted_rejects_even_reducing():
    result = check(SELL, Exposure(500, 0, 0), state=TradingState.HALTED)

    assert result is Reject.HALTED


def test_check_order_paused_rejects():
    assert check(paused=True) is Reject.PAUSED


def test_check_order_peer_dead_rejects():
    assert check(peers_alive=False) is Reject.PEER_DEAD


def test_check_order_old_book_stale_book():
    market = MarketView(MID, book_ts_ns=NOW - 2_001 * MS, signal_ts_ns=NOW)

    assert check(market=market) is Reject.STALE_BOOK


def test_check_order_book_exactly_at_max_age_passes():
    market = MarketView(MID, book_ts_ns=NOW - 2_000 * MS, signal_ts_ns=NOW)

    assert check(market=market) is None


def test_check_order_old_signal_stale_signal():
    market = MarketView(MID, book_ts_ns=NOW, signal_ts_ns=NOW - 5_001 * MS)

    assert check(market=market) is Reject.STALE_SIGNAL


def test_check_order_reducing_state_increasing_order_reduce_only():
    result = check(BUY, Exposure(500, 0, 0), state=TradingState.REDUCING)

    assert result is Reject.REDUCE_ONLY


def test_check_order_reducing_state_shrinking_order_passes():
    result = check(SELL, Exposure(500, 0, 0), state=TradingState.REDUCING)

    assert result is None


def test_check_order_reducing_state_order_that_flips_reduce_only():
    result = check(OrderCheck(-1, 6_001_000, 100), Exposure(50, 0, 0), state=TradingState.REDUCING)

    assert result is Reject.REDUCE_ONLY


def test_check_order_reducing_state_flat_reduce_only():
    assert check(SELL, state=TradingState.REDUCING) is Reject.REDUCE_ONLY


def test_check_order_too_large_max_order_size():
    assert check(OrderCheck(1, 6_000_000, 2_001)) is Reject.MAX_ORDER_SIZE


def test_check_order_notional_above_limit_max_notional():
    limits = msgspec.structs.replace(LIMITS, max_notional_quote=59.0)

    assert check(OrderCheck(1, 6_000_000, 100), limits=limits) is Reject.MAX_NOTIONAL  # 60.0 quote


def test_check_order_buy_with_open_buys_past_limit_max_position():
    exposure = Exposure(position_lot=9_000, open_buy_lot=950, open_sell_lot=0)

    assert check(BUY, exposure) is Reject.MAX_POSITION


def test_check_order_buy_exactly_to_limit_passes():
    exposure = Exposure(position_lot=9_000, open_buy_lot=900, open_sell_lot=0)

    assert check(BUY, exposure) is None


def test_check_order_sell_past_short_limit_max_position():
    exposure = Exposure(position_lot=-9_950, open_buy_lot=0, open_sell_lot=0)

    assert check(SELL, exposure) is Reject.MAX_POSITION


def test_check_order_buy_while_beyond_short_limit_passes():
    exposure = Exposure(position_lot=-12_000, open_buy_lot=0, open_sell_lot=0)

    assert check(BUY, exposure) is None


def test_check_order_far_from_mid_price_band():
    assert check(OrderCheck(1, 5_969_000, 100)) is Reject.PRICE_BAND  # 51.7 bps below


def test_check_order_at_band_edge_passes():
    assert check(OrderCheck(-1, 6_030_000, 100)) is None  # exactly 50 bps


@pytest.mark.parametrize("mid", [math.nan, math.inf, 0.0, -1.0])
def test_check_order_no_valid_mid_price_band(mid):
    market = MarketView(mid, book_ts_ns=NOW, signal_ts_ns=NOW)

    assert check(market=market) is Reject.PRICE_BAND


def test_check_order_buy_at_own_ask_self_trade():
    exposure = Exposure(0, 0, 100, best_own_bid_tick=None, best_own_ask_tick=5_999_000)

    assert check(BUY, exposure) is Reject.SELF_TRADE


def test_check_order_sell_at_own_bid_self_trade():
    exposure = Exposure(0, 100, 0, best_own_bid_tick=6_001_000, best_own_ask_tick=None)

    assert check(SELL, exposure) is Reject.SELF_TRADE


def test_check_order_buy_below_own_ask_passes():
    exposure = Exposure(0, 0, 100, best_own_bid_tick=None, best_own_ask_tick=5_999_001)

    assert check(BUY, exposure) is None


def test_check_order_rate_window_full_order_rate():
    window = RateWindow()
    for i in range(5):
        window.record(NOW - i * MS)

    assert check(window=window) is Reject.ORDER_RATE


def test_check_order_does_not_record_in_window():
    window = RateWindow()

    check(window=window)

    assert window.count(NOW) == 0


@pytest.mark.parametrize("order", [OrderCheck(0, 6_000_000, 1), OrderCheck(1, 6_000_000, 0)])
def test_check_order_malformed_order_raises(order):
    with pytest.raises(ValueError, match="must be"):
        check(order)


def test_rate_window_old_orders_slide_out():
    window = RateWindow()
    window.record(0)
    window.record(S // 2)

    assert window.count(S) == 1  # the order at 0 is exactly 1 s old: out
    assert window.allow(S, 2.0)
    assert not window.allow(S, 1.0)


def test_rate_window_empty_allows():
    assert RateWindow().allow(NOW, 1.0)


@pytest.mark.parametrize("dead", [{"quoter"}, {"book"}, {"gateway"}, {"signal", "gateway"}])
def test_dependency_policy_critical_peer_dead_halted(dead):
    assert dependency_policy(dead) is TradingState.HALTED


@pytest.mark.parametrize("dead", [set(), {"signal"}, {"feed"}])
def test_dependency_policy_other_peers_none(dead):
    assert dependency_policy(dead) is None


def test_reject_values_lower_case_names():
    assert all(reason.value == reason.name.lower() for reason in Reject)


def test_check_order_position_over_share_of_equity_is_rejected():
    from mm.config import RiskConfig
    from mm.risk_rules import Exposure, MarketView, OrderCheck, RateWindow, Reject, TradingState, check_order

    limits = RiskConfig(max_order_lot=10**9, max_position_lot=10**9, max_notional_quote=1e12, price_band_bps=100.0,
                        max_orders_per_s=1e6, max_book_age_ms=1e9, max_signal_age_ms=1e9,
                        max_position_equity_pct=50.0)
    # mid 100.00 (10 000 ticks of 0.01), lot 1: 60 lots = 6 000 quote
    market = MarketView(mid_px_tick=10_000.0, book_ts_ns=0, signal_ts_ns=0, equity_quote=10_000.0)
    exposure = Exposure(position_lot=40, open_buy_lot=0, open_sell_lot=0)
    kwargs = dict(tick_size=0.01, lot_size=1.0, now_ns=0, state=TradingState.ACTIVE, paused=False, peers_alive=True,
                  recent_orders=RateWindow())
    assert check_order(limits, OrderCheck(1, 10_000, 20), exposure, market, **kwargs) is Reject.MAX_POSITION_EQUITY
    assert check_order(limits, OrderCheck(1, 10_000, 10), exposure, market, **kwargs) is None  # 5 000 = 50%
    assert check_order(limits, OrderCheck(-1, 10_000, 20), exposure, market, **kwargs) is None  # reduces
    poorer = MarketView(mid_px_tick=10_000.0, book_ts_ns=0, signal_ts_ns=0, equity_quote=float("nan"))
    assert check_order(limits, OrderCheck(1, 10_000, 1), exposure, poorer, **kwargs) is Reject.MAX_POSITION_EQUITY
