"""A Hyperliquid coin's book over a capture (`mm book`): every `l2Book` push is the whole top of
the book (20 levels a side, no sequence number, so no gap to find), and the book is the newest push
that passed the frame checks of `mm.hyperliquid_frames.apply_book` (sorted, not crossed, sizes and
order counts > 0, on the grid). A refused push is counted by reason and the previous book stays; a
push older than the book (venue time) is stale and skipped. Levels are kept as the venue wrote them.

A capture holds no `meta` reply, so the coin's `szDecimals` is unknown: pushes are checked on the
finest grid any Hyperliquid number is written on (`CAPTURE_DECIMALS`), which still refuses NaN,
negative and over-precise values.
"""

from __future__ import annotations

from collections import Counter

from mm.hyperliquid_frames import SPOT_MAX_DECIMALS, Dropped, WsBook, apply_book
from mm.ticks import TickGrid

CAPTURE_DECIMALS = SPOT_MAX_DECIMALS  # no price or size has more decimals (HYPERLIQUID.md §2)


class HyperliquidBook:
    """The newest valid `l2Book` push of one coin, with what was refused."""

    def __init__(self, coin: str) -> None:
        self.coin = coin
        self._grids = {coin: TickGrid(coin, CAPTURE_DECIMALS, CAPTURE_DECIMALS)}
        self.bids: list[tuple[str, str]] = []  # best first, the venue's text
        self.asks: list[tuple[str, str]] = []
        self.time_ms = 0  # venue time of the book shown
        self.updates = 0  # pushes applied
        self.stale = 0  # pushes older than the book shown
        self.refused: Counter[str] = Counter()  # pushes refused, by Dropped.reason
        self.last_error = ""
        self.last_refused = False  # the newest push was refused: the book shown is older than the venue's
        self.trades = 0

    def apply(self, book: WsBook) -> str:
        """Apply one push; return its outcome: "applied", "stale" or the refusal's reason."""
        if book.time < self.time_ms:
            self.stale += 1
            return "stale"
        outcome = apply_book(book, self._grids, ts_recv_ns=0)  # only its verdict is kept
        if isinstance(outcome, Dropped):
            self.refused[outcome.reason] += 1
            self.last_error = outcome.detail
            self.last_refused = True
            return outcome.reason
        bid_levels, ask_levels = book.levels
        self.bids = [(level.px, level.sz) for level in bid_levels]
        self.asks = [(level.px, level.sz) for level in ask_levels]
        self.time_ms = book.time
        self.updates += 1
        self.last_refused = False
        return "applied"

    @property
    def is_synced(self) -> bool:
        return self.updates > 0 and not self.last_refused

    def result(self, depth: int) -> dict:
        return {
            "bids": [list(level) for level in self.bids[:depth]],
            "asks": [list(level) for level in self.asks[:depth]],
            "venue": "hyperliquid",
            "updates": self.updates,
            "gaps": 0,
            "resyncs": 0,
            "crossed": self.refused["crossed"],
            "stale": self.stale,
            "invalid": sum(self.refused.values()),
            "refused": dict(sorted(self.refused.items())),
            "last_error": self.last_error,
            "trades": self.trades,
            "time_ms": self.time_ms,
            "synced": self.is_synced,
        }
