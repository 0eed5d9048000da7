"""Position: average-cost PnL from fills, flips through zero, fees apart."""

from __future__ import annotations

import pytest

from mm.position import Position

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
