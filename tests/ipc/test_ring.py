"""Trade ring: order and no loss, wrap-around, laps counted and survived, a writer process."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ipc import shm
from ipc.ring import RingReader, RingWriter
from ipc.shm_layout import SIGNAL_DTYPE, TRADE_DTYPE, ring_stamps_offset
from mm.errors import LayoutMismatchError, OverrunError


def _trade(seq: int) -> tuple:
    # every field derived from the seq, so a torn or misplaced record shows
    return (seq, 1_000_000 + seq, seq % 97 + 1, 1 if seq % 2 else -1, 10 * seq, 10 * seq + 3)


def _assert_trades(records: np.ndarray, first_seq: int) -> None:
    seqs = np.arange(first_seq, first_seq + len(records), dtype=np.int64)
    assert np.array_equal(records["trade_id"], seqs)
    assert np.array_equal(records["px_tick"], 1_000_000 + seqs)
    assert np.array_equal(records["qty_lot"], seqs % 97 + 1)
    assert np.array_equal(records["taker_side"], np.where(seqs % 2 == 1, 1, -1))
    assert np.array_equal(records["ts_event_ns"], 10 * seqs)
    assert np.array_equal(records["ts_recv_ns"], 10 * seqs + 3)


@pytest.fixture
def ring(shm_name):
    """A (writer, reader from seq 0) pair on a fresh ring of `capacity` trades."""
    opened = []

    def make(capacity: int, from_start: bool = True):
        name = shm_name("trades")
        writer = RingWriter.create(name, capacity, TRADE_DTYPE)
        reader = RingReader.attach(name, TRADE_DTYPE, from_start=from_start)
        opened.append((writer, reader))
        return writer, reader

    yield make
    for writer, reader in opened:
        reader.close()
        writer.close()


def test_ring_interleaved_push_poll_no_loss_in_order(ring):
    writer, reader = ring(64)
    out = np.zeros(16, TRADE_DTYPE)
    received = []
    seq = 0
    for burst in [1, 7, 16, 40, 64, 3, 0, 33] * 5:
        for _ in range(burst):
            assert writer.push(_trade(seq)) == seq
            seq += 1
        while n := reader.poll(out):
            received.append(out[:n].copy())

    got = np.concatenate(received)
    assert len(got) == seq == writer.cursor == reader.position
    _assert_trades(got, 0)
    assert (reader.overruns, reader.lost) == (0, 0)


def test_ring_poll_across_physical_end_wraps_in_order(ring):
    writer, reader = ring(8)
    out = np.zeros(16, TRADE_DTYPE)
    for seq in range(5):
        writer.push(_trade(seq))
    first = reader.poll(out)
    for seq in range(5, 11):  # slots 5, 6, 7, 0, 1, 2
        writer.push(_trade(seq))
    second = reader.poll(out)

    assert (first, second) == (5, 6)
    _assert_trades(out[:second], 5)


def test_ring_poll_nothing_new_returns_zero(ring):
    writer, reader = ring(8)
    out = np.zeros(4, TRADE_DTYPE)

    assert reader.poll(out) == 0
    writer.push(_trade(0))
    assert reader.poll(out) == 1
    assert reader.poll(out) == 0


def test_ring_attach_not_from_start_sees_only_new_records(ring, shm_name):
    writer, _ = ring(8)
    for seq in range(5):
        writer.push(_trade(seq))
    late = RingReader.attach(writer.name, TRADE_DTYPE)
    out = np.zeros(8, TRADE_DTYPE)
    try:
        before = late.poll(out)
        writer.push(_trade(5))
        after = late.poll(out)
    finally:
        late.close()

    assert (before, after) == (0, 1)
    _assert_trades(out[:1], 5)


def test_ring_lapped_reader_raises_overrun_counts_and_continues(ring):
    writer, reader = ring(8)
    out = np.zeros(16, TRADE_DTYPE)
    for seq in range(20):
        writer.push(_trade(seq))

    lapped = rf"{writer.name}: lapped by the writer, lost 12 records"
    with pytest.raises(OverrunError, match=lapped):
        reader.poll(out)
    position = reader.position
    n = reader.poll(out)

    assert (reader.overruns, reader.lost, position) == (1, 12, 12)
    assert n == 8
    _assert_trades(out[:n], 12)
    assert reader.poll(out) == 0


def test_ring_slot_being_overwritten_during_poll_is_not_skipped_silently(ring):
    # The writer has stamped slot 0 for seq 8 (overwriting seq 0) but not yet moved the cursor
    # past 8: the cursor alone says seq 0..7 are readable; the stamp says seq 0 is gone.
    writer, reader = ring(8)
    for seq in range(8):
        writer.push(_trade(seq))
    segment = shm.attach_segment(writer.name)
    stamps = np.ndarray((8,), np.uint64, buffer=segment.buf, offset=ring_stamps_offset())
    stamps[0] = 8
    del stamps
    segment.close()
    out = np.zeros(8, TRADE_DTYPE)

    with pytest.raises(OverrunError, match="lost 1 records"):
        reader.poll(out)
    position = reader.position
    n = reader.poll(out)

    assert (reader.overruns, reader.lost, position) == (1, 1, 1)
    assert n == 7
    _assert_trades(out[:n], 1)


def test_ring_capacity_not_power_of_two_raises(shm_name):
    with pytest.raises(ValueError, match="power of two"):
        RingWriter.create(shm_name(), 12, TRADE_DTYPE)


def test_ring_attach_other_item_layout_raises_layout_mismatch(ring):
    writer, _ = ring(8)

    with pytest.raises(LayoutMismatchError, match=f"{writer.name}: layout name"):
        RingReader.attach(writer.name, SIGNAL_DTYPE)


def test_ring_poll_wrong_out_raises_value_error(ring):
    _, reader = ring(8)

    with pytest.raises(ValueError, match="out"):
        reader.poll(np.zeros(4, SIGNAL_DTYPE))
    with pytest.raises(ValueError, match="out"):
        reader.poll(np.zeros(0, TRADE_DTYPE))


# Pushes argv[2] trades as fast as it can once the reader says "go" on stdin.
RING_WRITER = """
import sys
from ipc.ring import RingWriter
from ipc.shm_layout import TRADE_DTYPE

