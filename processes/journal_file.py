"""The journal file: open (recover and cut a bad tail), append, fsync by policy, close.

Appends go straight to the kernel with os.write on an O_APPEND descriptor (no user-space buffer),
so a killed process loses nothing it appended; fsync (by `FsyncPolicy`) covers a power cut. Format,
record types and the recovery scan are mm/journal.py.

Gateway use: `journal, recovery = JournalFile.open(path, policy)`; rebuild the tracker with
`tracker.replay(r)` for each order record in `recovery.records`; then `journal.append(record)` for
every record a tracker command returns and every venue event before acting on it; call
`journal.on_timer(time.monotonic_ns())` from the loop's timers for the interval policy.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from mm.journal import HEADER, FsyncPolicy, JournalEntry, Recovery, Tail, encode_frame, is_sync_due, scan

log = logging.getLogger(__name__)


class JournalFile:
    def __init__(self, path: Path, fd: int, policy: FsyncPolicy, size: int) -> None:
        self.path = path
        self._fd = fd
        self.policy = policy
        self.size = size
        self._is_dirty = False
        self._last_sync_ns = time.monotonic_ns()

    @classmethod
    def open(cls, path: str | Path, policy: FsyncPolicy) -> tuple[JournalFile, Recovery]:
        """Open or create the journal at `path`, recover its records, cut a bad tail (with a warning)."""
        path = Path(path)
        is_new = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            with open(fd, "rb", closefd=False) as f:
                recovery = scan(f.read())
            if recovery.tail in (Tail.TRUNCATED, Tail.CORRUPT):
                log.warning("journal %s: %s tail cut: %s; kept %d records (%d bytes), dropped %d bytes",
                            path, recovery.tail.value, recovery.detail, len(recovery.records),
                            recovery.good_length, recovery.dropped_bytes)
                os.ftruncate(fd, recovery.good_length)
                os.fsync(fd)
            size = recovery.good_length
            if size == 0:
                _write_all(fd, HEADER)
                os.fsync(fd)
                size = len(HEADER)
                if is_new:
                    _fsync_dir(path.parent)
        except BaseException:
            os.close(fd)
            raise
        log.info("journal %s: opened, %d records recovered, fsync=%s", path, len(recovery.records), policy.mode)
        return cls(path, fd, policy, size), recovery

    def append(self, record: JournalEntry) -> int:
        """Append one record; fsync now if the policy says so. Returns the frame's size in bytes."""
        frame = encode_frame(record)
        _write_all(self._fd, frame)
        self.size += len(frame)
        self._is_dirty = True
        if self.policy.mode == "always":
            self.sync()
        elif self.policy.mode == "interval_ms":
            self.on_timer(time.monotonic_ns())
        return len(frame)

    def append_many(self, records: list[JournalEntry]) -> int:
        """Append several records with one write (one fsync under `always`)."""
        data = b"".join(encode_frame(r) for r in records)
        _write_all(self._fd, data)
        self.size += len(data)
        self._is_dirty = True
        if is_sync_due(self.policy, True, self._last_sync_ns, time.monotonic_ns()):
            self.sync()
        return len(data)

    def on_timer(self, now_ns: int) -> None:
        if is_sync_due(self.policy, self._is_dirty, self._last_sync_ns, now_ns):
            self.sync()

    def sync(self) -> None:
        os.fsync(self._fd)
        self._is_dirty = False
        self._last_sync_ns = time.monotonic_ns()

    def close(self) -> None:
        if self._fd < 0:
            return
        if self._is_dirty and self.policy.mode != "never":
            self.sync()
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> JournalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
