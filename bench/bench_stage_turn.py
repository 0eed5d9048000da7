"""The critical stages' own turn, in one process, without the kernel's wakeups.

Book, quoter, risk and gateway are built as the pipeline builds them (shm critical path, the
latency bench's config), then driven by hand: this script plays the feed (pushes one synthetic
depth update into the book's and the gateway's md rings) and the signal (drains the book's ring
to it), and runs one `Actor.turn` of each stage in pipeline order per event. Each stage counts its
own `work_cpu_ns` as in a real run; what is missing is the doorbell's wakeup of a blocked reader
(a few µs of the writer's CPU on this VM, bench/bench_doorbell.py) and the caches a context switch
evicts. So the figure is the Python work of a turn: what a lean turn has to bring down.

    .venv/bin/python bench/bench_stage_turn.py [--events 3000] [--profile STAGE]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

from ipc.messages import BookSnapshot, DepthDiff
from ipc.seqlock import SeqlockWriter
from ipc.shm_layout import SIGNAL_DTYPE
from ipc.endpoints import shm_name
from ipc.shm_channel import ChannelReader, ChannelWriter
from ipc.sockets import send
from mm.config import PROCESS_NAMES, load_config, run_dir
from mm.synthetic import SyntheticLadder
from processes.book import Book
from processes.gateway import Gateway
from processes.latency_bench import bench_config
from processes.quoter import Quoter
from processes.risk import Risk

STAGES = (Book, Quoter, Risk, Gateway)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--profile", choices=[s.name for s in STAGES], default=None,
                        help="cProfile (thread CPU clock) of this stage's turns")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mm-turn-") as tmp:
        base = load_config(None)
        config = bench_config(base, Path(tmp), events=args.events, rate_hz=1000.0,
                              cores={name: -1 for name in PROCESS_NAMES})
        print(run(config, args.events, args.profile))
    return 0


def run(config, events: int, profile: str | None) -> str:
    run_dir(config).mkdir(parents=True, exist_ok=True, mode=0o700)
    symbol = config.instrument.symbol
    topic = f"md.{symbol}".encode()

    feed_out = [ChannelWriter(shm_name(config, "feed", f"md-{r}"), full_timeout_s=None)
                for r in ("book", "gateway")]
    actors = []
    signal_in = None
    prediction = SeqlockWriter.create(shm_name(config, "signal", "prediction"), SIGNAL_DTYPE)
    try:
        for cls in STAGES:
            actor = cls(config, None)
            actor._wire_control()
            actor.setup()
            actors.append(actor)
        signal_in = ChannelReader(shm_name(config, "book", "book-signal"))
        for actor in actors:
            for reader in actor.shm_readers:
                reader.check()
        assert signal_in.try_attach()
        # as a run starts: RUNNING once every consumer subscribed (a ZeroMQ subscription arrives
        # through the I/O threads; events published before it are dropped, and the quoter would
        # hold cancels it never sees confirmed)
        deadline = time.monotonic() + 10.0
        built = {actor.name for actor in actors}
        while missing := {(actor.name, name) for actor in actors for name, who in actor._missing_consumers().items()
                          if set(who) & built}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no subscribers after 10 s: {sorted(missing)}")
            for actor in actors:
                actor._read_subscriptions()
            time.sleep(0.001)
        for actor in actors:
            actor._enter_running()
        ladder = SyntheticLadder(mid_tick=int(round(config.sim.start_px / float(config.instrument.tick_size))))
        last_id, bids, asks = ladder.snapshot()
        now = time.time_ns()
        snap = BookSnapshot(symbol=symbol, last_id=last_id, ts_event_ns=now, ts_recv_ns=now, ts_feed_ns=now,
                            bids=bids, asks=asks)
        profiler = cProfile.Profile(time.thread_time_ns, 1e-9) if profile else None
        warmup = max(50, events // 10)
        period_ns = 1_000_000  # paced like the latency bench's feed: the sim venue's latency, caches
        next_ns = time.monotonic_ns()
        for i in range(events + 1):
            next_ns += period_ns
            time.sleep(max(0, next_ns - time.monotonic_ns()) / 1e9)
            if i == warmup:
                for actor in actors:
                    actor.work_turns = actor.work_cpu_ns = 0
            if i == 0:
                msg = snap
                prediction.publish((now, 0, 0.0, 0.0, 1.0, 0.0, 1))
            else:
                first_id, final_id, bids, asks = ladder.next_update()
                now = time.time_ns()
                msg = DepthDiff(symbol=symbol, first_id=first_id, final_id=final_id, prev_final_id=-1,
                                ts_event_ns=now, ts_recv_ns=now, ts_feed_ns=now, bids=bids, asks=asks)
            for writer in feed_out:
                send(writer, topic, msg)
            for actor in actors:
                events_ready = actor.poller.poll(0)
                if profiler is not None and actor.name == profile and i >= warmup:
                    profiler.runcall(actor.turn, events_ready)
                else:
                    actor.turn(events_ready)
            while signal_in.get(0):
                signal_in.recv()
        lines = [f"{'stage':<8} {'turns':>6} {'work us/turn':>13}"]
        for actor in actors:
            per = actor.work_cpu_ns / max(1, actor.work_turns) / 1000
            lines.append(f"{actor.name:<8} {actor.work_turns:>6} {per:>13.1f}")
        if profiler is not None:
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("tottime").print_stats(30)
        return "\n".join(lines)
    finally:
        for actor in actors:
            actor.close()
        if signal_in is not None:
            signal_in.close()
        prediction.close(unlink=True)
        for writer in feed_out:
            writer.close()


def test_each_critical_stage_turns_on_every_event(tmp_path):
    config = bench_config(load_config(None), tmp_path, events=60, rate_hz=1000.0,
                          cores={name: -1 for name in PROCESS_NAMES})
    table = run(config, 60, None).splitlines()[1:]
    turns = {line.split()[0]: int(line.split()[1]) for line in table}
    # the snapshot and 60 updates; counted after the 50 warm-up events: one turn each for the last 11
    assert turns == {"book": 11, "quoter": 11, "risk": 11, "gateway": 11}


if __name__ == "__main__":
    sys.exit(main())
