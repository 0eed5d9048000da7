"""Binance's local order book procedure (snapshot + buffered diffs, gap detection, resync), pure.

Two rule sets, named as in `shared/protocols/BINANCE.md` §1.3:
- SPOT: drop a diff with `u <= lastUpdateId`; the first applied one has `U <= lastUpdateId+1 <= u`;
  then each `U == previous u + 1` (a diff that overlaps, `U <= previous u`, still applies: levels
  are absolute). `classify`.
- FUTURES (USD-M, COIN-M; their diffs carry `pu`): drop a diff with `u < lastUpdateId` (strict: a
  diff whose `u` equals the snapshot's id is the first one applied); the first applied one has
  `U <= lastUpdateId <= u`; then each `pu == previous u`. Ids are global across symbols, so `U`
  continuity means nothing there: only `pu` links diffs. `classify_futures`.

`BookSync` is the per-symbol state machine the book process drives. Not synced (start, or after
a gap / a crossed book): every diff is buffered and `needs_snapshot` is True; the caller fetches a
snapshot and hands it to `on_snapshot`, which loads it and replays the buffer through the rules.
The buffer keeps the diff that broke the sequence and everything after it, so no diff later
than the next snapshot is lost. The book is cleared the moment it becomes invalid: quote nothing
from a book that is not synced.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

from mm.book import L2Book

Levels = list[tuple[int, int]]  # (px_tick, qty_lot); qty 0 removes the level
NO_PREV_ID = -1  # prev_final_id of a spot diff: the venue sends no `pu`
DEFAULT_MAX_BUFFER = 100_000  # diffs held while waiting for a snapshot


class Sync(enum.Enum):
    APPLY = "apply"  # continues our sequence
    STALE = "stale"  # already covered by the snapshot or the last applied diff: drop
    GAP = "gap"  # updates were missed: resync from a snapshot


class Market(enum.Enum):
    SPOT = "spot"  # U/u continuity
    FUTURES = "futures"  # pu continuity (USD-M, COIN-M)


class Outcome(enum.Enum):
    APPLIED = "applied"  # diff applied; the book is valid
    BUFFERED = "buffered"  # held until a snapshot arrives
    STALE = "stale"  # dropped: already in the book
    GAP = "gap"  # updates missed: book invalid, needs a snapshot
    CROSSED = "crossed"  # bid >= ask after a diff or snapshot: book invalid, needs a snapshot
    LOADED = "loaded"  # snapshot loaded, buffered diffs replayed, book valid
    IGNORED = "ignored"  # snapshot not newer than the valid book: kept the book


def classify(last_id: int, first_id: int, final_id: int) -> Sync:
    """SPOT rule, for the first diff after the snapshot and every later one alike."""
    if final_id <= last_id:
        return Sync.STALE
    if first_id <= last_id + 1 <= final_id:
        return Sync.APPLY
    return Sync.GAP


def classify_futures(
    last_id: int, first_id: int, final_id: int, prev_final_id: int, is_first: bool
) -> Sync:
    """FUTURES rule. `is_first`: no diff applied since the snapshot whose id is `last_id`."""
    if is_first:
        if final_id < last_id:
            return Sync.STALE
        return Sync.APPLY if first_id <= last_id else Sync.GAP
    if prev_final_id == last_id:
        return Sync.APPLY
    return Sync.STALE if final_id <= last_id else Sync.GAP


def market_of(prev_final_id: int) -> Market:
    return Market.FUTURES if prev_final_id >= 0 else Market.SPOT


class BookSync:
    """One symbol's book and its sync state. Counters are totals since construction."""

    __slots__ = (
        "symbol",
        "market",
        "book",
        "last_id",
        "is_synced",
        "_is_first",
        "_buffer",
        "max_buffer",
        "updates",
        "gaps",
        "resyncs",
        "crossed",
        "stale",
        "snapshots",
        "snapshots_ignored",
        "buffer_dropped",
        "last_problem",
        "price_text",
    )

    def __init__(
        self,
        symbol: str,
        market: Market | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        self.symbol = symbol
        self.market = market  # None: decided by the first diff (prev_final_id >= 0: FUTURES)
        self.book = L2Book(symbol)
        self.last_id = -1  # id of the last update in the book (snapshot or applied diff)
        self.is_synced = False
        self._is_first = False  # synced, no diff applied since the snapshot
        self._buffer: deque[tuple[int, int, int, Levels, Levels]] = deque()
        self.max_buffer = max_buffer
        self.updates = 0  # diffs applied
        self.gaps = 0
        self.resyncs = 0  # times the book was thrown away for a new snapshot
        self.crossed = 0
        self.stale = 0  # diffs dropped as already covered
        self.snapshots = 0  # snapshots loaded
        self.snapshots_ignored = 0
        self.buffer_dropped = 0  # oldest buffered diffs dropped at max_buffer
        self.last_problem = ""  # why the book was last invalidated, for the shell's log line
        self.price_text: Callable[[int], str] | None = None  # ticks as the venue writes prices, once known

    @property
    def needs_snapshot(self) -> bool:
        """True while the book is invalid: the caller should fetch a snapshot (once per episode)."""
        return not self.is_synced

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def on_diff(
        self, first_id: int, final_id: int, prev_final_id: int, bids: Levels, asks: Levels
    ) -> Outcome:
        """One depth diff (Binance U, u, pu or NO_PREV_ID, absolute levels)."""
        market = self.market
        if market is None:
            market = self.market = market_of(prev_final_id)
        if not self.is_synced:
            self._hold(first_id, final_id, prev_final_id, bids, asks)
            return Outcome.BUFFERED
        if market is Market.SPOT:
            verdict = classify(self.last_id, first_id, final_id)
        else:
            verdict = classify_futures(
                self.last_id, first_id, final_id, prev_final_id, self._is_first
            )
        if verdict is Sync.APPLY:
            book = self.book
            book.apply(bids, asks)
            self.last_id = final_id
            self._is_first = False
            self.updates += 1
            if book.is_crossed():
                self._on_crossed(f"after update {final_id}")
                self._hold(first_id, final_id, prev_final_id, bids, asks)
                return Outcome.CROSSED
            return Outcome.APPLIED
        if verdict is Sync.STALE:
            self.stale += 1
            return Outcome.STALE
        self.gaps += 1
        self.last_problem = (
            f"book {self.symbol}: gap after update {self.last_id}: next diff U={first_id} "
            f"u={final_id} pu={prev_final_id} ({self.market.value} rule)"
        )
        self._invalidate()
        self._hold(first_id, final_id, prev_final_id, bids, asks)
        return Outcome.GAP

    def on_snapshot(self, last_id: int, bids: Levels, asks: Levels) -> Outcome:
        """A REST depth snapshot (`lastUpdateId`, levels): load it and replay the buffered diffs.

        While the book is valid, a snapshot that is not newer than it is ignored; a newer one
        replaces it (the diffs after it then sync against it as after any snapshot).
        """
        if self.is_synced and last_id <= self.last_id:
            self.snapshots_ignored += 1
            return Outcome.IGNORED
        book = self.book
        book.load_snapshot(bids, asks)
        self.snapshots += 1
        self.last_id = last_id
        if book.is_crossed():
            self._on_crossed(f"in snapshot {last_id}")
            return Outcome.CROSSED
        self.is_synced = True
        self._is_first = True
        pending = self._buffer
        self._buffer = deque()
        outcome = Outcome.LOADED
        for first_id, final_id, prev_final_id, diff_bids, diff_asks in pending:
            result = self.on_diff(first_id, final_id, prev_final_id, diff_bids, diff_asks)
            if result is Outcome.GAP or result is Outcome.CROSSED:
                outcome = result  # the rest of `pending` is buffered again by on_diff
        return outcome if not self.is_synced else Outcome.LOADED

    def _on_crossed(self, where: str) -> None:
        bid_px = self.book.best_bid()[0]
        ask_px = self.book.best_ask()[0]
        self.crossed += 1
        text = self.price_text
        prices = (f"bid {bid_px} >= ask {ask_px} (ticks)" if text is None
                  else f"bid {text(bid_px)} >= ask {text(ask_px)}")
        self.last_problem = f"book {self.symbol}: crossed {where}: {prices}"
        self._invalidate()

    def _invalidate(self) -> None:
        self.is_synced = False
        self._is_first = False
        self.resyncs += 1
        self.book.clear()

    def _hold(
        self, first_id: int, final_id: int, prev_final_id: int, bids: Levels, asks: Levels
    ) -> None:
        buffer = self._buffer
        if len(buffer) >= self.max_buffer:
            buffer.popleft()
            self.buffer_dropped += 1
        buffer.append((first_id, final_id, prev_final_id, bids, asks))
