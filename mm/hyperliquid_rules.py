"""Hyperliquid order rules a local venue enforces (HYPERLIQUID.md §2, §5, §6), pure.

Price: at most 5 significant figures and at most `6 - szDecimals` decimals (perps; 8 for spot),
an integer price is always valid. Size: at most `szDecimals` decimals. Perp orders need $10 of
notional. Nonces: per signer the 100 highest are kept; a new one must exceed the smallest of them,
be unused, and lie within (now - 2 days, now + 1 day).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MIN_ORDER_VALUE_USD = Decimal(10)
NONCE_KEEP = 100
NONCE_PAST_MS = 2 * 86_400_000
NONCE_FUTURE_MS = 86_400_000

TICK_ERROR = "Price must be divisible by tick size."
SIZE_ERROR = "Order has invalid size."
MIN_VALUE_ERROR = "Order must have minimum value of $10."


def parse_decimal(text: object) -> Decimal | None:
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def price_is_valid(px: Decimal, sz_decimals: int, is_spot: bool = False) -> bool:
    if px <= 0:
        return False
    if px == px.to_integral_value():
        return True
    max_decimals = (8 if is_spot else 6) - sz_decimals
    normal = px.normalize()
    decimals = -normal.as_tuple().exponent
    significant = len(normal.as_tuple().digits)
    return decimals <= max_decimals and significant <= 5


def size_is_valid(sz: Decimal, sz_decimals: int) -> bool:
    return sz > 0 and -sz.normalize().as_tuple().exponent <= sz_decimals


def order_error(px: Decimal, sz: Decimal, sz_decimals: int, is_spot: bool = False) -> str | None:
    """The venue's error text for an order that breaks the number rules, None when it passes."""
    if not price_is_valid(px, sz_decimals, is_spot):
        return TICK_ERROR
    if not size_is_valid(sz, sz_decimals):
        return SIZE_ERROR
    if not is_spot and px * sz < MIN_ORDER_VALUE_USD:
        return MIN_VALUE_ERROR
    return None


class NonceSet:
    """The 100 highest nonces of one signer (§6)."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: list[int] = []

    def check(self, nonce: int, now_ms: int) -> str | None:
        """The refusal text, or None (and the nonce is recorded)."""
        if not now_ms - NONCE_PAST_MS < nonce < now_ms + NONCE_FUTURE_MS:
            return f"Invalid nonce: nonce {nonce} is outside the allowed window around {now_ms}"
        if nonce in self._kept or (len(self._kept) >= NONCE_KEEP and nonce <= self._kept[0]):
            return f"Invalid nonce: duplicate nonce {nonce}" if nonce in self._kept else (
                f"Invalid nonce: nonce {nonce} is not larger than the lowest of the last {NONCE_KEEP}")
        self._kept.append(nonce)
        self._kept.sort()
        if len(self._kept) > NONCE_KEEP:
            del self._kept[0]
        return None


class AddressBudget:
    """Per-address request budget (§5): 10 000 + 1 per USDC traded; cancels get a higher cap;
    once exhausted one request per 10 s."""

    __slots__ = ("cum_volume", "initial", "last_over_ms", "used")

    def __init__(self, initial: int = 10_000) -> None:
        self.initial = initial
        self.cum_volume = Decimal(0)
        self.used = 0
        self.last_over_ms = -10_000

    @property
    def cap(self) -> int:
        return self.initial + int(self.cum_volume)

    def spend(self, n: int, now_ms: int, is_cancel: bool = False) -> str | None:
        cap = min(self.cap + 100_000, 2 * self.cap) if is_cancel else self.cap
        if self.used + n > cap:
            if now_ms - self.last_over_ms < 10_000:
                return (f"Too many cumulative requests sent ({self.used} > {self.cap}) for cumulative volume "
                        f"traded ${self.cum_volume}. Place taker orders to free up 1 request per USDC traded.")
            self.last_over_ms = now_ms
        self.used += n
        return None
