"""What every websocket connection we open to a venue shares (picows listener): the transport,
why it closed, when data last came, and the frame dispatch. A client subclasses it and says what
a text frame means (`on_text`); pings are answered, a server's close frame is answered and ends it."""

from __future__ import annotations

import asyncio
import time

from picows import WSFrame, WSListener, WSMsgType, WSTransport


class ClientConnection(WSListener):
    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.last_data_mono = time.monotonic()
        self.data_frames = 0

    # ---- what a client says -----------------------------------------------------------------------

    def on_open(self) -> None:
        """Connected (subscribe here)."""

    def on_text(self, payload: bytes, ts_recv_ns: int) -> None:
        raise NotImplementedError

    def on_ping(self) -> None:
        """A server's ping, already answered."""

    def on_pong(self, payload: bytes) -> None:
        """The answer to a ping of ours."""

    def on_other(self, frame: WSFrame) -> None:
        """A binary or continuation frame: no venue of ours sends one."""

    # ---- picows -----------------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.on_open()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT:
            ts_recv_ns = time.time_ns()
            self.last_data_mono = time.monotonic()
            self.data_frames += 1
            self.on_text(frame.get_payload_as_bytes(), ts_recv_ns)
        elif kind is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
            self.on_ping()
        elif kind is WSMsgType.PONG:
            self.on_pong(frame.get_payload_as_bytes())
        elif kind is WSMsgType.CLOSE:
            self.close_reason = self.close_reason or "server_close"
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        else:
            self.on_other(frame)

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_disconnected and not self.closed.is_set()

    def close(self, reason: str) -> None:
        """Close it now (the first reason given is the one kept)."""
        self.close_reason = self.close_reason or reason
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect(graceful=False)
        else:
            self.closed.set()
