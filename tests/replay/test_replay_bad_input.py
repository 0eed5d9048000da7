"""`mm replay` over a capture with bad input names the file and line and what was wrong.

A first snapshot the grid cannot be read from (NaN, negative price) is passed over as the book drops
it; with no other snapshot the replay refuses (exit 1, one line). A crossed snapshot or a gap in the
update ids goes on as the book does (it resyncs), named by `file:line` (ReplaySource.problems, a
warning each; a read from the decoded-capture cache says them once, in one line). A gzip cut short is read up to the cut."""

from __future__ import annotations

import gzip
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from mm.book_sync import BookSync
from mm.config import load_config
from mm.errors import OffGridError
from mm.tardis_csv import HEADERS
from processes.launcher import replay_config
from processes.replay_source import replay_source
from tests.conftest import run_mm
from tests.unit.test_book_refusals import diff, snapshot


def trade(trade_id: int) -> str:
    return json.dumps({"stream": "xyzusdt@trade", "data": {"e": "trade", "E": 1, "s": "XYZUSDT", "t": trade_id,
                                                             "p": "1.00", "q": "1", "T": 1, "m": True}})


def capture(tmp_path: Path, *bodies: str, name: str = "feed.jsonl") -> Path:
    """Line n holds the n-th body."""
    path = tmp_path / name
    text = "".join(f"{n}000000 {body}\n" for n, body in enumerate(bodies, start=1))
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    return path


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def source_of(path: Path):
    return replay_source(replay_config(load_config(), [path], symbol=None, speed=0.0))


def book_of(messages: list) -> BookSync:
    """The book stage's sync procedure over the replay's messages."""
    sync = BookSync("XYZUSDT")
    for msg in messages:
        kind = type(msg).__name__
        if kind == "BookSnapshot":
            sync.on_snapshot(msg.last_id, msg.bids, msg.asks)
        elif kind == "DepthDiff":
            sync.on_diff(msg.first_id, msg.final_id, msg.prev_final_id, msg.bids, msg.asks)
    return sync


GOOD = snapshot(20, [["1.00", "5"]], [["1.01", "7"]])


@pytest.mark.parametrize("bad,why", [
    (snapshot(10, [["1.00", "5"]], [["NaN", "7"]]), "price 'NaN' is not a finite decimal number"),
    (snapshot(10, [["-1.00", "5"]], [["1.01", "7"]]), "price '-1.00' is negative"),
])
def test_replay_first_snapshot_unreadable_and_alone_refuses_naming_file_line(tmp_path, bad, why):
    path = capture(tmp_path, bad, diff(11, 11, [["1.00", "1"]], []))
    with pytest.raises(OffGridError) as refused:
        source_of(path)
    assert str(refused.value) == (f"{path}:1: depth snapshot 10 refused: XYZUSDT: {why}; "
                                  f"no other depth snapshot in {path}: cannot build a book")


def test_replay_first_snapshot_unreadable_is_dropped_and_named_then_the_next_builds_the_book(tmp_path):
    path = capture(tmp_path, snapshot(10, [["1.00", "5"]], [["NaN", "7"]]), GOOD, diff(21, 21, [["1.00", "6"]], []),
                   trade(1))
    source = source_of(path)
    messages = list(source.messages())
    assert source.grid.tick_size == Decimal("0.01")  # the grid of line 2's snapshot
    assert source.dropped == {"off_grid": 1}
    assert source.problems == [f"{path}:1: frame dropped (off_grid): XYZUSDT: price 'NaN' is not a finite "
                               f"decimal number"]
    assert book_of(messages).updates == 1


def test_replay_malformed_first_snapshot_alone_refuses_naming_the_line(tmp_path):
    path = capture(tmp_path, GOOD[:60], diff(21, 21, [["1.00", "6"]], []))
    with pytest.raises(OffGridError, match=rf"^{path}: no depth snapshot \(2 lines, 1 malformed; the first: "
                                           rf"{path}:1: .*\): cannot build a book$"):
        source_of(path)


def test_replay_crossed_first_snapshot_goes_on_named_by_file_line_also_from_the_cache(tmp_path, caplog):
    path = capture(tmp_path, snapshot(10, [["1.02", "5"]], [["1.01", "7"]]), diff(11, 11, [["1.00", "1"]], []),
                   trade(1))
    named = f"{path}:1: book XYZUSDT: crossed in snapshot 10: bid 1.02 >= ask 1.01"
    first = source_of(path)
    with caplog.at_level(logging.WARNING, logger="processes.replay_source"):
        messages = list(first.messages())
    assert first.problems == [named] and f"replay: {named}" in caplog.messages
    assert book_of(messages).crossed == 1  # what the book stage counts, as named
    caplog.clear()
    again = source_of(path)
    with caplog.at_level(logging.WARNING, logger="processes.replay_source"):
        assert list(again.messages()) == messages
    assert again.from_cache and again.problems == [named]
    assert [m for m in caplog.messages if named in m] == [
        f"replay: 1 refusal(s) of this capture, found when it was decoded (from the cache; the report's "
        f"feed.problems lists them), the first: {named}"]


