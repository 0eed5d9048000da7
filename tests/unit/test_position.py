"""Position: average-cost PnL from fills, flips through zero, fees apart."""

from __future__ import annotations

import pytest

from mm.position import Position, contract_size, notional

TICK = 0.01
LOT = 0.00001
Q = TICK * LOT  # quote per tick*lot


def test_position_new_is_flat():
    position = Position(TICK, LOT)

    assert (position.position_lot, position.avg_px_tick, position.realized_quote) == (0, 0.0, 0.0)
    assert position.unrealized_quote(123.0) == 0.0


def test_apply_fill_two_buys_average_price():
    position = Position(TICK, LOT)

    position.apply_fill(1, 100, 10, 0.0)
    position.apply_fill(1, 110, 30, 0.0)

    assert position.position_lot == 40
    assert position.avg_px_tick == pytest.approx(107.5)
    assert position.realized_quote == 0.0


def test_apply_fill_partial_close_realizes_against_average():
    position = Position(TICK, LOT)
    position.apply_fill(1, 100, 10, 0.0)
    position.apply_fill(1, 110, 10, 0.0)

    position.apply_fill(-1, 120, 5, 0.0)

    assert position.position_lot == 15
    assert position.realized_quote == pytest.approx((120 - 105) * 5 * Q)
    assert position.avg_px_tick == pytest.approx(105.0)


def test_apply_fill_short_then_cover_lower_profit():
    position = Position(TICK, LOT)
    position.apply_fill(-1, 200, 10, 0.0)

    position.apply_fill(1, 190, 10, 0.0)

    assert position.position_lot == 0
    assert position.realized_quote == pytest.approx(10 * 10 * Q)
    assert position.avg_px_tick == 0.0


def test_apply_fill_flip_long_to_short_reopens_at_fill_price():
    position = Position(TICK, LOT)
    position.apply_fill(1, 100, 10, 0.0)

    position.apply_fill(-1, 105, 25, 0.0)

    assert position.position_lot == -15
    assert position.realized_quote == pytest.approx(5 * 10 * Q)
    assert position.avg_px_tick == pytest.approx(105.0)


def test_apply_fill_flip_short_to_long_then_close():
    position = Position(TICK, LOT)
    position.apply_fill(-1, 100, 10, 0.0)
    position.apply_fill(1, 102, 20, 0.0)  # -20 on the short, long 10 @ 102

    position.apply_fill(-1, 101, 10, 0.0)  # -10 on the long

    assert position.position_lot == 0
    assert position.realized_quote == pytest.approx(-30 * Q)


def test_unrealized_quote_long_and_short_marked():
    long = Position(TICK, LOT)
    long.apply_fill(1, 100, 10, 0.0)
    short = Position(TICK, LOT)
    short.apply_fill(-1, 100, 10, 0.0)

    assert long.unrealized_quote(104.5) == pytest.approx(45 * Q)
    assert short.unrealized_quote(104.5) == pytest.approx(-45 * Q)


def test_apply_fill_fees_apart_from_pnl_and_counted():
    position = Position(TICK, LOT)

    position.apply_fill(1, 100, 10, 0.25)
    position.apply_fill(-1, 100, 4, -0.05)  # a rebate

    assert position.fees_quote == pytest.approx(0.20)
    assert position.realized_quote == 0.0
    assert (position.traded_lot, position.fills) == (14, 2)


def test_snapshot_venue_units_and_total():
    position = Position(TICK, LOT)
    position.apply_fill(1, 100, 10, 0.5)
    position.apply_fill(-1, 110, 4, 0.0)

    snapshot = position.snapshot(mark_px_tick=120.0)

    assert snapshot["position_lot"] == 6
    assert snapshot["position"] == pytest.approx(6 * LOT)
    assert snapshot["avg_px"] == pytest.approx(100 * TICK)
    assert snapshot["realized"] == pytest.approx(40 * Q)
    assert snapshot["unrealized"] == pytest.approx(120 * Q)
    assert snapshot["fees"] == pytest.approx(0.5)
    assert snapshot["total"] == pytest.approx(160 * Q - 0.5)


