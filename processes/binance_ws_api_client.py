"""A persistent, signed Binance WebSocket API connection (spot `/ws-api/v3`, USD-M `/ws-fapi/v1`), and
the USD-M user-data stream connection (`/private/ws?listenKey=...`), on picows.

`WsApiClient.run(stop)` keeps one connection alive: connect, then (spot, `subscribe_user_data`) send
`userDataStream.subscribe.signature` on it; only then is it `up` and `on_up()` is called (the shell
reconciles over REST: events may have been missed while it was down). A lost connection fails every
request in flight with `WsApiUnknown` (the venue may have applied it), calls `on_down(reason)` and is
re-made after an exponential backoff with full jitter. `request(method, params)` signs the params
(HMAC-SHA256 over the params sorted by name, apiKey and timestamp included: BINANCE.md §3.1 vector 4)
and waits for the reply with the same id: the result and its `rateLimits`, or `WsApiRequestError`
(status, code, msg). Not connected: `WsApiDown` at once (nothing was sent: the caller uses REST).

User-data events (`{"subscriptionId", "event"}` on spot, bare `{"e": ...}` on the USD-M stream) go to
`on_event(event)` in arrival order. Pings are answered by picows (payload echoed); an idle connection
is pinged by us and dropped when the pong is late. Secrets: the API key and secret never reach a log
line (requests are logged by method only; the URL of a user-data stream carries the listenKey, which
is logged redacted).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from picows import WSError, WSMsgType, ws_connect

from mm.signing import HmacSigner
from mm.ws_api import signature_payload
from processes.async_worker import backoff
from processes.ws_connection import ClientConnection

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4 * 1024 * 1024


class WsApiDown(Exception):
    """Not connected: the request was not sent."""


class WsApiUnknown(Exception):
    """Sent, but no answer came (connection lost, or the reply timed out): the outcome is unknown."""


class WsApiRequestError(Exception):
    def __init__(self, status: int, code: int, msg: str, data: Any = None) -> None:
        super().__init__(f"ws-api {status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.data = data


def redact_url(url: str) -> str:
    """A user-data stream URL without its listenKey (what a log line may show)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?listenKey=***" if "listenKey" in parts.query else "")


class _Connection(ClientConnection):
    def __init__(self, client: WsApiClient) -> None:
        super().__init__()
        self.client = client

    def on_text(self, payload: bytes, ts_recv_ns: int) -> None:
        self.client._on_text(payload)


