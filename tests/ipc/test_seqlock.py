"""Seqlock slot: round trips, the torn-read stress test against a writer process, header checks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipc import shm
from ipc.seqlock import SeqlockReader, SeqlockWriter
from ipc.shm_layout import BODY_OFFSET, SIGNAL_DTYPE, TRADE_DTYPE, book_top_dtype
from mm.errors import LayoutMismatchError, StaleReadError

DEPTH = 20
FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # shm_name hands out a fresh name per call

# Writes fields that must agree: b == a + 100, c == a + b, bid_px[i] == a + i, ask_px[i] ==
# a + 1000 + i, bid_qty[i] == ask_qty[i] == a * 2 + i, each a separate store, back to back with
# a 0-5 us gap that varies write to write (a book process decodes between writes): with no gap
# at all a reader's copy (cache lines bouncing between cores) rarely fits between two writes.
STRESS_WRITER = """
import select, sys, time
import numpy as np
from ipc.seqlock import SeqlockWriter
from ipc.shm_layout import book_top_dtype

depth = int(sys.argv[2])
writer = SeqlockWriter.create(sys.argv[1], book_top_dtype(depth))
body = writer.body
a_field, b_field, c_field = body["update_id"], body["ts_recv_ns"], body["ts_feed_ns"]
n_bids, n_asks = body["n_bids"], body["n_asks"]
bid_px, bid_qty = body["bid_px"][0], body["bid_qty"][0]
ask_px, ask_qty = body["ask_px"][0], body["ask_qty"][0]
levels = np.arange(depth, dtype=np.int64)
print("ready", flush=True)
a = 0
while True:
    for _ in range(256):
        a += 1
        writer.begin()
        a_field[0] = a
        bid_px[:] = levels + a
        b_field[0] = a + 100
        n_bids[0] = depth
        bid_qty[:] = levels + 2 * a
        ask_px[:] = levels + (a + 1000)
        c_field[0] = a + (a + 100)
        ask_qty[:] = levels + 2 * a
        n_asks[0] = depth
        writer.commit()
        gap_end_ns = time.perf_counter_ns() + (a * 7919) % 5000
        while time.perf_counter_ns() < gap_end_ns:
            pass
    if select.select([sys.stdin], [], [], 0)[0]:  # stdin closed: stop
        break
del a_field, b_field, c_field, n_bids, n_asks, bid_px, bid_qty, ask_px, ask_qty, body
writer.close()
print("writes", a, flush=True)
"""


def _expected_pattern(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(constant, per_a) over the body viewed as int64s: consistent == constant + a * per_a."""
    levels = np.arange(depth, dtype=np.int64)
    ones = np.ones(depth, np.int64)
    # update_id, ts_recv_ns, ts_feed_ns, ts_book_ns, n_bids, n_asks, bid_px, bid_qty, ask_px,
    # ask_qty
    scalars = [0, 100, 100, 0, depth, depth]
    constant = np.concatenate([scalars, levels, levels, levels + 1000, levels])
    per_a = np.concatenate([[1, 1, 2, 0, 0, 0], ones, 2 * ones, ones, 2 * ones])
    assert len(constant) * 8 == book_top_dtype(depth).itemsize
    return constant, per_a


def _agrees(body_i8: np.ndarray, seq: int, pattern: tuple[np.ndarray, np.ndarray]) -> bool:
    a = int(body_i8[0])
    if a == 0:  # nothing published yet: all zero
        return seq == 0 and not body_i8.any()
    constant, per_a = pattern
    return seq == 2 * a and np.array_equal(body_i8, constant + a * per_a)


def _start_stress_writer(python_process, name: str):
    writer = python_process(STRESS_WRITER, name, str(DEPTH))
    assert writer.stdout.readline() == "ready\n", writer.stderr.read()
    return writer


def _stop_stress_writer(writer) -> int:
    writer.stdin.close()
    out, err = writer.stdout.read(), writer.stderr.read()
    assert writer.wait(timeout=10) == 0, err
    return int(out.split()[-1])


def test_seqlock_writer_in_other_process_no_torn_read(shm_name, python_process):
    name = shm_name("book")
    dtype = book_top_dtype(DEPTH)
    writer = _start_stress_writer(python_process, name)
    reader = SeqlockReader.attach(name, dtype)
    out = np.zeros(1, dtype)
    body_i8 = out.view(np.int64)
    pattern = _expected_pattern(DEPTH)
    reads = stale = torn = 0
    distinct_seqs = set()
    deadline = time.monotonic() + 30.0  # ~1 s on 2 idle cores; several times that when they are shared
    try:
        while (reads < 50_000 or len(distinct_seqs) < 5_000) and time.monotonic() < deadline:
            try:
                seq = reader.read(out)
            except StaleReadError:  # the writer kept the slot busy for max_tries: not a tear
                stale += 1
                continue
            reads += 1
            distinct_seqs.add(seq)
            if not _agrees(body_i8, seq, pattern):
                torn += 1
    finally:
        reader.close()
        writes = _stop_stress_writer(writer)

    assert torn == 0, f"{torn} torn reads in {reads}"
    assert reads >= 50_000, f"only {reads} reads ({stale} stale) in the time bound"
    assert len(distinct_seqs) >= 100, "the writer barely ran while reading"
    assert writes > 10_000