@pytest.mark.parametrize(
    "side, px_tick, qty_lot, fee_quote",
    [(0, 100, 1, 0.0), (1, 100, 0, 0.0), (1, 0, 1, 0.0), (-1, 100, 1, float("nan"))],
)
def test_apply_fill_malformed_raises_and_leaves_position(side, px_tick, qty_lot, fee_quote):
    position = Position(TICK, LOT)

    with pytest.raises(ValueError, match="must be"):
        position.apply_fill(side, px_tick, qty_lot, fee_quote)

    assert (position.position_lot, position.fills) == (0, 0)


def test_position_bad_sizes_raise():
    with pytest.raises(ValueError, match="must be > 0"):
        Position(0.0, LOT)


# ---- inverse contracts (Binance COIN-M): contracts x contract size / price, in the base coin ----------


def test_contract_size_is_binance_coinm_face_value_and_zero_for_linear_markets():
    assert contract_size("binance_coinm", "BTCUSD_PERP") == 100.0
    assert contract_size("binance_coinm", "BTCUSD_210924") == 100.0
    assert contract_size("binance_coinm", "BCHUSD_PERP") == 10.0
    assert contract_size("binance_usdm", "BTCUSDT") == contract_size("binance_spot", "BTCUSDT") == 0.0


def test_notional_linear_is_price_times_qty_and_inverse_is_contracts_over_price():
    assert notional(6_000_000, 100, 0.01, 0.001) == pytest.approx(6_000.0)  # 0.1 BTC at 60000 USDT
    # 5 BCHUSD_PERP contracts (10 USD each) at 400.00: 50 USD = 0.125 BCH, not 5 x 400 = 2000
    assert notional(40_000, 5, 0.01, 1.0, 10.0) == pytest.approx(0.125)
    assert Position(0.01, 1.0, 10.0).notional(40_000, 5) == pytest.approx(0.125)


def test_inverse_long_gains_contracts_times_size_times_reciprocal_price_change():
    p = Position(0.1, 1.0, 100.0)  # BTCUSD_PERP: tick 0.1, 100 USD a contract
    p.apply_fill(1, 400_000, 10, 0.0)  # long 10 contracts at 40000
    p.apply_fill(1, 500_000, 10, 0.0)  # and 10 at 50000
    assert p.avg_px_tick == pytest.approx(20 / (10 / 400_000 + 10 / 500_000))  # harmonic: 44444.4
    assert p.unrealized_quote(500_000) == pytest.approx(1000 * (1 / 40_000 - 1 / 50_000))  # 0.005 BTC
    p.apply_fill(-1, 500_000, 15, 0.0)  # close 15 of the 20 at 50000
    avg_px = 20 / (10 / 40_000 + 10 / 50_000)  # 44444.44
    assert p.realized_quote == pytest.approx(15 * 100 * (1 / avg_px - 1 / 50_000))  # 0.00375 BTC
    assert p.realized_quote == pytest.approx(0.00375)
    assert p.position_lot == 5 and p.avg_px_tick == pytest.approx(20 / (10 / 400_000 + 10 / 500_000))


def test_inverse_short_gains_when_the_price_falls_and_flips_reopen_at_the_fill_price():
    p = Position(0.01, 1.0, 10.0)  # BCHUSD_PERP
    p.apply_fill(-1, 50_000, 4, 0.0)  # short 4 contracts (40 USD) at 500.00
    assert p.unrealized_quote(40_000) == pytest.approx(40 * (1 / 400 - 1 / 500))  # 0.02 BCH
    assert p.unrealized_quote(60_000) < 0
    p.apply_fill(1, 40_000, 6, 0.0)  # cover at 400.00 and go long 2
    assert p.realized_quote == pytest.approx(40 * (1 / 400 - 1 / 500))
    assert p.position_lot == 2 and p.avg_px_tick == pytest.approx(40_000)
    p.apply_fill(-1, 40_000, 2, 0.0)  # flat at the entry: nothing more
    assert p.realized_quote == pytest.approx(0.02) and p.position_lot == 0 and p.unrealized_quote(1) == 0.0
    snap = p.snapshot(40_000)
    assert snap["position"] == 0.0 and snap["total"] == pytest.approx(0.02)


def test_inverse_position_refuses_a_bad_contract_size():
    with pytest.raises(ValueError, match="contract_size"):
        Position(0.01, 1.0, -10.0)
