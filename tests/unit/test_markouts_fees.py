"""Markouts on a hand-made tape, the fee table, and fees charged exactly once per fill."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from mm.config import load_config
from mm.fees import config_fees, market_of_capture, resolve_fees, standard_tier, venue_tier
from mm.fill_model import FillModel, Filled
from mm.markouts import Markouts, markouts_offline, summarise
from mm.position import Position

MS = 1_000_000


def test_markouts_on_a_hand_made_tape():
    # mids: 100 at t=0, 101 at 50 ms, 99 at 1 s, 98 at 6 s, 102 at 40 s
    mids = [(0, 100.0), (50 * MS, 101.0), (1000 * MS, 99.0), (6000 * MS, 98.0), (40_000 * MS, 102.0)]
    m = Markouts(capacity=1)
    m.on_mid(*mids[0])
    m.on_fill(10 * MS, 1, 99.0, 2)  # a buy at 99 with the mid at 100: 100 bp captured
    m.on_mid(*mids[1])
    m.on_fill(60 * MS, -1, 102.0, 1)  # a sell at 102 with the mid at 101
    for ts, mid in mids[2:]:
        m.on_mid(ts, mid)
    s = m.summary()
    # buy: mid at +100 ms (110 ms) = 101, +1 s (1.01 s) = 99, +5 s (5.01 s) = 99, +30 s (30.01 s) = 98
    # sell: +100 ms (160 ms) = 101, +1 s (1.06 s) = 99, +5 s = 99, +30 s (30.06 s) = 98
    buy_adverse = {"100ms": -100.0, "1s": 100.0, "5s": 100.0, "30s": 200.0}
    sell_adverse = {"100ms": 0.0, "1s": -2 / 101 * 1e4, "5s": -2 / 101 * 1e4, "30s": -3 / 101 * 1e4}
    for h in buy_adverse:
        assert s["adverse_selection_bps"][h] == pytest.approx((2 * buy_adverse[h] + sell_adverse[h]) / 3, abs=1e-5)
    capture = (2 * 100.0 + 1 / 101 * 1e4) / 3
    assert s["spread_capture_bps"] == pytest.approx(capture, abs=1e-5)
    assert s["markout_bps"]["1s"] == pytest.approx(capture - s["adverse_selection_bps"]["1s"], abs=1e-4)
    assert s["n"] == {"100ms": 2, "1s": 2, "5s": 2, "30s": 2}
    assert m.expected_adverse_bps(1) == pytest.approx(100.0 / (10 * 0.5 ** (1 / 50) + 1))  # prior 10 pseudo-fills
    # the offline form agrees
    ts, px = np.array([t for t, _ in mids]), np.array([p for _, p in mids])
    mid0, at = markouts_offline(np.array([10 * MS, 60 * MS]), np.array([1, -1]), np.array([99.0, 102.0]), ts, px)
    off = summarise(np.array([1, -1]), np.array([99.0, 102.0]), np.array([2.0, 1.0]), mid0, at,
                    m.horizons_ns)
    assert off == s


def test_markouts_leave_out_a_horizon_past_the_tape():
    m = Markouts()
    m.on_mid(0, 100.0)
    m.on_fill(0, 1, 100.0, 1)
    m.on_mid(2000 * MS, 100.5)
    s = m.summary()
    assert s["n"] == {"100ms": 1, "1s": 1, "5s": 0, "30s": 0}
    assert s["adverse_selection_bps"]["5s"] is None and s["adverse_selection_bps"]["1s"] == 0.0


def test_standard_tiers_and_overrides():
    assert (standard_tier("binance_spot").maker_bps, standard_tier("binance_spot").taker_bps) == (10.0, 10.0)
    assert (standard_tier("binance_usdm").maker_bps, standard_tier("binance_usdm").taker_bps) == (2.0, 5.0)
    assert (standard_tier("hyperliquid").maker_bps, standard_tier("hyperliquid").taker_bps) == (1.5, 4.5)
    assert venue_tier("usdm") == standard_tier("binance_usdm")
    with pytest.raises(ValueError, match="kraken"):
        standard_tier("kraken")
    fees = resolve_fees("binance_usdm", None, None, None)
    assert (fees.maker_bps, fees.taker_bps, fees.quoter_maker_bps) == (2.0, 5.0, 2.0)
    fees = resolve_fees("binance_usdm", -0.5, 3.0, None)
    assert (fees.maker_bps, fees.taker_bps, fees.quoter_maker_bps, fees.source) == (-0.5, 3.0, -0.5, "config")
    config = load_config()
    assert config.gateway.maker_fee_bps is None and config_fees(config).maker_bps == 10.0  # BTCUSDT spot default
    usdm = msgspec.structs.replace(config, instrument=msgspec.structs.replace(config.instrument, market="binance_usdm"))
    assert config_fees(usdm).taker_bps == 5.0
    assert market_of_capture(b'1 {"rest": "/fapi/v1/depth?symbol=X", "data": {}}') == "binance_usdm"
    assert market_of_capture(b'1 {"rest":"/api/v3/depth?symbol=X","data":{}}') == "binance_spot"
    assert market_of_capture(b'1 {"channel":"l2Book","data":{}}') == "hyperliquid"
    assert market_of_capture(b"1 [0, {}]") == "other"


def test_fees_are_charged_exactly_once_per_fill():
    tick, lot = 0.01, 0.001
    model = FillModel(latency_ns=0, maker_fee_bps=2.0, taker_fee_bps=5.0, cancel_ahead_ratio=0.5,
                      tick_size=tick, lot_size=lot)
    model.on_snapshot(0, [(10_000, 5)], [(10_002, 5)])
    events = model.submit(1, "b1", 1, 10_000, 10, True)  # maker bid behind 5 lots
    events += model.submit(2, "t1", 1, 10_002, 3, False)  # crosses: 3 lots taken at the ask
    events += model.on_trade(3, 10_000, 8, -1)  # 5 ahead, 3 fill us
    events += model.on_trade(4, 9_999, 1, -1)  # through our price: the other 7
    fills = [e for e in events if isinstance(e, Filled)]
    assert [(f.qty_lot, f.is_maker) for f in fills] == [(3, False), (3, True), (7, True)]
    position = Position(tick, lot)
    for f in fills:
        position.apply_fill(f.side, f.px_tick, f.qty_lot, f.fee_quote)
    expected = (10_002 * 3 * 5.0 + 10_000 * 10 * 2.0) * tick * lot / 1e4
    assert math.isclose(position.fees_quote, expected, rel_tol=1e-12)
    assert math.isclose(sum(f.fee_quote for f in fills), expected, rel_tol=1e-12)
    snap = position.snapshot(10_001)
    assert math.isclose(snap["total"], snap["realized"] + snap["unrealized"] - expected, rel_tol=1e-12)
