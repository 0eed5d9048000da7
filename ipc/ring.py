"""Single-producer ring of records for history (trades): the writer never waits; each reader
keeps its own position and finds out when it was lapped.

Layout (Disruptor `RingBuffer`): power-of-two capacity, record `seq` lives in slot
`seq & mask`; a never-wrapping u64 write cursor (= records published) on its own line; one u64
stamp per slot holding the seq of the record in it. To write seq s the writer stamps the slot
with s, writes the record, then sets the cursor to s + 1. A reader copies records below the
cursor, then checks the oldest copied slot still carries its seq: the writer overwrites in seq
order and stamps before writing, so on x86-64 an intact oldest stamp means no copied record was
touched. A mismatch raises OverrunError; nothing is skipped silently.
"""

from __future__ import annotations

from multiprocessing.shared_memory import SharedMemory

import numpy as np

from ipc import shm_layout
from ipc.shm import (
    attach_segment,
    check_header,
    check_memory_model,
    create_segment,
    unlink_segment,
    write_header,
)
from mm.errors import LayoutMismatchError, OverrunError


def _views(
    shm: SharedMemory, capacity: int, item_dtype: np.dtype
) -> tuple[memoryview, memoryview, memoryview]:
    """(u64 cursor, u64 stamp per slot, the records' bytes), bound once per writer or reader."""
    cursor_at = shm_layout.COUNTER_OFFSET
    stamps_at = shm_layout.ring_stamps_offset()
    items_at = shm_layout.ring_items_offset(capacity)
    cursor = shm.buf[cursor_at : cursor_at + 8].cast("Q")
    stamps = shm.buf[stamps_at : stamps_at + capacity * shm_layout.STAMP_SIZE].cast("Q")
    items_bytes = shm.buf[items_at : items_at + capacity * item_dtype.itemsize]
    return cursor, stamps, items_bytes


class RingWriter:
    """The single producer of one ring."""

    def __init__(self, name: str, shm: SharedMemory, capacity: int, item_dtype: np.dtype) -> None:
        self.name = name
        self.capacity = capacity
        self.item_dtype = item_dtype
        self._mask = capacity - 1
        self._shm = shm
        self._cursor, self._stamps, self._items_bytes = _views(shm, capacity, item_dtype)
        self._items = np.ndarray(
            (capacity,), item_dtype, buffer=shm.buf, offset=shm_layout.ring_items_offset(capacity)
        )
        self._next_seq = self._cursor[0]

    @classmethod
    def create(
        cls, name: str, capacity: int, item_dtype: np.dtype, *, allow_weak_memory: bool = False
    ) -> RingWriter:
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"ring {name}: 'capacity' must be a power of two >= 2, was {capacity}")
        check_memory_model(name, allow_weak_memory)
        shm = create_segment(name, shm_layout.ring_segment_size(capacity, item_dtype))
        stamps_at = shm_layout.ring_stamps_offset()
        np.ndarray((capacity,), np.uint64, buffer=shm.buf, offset=stamps_at)[:] = (
            shm_layout.RING_EMPTY_STAMP
        )
        write_header(shm, shm_layout.KIND_RING, capacity, item_dtype)
        return cls(name, shm, capacity, item_dtype)

    def push(self, record: tuple) -> int:
        """Append one record (a tuple in field order); return its seq. Never waits."""
        seq = self._next_seq
        slot = seq & self._mask
        self._stamps[slot] = seq  # claims the slot: readers of seq - capacity now see a lap
        self._items[slot] = record
        self._cursor[0] = seq + 1  # publishes it
        self._next_seq = seq + 1
        return seq

    @property
    def cursor(self) -> int:
        """Records published so far (the seq the next push gets)."""
        return self._next_seq

    def close(self, unlink: bool = True) -> None:
        if self._shm is None:
            return
        for view in (self._cursor, self._stamps, self._items_bytes):
            view.release()
        self._items = None
        shm, self._shm = self._shm, None
        try:
            shm.close()
        finally:
            if unlink:
                unlink_segment(self.name)


