"""The console's side of the control endpoint: REQ with the Lazy Pirate pattern (zguide ch. 4).

A request that gets no reply within the timeout is retried on a fresh socket (a REQ socket that
missed its reply is stuck); after the last retry the caller gets ControlUnreachableError. Never hangs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import zmq

from ipc.curve import make_client
from ipc.endpoints import endpoint, socket_path
from ipc.messages import ConsoleReply, ConsoleRequest
from mm.config import Config
from mm.errors import MMError


class ControlUnreachableError(MMError):
    """The pipeline's control endpoint did not answer."""


class ControlClient:
    def __init__(self, config: Config, *, timeout_ms: int = 1000, retries: int = 3) -> None:
        self.address = endpoint(config, "control")
        tcp = config.ipc.transport == "tcp"
        self.curve_dir = Path(config.ipc.curve_keys_dir) if tcp else None
        self.socket_file = None if tcp else socket_path(config, "control")
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.ctx = zmq.Context()
        self._sock: zmq.Socket | None = None
        self._decoder = msgspec.json.Decoder(ConsoleReply)

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            sock = self.ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve_dir is not None:
                make_client(sock, self.curve_dir)
            sock.connect(self.address)
            self._sock = sock
        return self._sock

    def request(self, command: str, args: list[str] | None = None) -> ConsoleReply:
        if self.socket_file is not None and not self.socket_file.exists():  # nothing to wait for
            raise ControlUnreachableError(f"no pipeline is running here: {self.socket_file} does not exist")
        payload = msgspec.json.encode(ConsoleRequest(command=command, args=args or []))
        for _ in range(self.retries):
            sock = self._socket()
            sock.send(payload)
            if sock.poll(self.timeout_ms, zmq.POLLIN):
                return self._decoder.decode(sock.recv())
            sock.close(linger=0)  # Lazy Pirate: a REQ that lost its reply cannot send again
            self._sock = None
        raise ControlUnreachableError(f"control endpoint {self.address} did not answer "
                                      f"{self.retries} tries of {self.timeout_ms} ms")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
        self.ctx.term()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
