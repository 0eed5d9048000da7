"""The transport baselines of `mm bench latency`: five processes chained by bare ZeroMQ ipc
PUSH/PULL sockets, or by bare shared-memory channels with an eventfd doorbell (ipc/shm_channel.py,
what `[ipc] critical_path = "shm"` uses), four hops like feed -> book -> quoter -> risk -> gateway,
no decoding, no logic. The source stamps time.time_ns() into each 8-byte frame; the sink records now - stamp.
Each relay also measures its own CPU per message (receive + send, poll excluded), the figure to
set beside a pipeline stage's `stage_work_cpu_us_per_turn`.
"""

from __future__ import annotations

import multiprocessing
import os
import struct
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import zmq

from ipc.shm import unlink_segment
from ipc.shm_channel import ChannelReader, ChannelWriter
from ipc.sockets import readable

STAMP = struct.Struct("<q")
STOP = b"stop"


def _pin(core: int) -> None:
    if core >= 0:
        os.sched_setaffinity(0, {core})


def _source(address: str, events: int, rate_hz: float, core: int, ready: multiprocessing.Event) -> None:
    _pin(core)
    ctx = zmq.Context()
    out = ctx.socket(zmq.PUSH)
    out.setsockopt(zmq.LINGER, 5000)
    out.connect(address)
    ready.wait(30)
    period_ns = int(1e9 / rate_hz)
    next_ns = time.monotonic_ns()
    for _ in range(events):
        delay_ns = next_ns - time.monotonic_ns()
        if delay_ns > 0:
            time.sleep(delay_ns / 1e9)
        out.send(STAMP.pack(time.time_ns()))
        next_ns += period_ns
    out.send(STOP)
    out.close()
    ctx.term()


class BareChainResult(NamedTuple):
    samples: np.ndarray  # end-to-end latency of each frame, ns
    relay_work_cpu_us: float  # the relays' mean CPU per message: what the transport costs a stage


def _relay(address_in: str, address_out: str, core: int, cpu_path: str) -> None:
    _pin(core)
    ctx = zmq.Context()
    inp = ctx.socket(zmq.PULL)
    inp.bind(address_in)
    out = ctx.socket(zmq.PUSH)
    out.setsockopt(zmq.LINGER, 5000)
    out.connect(address_out)
    poller = zmq.Poller()
    poller.register(inp, zmq.POLLIN)
    turns = cpu_ns = 0
    while True:
        if not poller.poll(1000):
            continue
        woke_cpu_ns = time.thread_time_ns()
        frame = inp.recv()
        out.send(frame)
        cpu_ns += time.thread_time_ns() - woke_cpu_ns
        turns += 1
        if frame == STOP:
            break
    np.save(cpu_path, np.array([turns, cpu_ns], np.int64))
    inp.close(linger=0)
    out.close()
    ctx.term()


def _sink(address_in: str, result_path: str, events: int, core: int, ready: multiprocessing.Event) -> None:
    _pin(core)
    ctx = zmq.Context()
    inp = ctx.socket(zmq.PULL)
    inp.bind(address_in)
    ready.set()
    samples = np.empty(events, np.int64)
    n = 0
    poller = zmq.Poller()
    poller.register(inp, zmq.POLLIN)
    while True:
        if not poller.poll(1000):
            continue
        frame = inp.recv()
        if frame == STOP:
            break
        samples[n] = time.time_ns() - STAMP.unpack(frame)[0]
        n += 1
    np.save(result_path, samples[:n])
    inp.close(linger=0)
    ctx.term()


# ---- the same chain over shared memory ------------------------------------------------------------

ATTACH_TIMEOUT_S = 30.0


def _shm_out(channel: str) -> ChannelWriter:
    return ChannelWriter(channel, capacity=1 << 16)


def _shm_in(channel: str) -> tuple[ChannelReader, zmq.Poller]:
    """Attach to the upstream writer (it is made by a sibling process: wait for it, bounded)."""
    reader = ChannelReader(channel)
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    while not reader.try_attach():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bare shm chain: no writer for {channel} in {ATTACH_TIMEOUT_S} s")
        time.sleep(0.001)  # start-up only: the sibling is creating its segment
    poller = zmq.Poller()
    poller.register(reader, zmq.POLLIN)
    return reader, poller


def _shm_source(channel: str, events: int, rate_hz: float, core: int,
                ready: multiprocessing.Event, done: multiprocessing.Event) -> None:
    _pin(core)
    out = _shm_out(channel)
    ready.wait(30)
    period_ns = int(1e9 / rate_hz)
    next_ns = time.monotonic_ns()
    for _ in range(events):
        delay_ns = next_ns - time.monotonic_ns()
        if delay_ns > 0:
            time.sleep(delay_ns / 1e9)
        out.push(STAMP.pack(time.time_ns()))
        next_ns += period_ns
    out.push(STOP)
    done.wait(30)  # the segment outlives us until the sink has read everything
    out.close()


