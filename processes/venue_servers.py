"""The two listeners of a local venue (`mm venue`), on loopback only: a websocket server on `port`
and a REST app on `http_port` (`port + 1` when only `port` is given; 0 asks for any free one),
with the background tasks that feed them. Each market's venue subclasses it and says what it serves."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from picows import ws_create_server

HOST = "127.0.0.1"  # loopback only, never configurable


async def cancel_all(tasks: list[asyncio.Task]) -> None:
    """Cancel the tasks and wait until each has ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            pass


class LoopbackServers:
    def __init__(self, port: int, http_port: int) -> None:
        self._port = port
        self._http_port = http_port
        self.ws_port = 0
        self.http_port = 0
        self._conns: set[Any] = set()  # the open websocket connections (picows listeners)
        self._server: asyncio.Server | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.ws_port}"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    async def start(self) -> None:
        raise NotImplementedError

    async def _listen(self, listener_for: Callable, app: web.Application, **ws_options: Any) -> None:
        """Bind both listeners; `ws_port` / `http_port` then hold the ports they got."""
        self._server = await ws_create_server(listener_for, HOST, self._port, **ws_options)
        self.ws_port = self._server.sockets[0].getsockname()[1]
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        http_port = self._http_port if self._http_port else (self._port + 1 if self._port else 0)
        site = web.TCPSite(self._runner, HOST, http_port)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.disconnect(graceful=False)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve(venue: LoopbackServers, duration_s: float, stop: asyncio.Event | None = None) -> None:
    """Serve until `duration_s` passes (0: forever) or SIGTERM / SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await venue.start()
    print(f"venue ws={venue.ws_url} http={venue.http_url}", flush=True)
    try:
        if duration_s > 0:
            try:
                await asyncio.wait_for(stop.wait(), duration_s)
            except asyncio.TimeoutError:
                pass
        else:
            await stop.wait()
    finally:
        await venue.stop()


def run_from_args(build: Callable[[], LoopbackServers], args: argparse.Namespace) -> int:
    """`mm venue`: build the venue the arguments describe and serve it; exit 2 for bad arguments
    (named on stderr), 1 when it cannot serve (a port taken), 0 after a clean stop."""
    if args.feed is not None and not Path(args.feed).exists():
        print(f"mm venue: --feed {args.feed}: no such file", file=sys.stderr)
        return 2
    try:
        venue = build()
    except ValueError as e:
        print(f"mm venue: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(venue, args.duration))
    except (OSError, ValueError) as e:
        print(f"mm venue: {e}", file=sys.stderr)
        return 1
    return 0
