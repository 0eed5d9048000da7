"""A COIN-M capture replayed: inverse contracts report their notional, fees and PnL in the base
coin (contracts x 10 USD / price for BCHUSD_PERP), not as price x contracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, run_mm

pytestmark = pytest.mark.integration

COINM = DATA_DIR / "binance-coinm-multi-20210721.jsonl.gz"


@pytest.mark.skipif(not COINM.exists(), reason="no COIN-M capture in ../shared/data")
def test_coinm_replay_reports_the_notional_in_the_base_coin(tmp_path: Path):
    report_path = tmp_path / "coinm.json"
    done = run_mm("replay", str(COINM), "--report", str(report_path), "--quiet", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["instrument"]["symbol"] == "BCHUSD_PERP"
    assert report["instrument"]["contract_size"] == 10.0 and report["instrument"]["settlement"] == "base"
    baseline = report["comparison"]["fixed_spread"]  # the fixed-spread baseline trades on this capture
    assert baseline["fills"] > 0
    contracts = baseline["fills"] * report["comparison"]["settings"]["order_qty"]
    top = report["book"]["top"]
    # every fill was near the final book (30 s of BCH around 428 USD): contracts x 10 / price, within 5 %
    assert baseline["traded_notional_quote"] == pytest.approx(contracts * 10.0 / top["bid_px"], rel=0.05)
    assert baseline["fees_quote"] == pytest.approx(baseline["traded_notional_quote"] * 1.0 / 1e4)  # maker 1 bp
