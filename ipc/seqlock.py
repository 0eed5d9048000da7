"""Seqlock slot: one writer process publishes the latest value (top of book, signal), any number
of reader processes copy it out, never blocking the writer.

Protocol (rigtorp/Seqlock): the writer makes the u64 seq odd, writes the body, makes it even.
A reader loads seq, copies the body if seq is even, and keeps the copy only if seq is unchanged.
Correct on x86-64 only: stores are seen in program order and aligned 8-byte stores are whole;
CPython gives no fences, so `attach` refuses other CPUs unless `allow_weak_memory=True`.
The seq is 0 until the first commit, so `seq == 0` means "nothing published yet".
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
from mm.errors import LayoutMismatchError, StaleReadError


def _seq_view(shm: SharedMemory) -> memoryview:
    offset = shm_layout.COUNTER_OFFSET
    return shm.buf[offset : offset + 8].cast("Q")


def _body_bytes(shm: SharedMemory, body_dtype: np.dtype) -> memoryview:
    offset = shm_layout.BODY_OFFSET
    return shm.buf[offset : offset + body_dtype.itemsize]


class SeqlockWriter:
    """The single writer of one slot. Hot path: `begin()`, assign fields, `commit()`; or
    `publish(...)`. For the leanest writes pre-bind field views once, e.g.
    `bid_px = writer.body["bid_px"][0]`, then `begin(); bid_px[:n] = ...; commit()`."""

    def __init__(self, name: str, shm: SharedMemory, body_dtype: np.dtype) -> None:
        self.name = name
        self.body_dtype = body_dtype
        self._shm = shm
        self._seq = _seq_view(shm)
        self._body_bytes = _body_bytes(shm, body_dtype)
        # shape (1,) view of the body; writes through to shared memory
        self.body = np.ndarray((1,), body_dtype, buffer=shm.buf, offset=shm_layout.BODY_OFFSET)
        self._record = self.body.view(np.recarray)[0]
        self._next_seq = int(self._seq[0])
        self._is_writing = False
        self._staged: np.ndarray | None = None  # the last array given to publish, bound once
        self._staged_bytes: memoryview | None = None

    @classmethod
    def create(
        cls, name: str, body_dtype: np.dtype, *, allow_weak_memory: bool = False
    ) -> SeqlockWriter:
        check_memory_model(name, allow_weak_memory)
        shm = create_segment(name, shm_layout.seqlock_segment_size(body_dtype))
        write_header(shm, shm_layout.KIND_SEQLOCK, 1, body_dtype)
        return cls(name, shm, body_dtype)

    def begin(self) -> np.record:
        """Make seq odd and return the body as a writable record view into shared memory.
        Item access (`rec["bid_px"][:n] = ...`) is ~4x faster than attribute access."""
        if self._is_writing:
            raise RuntimeError(f"seqlock {self.name}: begin() twice without commit()")
        self._is_writing = True
        self._seq[0] = self._next_seq + 1  # odd: write in progress
        return self._record

    def commit(self) -> int:
        """Make seq even (the body is stable) and return it."""
        if not self._is_writing:
            raise RuntimeError(f"seqlock {self.name}: commit() without begin()")
        seq = self._next_seq + 2
        self._seq[0] = seq
        self._next_seq = seq
        self._is_writing = False
        return seq

    def publish(self, values: tuple | dict | np.ndarray) -> int:
        """Write a whole body: a tuple in field order, a dict of some fields (the others keep
        their last values), or a C-contiguous shape-(1,) array of `body_dtype`, copied bytewise
        (fastest when the same staging array is passed every time: its bytes view is bound once).
        If the write fails, seq stays odd (readers get StaleReadError) until the next commit."""
        if isinstance(values, np.ndarray):
            staged = self._staged_bytes if values is self._staged else self._bind_staged(values)
            self.begin()
            self._body_bytes[:] = staged
            return self.commit()
        self.begin()
        try:
            if isinstance(values, tuple):
                self.body[0] = values
            else:
                record = self._record
                for field, value in values.items():
                    record[field] = value
        except BaseException:
            self._is_writing = False  # seq stays odd: no stable body until the next commit
            raise
        return self.commit()

    def _bind_staged(self, values: np.ndarray) -> memoryview:
        if values.dtype != self.body_dtype or values.shape != (1,) or not values.flags.c_contiguous:
            raise ValueError(
                f"seqlock {self.name}: publish wants a C-contiguous (1,) array of the body "
                f"dtype, was {values.shape} {values.dtype}"
            )
        if self._staged_bytes is not None:
            self._staged_bytes.release()
        self._staged = values
        self._staged_bytes = memoryview(values).cast("B")
        return self._staged_bytes

    def seq(self) -> int:
        return int(self._seq[0])

    def close(self, unlink: bool = True) -> None:
        """Unmap (and by default unlink); drop any record returned by `begin()` first."""
        if self._shm is None:
            return
        if self._staged_bytes is not None:
            self._staged_bytes.release()
        self._staged = self._staged_bytes = None
        self._seq.release()
        self._body_bytes.release()
        self._record = None
        self.body = None
        shm, self._shm = self._shm, None
        try:
            shm.close()
        finally:
            if unlink:
                unlink_segment(self.name)


class SeqlockReader:
    """One reader of a slot; `read(out)` copies a consistent body into `out`."""

    def __init__(self, name: str, shm: SharedMemory, body_dtype: np.dtype, max_tries: int) -> None:
        self.name = name
        self.body_dtype = body_dtype
        self.max_tries = max_tries
        self._shm = shm
        self._seq = _seq_view(shm)
        self._body_bytes = _body_bytes(shm, body_dtype)
        self._out: np.ndarray | None = None  # the last `out`, and its bytes, bound once
        self._out_bytes: memoryview | None = None

    @classmethod
    def attach(
        cls,
        name: str,
        body_dtype: np.dtype,
        max_tries: int = 1000,
        *,
        allow_weak_memory: bool = False,
    ) -> SeqlockReader:
        if max_tries < 1:
            raise ValueError(f"'max_tries' must be >= 1, was {max_tries}")
        shm = attach_segment(name, allow_weak_memory=allow_weak_memory)
        try:
            check_header(shm, name, shm_layout.KIND_SEQLOCK, body_dtype)
            required = shm_layout.seqlock_segment_size(body_dtype)
            if shm.size < required:
                raise LayoutMismatchError(
                    f"shm {name}: segment is {shm.size} bytes, expected >= {required}"
                )
        except BaseException:
            shm.close()
            raise
        return cls(name, shm, body_dtype, max_tries)

    def _bind_out(self, out: np.ndarray) -> memoryview:
        if out.dtype != self.body_dtype or out.shape != (1,) or not out.flags.c_contiguous:
            raise ValueError(
                f"seqlock {self.name}: 'out' must be a C-contiguous (1,) array of the body "
                f"dtype, was {out.shape} {out.dtype}"
            )
        if self._out_bytes is not None:
            self._out_bytes.release()
        self._out = out
        self._out_bytes = memoryview(out).cast("B")
        return self._out_bytes

    def read(self, out: np.ndarray) -> int:
        """Copy a stable body into `out` (np.zeros(1, body_dtype), reused across calls) and
        return its seq (even; 0 = nothing published yet). StaleReadError after max_tries."""
        out_bytes = self._out_bytes if out is self._out else self._bind_out(out)
        seq = self._seq
        before = seq[0]
        if before % 2 == 0:  # even: no write in progress (first try inline, the common case)
            out_bytes[:] = self._body_bytes
            if seq[0] == before:
                return before
        return self._read_retrying(out_bytes)

    def _read_retrying(self, out_bytes: memoryview) -> int:
        seq = self._seq
        body = self._body_bytes
        for _ in range(self.max_tries - 1):
            before = seq[0]
            if before % 2 == 0:
                out_bytes[:] = body
                if seq[0] == before:
                    return before
        raise StaleReadError(
            f"seqlock {self.name}: no stable read in {self.max_tries} tries, seq {seq[0]}"
        )

    def seq(self) -> int:
        """The seq now (odd while a write is in progress); no copy."""
        return self._seq[0]

    def close(self) -> None:
        if self._shm is None:
            return
        if self._out_bytes is not None:
            self._out_bytes.release()
        self._out = self._out_bytes = None
        self._seq.release()
        self._body_bytes.release()
        shm, self._shm = self._shm, None
        shm.close()
