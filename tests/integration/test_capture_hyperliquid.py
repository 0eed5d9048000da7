"""`mm capture --venue hyperliquid` against `mm venue --market hyperliquid` on 127.0.0.1: every text
frame verbatim as `<recv_ts_ns> <frame>` (the ../shared/data line format), read back by `mm book`
and traded by `mm replay`."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, mm_command, run_mm
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

COIN = "BTC"


def test_a_hyperliquid_capture_reads_back_through_book_and_replay(make_config, tmp_path: Path):
    port = free_port_pair()
    venue = subprocess.Popen(mm_command("venue", "--market", "hyperliquid", "--port", str(port), "--symbol", COIN,
                                        "--speed", "5"),
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "hl.jsonl.gz"
    try:
        line = venue.stdout.readline()
        assert line.startswith("venue ws="), line + venue.stderr.read()
        done = run_mm("capture", "--venue", "hyperliquid", "--ws-url", f"ws://127.0.0.1:{port}/ws",
                      "--symbol", COIN, "--out", str(out), "--duration", "3", timeout=30)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        venue.send_signal(signal.SIGTERM)
        venue.communicate(timeout=10)

    channels = []
    with gzip.open(out, "rt") as f:
        for text in f:
            ts, frame = text.rstrip("\n").split(" ", 1)
            assert int(ts) > 1_600_000_000 * 10**9  # a receive time in ns
            channels.append(json.loads(frame)["channel"])
    assert {"subscriptionResponse", "l2Book", "trades"} <= set(channels)
    assert channels.count("l2Book") > 5

    book = run_mm("book", str(out), "--json")
    assert book.returncode == 0, book.stderr[-3000:]
    levels = json.loads(book.stdout)[COIN]
    assert 0 < float(levels["bids"][0][0]) < float(levels["asks"][0][0])

    report_path = tmp_path / "report.json"
    _, config_path = make_config()  # the quote-distance edge prior: a few seconds of sim data must trade
    done = run_mm("replay", str(out), "--engine", "inproc", "--config", str(config_path), "--report",
                  str(report_path), "--quiet", timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["comparison"]["settings"]["market"] == "hyperliquid"
    assert report["book"]["updates"] > 5 and report["book"]["gaps"] == 0 and report["book"]["crossed"] == 0
    assert report["orders"]["sent"] > 0


def test_a_hyperliquid_capture_records_one_coin(tmp_path: Path):
    done = run_mm("capture", "--venue", "hyperliquid", "--ws-url", "ws://127.0.0.1:9/ws", "--symbol", "BTC",
                  "--symbol", "ETH", "--out", str(tmp_path / "x.jsonl.gz"), "--duration", "1")
    assert done.returncode == 2 and "one coin" in done.stderr, done.stderr
