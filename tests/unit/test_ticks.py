"""Exact decimal text <-> int ticks/lots; off-grid, NaN, negative rejected with the value named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.errors import OffGridError
from mm.ticks import (
    TickGrid,
    decimals_of,
    format_price,
    format_qty,
    grid_from_sizes,
    infer_grid,
    parse_levels,
    parse_price,
    parse_qty,
)

SPOT = infer_grid("BTCUSDT", "61234.56000000", "0.00100000")
USDM = infer_grid("ETHUSDT", "2681.62", "1.165")


def test_ticks_infer_grid_takes_the_written_decimals():
    assert SPOT == TickGrid("BTCUSDT", 8, 8)
    assert USDM == TickGrid("ETHUSDT", 2, 3)
    assert infer_grid("AKROUSDT", "0.01734", "502") == TickGrid("AKROUSDT", 5, 0)
    assert decimals_of("24") == 0


def test_ticks_parse_and_format_round_trip_the_venue_text():
    assert parse_price(SPOT, "61234.56000000") == 6_123_456_000_000
    assert format_price(SPOT, 6_123_456_000_000) == "61234.56000000"
    assert format_qty(SPOT, parse_qty(SPOT, "0.00000001")) == "0.00000001"
    assert format_qty(USDM, 0) == "0.000"
    assert format_price(infer_grid("A", "7", "1"), 7) == "7"


def test_ticks_parse_levels_hot_path_equals_checked_path():
    levels = [("61737.63000000", "0.00000000"), ("61837.64000000", "1.54698000")]

    assert parse_levels(SPOT, levels) == [
        (parse_price(SPOT, "61737.63000000"), 0),
        (parse_price(SPOT, "61837.64000000"), parse_qty(SPOT, "1.54698000")),
    ]


def test_ticks_fewer_decimals_or_trailing_zeros_are_on_grid():
    assert parse_price(USDM, "2681.6") == 268160
    assert parse_price(USDM, "2681") == 268100
    assert parse_levels(USDM, [("2681.6200", "1.1650")]) == [(268162, 1165)]


@pytest.mark.parametrize("text", ["2681.625", "0.001"])
def test_ticks_off_grid_price_raises_naming_symbol_and_value(text):
    with pytest.raises(OffGridError, match=rf"ETHUSDT: price '{text}' is off the grid"):
        parse_price(USDM, text)


def test_ticks_off_grid_in_levels_raises_naming_value():
    with pytest.raises(OffGridError, match=r"ETHUSDT: qty '1.0005'"):
        parse_levels(USDM, [("2681.62", "1.0005")])


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-Infinity", "sNaN"])
def test_ticks_nan_and_infinity_rejected_naming_value(text):
    with pytest.raises(OffGridError, match=rf"BTCUSDT: (price|qty) '{text}' is not"):
        parse_levels(SPOT, [(text, "1.0")] if text[0] in "Nn" else [("1.0", text)])


@pytest.mark.parametrize("text", ["-1.00", "-0.00000001", "-0"])
def test_ticks_negative_rejected_naming_value(text):
    with pytest.raises(OffGridError, match=rf"BTCUSDT: qty '{text}' is negative"):
        parse_qty(SPOT, text)
    with pytest.raises(OffGridError, match=rf"'{text}' is negative"):
        parse_levels(SPOT, [(text, "1.0")])


@pytest.mark.parametrize("text", ["", " 1.0", "1_000", "1.0.0", "abc", "١٢", "1" * 70])
def test_ticks_junk_rejected_naming_value(text):
    with pytest.raises(OffGridError, match="BTCUSDT: price"):
        parse_price(SPOT, text)


def test_ticks_zero_price_rejected():
    with pytest.raises(OffGridError, match=r"price '0.00000000' must be > 0"):
        parse_levels(SPOT, [("0.00000000", "1.00000000")])


def test_ticks_value_beyond_int64_rejected():
    with pytest.raises(OffGridError, match="does not fit int64"):
        parse_qty(SPOT, "100000000000.00000000")


def test_ticks_grid_from_sizes_non_power_of_ten_tick():
    grid = grid_from_sizes("BTCUSDT", "0.10", "0.001", price_decimals=2)

    assert (grid.tick_units, grid.lot_units, grid.qty_decimals) == (10, 1, 3)
    assert parse_price(grid, "63947.40") == 639474
    assert format_price(grid, 639474) == "63947.40"
    assert parse_levels(grid, [("63947.4", "0.109")]) == [(639474, 109)]
    with pytest.raises(OffGridError, match=r"BTCUSDT: price '63947.405' is off the grid"):
        parse_price(grid, "63947.405")
    with pytest.raises(OffGridError, match=r"price '63947.41' is off the 0.10 grid"):
        parse_price(grid, "63947.41")


def test_ticks_grid_from_sizes_rejects_bad_sizes():
    with pytest.raises(ValueError, match="'tick_size' must be > 0, was '0'"):
        grid_from_sizes("X", "0", "1")
    with pytest.raises(ValueError, match="need more decimals"):
        grid_from_sizes("X", "0.001", "1", price_decimals=2)


@given(st.integers(0, 2**63 - 1), st.integers(0, 12))
def test_ticks_format_then_parse_is_identity(units, decimals):
    grid = TickGrid("P", decimals, decimals)

    assert parse_qty(grid, format_qty(grid, units)) == units
    assert parse_levels(grid, [(format_price(grid, units or 1), format_qty(grid, units))]) == [
        (units or 1, units)
    ]


def _checked(grid: TickGrid, what: str, text: str) -> int | str:
    """The exact Decimal path alone (mm.ticks._to_units): units, or the error's text."""
    from mm.ticks import _to_units

    decimals = grid.price_decimals if what == "price" else grid.qty_decimals
    step = grid.tick_units if what == "price" else grid.lot_units
    try:
        units = _to_units(grid.symbol, what, text, decimals)
    except OffGridError as e:
        return str(e)
    if what == "price" and units == 0:
        return f"{grid.symbol}: price {text!r} must be > 0"
    if units % step:
        return f"{grid.symbol}: {what} {text!r} is off the {grid.tick_size if what == 'price' else grid.lot_size} grid"
    return units // step


@given(st.one_of(st.from_regex(r"\A[0-9]{0,20}(\.[0-9]{0,6})?\Z"),
                 st.integers(0, 10**20).map(str), st.text(alphabet="0123456789.-e+ ٣", max_size=24)),
       st.integers(0, 4), st.sampled_from([1, 5]))
def test_ticks_single_value_fast_path_equals_checked_path(text, decimals, step):
    grid = TickGrid("P", decimals, decimals, step, step)
    for what, parse in (("price", parse_price), ("qty", parse_qty)):
        try:
            got: int | str = parse(grid, text)
        except OffGridError as e:
            got = str(e)
        assert got == _checked(grid, what, text)


@pytest.mark.parametrize("text", ["9223372036854775808", "9999999999999999999"])
def test_ticks_single_value_beyond_int64_without_a_dot_rejected(text):
    grid = TickGrid("P", 0, 0)
    for parse in (parse_price, parse_qty):
        with pytest.raises(OffGridError, match="does not fit int64"):
            parse(grid, text)
    assert parse_qty(grid, "9223372036854775807") == 2**63 - 1
