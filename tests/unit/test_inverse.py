"""Inverse contracts (Binance COIN-M) through the steps: a lot is a contract worth `contract_size`
USD, so fees, the traded notional and the PnL are in the base coin (contracts x size / price),
never the linear price x quantity."""

from __future__ import annotations

import msgspec
import pytest

from mm.config import load_config
from mm.fees import config_fees
from mm.fill_model import Filled
from mm.report import build_report
from mm.risk_rules import Exposure, MarketView, OrderCheck, RateWindow, Reject, TradingState, check_order
from mm.stages.commands import Place
from mm.stages.gateway import GatewayStep
from mm.stages.risk import MarketRead, RiskStep

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
BID, ASK = 40_000, 40_001  # BCHUSD_PERP at 400.00 / 400.01 (tick 0.01)


def coinm(symbol: str = "BCHUSD_PERP"):
    base = load_config(None)
    instrument = msgspec.structs.replace(base.instrument, symbol=symbol, tick_size="0.01", lot_size="1",
                                         market="binance_coinm")
    return msgspec.structs.replace(base, instrument=instrument)


def test_sim_venue_charges_fees_on_the_coin_notional():
    config = coinm()
    gateway = GatewayStep(config)
    gateway.on_snapshot(T0, 100, [(BID, 500)], [(ASK, 500)])
    gateway.on_command(T0, Place("a", 1, BID, 5))
    gateway.record(gateway.advance(T0 + gateway.latency_ns), T0 + gateway.latency_ns)
    fills = gateway.on_trade(T0 + 10 * MS, BID - 1, 1000, -1)  # traded through our bid: filled at 400.00
    assert [type(e) for e in fills] == [Filled]
    # 5 contracts x 10 USD / 400 = 0.125 BCH; the fee is maker bps of that (linear would say 2000 x bps)
    assert fills[0].fee_quote == pytest.approx(0.125 * config_fees(config).maker_bps / 1e4)


def test_risk_books_the_traded_notional_and_pnl_in_the_base_coin():
    risk = RiskStep(coinm(), "flat")
    read = MarketRead(book_ts_ns=T0, bid_px_tick=BID, ask_px_tick=ASK, signal_ts_ns=T0, volatility_bps_per_s=1.0)
    risk.on_fill("a", 1, BID, 5, 0, 0.0, T0, None, read)  # long 5 contracts at 400.00
    assert risk.traded_quote == pytest.approx(0.125)
    up = MarketRead(book_ts_ns=T0 + MS, bid_px_tick=49_999, ask_px_tick=50_001, signal_ts_ns=T0 + MS,
                    volatility_bps_per_s=1.0)
    risk.on_fill("b", -1, 50_000, 5, 0, 0.0, T0 + MS, None, up)  # closed at 500.00
    assert risk.traded_quote == pytest.approx(0.125 + 0.1)
    assert risk.pnl()["realized"] == pytest.approx(50 * (1 / 400 - 1 / 500))  # 0.025 BCH, not 5 x 100 USD


def test_btc_contracts_are_worth_100_usd():
    risk = RiskStep(coinm("BTCUSD_PERP"), "flat")
    read = MarketRead(book_ts_ns=T0, bid_px_tick=BID, ask_px_tick=ASK, signal_ts_ns=T0, volatility_bps_per_s=1.0)
    risk.on_fill("a", 1, 4_000_000, 2, 0, 0.0, T0, None, read)  # 2 contracts at 40000.00
    assert risk.traded_quote == pytest.approx(200 / 40_000)


def test_report_says_an_inverse_instrument_settles_in_the_base_coin():
    inverse = build_report({}, wall_s=1.0, mode="replay", pipeline="replay", symbol="BCHUSD_PERP", tick_size=0.01,
                           lot_size=1.0, contract_size=10.0)
    assert inverse["instrument"] == {"symbol": "BCHUSD_PERP", "tick_size": 0.01, "lot_size": 1.0,
                                     "contract_size": 10.0, "settlement": "base"}
    linear = build_report({}, wall_s=1.0, mode="replay", pipeline="replay", symbol="BTCUSDT", tick_size=0.01,
                          lot_size=0.001)
    assert linear["instrument"] == {"symbol": "BTCUSDT", "tick_size": 0.01, "lot_size": 0.001}


def check(config, order: OrderCheck, **risk) -> Reject | None:
    limits = msgspec.structs.replace(config.risk, **risk)
    return check_order(limits, order, Exposure(0, 0, 0), MarketView(40_000.5, T0, T0), tick_size=0.01, lot_size=1.0,
                       contract_size=10.0, now_ns=T0, state=TradingState.ACTIVE, paused=False, peers_alive=True,
                       recent_orders=RateWindow())


def test_risk_limits_value_an_inverse_order_at_its_face_value_in_quote():
    config = coinm()
    order = OrderCheck(1, BID, 5)  # 5 contracts: 50 USD (linear would say 5 x 400 = 2000)
    assert check(config, order, max_notional_quote=60.0, max_order_lot=100, max_position_lot=100) is None
    assert check(config, order, max_notional_quote=40.0, max_order_lot=100,
                 max_position_lot=100) is Reject.MAX_NOTIONAL
    assert check(config, order, max_notional_quote=1e9, max_order_lot=100, max_position_lot=100,
                 max_position_equity_pct=10.0) is None  # 50 USD of an infinite equity
    limits = msgspec.structs.replace(config.risk, max_notional_quote=1e9, max_order_lot=100, max_position_lot=100,
                                     max_position_equity_pct=10.0)
    poor = MarketView(40_000.5, T0, T0, equity_quote=400.0)  # 10 % of 400 USD = 40 USD < 50 USD
    assert check_order(limits, order, Exposure(0, 0, 0), poor, tick_size=0.01, lot_size=1.0, contract_size=10.0,
                       now_ns=T0, state=TradingState.ACTIVE, paused=False, peers_alive=True,
                       recent_orders=RateWindow()) is Reject.MAX_POSITION_EQUITY


def test_risk_stops_see_the_coin_pnl_valued_in_quote():
    """The drawdown limits are in quote: a loss in coins counts at the price it is marked at."""
    base = coinm()
    config = msgspec.structs.replace(base, risk=msgspec.structs.replace(
        base.risk, hard_stop_drawdown_quote=5.0, soft_stop_drawdown_quote=0.0, max_order_lot=1000,
        max_position_lot=1000))
    risk = RiskStep(config, "flat")
    read = MarketRead(book_ts_ns=T0, bid_px_tick=BID, ask_px_tick=ASK, signal_ts_ns=T0, volatility_bps_per_s=1.0)
    risk.on_fill("a", 1, BID, 100, 0, 0.0, T0, None, read)  # long 1000 USD of BCH at 400
    down = MarketRead(book_ts_ns=T0 + MS, bid_px_tick=39_599, ask_px_tick=39_601, signal_ts_ns=T0 + MS,
                      volatility_bps_per_s=1.0)  # -1 %: 1000 x (1/400 - 1/396) = -0.0253 BCH = -10.0 USD
    risk.mark(T0 + MS, risk.market_view(down))
    assert risk.pnl()["total"] == pytest.approx(1000 * (1 / 400 - 1 / 396), rel=1e-4)
    assert risk.trading is TradingState.HALTED  # a 10 USD drawdown passed the 5 USD hard stop