writer = RingWriter.create(sys.argv[1], int(sys.argv[3]), TRADE_DTYPE)
print("ready", flush=True)
sys.stdin.readline()
for seq in range(int(sys.argv[2])):
    writer.push((seq, 1_000_000 + seq, seq % 97 + 1, 1 if seq % 2 else -1, 10 * seq, 10 * seq + 3))
print("done", writer.cursor, flush=True)
sys.stdin.read()  # the reader closes stdin when done; the mapping outlives the unlink anyway
writer.close()
"""


def test_ring_writer_in_other_process_every_record_read_or_counted_lost(shm_name, python_process):
    name = shm_name("trades")
    total = 200_000
    writer = python_process(RING_WRITER, name, str(total), "1024")
    assert writer.stdout.readline() == "ready\n", writer.stderr.read()
    reader = RingReader.attach(name, TRADE_DTYPE, from_start=True)
    out = np.zeros(64, TRADE_DTYPE)
    received = lost_reported = 0
    deadline = time.monotonic() + 20.0
    try:
        writer.stdin.write("go\n")
        writer.stdin.flush()
        while reader.position < total and time.monotonic() < deadline:
            position = reader.position
            try:
                n = reader.poll(out)
            except OverrunError:
                lost_reported += reader.position - position
                continue
            _assert_trades(out[:n], position)
            received += n
        done = writer.stdout.readline().split()
    finally:
        reader.close()
        writer.stdin.close()
    assert writer.wait(timeout=10) == 0, writer.stderr.read()

    assert done == ["done", str(total)]
    assert reader.position == total
    assert received + reader.lost == total
    assert lost_reported == reader.lost
    assert received > 0
