"""Our book stage beside the reference stack (orjson + a `sortedcontainers.SortedDict` book, as
bench/reference_stack.py builds it), in the same run, on slices of the long BTCUSDT spot and
ETHUSDT USD-M captures:

- decode: one depth-diff frame -> typed Structs (`FrameDecoder`) vs -> dicts (`orjson.loads`);
- decode_parse: the same plus every price and quantity to numbers: ours exact int ticks and
  lots (`parse_sides`), the reference `float()` of each text;
- apply_top20: per diff, our `BookSync.on_diff` + `L2Book.top(20)` into the int64 arrays the book
  process publishes to shared memory, vs the reference's sync check, SortedDict set/pop and a
  top-20 read. Inputs are parsed outside the timed call (ours int levels, as `DepthDiff`
  carries them; the reference floats).

Each timed call handles the whole slice; per-frame / per-diff figures are in `extra_info`
(time / slice length). Results are compared after timing: both books hold the same top 20.
Issue 4's target: our apply_top20 at most half the reference's, same run.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

orjson = pytest.importorskip("orjson", reason="reference stack needs orjson (dev extra)")
pytest.importorskip("sortedcontainers", reason="reference stack needs sortedcontainers (dev extra)")

from bench.reference_stack import TOP_N, Book  # noqa: E402
from mm.book_sync import NO_PREV_ID, BookSync, Outcome  # noqa: E402
from mm.capture import DepthSnapshot, DepthUpdate, FrameDecoder  # noqa: E402
from mm.ticks import infer_grid, parse_sides  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAPTURES = {
    "btcusdt-spot": "binance-spot-btcusdt-20240808.jsonl.gz",
    "ethusdt-usdm": "binance-usdm-ethusdt-20240808.jsonl.gz",
}
N_DIFFS = 2_000  # diffs per timed call, the first ones after the snapshot

pytestmark = [
    pytest.mark.benchmark(group="book-vs-ref"),
    pytest.mark.skipif(not DATA.is_dir(), reason=f"captured data not found at {DATA} (../shared/data)"),
]


class Slice:
    """One capture's snapshot and first N_DIFFS diffs after it, in every form the stages take."""

    def __init__(self, path: Path) -> None:
        decoder = FrameDecoder(kinds=("depth",))
        received: list[tuple[bytes, DepthUpdate]] = []  # depth diffs, as received
        snapshot = None
        with gzip.open(path, "rb") as lines:
            for line in lines:
                body = line.rstrip(b"\r\n").partition(b" ")[2]
                result = decoder.decode(body)
                if type(result) is str:
                    continue
                _, frame = result
                if type(frame) is DepthSnapshot:
                    snapshot = frame
                elif type(frame) is DepthUpdate:
                    received.append((body, frame))
                    if snapshot is not None and len(received) > 2 * N_DIFFS:
                        break
        assert snapshot is not None, path
        # diffs the snapshot does not cover (some were received before it): spot u > id, futures u >= id
        last_id = snapshot.lastUpdateId
        kept = [(b, d) for b, d in received if d.u > last_id or (d.pu >= 0 and d.u == last_id)]
        kept = kept[:N_DIFFS]
        bodies = [b for b, _ in kept]
        diffs = [d for _, d in kept]
        assert snapshot is not None and len(diffs) == N_DIFFS, path
        self.bodies = bodies
        self.grid = infer_grid(diffs[0].s, *snapshot.bids[0])
        self.price_scale = 10**self.grid.price_decimals
        self.qty_scale = 10**self.grid.qty_decimals
        self.snapshot_id = snapshot.lastUpdateId
        self.snapshot = parse_sides(self.grid, snapshot.bids, snapshot.asks)
        self.int_diffs = [
            (d.U, d.u, d.pu if d.pu >= 0 else NO_PREV_ID, *parse_sides(self.grid, d.b, d.a))
            for d in diffs
        ]
        self.float_snapshot = (
            [(float(p), float(q)) for p, q in snapshot.bids],
            [(float(p), float(q)) for p, q in snapshot.asks],
        )
        self.float_diffs = [
            (
                d.U,
                d.u,
                d.pu if d.pu >= 0 else None,
                [(float(p), float(q)) for p, q in d.b],
                [(float(p), float(q)) for p, q in d.a],
            )
            for d in diffs
        ]

    def ticks(self, levels: list[tuple[float, float]]) -> list[tuple[int, int]]:
        """Reference float levels -> (px_tick, qty_lot) on this capture's inferred grid."""
        return [(round(p * self.price_scale), round(q * self.qty_scale)) for p, q in levels]


_slices: dict[str, Slice] = {}


@pytest.fixture(scope="module", params=sorted(CAPTURES))
def capture(request) -> Slice:
    path = DATA / CAPTURES[request.param]
    if not path.exists():
        pytest.skip(f"capture {path} is absent")
    if request.param not in _slices:
        _slices[request.param] = Slice(path)
    return _slices[request.param]


