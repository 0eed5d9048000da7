"""The feed's Binance market-data client: picows websocket (combined streams) and the REST snapshot.

`BinanceStreamClient.run(on_message, stop)` keeps one combined-stream connection alive and calls
`on_message` with `DepthDiff` / `Trade` / `BookTicker` (ipc.messages, int ticks and lots) in
receive order, from inside picows's `on_ws_frame`:

- Each TEXT frame is decoded once, inside the callback (the frame's memory dies with it), by
  `StreamDecoder`: a reused mm.capture.FrameDecoder into typed Structs, then exact text -> ticks
  (mm.ticks.parse_levels). Undecodable, off-grid, NaN, negative, out-of-range or unexpected
  frames are dropped and counted by reason (`counts["drop_<reason>"]`); `last_drop` names the
  symbol and the value. `ts_recv_ns = time.time_ns()` is taken at frame receipt; `ts_feed_ns`
  is set to the same value (the event enters the pipeline here).
- Every server ping is answered with a pong carrying its payload (picows's auto-pong is off so
  pings are counted). Optional client pings (`ping_interval_s`) with a `pong_timeout_s`.
- Liveness: no data frame for `silent_s` -> the connection is dropped and re-made
  (`reconnects_silent`). Reconnects wait `uniform(0, min(backoff_max_s, backoff_initial_s *
  2**attempt))` (exponential backoff, full jitter, cap); `attempt` resets once a connection has
  delivered data.
- Rotation: at `rotate_after_s` (before Binance's 24 h cut) a second connection is opened while
  the first keeps streaming. Depth diffs are de-duplicated by update id per symbol on every
  path (so overlapping connections, and a venue's duplicate frames, never deliver a diff
  twice); trades by trade id, book tickers by update id. The new connection takes over, and the
  old one is closed, once for every symbol its diffs repeat or continue the sequence already
  delivered (`rotations`). No diff is missed.
- `wss://` verifies TLS (certificate and host name); plain `ws://` is refused unless the host
  is loopback.

`fetch_depth` / `fetch_depth_text`: `GET <base>/api/v3/depth` with aiohttp (timeout, TLS
verification on; plain http only to loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import msgspec
from picows import WSError, WSFrame, ws_connect

from ipc.messages import BookSnapshot, BookTicker, DepthDiff, Trade
from mm.capture import AggTradeFrame, BookTickerFrame, DepthSnapshot, DepthUpdate, FrameDecoder, TradeFrame
from mm.errors import MMError, OffGridError
from mm.ticks import TickGrid, infer_grid, infer_grid_from_levels
from processes.async_worker import backoff
from processes.feed_convert import Drop, binance_message
from processes.ws_connection import ClientConnection

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4 * 1024 * 1024
LOG_EVERY_DROPS = 1000  # one warning per this many drops of a reason (the first always)

VENUE_WS = {
    "binance-spot": "wss://stream.binance.com:9443",
    "binance-usdm": "wss://fstream.binance.com/public",
    "binance-coinm": "wss://dstream.binance.com",
}
VENUE_REST = {
    "binance-spot": "https://api.binance.com",
    "binance-usdm": "https://fapi.binance.com",
    "binance-coinm": "https://dapi.binance.com",
}
DEPTH_PATH = {
    "binance-spot": "/api/v3/depth",
    "binance-usdm": "/fapi/v1/depth",
    "binance-coinm": "/dapi/v1/depth",
}

FeedMessage = DepthDiff | Trade | BookTicker


class FeedConnectError(MMError):
    """A websocket or REST endpoint could not be reached or answered an error."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, secure: str, plain: str) -> None:
    """`secure` scheme anywhere; `plain` only to loopback (no market data in clear text)."""
    parts = urlsplit(url)
    if parts.scheme == secure:
        return
    if parts.scheme == plain and is_loopback(parts.hostname):
        return
    raise ValueError(f"url {url!r}: must be {secure}:// (or {plain}:// to a loopback host)")


def combined_stream_url(base_url: str, streams: list[str]) -> str:
    """`wss://stream.binance.com:9443` + [a, b] -> `.../stream?streams=a/b`."""
    if not streams:
        raise ValueError("a combined stream needs at least one stream name")
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(streams)}"


def symbol_streams(symbol: str, depth: str = "depth@100ms", trade: str = "trade") -> list[str]:
    lower = symbol.lower()
    return [f"{lower}@{depth}", f"{lower}@{trade}", f"{lower}@bookTicker"]