def _shm_relay(channel_in: str, channel_out: str, core: int, cpu_path: str,
               done: multiprocessing.Event) -> None:
    _pin(core)
    out = _shm_out(channel_out)
    inp, poller = _shm_in(channel_in)
    turns = cpu_ns = 0
    stop = False
    while not stop:
        if not poller.poll(1000):
            continue
        woke_cpu_ns = time.thread_time_ns()
        while readable(inp):
            frame = inp.recv()
            out.push(frame)
            stop = frame == STOP
        cpu_ns += time.thread_time_ns() - woke_cpu_ns
        turns += 1
    np.save(cpu_path, np.array([turns, cpu_ns], np.int64))
    done.wait(30)  # the segment outlives us until the sink has read everything
    inp.close()
    out.close()


def _shm_sink(channel_in: str, result_path: str, events: int, core: int,
              ready: multiprocessing.Event, done: multiprocessing.Event) -> None:
    _pin(core)
    inp, poller = _shm_in(channel_in)
    ready.set()
    samples = np.empty(events, np.int64)
    n = 0
    stop = False
    while not stop:
        if not poller.poll(1000):
            continue
        while readable(inp):
            frame = inp.recv()
            if frame == STOP:
                stop = True
                break
            samples[n] = time.time_ns() - STAMP.unpack(frame)[0]
            n += 1
    np.save(result_path, samples[:n])
    inp.close()
    done.set()


def run_bare_chain(directory: Path, *, events: int, rate_hz: float, cores: list[int],
                   transport: str = "zmq") -> BareChainResult:
    """Run source -> 3 relays -> sink over `transport` ("zmq" or "shm"); return the end-to-end
    latency samples and the relays' CPU per turn."""
    if transport == "shm":
        return _run_bare_shm_chain(directory, events=events, rate_hz=rate_hz, cores=cores)
    ctx = multiprocessing.get_context("fork")
    addresses = [f"ipc://{directory}/bare{i}.sock" for i in range(4)]
    result = directory / "bare_samples.npy"
    ready = ctx.Event()
    procs = [ctx.Process(target=_sink, args=(addresses[3], str(result), events, cores[4], ready))]
    relay_cpu = [directory / f"relay{i}_cpu.npy" for i in range(3)]
    for i in range(3):
        procs.append(ctx.Process(target=_relay, args=(addresses[i], addresses[i + 1], cores[i + 1],
                                                      str(relay_cpu[i]))))
    procs.append(ctx.Process(target=_source, args=(addresses[0], events, rate_hz, cores[0], ready)))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
            raise RuntimeError("bare chain did not finish in 120 s")
    samples = np.load(result)
    result.unlink()
    turns, cpu_ns = np.sum([np.load(path) for path in relay_cpu], axis=0)
    for path in relay_cpu:
        path.unlink()
    for address in addresses:
        Path(address[len("ipc://"):]).unlink(missing_ok=True)
    return BareChainResult(samples, round(cpu_ns / max(1, turns) / 1e3, 1))


def _run_bare_shm_chain(directory: Path, *, events: int, rate_hz: float, cores: list[int]) -> BareChainResult:
    ctx = multiprocessing.get_context("fork")
    instance = f"bare{os.getpid()}x{time.monotonic_ns() % 1_000_000}"
    channels = [f"mm.{instance}.hop{i}.chain" for i in range(4)]
    result = directory / "bare_shm_samples.npy"
    ready, done = ctx.Event(), ctx.Event()
    relay_cpu = [directory / f"shm_relay{i}_cpu.npy" for i in range(3)]
    procs = [ctx.Process(target=_shm_source, args=(channels[0], events, rate_hz, cores[0], ready, done))]
    for i in range(3):
        procs.append(ctx.Process(target=_shm_relay, args=(channels[i], channels[i + 1], cores[i + 1],
                                                          str(relay_cpu[i]), done)))
    procs.append(ctx.Process(target=_shm_sink, args=(channels[3], str(result), events, cores[4], ready, done)))
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
            if proc.exitcode is None:
                raise RuntimeError("bare shm chain did not finish in 120 s")
            if proc.exitcode != 0:
                raise RuntimeError(f"bare shm chain: a process exited with {proc.exitcode}")
    finally:
        for proc in procs:
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        for segment in channels:  # a killed process cannot remove its own
            unlink_segment(segment)
    samples = np.load(result)
    result.unlink()
    turns, cpu_ns = np.sum([np.load(path) for path in relay_cpu], axis=0)
    for path in relay_cpu:
        path.unlink()
    return BareChainResult(samples, round(cpu_ns / max(1, turns) / 1e3, 1))