class WsApiClient:
    """See the module docstring. `url_fn` gives the URL at each connect (a USD-M stream's listenKey
    changes); `venue_now_ms` the venue's clock (local time minus the measured offset)."""

    def __init__(self, name: str, url_fn: Callable[[], Awaitable[str]], *, api_key: str = "", secret: str = "",
                 recv_window_ms: int = 5000, venue_now_ms: Callable[[], int] | None = None,
                 on_event: Callable[[dict], None] | None = None, on_up: Callable[[], None] | None = None,
                 on_down: Callable[[str], None] | None = None, subscribe_user_data: bool = False,
                 timeout_s: float = 5.0, backoff_initial_s: float = 0.2, backoff_max_s: float = 10.0,
                 ping_idle_s: float = 20.0, rng: random.Random | None = None) -> None:
        self.name = name
        self.url_fn = url_fn
        self.api_key = api_key
        self._signer = HmacSigner(secret) if secret else None
        self.recv_window_ms = recv_window_ms
        self.venue_now_ms = venue_now_ms or (lambda: time.time_ns() // 1_000_000)
        self.on_event = on_event or (lambda event: None)
        self.on_up = on_up or (lambda: None)
        self.on_down = on_down or (lambda reason: None)
        self.subscribe_user_data = subscribe_user_data
        self.timeout_s = timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.ping_idle_s = ping_idle_s
        self.rng = rng or random.Random()
        self.counts: Counter[str] = Counter()
        self.up = False
        self.subscription_id: int | None = None
        self._conn: _Connection | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 1
        self._decoder = msgspec.json.Decoder()
        self._encoder = msgspec.json.Encoder()

    def __repr__(self) -> str:
        return f"WsApiClient({self.name!r}, up={self.up})"

    # ---- the connection ----

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            conn = await self._connect()
            if conn is None:
                await self._backoff(attempt, stop)
                attempt += 1
                continue
            self._conn = conn
            try:
                if self.subscribe_user_data:
                    result, _ = await self._send("userDataStream.subscribe.signature", {}, signed=True, conn=conn)
                    self.subscription_id = int(result.get("subscriptionId", 0))
                self.up = True
                attempt = 0
                self.counts["up"] += 1
                self.on_up()
                stopped = asyncio.ensure_future(stop.wait())
                closed = asyncio.ensure_future(conn.closed.wait())
                await asyncio.wait((stopped, closed), return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                closed.cancel()
            except (WsApiRequestError, WsApiUnknown, WsApiDown) as e:
                log.warning("%s: user-data subscription failed: %s", self.name, e)
                conn.close("subscribe_failed")
            finally:
                was_up = self.up
                self.up = False
                self._conn = None
                self._fail_pending(conn.close_reason or "disconnected")
                if not stop.is_set():
                    conn.close("disconnected")
                    self.counts["down"] += 1
                    log.warning("%s: connection lost (%s), reconnecting", self.name, conn.close_reason)
                    if was_up:
                        self.on_down(conn.close_reason)
                else:
                    conn.close("stopped")
            if not stop.is_set():
                await self._backoff(attempt, stop)
                attempt += 1

    def drop(self, reason: str) -> None:
        """Close the connection now (a stream that must be re-made, e.g. listenKeyExpired)."""
        if self._conn is not None:
            self._conn.close(reason)

    async def _connect(self) -> _Connection | None:
        try:
            url = await self.url_fn()
        except Exception as e:  # noqa: BLE001 - e.g. the listenKey could not be created: retry later
            self.counts["connect_failures"] += 1
            log.warning("%s: no URL to connect to: %s", self.name, type(e).__name__)
            return None
        tls = ssl.create_default_context() if url.startswith("wss:") else None
        try:
            _, listener = await asyncio.wait_for(
                ws_connect(lambda: _Connection(self), url, ssl_context=tls, enable_auto_ping=True,
                           auto_ping_idle_timeout=self.ping_idle_s, auto_ping_reply_timeout=self.ping_idle_s / 2,
                           websocket_handshake_timeout=self.timeout_s, max_frame_size=MAX_FRAME_BYTES,
                           logger_name="binance_ws_api"),
                self.timeout_s)
        except (OSError, WSError, asyncio.TimeoutError) as e:
            self.counts["connect_failures"] += 1
            log.warning("%s: connect to %s failed: %s", self.name, redact_url(url), type(e).__name__)
            return None
        self.counts["connections"] += 1
        assert isinstance(listener, _Connection)
        return listener

    async def _backoff(self, attempt: int, stop: asyncio.Event) -> None:
        await backoff(attempt, self.backoff_initial_s, self.backoff_max_s, self.rng, stop)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WsApiUnknown(f"{self.name}: connection lost ({reason}) before the reply"))

    # ---- frames ----

    def _on_text(self, payload: bytes) -> None:
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError:
            self.counts["bad_frames"] += 1
            return
        if not isinstance(msg, dict):
            self.counts["bad_frames"] += 1
            return
        if "id" in msg and ("status" in msg):
            future = self._pending.pop(msg["id"], None) if isinstance(msg["id"], int) else None
            if future is not None and not future.done():
                future.set_result(msg)
            else:
                self.counts["late_replies"] += 1
            return
        event = msg.get("event") if "subscriptionId" in msg else msg
        if not isinstance(event, dict) or "e" not in event:
            self.counts["bad_frames"] += 1
            return
        self.counts["events"] += 1
        if event["e"] == "eventStreamTerminated" and self._conn is not None:
            self._conn.close("event_stream_terminated")  # subscribe again on a fresh connection
        self.on_event(event)

    # ---- requests ----

    async def request(self, method: str, params: dict[str, Any], *, signed: bool = True) -> tuple[dict, list]:
        conn = self._conn
        if not self.up or conn is None:
            self.counts["down_refused"] += 1
            raise WsApiDown(f"{self.name}: not connected")
        return await self._send(method, params, signed=signed, conn=conn)

    async def _send(self, method: str, params: dict[str, Any], *, signed: bool, conn: _Connection
                    ) -> tuple[dict, list]:
        transport = conn.transport
        if transport is None or transport.is_disconnected:
            raise WsApiDown(f"{self.name}: not connected")
        body = dict(params)
        if signed:
            if self._signer is None:
                raise WsApiRequestError(0, -2014, "no API key to sign with")
            body["apiKey"] = self.api_key
            body["timestamp"] = self.venue_now_ms()
            body["recvWindow"] = self.recv_window_ms
            body["signature"] = self._signer.sign(signature_payload(body))
        request_id = self._next_id
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        transport.send(WSMsgType.TEXT, self._encoder.encode({"id": request_id, "method": method, "params": body}))
        self.counts[f"sent_{method}"] += 1
        try:
            reply = await asyncio.wait_for(future, self.timeout_s)
        except asyncio.TimeoutError:
            self._pending.pop(request_id, None)
            self.counts["timeouts"] += 1
            raise WsApiUnknown(f"{self.name}: {method}: no reply within {self.timeout_s} s") from None
        status = int(reply.get("status", 0))
        if status != 200:
            error = reply.get("error") or {}
            raise WsApiRequestError(status, int(error.get("code", 0)), str(error.get("msg", "")), error.get("data"))
        return reply.get("result") or {}, reply.get("rateLimits") or []