def _per_item(benchmark, key: str, count: int) -> None:
    benchmark.extra_info["items"] = count
    if benchmark.stats is not None:
        benchmark.extra_info[key] = benchmark.stats.stats.mean / count * 1e6


def test_bench_decode_ours_msgspec_structs(benchmark, capture):
    decode = FrameDecoder(kinds=("depth",)).decode

    out = benchmark(lambda: [decode(body) for body in capture.bodies])

    assert all(frame.u == d[1] for (_, frame), d in zip(out, capture.int_diffs))
    _per_item(benchmark, "us_per_frame", N_DIFFS)


def test_bench_decode_reference_orjson_dicts(benchmark, capture):
    loads = orjson.loads

    out = benchmark(lambda: [loads(body) for body in capture.bodies])

    assert all(msg["data"]["u"] == d[1] for msg, d in zip(out, capture.int_diffs))
    _per_item(benchmark, "us_per_frame", N_DIFFS)


def test_bench_decode_parse_ours_int_ticks(benchmark, capture):
    decode = FrameDecoder(kinds=("depth",)).decode
    grid = capture.grid

    def decode_parse():
        out = []
        for body in capture.bodies:
            frame = decode(body)[1]
            out.append(parse_sides(grid, frame.b, frame.a))
        return out

    out = benchmark(decode_parse)

    assert out == [(b, a) for _, _, _, b, a in capture.int_diffs]
    _per_item(benchmark, "us_per_frame", N_DIFFS)


def test_bench_decode_parse_reference_orjson_floats(benchmark, capture):
    loads = orjson.loads

    def decode_parse():
        out = []
        for body in capture.bodies:
            data = loads(body)["data"]
            out.append(
                (
                    [(float(p), float(q)) for p, q in data["b"]],
                    [(float(p), float(q)) for p, q in data["a"]],
                )
            )
        return out

    out = benchmark(decode_parse)

    assert out == [(b, a) for _, _, _, b, a in capture.float_diffs]
    _per_item(benchmark, "us_per_frame", N_DIFFS)


def test_bench_apply_top20_ours_book_sync_to_arrays(benchmark, capture):
    arrays = [np.zeros(TOP_N, dtype=np.int64) for _ in range(4)]  # the shm slot's bid/ask px/qty
    snapshot_bids, snapshot_asks = capture.snapshot

    def setup():
        sync = BookSync(capture.grid.symbol)
        sync.on_snapshot(capture.snapshot_id, snapshot_bids, snapshot_asks)
        return (sync,), {}

    def apply_all(sync):
        on_diff, top = sync.on_diff, sync.book.top
        counts = (0, 0)
        for first_id, final_id, prev_id, bids, asks in capture.int_diffs:
            if on_diff(first_id, final_id, prev_id, bids, asks) is Outcome.APPLIED:
                counts = top(TOP_N, *arrays)
        return sync, counts

    sync, (n_bids, n_asks) = benchmark.pedantic(apply_all, setup=setup, rounds=30, iterations=1)

    reference = _reference_after_all(capture)
    assert sync.gaps == 0 and sync.updates == reference.updates
    bid_px, bid_qty, ask_px, ask_qty = (a.tolist() for a in arrays)
    assert list(zip(bid_px[:n_bids], bid_qty[:n_bids])) == capture.ticks(reference.top_bids)
    assert list(zip(ask_px[:n_asks], ask_qty[:n_asks])) == capture.ticks(reference.top_asks)
    _per_item(benchmark, "us_per_diff", N_DIFFS)


def test_bench_apply_top20_reference_sorteddict(benchmark, capture):
    def setup():
        book = Book()
        book.load_levels(capture.snapshot_id, *capture.float_snapshot)
        return (book,), {}

    def apply_all(book):
        on_levels = book.on_levels
        for diff in capture.float_diffs:
            on_levels(*diff)
        return book

    book = benchmark.pedantic(apply_all, setup=setup, rounds=30, iterations=1)

    ours = BookSync(capture.grid.symbol)
    ours.on_snapshot(capture.snapshot_id, *capture.snapshot)
    for diff in capture.int_diffs:
        ours.on_diff(*diff)
    assert book.gaps == 0 and book.updates == ours.updates
    assert capture.ticks(book.top_bids) == ours.book.levels(1, TOP_N)
    assert capture.ticks(book.top_asks) == ours.book.levels(-1, TOP_N)
    _per_item(benchmark, "us_per_diff", N_DIFFS)


def _reference_after_all(capture: Slice) -> Book:
    book = Book()
    book.load_levels(capture.snapshot_id, *capture.float_snapshot)
    for diff in capture.float_diffs:
        book.on_levels(*diff)
    return book
