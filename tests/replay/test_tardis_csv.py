"""tardis.dev normalized CSV (mm/tardis_csv.py): read into the capture's frames, so mm book, mm replay
and mm venue --feed read it; bad rows named by file:line; one from a real capture builds the same book."""

from __future__ import annotations

import gzip
import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest

from mm.book_replay import build_books
from mm.capture import CaptureStats, DepthSnapshot, DepthUpdate, FrameDecoder, TradeFrame, read_capture
from mm.config import load_config
from mm.errors import CaptureFormatError
from mm.fees import market_of_capture
from mm.tardis_csv import HEADERS, capture_lines, csv_kind, snapshot_header
from tests.conftest import DATA_DIR, run_mm

L2_HEADER = ",".join(HEADERS["incremental_book_L2"])
TRADES_HEADER = ",".join(HEADERS["trades"])
QUOTES_HEADER = ",".join(HEADERS["quotes"])
SPOT = DATA_DIR / "binance-spot-btcusdt-20240808.jsonl.gz"

L2_ROWS = """\
binance,BTCUSDT,1000,1100,false,bid,99.5,1
binance,BTCUSDT,2000,2100,true,bid,100,1.5
binance,BTCUSDT,2000,2100,true,bid,99.9,2
binance,BTCUSDT,2000,2100,true,ask,100.1,1
binance,BTCUSDT,2000,2100,true,ask,100.25,3
binance,BTCUSDT,3000,3100,false,bid,100,0
binance,BTCUSDT,3000,3100,false,ask,100.05,0.25
binance,BTCUSDT,4000,4100,false,bid,99.95,1e-7
"""
TRADE_ROWS = """\
binance,BTCUSDT,2500,2600,11,buy,100.1,0.5
binance,BTCUSDT,3500,3600,12,sell,99.9,0.1
"""


def write(path: Path, header: str, rows: str) -> Path:
    text = f"{header}\n{rows}"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_tardis_csv_kind_by_header_not_name(tmp_path: Path):
    odd_name = write(tmp_path / "trades.jsonl.gz", L2_HEADER, L2_ROWS)
    assert csv_kind(odd_name) == "incremental_book_L2"
    assert csv_kind(write(tmp_path / "q", QUOTES_HEADER, "")) == "quotes"
    assert csv_kind(write(tmp_path / "s", ",".join(snapshot_header(25)), "")) == "book_snapshot_25"
    capture = tmp_path / "c.jsonl"
    capture.write_text('1 {"stream":"btcusdt@trade","data":{}}\n')
    assert csv_kind(capture) is None
    other = write(tmp_path / "d.csv", "exchange,symbol,timestamp,local_timestamp,funding_rate", "")
    with pytest.raises(CaptureFormatError, match=r"d\.csv: a tardis CSV of columns .*funding_rate.*not a dataset"):
        csv_kind(other)


def test_tardis_liquidations_with_the_trades_columns_are_refused_by_name(tmp_path: Path):
    liquidations = write(tmp_path / "binance-futures_liquidations_2024-08-08_BTCUSDT.csv.gz", TRADES_HEADER,
                         TRADE_ROWS)
    with pytest.raises(CaptureFormatError, match=r"liquidations_2024-08-08_BTCUSDT\.csv\.gz: a tardis "
                                                 r"liquidations file .*not the trade tape"):
        csv_kind(liquidations)
    assert csv_kind(write(tmp_path / "binance-futures_trades_2024-08-08_BTCUSDT.csv", TRADES_HEADER,
                          TRADE_ROWS)) == "trades"


def test_tardis_l2_and_trades_merge_into_frames_by_local_timestamp(tmp_path: Path):
    book = write(tmp_path / "book.csv.gz", L2_HEADER, L2_ROWS)
    trades = write(tmp_path / "trades.csv", TRADES_HEADER, TRADE_ROWS)
    stats = CaptureStats()
    events = list(read_capture([book, trades], stats))
    assert [e.recv_ts_ns for e in events] == [1_100_000, 2_100_000, 2_600_000, 3_100_000, 3_600_000, 4_100_000]
    assert [type(e.frame) for e in events] == [DepthUpdate, DepthSnapshot, TradeFrame, DepthUpdate, TradeFrame,
                                               DepthUpdate]
    snapshot = events[1].frame
    # every value on the symbol's finest grid: 2 price decimals, 7 amount decimals (1e-7 expanded)
    assert snapshot.bids == [("100.00", "1.5000000"), ("99.90", "2.0000000")]
    assert snapshot.asks == [("100.10", "1.0000000"), ("100.25", "3.0000000")]
    assert events[0].frame.u <= snapshot.lastUpdateId  # the update before the snapshot is stale
    assert events[3].frame.U == snapshot.lastUpdateId + 1
    assert events[2].frame.t == 11 and events[2].frame.m is False and events[4].frame.m is True
    assert stats.malformed_count == 0
    result = build_books([book, trades], 5)["BTCUSDT"]
    assert result["bids"] == [["99.95", "0.0000001"], ["99.90", "2.0000000"]]
    assert result["asks"] == [["100.05", "0.2500000"], ["100.10", "1.0000000"], ["100.25", "3.0000000"]]
    assert (result["updates"], result["gaps"], result["stale"], result["synced"]) == (2, 0, 1, True)


