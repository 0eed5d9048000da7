"""The real feed client (processes.binance_ws) and book sync (mm.book_sync) against the local venue
(processes.venue_market) on 127.0.0.1, with each fault switch on in turn.

Each test runs one asyncio loop holding the venue, the client and the book, so "the book equals
the venue's book" is checked at an instant when both have the same last update id. Every wait
polls to a deadline; every test is bounded by TEST_TIMEOUT_S.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ipc.messages import BookTicker, DepthDiff, Trade
from mm.book import ASK, BID
from mm.book_replay import build_books
from mm.book_sync import BookSync
from mm.capture import CaptureStats, read_capture
from mm.ticks import TickGrid, format_price, format_qty, grid_from_sizes, infer_grid
from processes.binance_ws import BinanceStreamClient, combined_stream_url, fetch_depth
from processes.venue_market import VenueFaults, VenueMarket
from tests.conftest import run_async, wait_until_async

TEST_TIMEOUT_S = 25.0
SYMBOL = "BTCUSDT"
SIM_GRID = grid_from_sizes(SYMBOL, "0.01", "0.00001", 8, 8)
DEPTH = 20
DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SPOT_SET = DATA_DIR / "binance-spot-btcusdt-20240808.jsonl.gz"


class FeedUnderTest:
    """The shell a feed + book process would be: client -> BookSync, REST resync on demand."""

    def __init__(self, venue: VenueMarket, grid: TickGrid, symbol: str = SYMBOL,
                 streams: list[str] | None = None, **client_kwargs: Any) -> None:
        self.venue = venue
        self.grid = grid
        self.symbol = symbol
        url = combined_stream_url(venue.ws_url, streams or venue.stream_names(symbol))
        client_kwargs.setdefault("backoff_initial_s", 0.05)
        client_kwargs.setdefault("backoff_max_s", 0.5)
        client_kwargs.setdefault("rng", random.Random(1))
        self.client = BinanceStreamClient(url, grids={symbol: grid}, **client_kwargs)
        self.sync = BookSync(symbol)
        self.trades = 0
        self.tickers = 0
        self.ticker_checks = 0
        self.snapshot_fetches = 0
        self.messages = 0
        self._fetch: asyncio.Task | None = None
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.client.run(self.on_message, self.stop))

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5.0)
        if self._fetch is not None:
            self._fetch.cancel()

    def on_message(self, msg: DepthDiff | Trade | BookTicker) -> None:
        self.messages += 1
        match msg:
            case DepthDiff():
                self.sync.on_diff(msg.first_id, msg.final_id, msg.prev_final_id, msg.bids, msg.asks)
            case Trade():
                self.trades += 1
            case BookTicker():
                self.tickers += 1
                book = self.sync.book
                if self.sync.is_synced and self.sync.last_id == msg.update_id:
                    self.ticker_checks += 1
                    assert book.best_bid() == (msg.bid_px_tick, msg.bid_qty_lot)
                    assert book.best_ask() == (msg.ask_px_tick, msg.ask_qty_lot)
            case _:
                raise AssertionError(f"unexpected message {msg!r}")
        if self.sync.needs_snapshot and self.sync.buffered and self._fetch is None:
            self._fetch = asyncio.create_task(self._resync())

    async def _resync(self) -> None:
        try:
            self.snapshot_fetches += 1
            snapshot = await fetch_depth(self.venue.http_url, self.symbol, 5000, self.grid, timeout_s=5.0)
            self.sync.on_snapshot(snapshot.last_id, snapshot.bids, snapshot.asks)
        finally:
            self._fetch = None

    def top_text(self, depth: int) -> dict[str, list[list[str]]]:
        book = self.sync.book
        grid = self.grid
        return {
            name: [[format_price(grid, px), format_qty(grid, qty)] for px, qty in book.levels(side, depth)]
            for name, side in (("bids", BID), ("asks", ASK))
        }

    def matches_venue(self) -> bool:
        """True when, at this instant, the book has the venue's last id; then the tops must agree."""
        venue_last = self.venue.last_update_id(self.symbol)
        if not self.sync.is_synced or self.sync.last_id != venue_last:
            return False
        venue_top = self.venue.book_top(self.symbol, DEPTH)
        assert self.top_text(DEPTH) == {"bids": venue_top["bids"], "asks": venue_top["asks"]}
        assert len(venue_top["bids"]) == DEPTH and len(venue_top["asks"]) == DEPTH
        return True


