"""ZeroMQ sockets of one actor: creation with linger and high-water marks, the hello handshake
that proves a subscriber is connected, and typed msgpack framing.

Hello handshake (fixes the slow joiner): every publisher is an XPUB; a subscriber subscribes to its
data topics first and then to `hello.<its name>`. Subscriptions on one connection arrive in order,
so when the XPUB reads `hello.<name>` that subscriber's data subscription is in force.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from collections.abc import Callable
from typing import Any

import msgspec
import zmq

from ipc.endpoints import ENDPOINTS, endpoint, socket_path
from mm.config import Config

log = logging.getLogger(__name__)

HELLO_PREFIX = b"hello."


class Publisher:
    """An XPUB that knows which named subscribers are connected."""

    def __init__(self, sock: zmq.Socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.subscribers: set[str] = set()

    def on_subscriptions(self) -> list[str]:
        """Read pending subscription frames; return subscribers that said hello just now."""
        joined: list[str] = []
        while readable(self.sock):
            frame = self.sock.recv(_NOBLOCK)
            if frame[:1] == b"\x01" and frame[1:].startswith(HELLO_PREFIX):
                who = frame[1 + len(HELLO_PREFIX):].decode("ascii", "replace")
                self.subscribers.add(who)
                joined.append(who)
        return joined


class SocketSet:
    """The sockets of one process, all made in the thread that owns this set."""

    def __init__(self, config: Config, owner: str, ctx: zmq.Context | None = None) -> None:
        self.config = config
        self.owner = owner
        self.ctx = ctx or zmq.Context()
        self._sockets: list[tuple[zmq.Socket, int]] = []
        self._bound_files: list[Path] = []  # ZeroMQ leaves ipc socket files behind: we remove ours

    def _make(self, kind: int, linger_ms: int = 0) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, linger_ms)
        hwm = self.config.ipc.hwm
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.RCVHWM, hwm)
        self._sockets.append((sock, linger_ms))
        return sock

    def _bind(self, sock: zmq.Socket, name: str) -> None:
        if ENDPOINTS[name] != self.owner:
            raise ValueError(f"{self.owner} may not bind {name!r}: it belongs to {ENDPOINTS[name]}")
        address = endpoint(self.config, name)
        if address.startswith("ipc://"):
            path = socket_path(self.config, name)
            ensure_private_dir(path.parent)
            if path.exists():  # left by a crashed run: we are the only binder of this name
                path.unlink()
        sock.bind(address)
        if address.startswith("ipc://"):
            os.chmod(socket_path(self.config, name), stat.S_IRUSR | stat.S_IWUSR)
            self._bound_files.append(socket_path(self.config, name))

    def adopt(self, sock: zmq.Socket, linger_ms: int = 0) -> None:
        """Close `sock` with the others (an inproc socket made outside the endpoint table)."""
        self._sockets.append((sock, linger_ms))

    def publisher(self, name: str) -> Publisher:
        sock = self._make(zmq.XPUB)
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every hello reaches us, also a repeated one
        self._bind(sock, name)
        return Publisher(sock, name)

    def subscriber(self, names: list[str], topics: list[bytes]) -> zmq.Socket:
        sock = self._make(zmq.SUB)
        for topic in topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        sock.setsockopt(zmq.SUBSCRIBE, HELLO_PREFIX + self.owner.encode())
        for name in names:
            sock.connect(endpoint(self.config, name))
        return sock

    def pull(self, name: str) -> zmq.Socket:
        sock = self._make(zmq.PULL)
        self._bind(sock, name)
        return sock

    def push(self, name: str, *, linger_ms: int = 0) -> zmq.Socket:
        sock = self._make(zmq.PUSH, linger_ms)
        sock.connect(endpoint(self.config, name))
        return sock

    def reply(self, name: str, configure: Callable[[zmq.Socket], None] | None = None) -> zmq.Socket:
        """A REP socket; `configure` runs before bind (e.g. CURVE server options)."""
        sock = self._make(zmq.REP)
        if configure is not None:
            configure(sock)
        self._bind(sock, name)
        return sock

    def close(self) -> None:
        for sock, linger_ms in self._sockets:
            sock.close(linger=linger_ms)
        self._sockets.clear()
        self.ctx.term()
        for path in self._bound_files:
            path.unlink(missing_ok=True)
        self._bound_files.clear()


def ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


class Codec:
    """One reused decoder per message union; every bad frame raises msgspec.DecodeError."""

    def __init__(self, union: Any) -> None:
        self.decoder = msgspec.msgpack.Decoder(union)

    def decode(self, payload: bytes | memoryview) -> Any:
        try:
            return self.decoder.decode(payload)
        except UnicodeDecodeError as e:  # msgspec 0.22 lets this through for a tag with invalid UTF-8
            raise msgspec.DecodeError(f"invalid UTF-8 in frame: {e}") from None


ENCODER = msgspec.msgpack.Encoder()

# plain ints: pyzmq's enum flags and send_multipart / recv_multipart cost microseconds of Python per
# frame on the hot path (type checks, enum construction, an exception per empty socket)
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
TOPIC_END = b" "  # topics are ASCII names (mm/config.py `Name`, process names): never a space
# the C calls under pyzmq's sugar: Socket.send's Python wrapper adds only options we never pass
# (routing_id, group), and get(EVENTS) builds a SocketOption enum per call (~0.8 us each here)
_ZMQ_SEND = zmq.backend.Socket.send
_zmq_poll = zmq.backend.zmq_poll


def frame(topic: bytes, msg: msgspec.Struct) -> bytes:
    """One message in one frame: the topic (what SUB sockets filter on, as a prefix), a space, the
    msgpack body. One frame, not two: every frame costs a send, a receive and a "more?" query."""
    return topic + TOPIC_END + ENCODER.encode(msg)


def send(sock: zmq.Socket, topic: bytes, msg: msgspec.Struct) -> None:
    if type(sock) is zmq.Socket:
        _ZMQ_SEND(sock, frame(topic, msg))
    else:  # a shm channel writer or fanout, a subclass of zmq.Socket
        sock.send(frame(topic, msg))


def readable(sock: zmq.Socket) -> bool:
    """A message is waiting (no exception when there is none, unlike a NOBLOCK recv)."""
    if type(sock) is zmq.Socket:
        return bool(_zmq_poll([(sock, _POLLIN)], 0))
    return bool(sock.get(_EVENTS) & _POLLIN)


def recv_topic_payload(sock: zmq.Socket) -> tuple[bytes, memoryview]:
    """The next message's topic and body (a view into the frame); ValueError when the frame has no
    topic. Call only when `readable`: NOBLOCK never waits then."""
    data = sock.recv(_NOBLOCK)
    end = data.find(TOPIC_END)
    if end <= 0:
        raise ValueError(f"no topic in a frame of {len(data)} bytes")
    return data[:end], memoryview(data)[end + 1:]
