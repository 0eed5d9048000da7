"""Doorbell candidates for the shared-memory critical path (issue 15), side by side: the wakeup
round trip between two processes, each blocked in poll(2) (or sem_wait) until the other rings.

- eventfd: the server creates two eventfds and hands them to the client over a unix socket with
  SCM_RIGHTS (what two unrelated processes started by supervisord can do);
- fifo: two named pipes, one byte per ring;
- semaphore: two named POSIX semaphores (stdlib `_multiprocessing.SemLock`, sem_open by name):
  no file descriptor, so it cannot join the actor's zmq.Poller: measured for reference only;
- zmq: a PAIR over ipc://, the transport the critical path uses today.

`python bench/bench_doorbell.py` prints p50/p99 of each; under pytest-benchmark each round is one
round trip and extra_info carries p50_us / p99_us.
"""

from __future__ import annotations

import _multiprocessing
import contextlib
import multiprocessing
import os
import select
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import zmq

KINDS = ("eventfd", "fifo", "semaphore", "zmq")
ROUNDS = 3000
_SEM_MAX = 1 << 30
_SEMAPHORE = 1  # multiprocessing.synchronize.SEMAPHORE (0 is a recursive mutex)


def _wait_fd(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll()


class _Pair:
    """One side of a ping/pong pair: `ring()` wakes the peer, `wait()` blocks until the peer rang."""

    ring: Callable[[], None]
    wait: Callable[[], None]
    close: Callable[[], None]


def _eventfd_side(ping: int, pong: int) -> _Pair:
    side = _Pair()
    poller = select.poll()
    poller.register(pong, select.POLLIN)

    def wait() -> None:
        poller.poll()
        os.eventfd_read(pong)

    side.ring = lambda: os.eventfd_write(ping, 1)
    side.wait = wait
    side.close = lambda: (os.close(ping), os.close(pong))
    return side


def _fifo_side(ping_path: str, pong_path: str) -> _Pair:
    ping = os.open(ping_path, os.O_RDWR | os.O_NONBLOCK)
    pong = os.open(pong_path, os.O_RDWR | os.O_NONBLOCK)
    side = _Pair()
    poller = select.poll()
    poller.register(pong, select.POLLIN)

    def wait() -> None:
        poller.poll()
        os.read(pong, 4096)

    side.ring = lambda: os.write(ping, b"\x01")
    side.wait = wait
    side.close = lambda: (os.close(ping), os.close(pong))
    return side


def _sem_open(name: str) -> _multiprocessing.SemLock:
    return _multiprocessing.SemLock._rebuild(0, _SEMAPHORE, _SEM_MAX, name)


def _semaphore_side(ping_name: str, pong_name: str) -> _Pair:
    ping, pong = _sem_open(ping_name), _sem_open(pong_name)
    side = _Pair()
    side.ring = ping.release
    side.wait = pong.acquire
    side.close = lambda: None
    return side


def _zmq_side(address: str, bind: bool) -> _Pair:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 0)
    (sock.bind if bind else sock.connect)(address)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    side = _Pair()

    def wait() -> None:
        poller.poll()
        sock.recv()

    def close() -> None:
        sock.close()
        ctx.term()

    side.ring = lambda: sock.send(b"\x01")
    side.wait = wait
    side.close = close
    return side


def _echo(kind: str, where: str, rounds: int) -> None:
    """The peer process: wait for a ring, ring back, `rounds` + 1 times (one warm-up)."""
    if kind == "eventfd":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(where)
            _, fds, _, _ = socket.recv_fds(s, 1, 2)
        side = _eventfd_side(fds[1], fds[0])  # the server's pong is our ping
    elif kind == "fifo":
        side = _fifo_side(f"{where}.pong", f"{where}.ping")
    elif kind == "semaphore":
        side = _semaphore_side(f"{where}.pong", f"{where}.ping")
    else:
        side = _zmq_side(where, bind=False)
    for _ in range(rounds + 1):
        side.wait()
        side.ring()
    side.close()


@contextlib.contextmanager
def doorbell_pair(kind: str, rounds: int) -> Iterator[_Pair]:
    """Our side of a pair whose other side is a forked process that echoes `rounds` + 1 rings."""
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="mm-bell-") as tmp, contextlib.ExitStack() as cleanup:
        base = f"{tmp}/bell"
        if kind == "eventfd":
            ping, pong = os.eventfd(0), os.eventfd(0)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(base)
            server.listen(1)
            peer = ctx.Process(target=_echo, args=(kind, base, rounds))
            peer.start()
            conn, _ = server.accept()
            socket.send_fds(conn, [b"b"], [ping, pong])
            conn.close()
            server.close()
            side = _eventfd_side(ping, pong)
        elif kind == "fifo":
            os.mkfifo(f"{base}.ping")
            os.mkfifo(f"{base}.pong")
            side = _fifo_side(f"{base}.ping", f"{base}.pong")
            peer = ctx.Process(target=_echo, args=(kind, base, rounds))
            peer.start()
        elif kind == "semaphore":
            base = f"/mm-bell-{uuid.uuid4().hex[:12]}"
            sems = [_multiprocessing.SemLock(_SEMAPHORE, 0, _SEM_MAX, f"{base}.{what}", False) for what in ("ping", "pong")]
            for what in ("ping", "pong"):  # named semaphores outlive us unless unlinked, even on an error
                cleanup.callback(_multiprocessing.sem_unlink, f"{base}.{what}")
            side = _semaphore_side(f"{base}.ping", f"{base}.pong")
            peer = ctx.Process(target=_echo, args=(kind, base, rounds))
            peer.start()
            del sems
        else:
            address = f"ipc://{base}.sock"
            side = _zmq_side(address, bind=True)
            peer = ctx.Process(target=_echo, args=(kind, address, rounds))
            peer.start()
        try:
            side.ring()  # warm-up: also waits until the peer is up
            side.wait()
            yield side
        finally:
            peer.join(30)
            if peer.exitcode is None:
                peer.kill()
                peer.join()
            side.close()


def round_trips_ns(kind: str, rounds: int = ROUNDS) -> np.ndarray:
    samples = np.empty(rounds, np.int64)
    with doorbell_pair(kind, rounds) as side:
        for i in range(rounds):
            t0 = time.perf_counter_ns()
            side.ring()
            side.wait()
            samples[i] = time.perf_counter_ns() - t0
    return samples


@pytest.mark.parametrize("kind", KINDS)
def test_doorbell_round_trip(benchmark, kind: str) -> None:
    rounds = ROUNDS if benchmark.enabled else 20
    with doorbell_pair(kind, rounds) as side:
        def round_trip() -> None:
            side.ring()
            side.wait()

        if benchmark.enabled:
            benchmark.pedantic(round_trip, rounds=rounds, iterations=1)
            data = np.array(benchmark.stats.stats.data) * 1e6
            benchmark.extra_info["p50_us"] = round(float(np.percentile(data, 50)), 1)
            benchmark.extra_info["p99_us"] = round(float(np.percentile(data, 99)), 1)
        else:
            for _ in range(rounds):
                round_trip()


def main() -> None:
    print(f"{'doorbell':<10} {'p50 us':>8} {'p99 us':>8}   (round trip: two wakeups, {ROUNDS} rounds)")
    for kind in KINDS:
        us = round_trips_ns(kind) / 1e3
        print(f"{kind:<10} {np.percentile(us, 50):>8.1f} {np.percentile(us, 99):>8.1f}")


if __name__ == "__main__":
    main()
