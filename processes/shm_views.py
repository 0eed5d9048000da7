"""Readers' side of the shared-memory slots: attach lazily, copy out, re-attach after a restart.

A writer that restarts (supervisord after kill -9) creates a fresh segment under the same name;
a reader still mapped to the old one would read a frozen book forever. When a read does not
give the seq the notice announced, and in any case at most every INODE_CHECK_NS, the reader
checks whether the name now points to another segment (its inode changed) and re-attaches.
A name that is gone (a writer that stopped removes its segment) is not another segment: the
reader keeps the last value its mapping holds until a successor creates one.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from ipc.seqlock import SeqlockReader
from mm.errors import SegmentNotReadyError, StaleReadError

log = logging.getLogger(__name__)

INODE_CHECK_NS = 100_000_000  # a restarted writer is noticed within 0.1 s even without notices


def _inode(segment: str) -> int:
    try:
        return os.stat(f"/dev/shm/{segment}").st_ino
    except FileNotFoundError:
        return -1


class SlotView:
    """The newest value of one seqlock slot, copied into `self.value` (a 1-element record array)."""

    def __init__(self, segment: str, dtype: np.dtype) -> None:
        self.segment = segment
        self.dtype = dtype
        self.value = np.zeros(1, dtype)
        self.seq = 0
        self.reattaches = 0
        self.stale_reads = 0
        self._reader: SeqlockReader | None = None
        self._inode = -1
        self._next_inode_check_ns = 0

    def field(self, name: str) -> np.ndarray:
        """A view of one field of `self.value`, for a hot path to bind once: `view.item(0)` is the
        field's (first) element as a Python scalar, about 20x cheaper than `value[0][name]`
        (a record, then a field, then a numpy scalar). `read` copies in place: the view stays valid."""
        return self.value[name]

    def attach(self) -> bool:
        self.close()
        inode = _inode(self.segment)
        try:
            self._reader = SeqlockReader.attach(self.segment, self.dtype)
        except (FileNotFoundError, SegmentNotReadyError):  # its writer has not made it yet
            return False
        self._inode = inode
        return True

    def read(self, expect_seq: int = 0) -> bool:
        """Copy the newest value into self.value; False when there is none (yet) to read."""
        if self._reader is None and not self.attach():
            return False
        seq = self._read_once()
        now_ns = time.monotonic_ns()
        suspicious = bool(expect_seq) and seq != expect_seq
        if suspicious or now_ns >= self._next_inode_check_ns:
            inode = _inode(self.segment)
            # -1: the name is gone (its writer stopped and removed it): our mapping still holds its last value
            if inode != self._inode and inode != -1:
                self.reattaches += 1
                log.info("%s was recreated by its writer: re-attached", self.segment)
                if not self.attach():
                    return False
                seq = self._read_once()
        if suspicious or now_ns >= self._next_inode_check_ns:
            self._next_inode_check_ns = now_ns + INODE_CHECK_NS
        if seq <= 0:
            return False
        self.seq = seq
        return True

    def _read_once(self) -> int:
        assert self._reader is not None
        try:
            return self._reader.read(self.value)
        except StaleReadError:
            self.stale_reads += 1
            return -1

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
