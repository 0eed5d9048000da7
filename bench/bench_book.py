"""Book hot paths on a slice of the BTCUSDT spot capture: venue frame -> Structs, diff text ->
int levels, book apply + top-20 read per diff (bare L2Book and through BookSync), sync classify.

Each timed call handles a whole slice; per-frame / per-diff figures are in `extra_info` and are
the printed time divided by the slice length (N_* below)."""

from __future__ import annotations

import gzip
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from mm.book import L2Book
from mm.book_sync import NO_PREV_ID, BookSync, Outcome, Sync, classify
from mm.capture import DepthSnapshot, DepthUpdate, FrameDecoder
from mm.ticks import infer_grid, parse_levels

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAPTURE = DATA / "binance-spot-btcusdt-20240808.jsonl.gz"
N_LINES = 5_000  # capture lines decoded per call (depth, bookTicker, trade as they come)
N_DIFFS = 1_000  # diffs applied per call
TOP_N = 20

pytestmark = [
    pytest.mark.benchmark(group="book"),
    pytest.mark.skipif(
        not CAPTURE.exists(), reason=f"capture {CAPTURE} not found (../shared/data)"
    ),
]


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    with gzip.open(CAPTURE, "rb") as f:
        return [line.rstrip(b"\n").partition(b" ")[2] for line in islice(f, 60_000)]


@pytest.fixture(scope="module")
def prepared(bodies):
    """(grid, snapshot (last_id, bids, asks), text diffs, int diffs) as the book process sees them."""
    decoder = FrameDecoder()
    frames = [frame for _, frame in map(decoder.decode, bodies)]
    snapshot = next(f for f in frames if type(f) is DepthSnapshot)
    diffs = [f for f in frames if type(f) is DepthUpdate and f.u > snapshot.lastUpdateId]
    diffs = diffs[:N_DIFFS]
    assert len(diffs) == N_DIFFS
    grid = infer_grid("BTCUSDT", *snapshot.bids[0])
    snap = (
        snapshot.lastUpdateId,
        parse_levels(grid, snapshot.bids),
        parse_levels(grid, snapshot.asks),
    )
    int_diffs = [
        (d.U, d.u, NO_PREV_ID, parse_levels(grid, d.b), parse_levels(grid, d.a)) for d in diffs
    ]
    return grid, snap, diffs, int_diffs


def test_bench_book_decode_frames(benchmark, bodies):
    sample = bodies[:N_LINES]
    decoder = FrameDecoder()

    def decode_all():
        decode = decoder.decode
        return [decode(body) for body in sample]

    out = benchmark(decode_all)

    assert len(out) == N_LINES and all(type(x) is tuple for x in out)
    benchmark.extra_info["frames"] = N_LINES
    if benchmark.stats is not None:
        benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.mean / N_LINES * 1e6


def test_bench_book_parse_diff_levels(benchmark, prepared):
    grid, _, diffs, int_diffs = prepared

    def parse_all():
        return [(parse_levels(grid, d.b), parse_levels(grid, d.a)) for d in diffs]

    out = benchmark(parse_all)

    assert out == [(b, a) for _, _, _, b, a in int_diffs]
    benchmark.extra_info["levels_per_diff"] = sum(len(d.b) + len(d.a) for d in diffs) / N_DIFFS
    if benchmark.stats is not None:
        benchmark.extra_info["us_per_diff"] = benchmark.stats.stats.mean / N_DIFFS * 1e6


def _arrays():
    return [np.zeros(TOP_N, dtype=np.int64) for _ in range(4)]


def test_bench_book_apply_and_top20(benchmark, prepared):
    _, (_, snap_bids, snap_asks), _, int_diffs = prepared
    arrays = _arrays()

    def setup():
        book = L2Book("BTCUSDT")
        book.load_snapshot(snap_bids, snap_asks)
        return (book,), {}

    def apply_all(book):
        apply, top = book.apply, book.top
        for _, _, _, bids, asks in int_diffs:
            apply(bids, asks)
            top(TOP_N, *arrays)
        return book

    book = benchmark.pedantic(apply_all, setup=setup, rounds=30, iterations=1)

    assert not book.is_crossed()
    assert (arrays[0][0], arrays[2][0]) == (book.best_bid()[0], book.best_ask()[0])
    if benchmark.stats is not None:
        benchmark.extra_info["us_per_diff"] = benchmark.stats.stats.mean / N_DIFFS * 1e6


def test_bench_book_sync_on_diff_and_top20(benchmark, prepared):
    _, (last_id, snap_bids, snap_asks), _, int_diffs = prepared
    arrays = _arrays()

    def setup():
        sync = BookSync("BTCUSDT")
        sync.on_snapshot(last_id, snap_bids, snap_asks)
        return (sync,), {}

    def sync_all(sync):
        on_diff, top = sync.on_diff, sync.book.top
        outcomes = []
        for first_id, final_id, prev_final_id, bids, asks in int_diffs:
            outcomes.append(on_diff(first_id, final_id, prev_final_id, bids, asks))
            top(TOP_N, *arrays)
        return sync, outcomes

    sync, outcomes = benchmark.pedantic(sync_all, setup=setup, rounds=30, iterations=1)

    assert outcomes.count(Outcome.APPLIED) == N_DIFFS and sync.gaps == 0
    if benchmark.stats is not None:
        benchmark.extra_info["us_per_diff"] = benchmark.stats.stats.mean / N_DIFFS * 1e6


def test_bench_book_sync_classify(benchmark, prepared):
    _, (last_id, _, _), _, int_diffs = prepared
    ids = []
    previous = last_id
    for first_id, final_id, *_ in int_diffs:
        ids.append((previous, first_id, final_id))
        previous = final_id

    def classify_all():
        return [classify(last, first, final) for last, first, final in ids]

    out = benchmark(classify_all)

    assert all(v is Sync.APPLY for v in out)
    if benchmark.stats is not None:
        benchmark.extra_info["ns_per_call"] = benchmark.stats.stats.mean / len(ids) * 1e9
