"""The feed's live market source: the Binance websocket client (processes/binance_ws.py), or
Hyperliquid's (processes/hyperliquid_ws.py, `[feed] venue = "hyperliquid"`), in its own asyncio thread, handing decoded messages to the feed's ZeroMQ loop over an inproc PUSH/PULL
pair, and fetching REST depth snapshots when the book asks for one (the documented procedure:
subscribe first, buffer, then the snapshot).

The PUSH socket is made in the asyncio thread and only used there (a socket stays in its thread).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import zmq

from ipc.sockets import frame
from mm.config import Config
from mm.errors import MMError, OffGridError
from mm.ticks import TickGrid, grid_from_sizes, infer_grid_from_levels
from processes.async_worker import AsyncWorker
from processes.hyperliquid_ws import HyperliquidStreamClient, fetch_coin_grid
from processes.binance_ws import (
    BinanceStreamClient,
    FeedConnectError,
    combined_stream_url,
    fetch_depth,
    fetch_depth_text,
    symbol_streams,
)

log = logging.getLogger(__name__)

INPROC = "inproc://feed-stream"


DEPTH_PATHS = {"binance_usdm": "/fapi/v1/depth", "binance_coinm": "/dapi/v1/depth"}


def depth_path(config: Config) -> str:
    """The REST depth snapshot of the instrument's market: spot /api/v3, USD-M /fapi/v1, COIN-M /dapi/v1."""
    market = "binance_usdm" if config.gateway.venue == "binance-usdm" else config.instrument.market
    return DEPTH_PATHS.get(market, "/api/v3/depth")


class StreamRunner(AsyncWorker):
    name = "feed stream"

    def __init__(self, ctx: zmq.Context, config: Config) -> None:
        super().__init__()
        self.ctx = ctx
        self.config = config
        self.symbol = config.instrument.symbol
        self.client: BinanceStreamClient | HyperliquidStreamClient | None = None
        self.snapshots = 0
        self.snapshot_failures = 0
        self._snapshot_wanted: asyncio.Event | None = None

    def request_snapshot(self) -> None:
        if self._loop is None:
            return
        if isinstance(self.client, HyperliquidStreamClient):  # every push is a whole book: no REST
            self._loop.call_soon_threadsafe(self.client.resync)
        elif self._snapshot_wanted is not None:
            self._loop.call_soon_threadsafe(self._snapshot_wanted.set)

    # ---- the asyncio thread -----------------------------------------------------------------------

    async def _grid(self) -> TickGrid:
        """The venue's decimals from one snapshot's text, on the configured tick and lot grid."""
        feed = self.config.feed
        text = await fetch_depth_text(feed.rest_url, self.symbol, 5, path=depth_path(self.config))
        levels = [*text.bids, *text.asks]
        if not levels:
            raise OffGridError(f"{self.symbol}: the venue's snapshot is empty: cannot learn its number format")
        seen = infer_grid_from_levels(self.symbol, levels)
        inst = self.config.instrument
        return grid_from_sizes(self.symbol, inst.tick_size, inst.lot_size, seen.price_decimals, seen.qty_decimals)

    async def main(self, stop: asyncio.Event) -> None:
        self._snapshot_wanted = asyncio.Event()
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(INPROC)
        topic = f"stream.{self.symbol}".encode()
        try:
            if self.config.feed.venue == "hyperliquid":
                await self._run_hyperliquid(push, topic, stop)
                return
            grid = await self._grid()
            feed = self.config.feed
            url = combined_stream_url(feed.ws_url, symbol_streams(self.symbol, feed.depth_stream, feed.trade_stream))
            self.client = BinanceStreamClient(url, grids={self.symbol: grid}, silent_s=feed.silent_s)

            def on_message(msg: Any) -> None:  # called inside on_ws_frame: encode now, the frame dies after
                push.send(frame(topic, msg))

            snapshots = asyncio.create_task(self._serve_snapshots(push, topic, grid))
            try:
                await self.client.run(on_message, stop)
            finally:
                snapshots.cancel()
        finally:
            push.close(linger=0)

    async def _run_hyperliquid(self, push: zmq.Socket, topic: bytes, stop: asyncio.Event) -> None:
        feed = self.config.feed
        inst = self.config.instrument
        seen = await fetch_coin_grid(feed.rest_url, self.symbol)
        grid = grid_from_sizes(self.symbol, inst.tick_size, inst.lot_size, seen.price_decimals, seen.qty_decimals)
        self.client = HyperliquidStreamClient(feed.ws_url, self.symbol, grid, silent_s=feed.silent_s,
                                              ping_interval_s=feed.ping_interval_s)

        def on_message(msg: Any) -> None:
            push.send(frame(topic, msg))

        await self.client.run(on_message, stop)

    async def _serve_snapshots(self, push: zmq.Socket, topic: bytes, grid: TickGrid) -> None:
        assert self._snapshot_wanted is not None and self._stop is not None
        feed = self.config.feed
        while not self._stop.is_set():
            await self._snapshot_wanted.wait()
            self._snapshot_wanted.clear()
            while self.client is not None and not self.client.is_connected and not self._stop.is_set():
                await asyncio.sleep(0.05)  # polling the connection, bounded by stop: subscribe before snapshot
            try:
                snapshot = await fetch_depth(feed.rest_url, self.symbol, feed.snapshot_limit, grid,
                                             path=depth_path(self.config))
            except (FeedConnectError, MMError) as e:
                self.snapshot_failures += 1
                log.warning("snapshot of %s failed: %s", self.symbol, e)
                continue  # the book asks again after its retry interval
            self.snapshots += 1
            push.send(frame(topic, snapshot))
