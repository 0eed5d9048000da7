"""The book builder over every Binance capture in ../shared/data: golden end state, a step check
against the venue's own bookTicker, and resync after gaps we make ourselves (the captures have
none)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mm.book import ASK, BID
from mm.book_replay import BookReplay, build_books, format_table, replay_events
from mm.book_sync import Outcome
from mm.capture import (
    BookTickerFrame,
    CaptureEvent,
    CaptureStats,
    DepthSnapshot,
    DepthUpdate,
    read_capture,
)
from mm.ticks import format_price, format_qty
from tests.conftest import run_mm

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BINANCE_SETS = sorted(
    p.name.removesuffix(".jsonl.gz")
    for p in DATA.glob("binance*.jsonl.gz")
    if p.with_name(p.name.replace(".jsonl.gz", ".top10.json")).exists()
) if DATA.is_dir() else []
# bookTicker points whose `u` equals an applied diff's `u`, per shared/data/README.md
LONG_SETS = {
    "binance-spot-btcusdt-20240808": 1072,
    "binance-usdm-ethusdt-20240808": 551,
    "binance-spot-nexousdt-20240723": 8366,
    "binance-usdm-btcusdt-20240718": 625,
    "binance-usdm-btcusdt-20230404": 1565,
}

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"captured data not found at {DATA} (../shared/data)"
)

_events_cache: dict[str, tuple[list[CaptureEvent], CaptureStats]] = {}


def _path(name: str) -> Path:
    path = DATA / f"{name}.jsonl.gz"
    if not path.exists():
        pytest.skip(f"data set {path} is absent")
    return path


@pytest.fixture(scope="module")
def capture():
    """name -> (events, stats), each set read once per module (the long sets take ~0.5 s)."""

    def load(name: str) -> tuple[list[CaptureEvent], CaptureStats]:
        if name not in _events_cache:
            stats = CaptureStats()
            _events_cache[name] = (list(read_capture([_path(name)], stats)), stats)
        return _events_cache[name]

    yield load
    _events_cache.clear()


def _reference(name: str) -> dict:
    return json.loads((DATA / f"{name}.top10.json").read_text())


@pytest.mark.parametrize("name", BINANCE_SETS)
def test_book_captures_every_binance_set_equals_reference_top10(capture, name):
    events, stats = capture(name)

    result = replay_events(events).result(10)

    assert stats.malformed_count == 0, stats.malformed
    reference = _reference(name)
    assert sorted(result) == sorted(reference)
    for symbol, expected in reference.items():
        got = result[symbol]
        assert got["bids"] == expected["bids"], symbol
        assert got["asks"] == expected["asks"], symbol
        assert got["updates"] == expected["updates"], symbol
        assert got["gaps"] == expected["gaps"] == 0, symbol
        assert got["resyncs"] == 0 and got["crossed"] == 0 and got["synced"], symbol


def test_book_captures_build_books_from_file_matches_reference():
    name = "binance-spot-multi-20211012"
    stats = CaptureStats()

    result = build_books([_path(name)], 10, stats)

    for symbol, expected in _reference(name).items():
        assert result[symbol]["bids"] == expected["bids"]
        assert result[symbol]["asks"] == expected["asks"]
        assert result[symbol]["updates"] == expected["updates"]
    assert stats.skipped["kline_1m"] == 2
    json.dumps(result)  # the --json output
    table = format_table(result)
    assert "NKNUSDT" in table and expected["bids"][0][0] in table


@pytest.mark.parametrize("name", sorted(LONG_SETS))
def test_book_captures_long_set_steps_never_crossed_and_match_book_ticker(capture, name):
    events, _ = capture(name)
    tickers = {
        (e.symbol, e.frame.u): (e.frame.b, e.frame.B, e.frame.a, e.frame.A)
        for e in events
        if type(e.frame) is BookTickerFrame
    }
    replay = BookReplay()
    checked = 0
    mismatches = []

    for event in events:
        outcome = replay.on_event(event)
        if outcome is None:
            continue
        state = replay.books[event.symbol]
        book = state.sync.book
        assert not book.is_crossed(), f"{name}: crossed after {event.frame}"
        assert outcome in (Outcome.APPLIED, Outcome.STALE, Outcome.BUFFERED, Outcome.LOADED)
        if outcome is Outcome.APPLIED:
            expected = tickers.get((event.symbol, event.frame.u))
            if expected is not None:
                checked += 1
                (bid_px, bid_qty), (ask_px, ask_qty) = book.best_bid(), book.best_ask()
                grid = state.grid
                got = (
                    format_price(grid, bid_px),
                    format_qty(grid, bid_qty),
                    format_price(grid, ask_px),
                    format_qty(grid, ask_qty),
                )
                if got != expected:
                    mismatches.append((event.frame.u, got, expected))

    assert mismatches == []
    assert abs(checked - LONG_SETS[name]) <= LONG_SETS[name] // 50, checked


def test_book_captures_futures_snapshot_id_equal_to_buffered_u_applies_that_diff(capture):
    """AKROUSDT, KEEPUSDT, CTKUSDT: lastUpdateId == u of a buffered diff (futures rule U <= id <= u)."""
    events, _ = capture("binance-usdm-multi-20210722")
    snapshot_id = {e.symbol: e.frame.lastUpdateId for e in events if type(e.frame) is DepthSnapshot}

    replay = replay_events(events)

    for symbol in ("AKROUSDT", "KEEPUSDT", "CTKUSDT"):
        last_id = snapshot_id[symbol]
        diffs = [e.frame for e in events if type(e.frame) is DepthUpdate and e.symbol == symbol]
        first = next(i for i, d in enumerate(diffs) if d.u >= last_id)
        assert diffs[first].U <= last_id == diffs[first].u
        assert diffs[first + 1].pu == last_id
        # that diff and every later one applied; the ones before it dropped as stale
        sync = replay.books[symbol].sync
        assert (sync.updates, sync.stale, sync.gaps) == (len(diffs) - first, first, 0)


def test_book_captures_futures_ids_are_global_only_pu_links(capture):
    events, _ = capture("binance-usdm-multi-20210722")
    diffs = [e.frame for e in events if type(e.frame) is DepthUpdate and e.symbol == "SUSHIUSDT"]
    jumps = [b.U - a.u for a, b in zip(diffs, diffs[1:])]
    assert max(jumps) > 1000  # U continuity would report gaps everywhere
    assert all(b.pu == a.u for a, b in zip(diffs, diffs[1:]))
    assert replay_events(events).books["SUSHIUSDT"].sync.gaps == 0


def test_book_captures_presynced_file_applies_every_diff(capture):
    events, _ = capture("binance-spot-nexousdt-20240723")
    assert type(events[0].frame) is DepthSnapshot

    sync = replay_events(events).books["NEXOUSDT"].sync

    assert sync.stale == 0
    assert sync.updates == sum(type(e.frame) is DepthUpdate for e in events) == 46_292


# ---- gaps we make: drop, duplicate, reorder; resync from snapshots of a clean run -----------


def _full_book(replay: BookReplay, symbol: str) -> tuple[int, list, list]:
    state = replay.books[symbol]
    book = state.sync.book
    return (
        state.sync.last_id,
        book.levels(BID, 10**9),
        book.levels(ASK, 10**9),
    )


def _snapshot_event(replay: BookReplay, symbol: str, recv_ts_ns: int) -> CaptureEvent:
    """The clean run's book now, written as the venue's REST snapshot."""
    state = replay.books[symbol]
    grid = state.grid
    last_id, bids, asks = _full_book(replay, symbol)
    return CaptureEvent(
        recv_ts_ns,
        symbol,
        DepthSnapshot(
            last_id,
            [(format_price(grid, px), format_qty(grid, qty)) for px, qty in bids],
            [(format_price(grid, px), format_qty(grid, qty)) for px, qty in asks],
        ),
    )


def _corrupt(events: list[CaptureEvent], symbol: str, n_diffs: int):
    """First n_diffs diffs of `events` with: diff #300 dropped, #600 duplicated, #900/#901
    swapped; after a drop or swap, the snapshot a resync would fetch (the clean book 20 diffs
    later) is inserted. Returns (corrupted events, the clean replay at the end)."""
    clean = BookReplay()
    out: list[CaptureEvent] = []
    diff_index = -1
    held: CaptureEvent | None = None
    snapshot_at = set()
    for event in events:
        is_diff = type(event.frame) is DepthUpdate and event.symbol == symbol
        if is_diff:
            diff_index += 1
            if diff_index >= n_diffs:
                break
        clean.on_event(event)
        if not is_diff:
            out.append(event)
            continue
        if diff_index == 300:
            snapshot_at.add(320)
        elif diff_index == 600:
            out += [event, event]
        elif diff_index == 900:
            held = event
            snapshot_at.add(920)
        elif diff_index == 901:
            out += [event, held]
        else:
            out.append(event)
        if diff_index in snapshot_at:
            out.append(_snapshot_event(clean, symbol, event.recv_ts_ns))
    return out, clean


@pytest.mark.parametrize(
    "name,symbol,extra_stale",
    [
        # duplicate 1 + buffered until the re-snapshot: 20 after the drop, 21 after the swap
        ("binance-spot-btcusdt-20240808", "BTCUSDT", 1 + 20 + 21),
        # futures apply again the buffered diff whose u == lastUpdateId (strict drop rule)
        ("binance-usdm-ethusdt-20240808", "ETHUSDT", 1 + 19 + 20),
    ],
)
def test_book_captures_dropped_duplicated_reordered_diffs_resync_to_reference(
    capture, name, symbol, extra_stale
):
    events, _ = capture(name)
    corrupted, clean = _corrupt(events, symbol, 1500)
    replay = BookReplay()
    outcomes = []

    for event in corrupted:
        outcome = replay.on_event(event)
        outcomes.append(outcome)
        assert not replay.books[symbol].sync.book.is_crossed()

    sync = replay.books[symbol].sync
    assert outcomes.count(Outcome.GAP) == 2  # the drop and the swap
    assert sync.gaps == 2 and sync.resyncs == 2 and sync.crossed == 0
    assert sync.snapshots == 3
    assert sync.is_synced and not sync.needs_snapshot
    assert sync.stale == clean.books[symbol].sync.stale + extra_stale
    assert _full_book(replay, symbol) == _full_book(clean, symbol)


def test_book_captures_gap_lines_in_a_file_resync_with_injected_rest_snapshot(tmp_path):
    """Line level, through the capture reader: a dropped line, then the re-snapshot line."""
    name, symbol = "binance-spot-btcusdt-20240808", "BTCUSDT"
    with gzip.open(_path(name), "rt") as f:
        lines = [next(f) for _ in range(4000)]
    depth_lines = [i for i, line in enumerate(lines) if "@depth" in line]
    drop = depth_lines[200]
    resnap_after = depth_lines[220]
    # the clean book after the diff on line `resnap_after`
    clean = BookReplay()
    for event in read_capture_lines(lines[: resnap_after + 1], tmp_path):
        clean.on_event(event)
    snapshot = _snapshot_event(clean, symbol, 0).frame
    rest = json.dumps(
        {
            "rest": f"/api/v3/depth?symbol={symbol}&limit=1000",
            "data": {"lastUpdateId": snapshot.lastUpdateId, "bids": snapshot.bids, "asks": snapshot.asks},
        }
    )
    ts = lines[resnap_after].split(" ", 1)[0]
    corrupted = (
        lines[:drop]
        + lines[drop + 1 : resnap_after + 1]
        + [f"{ts} {rest}\n", "not a line\n"]
        + lines[resnap_after + 1 :]
    )
    path = tmp_path / "gap.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.writelines(corrupted)
    reference = BookReplay()
    for event in read_capture_lines(lines, tmp_path):
        reference.on_event(event)
    stats = CaptureStats()

    result = build_books([path], 10**6, stats)

    assert stats.malformed_count == 1 and stats.malformed[0].startswith(f"{path}:")
    got = result[symbol]
    assert got["gaps"] == 1 and got["resyncs"] == 1 and got["synced"]
    expected = reference.result(10**6)[symbol]
    assert got["bids"] == expected["bids"] and got["asks"] == expected["asks"]


def read_capture_lines(lines: list[str], tmp_path: Path):
    path = tmp_path / f"part-{len(lines)}.jsonl"
    path.write_text("".join(lines))
    return list(read_capture([path]))


def test_mm_book_names_each_malformed_line_on_stderr(tmp_path):
    snapshot = {"rest": "/api/v3/depth?symbol=XYZUSDT&limit=1000",
                "data": {"lastUpdateId": 10, "bids": [["1.00", "5"]], "asks": [["1.01", "7"]]}}
    diff = {"stream": "xyzusdt@depth@100ms",
            "data": {"e": "depthUpdate", "E": 1, "s": "XYZUSDT", "U": 11, "u": 11, "b": [["1.00", "6"]], "a": []}}
    path = tmp_path / "bad.jsonl"
    path.write_text(f"1 {json.dumps(snapshot)}\n2 {{broken\nnot-a-time {json.dumps(diff)}\n3 {json.dumps(diff)}\n")

    done = run_mm("book", str(path), "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["XYZUSDT"]["bids"] == [["1.00", "6"]]
    assert f"{path}:2: JSON is malformed" in done.stderr
    assert f"{path}:3: receive time b'not-a-time' is not an int" in done.stderr
    assert "2 malformed line(s) skipped" in done.stderr
