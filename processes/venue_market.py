"""`mm venue`'s market side: Binance market-data streams on loopback, with injected faults.

Owns a picows websocket server (combined streams `/stream?streams=a/b/c`, raw `/ws/<stream>`),
an aiohttp.web REST server on a SECOND port (`GET /api/v3/depth`, `/api/v3/time`,
`/api/v3/ping`, `/api/v3/ticker/bookTicker`; the trade views `ticker/24hr`, `klines`, `aggTrades`,
`trades` and the `@ticker` / `@kline_<i>` streams are processes.venue_tape's), one producer of frames
and the venue's own book per symbol. Both bind
127.0.0.1 only: `--port P` (websocket, default 9900) and `--http-port H` (REST, default P + 1;
0 for both picks free ports, see `VenueMarket.ws_port` / `http_port`).

The producer is a capture file (`--feed FILE`: its websocket frames verbatim (a tardis CSV's rows
as Binance spot frames, mm/tardis_csv.py), in order, paced by
their receive times / `--speed`, or as fast as clients take them with `--speed 0`; it starts
when the first client connects) or the built-in simulator (mm.market_sim rendered as Binance
spot JSON: `depthUpdate` with U/u, `trade`, `bookTicker`; decimal text with 8 decimals).

Consistency: every depth diff the producer makes is applied to the venue's book (mm.book_replay,
i.e. mm.book_sync) before it is sent, so `GET /api/v3/depth` answers the book as of the last
diff produced: `lastUpdateId` = the last `u` sent (or deliberately dropped by a fault). A
capture's book starts from the capture's own first snapshot per symbol; frames of a symbol
before its first diff that continues that snapshot are not served.

Faults (`VenueFaults`, each off by default, counted in `VenueMarket.counts`):
- `drop_diffs` N: N consecutive depth diffs are not sent (a gap), once, after `fault_after_diffs`.
- `duplicate_every` N: every N-th depth diff is sent twice.
- `reorder_every` N: every N-th depth diff is sent after the diff that follows it.
- `disconnect_every_s` K: every K s every connection is dropped (TCP close, no close frame).
- `stall_s` S: once, after `fault_after_diffs`, nothing (frames, pings) is sent for S s; the
  connections stay open and the book keeps moving.
- `malformed_every` N: after every N-th frame, one malformed frame (truncated JSON, bad UTF-8,
  NaN / negative / off-grid values, wrong types), cycling through the kinds.
- `skip_pongs`: client pings are not answered.
Server pings every `ping_interval_s` (Binance: 20 s) with a payload; a connection that has not
answered the outstanding ping within `pong_timeout_s` (Binance: 60 s) is dropped, as is one
older than `max_connection_s` (Binance: 24 h).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
from aiohttp import web
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest

from mm.book_replay import BookReplay
from mm.book_sync import Outcome
from mm.capture import (
    CaptureEvent,
    DepthSnapshot,
    DepthUpdate,
    Envelope,
    FrameDecoder,
    stream_kind,
)
from mm.config import SimConfig
from mm.market_sim import MarketSim, SimDepth, SimTrade
from mm.tardis_csv import capture_lines
from mm.ticks import TickGrid, format_price, format_qty, grid_from_sizes
from processes.venue_servers import LoopbackServers, run_from_args
from processes.venue_orders import VenueError
from processes.venue_tape import VenueTape, requested_symbols

log = logging.getLogger(__name__)

DEFAULT_WS_PORT = 9900
MS = 1_000_000
MAX_DEPTH_LIMIT = 5000
DEFAULT_DEPTH_LIMIT = 100
SIM_DECIMALS = 8  # Binance spot writes 8 decimals for prices and quantities
MAX_WRITE_BUFFER = 8 * 1024 * 1024  # a client behind this many bytes pauses an unpaced feed
MAX_SLEEP_S = 0.05  # the producer re-checks stop and faults at least this often


class VenueFaults(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    drop_diffs: int = 0
    duplicate_every: int = 0
    reorder_every: int = 0
    disconnect_every_s: float = 0.0
    stall_s: float = 0.0
    malformed_every: int = 0
    skip_pongs: bool = False
    fault_after_diffs: int = 20  # drop and stall start after this many diffs were sent

    def __post_init__(self) -> None:
        for name in ("drop_diffs", "duplicate_every", "reorder_every", "malformed_every", "fault_after_diffs"):
            if getattr(self, name) < 0:
                raise ValueError(f"'{name}' must be >= 0, was {getattr(self, name)}")
        for name in ("disconnect_every_s", "stall_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"'{name}' must be >= 0, was {getattr(self, name)}")


def stream_key(stream: str) -> tuple[str, str]:
    """`BTCUSDT@depth@100ms` -> ("btcusdt", "depth"): a subscription matches any diff speed."""
    symbol, _, _ = stream.partition("@")
    return symbol.lower(), stream_kind(stream)


def streams_of_path(path: str) -> tuple[list[str], bool] | None:
    """(stream names, is_combined) for `/stream?streams=a/b` or `/ws/a/b` (or `/ws`), else None."""
    parts = urlsplit(path)
    if parts.path == "/stream":
        values = parse_qs(parts.query).get("streams")
        names = values[0].split("/") if values else []
        return [n for n in names if n], True
    if parts.path == "/ws" or parts.path.startswith("/ws/"):
        return [n for n in parts.path[4:].split("/") if n], False
    return None


def payload_of_combined(body: bytes) -> bytes:
    """The `data` of `{"stream":"..","data":<payload>}` written compactly (Binance and our own)."""
    at = body.find(b',"data":')
    return body[at + 8 : -1] if at >= 0 and body.endswith(b"}") else body


class _Connection(WSListener):
    """One client: its subscriptions and ping state."""

    def __init__(self, venue: VenueMarket, streams: list[str], is_combined: bool) -> None:
        self.venue = venue
        self.streams = list(streams)
        self.keys = {stream_key(s) for s in streams}
        self.is_combined = is_combined
        self.transport: WSTransport | None = None
        self.opened_mono = time.monotonic()
        self.ping_payload = b""  # outstanding ping, b"" when none
        self.ping_sent_mono = 0.0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.venue._on_connected(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.venue._on_disconnected(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        venue = self.venue
        msg_type = frame.msg_type
        if msg_type is WSMsgType.PING:
            venue.counts["client_pings"] += 1
            if venue.faults.skip_pongs:
                venue.counts["pongs_skipped"] += 1
            else:
                transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type is WSMsgType.PONG:
            if self.ping_payload and frame.get_payload_as_bytes() == self.ping_payload:
                self.ping_payload = b""
                venue.counts["pongs"] += 1
            else:
                venue.counts["unsolicited_pongs"] += 1  # allowed; keeps nothing alive
        elif msg_type is WSMsgType.TEXT:
            self._on_control(frame.get_payload_as_bytes())
        elif msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def _on_control(self, body: bytes) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS (Binance §1.1); anything else: code 2/3."""
        assert self.transport is not None
        try:
            request = json.loads(body)
            method = request["method"]
            request_id = request.get("id")
            params = request.get("params", [])
        except (ValueError, KeyError, TypeError, AttributeError):
            self.transport.send(WSMsgType.TEXT, b'{"code":3,"msg":"Invalid JSON"}')
            return
        if method == "SUBSCRIBE" and isinstance(params, list):
            self.streams.extend(p for p in params if isinstance(p, str) and p not in self.streams)
            reply: object = None
        elif method == "UNSUBSCRIBE" and isinstance(params, list):
            self.streams = [s for s in self.streams if s not in params]
            reply = None
        elif method == "LIST_SUBSCRIPTIONS":
            reply = list(self.streams)
        else:
            self.transport.send(WSMsgType.TEXT, b'{"code":2,"msg":"Invalid request"}')
            return
        self.keys = {stream_key(s) for s in self.streams}
        self.transport.send(WSMsgType.TEXT, json.dumps({"result": reply, "id": request_id}).encode())

    def send(self, body: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        transport.send(WSMsgType.TEXT, body if self.is_combined else payload_of_combined(body))

    def write_buffer_size(self) -> int:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return 0
        return transport.underlying_transport.get_write_buffer_size()


class VenueMarket(LoopbackServers):
    """The market side of the local venue. `await start()`, then `ws_url` / `http_url`; `stop()`."""

    sim_decimals = (SIM_DECIMALS, SIM_DECIMALS)  # (price, qty) decimals the simulator writes

    def __init__(
        self,
        *,
        feed: Path | str | None = None,
        symbol: str = "BTCUSDT",
        speed: float = 1.0,
        faults: VenueFaults | None = None,
        port: int = 0,
        http_port: int = 0,
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 60.0,
        max_connection_s: float = 24 * 3600.0,
        sim_config: SimConfig | None = None,
        tick_size: str = "0.01",
        lot_size: str = "0.00001",
    ) -> None:
        if speed < 0:
            raise ValueError(f"'speed' must be >= 0, was {speed}")
        if feed is None and speed == 0:
            raise ValueError("'speed' must be > 0 for the simulator, was 0")
        super().__init__(port, http_port)
        self.feed = Path(feed) if feed is not None else None
        self.symbol = symbol.upper()
        self.speed = speed
        self.faults = faults or VenueFaults()
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.max_connection_s = max_connection_s
        self.sim_config = sim_config or SimConfig()
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.counts: Counter[str] = Counter()
        self.books = BookReplay()  # the venue's own book per symbol
        self.finished = asyncio.Event()  # the capture was sent to its end
        self._decoder = FrameDecoder()
        self._has_client = asyncio.Event()
        self._started_symbols: set[str] = set()
        self._diffs_sent = 0
        self._frames_sent = 0
        self._drop_left = self.faults.drop_diffs
        self._stall_done = False
        self._stall_until = 0.0
        self._held: tuple[tuple[str, str], bytes] | None = None  # reorder: a diff sent after the next
        self._last_diff: tuple[str, int] = ("", 0)  # (symbol, u) of the last diff produced
        self._malformed_kind = 0
        self._sim_grid: TickGrid | None = None
        self.app_hooks: list = []  # callables(app) run on the REST app before it starts (order side)
        self.frame_listeners: list = []  # callables(symbol, frame) for every diff and trade produced
        self.ws_routes: dict = {}  # websocket path (no query) -> callable(request) -> WSListener (the ws-api)
        self.tape = VenueTape(self)  # the public trades produced: 24 h tickers, klines, aggTrades (venue_tape)
        self.frame_listeners.append(self.tape.on_frame)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.feed is not None:
            self._load_capture_snapshots()
        app = web.Application()
        app.router.add_get("/api/v3/depth", self._on_depth)
        app.router.add_get("/api/v3/time", self._on_time)
        app.router.add_get("/api/v3/ping", self._on_ping)
        app.router.add_get("/api/v3/ticker/bookTicker", self._on_book_ticker)
        self.tape.mount_spot(app)
        for hook in self.app_hooks:
            hook(app)
        await self._listen(self._listener_for, app, enable_auto_pong=False, logger_name="venue")
        produce = self._produce_capture() if self.feed is not None else self._produce_sim()
        self._tasks = [
            asyncio.create_task(self._run_producer(produce), name="venue-producer"),
            asyncio.create_task(self._run_timers(), name="venue-timers"),
            asyncio.create_task(self.tape.run_streams(), name="venue-tape-streams"),
        ]
        log.info("venue market up ws=%s http=%s feed=%s", self.ws_url, self.http_url, self.feed or "sim")

    def stream_names(self, symbol: str | None = None) -> list[str]:
        """The combined-stream names this venue serves for `symbol` (default: the sim's symbol)."""
        lower = (symbol or self.symbol).lower()
        return [f"{lower}@depth@100ms", f"{lower}@trade", f"{lower}@bookTicker"]

    def last_update_id(self, symbol: str) -> int:
        book = self.books.books.get(symbol.upper())
        return book.sync.last_id if book is not None else -1

    def book_top(self, symbol: str, depth: int) -> dict:
        """The venue's own book as `mm book --json` writes it (prices as the venue writes them)."""
        return self.books.book_of(symbol.upper()).top(depth)

    @property
    def connections(self) -> int:
        return len(self._conns)

    # ---- websocket server ----------------------------------------------------------------------

    def _listener_for(self, request: WSUpgradeRequest) -> WSListener | None:
        route = self.ws_routes.get(urlsplit(request.path.decode("latin-1")).path)
        if route is not None:
            return route(request)
        parsed = streams_of_path(request.path.decode("latin-1"))
        if parsed is None:
            self.counts["bad_path"] += 1
            return None  # picows answers 404
        streams, is_combined = parsed
        return _Connection(self, streams, is_combined)

    def _on_connected(self, conn: _Connection) -> None:
        self._conns.add(conn)
        self.counts["connections"] += 1
        self._has_client.set()

    def _on_disconnected(self, conn: _Connection) -> None:
        self._conns.discard(conn)

    def _is_stalled(self) -> bool:
        return self._stall_until > 0 and time.monotonic() < self._stall_until

    def _broadcast(self, key: tuple[str, str], body: bytes) -> None:
        if self._is_stalled():
            self.counts["stalled_frames"] += 1
            return
        self._frames_sent += 1
        for conn in tuple(self._conns):
            if key in conn.keys:
                conn.send(body)
        every = self.faults.malformed_every
        if every and self._frames_sent % every == 0:
            self._send_malformed()

    def _send_malformed(self) -> None:
        symbol, last_u = self._last_diff
        symbol = symbol or self.symbol
        lower = symbol.lower()
        depth = f'{{"stream":"{lower}@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"{symbol}","U":{last_u},"u":{last_u},'
        kinds = (
            depth.encode()[:-7],  # truncated JSON
            b'{"stream":"' + lower.encode() + b'@trade","data":\xff\xfe}',  # not UTF-8
            (depth + '"b":[["NaN","1.00000000"]],"a":[]}}').encode(),
            (depth + '"b":[],"a":[["1.00000000","-1.00000000"]]}}').encode(),
            (depth + '"b":[["1.000000001","1.00000000"]],"a":[]}}').encode(),  # off the 8-decimal grid
            f'{{"stream":"{lower}@trade","data":{{"e":"trade","s":"{symbol}","t":"x","p":1,"q":[],"T":-1,"m":0}}}}'.encode(),
            b"[]",
            b'{"stream":"' + lower.encode() + b'@depth@100ms","data":' + b"[" * 5000 + b"]" * 5000 + b"}",
        )
        body = kinds[self._malformed_kind % len(kinds)]
        self._malformed_kind += 1
        self.counts["malformed_sent"] += 1
        key = (lower, "depth")
        for conn in tuple(self._conns):
            if key in conn.keys and conn.transport is not None and not conn.transport.is_disconnected:
                conn.transport.send(WSMsgType.TEXT, body)

    async def _run_timers(self) -> None:
        """Server pings, pong checks, connection age, the disconnect-every-K fault."""
        faults = self.faults
        next_disconnect = time.monotonic() + faults.disconnect_every_s if faults.disconnect_every_s else 0.0
        next_ping = time.monotonic() + self.ping_interval_s
        tick_s = min(MAX_SLEEP_S, self.ping_interval_s / 4, faults.disconnect_every_s / 4 or MAX_SLEEP_S)
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            if next_disconnect and now >= next_disconnect:
                next_disconnect = now + faults.disconnect_every_s
                for conn in tuple(self._conns):
                    if conn.transport is not None:
                        self.counts["disconnects_injected"] += 1
                        conn.transport.disconnect(graceful=False)
            for conn in tuple(self._conns):
                transport = conn.transport
                if transport is None or transport.is_disconnected:
                    continue
                if conn.ping_payload and now - conn.ping_sent_mono > self.pong_timeout_s:
                    self.counts["pong_timeouts"] += 1
                    transport.disconnect(graceful=False)
                elif now - conn.opened_mono > self.max_connection_s:
                    self.counts["aged_out"] += 1
                    transport.disconnect(graceful=False)
            if now >= next_ping:
                next_ping = now + self.ping_interval_s
                if self._is_stalled():
                    continue
                for conn in tuple(self._conns):
                    transport = conn.transport
                    if transport is None or transport.is_disconnected or conn.ping_payload:
                        continue
                    conn.ping_payload = str(time.time_ns() // MS).encode()
                    conn.ping_sent_mono = now
                    transport.send_ping(conn.ping_payload)
                    self.counts["pings"] += 1

    # ---- REST ----------------------------------------------------------------------------------

    async def _on_depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "").upper()
        try:
            limit = int(request.query.get("limit", DEFAULT_DEPTH_LIMIT))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_DEPTH_LIMIT:
            return _error(400, -1100, "Illegal characters found in parameter 'limit'.")
        state = self.books.books.get(symbol)
        if state is None or state.grid is None:
            return _error(400, -1121, "Invalid symbol.")
        if not state.sync.is_synced:
            return _error(503, -1001, "Internal error; unable to process your request. Please try again.")
        top = state.top(limit)
        self.counts["depth_requests"] += 1
        body = msgspec.json.encode(
            {"lastUpdateId": state.sync.last_id, "bids": top["bids"], "asks": top["asks"]}
        )
        return web.Response(body=body, content_type="application/json")

    async def _on_book_ticker(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/bookTicker: `symbol=` gives one object, `symbols=["A","B"]` (or neither: every
        symbol) a list, as Binance does (ccxt's fetch_bids_asks / fetch_ticker's bid-ask source)."""
        try:
            names, is_one = requested_symbols(request.query, self.books.books)
        except VenueError as e:
            return _error(e.status, e.code, e.msg)
        tickers = []
        for name in names:
            state = self.books.books.get(name)
            if state is None or state.grid is None:
                return _error(400, -1121, "Invalid symbol.")
            top = state.top(1)
            bid = top["bids"][0] if top["bids"] else ["0", "0"]
            ask = top["asks"][0] if top["asks"] else ["0", "0"]
            tickers.append({"symbol": name, "bidPrice": bid[0], "bidQty": bid[1],
                            "askPrice": ask[0], "askQty": ask[1]})
        self.counts["book_ticker_requests"] += 1
        body = msgspec.json.encode(tickers[0] if is_one else tickers)
        return web.Response(body=body, content_type="application/json")

    async def _on_time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": time.time_ns() // MS})

    async def _on_ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    # ---- producers -----------------------------------------------------------------------------

    async def _run_producer(self, frames: AsyncIterator[bytes]) -> None:
        async for body in frames:
            self._on_produced(body)
        if self._held is not None:
            key, body = self._held
            self._held = None
            self._broadcast(key, body)
        self.finished.set()
        log.info("venue feed finished: %s", dict(self.counts))

    def _on_produced(self, body: bytes) -> None:
        """One frame of the producer: update the venue book, then send it (or not: faults)."""
        try:
            result = self._decoder.decode(body)
        except (msgspec.DecodeError, ValueError, UnicodeDecodeError):
            self.counts["feed_malformed"] += 1
            return
        if type(result) is str:
            self.counts[f"feed_skipped_{result}"] += 1
            return
        symbol, frame = result
        if type(frame) is DepthSnapshot:
            return  # the capture's REST lines are not stream frames
        state = self.books.books.get(symbol)
        if state is None or state.sync.snapshots == 0:
            self.counts["no_snapshot"] += 1
            return
        key = stream_key(_stream_name(body))
        if type(frame) is not DepthUpdate:
            if symbol in self._started_symbols:
                for listener in self.frame_listeners:
                    listener(symbol, frame)
                self._broadcast(key, body)
            return
        outcome = self.books.on_event(CaptureEvent(0, symbol, frame))
        if symbol not in self._started_symbols:
            if outcome is not Outcome.APPLIED:
                return  # covered by the venue's snapshot: not served
            self._started_symbols.add(symbol)
        elif outcome is Outcome.GAP or outcome is Outcome.CROSSED:
            self.counts["feed_gap"] += 1
            log.warning("venue book %s: %s", symbol, state.sync.last_problem)
        self._last_diff = (symbol, frame.u)
        for listener in self.frame_listeners:
            listener(symbol, frame)
        self._send_diff(key, body)
        if self._synthesize_book_ticker:
            self._send_book_ticker(symbol, frame)

    def _send_diff(self, key: tuple[str, str], body: bytes) -> None:
        faults = self.faults
        self._diffs_sent += 1
        n = self._diffs_sent
        if n > faults.fault_after_diffs:
            if self._drop_left > 0:
                self._drop_left -= 1
                self.counts["diffs_dropped"] += 1
                return
            if faults.stall_s and not self._stall_done:
                self._stall_done = True
                self._stall_until = time.monotonic() + faults.stall_s
                self.counts["stalls"] += 1
        if self._held is not None:
            held_key, held_body = self._held
            self._held = None
            self._broadcast(key, body)
            self._broadcast(held_key, held_body)
            return
        if faults.reorder_every and n % faults.reorder_every == 0:
            self._held = (key, body)
            self.counts["diffs_reordered"] += 1
            return
        self._broadcast(key, body)
        if faults.duplicate_every and n % faults.duplicate_every == 0:
            self.counts["diffs_duplicated"] += 1
            self._broadcast(key, body)

    _synthesize_book_ticker = False

    def _send_book_ticker(self, symbol: str, frame: DepthUpdate) -> None:
        state = self.books.books[symbol]
        book = state.sync.book
        best_bid = book.best_bid()
        best_ask = book.best_ask()
        grid = state.grid
        if best_bid is None or best_ask is None or grid is None or not state.sync.is_synced:
            return
        data = {
            "u": frame.u,
            "s": symbol,
            "b": format_price(grid, best_bid[0]),
            "B": format_qty(grid, best_bid[1]),
            "a": format_price(grid, best_ask[0]),
            "A": format_qty(grid, best_ask[1]),
        }
        name = f"{symbol.lower()}@bookTicker"
        self._broadcast((symbol.lower(), "bookTicker"), msgspec.json.encode({"stream": name, "data": data}))

    def _load_capture_snapshots(self) -> None:
        """The venue book of each symbol starts from its first snapshot in the capture."""
        assert self.feed is not None
        seen: set[str] = set()
        with closing(capture_lines(self.feed)) as lines:  # a tardis CSV rendered as capture lines
            for line in lines:
                _, _, body = line.rstrip(b"\r\n").partition(b" ")
                if b'"rest"' not in body[:12]:
                    continue
                try:
                    result = self._decoder.decode(body)
                except (msgspec.DecodeError, ValueError, UnicodeDecodeError):
                    continue
                if type(result) is str:
                    continue
                symbol, frame = result
                if type(frame) is DepthSnapshot and symbol not in seen:
                    seen.add(symbol)
                    self.books.on_event(CaptureEvent(0, symbol, frame))
        if not seen:
            raise ValueError(f"{self.feed}: no depth snapshot: the venue cannot answer /api/v3/depth")

    async def _produce_capture(self) -> AsyncIterator[bytes]:
        assert self.feed is not None
        await self._has_client.wait()
        first_ts = 0
        start_mono = time.monotonic()
        speed = self.speed
        with closing(capture_lines(self.feed)) as lines:  # a tardis CSV rendered as capture lines
            for count, line in enumerate(lines):
                ts_text, _, body = line.rstrip(b"\r\n").partition(b" ")
                if not body:
                    continue
                if speed > 0:
                    try:
                        ts = int(ts_text)
                    except ValueError:
                        ts = first_ts
                    first_ts = first_ts or ts
                    due = start_mono + (ts - first_ts) / 1e9 / speed
                    while (wait := due - time.monotonic()) > 0:
                        await asyncio.sleep(min(wait, MAX_SLEEP_S))
                elif count % 64 == 0:
                    await asyncio.sleep(0)
                    while any(c.write_buffer_size() > MAX_WRITE_BUFFER for c in tuple(self._conns)):
                        await asyncio.sleep(0.001)  # flow control: a client is behind
                yield body

    async def _produce_sim(self) -> AsyncIterator[bytes]:
        self._synthesize_book_ticker = True
        symbol = self.symbol
        lower = symbol.lower()
        grid = self._sim_grid = grid_from_sizes(symbol, self.tick_size, self.lot_size, *self.sim_decimals)
        start_ns = time.time_ns()
        sim = MarketSim(self.sim_config, float(self.tick_size), float(self.lot_size), start_ns)
        last_id, bids, asks = sim.snapshot()
        snapshot = DepthSnapshot(
            lastUpdateId=last_id,
            bids=[(format_price(grid, px), format_qty(grid, qty)) for px, qty in bids],
            asks=[(format_price(grid, px), format_qty(grid, qty)) for px, qty in asks],
        )
        self.books.on_event(CaptureEvent(0, symbol, snapshot))
        depth_name = f"{lower}@depth@100ms"
        trade_name = f"{lower}@trade"
        encode = msgspec.json.encode
        mono0 = time.monotonic_ns()
        speed = self.speed
        while True:
            now_sim = start_ns + int((time.monotonic_ns() - mono0) * speed)
            for event in sim.advance(now_sim):
                event_ms = event.ts_ns // MS
                if type(event) is SimDepth:
                    data = {
                        "e": "depthUpdate",
                        "E": event_ms,
                        "s": symbol,
                        "U": event.first_id,
                        "u": event.final_id,
                        "b": [[format_price(grid, px), format_qty(grid, qty)] for px, qty in event.bids],
                        "a": [[format_price(grid, px), format_qty(grid, qty)] for px, qty in event.asks],
                    }
                    yield encode({"stream": depth_name, "data": data})
                elif type(event) is SimTrade:
                    data = {
                        "e": "trade",
                        "E": event_ms,
                        "s": symbol,
                        "t": event.trade_id,
                        "p": format_price(grid, event.px_tick),
                        "q": format_qty(grid, event.qty_lot),
                        "T": event_ms,
                        "m": event.taker_side < 0,
                        "M": True,
                    }
                    yield encode({"stream": trade_name, "data": data})
            wait_s = (sim.next_event_ns() - now_sim) / 1e9 / speed
            await asyncio.sleep(min(max(wait_s, 0.0), MAX_SLEEP_S))


_ENVELOPE = msgspec.json.Decoder(Envelope)


def _stream_name(body: bytes) -> str:
    if body.startswith(b'{"stream":"'):
        return body[11 : body.find(b'"', 11)].decode()
    return _ENVELOPE.decode(body).stream  # already decoded once without error by FrameDecoder


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode({"code": code, "msg": msg}),
                        content_type="application/json")


# ---- command line ----------------------------------------------------------------------------


MARKETS = ("spot", "usdm", "hyperliquid")


def add_venue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--market", choices=MARKETS, default="spot",
                        help="protocol to speak: Binance spot, Binance USD-M futures, or Hyperliquid")
    parser.add_argument("--port", type=int, default=DEFAULT_WS_PORT,
                        help="websocket port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--http-port", type=int, default=None,
                        help="REST port on 127.0.0.1 (default: --port + 1)")
    parser.add_argument("--feed", type=Path, default=None,
                        help="capture file to serve (default: the built-in simulator)")
    parser.add_argument("--symbol", default="BTCUSDT", help="simulator symbol")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="pace x recorded (or simulated) time; 0: a capture as fast as clients take it")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: until SIGTERM)")
    parser.add_argument("--ping-interval", type=float, default=None,
                        help="server ping every S seconds (default: Binance's, spot 20, usdm 180)")
    parser.add_argument("--pong-timeout", type=float, default=None,
                        help="drop a client silent to a ping for S seconds (default: spot 60, usdm 600)")
    parser.add_argument("--drop-diffs", type=int, default=0, help="fault: drop N consecutive diffs (a gap), once")
    parser.add_argument("--duplicate-every", type=int, default=0, help="fault: send every N-th diff twice")
    parser.add_argument("--reorder-every", type=int, default=0, help="fault: send every N-th diff after the next")
    parser.add_argument("--disconnect-every", type=float, default=0.0, help="fault: drop all connections every K s")
    parser.add_argument("--stall", type=float, default=0.0, help="fault: send nothing for S s, once, without closing")
    parser.add_argument("--malformed-every", type=int, default=0, help="fault: a malformed frame after every M-th frame")
    parser.add_argument("--skip-pongs", action="store_true", help="fault: never answer client pings")
    parser.add_argument("--fault-after", type=int, default=20, help="drop / stall start after this many diffs")
    from processes.venue_orders import add_order_arguments

    add_order_arguments(parser)
    from processes.venue_ws_api import add_ws_api_arguments

    add_ws_api_arguments(parser)
    from processes.venue_hyperliquid import add_hyperliquid_arguments

    add_hyperliquid_arguments(parser)
    from processes.venue_usdm import add_usdm_arguments

    add_usdm_arguments(parser)


def venue_from_args(args: argparse.Namespace) -> VenueMarket:
    faults = VenueFaults(
        drop_diffs=args.drop_diffs,
        duplicate_every=args.duplicate_every,
        reorder_every=args.reorder_every,
        disconnect_every_s=args.disconnect_every,
        stall_s=args.stall,
        malformed_every=args.malformed_every,
        skip_pongs=args.skip_pongs,
        fault_after_diffs=args.fault_after,
    )
    http_port = args.http_port if args.http_port is not None else (args.port + 1 if args.port else 0)
    return VenueMarket(
        feed=args.feed, symbol=args.symbol, speed=args.speed, faults=faults, port=args.port,
        http_port=http_port, ping_interval_s=20.0 if args.ping_interval is None else args.ping_interval,
        pong_timeout_s=60.0 if args.pong_timeout is None else args.pong_timeout,
    )


def run_venue(args: argparse.Namespace) -> int:
    if args.market == "usdm":
        from processes.venue_usdm import run_usdm_venue

        return run_usdm_venue(args)
    if args.market == "hyperliquid":
        from processes.venue_hyperliquid import run_hyperliquid_venue

        return run_hyperliquid_venue(args)
    from processes.venue_orders import attach, build_order_side  # the order side rides on our REST app
    from processes.venue_ws_api import ws_api_from_args  # /ws-api/v3 on the streams' port

    def build() -> VenueMarket:
        venue = venue_from_args(args)
        side = build_order_side(args, venue)
        attach(venue, side)
        ws_api_from_args(args, venue, side)
        return venue

    return run_from_args(build, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mm venue", description="local Binance-protocol venue")
    add_venue_arguments(parser)
    return run_venue(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
