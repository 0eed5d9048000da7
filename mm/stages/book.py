"""The book's step: the venue's sync procedure (mm/book_sync.py) over feed events, the decision to
publish the top N levels (once per burst, the Disruptor's end-of-batch), when to ask for a
snapshot (start, resync, retry), the shadow-snapshot check in paper and live, and the recovery
timing. The shell writes what `publish` fills into the shared-memory slot and sends the notice;
the in-process engine hands it to the signal and quoter steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mm.book_sync import BookSync
from mm.config import Config

SNAPSHOT_RETRY_NS = 1_000_000_000  # ask again if a requested snapshot has not come within 1 s
LOG_EVERY_NS = 50_000_000  # plots: at most 20 top-of-book rows a second
LOG_MAX_ROWS = 500_000


class Published:
    """What one publish wrote besides the levels: the update it shows and the cause's stamps."""

    __slots__ = ("update_id", "ts_recv_ns", "ts_feed_ns", "n_bids", "n_asks")

    def __init__(self, update_id: int, ts_recv_ns: int, ts_feed_ns: int, n_bids: int, n_asks: int) -> None:
        self.update_id, self.ts_recv_ns, self.ts_feed_ns = update_id, ts_recv_ns, ts_feed_ns
        self.n_bids, self.n_asks = n_bids, n_asks


