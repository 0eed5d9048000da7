"""The feed's Hyperliquid market-data client: one picows websocket to `/ws`, `l2Book` and `trades`
of one coin, each frame through the one converter (processes/feed_convert.CheckedBookFeed: the
push rules of mm.hyperliquid_frames, then a snapshot and changed-level diffs).

- Subscribes on every connection; each `l2Book` push is a whole book, so a reconnect needs no
  REST snapshot: the first push after it is forwarded as a snapshot (`resync`), as is the next one
  whenever the book stage asks for a snapshot.
- The idle rule (HYPERLIQUID.md §4): the server closes a connection it has sent nothing on for
  60 s; we send `{"method":"ping"}` every `ping_interval_s` (the SDK's 50 s) and count the pongs.
- Reconnects after a close, a failed connect or `silent_s` without a frame wait
  `uniform(0, min(backoff_max_s, backoff_initial_s * 2**attempt))` (full jitter, as the Binance
  client); `attempt` resets once a connection has carried data.
- TLS verification stays on (`wss://`); `ws://` only to a loopback host (`mm venue`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from picows import WSError, WSMsgType, ws_connect

from mm.errors import MMError
from mm.hyperliquid_frames import grid_for
from mm.ticks import TickGrid
from processes.async_worker import backoff
from processes.binance_ws import FeedConnectError, check_url
from processes.feed_convert import CheckedBookFeed, Drop
from processes.ws_connection import ClientConnection

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1 << 22
PING = json.dumps({"method": "ping"}).encode()
LOG_EVERY_DROPS = 1000


async def fetch_coin_grid(info_url: str, coin: str, timeout_s: float = 10.0) -> TickGrid:
    """The coin's finest price and size grid from `/info` `meta` (its szDecimals, HYPERLIQUID.md §2)."""
    check_url(info_url, "https", "http")
    url = info_url.rstrip("/") + "/info"
    tls: Any = ssl.create_default_context() if url.startswith("https:") else None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
            async with session.post(url, json={"type": "meta"}, ssl=tls) as reply:
                body = await reply.read()
                if reply.status != 200:
                    raise FeedConnectError(f"POST {url} meta: HTTP {reply.status}: {body[:200]!r}")
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        raise FeedConnectError(f"POST {url} meta: {type(e).__name__}: {e}") from None
    try:
        universe = json.loads(body)["universe"]
        sz_decimals = next(int(asset["szDecimals"]) for asset in universe if asset["name"] == coin)
    except StopIteration:
        raise MMError(f"POST {url} meta: no perp named {coin!r} in the venue's universe") from None
    except (ValueError, KeyError, TypeError) as e:
        raise FeedConnectError(f"POST {url} meta: bad reply ({type(e).__name__}: {e}): {body[:200]!r}") from None
    return grid_for(coin, sz_decimals)


class _Connection(ClientConnection):
    def __init__(self, client: HyperliquidStreamClient) -> None:
        super().__init__()
        self.client = client
        self.last_sent_mono = self.last_data_mono

    def on_open(self) -> None:
        for kind in ("l2Book", "trades"):
            self.send({"method": "subscribe", "subscription": {"type": kind, "coin": self.client.coin}})

    def send(self, message: dict | bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, message if isinstance(message, bytes) else json.dumps(message).encode())
        self.last_sent_mono = time.monotonic()

    def on_text(self, payload: bytes, ts_recv_ns: int) -> None:
        if self.client.recorder is not None:
            self.client.recorder.write_frame(ts_recv_ns, payload)
        self.client._on_payload(payload, ts_recv_ns)