def test_tardis_snapshot_after_updates_resets_the_book(tmp_path: Path):
    rows = L2_ROWS + ("binance,BTCUSDT,5000,5100,true,bid,90,1\n"
                      "binance,BTCUSDT,5000,5100,true,ask,91,1\n"
                      "binance,BTCUSDT,6000,6100,false,ask,91.5,2\n")
    result = build_books([write(tmp_path / "b.csv", L2_HEADER, rows)], 5)["BTCUSDT"]
    assert result["bids"] == [["90.00", "1.0000000"]]
    assert result["asks"] == [["91.00", "1.0000000"], ["91.50", "2.0000000"]]
    assert result["synced"] and result["gaps"] == 0


def test_tardis_bad_rows_are_named_by_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("mm.tardis_csv.PRESCAN_ROWS", 12)  # the grid from lines 2-13: 2 price decimals
    book = write(tmp_path / "book.csv", L2_HEADER, L2_ROWS + (
        "binance,BTCUSDT,5000,5100,false,bid,NaN,1\n"          # line 10
        "binance,BTCUSDT,5000,5200,false,bid,-5,1\n"           # line 11
        "binance,BTCUSDT,5000,5300,false,middle,99,1\n"        # line 12
        "binance,BTCUSDT,5000,5400,false,bid,99\n"             # line 13
        "binance,BTCUSDT,5000,5000,false,bid,99,1\n"           # line 14: before line 12's 5300
        "binance,BTCUSDT,5000,5500,maybe,bid,99,1\n"           # line 15
        "binance,BTCUSDT,5000,5600,false,bid,99.123,1\n"))     # line 16: off the 2-decimal grid
    trades = write(tmp_path / "trades.csv", TRADES_HEADER, TRADE_ROWS + "binance,BTCUSDT,3700,3700,13,sideways,99,1\n")
    stats = CaptureStats()
    list(read_capture([book, trades], stats))
    reasons = dict(m.split(": ", 1) for m in stats.malformed)
    assert reasons[f"{book}:10"] == "price 'NaN' is not a finite decimal number"
    assert reasons[f"{book}:11"] == "price '-5' is negative"
    assert reasons[f"{book}:12"] == "side 'middle' is not bid or ask"
    assert reasons[f"{book}:13"] == "7 columns, the incremental_book_L2 header has 8"
    assert reasons[f"{book}:14"] == "local_timestamp 5000 is before the previous row's 5300"
    assert reasons[f"{book}:15"] == "is_snapshot 'maybe' is not true or false"
    assert reasons[f"{book}:16"].startswith("price 99.123 has 3 decimals, more than the 2")
    assert reasons[f"{trades}:4"] == "side 'sideways' is not buy, sell or unknown"
    assert stats.malformed_count == 8
    # a broken update is a gap: the book does not pretend to know the levels it missed
    result = build_books([book], 5)["BTCUSDT"]
    assert result["gaps"] >= 1 and result["synced"] is False
    done = run_mm("book", str(book))
    assert done.returncode == 0
    assert f"skipped {book}:10: price 'NaN'" in done.stderr and "6 malformed line(s) skipped" in done.stderr  # line 16 is on the grid of all its rows


@pytest.mark.parametrize("header,rows,why", [
    (L2_HEADER, "", "incremental_book_L2 CSV without one usable row"),
    (TRADES_HEADER, "binance,BTCUSDT,1,1,1,unknown,10,1\n", "trades CSV without one usable row"),
    (TRADES_HEADER, "binance,BTCUSDT,1,1,1,buy,NaN,1\n", "the first malformed: .*:2: price 'NaN'"),
])
def test_tardis_file_without_usable_rows_fails_naming_it(tmp_path: Path, header: str, rows: str, why: str):
    path = write(tmp_path / "x.csv", header, rows)
    with pytest.raises(CaptureFormatError, match=f"x\\.csv: .*{why}"):
        list(read_capture([path]))