class BookStep:
    def __init__(self, config: Config, now_ns: int = 0) -> None:
        self.config = config
        self.symbol = config.instrument.symbol
        self.depth = config.book.depth
        self.sync = BookSync(self.symbol)
        self.shadow_every_ns = int(config.book.shadow_every_s * 1e9) if config.pipeline.mode in ("paper", "live") else 0
        self._dirty: tuple[int, int, int] | None = None  # (update id, ts_recv_ns, ts_feed_ns) of the cause
        self._snapshot_asked_ns = 0
        self.trades = self.tickers = self.notices = 0
        self.mid_log: list[list[int | None]] = []
        self._shadow: tuple[int, list, list, int, int] | None = None  # a snapshot waiting for the book to reach it
        self._shadow_asked_ns = 0
        self._next_shadow_ns = now_ns + self.shadow_every_ns
        self.shadow_matches = self.shadow_mismatches = self.shadow_skipped = 0
        self._unsynced_since_ns = 0
        self.recoveries = 0
        self.recover_ms_last = self.recover_ms_max = 0.0
        self._last_top: tuple[int | None, int | None] = (None, None)
        self._last_log_ns = 0

    # ---- events -----------------------------------------------------------------------------------

    def on_diff(self, first_id: int, final_id: int, prev_final_id: int, bids: list, asks: list, ts_recv_ns: int,
                ts_feed_ns: int, now_ns: int) -> None:
        before = self.sync.updates
        self.sync.on_diff(first_id, final_id, prev_final_id, bids, asks)
        if self.sync.updates != before:
            self._dirty = (final_id, ts_recv_ns, ts_feed_ns)
            if self._shadow is not None:
                self._check_shadow()
        self._track_recovery(now_ns)

    def on_snapshot(self, last_id: int, bids: list, asks: list, ts_recv_ns: int, ts_feed_ns: int,
                    now_ns: int) -> None:
        if self._shadow_asked_ns and not self.sync.needs_snapshot:
            self._shadow_asked_ns = 0  # the shadow snapshot: compared, never loaded
            self._shadow = (last_id, bids, asks, ts_recv_ns, ts_feed_ns)
            self._check_shadow()
            return
        self.sync.on_snapshot(last_id, bids, asks)
        self._snapshot_asked_ns = 0
        if not self.sync.needs_snapshot:
            self._dirty = (last_id, ts_recv_ns, ts_feed_ns)
        self._track_recovery(now_ns)

    def on_trade(self) -> None:
        self.trades += 1

    def on_ticker(self) -> None:
        self.tickers += 1

    def on_feed_restarted(self) -> None:
        """A restarted feed is a new stream: sync again from its next snapshot (nothing to throw away,
        and no resync to count, while no book was ever built)."""
        if self.sync.updates or not self.sync.needs_snapshot:
            self._reset_sync()

    # ---- decisions --------------------------------------------------------------------------------

    def has_news(self) -> bool:
        """The book changed since the last publish and is in sync: publish it."""
        return self._dirty is not None and not self.sync.needs_snapshot

    def publish(self, bid_px: np.ndarray, bid_qty: np.ndarray, ask_px: np.ndarray,
                ask_qty: np.ndarray) -> Published | None:
        """Write the top levels into the arrays if the book changed and is in sync since the last
        publish; None when there is nothing new to show."""
        cause = self._dirty
        if cause is None or self.sync.needs_snapshot:
            return None
        self._dirty = None
        n_bids, n_asks = self.sync.book.top(self.depth, bid_px, bid_qty, ask_px, ask_qty)
        self.notices += 1
        self._log_top(cause[1], int(bid_px[0]) if n_bids else None, int(ask_px[0]) if n_asks else None)
        return Published(cause[0], cause[1], cause[2], n_bids, n_asks)

    def snapshot_request(self, now_ns: int, *, stopping: bool) -> str | None:
        """The reason to ask the feed for a snapshot now ("start", "resync", "shadow"), or None."""
        if self._shadow_due(now_ns):
            return "shadow"
        if not self.sync.needs_snapshot or stopping:
            return None
        if self._snapshot_asked_ns and now_ns - self._snapshot_asked_ns < SNAPSHOT_RETRY_NS:
            return None
        self._snapshot_asked_ns = now_ns
        return "start" if self.sync.resyncs == 0 and self.sync.updates == 0 else "resync"

    def _shadow_due(self, now_ns: int) -> bool:
        if not self.shadow_every_ns or self.sync.needs_snapshot:
            return False
        if self._shadow_asked_ns and now_ns - self._shadow_asked_ns < 10 * SNAPSHOT_RETRY_NS:
            return False
        if now_ns < self._next_shadow_ns:
            return False
        self._next_shadow_ns = now_ns + self.shadow_every_ns
        self._shadow_asked_ns = now_ns
        return True

    def _track_recovery(self, now_ns: int) -> None:
        """Time from losing sync (gap, crossed book) to being synced again: the report's recover_ms."""
        if self.sync.needs_snapshot:
            if not self._unsynced_since_ns and self.sync.updates:
                self._unsynced_since_ns = now_ns
        elif self._unsynced_since_ns:
            recover_ms = (now_ns - self._unsynced_since_ns) / 1e6
            self._unsynced_since_ns = 0
            self.recoveries += 1
            self.recover_ms_last = recover_ms
            self.recover_ms_max = max(self.recover_ms_max, recover_ms)

    def _check_shadow(self) -> None:
        """Compare the live book with the shadow REST snapshot once both stand at the same update id;
        on a difference the snapshot (the venue's word at the same id) replaces the book."""
        assert self._shadow is not None
        last_id, shadow_bids, shadow_asks, ts_recv_ns, ts_feed_ns = self._shadow
        if self.sync.last_id < last_id:
            return  # the diffs up to the snapshot are still on their way
        self._shadow = None
        if self.sync.last_id > last_id:
            self.shadow_skipped += 1  # the snapshot was older than the book when it came: no common point
            return
        n = self.depth
        bids = sorted(shadow_bids, reverse=True)[:n]
        asks = sorted(shadow_asks)[:n]
        book = self.sync.book
        if book.levels(1, n) == [tuple(level) for level in bids] and book.levels(-1, n) == [tuple(a) for a in asks]:
            self.shadow_matches += 1
            return
        self.shadow_mismatches += 1
        self._reset_sync()
        self.sync.on_snapshot(last_id, shadow_bids, shadow_asks)
        self._dirty = (last_id, ts_recv_ns, ts_feed_ns)

    def _reset_sync(self) -> None:
        """Throw the book away (keeping the counters) and wait for a snapshot."""
        old = self.sync
        self.sync = BookSync(self.symbol)
        self.sync.resyncs, self.sync.gaps = old.resyncs + 1, old.gaps
        self.sync.updates, self.sync.crossed, self.sync.stale = old.updates, old.crossed, old.stale
        self._snapshot_asked_ns = 0

    def _log_top(self, ts_ns: int, bid: int | None, ask: int | None) -> None:
        """Top of book for the report's plots: on change, at most one row per LOG_EVERY_NS."""
        top = (bid, ask)
        if top != self._last_top and ts_ns - self._last_log_ns >= LOG_EVERY_NS and len(self.mid_log) < LOG_MAX_ROWS:
            self.mid_log.append([ts_ns, bid, ask])
            self._last_top, self._last_log_ns = top, ts_ns

    # ---- figures ----------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        sync = self.sync
        return {"synced": not sync.needs_snapshot, "updates": sync.updates, "gaps": sync.gaps,
                "resyncs": sync.resyncs, "crossed": sync.crossed, "stale": sync.stale,
                "last_update_id": sync.last_id, **self._shadow_and_recovery()}

    def _shadow_and_recovery(self) -> dict[str, Any]:
        return {"shadow_matches": self.shadow_matches, "shadow_mismatches": self.shadow_mismatches,
                "shadow_skipped": self.shadow_skipped, "recoveries": self.recoveries,
                "recover_ms_last": round(self.recover_ms_last, 3), "recover_ms_max": round(self.recover_ms_max, 3)}

    def stats(self) -> dict[str, Any]:
        book = self.sync.book
        best_bid = book.best_bid()
        best_ask = book.best_ask()
        return {
            "updates": self.sync.updates, "gaps": self.sync.gaps, "resyncs": self.sync.resyncs,
            "crossed": self.sync.crossed, "stale": self.sync.stale, "trades": self.trades,
            "notices": self.notices, "mid_log": self.mid_log, **self._shadow_and_recovery(),
            "top": {"bid_px_tick": best_bid[0] if best_bid else None, "bid_qty_lot": best_bid[1] if best_bid else None,
                    "ask_px_tick": best_ask[0] if best_ask else None, "ask_qty_lot": best_ask[1] if best_ask else None},
        }
