"""Shared-memory hot paths: seqlock write and read of a 20+20-level book top, trade ring push,
trade ring poll of 64. Inputs are seeded synthetic books and trades prepared outside the timed
call; writer and reader live in this one process (the cost measured is the call, not contention)."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from ipc.ring import RingReader, RingWriter
from ipc.seqlock import SeqlockReader, SeqlockWriter
from ipc.shm import unlink_segment
from ipc.shm_layout import TRADE_DTYPE, book_top_dtype

DEPTH = 20
BOOKS = 256
BATCH = 64


@pytest.fixture
def segment_name():
    names = []

    def make(what: str) -> str:
        names.append(f"mm.bench{os.getpid()}x{uuid.uuid4().hex[:8]}.bench.{what}")
        return names[-1]

    yield make
    for name in names:
        unlink_segment(name)


@pytest.fixture(scope="module")
def books() -> np.ndarray:
    """BOOKS staged book tops around 60 000.00 (ticks of 0.01), best first on both sides."""
    rng = np.random.default_rng(7)
    staged = np.zeros(BOOKS, book_top_dtype(DEPTH))
    offsets = np.arange(DEPTH, dtype=np.int64)
    mids = 6_000_000 + np.cumsum(rng.integers(-3, 4, BOOKS))
    for i, mid in enumerate(mids):
        staged[i] = (
            i + 1,
            1_700_000_000_000_000_000 + i,
            1_700_000_000_000_000_100 + i,
            1_700_000_000_000_000_200 + i,
            DEPTH,
            DEPTH,
            mid - offsets,
            rng.integers(1, 5_000, DEPTH),
            mid + 1 + offsets,
            rng.integers(1, 5_000, DEPTH),
        )
    return staged


@pytest.fixture
def book_slot(segment_name):
    dtype = book_top_dtype(DEPTH)
    name = segment_name("book")
    writer = SeqlockWriter.create(name, dtype)
    reader = SeqlockReader.attach(name, dtype)
    yield writer, reader
    reader.close()
    writer.close()


@pytest.mark.benchmark(group="shm")
def test_seqlock_write_book_20_levels(benchmark, book_slot, books):
    writer, reader = book_slot
    body = writer.body  # field views bound once, as the book process would
    update_id, ts_recv_ns, ts_feed_ns, ts_book_ns = (
        body["update_id"], body["ts_recv_ns"], body["ts_feed_ns"], body["ts_book_ns"]
    )
    n_bids, n_asks = body["n_bids"], body["n_asks"]
    bid_px, bid_qty, ask_px, ask_qty = (
        body["bid_px"][0], body["bid_qty"][0], body["ask_px"][0], body["ask_qty"][0]
    )
    inputs = [
        (int(b["update_id"]), int(b["ts_recv_ns"]), int(b["ts_feed_ns"]), int(b["ts_book_ns"]),
         b["bid_px"].copy(), b["bid_qty"].copy(), b["ask_px"].copy(), b["ask_qty"].copy())
        for b in books
    ]
    index = [0]

    def write_book() -> int:
        i = index[0] = (index[0] + 1) % BOOKS
        uid, recv_ns, feed_ns, book_ns, bpx, bqty, apx, aqty = inputs[i]
        writer.begin()
        update_id[0] = uid
        ts_recv_ns[0] = recv_ns
        ts_feed_ns[0] = feed_ns
        ts_book_ns[0] = book_ns
        n_bids[0] = DEPTH
        n_asks[0] = DEPTH
        bid_px[:] = bpx
        bid_qty[:] = bqty
        ask_px[:] = apx
        ask_qty[:] = aqty
        return writer.commit()

    seq = benchmark(write_book)

    out = np.zeros(1, writer.body_dtype)
    assert reader.read(out) == seq
    assert out.tobytes() == books[index[0] : index[0] + 1].tobytes()


@pytest.mark.benchmark(group="shm")
def test_seqlock_publish_staged_book_20_levels(benchmark, book_slot, books):
    # the book keeps one staging array it updates in place, then publishes it in one copy
    writer, reader = book_slot
    staged = books[7:8].copy()
    staged_update_id = staged["update_id"]
    index = [0]

    def publish_book() -> int:
        index[0] += 1
        staged_update_id[0] = index[0]
        return writer.publish(staged)

    seq = benchmark(publish_book)

    out = np.zeros(1, writer.body_dtype)
    assert reader.read(out) == seq == 2 * index[0]
    assert out.tobytes() == staged.tobytes()


@pytest.mark.benchmark(group="shm")
def test_seqlock_read_book_20_levels(benchmark, book_slot, books):
    writer, reader = book_slot
    seq = writer.publish(books[7:8].copy())
    out = np.zeros(1, writer.body_dtype)

    read_seq = benchmark(reader.read, out)

    assert read_seq == seq
    assert out.tobytes() == books[7:8].tobytes()


@pytest.fixture
def trade_ring(segment_name):
    name = segment_name("trades")
    writer = RingWriter.create(name, 4096, TRADE_DTYPE)
    reader = RingReader.attach(name, TRADE_DTYPE)
    yield writer, reader
    reader.close()
    writer.close()


def _trades(n: int) -> list[tuple]:
    return [
        (i, 6_000_000 + i % 7, 1 + i % 50, 1 if i % 3 else -1, 10 * i, 10 * i + 5)
        for i in range(n)
    ]


@pytest.mark.benchmark(group="shm")
def test_ring_push_trade(benchmark, trade_ring):
    writer, reader = trade_ring
    trades = _trades(1024)
    index = [0]

    def push() -> int:
        i = index[0] = (index[0] + 1) & 1023
        return writer.push(trades[i])

    last_seq = benchmark(push)

    assert last_seq == writer.cursor - 1
    late = RingReader.attach(writer.name, TRADE_DTYPE)  # the ring still works after the laps
    out = np.zeros(4, TRADE_DTYPE)
    pushed_seq = writer.push(trades[5])
    n = late.poll(out)
    late.close()
    assert (pushed_seq, n) == (last_seq + 1, 1)
    assert out[0].item() == trades[5]


@pytest.mark.benchmark(group="shm")
def test_ring_poll_64_trades(benchmark, trade_ring):
    writer, reader = trade_ring
    trades = _trades(BATCH)
    out = np.zeros(BATCH, TRADE_DTYPE)
    expected = np.array(trades, dtype=TRADE_DTYPE)

    def push_batch():
        for trade in trades:
            writer.push(trade)

    n = benchmark.pedantic(reader.poll, args=(out,), setup=push_batch, rounds=2000, iterations=1)

    assert n == BATCH
    assert out.tobytes() == expected.tobytes()
    assert (reader.overruns, reader.position) == (0, writer.cursor)
