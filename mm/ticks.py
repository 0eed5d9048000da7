"""Exact decimal text <-> int ticks (price) and lots (quantity) on one symbol's grid.

A `TickGrid` says how the venue writes a symbol's numbers (`price_decimals`, `qty_decimals`:
Binance writes a fixed number of decimals per symbol and stream, e.g. "61234.56000000") and the
grid step in units of the last written decimal (`tick_units`, `lot_units`). So
`px_tick = value / tick_size` and `text = px_tick * tick_size` written with `price_decimals`
decimals: a round trip gives back the venue's text.

Where the venue's tick and lot sizes are known (config `tick_size`, `lot_size`), use
`grid_from_sizes`. Captures carry no exchangeInfo, so `infer_grid` takes the grid from the
number of decimals of the first price and quantity written for the symbol: the tick is one unit
of the last written decimal (0.00000001 for Binance spot, 0.01 for BTCUSDT USD-M). That grid is
finer than or equal to the real one, so every venue value fits exactly; a later value with
more (non-zero) decimals is off that grid and rejected.

Values must be finite, not negative, plain decimals; anything else raises `OffGridError`
naming the symbol and the value (a NaN or a negative is not on any grid).
"""

from __future__ import annotations

import math
import re
from decimal import Context, Decimal, InvalidOperation

import msgspec

from mm.errors import OffGridError

INT64_MAX = 2**63 - 1
MAX_TEXT_LEN = 64  # longer than any int64 number of units, at any decimals
_EXACT = Context(prec=2 * MAX_TEXT_LEN)  # scaleb never rounds at this precision


class TickGrid(msgspec.Struct, frozen=True):
    symbol: str
    price_decimals: int  # decimals the venue writes for prices
    qty_decimals: int  # decimals the venue writes for quantities
    tick_units: int = 1  # tick size in units of 10**-price_decimals
    lot_units: int = 1  # lot size in units of 10**-qty_decimals

    @property
    def tick_size(self) -> Decimal:
        return Decimal(self.tick_units).scaleb(-self.price_decimals)

    @property
    def lot_size(self) -> Decimal:
        return Decimal(self.lot_units).scaleb(-self.qty_decimals)


def decimals_of(text: str) -> int:
    """Number of decimals written: "61234.56000000" -> 8, "24" -> 0."""
    dot = text.find(".")
    return 0 if dot < 0 else len(text) - dot - 1


def infer_grid(symbol: str, price_text: str, qty_text: str) -> TickGrid:
    """Grid from how the venue writes one price and one quantity (see module docstring)."""
    for what, text in (("price", price_text), ("qty", qty_text)):
        _to_units(symbol, what, text, decimals_of(text))  # validates: NaN, negative, junk
    return TickGrid(symbol, decimals_of(price_text), decimals_of(qty_text))


def grid_from_sizes(
    symbol: str,
    tick_size: str,
    lot_size: str,
    price_decimals: int | None = None,
    qty_decimals: int | None = None,
) -> TickGrid:
    """Grid from the venue's tick and lot sizes (decimal strings, e.g. "0.01", "0.00001").

    `price_decimals` / `qty_decimals`: how the venue writes numbers (default: as many decimals
    as the size has, after dropping trailing zeros).
    """
    tick = _positive_size(symbol, "tick_size", tick_size)
    lot = _positive_size(symbol, "lot_size", lot_size)
    price_decimals = _size_decimals(tick) if price_decimals is None else price_decimals
    qty_decimals = _size_decimals(lot) if qty_decimals is None else qty_decimals
    tick_units = tick.scaleb(price_decimals)
    lot_units = lot.scaleb(qty_decimals)
    if tick_units != tick_units.to_integral_value() or lot_units != lot_units.to_integral_value():
        raise ValueError(
            f"{symbol}: tick_size {tick_size} / lot_size {lot_size} need more decimals than "
            f"the venue writes ({price_decimals} / {qty_decimals})"
        )
    return TickGrid(symbol, price_decimals, qty_decimals, int(tick_units), int(lot_units))