class RingReader:
    """One consumer of a ring. `overruns` counts laps, `lost` the records they cost."""

    def __init__(
        self, name: str, shm: SharedMemory, capacity: int, item_dtype: np.dtype, from_start: bool
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.item_dtype = item_dtype
        self.overruns = 0
        self.lost = 0
        self._mask = capacity - 1
        self._itemsize = item_dtype.itemsize
        self._shm = shm
        self._cursor, self._stamps, self._items_bytes = _views(shm, capacity, item_dtype)
        self._position = 0 if from_start else self._cursor[0]
        self._out: np.ndarray | None = None
        self._out_bytes: memoryview | None = None

    @classmethod
    def attach(
        cls,
        name: str,
        item_dtype: np.dtype,
        from_start: bool = False,
        *,
        allow_weak_memory: bool = False,
    ) -> RingReader:
        """`from_start=False`: only records pushed from now on; True: from seq 0 (the first
        poll raises OverrunError if the ring has wrapped since)."""
        shm = attach_segment(name, allow_weak_memory=allow_weak_memory)
        try:
            capacity = check_header(shm, name, shm_layout.KIND_RING, item_dtype)
            required = shm_layout.ring_segment_size(capacity, item_dtype)
            if capacity < 2 or capacity & (capacity - 1) or shm.size < required:
                raise LayoutMismatchError(
                    f"shm {name}: capacity {capacity} in {shm.size} bytes, expected a power of "
                    f"two in >= {required} bytes"
                )
        except BaseException:
            shm.close()
            raise
        return cls(name, shm, capacity, item_dtype, from_start)

    @property
    def position(self) -> int:
        """The seq the next poll starts at."""
        return self._position

    def _bind_out(self, out: np.ndarray) -> memoryview:
        if (
            out.dtype != self.item_dtype
            or out.ndim != 1
            or len(out) == 0
            or not out.flags.c_contiguous
        ):
            raise ValueError(
                f"ring {self.name}: 'out' must be a non-empty C-contiguous 1-d array of the "
                f"item dtype, was {out.shape} {out.dtype}"
            )
        if self._out_bytes is not None:
            self._out_bytes.release()
        self._out = out
        self._out_bytes = memoryview(out).cast("B")
        return self._out_bytes

    def poll(self, out: np.ndarray) -> int:
        """Copy up to len(out) new records, in seq order, into out[:n]; return n (0 if none).
        Lapped: raises OverrunError with the position already moved to the oldest valid record
        (out's contents are then undefined)."""
        out_bytes = self._out_bytes if out is self._out else self._bind_out(out)
        position = self._position
        available = self._cursor[0] - position
        if available <= 0:
            return 0
        if available > self.capacity:
            raise self._resync_after_lap()
        n = min(available, len(out))
        itemsize = self._itemsize
        first = position & self._mask
        head = min(n, self.capacity - first)  # records before the physical end of the ring
        start = first * itemsize
        out_bytes[: head * itemsize] = self._items_bytes[start : start + head * itemsize]
        if head < n:
            out_bytes[head * itemsize : n * itemsize] = self._items_bytes[: (n - head) * itemsize]
        stamps = self._stamps
        last = position + n - 1
        if stamps[first] != position or stamps[last & self._mask] != last:
            raise self._resync_after_lap()
        self._position = position + n
        return n

    def _resync_after_lap(self) -> OverrunError:
        """Move to the oldest record still intact and count the loss; return the error to raise."""
        cursor = self._cursor[0]
        oldest = max(cursor - self.capacity, 0)
        if self._stamps[oldest & self._mask] != oldest:  # the writer is overwriting it right now
            oldest += 1
        position = self._position
        oldest = max(oldest, position + 1)
        lost = oldest - position
        self._position = oldest
        self.overruns += 1
        self.lost += lost
        return OverrunError(
            f"ring {self.name}: lapped by the writer, lost {lost} records "
            f"(seq {position}..{oldest - 1}), resuming at seq {oldest}"
        )

    def close(self) -> None:
        if self._shm is None:
            return
        if self._out_bytes is not None:
            self._out_bytes.release()
        self._out = self._out_bytes = None
        for view in (self._cursor, self._stamps, self._items_bytes):
            view.release()
        shm, self._shm = self._shm, None
        shm.close()
