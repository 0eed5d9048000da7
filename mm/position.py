"""Risk's authoritative position and PnL, built from fills with average-cost accounting.

Money is in the instrument's settlement currency ("quote" in the names): the quote currency for a
linear instrument (spot, USD-M: a lot is an amount of the base coin), the base coin for an inverse
one (Binance COIN-M: a lot is a number of contracts, each worth `contract_size` of quote, so q
contracts at price P are worth q x contract_size / P coins, and a long gains q x contract_size x
(1/P_entry - 1/P_exit) coins). `notional` is that value, for the fees and the traded notional too.

Internally money is kept in tick*lot units (a fill of q lots at p ticks costs p*q; inverse: q/p,
lot per tick); it becomes the settlement currency only when read (x tick_size x lot_size; inverse:
x lot_size x contract_size / tick_size). Fees are kept apart from PnL:
total = realized + unrealized - fees (a negative fee is a rebate).
"""

from __future__ import annotations

import math

COINM_BTC_CONTRACT_USD = 100.0  # Binance COIN-M: a BTC contract's face value ...
COINM_CONTRACT_USD = 10.0  # ... and every other coin's


def contract_size(market: str, symbol: str) -> float:
    """The face value in quote of one contract of an inverse market (Binance COIN-M: 100 USD for the
    BTC contracts, 10 USD for every other coin's); 0.0 for a linear market, whose lot is base."""
    if market != "binance_coinm":
        return 0.0
    return COINM_BTC_CONTRACT_USD if symbol.upper().startswith("BTCUSD") else COINM_CONTRACT_USD


def notional(px_tick: int, qty_lot: int, tick_size: float, lot_size: float, contract_size: float = 0.0) -> float:
    """What qty_lot at px_tick is worth in the settlement currency: px x qty in quote (linear), or
    contracts x contract_size / px in the base coin (inverse: contract_size > 0)."""
    if contract_size > 0:
        return qty_lot * lot_size * contract_size / (px_tick * tick_size)
    return px_tick * qty_lot * tick_size * lot_size


class Position:
    def __init__(self, tick_size: float, lot_size: float, contract_size: float = 0.0) -> None:
        """`contract_size` > 0: an inverse instrument (see the module's note); 0: linear."""
        if not (tick_size > 0 and lot_size > 0):
            raise ValueError(f"tick_size and lot_size must be > 0, were {tick_size} and {lot_size}")
        if not (contract_size >= 0 and math.isfinite(contract_size)):
            raise ValueError(f"contract_size must be >= 0 (0: linear), was {contract_size}")
        self._is_inverse = contract_size > 0
        self.contract_size = contract_size
        self._quote_per_tick_lot = lot_size * contract_size / tick_size if self._is_inverse else tick_size * lot_size
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
        if self._is_inverse:  # the cost is in contracts per tick: the harmonic mean of the entries
            return abs(self.position_lot) / self._cost_tick_lot
        return self._cost_tick_lot / abs(self.position_lot)

    @property
    def realized_quote(self) -> float:
        return self._realized_tick_lot * self._quote_per_tick_lot

    def notional(self, px_tick: int, qty_lot: int) -> float:
        """What a fill of qty_lot at px_tick is worth, in the settlement currency."""
        return notional(px_tick, qty_lot, self._tick_size, self._lot_size, self.contract_size)

    def in_quote(self, amount: float, mark_px_tick: float) -> float:
        """An amount of the settlement currency in quote at `mark_px_tick` (risk's limits are in
        quote): itself for a linear instrument, coins x price for an inverse one."""
        return amount * mark_px_tick * self._tick_size if self._is_inverse else amount

    def apply_fill(self, side: int, px_tick: int, qty_lot: int, fee_quote: float) -> None:
        """Add a fill (side +1 buy / -1 sell). A fill against the position realises
        (px - avg) * closed on it (inverse: (1/avg - 1/px) * closed); what is left after the
        position crosses zero opens at px."""
        if side != 1 and side != -1:
            raise ValueError(f"fill side must be +1 or -1, was {side}")
        if qty_lot <= 0:
            raise ValueError(f"fill qty_lot must be > 0, was {qty_lot}")
        if px_tick <= 0:
            raise ValueError(f"fill px_tick must be > 0, was {px_tick}")
        if not math.isfinite(fee_quote):
            raise ValueError(f"fill fee_quote must be finite, was {fee_quote}")

        held_lot = abs(self.position_lot)
        if self._is_inverse:
            self._apply_inverse(side, px_tick, qty_lot, held_lot)
        elif self.position_lot == 0 or (self.position_lot > 0) == (side > 0):
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

    def _apply_inverse(self, side: int, px_tick: int, qty_lot: int, held_lot: int) -> None:
        """The cost basis and realised PnL of an inverse fill, in contracts per tick: a long that
        closes gains what its entry cost less what the close is worth (1/P falls as P rises)."""
        if self.position_lot == 0 or (self.position_lot > 0) == (side > 0):
            self._cost_tick_lot += qty_lot / px_tick
            return
        closed_lot = min(qty_lot, held_lot)
        closed_cost = self._cost_tick_lot if closed_lot == held_lot else self._cost_tick_lot * closed_lot / held_lot
        long_sign = 1 if self.position_lot > 0 else -1
        self._realized_tick_lot += long_sign * (closed_cost - closed_lot / px_tick)
        if closed_lot == held_lot:
            self._cost_tick_lot = (qty_lot - closed_lot) / px_tick
        else:
            self._cost_tick_lot -= closed_cost

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
        if self._is_inverse:
            if not mark_px_tick > 0:
                return 0.0  # no market to mark at yet
            return long_sign * (self._cost_tick_lot - abs(self.position_lot) / mark_px_tick) * self._quote_per_tick_lot
        value_tick_lot = abs(self.position_lot) * mark_px_tick
        return long_sign * (value_tick_lot - self._cost_tick_lot) * self._quote_per_tick_lot

    def total_quote(self, mark_px_tick: float) -> float:
        """`snapshot(mark_px_tick)["total"]`, the same sum, without building the snapshot: risk marks
        PnL on every order decision."""
        return self.realized_quote + self.unrealized_quote(mark_px_tick) - self.fees_quote

    def snapshot(self, mark_px_tick: float) -> dict[str, float | int]:
        """Position and PnL in venue units: base currency (inverse: contracts), price, the
        settlement currency (quote; inverse: the base coin)."""
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
