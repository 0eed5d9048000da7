"""A loss-free single-producer, single-consumer message ring in shared memory with a doorbell.

The critical-path transport of issue 15 (`[ipc] critical_path = "shm"`): the writer appends
length-prefixed frames (the same `topic + b" " + msgpack` frames ZeroMQ carries) to a POSIX
segment, then rings an eventfd that the reader registers in its zmq.Poller: one kernel wakeup
per hop, no spinning, no I/O threads. bench/bench_doorbell.py chose eventfd (eventfd and a FIFO
tie on latency; an eventfd is a counter, so nothing piles up, and a dead writer does not make it
hang up; a named semaphore has no descriptor to poll).

Between unrelated processes: the writer creates the segment `mm.<instance>.<writer>.<what>` and
serves its eventfd to whoever connects to the abstract unix socket `@<segment>.bell` (SCM_RIGHTS,
one small thread that only wakes on a connect, and only to a peer of our own uid). Abstract, so
no file to clean up after a crash and no path-length limit from a deep run directory. A restarted writer unlinks the old
segment and makes a new one with a new generation; the reader notices (writer pid gone or
generation changed, checked on its heartbeat timer), reads what the old ring still holds, and
attaches to the new one.

Segment layout (u64 words, the two hot words each on its own cache line):
  0 magic, 8 capacity, 16 writer pid, 24 generation, 32 reader pid (0: no reader attached)
  64 write_pos (bytes published, never wraps), 128 read_pos (bytes consumed, written by the reader)
  256.. data: records of u32 length + payload, padded to 8 bytes, split across the end if needed.
The writer copies a record, then stores write_pos; the reader copies records below write_pos,
then stores read_pos. This relies on x86-64 store order (ipc/shm.check_memory_model refuses
other machines).

A full ring never drops silently: push waits up to `full_timeout_s` for the reader (a bounded
wait that only happens while full, shorter than the peers' liveness window of 3 heartbeats), or,
with `full_timeout_s=None` (a replay, which must lose nothing), for as long as the reader lives;
then it counts the message in `full_drops`, logs an error and raises RingFullError; while the ring stays full further pushes fail at once (counted, one log
line when the episode ends) instead of stalling the writer a second each.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time

from ipc.shm import attach_segment, check_memory_model, create_segment, unlink_segment
from mm.errors import MMError

log = logging.getLogger(__name__)

MAGIC = 0x6D6D5348_4D43484E  # "mmSHMCHN"
HEADER_SIZE = 256
_WRITE_AT = 64
_READ_AT = 128
_LEN = struct.Struct("<I")
_H_MAGIC, _H_CAPACITY, _H_WRITER, _H_GENERATION, _H_READER = range(5)
DEFAULT_CAPACITY = 1 << 22
UNIX_PATH_MAX = 108  # sun_path of a unix socket address on Linux (an abstract one starts with its NUL)
_FULL_SLEEP_S = 0.0002  # the bounded wait on a full ring polls read_pos this often
_generation_lock = threading.Lock()
_last_generation = 0


class RingFullError(MMError):
    """The reader did not free room within the bounded wait: the message was NOT sent."""


class WriterGoneError(MMError):
    """The writer of a channel is not there (never started, or died)."""


def _padded(n: int) -> int:
    return (n + 7) & ~7


def bell_address(segment: str) -> bytes:
    """The doorbell's abstract unix socket address (Linux): one per segment, so one per channel."""
    address = b"\0" + os.fsencode(segment) + b".bell"
    if len(address) >= UNIX_PATH_MAX:
        raise ValueError(f"channel {segment}: its doorbell address is {len(address)} bytes, a unix socket "
                         f"allows {UNIX_PATH_MAX - 1}: choose a shorter [pipeline] instance name")
    return address


def _new_generation() -> int:
    """Unique per segment this host makes: time, nudged past the last one this process made."""
    global _last_generation
    with _generation_lock:
        _last_generation = max(time.time_ns(), _last_generation + 1)
        return _last_generation


