"""`mm capture`: raw venue frames with their receive times, in the ../shared/data line format.

Each line is `<recv_ts_ns> <frame>`: websocket frames verbatim (a CR or LF inside a frame, which
no valid JSON frame has, is written as a space so a line stays a line), REST replies wrapped as
`{"rest": "<path>?<query>", "data": <reply verbatim>}`. Files are gzip'd and rotated by size:
the first is F, then F.1.gz, F.2.gz, ... (a trailing `.gz` of F is dropped before the number:
`cap.jsonl.gz` -> `cap.jsonl.1.gz`); `capture_files(F)` lists them in order for mm.capture.

The recorder subscribes first and asks for a REST snapshot once the first diff of each symbol
has arrived, and again after every reconnect (as Binance's book procedure does), so a capture
can always be rebuilt by mm.book_replay. `--venue hyperliquid` records every text frame of the
coin's `l2Book` + `trades` (processes/hyperliquid_ws.py's client), no REST: each push is a whole book.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import signal
import sys
import time
from pathlib import Path
from typing import IO

import msgspec

from ipc.messages import DepthDiff
from processes.binance_ws import (
    DEPTH_PATH,
    VENUE_REST,
    VENUE_WS,
    BinanceStreamClient,
    FeedConnectError,
    combined_stream_url,
    fetch_depth_raw,
    symbol_streams,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
GZIP_LEVEL = 6


def rotated_name(path: Path, number: int) -> Path:
    stem = path.name[:-3] if path.name.endswith(".gz") else path.name
    return path.with_name(f"{stem}.{number}.gz")


def capture_files(path: Path | str) -> list[Path]:
    """F, F.1.gz, F.2.gz, ... as far as they exist: the order they were written."""
    path = Path(path)
    files = [path]
    number = 1
    while rotated_name(path, number).exists():
        files.append(rotated_name(path, number))
        number += 1
    return files


class CaptureWriter:
    """Writes capture lines; rotates to the next file once the current one holds `max_bytes`
    (compressed bytes handed to the file)."""

    def __init__(self, path: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"'max_bytes' must be > 0, was {max_bytes}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.files: list[Path] = []
        self.lines = 0
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self._open(self.path)

    def _open(self, path: Path) -> None:
        self._raw = open(path, "wb")
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=GZIP_LEVEL)
        self.files.append(path)

    def _write(self, line: bytes) -> None:
        assert self._gz is not None and self._raw is not None
        self._gz.write(line)
        self.lines += 1
        if self._raw.tell() >= self.max_bytes:
            self._close_current()
            self._open(rotated_name(self.path, len(self.files)))

    def write_frame(self, recv_ts_ns: int, payload: bytes) -> None:
        if b"\n" in payload or b"\r" in payload:
            payload = payload.replace(b"\r", b" ").replace(b"\n", b" ")
        self._write(b"%d %s\n" % (recv_ts_ns, payload))

    def write_rest(self, recv_ts_ns: int, path_query: str, reply: bytes) -> None:
        reply = reply.strip().replace(b"\r", b" ").replace(b"\n", b" ")
        self._write(b'%d {"rest":%s,"data":%s}\n' % (recv_ts_ns, msgspec.json.encode(path_query), reply))

    def flush(self) -> None:
        if self._gz is not None:
            self._gz.flush()

    def _close_current(self) -> None:
        if self._gz is not None:
            self._gz.close()
        if self._raw is not None:
            self._raw.close()
        self._gz = self._raw = None

    def close(self) -> None:
        self._close_current()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def venue_urls(venue: str) -> tuple[str, str, str]:
    """(websocket base, REST base, depth path) for a venue name or a ws(s):// base URL.

    The local venue (`mm venue`) serves REST on its websocket port + 1.
    """
    if venue in VENUE_WS:
        return VENUE_WS[venue], VENUE_REST[venue], DEPTH_PATH[venue]
    if venue.startswith(("ws://", "wss://")):
        from urllib.parse import urlsplit

        parts = urlsplit(venue)
        scheme = "https" if parts.scheme == "wss" else "http"
        port = (parts.port or (443 if scheme == "https" else 80)) + 1
        return venue.rstrip("/"), f"{scheme}://{parts.hostname}:{port}", "/api/v3/depth"
    raise ValueError(f"--venue {venue!r}: a ws(s):// URL or one of {', '.join(sorted(VENUE_WS))}")


HYPERLIQUID = "hyperliquid"
HYPERLIQUID_WS = "wss://api.hyperliquid.xyz/ws"
HYPERLIQUID_INFO = "https://api.hyperliquid.xyz"


def hyperliquid_urls(ws_url: str | None, rest: str | None) -> tuple[str, str]:
    """(websocket `/ws` URL, `/info` base) of Hyperliquid, or of `mm venue --market hyperliquid`
    when `ws_url` is a ws:// one (its HTTP port is the websocket port + 1)."""
    ws_url = ws_url or HYPERLIQUID_WS
    if rest:
        return ws_url, rest
    if ws_url.startswith("ws://"):
        from urllib.parse import urlsplit

        parts = urlsplit(ws_url)
        return ws_url, f"http://{parts.hostname}:{(parts.port or 80) + 1}"
    return ws_url, HYPERLIQUID_INFO


