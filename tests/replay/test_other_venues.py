"""`mm replay` trades OKX, Kraken and Hyperliquid captures too: their frames pass their venue's
book checks in the one converter (processes/feed_convert.py), the six stages run on them as on
Binance's, and both engines write the same report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, run_mm

pytestmark = pytest.mark.integration

CAPTURES = [("okx-multi-20220513.jsonl.gz", "BTC-USDT", "okx_spot"),
            ("kraken-multi-20210417.jsonl.gz", "XMR/USD", "kraken_spot"),
            ("hyperliquid-btc-20250126.jsonl.gz", None, "hyperliquid")]


def replay(tmp_path: Path, feed: Path, engine: str, symbol: str | None, config: Path | None = None) -> Path:
    report = tmp_path / f"{feed.name}.{engine}.json"
    args = ["replay", str(feed), "--engine", engine, "--report", str(report), "--quiet"]
    if symbol:
        args += ["--symbol", symbol]
    if config is not None:
        args += ["--config", str(config)]
    done = run_mm(*args, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return report


@pytest.mark.skipif(not DATA_DIR.exists(), reason=f"captured feeds not found at {DATA_DIR}")
@pytest.mark.parametrize("name,symbol,market", CAPTURES, ids=[c[0] for c in CAPTURES])
def test_other_venue_captures_run_through_the_pipeline(make_config, tmp_path: Path, name: str, symbol: str | None,
                                                       market: str):
    _, config = make_config()  # the quote-distance edge prior: minutes of data must trade, to check the orders
    inproc = replay(tmp_path, DATA_DIR / name, "inproc", symbol, config)
    processes = replay(tmp_path, DATA_DIR / name, "processes", symbol, config)
    assert inproc.read_bytes() == processes.read_bytes()
    report = json.loads(inproc.read_text())
    assert report["comparison"]["settings"]["market"] == market  # and so its fee tier
    book = report["book"]
    assert book["updates"] > 20 and book["gaps"] == 0 and book["top"]["bid_px"] < book["top"]["ask_px"]
    assert report["stages"]["book"]["in"] == report["stages"]["feed"]["out"]
    assert report["signal"]["n"] > 10
    assert report["orders"]["sent"] > 0 and report["orders"]["acked"] == report["orders"]["sent"] - report["orders"]["rejected"]
    assert report["comparison"]["strategy"] == report["comparison"]["pipeline"]


@pytest.mark.skipif(not DATA_DIR.exists(), reason=f"captured feeds not found at {DATA_DIR}")
def test_a_venue_name_and_the_pipeline_name_pick_the_same_instrument(tmp_path: Path):
    feed = DATA_DIR / "kraken-multi-20210417.jsonl.gz"
    by_venue = json.loads(replay(tmp_path / "a", feed, "inproc", "XBT/CHF").read_text())
    by_name = json.loads(replay(tmp_path / "b", feed, "inproc", "XBT-CHF").read_text())
    assert by_venue["instrument"]["symbol"] == by_name["instrument"]["symbol"] == "XBT-CHF"
    assert by_venue["book"] == by_name["book"]
    missing = run_mm("replay", str(feed), "--symbol", "NOPE/USD", "--report", str(tmp_path / "x.json"), "--quiet")
    assert missing.returncode != 0 and "no kraken book snapshot of NOPE/USD" in missing.stderr
