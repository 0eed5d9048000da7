"""Signal: off the critical path. Reads the book slot and the trade ring on each book notice,
updates the model (mm/signal.py) and publishes its newest prediction into a seqlock slot plus a
small notice. The quoter reads the slot when it quotes; it never waits for us.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import numpy as np

from ipc.endpoints import shm_name
from ipc.messages import Barrier, BookChanged, BookMsg, SignalUpdated
from ipc.ring import RingReader
from ipc.seqlock import SeqlockWriter
from ipc.shm_layout import SIGNAL_DTYPE, TRADE_DTYPE, book_top_dtype
from ipc.sockets import Codec, send
from mm.errors import OverrunError, SegmentNotReadyError
from mm.stages.signal import SignalStep
from processes.actor import Actor, actor_main
from processes.shm_views import SlotView

log = logging.getLogger(__name__)

TRADE_BATCH = 256


class Signal(Actor):
    name = "signal"
    forward_after = ("book",)

    def setup(self) -> None:
        cfg = self.config
        self.symbol = cfg.instrument.symbol
        self.book_view = SlotView(shm_name(cfg, "book", "top"), book_top_dtype(cfg.book.depth))
        self.trade_segment = shm_name(cfg, "book", "trades")
        self.trade_reader: RingReader | None = None
        self._trades = np.zeros(TRADE_BATCH, TRADE_DTYPE)
        self.writer = SeqlockWriter.create(shm_name(cfg, "signal", "prediction"), SIGNAL_DTYPE)
        self.add_input(self.critical_subscriber("book", [b"book."]), Codec(BookMsg), self.on_book, eos_from="book")
        self.event_time = cfg.pipeline.mode == "replay"  # stamps on the capture's clock: deterministic
        if self.event_time and cfg.replay.lockstep:
            self.consumers = {"signal": ("quoter",)}  # the quoter waits for our notices only in lockstep
        self.pub = self.loop_publisher("signal")
        self.step = SignalStep(cfg, keep_scored=self.event_time)
        self.topic = f"sig.{self.symbol}".encode()
        self._pending: BookChanged | None = None
        self.trade_overruns = 0

    def on_config_changed(self) -> None:
        self.step.model.cfg = self.config.signal

    def on_book(self, topic: bytes, msg: Any) -> None:
        match msg:
            case BookChanged():
                self._pending = msg
            case Barrier():  # replay lockstep: predict on what came before, then say so
                self.act_once(0)
                send(self.pub.sock, self.topic, msg)
            case _:
                log.warning("signal: unexpected %s", type(msg).__name__)

    def _drain_trades(self) -> None:
        if self.trade_reader is None:
            try:
                self.trade_reader = RingReader.attach(self.trade_segment, TRADE_DTYPE, from_start=True)
            except (FileNotFoundError, SegmentNotReadyError):  # the book has not made it yet
                return
        while True:
            try:
                n = self.trade_reader.poll(self._trades)
            except OverrunError as e:
                self.trade_overruns += 1
                log.warning("%s", e)
                continue
            self.step.on_trades(self._trades[:n])
            if n < TRADE_BATCH:
                return

    def act_once(self, now_ns: int) -> None:
        notice = self._pending
        if notice is None:
            return
        self._pending = None
        if not self.book_view.read(notice.seq):
            return
        self._drain_trades()
        top = self.book_view.value[0]
        pred = self.step.on_book(int(top["ts_recv_ns"]), top["bid_px"], top["bid_qty"], top["ask_px"],
                                 top["ask_qty"], int(top["n_bids"]), int(top["n_asks"]))
        rec = self.writer.begin()
        rec["ts_ns"] = int(top["ts_recv_ns"]) if self.event_time else time.time_ns()
        rec["update_id"] = int(top["update_id"])
        rec["predicted_return"] = pred.predicted_return
        rec["fair_px_tick"] = pred.fair_px_tick
        rec["volatility_bps_per_s"] = pred.volatility_bps_per_s
        rec["imbalance"] = pred.imbalance
        rec["healthy"] = int(pred.healthy)
        seq = self.writer.commit()
        send(self.pub.sock, self.topic, SignalUpdated(symbol=self.symbol, seq=seq, ts_ns=time.time_ns(),
                                                      update_id=int(top["update_id"])))
        self.msgs_out += 1

    def on_peer_revived(self, peer: str, now_ns: int) -> None:
        if peer == "book":  # a restarted book made new segments under the same names
            self.book_view.attach()
            if self.trade_reader is not None:
                self.trade_reader.close()
                self.trade_reader = None

    def send_end_of_stream(self, now_ns: int) -> None:
        # trades are read on a book notice; after a gap the book may publish no more, and the
        # in-process engine counts every trade: read what is left, so both engines count them all
        self._drain_trades()
        send(self.pub.sock, self.topic, self.end_of_stream())

    def stats(self) -> dict[str, Any]:
        return {**self.step.stats(), "trade_overruns": self.trade_overruns}

    def close(self) -> None:
        super().close()
        if hasattr(self, "book_view"):
            self.book_view.close()
        if getattr(self, "trade_reader", None) is not None:
            self.trade_reader.close()
        if hasattr(self, "writer"):
            self.writer.close(unlink=True)


def main(argv: list[str] | None = None) -> int:
    return actor_main(Signal, argv)


if __name__ == "__main__":
    sys.exit(main())