async def poll(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    return await wait_until_async(condition, timeout_s, what, interval_s=0.002)


async def sim_session(faults: VenueFaults, until: Callable[[FeedUnderTest], bool], *,
                      venue_kwargs: dict | None = None, **client_kwargs: Any) -> FeedUnderTest:
    """Run the sim venue (4x speed: ~40 diffs/s) with `faults` and a feed until `until(feed)`,
    then until the book equals the venue's book."""
    venue = VenueMarket(speed=4.0, faults=faults, **(venue_kwargs or {}))
    await venue.start()
    feed = FeedUnderTest(venue, SIM_GRID, **client_kwargs)
    try:
        feed.start()
        await poll(lambda: until(feed), 15.0, "fault observed")
        await poll(feed.matches_venue, 8.0, "book equals the venue's book")
        assert feed.sync.book.is_crossed() is False
        assert feed.trades > 0 and feed.tickers > 0
    finally:
        await feed.close()
        await venue.stop()
    return feed


def test_venue_feed_no_faults_book_equals_venue_and_pings_answered() -> None:
    async def body() -> FeedUnderTest:
        return await sim_session(
            VenueFaults(), lambda f: f.sync.updates >= 30 and f.venue.counts["pongs"] >= 2,
            venue_kwargs={"ping_interval_s": 0.1, "pong_timeout_s": 1.0},
        )

    feed = run_async(body, TEST_TIMEOUT_S)
    assert feed.sync.gaps == 0
    assert feed.sync.resyncs == 0
    assert feed.client.counts["reconnects"] == 0
    assert feed.client.counts["pongs_sent"] >= 2
    assert feed.venue.counts["pong_timeouts"] == 0
    assert feed.ticker_checks > 10


def test_venue_feed_drop_diffs_gap_counted_and_resynced() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(drop_diffs=3, fault_after_diffs=10), lambda f: f.sync.snapshots >= 2), TEST_TIMEOUT_S)
    assert feed.venue.counts["diffs_dropped"] == 3
    assert feed.sync.gaps == 1
    assert feed.sync.resyncs == 1
    assert feed.snapshot_fetches == 2


def test_venue_feed_duplicate_frames_dropped_by_update_id() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(duplicate_every=5), lambda f: f.client.counts["drop_duplicate"] >= 3), TEST_TIMEOUT_S)
    assert feed.venue.counts["diffs_duplicated"] >= 3
    assert feed.sync.gaps == 0


def test_venue_feed_reordered_diffs_gap_counted_and_resynced() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(reorder_every=15), lambda f: f.sync.gaps >= 2 and f.sync.snapshots >= 3), TEST_TIMEOUT_S)
    assert feed.venue.counts["diffs_reordered"] >= 2
    assert feed.sync.resyncs >= 2


def test_venue_feed_malformed_frames_dropped_with_reason() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(malformed_every=7),
        lambda f: f.client.counts["drop_decode_error"] >= 3 and f.client.counts["drop_off_grid"] >= 3), TEST_TIMEOUT_S)
    counts = feed.client.counts
    assert feed.venue.counts["malformed_sent"] >= 6
    assert counts["reconnects"] == 0
    assert feed.sync.gaps == 0
    assert "BTCUSDT" in feed.client.last_drop or counts["drop_decode_error"]


def test_venue_feed_silent_stream_counted_reconnect() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(stall_s=1.5, fault_after_diffs=10),
        lambda f: f.client.counts["reconnects_silent"] >= 1 and f.sync.snapshots >= 2,
        silent_s=0.4), TEST_TIMEOUT_S)
    assert feed.venue.counts["stalls"] == 1
    assert feed.client.counts["reconnects"] >= 1


def test_venue_feed_skipped_pongs_detected_and_reconnected() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(skip_pongs=True),
        lambda f: f.client.counts["reconnects_pong_timeout"] >= 1 and f.sync.updates >= 20,
        ping_interval_s=0.2, pong_timeout_s=0.3), TEST_TIMEOUT_S)
    assert feed.venue.counts["pongs_skipped"] >= 1


def test_venue_feed_disconnect_every_k_reconnects_with_backoff() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(disconnect_every_s=0.7),
        lambda f: f.client.counts["reconnects"] >= 3 and f.sync.snapshots >= 2), TEST_TIMEOUT_S)
    client = feed.client
    assert client.counts["connections"] >= 3
    assert feed.venue.counts["disconnects_injected"] >= 3
    assert len(client.backoff_waits_s) >= 3
    assert all(0.0 <= wait <= 0.5 for wait in client.backoff_waits_s)


