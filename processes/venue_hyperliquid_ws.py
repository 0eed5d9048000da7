"""The Hyperliquid venue's market data and websocket (`mm venue --market hyperliquid`, HYPERLIQUID.md §4).

Producer: the simulator (mm.market_sim on a grid where every price is valid: tick = the 5th
significant figure of the start price, at least 10^-(6 - szDecimals)) or a Hyperliquid capture
(`--feed`, `<recv ns> <frame>` lines: its `l2Book` and `trades` frames verbatim, paced by receive
time / `--speed`, or as fast as clients take them with `--speed 0`; the first push is the venue's
book from the start, playback begins with the first websocket client). The simulator publishes a
whole book (20 levels a side, n = 1 per level) once per block (`BLOCK_S`) when it changed, trades
as they happen. Every push and trade also reaches the matching engine (processes.venue_hyperliquid).

`/ws` on `--port`: `{"method":"subscribe"|"unsubscribe","subscription":{...}}` for `l2Book` (a
snapshot on subscribe, then every push), `trades` (the recent trades first), `orderUpdates` (no
snapshot: `/info openOrders` is the snapshot) and `userFills` (`isSnapshot: true` first, then
streaming frames without it), `activeAssetCtx`, `allMids` and `clearinghouseState` (the main dex:
a frame on subscribe and one with every book push), `candle` (the current candle on subscribe and
with every trade), acked with
`subscriptionResponse`; `{"method":"ping"}` -> `{"channel":"pong"}`;
`{"method":"post","id":n,"request":{"type":"info"|"action","payload":..}}`.
A connection to which nothing was sent for `--hl-idle-close` s (60) is closed; at most 10
connections, 1000 subscriptions and 2000 messages a minute per connection. Faults as on the Binance side:
`--disconnect-every K` drops every connection every K s; `--stall S` sends nothing for S s, once,
after `--fault-after` book pushes (sockets stay open, the engine keeps matching); the order faults
(`--order-latency-ms`, `--error-5xx-ratio`, `--timeout-ratio`, `--drop-ratio`, `--fault-seed`)
act on `/info` and `/exchange` (processes.venue_hyperliquid.Faults).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest

from mm.config import SimConfig
from mm.market_sim import MarketSim, SimDepth, SimTrade
from processes.venue_servers import LoopbackServers, run_from_args
from processes.venue_orders import OrderFaults
from processes.venue_hyperliquid import (
    BOOK_LEVELS,
    CANDLE_MS,
    HlBook,
    HyperliquidExchange,
    book_precision,
    exchange_from_args,
    faults_from_args,
    mount,
    wire,
)

log = logging.getLogger(__name__)

BLOCK_S = 0.5  # whole-book pushes at most this often (a block at least 0.5 s after the previous)
MAX_CONNECTIONS = 10
MAX_SUBSCRIPTIONS = 1000
MAX_MESSAGES_PER_MIN = 2000
MAX_SLEEP_S = 0.05
_USERS = ("orderUpdates", "userFills")
_COINS = ("l2Book", "trades")
_BLOCK_CHANNELS = ("activeAssetCtx", "allMids", "clearinghouseState")  # a frame on subscribe and on every push
_NO_ADDRESS = "0x0000000000000000000000000000000000000000"


def sim_tick(start_px: float, sz_decimals: int) -> Decimal:
    """The simulator's tick: every price on it has at most 5 significant figures (or is an integer)."""
    exponent = max(math.floor(math.log10(start_px)) - 4, sz_decimals - 6)
    return Decimal(1).scaleb(exponent)


def capture_coin(path: Path) -> str:
    """The coin of a capture's first `l2Book` frame (ValueError when it has none)."""
    with _open(path) as lines:
        for line in lines:
            frame = _frame(line)
            if frame is not None and frame.get("channel") == "l2Book":
                return frame["data"]["coin"]
    raise ValueError(f"{path}: no l2Book frame: not a Hyperliquid capture")


