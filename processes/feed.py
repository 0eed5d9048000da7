"""Feed handler: the market source (built-in simulator or synthetic ladder) -> md PUB.

Stamps every event with its receive time and `ts_feed_ns`; answers the book's snapshot
requests in-stream, so a snapshot is ordered with the diffs exactly as a venue's would be.
Starts streaming only when every peer has announced RUNNING (no slow joiner loses data).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from ipc.messages import BookSnapshot, DepthDiff, EndOfStream, FeedControl, SnapshotRequest, Trade
from ipc.sockets import Codec, send
from mm.market_sim import MarketSim, SimDepth, SimTrade
from mm.synthetic import SyntheticLadder
from processes.actor import Actor, actor_main

log = logging.getLogger(__name__)


class Feed(Actor):
    name = "feed"
    consumers = {"md": ("book", "gateway")}
    downstream = ("book", "gateway")

    def setup(self) -> None:
        self.md = self.add_publisher("md")
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

    # ---- source --------------------------------------------------------------------------------

    def _start_stream(self) -> None:
        now = time.time_ns()
        feed = self.config.feed
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

    def _send_snapshot(self, reason: str) -> None:
        now = time.time_ns()
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
        wall_next = self._next_event_ns if self.ladder is not None else self.sim.next_event_ns()  # type: ignore[union-attr]
        return time.monotonic_ns() + max(0, wall_next - time.time_ns())

    def send_end_of_stream(self, now_ns: int) -> None:
        send(self.md.sock, self.topic, EndOfStream(process=self.name, sent=self.msgs_out, ts_ns=time.time_ns()))

    def stats(self) -> dict[str, Any]:
        return {"events": self.events, "snapshots": self.snapshots}


def main(argv: list[str] | None = None) -> int:
    return actor_main(Feed, argv)


if __name__ == "__main__":
    sys.exit(main())