@pytest.mark.parametrize("name", ["feed.jsonl", "feed.jsonl.gz"])
def test_replay_sequence_gap_is_named_by_file_line(tmp_path, name):
    path = capture(tmp_path, GOOD, diff(21, 21, [["1.00", "6"]], []), diff(25, 25, [["1.00", "2"]], []),
                   diff(26, 26, [["1.00", "3"]], []), trade(1), name=name)
    source = source_of(path)
    messages = list(source.messages())
    assert source.problems == [f"{path}:3: book XYZUSDT: gap after update 21: next diff U=25 u=25 pu=-1 (spot rule)"]
    assert book_of(messages).gaps == 1


def test_replay_of_a_tardis_csv_names_a_crossed_snapshot_by_its_row(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text(",".join(HEADERS["incremental_book_L2"]) + "\n"
                    "binance,XYZUSDT,1000,1100,true,bid,1.02,5\n"
                    "binance,XYZUSDT,1000,1100,true,ask,1.01,7\n"
                    "binance,XYZUSDT,2000,2100,false,bid,1.00,1\n")
    source = source_of(path)
    list(source.messages())
    assert source.problems == [f"{path}:2: book XYZUSDT: crossed in snapshot 1: bid 1.02 >= ask 1.01"]


def test_replay_truncated_gzip_goes_on_naming_the_file_and_the_cut_line(tmp_path):
    full = capture(tmp_path, GOOD, *(diff(i, i, [["1.00", str(i)]], []) for i in range(21, 3000)), trade(1),
                   name="full.jsonl.gz")
    path = tmp_path / "cut.jsonl.gz"
    body = full.read_bytes()
    path.write_bytes(body[: len(body) // 2])
    source = source_of(path)
    messages = list(source.messages())
    stats = source.capture_stats
    assert stats.damaged and stats.damaged[0].startswith(f"{path}: compressed stream damaged after ")
    assert stats.malformed_count == 1 and stats.malformed[0].startswith(f"{path}:{stats.lines}: ")
    assert book_of(messages).updates == len(messages) - 1 > 100 and source.problems == []


def test_replay_gzip_cut_before_any_line_refuses_naming_the_damage(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(capture(tmp_path, GOOD, name="full.jsonl.gz").read_bytes()[:10])  # the gzip header only
    with pytest.raises(OffGridError, match=rf"^{path}: no depth snapshot \(0 lines; {path}: compressed stream "
                                           rf"damaged after 0 bytes of text \(.*\)\): cannot build a book$"):
        source_of(path)


def test_mm_replay_refuses_an_unreadable_only_snapshot_in_one_line(tmp_path):
    path = capture(tmp_path, snapshot(10, [["1.00", "5"]], [["NaN", "7"]]), diff(11, 11, [["1.00", "1"]], []))
    done = run_mm("replay", "--quiet", str(path))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"mm replay: {path}:1: depth snapshot 10 refused: XYZUSDT: price 'NaN' is not a finite decimal number; "
        f"no other depth snapshot in {path}: cannot build a book"]


def test_mm_replay_of_a_crossed_snapshot_and_a_gap_goes_on_and_names_them(tmp_path):
    """~1.5 s: a whole in-process replay, its report and plots."""
    path = capture(tmp_path, snapshot(10, [["1.02", "5"]], [["1.01", "7"]]), GOOD,
                   diff(21, 21, [["1.00", "6"]], []), diff(25, 25, [["1.00", "2"]], []), trade(1))
    done = run_mm("replay", "--quiet", "--report", str(tmp_path / "report.json"), str(path), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"replay: {path}:1: book XYZUSDT: crossed in snapshot 10: bid 1.02 >= ask 1.01" in done.stderr
    assert f"replay: {path}:4: book XYZUSDT: gap after update 21: next diff U=25" in done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["book"]["crossed"], report["book"]["gaps"]) == (1, 1)
    assert report["feed"]["problems"] == [
        f"{path}:1: book XYZUSDT: crossed in snapshot 10: bid 1.02 >= ask 1.01",
        f"{path}:4: book XYZUSDT: gap after update 21: next diff U=25 u=25 pu=-1 (spot rule)"]
    assert report["feed"]["problem_count"] == 2


def test_mm_replay_processes_engine_names_each_problem_once(tmp_path):
    """~4 s: the parent decodes the capture, the feed process reads the cache: one line each, not two."""
    path = capture(tmp_path, snapshot(10, [["1.02", "5"]], [["1.01", "7"]]), GOOD, trade(1))
    done = run_mm("replay", "--quiet", "--engine", "processes", "--report", str(tmp_path / "report.json"),
                  str(path), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    named = f"{path}:1: book XYZUSDT: crossed in snapshot 10: bid 1.02 >= ask 1.01"
    assert done.stderr.count(f"replay: {named}") == 1, done.stderr[-3000:]  # decoded: named in full once
    assert done.stderr.count(f"the first: {named}") <= 1  # the feed process from the cache: one line at most
    assert json.loads((tmp_path / "report.json").read_text())["feed"]["problems"] == [named]
