"""`mm book` over Hyperliquid captures: the book is the newest push that passed the frame checks,
a refused or stale push is counted and leaves the previous book, and a malformed line is named on
stderr with its file:line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mm.capture import CaptureStats
from mm.venue_books import HYPERLIQUID, build_checked_books, venue_of_file
from tests.conftest import DATA_DIR, run_mm

CAPTURE = DATA_DIR / "hyperliquid-btc-20250126.jsonl.gz"


def _push(time_ms: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]], coin: str = "ETH") -> str:
    levels = [[{"n": 1, "px": px, "sz": sz} for px, sz in side] for side in (bids, asks)]
    return json.dumps({"channel": "l2Book", "data": {"coin": coin, "levels": levels, "time": time_ms}})


def _write(path: Path, bodies: list[str]) -> Path:
    path.write_text("".join(f"{1_700_000_000_000_000_000 + i} {body}\n" for i, body in enumerate(bodies)))
    return path


@pytest.mark.skipif(not CAPTURE.exists(), reason=f"capture {CAPTURE} not found (../shared/data absent)")
def test_capture_book_is_the_last_push_and_trades_are_counted():
    last_push, trades = None, 0
    with gzip.open(CAPTURE, "rb") as f:
        for line in f:
            frame = json.loads(line.partition(b" ")[2])
            if frame["channel"] == "l2Book":
                last_push = frame["data"]
            elif frame["channel"] == "trades":
                trades += len(frame["data"])
    assert venue_of_file(CAPTURE) == HYPERLIQUID
    stats = CaptureStats()
    book = build_checked_books([CAPTURE], depth=20, stats=stats)["BTC"]
    bids, asks = ([[level["px"], level["sz"]] for level in side] for side in last_push["levels"])
    assert (book["bids"], book["asks"]) == (bids, asks)
    assert (book["updates"], book["trades"], book["invalid"], book["synced"]) == (46, trades, 0, True)
    assert book["time_ms"] == last_push["time"]
    assert stats.malformed_count == 0


def test_refused_and_stale_pushes_keep_the_previous_book(tmp_path):
    path = _write(tmp_path / "hl.jsonl", [
        _push(5, [("2500.1", "1.5"), ("2500.0", "2")], [("2500.2", "0.5")]),
        _push(6, [("2500.3", "1")], [("2500.2", "0.5")]),  # crossed
        _push(7, [("2500.0", "1"), ("2500.1", "1")], [("2500.2", "1")]),  # bids not best first
        _push(8, [("NaN", "1")], [("2500.2", "1")]),
        _push(9, [("2500.0", "-1")], [("2500.2", "1")]),
        _push(10, [("2500.0", "0")], [("2500.2", "1")]),
        _push(4, [("2400.0", "1")], [("2400.1", "1")]),  # older than the book shown
    ])
    book = build_checked_books([path], depth=5)["ETH"]
    assert book["bids"] == [["2500.1", "1.5"], ["2500.0", "2"]] and book["asks"] == [["2500.2", "0.5"]]
    assert book["updates"] == 1 and book["stale"] == 1 and book["crossed"] == 1
    assert book["refused"] == {"crossed": 1, "off_grid": 2, "unsorted": 1, "zero_size": 1}
    assert book["invalid"] == 5 and "NaN" not in book["last_error"]
    assert book["synced"] is False  # the newest valid-time push was refused: the venue's book is not shown


def test_a_valid_push_after_refusals_is_shown(tmp_path):
    path = _write(tmp_path / "hl.jsonl", [
        _push(5, [("2500.3", "1")], [("2500.2", "0.5")]),  # crossed
        _push(6, [("2500.1", "3")], [("2500.2", "0.5")]),
    ])
    book = build_checked_books([path], depth=5)["ETH"]
    assert (book["bids"], book["synced"], book["invalid"]) == ([["2500.1", "3"]], True, 1)


def test_mm_book_names_malformed_lines_on_stderr(tmp_path):
    path = tmp_path / "hl.jsonl"
    path.write_text(
        f"1 {_push(5, [('2500.1', '1')], [('2500.2', '1')])}\n"
        '2 {"channel":"l2Book","data":\n'
        f"x3 {_push(6, [('2500.0', '1')], [('2500.2', '1')])}\n"
    )
    done = run_mm("book", str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ETH"]["bids"] == [["2500.1", "1"]]
    assert f"{path}:2: " in done.stderr
    assert f"{path}:3: receive time b'x3' is not an int" in done.stderr
    assert "2 malformed line(s) skipped" in done.stderr