def parse_price(grid: TickGrid, text: str) -> int:
    """Price text -> px_tick; a price must be > 0. Plain digits at the grid's decimals take one
    `int()` (_fast_units); anything else the exact checked path, which raises naming the value."""
    decimals = grid.price_decimals
    units = _fast_units(text, -decimals - 1 if decimals else None)
    if units <= 0 or units > INT64_MAX:  # 19 digits without a dot may not fit
        units = _to_units(grid.symbol, "price", text, decimals)
        if units == 0:
            raise OffGridError(f"{grid.symbol}: price {text!r} must be > 0")
    return units if grid.tick_units == 1 else _on_grid(grid, "price", text, units, grid.tick_units)


def parse_qty(grid: TickGrid, text: str) -> int:
    """Quantity text -> qty_lot; 0 is allowed (a diff's "remove this level"). Fast path as in parse_price."""
    decimals = grid.qty_decimals
    units = _fast_units(text, -decimals - 1 if decimals else None)
    if units < 0 or units > INT64_MAX:
        units = _to_units(grid.symbol, "qty", text, decimals)
    return units if grid.lot_units == 1 else _on_grid(grid, "qty", text, units, grid.lot_units)


def parse_levels(grid: TickGrid, levels: list[tuple[str, str]]) -> list[tuple[int, int]]:
    """[[price, qty], ...] text -> [(px_tick, qty_lot), ...]; raises OffGridError on any bad value.

    Hot path, a few passes of C per diff side: the levels are joined into one "p,q,p,q" string
    that one regex checks (ASCII digits, exactly the grid's decimals, at most FAST_DIGITS digits so
    every value fits int64), the dots go and `int()` reads the integers. Anything else (fewer
    decimals written, a zero price, junk, an off-step value on a grid coarser than the last
    decimal) sends the list down the checked path, which converts what it can and raises naming
    the symbol and the bad value.
    """
    if not levels:
        return []
    pattern = _LEVELS_PATTERN.get((grid.price_decimals, grid.qty_decimals))
    if pattern is None:
        pattern = _levels_pattern(grid.price_decimals, grid.qty_decimals)
    try:
        text = ",".join(map(",".join, levels))
    except TypeError:
        return _parse_levels_checked(grid, levels)
    if pattern.fullmatch(text) is None:
        return _parse_levels_checked(grid, levels)
    units = list(map(int, text.replace(".", "").split(",")))  # validated above
    prices = units[0::2]
    qtys = units[1::2]
    if 0 in prices:
        return _parse_levels_checked(grid, levels)
    tick_units = grid.tick_units
    if tick_units != 1:
        if any(px % tick_units for px in prices):
            return _parse_levels_checked(grid, levels)
        prices = [px // tick_units for px in prices]
    lot_units = grid.lot_units
    if lot_units != 1:
        if any(qty % lot_units for qty in qtys):
            return _parse_levels_checked(grid, levels)
        qtys = [qty // lot_units for qty in qtys]
    return list(zip(prices, qtys))


def parse_sides(
    grid: TickGrid, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Both sides of a diff or snapshot at once: `parse_levels` of each, in one hot-path pass."""
    if not bids or not asks:
        return parse_levels(grid, bids), parse_levels(grid, asks)
    levels = parse_levels(grid, [*bids, *asks])
    n_bids = len(bids)
    return levels[:n_bids], levels[n_bids:]


def parse_json_sides(
    grid: TickGrid, bids: bytes, asks: bytes
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]] | None:
    """Both sides of a diff straight from the frame's JSON text (`[["p","q"],...]`, compact, as
    Binance writes it) -> [(px_tick, qty_lot), ...] each; None when either side is anything else
    (whitespace, numbers not strings, other decimals, a zero price, an off-step value), so the
    caller decodes the text into strings and takes `parse_sides`, which raises naming the value.

    The bytes never become str objects: one regex checks both sides (plain ASCII digits at
    exactly the grid's decimals, at most FAST_DIGITS digits), the brackets, quotes and dots are
    deleted in one `translate`, and `int()` reads each number.
    """
    pattern = _JSON_PATTERN.get((grid.price_decimals, grid.qty_decimals))
    if pattern is None:
        pattern = _json_levels_pattern(grid.price_decimals, grid.qty_decimals)
    if bids == b"[]":
        if asks == b"[]":
            return [], []
        text = asks
    elif asks == b"[]":
        text = bids
    else:
        text = bids[:-1] + b"," + asks[1:]
    if pattern.fullmatch(text) is None:
        return None
    units = list(map(int, text.translate(None, b'[]".').split(b",")))
    prices = units[0::2]
    qtys = units[1::2]
    if 0 in prices:
        return None
    tick_units = grid.tick_units
    if tick_units != 1:
        if any(px % tick_units for px in prices):
            return None
        prices = [px // tick_units for px in prices]
    lot_units = grid.lot_units
    if lot_units != 1:
        if any(qty % lot_units for qty in qtys):
            return None
        qtys = [qty // lot_units for qty in qtys]
    levels = list(zip(prices, qtys))
    if bids == b"[]":
        return [], levels
    if asks == b"[]":
        return levels, []
    n_bids = bids.count(b"]") - 1  # '"' is escaped inside JSON strings: every ']' closes a level
    return levels[:n_bids], levels[n_bids:]


FAST_DIGITS = 18  # every number of at most 18 digits fits int64
_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
_LEVELS_PATTERN: dict[tuple[int, int], re.Pattern[str]] = {}
_JSON_PATTERN: dict[tuple[int, int], re.Pattern[bytes]] = {}


def _levels_pattern(price_decimals: int, qty_decimals: int) -> re.Pattern[str]:
    """Regex of "p,q(,p,q)*", each value plain ASCII digits at exactly the given decimals and
    at most FAST_DIGITS digits in all (a grid of more decimals never takes the hot path)."""

    def number(decimals: int) -> str:
        if decimals >= FAST_DIGITS:
            return "(?!)"
        whole = rf"\d{{1,{FAST_DIGITS - decimals}}}"
        return rf"{whole}\.\d{{{decimals}}}" if decimals else whole

    px, qty = number(price_decimals), number(qty_decimals)
    pattern = re.compile(rf"{px},{qty}(?:,{px},{qty})*", re.ASCII)
    _LEVELS_PATTERN[(price_decimals, qty_decimals)] = pattern
    return pattern


def _json_levels_pattern(price_decimals: int, qty_decimals: int) -> re.Pattern[bytes]:
    """Regex of `[["p","q"](,["p","q"])*]`, values as in `_levels_pattern`."""

    def number(decimals: int) -> str:
        if decimals >= FAST_DIGITS:
            return "(?!)"
        whole = rf"[0-9]{{1,{FAST_DIGITS - decimals}}}"
        return rf"{whole}\.[0-9]{{{decimals}}}" if decimals else whole

    level = rf'\["{number(price_decimals)}","{number(qty_decimals)}"\]'
    pattern = re.compile(rf"\[{level}(?:,{level})*\]".encode())
    _JSON_PATTERN[(price_decimals, qty_decimals)] = pattern
    return pattern


def _parse_levels_checked(grid: TickGrid, levels: list[tuple[str, str]]) -> list[tuple[int, int]]:
    """parse_levels value by value: a plain value at the grid's decimals by one `int()`, any
    other through parse_price / parse_qty, which raise naming the symbol and the value."""
    price_decimals = grid.price_decimals
    qty_decimals = grid.qty_decimals
    tick_units = grid.tick_units
    lot_units = grid.lot_units
    px_dot = -price_decimals - 1 if price_decimals else None
    qty_dot = -qty_decimals - 1 if qty_decimals else None
    out = []
    append = out.append
    for px_text, qty_text in levels:
        px = _fast_units(px_text, px_dot)
        if px <= 0:
            px = parse_price(grid, px_text)
        elif tick_units != 1:
            px, off = divmod(px, tick_units)
            if off:
                px = parse_price(grid, px_text)  # raises, naming the value
        qty = _fast_units(qty_text, qty_dot)
        if qty < 0:
            qty = parse_qty(grid, qty_text)
        elif lot_units != 1:
            qty, off = divmod(qty, lot_units)
            if off:
                qty = parse_qty(grid, qty_text)
        append((px, qty))
    return out


def _fast_units(text: str, dot_from_end: int | None) -> int:
    """Units of the last written decimal, or -1 when `text` is not plain digits at those decimals
    (or has more digits than int64 surely holds): the caller then takes the checked path."""
    if not isinstance(text, str) or len(text) > FAST_DIGITS + 1:
        return -1
    if dot_from_end is None:
        return int(text) if text.isdigit() and text.isascii() else -1
    if len(text) <= -dot_from_end or text[dot_from_end] != ".":
        return -1
    digits = text[:dot_from_end] + text[dot_from_end + 1:]
    return int(digits) if digits.isdigit() and digits.isascii() else -1


def infer_grid_from_levels(symbol: str, levels: list[tuple[str, str]]) -> TickGrid:
    """The venue's tick size inferred from a depth snapshot: the greatest common divisor of every
    price written (a 1000-level snapshot shows the real tick; prices must sit on it). Quantities
    keep the finest grid the venue writes: a level's quantity sums many orders and was seen off
    the lot step of a 1000-level snapshot's common divisor (BTCUSDT 2024-08-09: 47.075936)."""
    if not levels:
        raise OffGridError(f"{symbol}: cannot infer tick and lot sizes from an empty snapshot")
    base = infer_grid(symbol, levels[0][0], levels[0][1])
    tick_units = 0
    for px_text, _ in levels:
        tick_units = math.gcd(tick_units, parse_price(base, px_text))
    return TickGrid(symbol, base.price_decimals, base.qty_decimals, tick_units or 1, 1)


def format_price(grid: TickGrid, px_tick: int) -> str:
    """px_tick -> the venue's text, with its number of decimals."""
    return _format_units(px_tick * grid.tick_units, grid.price_decimals)


def format_qty(grid: TickGrid, qty_lot: int) -> str:
    return _format_units(qty_lot * grid.lot_units, grid.qty_decimals)


def _format_units(units: int, decimals: int) -> str:
    if units < 0:
        raise ValueError(f"cannot write a negative venue number, was {units}")
    if not decimals:
        return str(units)
    digits = str(units).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def _to_units(symbol: str, what: str, text: str, decimals: int) -> int:
    """Exact value of `text` in units of 10**-decimals; OffGridError if not a whole number of them."""
    if (
        not isinstance(text, str)
        or not text.isascii()
        or not text.strip()
        or text != text.strip()
        or len(text) > MAX_TEXT_LEN
    ):
        raise OffGridError(f"{symbol}: {what} {text!r} is not a decimal number")
    lowered = text.lower()
    if "nan" in lowered or "inf" in lowered or "_" in text:
        raise OffGridError(f"{symbol}: {what} {text!r} is not a finite decimal number")
    if text.startswith("-") and _PLAIN_DECIMAL.fullmatch(text[1:]):
        raise OffGridError(f"{symbol}: {what} {text!r} is negative")
    if not _PLAIN_DECIMAL.fullmatch(text):  # no exponents, signs or spaces: venues write plain decimals
        raise OffGridError(f"{symbol}: {what} {text!r} is not a plain decimal number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise OffGridError(f"{symbol}: {what} {text!r} is not a decimal number") from None
    if value.is_signed() and value != 0 or text.startswith("-"):
        raise OffGridError(f"{symbol}: {what} {text!r} is negative")
    scaled = value.scaleb(decimals, context=_EXACT)
    if scaled != scaled.to_integral_value():
        raise OffGridError(
            f"{symbol}: {what} {text!r} is off the grid: more than {decimals} decimals"
        )
    if scaled.adjusted() > 18 or int(scaled) > INT64_MAX:
        raise OffGridError(f"{symbol}: {what} {text!r} does not fit int64 at {decimals} decimals")
    return int(scaled)


def _on_grid(grid: TickGrid, what: str, text: str, units: int, step_units: int) -> int:
    steps, rest = divmod(units, step_units)
    if rest:
        step = grid.tick_size if what == "price" else grid.lot_size
        raise OffGridError(f"{grid.symbol}: {what} {text!r} is off the {step} grid")
    return steps


def _positive_size(symbol: str, name: str, text: str) -> Decimal:
    try:
        size = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{symbol}: '{name}' must be a decimal number, was {text!r}") from None
    if not size.is_finite() or size <= 0:
        raise ValueError(f"{symbol}: '{name}' must be > 0, was {text!r}")
    return size


def _size_decimals(size: Decimal) -> int:
    exponent = size.normalize().as_tuple().exponent
    return max(0, -int(exponent))
