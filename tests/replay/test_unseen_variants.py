"""Captures of the documented formats that no test replayed before, built in tmp_path from
../shared/data: bare Binance payloads (no combined-stream wrapper) and a file nothing of which can
be read (a cryptofeed raw recording) must replay correctly or fail in one clear line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mm.capture import CaptureStats, read_capture
from tests.conftest import DATA_DIR, run_mm

SPOT_MULTI = DATA_DIR / "binance-spot-multi-20211012.jsonl.gz"
RAW_OKX = DATA_DIR / "raw" / "cryptofeed" / "OKX.ws.1.0.gz"
pytestmark = pytest.mark.skipif(not SPOT_MULTI.exists(), reason=f"captured feeds not found at {DATA_DIR}")


def bare_copy(src: Path, dst: Path) -> Path:
    """`src` with every combined-stream frame's payload written bare (as a raw /ws/ stream sends it)."""
    out = []
    for line in gzip.open(src, "rb").read().splitlines():
        ts, _, body = line.partition(b" ")
        frame = json.loads(body)
        out.append(ts + b" " + json.dumps(frame["data"] if "stream" in frame else frame).encode())
    dst.write_bytes(b"\n".join(out) + b"\n")
    return dst


def test_read_capture_bare_payloads_decode_as_the_wrapped_ones(tmp_path: Path):
    bare = bare_copy(SPOT_MULTI, tmp_path / "bare.jsonl")
    wrapped_stats, bare_stats = CaptureStats(), CaptureStats()
    wrapped = [(e.recv_ts_ns, e.symbol, e.frame) for e in read_capture([SPOT_MULTI], wrapped_stats)]
    unwrapped = [(e.recv_ts_ns, e.symbol, e.frame) for e in read_capture([bare], bare_stats)]
    # spot's bare bookTicker names no event type `e`: the only frames it cannot tell apart
    assert [w for w in wrapped if type(w[2]).__name__ != "BookTickerFrame"] == unwrapped
    # ... and the streams we skip anyway (kline) are skipped bare too, as "unknown"
    skipped = wrapped_stats.events["BookTickerFrame"] + wrapped_stats.skipped.total()
    assert bare_stats.malformed_count == 0 and bare_stats.skipped["unknown"] == skipped


def test_replay_of_bare_payloads_trades_the_same_events(tmp_path: Path):
    bare = bare_copy(SPOT_MULTI, tmp_path / "bare.jsonl")
    reports = []
    for feed in (SPOT_MULTI, bare):
        report = tmp_path / f"{feed.name}.json"
        done = run_mm("replay", str(feed), "--report", str(report), "--quiet", timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        reports.append(json.loads(report.read_text()))
    assert reports[1]["events"] == reports[0]["events"] > 100
    assert reports[1]["book"]["updates"] == reports[0]["book"]["updates"]


@pytest.mark.skipif(not RAW_OKX.exists(), reason=f"cryptofeed raw recordings not found at {RAW_OKX.parent}")
def test_replay_of_an_unreadable_capture_fails_naming_file_and_line(tmp_path: Path):
    feed = tmp_path / "OKX.ws.1.0.gz"
    feed.write_bytes(RAW_OKX.read_bytes())  # `<ts>: <frame>` lines: a book is found, no line is readable
    done = run_mm("replay", str(feed), "--report", str(tmp_path / "r.json"), "--quiet", timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and not (tmp_path / "r.json").exists()
    assert f"{feed.name}:1: receive time" in done.stderr and "nothing to replay" in done.stderr


SPOT_BTC = DATA_DIR / "binance-spot-btcusdt-20240808.jsonl.gz"


@pytest.mark.skipif(not SPOT_BTC.exists(), reason=f"{SPOT_BTC.name} not found in {DATA_DIR}")
def test_both_engines_agree_after_a_gap_the_book_never_recovers_from(tmp_path: Path):
    """A capture holds one snapshot: after a dropped diff the book publishes no more, and the trades
    after it reach the signal only at end of stream, in both engines (the process engine used to
    count only those read on a book notice: 466 of 1123)."""
    lines = gzip.open(SPOT_BTC, "rb").read().splitlines()[:6000]
    depth = [i for i, line in enumerate(lines) if b"@depth" in line[:80]]
    del lines[depth[len(depth) // 2]]
    feed = tmp_path / "gap.jsonl"
    feed.write_bytes(b"\n".join(lines) + b"\n")
    reports = []
    for engine in ("inproc", "processes"):
        report = tmp_path / f"{engine}.json"
        done = run_mm("replay", str(feed), "--engine", engine, "--report", str(report), "--quiet", timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        reports.append(json.loads(report.read_text()))
    trades = sum(1 for line in lines if b"@trade" in line[:80])
    assert reports[0]["book"]["gaps"] >= 1
    assert reports[0]["signal"]["trades"] == trades
    assert reports[0] == reports[1]
