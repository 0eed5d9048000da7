"""Risk's authoritative position and PnL, built from fills with average-cost accounting.

Internally money is kept in tick*lot units (a fill of q lots at p ticks costs p*q); it becomes
quote currency only when read (x tick_size x lot_size). Fees are kept apart from PnL:
total = realized + unrealized - fees (a negative fee is a rebate).
"""

from __future__ import annotations

import math


class Position:
    def __init__(self, tick_size: float, lot_size: float) -> None:
        if not (tick_size > 0 and lot_size > 0):
            raise ValueError(f"tick_size and lot_size must be > 0, were {tick_size} and {lot_size}")
        self._quote_per_tick_lot = tick_size * lot_size
        self._tick_size = tick_size
        self._lot_size = lot_size
        self.position_lot = 0  # signed: > 0 long, < 0 short
        self._cost_tick_lot = 0.0  # cost basis of |position| (always >= 0; 0 when flat)
        self._realized_tick_lot = 0.0
        self.fees_quote = 0.0
        self.traded_lot = 0
        self.fills = 0

    @property
    def avg_px_tick(self) -> float:
        """Average entry price of the open position; 0.0 when flat."""
        if self.position_lot == 0:
            return 0.0
        return self._cost_tick_lot / abs(self.position_lot)

    @property
    def realized_quote(self) -> float:
        return self._realized_tick_lot * self._quote_per_tick_lot

    def apply_fill(self, side: int, px_tick: int, qty_lot: int, fee_quote: float) -> None:
        """Add a fill (side +1 buy / -1 sell). A fill against the position realises
        (px - avg) * closed on it; what is left after the position crosses zero opens at px."""
        if side != 1 and side != -1:
            raise ValueError(f"fill side must be +1 or -1, was {side}")
        if qty_lot <= 0:
            raise ValueError(f"fill qty_lot must be > 0, was {qty_lot}")
        if px_tick <= 0:
            raise ValueError(f"fill px_tick must be > 0, was {px_tick}")
        if not math.isfinite(fee_quote):
            raise ValueError(f"fill fee_quote must be finite, was {fee_quote}")

        held_lot = abs(self.position_lot)
        if self.position_lot == 0 or (self.position_lot > 0) == (side > 0):
            self._cost_tick_lot += px_tick * qty_lot
        else:
            closed_lot = min(qty_lot, held_lot)
            if closed_lot == held_lot:
                closed_cost_tick_lot = self._cost_tick_lot  # exact on a full close
            else:
                closed_cost_tick_lot = self._cost_tick_lot * closed_lot / held_lot
            long_sign = 1 if self.position_lot > 0 else -1
            self._realized_tick_lot += long_sign * (px_tick * closed_lot - closed_cost_tick_lot)
            if closed_lot == held_lot:  # flat, or flipped: the rest opens at px
                self._cost_tick_lot = float(px_tick * (qty_lot - closed_lot))
            else:
                self._cost_tick_lot -= closed_cost_tick_lot
        self.position_lot += side * qty_lot
        self.fees_quote += fee_quote
        self.traded_lot += qty_lot
        self.fills += 1

    def state(self) -> tuple[int, float, float, float, int, int]:
        """(position_lot, cost_tick_lot, realized_tick_lot, fees_quote, traded_lot, fills): what a
        journal snapshot keeps; `restore` takes it back."""
        return (self.position_lot, self._cost_tick_lot, self._realized_tick_lot, self.fees_quote, self.traded_lot,
                self.fills)

    def restore(self, position_lot: int, cost_tick_lot: float, realized_tick_lot: float, fees_quote: float,
                traded_lot: int, fills: int) -> None:
        if cost_tick_lot < 0 or (position_lot == 0 and cost_tick_lot != 0):
            raise ValueError(f"position snapshot: cost basis {cost_tick_lot} does not fit position {position_lot}")
        self.position_lot, self._cost_tick_lot, self._realized_tick_lot = position_lot, cost_tick_lot, realized_tick_lot
        self.fees_quote, self.traded_lot, self.fills = fees_quote, traded_lot, fills

    def unrealized_quote(self, mark_px_tick: float) -> float:
        """PnL of the open position if it were closed at `mark_px_tick`."""
        if self.position_lot == 0:
            return 0.0
        long_sign = 1 if self.position_lot > 0 else -1
        value_tick_lot = abs(self.position_lot) * mark_px_tick
        return long_sign * (value_tick_lot - self._cost_tick_lot) * self._quote_per_tick_lot

    def snapshot(self, mark_px_tick: float) -> dict[str, float | int]:
        """Position and PnL in venue units: base currency, price, quote currency."""
        realized = self.realized_quote
        unrealized = self.unrealized_quote(mark_px_tick)
        return {
            "position_lot": self.position_lot,
            "position": self.position_lot * self._lot_size,
            "avg_px": self.avg_px_tick * self._tick_size,
            "realized": realized,
            "unrealized": unrealized,
            "fees": self.fees_quote,
            "total": realized + unrealized - self.fees_quote,
        }