class HyperliquidStreamClient:
    """`l2Book` + `trades` of `coin` from Hyperliquid's `/ws` URL; see the module docstring."""

    def __init__(self, url: str, coin: str, grid: TickGrid, *, silent_s: float = 10.0, ping_interval_s: float = 50.0,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0, connect_timeout_s: float = 10.0,
                 rng: random.Random | None = None, recorder: Any = None) -> None:
        check_url(url, "wss", "ws")
        for name, value in (("silent_s", silent_s), ("ping_interval_s", ping_interval_s),
                            ("backoff_initial_s", backoff_initial_s), ("backoff_max_s", backoff_max_s),
                            ("connect_timeout_s", connect_timeout_s)):
            if value <= 0:
                raise ValueError(f"'{name}' must be > 0, was {value}")
        self.url = url
        self.coin = coin
        self.feed = CheckedBookFeed("hyperliquid", coin, grid)
        self.ssl_context = ssl.create_default_context() if urlsplit(url).scheme == "wss" else None
        self.silent_s = silent_s
        self.ping_interval_s = ping_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.rng = rng or random.Random()
        self.recorder = recorder  # `mm capture`: has write_frame(ts_ns, payload: bytes), gets every text frame
        self.counts: Counter[str] = Counter()
        self.last_drop = ""
        self._active: _Connection | None = None
        self._on_message: Callable[[Any], None] | None = None

    @property
    def is_connected(self) -> bool:
        return self._active is not None and self._active.is_open

    def resync(self) -> None:
        """Forward the next push as a snapshot (the book stage asked for one)."""
        self.feed.resync()

    def _on_payload(self, payload: bytes, ts_recv_ns: int) -> None:
        for item in self.feed.convert(payload, ts_recv_ns, ts_recv_ns):
            if type(item) is Drop:
                key = "drop_" + item.reason
                self.counts[key] += 1
                self.last_drop = f"{item.reason}: {item.detail}"
                if self.counts[key] % LOG_EVERY_DROPS == 1:
                    log.warning("dropped frame (%s, %d so far): %s", item.reason, self.counts[key], item.detail)
            else:
                assert self._on_message is not None
                self._on_message(item)
        if payload.startswith(b'{"channel":"pong"'):
            self.counts["pongs"] += 1

    async def run(self, on_message: Callable[[Any], None], stop: asyncio.Event) -> None:
        """Stream until `stop` is set."""
        self._on_message = on_message
        attempt = 0
        while not stop.is_set():
            conn = await self._connect()
            if conn is None:
                await self._backoff(attempt, stop)
                attempt += 1
                continue
            self._active = conn
            self.feed.resync()  # whatever was missed, the first push is the whole book
            await self._serve(conn, stop)
            self._active = None
            if stop.is_set():
                break
            self.counts["reconnects"] += 1
            self.counts["reconnects_" + (conn.close_reason or "closed")] += 1
            log.warning("stream %s: connection lost (%s), reconnecting", self.url, conn.close_reason or "closed")
            if conn.data_frames:
                attempt = 0
            await self._backoff(attempt, stop)
            attempt += 1

    async def _serve(self, conn: _Connection, stop: asyncio.Event) -> None:
        """Until the connection closes or `stop`: the silent watchdog and the idle-rule pings."""
        tick = min(1.0, self.silent_s / 4, self.ping_interval_s / 4)
        closed = asyncio.ensure_future(conn.closed.wait())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while conn.is_open and not stop.is_set():
                await asyncio.wait((closed, stopped), timeout=tick, return_when=asyncio.FIRST_COMPLETED)
                now = time.monotonic()
                if now - conn.last_data_mono > self.silent_s:
                    conn.close("silent")
                elif now - conn.last_sent_mono >= self.ping_interval_s and conn.is_open:
                    conn.send(PING)
                    self.counts["pings"] += 1
        finally:
            closed.cancel()
            stopped.cancel()
            conn.close("stopped" if stop.is_set() else "closed")
            try:
                await asyncio.wait_for(conn.closed.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    async def _connect(self) -> _Connection | None:
        try:
            _, listener = await asyncio.wait_for(
                ws_connect(lambda: _Connection(self), self.url, ssl_context=self.ssl_context,
                           websocket_handshake_timeout=self.connect_timeout_s, max_frame_size=MAX_FRAME_BYTES,
                           logger_name="hyperliquid_ws"),
                self.connect_timeout_s)
        except (OSError, WSError, asyncio.TimeoutError) as e:
            self.counts["connect_failures"] += 1
            log.warning("stream %s: connect failed: %s", self.url, e)
            return None
        self.counts["connections"] += 1
        assert isinstance(listener, _Connection)
        return listener

    async def _backoff(self, attempt: int, stop: asyncio.Event) -> None:
        await backoff(attempt, self.backoff_initial_s, self.backoff_max_s, self.rng, stop)