def test_tardis_csv_with_a_capture_of_another_format_fails(tmp_path: Path):
    capture = tmp_path / "c.jsonl"
    capture.write_text('1 {"stream":"btcusdt@trade","data":{}}\n')
    with pytest.raises(CaptureFormatError, match="c.jsonl: no tardis CSV header"):
        list(read_capture([write(tmp_path / "b.csv", L2_HEADER, L2_ROWS), capture]))


def test_tardis_quotes_and_book_snapshots_build_a_top_of_book(tmp_path: Path):
    quotes = write(tmp_path / "q.csv", QUOTES_HEADER, "binance,ETHUSDT,1,10,2,101,100,3\n"
                                                       "binance,ETHUSDT,2,20,2,101,100.5,1\n"
                                                       "binance,ETHUSDT,3,30,,,100.5,1\n")
    result = build_books([quotes], 5)["ETHUSDT"]
    assert result["bids"] == [["100.5", "1"]] and result["asks"] == [] and result["synced"]
    header = ",".join(snapshot_header(5))
    levels = "101,1,100,2,102,1,99,1" + ",,,," * 3
    snaps = write(tmp_path / "s.csv.gz", header, f"binance,ETHUSDT,1,10,{levels}\n"
                                                 f"binance,ETHUSDT,2,20,{levels.replace('99,1', '98,4')}\n")
    result = build_books([snaps, quotes], 5)["ETHUSDT"]  # book_snapshot_5 builds the book, quotes are skipped
    assert result["bids"] == [["100.0", "2"], ["98.0", "4"]]
    assert result["asks"] == [["101.0", "1"], ["102.0", "1"]]
    assert (result["updates"], result["gaps"]) == (1, 0)


def test_tardis_csv_as_capture_lines_for_the_venue(tmp_path: Path):
    from processes.venue_market import VenueMarket

    book = write(tmp_path / "book.csv.gz", L2_HEADER, L2_ROWS)
    decoder = FrameDecoder()
    lines = list(capture_lines(book))
    frames = [decoder.decode(line.partition(b" ")[2]) for line in lines]
    assert [type(f[1]).__name__ for f in frames] == ["DepthUpdate", "DepthSnapshot", "DepthUpdate", "DepthUpdate"]
    assert lines[1].startswith(b'2100000 {"rest":"/api/v3/depth?symbol=BTCUSDT')
    venue = VenueMarket(feed=book)
    venue._load_capture_snapshots()  # what `mm venue --feed` does before it serves
    assert venue.book_top("BTCUSDT", 1)["bids"] == [["100.00", "1.5000000"]]
    assert market_of_capture(gzip.decompress(book.read_bytes())) == "binance_spot"
    assert market_of_capture(f"{L2_HEADER}\nbinance-futures,BTCUSDT,1,1,true,bid,1,1\n".encode()) == "binance_usdm"


def test_tardis_replay_source_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from processes.launcher import replay_config
    from processes.replay_source import replay_source

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    files = [write(tmp_path / "book.csv.gz", L2_HEADER, L2_ROWS), write(tmp_path / "t.csv", TRADES_HEADER, TRADE_ROWS)]
    config = replay_config(load_config(), files, symbol=None, speed=0.0)
    assert (config.instrument.symbol, config.instrument.tick_size, config.instrument.lot_size) == \
        ("BTCUSDT", "0.05", "0.0000001")  # the GCD of the prices seen, the finest amount decimal
    assert config.instrument.market == "binance_spot"
    first = list(replay_source(config).messages())
    second = replay_source(config)
    assert list(second.messages()) == first and second.from_cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache2"))
    assert list(replay_source(config).messages()) == first
    assert [type(m).__name__ for m in first] == ["DepthDiff", "BookSnapshot", "Trade", "DepthDiff", "Trade",
                                                 "DepthDiff"]


# ---- a real capture, as tardis would write it --------------------------------------------------


def _tardis_number(text: str) -> str:
    return repr(float(text)).removesuffix(".0")  # how tardis writes numbers: "61234.5", "1e-05"


