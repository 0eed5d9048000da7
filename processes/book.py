"""Book builder: feed messages -> the venue's sync procedure (mm/book_sync.py) -> top-N levels in
a shared-memory seqlock slot, trades into a shared-memory ring, and a small BookChanged notice.

One notice per drained burst (the Disruptor's end-of-batch): the quoter always reads the newest
book, never a queue of stale ones.

Replay lockstep: the book is where the round trip of each event closes. At a feed `Barrier` it
publishes, passes the barrier on, and reads no more market data until the quoter reports the
barrier cleared (over its own `barrier` channel): by then signal, risk and gateway have handled
every consequence of the event, and nothing of the next one has touched the shared book.
"""

from __future__ import annotations

import logging
import struct
import sys
import time
from typing import Any

import numpy as np

from ipc.endpoints import shm_name
from ipc.messages import (
    LOCKSTEP_ACK_EVERY,
    Barrier,
    BarrierDone,
    BookChanged,
    BookSnapshot,
    BookTicker,
    DepthDiff,
    FeedMsg,
    SnapshotRequest,
    Trade,
)
from ipc.ring import RingWriter
from ipc.seqlock import SeqlockWriter
from ipc.shm_layout import TRADE_DTYPE, book_top_dtype
from ipc.sockets import Codec, send
from mm.stages.book import BookStep
from processes.actor import Actor, actor_main
from processes.metrics import StageMetrics