class ChannelWriter:
    """The single producer of one channel. `close()` unlinks the segment and the doorbell socket."""

    def __init__(self, segment: str, *, capacity: int = DEFAULT_CAPACITY,
                 full_timeout_s: float | None = 0.2) -> None:
        if capacity < 64 or capacity & 7:
            raise ValueError(f"channel {segment}: capacity must be a multiple of 8 >= 64, was {capacity}")
        check_memory_model(segment, False)
        address = bell_address(segment)
        self.name = segment
        self.capacity = capacity
        self.full_timeout_s = full_timeout_s
        self.full_drops = 0
        self.sent = 0
        self._stalled = False
        self._stalled_drops = 0
        self._shm = create_segment(segment, HEADER_SIZE + capacity)
        buf = self._shm.buf
        self._hdr = buf[0:40].cast("Q")
        self._wpos = buf[_WRITE_AT: _WRITE_AT + 8].cast("Q")
        self._rpos = buf[_READ_AT: _READ_AT + 8].cast("Q")
        self._data = buf[HEADER_SIZE: HEADER_SIZE + capacity]
        self._hdr[_H_CAPACITY] = capacity
        self._hdr[_H_WRITER] = os.getpid()
        self._hdr[_H_GENERATION] = self.generation = _new_generation()
        self._hdr[_H_MAGIC] = MAGIC  # last: a reader that sees the magic sees the rest
        self._w = 0
        self._closed = False
        self._bell_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._serving = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._serving.bind(address)
        self._serving.listen(8)
        self._server = threading.Thread(target=self._serve_fd, name=f"bell-{segment}", daemon=True)
        self._server.start()

    def _serve_fd(self) -> None:
        """Hand our eventfd to each reader that connects (blocks in accept: no wakeups otherwise)."""
        while True:
            try:
                conn, _ = self._serving.accept()
            except OSError:
                return  # closed
            with conn, contextlib.suppress(OSError):
                _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
                if uid == os.getuid():  # an abstract socket has no file mode: check who asks
                    socket.send_fds(conn, [struct.pack("<Q", self.generation)], [self._bell_fd])

    def reader_attached(self) -> bool:
        return self._hdr[_H_READER] != 0

    def push(self, payload: bytes) -> None:
        """Append one frame and ring the doorbell; waits (bounded) while the ring is full."""
        n = len(payload)
        need = (n + 11) & ~7  # 4-byte length + payload, padded to 8
        cap = self.capacity
        w = self._w
        if (self._stalled or cap - (w - self._rpos[0]) < need) and not self._wait_room(need):
            raise RingFullError(f"channel {self.name}: ring full ({cap} bytes), reader not draining")
        data = self._data
        at = w % cap  # a multiple of 8: the length word never splits
        _LEN.pack_into(data, at, n)
        start = at + 4
        end = start + n
        if end <= cap:
            data[start:end] = payload
        else:
            first = cap - start
            data[start:cap] = payload[:first]
            data[0: n - first] = payload[first:]
        self._w = w = w + need
        self._wpos[0] = w  # publishes it
        self.sent += 1
        try:
            os.eventfd_write(self._bell_fd, 1)
        except BlockingIOError:
            pass  # counter saturated: the reader has a wakeup pending already

    # ZeroMQ's name for it: `ipc.sockets.send(channel, topic, msg)` works on a writer too
    send = push

    def _wait_room(self, need: int) -> bool:
        """Wait (bounded) for room; False after counting and logging the failure."""
        free = lambda: self.capacity - (self._w - self._rpos[0]) >= need  # noqa: E731
        if self._stalled:
            if free():
                self._end_stall()
                return True
            self.full_drops += 1
            self._stalled_drops += 1
            return False
        deadline = None if self.full_timeout_s is None else time.monotonic() + self.full_timeout_s
        while not free():
            if self._reader_gone() if deadline is None else time.monotonic() >= deadline:
                self.full_drops += 1
                self._stalled = True
                self._stalled_drops = 1
                log.error("channel %s: ring full and %s: message NOT sent (full_drops=%d); "
                          "further messages fail at once until the reader drains", self.name,
                          "its reader gone" if deadline is None else f"no room for {self.full_timeout_s:.3f} s",
                          self.full_drops)
                return False
            time.sleep(_FULL_SLEEP_S)  # only while full: an exceptional, bounded wait
        return True

    def _reader_gone(self) -> bool:
        """The attached reader detached or its process died (a blocking writer's only way out)."""
        pid = int(self._hdr[_H_READER])
        if pid == 0:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def _end_stall(self) -> None:
        self._stalled = False
        log.error("channel %s: the reader drains again; %d messages were NOT sent while full "
                  "(full_drops=%d)", self.name, self._stalled_drops, self.full_drops)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._serving.shutdown(socket.SHUT_RDWR)
        self._serving.close()
        self._server.join(1.0)
        with contextlib.suppress(OSError):
            os.close(self._bell_fd)
        for view in (self._hdr, self._wpos, self._rpos, self._data):
            view.release()
        self._shm.close()
        unlink_segment(self.name)