def test_seqlock_stress_check_sees_tears_when_seq_ignored(shm_name, python_process):
    # Control for the test above: the same check over raw unguarded copies must find tears,
    # or the stress test could not fail.
    name = shm_name("book")
    dtype = book_top_dtype(DEPTH)
    writer = _start_stress_writer(python_process, name)
    segment = shm.attach_segment(name)
    body = np.ndarray((1,), dtype, buffer=segment.buf, offset=BODY_OFFSET)
    out = np.zeros(1, dtype)
    body_i8 = out.view(np.int64)
    pattern = _expected_pattern(DEPTH)
    torn = 0
    deadline = time.monotonic() + 30.0  # ends at the first tear: within ms when the writer runs
    try:
        while torn == 0 and time.monotonic() < deadline:
            out.view(np.uint8)[:] = body.view(np.uint8)
            if not _agrees(body_i8, 2 * int(body_i8[0]), pattern):
                torn += 1
    finally:
        del body
        segment.close()
        _stop_stress_writer(writer)

    assert torn > 0


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    values=st.tuples(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False),
        st.floats(allow_nan=False),
        st.floats(allow_nan=False),
        st.floats(allow_nan=False),
        st.integers(0, 1),
    ),
    n_writes=st.integers(1, 5),
)
def test_seqlock_publish_any_signal_reads_back_same(shm_name, values, n_writes):
    name = shm_name("signal")
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
    out = np.zeros(1, SIGNAL_DTYPE)
    try:
        for _ in range(n_writes):
            seq = writer.publish(values)
        read_seq = reader.read(out)
    finally:
        reader.close()
        writer.close()

    assert read_seq == seq == 2 * n_writes
    assert out[0].item() == values


@settings(max_examples=50, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    bids=st.lists(st.tuples(st.integers(1, 2**40), st.integers(1, 2**40)), max_size=DEPTH),
    asks=st.lists(st.tuples(st.integers(1, 2**40), st.integers(1, 2**40)), max_size=DEPTH),
    update_id=st.integers(0, 2**62),
)
def test_seqlock_begin_commit_any_book_reads_back_same(shm_name, bids, asks, update_id):
    dtype = book_top_dtype(DEPTH)
    name = shm_name("book")
    writer = SeqlockWriter.create(name, dtype)
    reader = SeqlockReader.attach(name, dtype)
    out = np.zeros(1, dtype)
    bid_px = sorted((px for px, _ in bids), reverse=True)
    ask_px = sorted(px for px, _ in asks)
    try:
        record = writer.begin()
        record["update_id"] = update_id
        record["n_bids"], record["n_asks"] = len(bids), len(asks)
        record["bid_px"][: len(bids)] = bid_px
        record["bid_qty"][: len(bids)] = [qty for _, qty in bids]
        record["ask_px"][: len(asks)] = ask_px
        record["ask_qty"][: len(asks)] = [qty for _, qty in asks]
        del record
        seq = writer.commit()
        read_seq = reader.read(out)
    finally:
        reader.close()
        writer.close()

    got = out[0]
    assert read_seq == seq == 2
    assert got["update_id"] == update_id
    assert (got["n_bids"], got["n_asks"]) == (len(bids), len(asks))
    assert got["bid_px"][: len(bids)].tolist() == bid_px
    assert got["bid_qty"][: len(bids)].tolist() == [qty for _, qty in bids]
    assert got["ask_px"][: len(asks)].tolist() == ask_px
    assert got["ask_qty"][: len(asks)].tolist() == [qty for _, qty in asks]


def test_seqlock_read_before_first_publish_returns_zero_seq(shm_name):
    name = shm_name()
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
    out = np.ones(1, SIGNAL_DTYPE)
    try:
        seq = reader.read(out)
    finally:
        reader.close()
        writer.close()

    assert seq == 0
    assert not out.view(np.uint8).any()


def test_seqlock_publish_dict_and_array_update_fields(shm_name):
    name = shm_name()
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
    out = np.zeros(1, SIGNAL_DTYPE)
    staged = np.zeros(1, SIGNAL_DTYPE)
    staged[0] = (9, 8, 0.5, 7.5, 1.25, -0.5, 1)
    try:
        writer.publish({"ts_ns": 5, "fair_px_tick": 100.5})
        seq_dict = reader.read(out)
        after_dict = out[0].item()
        seq_array = writer.publish(staged)
        reader.read(out)
    finally:
        reader.close()
        writer.close()

    assert seq_dict == 2
    assert after_dict == (5, 0, 0.0, 100.5, 0.0, 0.0, 0)
    assert seq_array == 4
    assert out[0].item() == (9, 8, 0.5, 7.5, 1.25, -0.5, 1)