def add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", required=True,
                        help="ws(s):// base URL (e.g. ws://127.0.0.1:9900 for `mm venue`) or a name: "
                        + ", ".join(sorted([*VENUE_WS, HYPERLIQUID])))
    parser.add_argument("--ws-url", default=None,
                        help=f"with --venue {HYPERLIQUID}: its /ws URL (default {HYPERLIQUID_WS}; "
                        "ws://127.0.0.1:P/ws for `mm venue --market hyperliquid`)")
    parser.add_argument("--symbol", required=True, action="append",
                        help="symbol to record (repeat for several)")
    parser.add_argument("--out", required=True, type=Path, help="first capture file (gzip)")
    parser.add_argument("--rest", default=None,
                        help="REST base URL (default: from --venue; Hyperliquid: the /info base, from --ws-url)")
    parser.add_argument("--depth-stream", default="depth@100ms", help="diff stream suffix (depth@0ms on USD-M)")
    parser.add_argument("--trade-stream", default="trade", help="trade stream suffix (aggTrade on USD-M)")
    parser.add_argument("--snapshot-limit", type=int, default=1000, help="REST snapshot depth")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="rotate after this many bytes")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: until SIGTERM)")


async def run_hyperliquid_capture(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Every text frame of Hyperliquid's `l2Book` + `trades` of one coin, verbatim (each push is a
    whole book, so no REST snapshot is recorded)."""
    from mm.errors import MMError
    from processes.hyperliquid_ws import HyperliquidStreamClient, fetch_coin_grid

    if len(args.symbol) != 1:
        print(f"mm capture: --venue {HYPERLIQUID} records one coin, got --symbol {' '.join(args.symbol)}",
              file=sys.stderr)
        return 2
    coin = args.symbol[0].upper()
    ws_url, info_url = hyperliquid_urls(args.ws_url, args.rest)
    try:
        grid = await fetch_coin_grid(info_url, coin)
        client = HyperliquidStreamClient(ws_url, coin, grid)
        writer = CaptureWriter(args.out, args.max_bytes)
    except (ValueError, OSError, MMError) as e:
        print(f"mm capture: {e}", file=sys.stderr)
        return 2
    with writer:
        client.recorder = writer
        task = asyncio.create_task(client.run(lambda message: None, stop))
        try:
            await asyncio.wait_for(stop.wait(), args.duration if args.duration > 0 else None)
        except asyncio.TimeoutError:
            pass
        finally:
            stop.set()
            await asyncio.wait_for(task, 10.0)
    log.info("capture: %d lines in %s; counts %s", writer.lines, [str(f) for f in writer.files], dict(client.counts))
    print(f"mm capture: {writer.lines} lines -> {', '.join(map(str, writer.files))}", file=sys.stderr)
    return 0


async def run_capture_async(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    if args.venue == HYPERLIQUID:
        return await run_hyperliquid_capture(args, stop or asyncio.Event())
    if args.ws_url is not None:
        print(f"mm capture: --ws-url is for --venue {HYPERLIQUID} (give a Binance URL as --venue)", file=sys.stderr)
        return 2
    try:
        ws_base, rest_base, depth_path = venue_urls(args.venue)
        rest_base = args.rest or rest_base
        symbols = [s.upper() for s in args.symbol]
        streams = [name for s in symbols for name in symbol_streams(s, args.depth_stream, args.trade_stream)]
        url = combined_stream_url(ws_base, streams)
        writer = CaptureWriter(args.out, args.max_bytes)
    except (ValueError, OSError) as e:
        print(f"mm capture: {e}", file=sys.stderr)
        return 2
    stop = stop or asyncio.Event()
    wanted: set[str] = set()  # symbols whose snapshot is due (first diff of this connection seen)
    pending: set[str] = set(symbols)
    failures = 0

    def on_connected(number: int) -> None:
        pending.update(symbols)  # a new session: snapshot again after its first diff

    def on_message(message: object) -> None:
        if type(message) is DepthDiff and message.symbol in pending:
            pending.discard(message.symbol)
            wanted.add(message.symbol)

    with writer:
        try:
            client = BinanceStreamClient(url, recorder=writer)
        except ValueError as e:
            print(f"mm capture: {e}", file=sys.stderr)
            return 2
        client.on_connected = on_connected
        task = asyncio.create_task(client.run(on_message, stop))
        deadline = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        try:
            while not stop.is_set() and not task.done() and time.monotonic() < deadline:
                for symbol in sorted(wanted):
                    wanted.discard(symbol)
                    try:
                        path_query, reply = await fetch_depth_raw(
                            rest_base, symbol, args.snapshot_limit, path=depth_path)
                    except FeedConnectError as e:
                        failures += 1
                        log.warning("capture: snapshot of %s failed: %s", symbol, e)
                        pending.add(symbol)
                        continue
                    writer.write_rest(time.time_ns(), path_query, reply)
                try:
                    await asyncio.wait_for(stop.wait(), min(0.05, max(0.0, deadline - time.monotonic())))
                except asyncio.TimeoutError:
                    pass
        finally:
            stop.set()
            await asyncio.wait_for(task, 10.0)
    log.info("capture: %d lines in %s; counts %s", writer.lines, [str(f) for f in writer.files], dict(client.counts))
    print(f"mm capture: {writer.lines} lines -> {', '.join(map(str, writer.files))}", file=sys.stderr)
    return 0


def run_capture(args: argparse.Namespace) -> int:
    async def with_signals() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_capture_async(args, stop)

    return asyncio.run(with_signals())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mm capture", description="record raw venue frames")
    add_capture_arguments(parser)
    return run_capture(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
