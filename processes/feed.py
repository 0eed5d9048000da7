"""Feed handler: the market source (built-in simulator, synthetic ladder, or capture files in
replay) -> md PUB.

Stamps every event with its receive time and `ts_feed_ns`; answers the book's snapshot
requests in-stream, so a snapshot is ordered with the diffs exactly as a venue's would be.
Starts streaming only when every peer has announced RUNNING (no slow joiner loses data).

Replay lockstep (deterministic replay): after each book-changing event, and before one that
follows trades, the feed sends a `Barrier` down both paths. The book and the gateway stop reading
market data at a barrier until every consequence of what came before (quotes, orders, fills) has
been handled (processes/book.py), so the same input gives the same orders and fills at any machine
speed. The feed itself runs ahead of them by at most LOCKSTEP_WINDOW barriers: the book reports
its progress every LOCKSTEP_ACK_EVERY barriers, so the next events already wait in the channel
when a barrier clears, and the feed is not a hop of the per-event round trip.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from ipc.messages import (
    LOCKSTEP_WINDOW,
    Barrier,
    BarrierDone,
    BookSnapshot,
    BookTicker,
    DepthDiff,
    FeedControl,
    FeedMsg,
    SnapshotRequest,
    Trade,
)
from ipc.sockets import Codec, send
from mm.config import md_readers
from mm.market_sim import MarketSim, SimDepth, SimTrade
from mm.synthetic import SyntheticLadder
from processes.actor import Actor, actor_main
from processes.replay_source import ReplaySource, replay_source

if TYPE_CHECKING:
    from processes.feed_stream import StreamRunner


log = logging.getLogger(__name__)


class Feed(Actor):
    name = "feed"

    def setup(self) -> None:
        readers = md_readers(self.config)
        self.consumers = {"md": readers}
        self.downstream = readers
        self.md = self.critical_publisher("md")
        self.add_input(self.sockets.pull("feedctl"), Codec(FeedControl), self.on_feed_control)
        self.symbol = self.config.instrument.symbol
        self.topic = f"md.{self.symbol}".encode()
        self.streaming = False
        self.exhausted = False
        self.sim: MarketSim | None = None
        self.ladder: SyntheticLadder | None = None
        self.events = 0
        self.snapshots = 0
        self._next_event_ns = 0  # wall clock of the next event to emit
        self.replay: ReplaySource | None = None
        self.stream: StreamRunner | None = None
        self._replay_iter: Any = None
        self._held: Any = None  # the next replay message, held back behind a barrier
        self._barrier_seq = 0
        self._barrier_cleared = 0  # the last barrier the book reported cleared
        self._since_barrier = 0
        self.barriers = 0
        self.tickers_skipped = 0
        self._replay_wall0 = 0
        self._replay_ts0 = 0

    # ---- source --------------------------------------------------------------------------------

    def _start_stream(self) -> None:
        now = time.time_ns()
        feed = self.config.feed
        if self.config.pipeline.mode == "replay":
            self._start_replay()
            return
        if self.config.pipeline.mode in ("paper", "live"):
            self._start_venue_stream()
            return
        if feed.synthetic_hz > 0:
            tick = float(self.config.instrument.tick_size)
            self.ladder = SyntheticLadder(mid_tick=int(round(self.config.sim.start_px / tick)))
            self._next_event_ns = now
        else:
            self.sim = MarketSim(self.config.sim, float(self.config.instrument.tick_size),
                                 float(self.config.instrument.lot_size), now)
        self.streaming = True
        log.info("streaming %s from %s", self.symbol, "synthetic ladder" if self.ladder else "simulator")
        self._send_snapshot("start")

    def _start_venue_stream(self) -> None:
        # imported here: the websocket clients (aiohttp) cost a simulated or replayed feed ~0.25 s of start-up
        from processes.feed_stream import INPROC, StreamRunner

        pull = self.sockets.ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.bind(INPROC)
        self.sockets.adopt(pull)
        self.add_input(pull, Codec(FeedMsg), self.on_stream_message)
        self.stream = StreamRunner(self.sockets.ctx, self.config)
        self.stream.start()
        self.streaming = True
        log.info("streaming %s from %s (snapshots from %s)", self.symbol, self.config.feed.ws_url,
                 self.config.feed.rest_url)

    def on_stream_message(self, topic: bytes, msg: Any) -> None:
        """Venue messages, stamped at receipt by the websocket client: republished as they are."""
        self._publish(msg)
        if isinstance(msg, BookSnapshot):
            self.snapshots += 1
        else:
            self.events += 1

    def _start_replay(self) -> None:
        self.replay = replay_source(self.config)
        self._replay_iter = self.replay.messages()
        self.streaming = True
        log.info("replaying %s from %d file(s) at %s", self.symbol, len(self.config.replay.files),
                 "max speed" if self.config.replay.speed == 0 else f"{self.config.replay.speed}x")

    def _emit_replay(self) -> None:
        """Send replay messages until the lockstep window is full, pacing is due, or the file ends."""
        lockstep = self.config.replay.lockstep
        speed = self.config.replay.speed
        sent = 0
        while sent < 256 and not self._window_full():
            msg = self._held if self._held is not None else next(self._replay_iter, None)
            self._held = None
            if msg is None:
                if self._since_barrier and lockstep:
                    self._send_barrier()
                    continue
                self.exhausted = True
                log.info("replay done: %d events, %d barriers, dropped %s", self.events, self.barriers,
                         dict(self.replay.dropped) if self.replay else {})
                self.request_stop()
                return
            if speed > 0:
                if not self._replay_wall0:
                    self._replay_wall0, self._replay_ts0 = time.time_ns(), msg.ts_recv_ns
                due = self._replay_wall0 + int((msg.ts_recv_ns - self._replay_ts0) / speed)
                if time.time_ns() < due:
                    self._held = msg
                    self._next_event_ns = due
                    return
            if isinstance(msg, BookTicker):
                self.tickers_skipped += 1  # the book keeps its own top; nothing downstream reads these
                continue
            changes_book = isinstance(msg, (DepthDiff, BookSnapshot))
            if lockstep and changes_book and self._since_barrier:
                self._send_barrier()  # trades before it: their fills must land first
                if self._window_full():
                    self._held = msg
                    return
            self._publish(msgspec.structs.replace(msg, ts_feed_ns=time.time_ns()))
            self.events += 1
            sent += 1
            self._since_barrier += 1
            if lockstep and changes_book:
                self._send_barrier()

    def _window_full(self) -> bool:
        return self._barrier_seq - self._barrier_cleared >= LOCKSTEP_WINDOW

    def _send_barrier(self) -> None:
        self._barrier_seq += 1
        self._since_barrier = 0
        self.barriers += 1
        send(self.md.sock, self.topic, Barrier(seq=self._barrier_seq, ts_ns=time.time_ns()))

    def on_peer_died(self, peer: str, now_ns: int) -> None:
        if self.replay is not None and self._barrier_cleared < self._barrier_seq and not self.exhausted:
            log.error("replay: %s died with barriers %d..%d not cleared: stopping", peer,
                      self._barrier_cleared + 1, self._barrier_seq)
            self.clean_stop = False
            self.request_stop()

    def _send_snapshot(self, reason: str) -> None:
        now = time.time_ns()
        if self.stream is not None:
            self.stream.request_snapshot()
            return
        if self.replay is not None:
            if reason != "requested: start":  # the capture's own snapshot is on its way
                log.warning("replay: the book asked for a snapshot (%s): a capture has only its own", reason)
            return
        if self.ladder is not None:
            last_id, bids, asks = self.ladder.snapshot()
        else:
            assert self.sim is not None
            last_id, bids, asks = self.sim.snapshot()
        self._publish(BookSnapshot(symbol=self.symbol, last_id=last_id, ts_event_ns=now, ts_recv_ns=now,
                                   ts_feed_ns=now, bids=bids, asks=asks))
        self.snapshots += 1
        log.info("snapshot %d of %s sent (%s)", last_id, self.symbol, reason)

    def _publish(self, msg: Any) -> None:
        send(self.md.sock, self.topic, msg)
        self.msgs_out += 1

    def _emit_due(self) -> None:
        now = time.time_ns()
        if self.stream is not None:
            if self.stream.error is not None:
                raise RuntimeError(f"feed stream failed: {self.stream.error}") from self.stream.error
            return
        if self.replay is not None:
            if not self._window_full():
                self._emit_replay()
            return
        if self.ladder is not None:
            self._emit_synthetic(now)
            return
        assert self.sim is not None
        for event in self.sim.advance(now):
            feed_ns = time.time_ns()
            match event:
                case SimDepth():
                    msg: Any = DepthDiff(symbol=self.symbol, first_id=event.first_id, final_id=event.final_id,
                                         prev_final_id=-1, ts_event_ns=event.ts_ns, ts_recv_ns=event.ts_ns,
                                         ts_feed_ns=feed_ns, bids=event.bids, asks=event.asks)
                case SimTrade():
                    msg = Trade(symbol=self.symbol, trade_id=event.trade_id, px_tick=event.px_tick,
                                qty_lot=event.qty_lot, taker_side=event.taker_side, ts_event_ns=event.ts_ns,
                                ts_recv_ns=event.ts_ns, ts_feed_ns=feed_ns)
                case _:
                    raise TypeError(f"simulator produced an unknown event {type(event).__name__}")
            self._publish(msg)
            self.events += 1

    def _emit_synthetic(self, now: int) -> None:
        assert self.ladder is not None
        limit = self.config.feed.synthetic_events
        period_ns = int(1e9 / self.config.feed.synthetic_hz)
        while now >= self._next_event_ns and not self.exhausted:
            first_id, final_id, bids, asks = self.ladder.next_update()
            feed_ns = time.time_ns()
            self._publish(DepthDiff(symbol=self.symbol, first_id=first_id, final_id=final_id, prev_final_id=-1,
                                    ts_event_ns=feed_ns, ts_recv_ns=feed_ns, ts_feed_ns=feed_ns,
                                    bids=bids, asks=asks))
            self.events += 1
            self._next_event_ns += period_ns
            if limit and self.events >= limit:
                self.exhausted = True
                log.info("synthetic feed done after %d events", self.events)
                self.request_stop()

    # ---- actor hooks ---------------------------------------------------------------------------

    def on_feed_control(self, topic: bytes, msg: Any) -> None:
        match msg:
            case SnapshotRequest():
                if self.streaming and not self.stop_requested:
                    self._send_snapshot(f"requested: {msg.reason}")
            case BarrierDone():  # the book's lockstep progress: the window moves on
                self._barrier_cleared = max(self._barrier_cleared, msg.seq)
                if self.replay is not None and not self.stop_requested:
                    self._emit_replay()
            case _:
                log.warning("feed control: unexpected %s", type(msg).__name__)

    def on_timer(self, now_ns: int) -> None:
        if self.stop_requested:
            return
        if not self.streaming:
            if self.state.value == "running" and all(self.peer_is_up(p) for p in self.peers):
                self._start_stream()
            return
        self._emit_due()

    def next_timer_ns(self) -> int | None:
        if not self.streaming or self.stop_requested:
            return None
        if self.stream is not None:
            return None
        if self.replay is not None:
            if self._window_full():
                return None
            wall_next = self._next_event_ns if self._held is not None else time.time_ns()
        elif self.ladder is not None:
            wall_next = self._next_event_ns
        else:
            wall_next = self.sim.next_event_ns()  # type: ignore[union-attr]
        return time.monotonic_ns() + max(0, wall_next - time.time_ns())

    def stage_report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"events": self.events, "snapshots": self.snapshots}
        if self.replay is not None:
            report["lines"] = self.replay.capture_stats.lines
        if self.stream is not None and self.stream.client is not None:
            report["stream"] = dict(self.stream.client.counts)
        return report

    def on_stop_begin(self, now_ns: int) -> None:
        if self.stream is not None:
            self.stream.stop()

    def send_end_of_stream(self, now_ns: int) -> None:
        send(self.md.sock, self.topic, self.end_of_stream())

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"events": self.events, "snapshots": self.snapshots, "barriers": self.barriers}
        if self.stream is not None and self.stream.client is not None:
            stats["stream"] = dict(self.stream.client.counts)
        if self.replay is not None:
            stats.update(tickers_skipped=self.tickers_skipped, dropped=dict(self.replay.dropped),
                         problems=self.replay.problems, problem_count=self.replay.problem_count,
                         capture=self.replay.capture_stats.as_dict(),
                         first_ts_ns=self.replay.first_ts_ns, last_ts_ns=self.replay.last_ts_ns)
        return stats


def main(argv: list[str] | None = None) -> int:
    return actor_main(Feed, argv)


if __name__ == "__main__":
    sys.exit(main())
