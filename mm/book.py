"""The full L2 order book of one symbol, in int ticks (price) and lots (quantity).

Each side is a dict `px_tick -> qty_lot` holding every level, plus a sorted list of only the
best prices (the "near" list, about NEAR_LEVELS of them) kept in step by bisection. A diff's
many changes deep in the book then cost a dict operation and one comparison; a quantity change
touches only the dict; only a level added or removed near the top moves the short list. Both
lists are ascending: the best bid is the last bid, the best ask the first ask.

Invariant per side: near == sorted(p for p in dict if p >= bid_floor) (asks: p <= ask_ceiling),
and every stored qty is > 0. The bound is fixed when the list is refilled from the dict (it ran
below NEAR_LOW levels, or a read wants more levels than it holds) or trimmed (above NEAR_HIGH),
and is unbounded (every level near) when the side has few levels. Quantities are absolute; 0
removes the level, and removing an unknown level is normal (it lay beyond the snapshot's depth).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `mm book` does not pay numpy's import
    import numpy as np

BID = 1
ASK = -1
NEAR_LEVELS = 128  # levels kept sorted after a refill or trim
NEAR_LOW = 48  # refill from the dict below this many
NEAR_HIGH = 256  # trim back to NEAR_LEVELS above this many
_NO_FLOOR = -(2**63)  # below every int64 price: every bid is near
_NO_CEILING = 2**63  # above every int64 price: every ask is near


class L2Book:
    __slots__ = (
        "symbol",
        "_bid_qty",
        "_ask_qty",
        "_bid_keys",
        "_ask_keys",
        "_bid_floor",
        "_ask_ceiling",
        "refills",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bid_qty: dict[int, int] = {}
        self._ask_qty: dict[int, int] = {}
        self._bid_keys: list[int] = []  # near bids, ascending; best bid last
        self._ask_keys: list[int] = []  # near asks, ascending; best ask first
        self._bid_floor = _NO_FLOOR
        self._ask_ceiling = _NO_CEILING
        self.refills = 0  # near lists rebuilt from the dicts (a full sort each)

    def clear(self) -> None:
        self._bid_qty.clear()
        self._ask_qty.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()
        self._bid_floor = _NO_FLOOR
        self._ask_ceiling = _NO_CEILING

    def load_snapshot(
        self, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]
    ) -> None:
        """Replace the whole book; zero-quantity levels are skipped, a repeated price keeps the last."""
        self._bid_qty = {px: qty for px, qty in bids if qty}
        self._ask_qty = {px: qty for px, qty in asks if qty}
        self._refill_bids(NEAR_LEVELS)
        self._refill_asks(NEAR_LEVELS)

    def apply(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        """Set absolute quantities level by level; qty 0 removes the level."""
        if bids:
            qty_of = self._bid_qty
            keys = self._bid_keys
            floor = self._bid_floor
            for px, qty in bids:
                if qty:
                    if px >= floor and px not in qty_of:
                        insort(keys, px)
                    qty_of[px] = qty
                elif qty_of.pop(px, None) is not None and px >= floor:
                    del keys[bisect_left(keys, px)]
            if len(keys) < NEAR_LOW:
                if floor != _NO_FLOOR:
                    self._refill_bids(NEAR_LEVELS)
            elif len(keys) > NEAR_HIGH:
                del keys[: len(keys) - NEAR_LEVELS]
                self._bid_floor = keys[0]
        if asks:
            qty_of = self._ask_qty
            keys = self._ask_keys
            ceiling = self._ask_ceiling
            for px, qty in asks:
                if qty:
                    if px <= ceiling and px not in qty_of:
                        insort(keys, px)
                    qty_of[px] = qty
                elif qty_of.pop(px, None) is not None and px <= ceiling:
                    del keys[bisect_left(keys, px)]
            if len(keys) < NEAR_LOW:
                if ceiling != _NO_CEILING:
                    self._refill_asks(NEAR_LEVELS)
            elif len(keys) > NEAR_HIGH:
                del keys[NEAR_LEVELS:]
                self._ask_ceiling = keys[-1]

    def _refill_bids(self, n: int) -> None:
        self.refills += 1
        keys = sorted(self._bid_qty)
        if len(keys) > n:
            del keys[: len(keys) - n]
            self._bid_floor = keys[0]
        else:
            self._bid_floor = _NO_FLOOR
        self._bid_keys = keys

    def _refill_asks(self, n: int) -> None:
        self.refills += 1
        keys = sorted(self._ask_qty)
        if len(keys) > n:
            del keys[n:]
            self._ask_ceiling = keys[-1]
        else:
            self._ask_ceiling = _NO_CEILING
        self._ask_keys = keys

    def _near_bids(self, n: int) -> list[int]:
        """The near bid list, refilled first when a read wants more levels than it holds."""
        if n > len(self._bid_keys) and self._bid_floor != _NO_FLOOR:
            self._refill_bids(max(n, NEAR_LEVELS))
        return self._bid_keys

    def _near_asks(self, n: int) -> list[int]:
        if n > len(self._ask_keys) and self._ask_ceiling != _NO_CEILING:
            self._refill_asks(max(n, NEAR_LEVELS))
        return self._ask_keys

    def best_bid(self) -> tuple[int, int] | None:
        keys = self._bid_keys
        if not keys:
            return None
        px = keys[-1]
        return px, self._bid_qty[px]

    def best_ask(self) -> tuple[int, int] | None:
        keys = self._ask_keys
        if not keys:
            return None
        px = keys[0]
        return px, self._ask_qty[px]

    def is_crossed(self) -> bool:
        """True when crossed OR locked (best bid >= best ask); an empty side is never crossed."""
        return bool(self._bid_keys and self._ask_keys and self._bid_keys[-1] >= self._ask_keys[0])

    def depth(self, side: int) -> int:
        """Number of levels on one side (BID / ASK)."""
        return len(self._bid_qty) if side == BID else len(self._ask_qty)

    def top(
        self,
        n: int,
        bid_px: np.ndarray,
        bid_qty: np.ndarray,
        ask_px: np.ndarray,
        ask_qty: np.ndarray,
    ) -> tuple[int, int]:
        """Fill the caller's int64 arrays best-first with up to n levels; return (n_bids, n_asks).

        Entries past the returned counts are left as they were.
        """
        keys = self._bid_keys
        if n > len(keys) and self._bid_floor != _NO_FLOOR:
            self._refill_bids(max(n, NEAR_LEVELS))
            keys = self._bid_keys
        prices = keys[: -n - 1 : -1] if n > 0 else []
        n_bids = len(prices)
        if n_bids:
            bid_px[:n_bids] = prices
            qty_of = self._bid_qty
            bid_qty[:n_bids] = [qty_of[px] for px in prices]
        keys = self._ask_keys
        if n > len(keys) and self._ask_ceiling != _NO_CEILING:
            self._refill_asks(max(n, NEAR_LEVELS))
            keys = self._ask_keys
        prices = keys[:n] if n > 0 else []
        n_asks = len(prices)
        if n_asks:
            ask_px[:n_asks] = prices
            qty_of = self._ask_qty
            ask_qty[:n_asks] = [qty_of[px] for px in prices]
        return n_bids, n_asks

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        """Up to n (px_tick, qty_lot) levels of one side (BID=1 / ASK=-1), best first."""
        if side == BID:
            qty_of = self._bid_qty
            prices = self._near_bids(n)[: -n - 1 : -1] if n > 0 else []
        elif side == ASK:
            qty_of = self._ask_qty
            prices = self._near_asks(n)[:n] if n > 0 else []
        else:
            raise ValueError(f"book {self.symbol}: side must be 1 (bid) or -1 (ask), was {side}")
        return [(px, qty_of[px]) for px in prices]

    def __repr__(self) -> str:
        return (
            f"L2Book({self.symbol!r}, bids={len(self._bid_qty)}, asks={len(self._ask_qty)}, "
            f"best_bid={self.best_bid()}, best_ask={self.best_ask()})"
        )