def symbols_of_url(url: str) -> set[str]:
    """Upper-case symbols named by a combined-stream URL's `streams=`."""
    query = urlsplit(url).query
    names = query.partition("streams=")[2].split("&")[0].split("/")
    return {name.partition("@")[0].upper() for name in names if name}


class StreamDecoder:
    """One frame's payload -> a feed message, or None with the reason counted (never raises on input).

    `grids`: the tick/lot grid per upper-case symbol; a symbol in `symbols` but not in `grids`
    gets the finest grid its first frame is written on (mm.ticks.infer_grid); any other symbol
    is dropped (`unknown_symbol`).
    """

    def __init__(self, grids: Mapping[str, TickGrid] | None, symbols: set[str] | None = None) -> None:
        self.grids: dict[str, TickGrid] = dict(grids or {})
        self.symbols = set(symbols or ()) | set(self.grids)
        self.frames = FrameDecoder()
        self.counts: Counter[str] = Counter()
        self.last_drop = ""
        self.last_kind = ""  # the frame class of the last decoded message

    def decode(self, payload: bytes, ts_recv_ns: int) -> FeedMessage | None:
        try:
            result = self.frames.decode(payload)
        except (msgspec.DecodeError, ValueError, UnicodeDecodeError, RecursionError) as e:
            return self._drop("decode_error", f"{type(e).__name__}: {e}"[:200])
        if type(result) is str:
            return self._drop("unhandled_stream", f"stream kind {result[:64]!r}")
        symbol, frame = result
        grid = self.grids.get(symbol)
        try:
            if grid is None:
                grid = self._infer(symbol, frame)
                if grid is None:
                    return None
        except OffGridError as e:
            return self._drop("off_grid", str(e)[:200])
        except ArithmeticError as e:  # decimal.Overflow from mm.ticks on text like "1e999999999"
            return self._drop("off_grid", f"{symbol}: {type(e).__name__} converting a value")
        kind = type(frame)
        if kind is DepthSnapshot:
            return self._drop("unhandled_stream", f"{symbol}: a REST snapshot on a stream")
        message = binance_message(symbol, frame, grid, ts_recv_ns, ts_recv_ns)
        if type(message) is Drop:
            return self._drop(message.reason, message.detail)
        self.last_kind = kind.__name__
        return message

    def _infer(self, symbol: str, frame: Any) -> TickGrid | None:
        if symbol not in self.symbols:
            self._drop("unknown_symbol", f"symbol {symbol[:32]!r} was not subscribed")
            return None
        kind = type(frame)
        if kind is DepthUpdate:
            first = frame.b[0] if frame.b else frame.a[0] if frame.a else None
            if first is None:
                self._drop("no_grid", f"{symbol}: no grid yet and an empty diff")
                return None
            price, qty = first
        elif kind is BookTickerFrame:
            price, qty = frame.b, frame.B
        elif kind is TradeFrame or kind is AggTradeFrame:
            price, qty = frame.p, frame.q
        else:
            self._drop("unhandled_stream", f"{symbol}: {kind.__name__} on a stream")
            return None
        grid = self.grids[symbol] = infer_grid(symbol, price, qty)  # raises OffGridError on junk
        log.info("stream %s: grid inferred from its first frame: %s", symbol, grid)
        return grid

    def _drop(self, reason: str, detail: str) -> None:
        counts = self.counts
        counts["drop_" + reason] += 1
        self.last_drop = f"{reason}: {detail}"
        if counts["drop_" + reason] % LOG_EVERY_DROPS == 1:
            log.warning("dropped frame (%s, %d so far): %s", reason, counts["drop_" + reason], detail)
        return None


class _StreamConnection(ClientConnection):
    """One websocket connection of the client."""

    def __init__(self, client: BinanceStreamClient, number: int) -> None:
        super().__init__()
        self.client = client
        self.number = number
        self.opened_mono = self.ping_sent_mono = self.last_data_mono
        self.ping_payload = b""
        self.synced_symbols: set[str] = set()  # rotation: symbols whose sequence this one continues

    def on_text(self, payload: bytes, ts_recv_ns: int) -> None:
        self.client._on_payload(self, payload, ts_recv_ns)

    def on_ping(self) -> None:
        self.client.counts["pongs_sent"] += 1

    def on_pong(self, payload: bytes) -> None:
        if self.ping_payload and payload == self.ping_payload:
            self.ping_payload = b""

    def on_other(self, frame: WSFrame) -> None:
        self.client.decoder._drop("binary", f"{frame.msg_type.name} frame of {frame.payload_size} bytes")


