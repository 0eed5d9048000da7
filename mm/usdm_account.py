"""USD-M futures account in one-way position mode (positionSide BOTH), and the dead-man's switch.

Pure: prices and quantities are floats in quote/base units as the venue shows them; times are ms
passed in by the caller. Fills use average-entry accounting: a fill against the position realises
(price - entry) * closed * sign on it; what is left after the position crosses zero opens at price.
Margin is cross: initial margin = |notional at mark| / leverage, unrealized PnL counts in the margin
balance, available = margin balance - initial margin of positions - initial margin of open orders.
"""

from __future__ import annotations

MAX_LEVERAGE = 125


class UsdmPosition:
    """One symbol's one-way position: signed amount (> 0 long), entry price, leverage."""

    def __init__(self, symbol: str, leverage: int = 20) -> None:
        self.symbol = symbol
        self.amount = 0.0
        self.entry_price = 0.0
        self.leverage = check_leverage(leverage)

    def apply_fill(self, side: str, price: float, qty: float) -> float:
        """Apply a fill (side "BUY" / "SELL"); return the realized PnL of this fill (the event's `rp`)."""
        if side not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, was {side!r}")
        if not (price > 0 and qty > 0):
            raise ValueError(f"fill price and qty must be > 0, were {price} and {qty}")
        signed = qty if side == "BUY" else -qty
        realized = 0.0
        if self.amount == 0 or (self.amount > 0) == (signed > 0):
            new_amount = self.amount + signed
            self.entry_price = (abs(self.amount) * self.entry_price + qty * price) / abs(new_amount)
            self.amount = new_amount
            return realized
        closed = min(qty, abs(self.amount))
        direction = 1.0 if self.amount > 0 else -1.0
        realized = (price - self.entry_price) * closed * direction
        new_amount = self.amount + signed
        if abs(new_amount) < 1e-12:
            self.amount, self.entry_price = 0.0, 0.0
        elif (new_amount > 0) != (self.amount > 0):
            self.amount, self.entry_price = new_amount, price
        else:
            self.amount = new_amount
        return realized

    def unrealized(self, mark: float) -> float:
        return (mark - self.entry_price) * self.amount

    def notional(self, mark: float) -> float:
        return self.amount * mark

    def initial_margin(self, mark: float) -> float:
        return abs(self.notional(mark)) / self.leverage


def check_leverage(leverage: int) -> int:
    if not (isinstance(leverage, int) and 1 <= leverage <= MAX_LEVERAGE):
        raise ValueError(f"leverage must be an integer in 1..{MAX_LEVERAGE}, was {leverage!r}")
    return leverage


class UsdmAccount:
    """A USDT wallet with one-way positions; fees and realized PnL settle into the wallet."""

    def __init__(self, wallet: float, asset: str = "USDT") -> None:
        self.asset = asset
        self.wallet = wallet
        self.positions: dict[str, UsdmPosition] = {}

    def position(self, symbol: str) -> UsdmPosition:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = UsdmPosition(symbol)
        return pos

    def set_leverage(self, symbol: str, leverage: int) -> int:
        self.position(symbol).leverage = check_leverage(leverage)
        return leverage

    def apply_fill(self, symbol: str, side: str, price: float, qty: float, fee: float) -> float:
        realized = self.position(symbol).apply_fill(side, price, qty)
        self.wallet += realized - fee
        return realized

    def unrealized(self, marks: dict[str, float]) -> float:
        return sum(p.unrealized(marks[s]) for s, p in self.positions.items() if p.amount)

    def margin_balance(self, marks: dict[str, float]) -> float:
        return self.wallet + self.unrealized(marks)

    def position_initial_margin(self, marks: dict[str, float]) -> float:
        return sum(p.initial_margin(marks[s]) for s, p in self.positions.items() if p.amount)

    def available(self, marks: dict[str, float], open_order_notional: dict[str, float]) -> float:
        """Margin balance less the initial margin of positions and of open orders (|notional| by symbol)."""
        order_margin = sum(n / self.position(s).leverage for s, n in open_order_notional.items())
        return self.margin_balance(marks) - self.position_initial_margin(marks) - order_margin


class Countdown:
    """countdownCancelAll per symbol: arm(symbol, now, ms) (0 stops it); due(now) pops expired symbols."""

    def __init__(self) -> None:
        self._deadline_ms: dict[str, int] = {}

    def arm(self, symbol: str, now_ms: int, countdown_ms: int) -> None:
        if countdown_ms < 0:
            raise ValueError(f"countdownTime must be >= 0 ms, was {countdown_ms}")
        if countdown_ms == 0:
            self._deadline_ms.pop(symbol, None)
        else:
            self._deadline_ms[symbol] = now_ms + countdown_ms

    def due(self, now_ms: int) -> list[str]:
        expired = [s for s, d in self._deadline_ms.items() if d <= now_ms]
        for s in expired:
            del self._deadline_ms[s]
        return expired

    def next_deadline_ms(self) -> int | None:
        return min(self._deadline_ms.values(), default=None)
