"""What the book builder over captures refuses is named with the file and line that caused it:
a crossed snapshot, a NaN or negative price, the gap a dropped diff leaves (`problems` in
`mm book --json`, and one stderr line each)."""

from __future__ import annotations

import json
from pathlib import Path

from mm.book_replay import MAX_PROBLEMS, build_books
from mm.capture import CaptureStats
from tests.conftest import run_mm


def snapshot(last_id: int, bids: list, asks: list) -> str:
    return json.dumps({"rest": "/api/v3/depth?symbol=XYZUSDT&limit=1000",
                       "data": {"lastUpdateId": last_id, "bids": bids, "asks": asks}})


def diff(first: int, last: int, bids: list, asks: list) -> str:
    return json.dumps({"stream": "xyzusdt@depth@100ms",
                       "data": {"e": "depthUpdate", "E": 1, "s": "XYZUSDT", "U": first, "u": last,
                                "b": bids, "a": asks}})


def capture(tmp_path: Path, *bodies: str) -> Path:
    path = tmp_path / "feed.jsonl"
    path.write_text("".join(f"{n} {body}\n" for n, body in enumerate(bodies, start=1)))
    return path


def test_a_crossed_snapshot_is_named_by_file_line_and_prices(tmp_path):
    path = capture(tmp_path, snapshot(10, [["1.02", "5"]], [["1.01", "7"]]), diff(11, 11, [["1.00", "1"]], []))

    book = build_books([path], 5)["XYZUSDT"]

    assert not book["synced"] and book["crossed"] == 1
    assert book["problems"] == [f"{path}:1: book XYZUSDT: crossed in snapshot 10: bid 1.02 >= ask 1.01"]


def test_nan_and_negative_prices_and_the_gap_they_leave_are_named(tmp_path):
    path = capture(tmp_path,
                   snapshot(10, [["1.00", "5"]], [["NaN", "7"]]),
                   snapshot(20, [["1.00", "5"]], [["1.01", "7"]]),
                   diff(21, 21, [["-1.00", "6"]], []),
                   diff(22, 22, [["1.00", "6"]], []))
    stats = CaptureStats()

    book = build_books([path], 5, stats)["XYZUSDT"]

    assert book["invalid"] == 2 and book["gaps"] == 1 and not book["synced"]
    first, second, third = book["problems"]
    assert first.startswith(f"{path}:1: book XYZUSDT: snapshot dropped:") and "'NaN'" in first
    assert second.startswith(f"{path}:3: book XYZUSDT: diff dropped:") and "negative" in second
    assert third.startswith(f"{path}:4: book XYZUSDT: gap after update 20")
    assert stats.malformed_count == 0  # well-formed lines: refused by the book, not by the reader


def test_problems_are_bounded_per_symbol_and_counted_beyond(tmp_path):
    bodies = [snapshot(10, [["1.00", "5"]], [["1.01", "7"]])]
    bodies += [diff(11 + i, 11 + i, [["-1.00", "1"]], []) for i in range(MAX_PROBLEMS + 3)]
    book = build_books([capture(tmp_path, *bodies)], 5)["XYZUSDT"]
    assert book["invalid"] == MAX_PROBLEMS + 3 and len(book["problems"]) == MAX_PROBLEMS


def test_mm_book_prints_each_problem_on_stderr(tmp_path):
    path = capture(tmp_path, snapshot(10, [["1.02", "5"]], [["1.01", "7"]]))
    done = run_mm("book", str(path))
    assert done.returncode == 0, done.stderr
    assert f"mm book: {path}:1: book XYZUSDT: crossed in snapshot 10: bid 1.02 >= ask 1.01" in done.stderr