class BinanceStreamClient:
    """Binance combined-stream client; see the module docstring. Counters in `counts`."""

    def __init__(
        self,
        url: str,
        *,
        grids: Mapping[str, TickGrid] | None = None,
        silent_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        rotate_after_s: float = 23 * 3600.0,
        overlap_timeout_s: float = 30.0,
        ping_interval_s: float = 0.0,
        pong_timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        recorder: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        check_url(url, "wss", "ws")
        for name, value in (("silent_s", silent_s), ("backoff_initial_s", backoff_initial_s),
                            ("backoff_max_s", backoff_max_s), ("connect_timeout_s", connect_timeout_s),
                            ("rotate_after_s", rotate_after_s), ("overlap_timeout_s", overlap_timeout_s),
                            ("pong_timeout_s", pong_timeout_s)):
            if value <= 0:
                raise ValueError(f"'{name}' must be > 0, was {value}")
        self.url = url
        self.is_secure = urlsplit(url).scheme == "wss"
        self.ssl_context = ssl_context or (ssl.create_default_context() if self.is_secure else None)
        self.silent_s = silent_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.rotate_after_s = rotate_after_s
        self.overlap_timeout_s = overlap_timeout_s
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.recorder = recorder  # has write_frame(ts_ns, payload: bytes)
        self.rng = rng or random.Random()
        self.decoder = StreamDecoder(grids, symbols_of_url(url))
        self.counts: Counter[str] = self.decoder.counts  # one counter set: drops and connection events
        self.backoff_waits_s: list[float] = []  # the last few reconnect delays, newest last
        self.on_connected: Callable[[int], None] | None = None  # called with the connection number
        self._on_message: Callable[[FeedMessage], None] | None = None
        self._active: _StreamConnection | None = None
        self._standby: _StreamConnection | None = None
        self._standby_task: asyncio.Task | None = None
        self._next_rotation_mono = 0.0
        self._connections = 0
        self._last_id: dict[tuple[str, str], int] = {}
        self._fatal: BaseException | None = None

    @property
    def last_drop(self) -> str:
        return self.decoder.last_drop

    @property
    def is_connected(self) -> bool:
        return self._active is not None and self._active.is_open

    # ---- run ------------------------------------------------------------------------------------

    async def run(self, on_message: Callable[[FeedMessage], None], stop: asyncio.Event) -> None:
        """Stream until `stop` is set. An exception raised by `on_message` is re-raised here."""
        self._on_message = on_message
        watchdog = asyncio.create_task(self._watchdog(stop), name="binance-ws-watchdog")
        stop_wait = asyncio.create_task(stop.wait())
        attempt = 0
        try:
            while not stop.is_set():
                conn = await self._connect()
                if conn is None:
                    await self._backoff(attempt, stop)
                    attempt += 1
                    continue
                self._last_id.clear()  # a new session: the book resyncs by its own rules
                self._active = conn
                self._notify_connected(conn)
                had_data = False
                while not stop.is_set():
                    active = self._active
                    assert active is not None
                    closed_wait = asyncio.create_task(active.closed.wait())
                    await asyncio.wait({closed_wait, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                    closed_wait.cancel()
                    had_data = had_data or active.data_frames > 0
                    if self._fatal is not None or stop.is_set():
                        break
                    if self._active is not active:
                        continue  # rotated: follow the new connection
                    standby = self._standby
                    if standby is not None and standby.is_open:
                        self._count_reconnect(active.close_reason or "closed")
                        self._standby = None
                        self._active = standby  # already streaming: take it over at once
                        continue
                    break
                if self._fatal is not None:
                    raise self._fatal
                if stop.is_set():
                    break
                self._count_reconnect(self._active.close_reason or "closed")
                self._active = None
                if had_data:
                    attempt = 0
                await self._backoff(attempt, stop)
                attempt += 1
        finally:
            watchdog.cancel()
            stop_wait.cancel()
            if self._standby_task is not None:
                self._standby_task.cancel()
            for conn in (self._active, self._standby):
                if conn is not None:
                    conn.close("stopped")
            for conn in (self._active, self._standby):
                if conn is not None and conn.transport is not None:
                    try:
                        await asyncio.wait_for(conn.closed.wait(), 1.0)
                    except asyncio.TimeoutError:
                        pass
            self._active = self._standby = None
        if self._fatal is not None:
            raise self._fatal

    def _notify_connected(self, conn: _StreamConnection) -> None:
        if self.on_connected is not None:
            self.on_connected(conn.number)

    def _count_reconnect(self, reason: str) -> None:
        self.counts["reconnects"] += 1
        self.counts["reconnects_" + reason] += 1
        log.warning("stream %s: connection lost (%s), reconnecting", self.url, reason)

    async def _connect(self) -> _StreamConnection | None:
        self._connections += 1
        number = self._connections
        try:
            _, listener = await asyncio.wait_for(
                ws_connect(
                    lambda: _StreamConnection(self, number), self.url, ssl_context=self.ssl_context,
                    enable_auto_pong=False, websocket_handshake_timeout=self.connect_timeout_s,
                    max_frame_size=MAX_FRAME_BYTES, logger_name="binance_ws",
                ),
                self.connect_timeout_s,
            )
        except (OSError, WSError, asyncio.TimeoutError) as e:
            self.counts["connect_failures"] += 1
            log.warning("stream %s: connect failed: %s", self.url, e)
            return None
        self.counts["connections"] += 1
        assert isinstance(listener, _StreamConnection)
        return listener

    async def _backoff(self, attempt: int, stop: asyncio.Event) -> None:
        delay = await backoff(attempt, self.backoff_initial_s, self.backoff_max_s, self.rng, stop)
        self.backoff_waits_s = [*self.backoff_waits_s[-31:], delay]

    # ---- timers ---------------------------------------------------------------------------------

    async def _watchdog(self, stop: asyncio.Event) -> None:
        """Silent streams, client pings, rotation; checked every tick on the monotonic clock."""
        tick_s = min(0.05, self.silent_s / 4)
        if self.ping_interval_s:
            tick_s = min(tick_s, self.ping_interval_s / 4, self.pong_timeout_s / 4)
        while not stop.is_set():
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            for conn in (self._active, self._standby):
                if conn is None or not conn.is_open:
                    continue
                if now - conn.last_data_mono > self.silent_s:
                    if conn is self._standby:
                        self._drop_standby("rotation_failed_silent")
                    else:
                        conn.close("silent")
                    continue
                if self.ping_interval_s:
                    assert conn.transport is not None
                    if conn.ping_payload:
                        if now - conn.ping_sent_mono > self.pong_timeout_s:
                            conn.close("pong_timeout")
                    elif now - conn.ping_sent_mono >= self.ping_interval_s:
                        conn.ping_payload = b"%d" % time.time_ns()
                        conn.ping_sent_mono = now
                        conn.transport.send_ping(conn.ping_payload)
                        self.counts["pings_sent"] += 1
            active = self._active
            if active is not None and active.is_open:
                if (self._standby is None and self._standby_task is None
                        and now - active.opened_mono >= self.rotate_after_s and now >= self._next_rotation_mono):
                    self._standby_task = asyncio.create_task(self._open_standby())
                standby = self._standby
                if standby is not None and now - standby.opened_mono > self.overlap_timeout_s:
                    self._drop_standby("rotation_failed_timeout")

    async def _open_standby(self) -> None:
        try:
            conn = await self._connect()
            if conn is None or self._active is None:
                self.counts["rotation_failed_connect"] += 1
                self._next_rotation_mono = time.monotonic() + self.backoff_max_s
                if conn is not None:
                    conn.close("rotation_abandoned")
                return
            self.counts["rotation_started"] += 1
            self._standby = conn
        finally:
            self._standby_task = None

    def _drop_standby(self, reason: str) -> None:
        standby = self._standby
        self._standby = None
        self.counts[reason] += 1
        self._next_rotation_mono = time.monotonic() + self.backoff_max_s
        if standby is not None:
            standby.close(reason)

    def _switch_to_standby(self) -> None:
        old, new = self._active, self._standby
        assert old is not None and new is not None
        self._active, self._standby = new, None
        self.counts["rotations"] += 1
        log.info("stream %s: rotated to connection %d after %.0f s", self.url, new.number,
                 time.monotonic() - old.opened_mono)
        old.close("rotated")
        self._notify_connected(new)

    # ---- frames ---------------------------------------------------------------------------------

    def _on_payload(self, conn: _StreamConnection, payload: bytes, ts_recv_ns: int) -> None:
        """Inside on_ws_frame: decode, de-duplicate across connections, deliver."""
        is_standby = conn is self._standby
        if conn is not self._active and not is_standby:
            return  # a closing connection's last frames
        if self._fatal is not None:
            return
        message = self.decoder.decode(payload, ts_recv_ns)
        if message is None:
            if not is_standby and self.recorder is not None:
                self.recorder.write_frame(ts_recv_ns, payload)
            return
        last_id = self._last_id
        kind = type(message)
        if kind is DepthDiff:
            key = (message.symbol, "depth")
            last = last_id.get(key, -1)
            if message.final_id <= last:
                if is_standby:
                    self._on_standby_synced(conn, message.symbol)
                else:
                    self.counts["drop_duplicate"] += 1
                return
            if is_standby:
                prev = message.prev_final_id
                continues = prev == last if prev >= 0 else message.first_id <= last + 1
                if last >= 0 and not continues:
                    self.counts["overlap_ahead"] += 1  # the old connection will deliver what is between
                    return
            last_id[key] = message.final_id
        elif kind is Trade:
            key = (message.symbol, self.decoder.last_kind)
            if message.trade_id <= last_id.get(key, -1):
                self.counts["drop_duplicate"] += 1
                return
            last_id[key] = message.trade_id
        else:
            key = (message.symbol, "bookTicker")
            if message.update_id <= last_id.get(key, -1):
                self.counts["drop_duplicate"] += 1
                return
            last_id[key] = message.update_id
        if self.recorder is not None:
            self.recorder.write_frame(ts_recv_ns, payload)
        assert self._on_message is not None
        try:
            self._on_message(message)
        except Exception as e:  # the caller's bug: stop the client and raise it from run()
            self._fatal = e
            conn.close("on_message_error")
            return
        if is_standby and kind is DepthDiff:
            self._on_standby_synced(conn, message.symbol)

    def _on_standby_synced(self, conn: _StreamConnection, symbol: str) -> None:
        conn.synced_symbols.add(symbol)
        symbols = {key[0] for key in self._last_id if key[1] == "depth"}
        if symbols <= conn.synced_symbols and conn is self._standby:
            self._switch_to_standby()


# ---- REST snapshot ------------------------------------------------------------------------------

_SNAPSHOT = msgspec.json.Decoder(DepthSnapshot)


async def fetch_depth_raw(
    base_url: str,
    symbol: str,
    limit: int = 1000,
    *,
    path: str = "/api/v3/depth",
    timeout_s: float = 10.0,
    session: aiohttp.ClientSession | None = None,
) -> tuple[str, bytes]:
    """(`<path>?<query>`, reply body verbatim) of a depth snapshot request."""
    check_url(base_url, "https", "http")
    path_query = f"{path}?{urlencode({'symbol': symbol.upper(), 'limit': limit})}"
    url = base_url.rstrip("/") + path_query
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    owned = session is None
    if session is None:
        session = aiohttp.ClientSession(timeout=timeout)
    try:
        tls: Any = ssl.create_default_context() if url.startswith("https:") else None
        async with session.get(url, timeout=timeout, ssl=tls) as reply:
            body = await reply.read()
            if reply.status != 200:
                raise FeedConnectError(f"GET {url}: HTTP {reply.status}: {body[:200]!r}")
            return path_query, body
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        raise FeedConnectError(f"GET {url}: {type(e).__name__}: {e}") from None
    finally:
        if owned:
            await session.close()


async def fetch_depth_text(base_url: str, symbol: str, limit: int = 1000, **kwargs: Any) -> DepthSnapshot:
    _, body = await fetch_depth_raw(base_url, symbol, limit, **kwargs)
    try:
        return _SNAPSHOT.decode(body)
    except msgspec.DecodeError as e:
        raise FeedConnectError(f"{base_url} depth {symbol}: bad reply: {e}") from None


async def fetch_depth(
    base_url: str, symbol: str, limit: int = 1000, grid: TickGrid | None = None, **kwargs: Any
) -> BookSnapshot:
    """The REST snapshot as a BookSnapshot in ticks (grid: given, or inferred from the snapshot).

    Raises FeedConnectError (unreachable, HTTP error, bad JSON) or OffGridError (a bad value).
    """
    snapshot = await fetch_depth_text(base_url, symbol, limit, **kwargs)
    if grid is None:
        grid = infer_grid_from_levels(symbol.upper(), [*snapshot.bids, *snapshot.asks])
    now_ns = time.time_ns()
    message = binance_message(symbol.upper(), snapshot, grid, now_ns, now_ns)
    if type(message) is Drop:
        raise OffGridError(f"{base_url} depth {symbol}: {message.reason}: {message.detail}")
    return message