def _open(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _frame(line: str) -> dict | None:
    _, _, body = line.strip().partition(" ")
    try:
        frame = json.loads(body)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


def _book_of(data: dict) -> HlBook:
    sides = [[(lv["px"], lv["sz"], lv["n"]) for lv in side] for side in data["levels"]]
    return HlBook(sides[0], sides[1], data["time"])


def _block_frame(exchange: HyperliquidExchange, key: tuple) -> dict:
    """The frame of a per-block subscription (activeAssetCtx, allMids, clearinghouseState), as of now."""
    kind = key[0]
    if kind == "activeAssetCtx":
        return {"channel": kind, "data": {"coin": exchange.coin, "ctx": exchange.asset_ctx()}}
    if kind == "allMids":
        return {"channel": kind, "data": {"mids": exchange.info({"type": "allMids"})[1]}}
    state = exchange.info({"type": "clearinghouseState", "user": key[1]})[1]
    return {"channel": kind, "data": {"dex": "", "user": key[1], "clearinghouseState": state}}


def _candle_frame(exchange: HyperliquidExchange, interval: str, at_ms: int) -> dict:
    """The `candle` frame: the candle of `interval` that holds `at_ms`, as of now."""
    step = CANDLE_MS[interval]
    start = at_ms // step * step
    return {"channel": "candle", "data": exchange.candles(interval, start, start)[-1]}


class _Connection(WSListener):
    def __init__(self, venue: HyperliquidVenue) -> None:
        self.venue = venue
        self.transport: WSTransport | None = None
        self.subs: dict[tuple, dict] = {}  # (type, coin | user[, nSigFigs, mantissa]) -> subscription
        self.last_sent = time.monotonic()
        self.window = (0, 0)  # (minute, messages received in it)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.venue._conns.add(self)
        self.venue.counts["connections"] += 1
        self.venue.has_client.set()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.venue._conns.discard(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self._on_message(frame.get_payload_as_bytes())
        elif frame.msg_type is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def send(self, message: object) -> None:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        if self.venue.is_stalled():
            self.venue.counts["stalled_messages"] += 1
            return
        transport.send(WSMsgType.TEXT, json.dumps(message, separators=(",", ":")).encode())
        self.last_sent = time.monotonic()

    def _error(self, text: str) -> None:
        self.send({"channel": "error", "data": text})

    def _on_message(self, body: bytes) -> None:
        minute = int(time.monotonic() // 60)
        count = self.window[1] + 1 if self.window[0] == minute else 1
        self.window = (minute, count)
        if count > MAX_MESSAGES_PER_MIN:
            self.venue.counts["ws_messages_refused"] += 1
            self._error(f"Too many messages: at most {MAX_MESSAGES_PER_MIN} a minute")
            return
        text = body.decode("utf-8", "replace")
        try:
            request = json.loads(text)
            method = request["method"]
        except (ValueError, KeyError, TypeError):
            self._error(f"Error parsing JSON into valid websocket request: {text}")
            return
        if method == "ping":
            self.send({"channel": "pong"})
        elif method in ("subscribe", "unsubscribe"):
            self._on_subscription(method, request.get("subscription"), text)
        elif method == "post":
            self._on_post(request)
        else:
            self._error(f"Error parsing JSON into valid websocket request: {text}")

    def _on_subscription(self, method: str, sub: object, text: str) -> None:
        venue = self.venue
        kind = sub.get("type") if isinstance(sub, dict) else None
        precision = book_precision(sub) if kind == "l2Book" else (None, None)
        if isinstance(precision, str):
            self._error(f"Invalid subscription {json.dumps(sub)}: {precision}")
            return
        if kind in _COINS and sub.get("coin") == venue.exchange.coin:
            key = (kind, sub["coin"], *precision)  # l2Book: one subscription per precision
        elif kind in _USERS and isinstance(sub.get("user"), str) and len(sub["user"]) == 42:
            key = (kind, sub["user"].lower())
        elif kind == "candle" and sub.get("coin") == venue.exchange.coin and sub.get("interval") in CANDLE_MS:
            key = (kind, sub["coin"], sub["interval"])
        elif kind == "activeAssetCtx" and sub.get("coin") == venue.exchange.coin:
            key = (kind, sub["coin"])
        elif kind == "allMids" and sub.get("dex") in (None, ""):
            key = (kind,)
        elif kind == "clearinghouseState" and sub.get("dex") in (None, "") and isinstance(sub.get("user"), str) \
                and len(sub["user"]) == 42:
            key = (kind, sub["user"].lower())
        else:
            self._error(f"Invalid subscription {json.dumps(sub)}")
            return
        if method == "unsubscribe":
            if self.subs.pop(key, None) is None:
                self._error(f"Already unsubscribed: {json.dumps(sub)}")
                return
            self.send({"channel": "subscriptionResponse", "data": {"method": "unsubscribe", "subscription": sub}})
            return
        if key in self.subs:
            self._error(f"Already subscribed: {json.dumps(sub)}")
            return
        if len(self.subs) >= MAX_SUBSCRIPTIONS:
            self._error(f"Cannot subscribe: at most {MAX_SUBSCRIPTIONS} subscriptions")
            return
        self.subs[key] = sub
        self.send({"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub}})
        exchange = venue.exchange
        if kind == "l2Book" and (exchange.book.bids or exchange.book.asks):
            self.send({"channel": "l2Book", "data": exchange.book.json(exchange.coin, *precision)})
        elif kind == "trades" and exchange.trades:
            self.send({"channel": "trades", "data": list(exchange.trades)})
        elif kind == "userFills":
            fills = list(exchange.fills.get(key[1], ()))
            self.send({"channel": "userFills", "data": {"isSnapshot": True, "user": key[1], "fills": fills}})
        elif kind in _BLOCK_CHANNELS:
            self.send(_block_frame(exchange, key))
        elif kind == "candle" and exchange.minutes:
            self.send(_candle_frame(exchange, key[2], max(exchange.minutes)))

    def _on_post(self, request: dict) -> None:
        post_id = request.get("id")
        inner = request.get("request")
        kind = inner.get("type") if isinstance(inner, dict) else None
        payload = inner.get("payload") if isinstance(inner, dict) else None
        exchange = self.venue.exchange
        if kind == "info":
            status, reply = exchange.info(payload)
            response = ({"type": "info", "payload": {"type": payload.get("type"), "data": reply}} if status == 200
                        else {"type": "error", "payload": str(reply)})
        elif kind == "action":
            entry = exchange.record(payload, "ws")
            status, reply = exchange.exchange(payload)
            entry["answer"] = status
            response = {"type": "action", "payload": reply} if status == 200 else {"type": "error", "payload": str(reply)}
        else:
            response = {"type": "error", "payload": "post request type must be info or action"}
        self.send({"channel": "post", "data": {"id": post_id, "response": response}})


class HyperliquidVenue(LoopbackServers):
    """The whole local venue: exchange state, REST app, websocket server, producer."""

    def __init__(self, exchange: HyperliquidExchange, *, feed: Path | None = None, speed: float = 1.0,
                 port: int = 0, http_port: int = 0, idle_close_s: float = 60.0, disconnect_every_s: float = 0.0,
                 stall_s: float = 0.0, fault_after: int = 20, order_faults: OrderFaults | None = None,
                 sim_config: SimConfig | None = None) -> None:
        if speed < 0 or (feed is None and speed == 0):
            raise ValueError(f"'speed' must be > 0 for the simulator and >= 0 for a capture, was {speed}")
        super().__init__(port, http_port)
        self.exchange = exchange
        self.feed = feed
        self.speed = speed
        self.idle_close_s = idle_close_s
        self.disconnect_every_s = disconnect_every_s
        self.stall_s = stall_s
        self.fault_after = fault_after
        self.order_faults = order_faults
        self.stalled_until = 0.0
        self.sim_config = sim_config or SimConfig()
        self.has_client = asyncio.Event()
        self.finished = asyncio.Event()
        self.counts: Counter[str] = Counter()
        self._trade_id = 1
        exchange.listeners.append(self._on_user_event)

    async def start(self) -> None:
        if self.feed is not None:
            self._load_first_book()
        app = web.Application()
        mount(app, self.exchange, self.order_faults)
        await self._listen(self._listener_for, app, logger_name="venue-hl")
        producer = self._produce_capture() if self.feed is not None else self._produce_sim()
        self._tasks = [asyncio.create_task(self._run(producer), name="hl-producer"),
                       asyncio.create_task(self._timers(), name="hl-timers")]
        log.info("hyperliquid venue up ws=%s/ws http=%s feed=%s", self.ws_url, self.http_url, self.feed or "sim")

    def _listener_for(self, request: WSUpgradeRequest) -> WSListener | None:
        if urlsplit(request.path.decode("latin-1")).path != "/ws":
            return None
        if len(self._conns) >= MAX_CONNECTIONS:
            self.counts["connections_refused"] += 1
            return None
        return _Connection(self)

    def _broadcast(self, key: tuple, message: dict) -> None:
        for conn in tuple(self._conns):
            if key in conn.subs:
                conn.send(message)

    def _on_user_event(self, channel: str, user: str, data: object) -> None:
        message = ({"channel": "userFills", "data": {"user": user, "fills": data}} if channel == "userFills"
                   else {"channel": channel, "data": data})
        self._broadcast((channel, user), message)

    def is_stalled(self) -> bool:
        return time.monotonic() < self.stalled_until

    def _push_book(self, book: HlBook) -> None:
        self.exchange.on_book(book)
        if self.stall_s and self.counts["books"] == self.fault_after:  # once: nothing sent, sockets kept
            self.stalled_until = time.monotonic() + self.stall_s
            self.counts["stalls"] += 1
        coin = self.exchange.coin
        frames: dict[tuple, dict] = {}
        for conn in tuple(self._conns):
            for key in conn.subs:
                if key[0] == "l2Book":
                    precision = key[2:]
                    if precision not in frames:
                        frames[precision] = {"channel": "l2Book", "data": book.json(coin, *precision)}
                    conn.send(frames[precision])
                elif key[0] in _BLOCK_CHANNELS:
                    if key not in frames:
                        frames[key] = _block_frame(self.exchange, key)
                    conn.send(frames[key])
        self.counts["books"] += 1

    def _push_trades(self, trades: list[dict]) -> None:
        self.exchange.on_trades(trades)
        self._broadcast(("trades", self.exchange.coin, None, None), {"channel": "trades", "data": trades})
        if trades:
            frames: dict[str, dict] = {}
            for conn in tuple(self._conns):
                for key in conn.subs:
                    if key[0] == "candle":
                        if key[2] not in frames:
                            frames[key[2]] = _candle_frame(self.exchange, key[2], trades[-1]["time"])
                        conn.send(frames[key[2]])
        self.counts["trades"] += len(trades)

    async def _timers(self) -> None:
        last_drop = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            self.exchange.tick()
            now = time.monotonic()
            for conn in tuple(self._conns):
                if now - conn.last_sent > self.idle_close_s and conn.transport is not None and not self.is_stalled():
                    self.counts["idle_closed"] += 1
                    conn.transport.send_close()
                    conn.transport.disconnect()
            if self.disconnect_every_s and now - last_drop >= self.disconnect_every_s:
                last_drop = now
                for conn in tuple(self._conns):
                    if conn.transport is not None:
                        self.counts["disconnects"] += 1
                        conn.transport.disconnect(graceful=False)

    async def _run(self, producer: AsyncIterator[None]) -> None:
        async for _ in producer:
            pass
        self.finished.set()
        log.info("hyperliquid venue feed finished: %s", dict(self.counts))

    # ---- producers -----------------------------------------------------------------------

    def _load_first_book(self) -> None:
        assert self.feed is not None
        with _open(self.feed) as lines:
            for line in lines:
                frame = _frame(line)
                if frame is not None and frame.get("channel") == "l2Book" \
                        and frame["data"].get("coin") == self.exchange.coin:
                    self.exchange.on_book(_book_of(frame["data"]))
                    return

    async def _produce_capture(self) -> AsyncIterator[None]:
        assert self.feed is not None
        await self.has_client.wait()
        first_ts = 0
        start = time.monotonic()
        coin = self.exchange.coin
        with _open(self.feed) as lines:
            for count, line in enumerate(lines):
                ts_text, _, _ = line.partition(" ")
                frame = _frame(line)
                if frame is None:
                    self.counts["feed_malformed"] += 1
                    continue
                if self.speed > 0 and ts_text.isdigit():
                    ts = int(ts_text)
                    first_ts = first_ts or ts
                    due = start + (ts - first_ts) / 1e9 / self.speed
                    while (wait := due - time.monotonic()) > 0:
                        await asyncio.sleep(min(wait, MAX_SLEEP_S))
                elif count % 64 == 0:
                    await asyncio.sleep(0)
                channel, data = frame.get("channel"), frame.get("data")
                if channel == "l2Book" and data.get("coin") == coin:
                    self._push_book(_book_of(data))
                elif channel == "trades" and data and data[0].get("coin") == coin:
                    self._push_trades(data)
                yield None

    async def _produce_sim(self) -> AsyncIterator[None]:
        exchange = self.exchange
        cfg = self.sim_config
        tick = sim_tick(cfg.start_px, exchange.sz_decimals)
        lot = exchange.grid.lot_size
        start_ns = time.time_ns()
        sim = MarketSim(cfg, float(tick), float(lot), start_ns)
        _, bids, asks = sim.snapshot()
        book = {1: dict(bids), -1: dict(asks)}
        self._push_book(self._render(book, tick, lot, start_ns // 1_000_000))
        mono0 = time.monotonic_ns()
        last_push = time.monotonic()
        changed = False
        while True:
            now_sim = start_ns + int((time.monotonic_ns() - mono0) * self.speed)
            trades = []
            for event in sim.advance(now_sim):
                if type(event) is SimDepth:
                    for side, levels in ((1, event.bids), (-1, event.asks)):
                        for px, qty in levels:
                            if qty > 0:
                                book[side][px] = qty
                            else:
                                book[side].pop(px, None)
                    changed = True
                elif type(event) is SimTrade:
                    trades.append({"coin": exchange.coin, "side": "B" if event.taker_side > 0 else "A",
                                   "px": wire(event.px_tick * tick), "sz": wire(event.qty_lot * lot),
                                   "hash": "0x" + format(event.trade_id, "064x"), "time": event.ts_ns // 1_000_000,
                                   "tid": event.trade_id, "users": [_NO_ADDRESS, _NO_ADDRESS]})
            if trades:
                self._push_trades(trades)
            if changed and time.monotonic() - last_push >= BLOCK_S / self.speed:
                self._push_book(self._render(book, tick, lot, now_sim // 1_000_000))
                last_push = time.monotonic()
                changed = False
            yield None
            wait_s = (sim.next_event_ns() - now_sim) / 1e9 / self.speed
            await asyncio.sleep(min(max(wait_s, 0.0), MAX_SLEEP_S))

    @staticmethod
    def _render(book: dict, tick: Decimal, lot: Decimal, time_ms: int) -> HlBook:
        bids = sorted(book[1].items(), reverse=True)[:BOOK_LEVELS]
        asks = sorted(book[-1].items())[:BOOK_LEVELS]
        return HlBook([(wire(p * tick), wire(q * lot), 1) for p, q in bids],
                      [(wire(p * tick), wire(q * lot), 1) for p, q in asks], time_ms)


def _coin_of_symbol(symbol: str) -> str:
    upper = symbol.upper()
    for suffix in ("USDT", "USDC", "-PERP", "USD"):
        if upper.endswith(suffix) and len(upper) > len(suffix):
            return upper[: -len(suffix)]
    return upper


def venue_from_args(args: argparse.Namespace) -> HyperliquidVenue:
    feed = Path(args.feed) if args.feed is not None else None
    if feed is not None and not feed.exists():
        raise ValueError(f"--feed {feed}: no such file")
    coin = capture_coin(feed) if feed is not None else _coin_of_symbol(args.symbol)
    exchange = exchange_from_args(args, coin)
    http_port = args.http_port if args.http_port is not None else (args.port + 1 if args.port else 0)
    return HyperliquidVenue(exchange, feed=feed, speed=args.speed, port=args.port, http_port=http_port,
                            idle_close_s=args.hl_idle_close, disconnect_every_s=args.disconnect_every,
                            stall_s=args.stall, fault_after=args.fault_after, order_faults=faults_from_args(args))


def run(args: argparse.Namespace) -> int:
    return run_from_args(lambda: venue_from_args(args), args)