"""What the book refuses of a tardis incremental_book_L2 CSV is named by the CSV's file and line, as a
JSON capture's refusals are (tests/unit/test_book_refusals.py): a crossed snapshot or update by the
first row of its message, the gap a NaN or negative row leaves by that row."""

from __future__ import annotations

from pathlib import Path

from mm.book_replay import build_books
from mm.capture import CaptureStats
from mm.tardis_csv import HEADERS
from tests.conftest import run_mm

L2_HEADER = ",".join(HEADERS["incremental_book_L2"])


def l2_csv(tmp_path: Path, rows: str) -> Path:
    """Line 1 is the header: the first row is line 2."""
    path = tmp_path / "book.csv"
    path.write_text(f"{L2_HEADER}\n{rows}")
    return path


def test_csv_crossed_snapshot_is_named_by_its_first_row(tmp_path):
    path = l2_csv(tmp_path, ("binance,XYZUSDT,1000,1100,true,bid,1.02,5\n"    # line 2: the snapshot starts
                             "binance,XYZUSDT,1000,1100,true,ask,1.01,7\n"
                             "binance,XYZUSDT,2000,2100,false,bid,1.00,1\n"))

    book = build_books([path], 5)["XYZUSDT"]

    assert not book["synced"] and book["crossed"] == 1
    assert book["problems"] == [f"{path}:2: book XYZUSDT: crossed in snapshot 1: bid 1.02 >= ask 1.01"]


def test_csv_crossed_update_is_named_by_the_first_row_of_its_message(tmp_path):
    path = l2_csv(tmp_path, ("binance,XYZUSDT,1000,1100,true,bid,1.00,5\n"
                             "binance,XYZUSDT,1000,1100,true,ask,1.02,7\n"
                             "binance,XYZUSDT,2000,2100,false,ask,1.03,1\n"   # line 4
                             "binance,XYZUSDT,3000,3100,false,bid,0.99,2\n"   # line 5: this message crosses
                             "binance,XYZUSDT,3000,3100,false,bid,1.02,2\n"))

    book = build_books([path], 5)["XYZUSDT"]

    assert book["crossed"] == 1
    assert book["problems"] == [f"{path}:5: book XYZUSDT: crossed after update 3: bid 1.02 >= ask 1.02"]


def test_csv_nan_and_negative_rows_name_the_gap_they_leave_by_their_line(tmp_path):
    path = l2_csv(tmp_path, ("binance,XYZUSDT,1000,1100,true,bid,1.00,5\n"
                             "binance,XYZUSDT,1000,1100,true,ask,1.01,7\n"
                             "binance,XYZUSDT,2000,2100,false,bid,1.00,6\n"
                             "binance,XYZUSDT,2000,2100,false,bid,NaN,1\n"    # line 5: the message's first bad row
                             "binance,XYZUSDT,2000,2100,false,ask,-3,1\n"
                             "binance,XYZUSDT,3000,3100,false,bid,1.00,4\n"
                             "binance,XYZUSDT,4000,4100,true,bid,1.00,5\n"    # a new book
                             "binance,XYZUSDT,4000,4100,true,ask,1.01,7\n"
                             "binance,XYZUSDT,5000,5100,false,ask,-1.01,7\n"  # line 10
                             "binance,XYZUSDT,5000,5100,false,ask,1.02,7\n"))
    stats = CaptureStats()

    book = build_books([path], 5, stats)["XYZUSDT"]

    assert stats.malformed == [f"{path}:5: price 'NaN' is not a finite decimal number",
                               f"{path}:6: price '-3' is negative", f"{path}:10: price '-1.01' is negative"]
    assert book["gaps"] == 2 and not book["synced"]
    first, second = book["problems"]
    assert first.startswith(f"{path}:5: book XYZUSDT: gap after update 1: ")
    assert second.startswith(f"{path}:10: book XYZUSDT: gap after update 5: ")


def test_mm_book_prints_a_csv_refusal_with_its_line(tmp_path):
    path = l2_csv(tmp_path, ("binance,XYZUSDT,1000,1100,true,bid,1.02,5\n"
                             "binance,XYZUSDT,1000,1100,true,ask,1.01,7\n"))

    done = run_mm("book", str(path))

    assert done.returncode == 0, done.stderr
    assert f"mm book: {path}:2: book XYZUSDT: crossed in snapshot 1: bid 1.02 >= ask 1.01" in done.stderr