def test_seqlock_writer_stuck_mid_write_raises_stale_read(shm_name):
    name = shm_name("signal")
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE, max_tries=50)
    out = np.zeros(1, SIGNAL_DTYPE)
    try:
        writer.publish((1, 1, 0.0, 1.0, 0.0, 0.0, 1))
        writer.begin()  # the writer "dies" here: seq stays odd
        stuck_seq = reader.seq()
        with pytest.raises(StaleReadError, match=name):
            reader.read(out)
        writer.commit()
        recovered_seq = reader.read(out)
    finally:
        reader.close()
        writer.close()

    assert stuck_seq == 3
    assert recovered_seq == 4


def test_seqlock_publish_failing_leaves_seq_odd_until_next_commit(shm_name):
    name = shm_name()
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE, max_tries=5)
    out = np.zeros(1, SIGNAL_DTYPE)
    try:
        with pytest.raises(ValueError):
            writer.publish({"no_such_field": 1})
        with pytest.raises(StaleReadError):
            reader.read(out)
        seq = writer.publish((1, 2, 0.0, 0.0, 0.0, 0.0, 1))
        read_seq = reader.read(out)
    finally:
        reader.close()
        writer.close()

    assert read_seq == seq == 2


def test_seqlock_begin_twice_raises(shm_name):
    writer = SeqlockWriter.create(shm_name(), SIGNAL_DTYPE)
    try:
        writer.begin()
        with pytest.raises(RuntimeError):
            writer.begin()
        writer.commit()
        with pytest.raises(RuntimeError):
            writer.commit()
    finally:
        writer.close()


def _renamed(dtype: np.dtype, layout: str) -> np.dtype:
    fields = [(name, dtype.fields[name][0]) for name in dtype.names]
    return np.dtype(fields, align=True, metadata={"layout": layout})


@pytest.mark.parametrize(
    ("reader_dtype", "mismatch"),
    [
        (book_top_dtype(10), "layout name"),
        (_renamed(book_top_dtype(10), f"book_top{DEPTH}"), "itemsize"),
    ],
)
def test_seqlock_attach_other_layout_raises_layout_mismatch(shm_name, reader_dtype, mismatch):
    name = shm_name("book")
    writer = SeqlockWriter.create(name, book_top_dtype(DEPTH))
    try:
        with pytest.raises(LayoutMismatchError, match=f"{name}: {mismatch}"):
            SeqlockReader.attach(name, reader_dtype)
    finally:
        writer.close()


def test_seqlock_attach_same_size_other_fields_raises_layout_mismatch(shm_name):
    name = shm_name("anon")
    written = np.dtype([("a", "i8"), ("b", "f8")], align=True)
    renamed = np.dtype([("a", "i8"), ("c", "f8")], align=True)
    writer = SeqlockWriter.create(name, written)
    try:
        with pytest.raises(LayoutMismatchError, match=f"{name}: field fingerprint"):
            SeqlockReader.attach(name, renamed)
    finally:
        writer.close()


def test_seqlock_attach_ring_segment_raises_layout_mismatch(shm_name):
    from ipc.ring import RingWriter

    name = shm_name("trades")
    writer = RingWriter.create(name, 8, TRADE_DTYPE)
    try:
        with pytest.raises(LayoutMismatchError, match=f"{name}: kind is ring, expected seqlock"):
            SeqlockReader.attach(name, TRADE_DTYPE)
    finally:
        writer.close()


def test_seqlock_attach_uninitialised_segment_raises_layout_mismatch(shm_name):
    name = shm_name()
    segment = shm.create_segment(name, 4096)  # all zeros: no magic
    try:
        with pytest.raises(LayoutMismatchError, match=f"{name}: magic is 0x0"):
            SeqlockReader.attach(name, SIGNAL_DTYPE)
    finally:
        segment.close()


def test_seqlock_read_wrong_out_raises_value_error(shm_name):
    name = shm_name()
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
    try:
        with pytest.raises(ValueError, match="out"):
            reader.read(np.zeros(2, SIGNAL_DTYPE))
        with pytest.raises(ValueError, match="out"):
            reader.read(np.zeros(1, TRADE_DTYPE))
    finally:
        reader.close()
        writer.close()


def test_seqlock_reader_reuses_then_rebinds_out(shm_name):
    name = shm_name()
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
    first, second = np.zeros(1, SIGNAL_DTYPE), np.zeros(1, SIGNAL_DTYPE)
    try:
        writer.publish((1, 0, 0.0, 0.0, 0.0, 0.0, 1))
        reader.read(first)
        writer.publish((2, 0, 0.0, 0.0, 0.0, 0.0, 1))
        reader.read(second)
        writer.publish((3, 0, 0.0, 0.0, 0.0, 0.0, 1))
        reader.read(first)
    finally:
        reader.close()
        writer.close()

    assert (first[0]["ts_ns"], second[0]["ts_ns"]) == (3, 2)