def capture_as_tardis(capture: Path, book_csv: Path, trades_csv: Path) -> None:
    """The capture's book and trades as tardis's incremental_book_L2 and trades rows: the snapshot's
    levels, then every diff it does not cover, in receive order (receive times kept non-decreasing)."""
    book_rows, trade_rows, buffered = [], [], []
    last_id, local_us = None, 0
    for event in read_capture([capture]):
        local_us = max(local_us, event.recv_ts_ns // 1000)
        frame = event.frame
        if type(frame) is DepthSnapshot and last_id is None:
            last_id = frame.lastUpdateId
            for side, levels in (("bid", frame.bids), ("ask", frame.asks)):
                book_rows += [f"binance,BTCUSDT,{local_us},{local_us},true,{side},{_tardis_number(p)},"
                              f"{_tardis_number(q)}" for p, q in levels]
            pending, buffered = [f for f in buffered if f.u > last_id], []
            for i, diff in enumerate(pending):
                book_rows += _diff_rows(diff, local_us + 1 + i)
            local_us += len(pending)
        elif type(frame) is DepthUpdate:
            if last_id is None:
                buffered.append(frame)
            else:
                book_rows += _diff_rows(frame, local_us)
        elif type(frame) is TradeFrame:
            trade_rows.append(f"binance,BTCUSDT,{frame.T * 1000},{local_us},{frame.t},{'sell' if frame.m else 'buy'},"
                              f"{_tardis_number(frame.p)},{_tardis_number(frame.q)}")
    write(book_csv, L2_HEADER, "\n".join(book_rows) + "\n")
    write(trades_csv, TRADES_HEADER, "\n".join(trade_rows) + "\n")


def _diff_rows(diff: DepthUpdate, local_us: int) -> list[str]:
    return [f"binance,BTCUSDT,{diff.E * 1000},{local_us},false,{side},{_tardis_number(p)},{_tardis_number(q)}"
            for side, levels in (("bid", diff.b), ("ask", diff.a)) for p, q in levels]


def _decimal_levels(levels: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in levels]


@pytest.mark.skipif(not SPOT.exists(), reason=f"captured feeds not found at {SPOT}")
def test_tardis_csv_of_a_real_capture_builds_the_raw_capture_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mm.book import ASK, BID
    from mm.book_sync import BookSync
    from processes.launcher import replay_config
    from processes.replay_source import replay_source

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    raw = tmp_path / "slice.jsonl"
    with gzip.open(SPOT, "rb") as f:
        raw.write_bytes(b"".join(itertools.islice(f, 3000)))
    book_csv, trades_csv = tmp_path / "book.csv.gz", tmp_path / "trades.csv.gz"
    capture_as_tardis(raw, book_csv, trades_csv)

    raw_book = build_books([raw], 10)["BTCUSDT"]
    stats = CaptureStats()
    csv_book = build_books([book_csv, trades_csv], 10, stats)["BTCUSDT"]
    assert stats.malformed_count == 0
    assert raw_book["updates"] > 100 and csv_book["updates"] == raw_book["updates"]
    assert (csv_book["gaps"], csv_book["synced"]) == (0, True)
    for side in ("bids", "asks"):
        assert _decimal_levels(csv_book[side]) == _decimal_levels(raw_book[side])

    # the replay's own path (instrument, grid, feed_convert) gives the same book, in ticks
    tops = []
    for files in ([raw], [book_csv, trades_csv]):
        config = replay_config(load_config(), files, symbol=None, speed=0.0)
        source = replay_source(config)
        sync = BookSync("BTCUSDT")
        trades = 0
        for msg in source.messages():
            kind = type(msg).__name__
            if kind == "BookSnapshot":
                sync.on_snapshot(msg.last_id, msg.bids, msg.asks)
            elif kind == "DepthDiff":
                sync.on_diff(msg.first_id, msg.final_id, msg.prev_final_id, msg.bids, msg.asks)
            elif kind == "Trade":
                trades += 1
        tick, lot = Decimal(config.instrument.tick_size), Decimal(config.instrument.lot_size)
        tops.append(([(px * tick, qty * lot) for px, qty in sync.book.levels(BID, 10)],
                     [(px * tick, qty * lot) for px, qty in sync.book.levels(ASK, 10)], trades, sync.updates))
    assert tops[0] == tops[1]
    assert tops[1][2] > 0


@pytest.mark.integration
@pytest.mark.slow
def test_tardis_replay_writes_identical_reports_in_both_engines(tmp_path: Path):
    """~7 s: the six processes start; the report is the same file byte for byte as in process."""
    files = [str(write(tmp_path / "book.csv.gz", L2_HEADER, L2_ROWS)), str(write(tmp_path / "t.csv", TRADES_HEADER,
                                                                               TRADE_ROWS))]
    reports = []
    for engine in ("inproc", "processes"):
        report = tmp_path / f"{engine}.json"
        done = run_mm("replay", *files, "--engine", engine, "--report", str(report), "--quiet", timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        reports.append(report.read_bytes())
    assert reports[0] == reports[1]
    report = json.loads(reports[0])
    assert report["events"] == 6 and report["book"]["top"]["bid_px"] == 99.95
