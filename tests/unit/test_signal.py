"""SignalModel: imbalance, EWMA mid, volatility and health on event time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mm.config import SignalConfig
from mm.signal import Prediction, SignalModel

S = 1_000_000_000


def book(bids: list[tuple[int, int]], asks: list[tuple[int, int]], depth: int = 20):
    """Arrays as the book stage hands them: int64, best first, padded to depth."""
    bid_px = np.zeros(depth, np.int64)
    bid_qty = np.zeros(depth, np.int64)
    ask_px = np.zeros(depth, np.int64)
    ask_qty = np.zeros(depth, np.int64)
    for i, (px, qty) in enumerate(bids):
        bid_px[i], bid_qty[i] = px, qty
    for i, (px, qty) in enumerate(asks):
        ask_px[i], ask_qty[i] = px, qty
    return bid_px, bid_qty, ask_px, ask_qty, len(bids), len(asks)


def symmetric(mid_low: int, qty: int = 10, levels: int = 5):
    return book([(mid_low - i, qty) for i in range(levels)], [(mid_low + 1 + i, qty) for i in range(levels)])


def test_on_book_balanced_book_zero_imbalance_fair_at_mid():
    model = SignalModel(SignalConfig())

    prediction = model.on_book(1 * S, *symmetric(1000))

    assert isinstance(prediction, Prediction)
    assert prediction.healthy
    assert prediction.imbalance == 0.0
    assert prediction.predicted_return == 0.0
    assert prediction.fair_px_tick == 1000.5
    assert prediction.ts_ns == 1 * S


def test_on_book_bid_heavy_positive_imbalance_and_return():
    model = SignalModel(SignalConfig(imbalance_levels=2, imbalance_coef_bps=2.0, model="imbalance"))
    arrays = book([(100, 30), (99, 10), (98, 1000)], [(101, 5), (102, 5), (103, 1000)])

    prediction = model.on_book(1 * S, *arrays)

    assert prediction.imbalance == pytest.approx((40 - 10) / 50)
    assert prediction.predicted_return == pytest.approx(2.0e-4 * 0.6)
    assert prediction.fair_px_tick == pytest.approx(100.5 * (1 + 2.0e-4 * 0.6))


def test_on_book_fewer_levels_than_configured_uses_what_is_there():
    model = SignalModel(SignalConfig(imbalance_levels=5))
    arrays = book([(100, 10)], [(101, 30), (102, 10)])

    prediction = model.on_book(1 * S, *arrays)

    assert prediction.imbalance == pytest.approx((10 - 40) / 50)


def test_on_book_ignores_rows_beyond_n():
    model = SignalModel(SignalConfig(imbalance_levels=5))
    bid_px, bid_qty, ask_px, ask_qty, _, _ = book([(100, 10), (99, 999)], [(101, 10), (102, 10)])

    prediction = model.on_book(1 * S, bid_px, bid_qty, ask_px, ask_qty, 1, 1)

    assert prediction.imbalance == 0.0


@pytest.mark.parametrize("n_bids, n_asks", [(0, 3), (3, 0), (0, 0)])
def test_on_book_empty_side_unhealthy(n_bids, n_asks):
    model = SignalModel(SignalConfig())
    bid_px, bid_qty, ask_px, ask_qty, _, _ = symmetric(1000)

    prediction = model.on_book(1 * S, bid_px, bid_qty, ask_px, ask_qty, n_bids, n_asks)

    assert not prediction.healthy
    assert prediction.predicted_return == 0.0


def test_on_book_crossed_book_unhealthy():
    model = SignalModel(SignalConfig())

    prediction = model.on_book(1 * S, *book([(101, 1)], [(101, 1)]))

    assert not prediction.healthy


def test_on_book_unhealthy_keeps_last_fair_price():
    model = SignalModel(SignalConfig())
    first = model.on_book(1 * S, *symmetric(1000))
    bid_px, bid_qty, ask_px, ask_qty, _, _ = symmetric(1000)

    prediction = model.on_book(2 * S, bid_px, bid_qty, ask_px, ask_qty, 0, 5)

    assert prediction.fair_px_tick == first.fair_px_tick
    assert math.isfinite(prediction.volatility_bps_per_s)


def test_on_book_first_event_volatility_is_prior():
    model = SignalModel(SignalConfig(vol_prior_bps_per_s=2.5))

    prediction = model.on_book(1 * S, *symmetric(1000))

    assert prediction.volatility_bps_per_s == pytest.approx(2.5)


def test_on_book_constant_mid_volatility_decays_by_halflife():
    model = SignalModel(SignalConfig(vol_prior_bps_per_s=2.0, vol_halflife_s=10.0))
    model.on_book(0, *symmetric(1000))

    prediction = model.on_book(10 * S, *symmetric(1000))

    # variance halves after one half-life with no moves: std falls by sqrt(2)
    assert prediction.volatility_bps_per_s == pytest.approx(2.0 / math.sqrt(2))


def test_on_book_jump_raises_volatility():
    model = SignalModel(SignalConfig(vol_prior_bps_per_s=1.0, vol_halflife_s=30.0))
    model.on_book(0, *symmetric(100_000))

    prediction = model.on_book(S, *symmetric(100_100))  # +10 bps in 1 s

    assert prediction.volatility_bps_per_s > 1.0


def test_on_book_same_timestamp_jump_stays_finite():
    model = SignalModel(SignalConfig(vol_halflife_s=30.0, vol_prior_bps_per_s=1.0))
    model.on_book(S, *symmetric(100_000))

    prediction = model.on_book(S, *symmetric(100_100))

    assert prediction.healthy
    expected_variance = (1e-4) ** 2 + math.log(2) / 30.0 * math.log(100_100.5 / 100_000.5) ** 2
    assert prediction.volatility_bps_per_s == pytest.approx(math.sqrt(expected_variance) * 1e4)


def test_on_book_irregular_events_match_one_step_of_same_total_time():
    """Decay depends on elapsed ns only: several quiet steps equal one long step."""
    stepped = SignalModel(SignalConfig())
    single = SignalModel(SignalConfig())
    stepped.on_book(0, *symmetric(1000))
    single.on_book(0, *symmetric(1000))

    for ts_ns in (S // 3, S, 4 * S, 7 * S):
        stepped_prediction = stepped.on_book(ts_ns, *symmetric(1000))
    single_prediction = single.on_book(7 * S, *symmetric(1000))

    assert stepped_prediction.volatility_bps_per_s == pytest.approx(single_prediction.volatility_bps_per_s)


def test_ewma_mid_tick_after_one_halflife_halfway():
    model = SignalModel(SignalConfig(ewma_halflife_s=2.0))
    model.on_book(0, *symmetric(1000))

    model.on_book(2 * S, *symmetric(1100))

    assert model.ewma_mid_tick == pytest.approx((1000.5 + 1100.5) / 2)


def test_ewma_mid_tick_out_of_order_timestamp_counts_as_no_time():
    model = SignalModel(SignalConfig())
    model.on_book(5 * S, *symmetric(1000))

    model.on_book(4 * S, *symmetric(1100))

    assert model.ewma_mid_tick == pytest.approx(1000.5)


def test_on_trade_buys_and_sells_give_flow_imbalance():
    model = SignalModel(SignalConfig())

    model.on_trade(S, 1000, 30, 1)
    model.on_trade(S, 1000, 10, -1)

    assert model.trade_flow_imbalance == pytest.approx(0.5)


def test_on_trade_old_flow_decays():
    model = SignalModel(SignalConfig(trade_flow_halflife_s=1.0))
    model.on_trade(0, 1000, 10, 1)

    model.on_trade(10 * S, 1000, 10, -1)

    assert model.trade_flow_imbalance < -0.99


@pytest.mark.parametrize("qty_lot, side", [(0, 1), (-5, -1), (5, 0), (5, 2)])
def test_on_trade_bad_trade_ignored_and_counted(qty_lot, side):
    model = SignalModel(SignalConfig())

    model.on_trade(S, 1000, qty_lot, side)

    assert model.trades_ignored == 1
    assert model.trade_flow_imbalance == 0.0


def test_trade_flow_imbalance_no_trades_zero():
    assert SignalModel(SignalConfig()).trade_flow_imbalance == 0.0