log = logging.getLogger(__name__)

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
        md = self.critical_subscriber("md", [b"md."])
        self.md_input = self.add_input(md, Codec(FeedMsg), self.on_market_data, eos_from="feed")
        self.pub = self.critical_publisher("book")
        self.snapshot_push = self.sockets.push("feedctl")
        self.step = BookStep(cfg, time.monotonic_ns())
        self.topic = f"book.{self.symbol}".encode()
        # the top levels as Python lists the step fills (levels past its counts keep what they held,
        # as in the slot), then the whole body written with one struct.pack_into: a list into a
        # numpy slice costs a conversion per array, a field store a record lookup per field
        self._levels = tuple([0] * self.depth for _ in range(4))
        self._body = struct.Struct(_int64_record_format(self.top_writer.body_dtype))
        self._body_bytes = memoryview(self.top_writer.body).cast("B")
        self._recoveries_logged = self._mismatches_logged = 0
        self.event_time = cfg.pipeline.mode == "replay"
        self.lockstep = self.event_time and cfg.replay.lockstep
        self._barrier_open = 0  # lockstep: the barrier passed on and not yet cleared (0: none)
        if self.lockstep:
            self.add_input(self.critical_pull("barrier", "quoter"), Codec(BarrierDone), self.on_barrier_cleared)

    @property
    def sync(self) -> Any:
        return self.step.sync

    def on_market_data(self, topic: bytes, msg: Any) -> None:
        step = self.step
        match msg:
            case DepthDiff():
                step.on_diff(msg.first_id, msg.final_id, msg.prev_final_id, msg.bids, msg.asks, msg.ts_recv_ns,
                             msg.ts_feed_ns, self._clock_ns(msg))
            case BookSnapshot():
                step.on_snapshot(msg.last_id, msg.bids, msg.asks, msg.ts_recv_ns, msg.ts_feed_ns, self._clock_ns(msg))
            case Trade():
                self.trade_ring.push((msg.trade_id, msg.px_tick, msg.qty_lot, msg.taker_side,
                                      msg.ts_event_ns, msg.ts_recv_ns))
                step.on_trade()
            case BookTicker():
                step.on_ticker()
            case Barrier():  # replay lockstep: publish what came before, pass it on, wait
                self._publish()
                send(self.pub.sock, self.topic, msg)
                if self.lockstep:
                    self._barrier_open = msg.seq
                    self.pause_input(self.md_input)
            case _:
                log.warning("book: unexpected %s on md", type(msg).__name__)
        if step.recoveries != self._recoveries_logged:
            self._recoveries_logged = step.recoveries
            log.info("book %s: synced again after %.1f ms", self.symbol, step.recover_ms_last)
        if step.shadow_mismatches != self._mismatches_logged:
            self._mismatches_logged = step.shadow_mismatches
            log.error("book %s: live book differs from the REST snapshot: resync", self.symbol)

    def on_barrier_cleared(self, topic: bytes, msg: Any) -> None:
        if msg.seq != self._barrier_open:
            log.warning("book: barrier %d cleared while %d was open", msg.seq, self._barrier_open)
            return
        self._barrier_open = 0
        self.resume_input(self.md_input)
        if msg.seq % LOCKSTEP_ACK_EVERY == 0:
            send(self.snapshot_push, b"feedctl", msg)

    def on_peer_died(self, peer: str, now_ns: int) -> None:
        if self._barrier_open:
            log.error("replay: %s died while barrier %d was open: stopping", peer, self._barrier_open)
            self.clean_stop = False
            self._barrier_open = 0
            self.resume_input(self.md_input)
            self.request_stop()

    def _clock_ns(self, msg: Any) -> int:
        """The recovery timer's clock: the capture's in replay (deterministic), else this machine's."""
        return msg.ts_recv_ns if self.event_time else time.monotonic_ns()

    def act_once(self, now_ns: int) -> None:
        if not self.lockstep:  # in lockstep only a barrier publishes: what the stages see is one event's
            self._publish()

    def _publish(self) -> None:
        if not self.step.has_news():
            return
        levels = self._levels
        published = self.step.publish(*levels)
        assert published is not None
        ts_book_ns = time.time_ns()
        self.mark_forwarded(ts_book_ns)
        bid_px, bid_qty, ask_px, ask_qty = levels
        self.top_writer.begin()  # until commit, readers retry
        self._body.pack_into(self._body_bytes, 0, published.update_id, published.ts_recv_ns, published.ts_feed_ns,
                             ts_book_ns, published.n_bids, published.n_asks, *bid_px, *bid_qty, *ask_px, *ask_qty)
        seq = self.top_writer.commit()
        send(self.pub.sock, self.topic, BookChanged(symbol=self.symbol, seq=seq, update_id=published.update_id,
                                                    ts_recv_ns=published.ts_recv_ns, ts_feed_ns=published.ts_feed_ns,
                                                    ts_book_ns=ts_book_ns))
        self.msgs_out += 1

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        if peer == "feed":  # a restarted feed is a new stream: sync again from its snapshot
            log.warning("book: the feed restarted: resync from its next snapshot")
            self.step.on_feed_restarted()

    def on_timer(self, now_ns: int) -> None:
        if self.state.value == "starting":
            return
        reason = self.step.snapshot_request(now_ns, stopping=self.stop_requested)
        if reason is not None:
            send(self.snapshot_push, b"feedctl", SnapshotRequest(symbol=self.symbol, reason=reason,
                                                                 ts_ns=time.time_ns()))

    def stage_report(self) -> dict[str, Any]:
        return self.step.report()

    def export_metrics(self, metrics: StageMetrics) -> None:
        metrics.add(metrics.book_resyncs, self.sync.resyncs)
        metrics.add(metrics.book_gaps, self.sync.gaps)
        metrics.add(metrics.book_crossed, self.sync.crossed)

    def send_end_of_stream(self, now_ns: int) -> None:
        self._publish()
        send(self.pub.sock, self.topic, self.end_of_stream())

    def stats(self) -> dict[str, Any]:
        return self.step.stats()

    def close(self) -> None:
        super().close()
        for writer in (getattr(self, "top_writer", None), getattr(self, "trade_ring", None)):
            if writer is not None:
                writer.close(unlink=True)


def _int64_record_format(dtype: np.dtype) -> str:
    """The struct format of a record of int64 fields and int64 arrays, packed in field order (the
    book top's layout, ipc/shm_layout.py); refused by name when the layout is anything else."""
    codes = []
    at = 0
    for name in dtype.names:
        field, offset = dtype.fields[name][:2]
        base, shape = field.subdtype if field.subdtype else (field, ())
        if base != np.dtype("<i8") or offset != at:
            raise ValueError(f"book top layout {dtype}: field {name!r} is not a packed little-endian int64")
        count = int(np.prod(shape)) if shape else 1
        codes.append(f"{count}q")
        at += 8 * count
    if at != dtype.itemsize:
        raise ValueError(f"book top layout {dtype}: {dtype.itemsize} bytes, the fields {at}")
    return "<" + "".join(codes)


def main(argv: list[str] | None = None) -> int:
    return actor_main(Book, argv)


if __name__ == "__main__":
    sys.exit(main())