class ChannelReader:
    """The single consumer, with ZeroMQ's socket surface as the actor uses it: register it in a
    zmq.Poller (it has `fileno()`), test `get(zmq.EVENTS) & zmq.POLLIN`, then `recv()` a frame.

    Until the writer is there (or between a dead writer and its restart) the reader polls a
    placeholder eventfd of its own; `check()`, called on the heartbeat timer, attaches, and rings
    that descriptor when it finds frames already waiting, so the next poll returns."""

    def __init__(self, segment: str) -> None:
        self.name = segment
        self._address = bell_address(segment)
        self.received = 0
        self.reattaches = 0
        self.attached = False
        self.writer_pid = 0
        self.generation = 0
        self._placeholder = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._fd = self._placeholder
        self._shm = None
        self._inode = -1  # the attached segment's file: a restarted writer's is another one
        self._r = 0
        self._w = 0

    def fileno(self) -> int:
        return self._fd

    def try_attach(self) -> bool:
        """Map the writer's segment and fetch its doorbell; False when it is not there yet."""
        if self.attached:
            return True
        try:
            shm = attach_segment(self.name)
        except FileNotFoundError:
            return False
        buf = shm.buf
        hdr = buf[0:40].cast("Q")
        if hdr[_H_MAGIC] != MAGIC:  # created, not yet initialised
            hdr.release()
            shm.close()
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
                s.settimeout(1.0)
                s.connect(self._address)
                msg, fds, _, _ = socket.recv_fds(s, 8, 1)
        except OSError:
            fds, msg = [], b""
        if len(fds) != 1 or len(msg) != 8 or struct.unpack("<Q", msg)[0] != hdr[_H_GENERATION]:
            for fd in fds:  # a writer between segment and doorbell, or a stale socket: next time
                os.close(fd)
            hdr.release()
            shm.close()
            return False
        self._shm = shm
        self._hdr = hdr
        self.capacity = int(hdr[_H_CAPACITY])
        self.writer_pid = int(hdr[_H_WRITER])
        self.generation = int(hdr[_H_GENERATION])
        self._inode = _segment_inode(shm, self.name)
        self._wpos = buf[_WRITE_AT: _WRITE_AT + 8].cast("Q")
        self._rpos = buf[_READ_AT: _READ_AT + 8].cast("Q")
        self._data = buf[HEADER_SIZE: HEADER_SIZE + self.capacity]
        self._r = int(self._rpos[0])  # a restarted reader goes on where its predecessor stopped
        self._w = int(self._wpos[0])
        hdr[_H_READER] = os.getpid()
        self._fd = fds[0]
        self.attached = True
        if self._r < self._w:  # frames written before we came: the next poll must return
            os.eventfd_write(self._fd, 1)
        return True

    # ---- the socket surface -----------------------------------------------------------------------

    def get(self, option: int) -> int:
        """zmq.EVENTS: POLLIN (1) while a frame waits. Finding none, clear the doorbell first and
        look again: a push after the clear rings again, so no wakeup is ever lost."""
        if self._r < self._w:
            return 1
        if not self.attached:
            return 0
        w = self._w = self._wpos[0]
        if self._r < w:
            return 1
        try:
            os.eventfd_read(self._fd)
        except BlockingIOError:
            return 0
        w = self._w = self._wpos[0]
        return 1 if self._r < w else 0

    def recv(self, flags: int = 0) -> bytes:
        """The next frame; call only when `get(zmq.EVENTS)` said one waits."""
        r = self._r
        if r >= self._w and r >= self._wpos_now():
            raise BlockingIOError(f"channel {self.name}: recv on an empty ring")
        cap = self.capacity
        data = self._data
        at = r % cap
        (n,) = _LEN.unpack_from(data, at)
        start = at + 4
        end = start + n
        if end <= cap:
            frame = data[start:end].tobytes()
        else:
            frame = data[start:cap].tobytes() + data[0: end - cap].tobytes()
        self._r = r = r + ((n + 11) & ~7)
        self._rpos[0] = r  # frees the room
        self.received += 1
        return frame

    def recv_next(self) -> bytes | None:
        """`get` and `recv` in one call (the actor's drain): the next frame, or None when none
        waits, the doorbell cleared as `get` clears it, so no wakeup is lost."""
        r = self._r
        if r >= self._w:
            if not self.attached:
                return None
            w = self._w = self._wpos[0]
            if r >= w:
                try:
                    os.eventfd_read(self._fd)
                except BlockingIOError:
                    return None
                w = self._w = self._wpos[0]
                if r >= w:
                    return None
        cap = self.capacity
        data = self._data
        at = r % cap
        (n,) = _LEN.unpack_from(data, at)
        start = at + 4
        end = start + n
        if end <= cap:
            frame = data[start:end].tobytes()
        else:
            frame = data[start:cap].tobytes() + data[0: end - cap].tobytes()
        self._r = r = r + ((n + 11) & ~7)
        self._rpos[0] = r  # frees the room
        self.received += 1
        return frame

    def _wpos_now(self) -> int:
        if self.attached:
            self._w = self._wpos[0]
        return self._w

    # ---- liveness ------------------------------------------------------------------------------

    def writer_alive(self) -> bool:
        """False once the writer process is gone or a new writer replaced the segment."""
        if not self.attached:
            return False
        try:
            os.kill(self.writer_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        # the name still names the file we mapped: one stat, not a map and unmap on every heartbeat
        try:
            if os.stat(f"/dev/shm/{self.name}").st_ino == self._inode:
                return True
        except FileNotFoundError:
            return False
        try:
            probe = attach_segment(self.name)
        except FileNotFoundError:
            return False
        try:
            hdr = probe.buf[0:40].cast("Q")
            same = hdr[_H_MAGIC] == MAGIC and hdr[_H_GENERATION] == self.generation
            hdr.release()
        finally:
            probe.close()
        return same

    def check(self) -> bool:
        """Heartbeat-timer upkeep: attach when not attached; leave a dead or replaced writer's
        segment once everything it published is read. True when attached (to a live writer or
        one whose last frames still wait)."""
        if not self.attached:
            return self.try_attach()
        if self.writer_alive():
            return True
        self._w = self._wpos[0]
        if self._r < self._w:
            os.eventfd_write(self._fd, 1)  # read the dead writer's last frames first
            return True
        log.warning("channel %s: writer %d gone: waiting for its successor's segment", self.name, self.writer_pid)
        self._detach()
        self.reattaches += 1
        return self.try_attach()

    def _detach(self) -> None:
        if not self.attached:
            return
        self.attached = False
        with contextlib.suppress(ValueError):
            if self._hdr[_H_READER] == os.getpid():
                self._hdr[_H_READER] = 0
        for view in (self._hdr, self._wpos, self._rpos, self._data):
            view.release()
        self._shm.close()
        self._shm = None
        os.close(self._fd)
        self._fd = self._placeholder
        self._r = self._w = 0

    def close(self) -> None:
        self._detach()
        if self._placeholder >= 0:
            os.close(self._placeholder)
            self._placeholder = self._fd = -1


def _segment_inode(shm: object, name: str) -> int:
    """The inode of the file `shm` maps (its descriptor's where it keeps one open; -1: unknown,
    so `writer_alive` probes the segment itself)."""
    fd = getattr(shm, "_fd", -1)
    try:
        return os.fstat(fd).st_ino if fd >= 0 else os.stat(f"/dev/shm/{name}").st_ino
    except OSError:
        return -1
