"""Book builder: feed messages -> the venue's sync procedure (mm/book_sync.py) -> top-N levels in
a shared-memory seqlock slot, trades into a shared-memory ring, and a small BookChanged notice.

One notice per drained burst (the Disruptor's end-of-batch): the quoter always reads the newest
book, never a queue of stale ones.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from ipc.endpoints import shm_name
from ipc.messages import (
    Barrier,
    BookChanged,
    BookSnapshot,
    BookTicker,
    DepthDiff,
    EndOfStream,
    FeedMsg,
    SnapshotRequest,
    Trade,
)
from ipc.ring import RingWriter
from ipc.seqlock import SeqlockWriter
from ipc.shm_layout import TRADE_DTYPE, book_top_dtype
from ipc.sockets import Codec, send
from mm.book_sync import BookSync
from processes.actor import Actor, actor_main
from processes.metrics import StageMetrics

log = logging.getLogger(__name__)

SNAPSHOT_RETRY_NS = 1_000_000_000  # ask again if a requested snapshot has not come within 1 s
LOG_EVERY_NS = 50_000_000  # plots: at most 20 top-of-book rows a second
LOG_MAX_ROWS = 500_000


class Book(Actor):
    name = "book"
    consumers = {"book": ("signal", "quoter")}
    forward_after = ("feed",)
    downstream = ("signal", "quoter")

    def setup(self) -> None:
        cfg = self.config
        self.symbol = cfg.instrument.symbol
        self.depth = cfg.book.depth
        self.top_writer = SeqlockWriter.create(shm_name(cfg, "book", "top"), book_top_dtype(self.depth))
        self.trade_ring = RingWriter.create(shm_name(cfg, "book", "trades"), cfg.book.trade_ring_capacity, TRADE_DTYPE)
        md = self.sockets.subscriber(["md"], [b"md."])
        self.add_input(md, Codec(FeedMsg), self.on_market_data, eos_from="feed")
        self.pub = self.add_publisher("book")
        self.snapshot_push = self.sockets.push("feedctl")
        self.sync = BookSync(self.symbol)
        self.topic = f"book.{self.symbol}".encode()
        # views into the shared slot, bound once: the book writes its top levels straight into them
        body = self.top_writer.body
        self._bid_px, self._bid_qty = body["bid_px"][0], body["bid_qty"][0]
        self._ask_px, self._ask_qty = body["ask_px"][0], body["ask_qty"][0]
        self._stamps = {name: body[name] for name in ("update_id", "ts_recv_ns", "ts_feed_ns", "ts_book_ns",
                                                      "n_bids", "n_asks")}
        self._dirty_cause: DepthDiff | BookSnapshot | None = None
        self._snapshot_asked_ns = 0
        self.trades = 0
        self.tickers = 0
        self.notices = 0
        self.mid_log: list[list[int | None]] = []
        self._shadow: BookSnapshot | None = None
        self._shadow_asked_ns = 0
        self._next_shadow_ns = time.monotonic_ns() + int(self.config.book.shadow_every_s * 1e9)
        self.shadow_matches = self.shadow_mismatches = self.shadow_skipped = 0
        self._unsynced_since_ns = 0
        self.recoveries = 0
        self.recover_ms_last = self.recover_ms_max = 0.0
        self._last_top: tuple[int | None, int | None] = (None, None)
        self._last_log_ns = 0

    def on_market_data(self, topic: bytes, msg: Any) -> None:
        match msg:
            case DepthDiff():
                before = self.sync.updates
                self.sync.on_diff(msg.first_id, msg.final_id, msg.prev_final_id, msg.bids, msg.asks)
                if self.sync.updates != before:
                    self._dirty_cause = msg
                    if self._shadow is not None:
                        self._check_shadow()
                self._track_recovery()
            case BookSnapshot() if self._shadow_asked_ns and not self.sync.needs_snapshot:
                self._shadow_asked_ns = 0  # the shadow snapshot: compared, never loaded
                self._shadow = msg
                self._check_shadow()
            case BookSnapshot():
                self.sync.on_snapshot(msg.last_id, msg.bids, msg.asks)
                self._snapshot_asked_ns = 0
                if not self.sync.needs_snapshot:
                    self._dirty_cause = msg
                self._track_recovery()
            case Trade():
                self.trade_ring.push((msg.trade_id, msg.px_tick, msg.qty_lot, msg.taker_side,
                                      msg.ts_event_ns, msg.ts_recv_ns))
                self.trades += 1
            case BookTicker():
                self.tickers += 1
            case Barrier():  # replay lockstep: publish what came before, then pass it on
                self.act_once(0)
                send(self.pub.sock, self.topic, msg)
            case _:
                log.warning("book: unexpected %s on md", type(msg).__name__)

    def act_once(self, now_ns: int) -> None:
        cause = self._dirty_cause
        if cause is None or self.sync.needs_snapshot:
            return
        self._dirty_cause = None
        update_id = cause.final_id if isinstance(cause, DepthDiff) else cause.last_id
        stamps = self._stamps
        self.top_writer.begin()  # until commit, readers retry: the levels below are written in place
        n_bids, n_asks = self.sync.book.top(self.depth, self._bid_px, self._bid_qty, self._ask_px, self._ask_qty)
        ts_book_ns = time.time_ns()
        stamps["update_id"][0] = update_id
        stamps["ts_recv_ns"][0] = cause.ts_recv_ns
        stamps["ts_feed_ns"][0] = cause.ts_feed_ns
        stamps["ts_book_ns"][0] = ts_book_ns
        stamps["n_bids"][0] = n_bids
        stamps["n_asks"][0] = n_asks
        seq = self.top_writer.commit()
        self._log_top(cause.ts_recv_ns, n_bids, n_asks)
        send(self.pub.sock, self.topic, BookChanged(symbol=self.symbol, seq=seq, update_id=update_id,
                                                    ts_recv_ns=cause.ts_recv_ns, ts_feed_ns=cause.ts_feed_ns,
                                                    ts_book_ns=ts_book_ns))
        self.msgs_out += 1
        self.notices += 1

    def _track_recovery(self) -> None:
        """Time from losing sync (gap, crossed book) to being synced again: the report's recover_ms."""
        if self.sync.needs_snapshot:
            if not self._unsynced_since_ns and self.sync.updates:
                self._unsynced_since_ns = time.monotonic_ns()
        elif self._unsynced_since_ns:
            recover_ms = (time.monotonic_ns() - self._unsynced_since_ns) / 1e6
            self._unsynced_since_ns = 0
            self.recoveries += 1
            self.recover_ms_last = recover_ms
            self.recover_ms_max = max(self.recover_ms_max, recover_ms)
            log.info("book %s: synced again after %.1f ms", self.symbol, recover_ms)

    def _check_shadow(self) -> None:
        """Compare the live book with the shadow REST snapshot once both stand at the same update id."""
        shadow = self._shadow
        assert shadow is not None
        if self.sync.last_id < shadow.last_id:
            return  # the diffs up to the snapshot are still on their way
        self._shadow = None
        if self.sync.last_id > shadow.last_id:
            self.shadow_skipped += 1  # the snapshot was older than the book when it came: no common point
            return
        n = self.depth
        bids = sorted(shadow.bids, reverse=True)[:n]
        asks = sorted(shadow.asks)[:n]
        book = self.sync.book
        if book.levels(1, n) == [tuple(level) for level in bids] and book.levels(-1, n) == [tuple(a) for a in asks]:
            self.shadow_matches += 1
            return
        self.shadow_mismatches += 1
        log.error("book %s: live book differs from the REST snapshot at update %d: resync", self.symbol,
                  shadow.last_id)
        self._reset_sync()
        self.sync.on_snapshot(shadow.last_id, shadow.bids, shadow.asks)  # the venue's word, at the same id
        self._dirty_cause = shadow

    def _log_top(self, ts_ns: int, n_bids: int, n_asks: int) -> None:
        """Top of book for the report's plots: on change, at most one row per LOG_EVERY_NS."""
        top = (int(self._bid_px[0]) if n_bids else None, int(self._ask_px[0]) if n_asks else None)
        if top != self._last_top and ts_ns - self._last_log_ns >= LOG_EVERY_NS and len(self.mid_log) < LOG_MAX_ROWS:
            self.mid_log.append([ts_ns, top[0], top[1]])
            self._last_top, self._last_log_ns = top, ts_ns

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        if peer == "feed":  # a restarted feed is a new stream: sync again from its snapshot
            log.warning("book: the feed restarted: resync from its next snapshot")
            self._reset_sync()

    def _reset_sync(self) -> None:
        """Throw the book away (keeping the counters) and wait for a snapshot."""
        old = self.sync
        self.sync = BookSync(self.symbol)
        self.sync.resyncs, self.sync.gaps = old.resyncs + 1, old.gaps
        self.sync.updates, self.sync.crossed, self.sync.stale = old.updates, old.crossed, old.stale
        self._snapshot_asked_ns = 0

    def _maybe_ask_shadow(self, now_ns: int) -> None:
        every_ns = int(self.config.book.shadow_every_s * 1e9)
        if not every_ns or self.config.pipeline.mode not in ("paper", "live") or self.sync.needs_snapshot:
            return
        if self._shadow_asked_ns and now_ns - self._shadow_asked_ns < 10 * SNAPSHOT_RETRY_NS:
            return
        if now_ns < self._next_shadow_ns:
            return
        self._next_shadow_ns = now_ns + every_ns
        self._shadow_asked_ns = now_ns
        send(self.snapshot_push, b"feedctl", SnapshotRequest(symbol=self.symbol, reason="shadow", ts_ns=time.time_ns()))

    def on_timer(self, now_ns: int) -> None:
        self._maybe_ask_shadow(now_ns)
        if not self.sync.needs_snapshot or self.stop_requested or self.state.value == "starting":
            return
        if self._snapshot_asked_ns and now_ns - self._snapshot_asked_ns < SNAPSHOT_RETRY_NS:
            return
        self._snapshot_asked_ns = now_ns
        reason = "start" if self.sync.resyncs == 0 and self.sync.updates == 0 else "resync"
        send(self.snapshot_push, b"feedctl", SnapshotRequest(symbol=self.symbol, reason=reason, ts_ns=time.time_ns()))

    def stage_report(self) -> dict[str, Any]:
        sync = self.sync
        return {"synced": not sync.needs_snapshot, "updates": sync.updates, "gaps": sync.gaps,
                "resyncs": sync.resyncs, "crossed": sync.crossed, "stale": sync.stale,
                "last_update_id": sync.last_id, **self._shadow_and_recovery()}

    def _shadow_and_recovery(self) -> dict[str, Any]:
        return {"shadow_matches": self.shadow_matches, "shadow_mismatches": self.shadow_mismatches,
                "shadow_skipped": self.shadow_skipped, "recoveries": self.recoveries,
                "recover_ms_last": round(self.recover_ms_last, 3), "recover_ms_max": round(self.recover_ms_max, 3)}

    def export_metrics(self, metrics: StageMetrics) -> None:
        metrics.add(metrics.book_resyncs, self.sync.resyncs)
        metrics.add(metrics.book_gaps, self.sync.gaps)
        metrics.add(metrics.book_crossed, self.sync.crossed)

    def send_end_of_stream(self, now_ns: int) -> None:
        self.act_once(now_ns)
        send(self.pub.sock, self.topic, EndOfStream(process=self.name, sent=self.msgs_out, ts_ns=time.time_ns()))

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

    def close(self) -> None:
        super().close()
        for writer in (getattr(self, "top_writer", None), getattr(self, "trade_ring", None)):
            if writer is not None:
                writer.close(unlink=True)


def main(argv: list[str] | None = None) -> int:
    return actor_main(Book, argv)


if __name__ == "__main__":
    sys.exit(main())