def test_venue_feed_rotation_overlaps_without_missing_a_diff() -> None:
    feed = run_async(lambda: sim_session(
        VenueFaults(), lambda f: f.client.counts["rotations"] >= 2 and f.sync.updates >= 40,
        rotate_after_s=0.6), TEST_TIMEOUT_S)
    assert feed.sync.gaps == 0
    assert feed.sync.resyncs == 0
    assert feed.client.counts["reconnects"] == 0


def test_venue_feed_unreachable_venue_backs_off_with_cap() -> None:
    async def body() -> BinanceStreamClient:
        client = BinanceStreamClient("ws://127.0.0.1:9/stream?streams=btcusdt@trade",
                                     backoff_initial_s=0.01, backoff_max_s=0.04, rng=random.Random(3))
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(lambda msg: None, stop))
        await poll(lambda: client.counts["connect_failures"] >= 6, 10.0, "connect failures")
        stop.set()
        await asyncio.wait_for(task, 5.0)
        return client

    client = run_async(body, TEST_TIMEOUT_S)
    assert all(0.0 <= wait <= 0.04 for wait in client.backoff_waits_s)


def test_binance_client_refuses_plain_ws_to_a_remote_host() -> None:
    with pytest.raises(ValueError, match="wss"):
        BinanceStreamClient("ws://stream.binance.com:9443/stream?streams=btcusdt@trade")


# ---- from a real capture ---------------------------------------------------------------------------


def short_capture(tmp_path: Path, lines: int = 4000) -> Path:
    if not SPOT_SET.exists():
        pytest.skip(f"{SPOT_SET} not present (../shared/data)")
    out = tmp_path / "short.jsonl.gz"
    with gzip.open(SPOT_SET, "rb") as src, gzip.open(out, "wb") as dst:
        dst.writelines(itertools.islice(src, lines))
    return out


@pytest.mark.parametrize("faults", [
    VenueFaults(),
    VenueFaults(drop_diffs=2, fault_after_diffs=100, duplicate_every=9, malformed_every=50),
], ids=["clean", "faults"])
def test_venue_feed_capture_replayed_book_equals_venue(tmp_path: Path, faults: VenueFaults) -> None:
    capture = short_capture(tmp_path)
    first_px = next(e.frame for e in read_capture([capture]) if type(e.frame).__name__ == "DepthSnapshot").bids[0]
    grid = infer_grid(SYMBOL, first_px[0], first_px[1])

    async def body() -> FeedUnderTest:
        venue = VenueMarket(feed=capture, speed=20.0, faults=faults)  # ~40 s of frames in ~2 s
        await venue.start()
        feed = FeedUnderTest(venue, grid, streams=["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker"])
        try:
            feed.start()
            await poll(venue.finished.is_set, 15.0, "capture sent")
            await poll(feed.matches_venue, 8.0, "book equals the venue's book")
        finally:
            await feed.close()
            await venue.stop()
        return feed

    feed = run_async(body, TEST_TIMEOUT_S)
    assert feed.sync.updates > 100
    assert feed.tickers > 10  # on spot a bookTicker mostly arrives before its diff: no check at arrival
    if faults.drop_diffs:
        assert feed.sync.gaps >= 1
        assert feed.client.counts["drop_duplicate"] >= 1


# ---- mm capture against the local venue ------------------------------------------------------------


def test_capture_against_venue_reads_back_and_rebuilds(tmp_path: Path) -> None:
    from processes.capture_writer import add_capture_arguments, run_capture_async

    out = tmp_path / "cap.jsonl.gz"

    async def body() -> tuple[int, VenueMarket]:
        venue = VenueMarket(speed=4.0)
        await venue.start()
        try:
            parser = argparse.ArgumentParser()
            add_capture_arguments(parser)
            args = parser.parse_args(["--venue", venue.ws_url, "--symbol", SYMBOL, "--out", str(out),
                                      "--duration", "2.0", "--rest", venue.http_url])
            return await run_capture_async(args), venue
        finally:
            await venue.stop()

    rc, venue = run_async(body, TEST_TIMEOUT_S)
    assert rc == 0
    stats = CaptureStats()
    events = list(read_capture([out], stats))
    assert stats.malformed_count == 0
    kinds = {type(e.frame).__name__ for e in events}
    assert {"DepthUpdate", "TradeFrame", "BookTickerFrame", "DepthSnapshot"} <= kinds
    books = build_books([out], depth=10)
    assert books[SYMBOL]["synced"] is True
    assert books[SYMBOL]["gaps"] == 0
    assert books[SYMBOL]["updates"] > 10
    assert len(books[SYMBOL]["bids"]) == 10
