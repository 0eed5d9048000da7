"""One engine, two schedules: the six processes and the in-process replay run the same steps and
write the same report, byte for byte; the comparison's strategy is the pipeline's own run."""

from __future__ import annotations

import gzip
import itertools
import json
import os
from pathlib import Path

import msgspec
import pytest

from mm.config import dump_toml, load_config
from tests.conftest import DATA_DIR, run_mm

pytestmark = pytest.mark.integration

BINANCE_CAPTURES = sorted(p for p in DATA_DIR.glob("binance*.jsonl.gz")) if DATA_DIR.exists() else []
QUICK = [("binance-usdm-multi-20210722.jsonl.gz", "AKROUSDT"), ("binance-spot-multi-20211012.jsonl.gz", None),
         ("binance-usdm-ethusdt-20240808.jsonl.gz", None)]


def replay(tmp_path: Path, feed: Path, engine: str, symbol: str | None = None) -> Path:
    report = tmp_path / f"{feed.name}.{engine}.json"
    args = ["replay", str(feed), "--engine", engine, "--report", str(report), "--quiet"]
    if symbol:
        args += ["--symbol", symbol]
    critical_path = os.environ.get("MM_TEST_CRITICAL_PATH")
    if critical_path:  # the six processes over either critical-path transport (shm | zmq)
        base = load_config()
        config = tmp_path / f"critical_path_{critical_path}.toml"
        config.write_text(dump_toml(msgspec.structs.replace(
            base, ipc=msgspec.structs.replace(base.ipc, critical_path=critical_path))))
        args += ["--config", str(config)]
    done = run_mm(*args, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return report


def assert_engines_agree(tmp_path: Path, feed: Path, symbol: str | None) -> dict:
    inproc = replay(tmp_path, feed, "inproc", symbol)
    processes = replay(tmp_path, feed, "processes", symbol)
    a, b = json.loads(inproc.read_text()), json.loads(processes.read_text())
    differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    assert not differing, f"{feed.name}: the engines differ in {differing}"
    assert inproc.read_bytes() == processes.read_bytes()
    comparison = a["comparison"]
    assert comparison["strategy"] == comparison["pipeline"]  # the same run, not a second implementation
    assert comparison["pipeline"]["fills"] == a["fills"]
    wall = json.loads(inproc.with_suffix(".wall.json").read_text())["throughput"]
    assert wall["frames"] > 0 and wall["frames_per_s"] > 0 and wall["events"] == a["events"]
    return a


@pytest.mark.skipif(not DATA_DIR.exists(), reason=f"captured feeds not found at {DATA_DIR}")
@pytest.mark.parametrize("name,symbol", QUICK, ids=[q[0] for q in QUICK])
def test_inproc_and_process_replays_write_identical_reports(tmp_path: Path, name: str, symbol: str | None):
    feed = DATA_DIR / name
    if name == QUICK[2][0]:  # its first 30 000 lines (of 74 655): every capture in full runs under -m slow
        feed = tmp_path / name
        with gzip.open(DATA_DIR / name, "rb") as src, gzip.open(feed, "wb") as out:
            out.writelines(itertools.islice(src, 30_000))
    report = assert_engines_agree(tmp_path, feed, symbol)
    assert report["book"]["gaps"] == 0 and report["stages"]["book"]["in"] == report["stages"]["feed"]["out"]


@pytest.mark.skipif(not DATA_DIR.exists(), reason=f"captured feeds not found at {DATA_DIR}")
def test_both_engines_apply_a_stop_tripped_by_a_fill_in_the_next_interval(tmp_path: Path):
    """A soft stop that a fill trips (risk's cancel-all while it handles the venue's answers) reaches
    the process engine's gateway after it has read on into the next interval's market; the in-process
    schedule applied it before that market, and the two runs differed (reduce-only rejects 866 vs
    870, orders cancelled) on the first 10 000 lines of this capture. A tiny drawdown limit, a
    rebate (the quoter joins the touch) and no requote tolerance make the stop trip often."""
    feed = tmp_path / "ethusdt-10k.jsonl.gz"
    with gzip.open(DATA_DIR / QUICK[2][0], "rb") as src, gzip.open(feed, "wb") as out:
        out.writelines(itertools.islice(src, 10_000))
    base = load_config()
    replace = msgspec.structs.replace
    config = tmp_path / "stops.toml"
    config.write_text(dump_toml(replace(
        base, risk=replace(base.risk, soft_stop_drawdown_quote=0.0002, soft_stop_cooldown_s=2.0),
        quoter=replace(base.quoter, requote_tolerance_ticks=0, maker_fee_bps=-0.5),
        ipc=replace(base.ipc, critical_path=os.environ.get("MM_TEST_CRITICAL_PATH", base.ipc.critical_path)))))
    reports = []
    for engine in ("inproc", "processes"):
        report = tmp_path / f"stops.{engine}.json"
        done = run_mm("replay", str(feed), "--engine", engine, "--config", str(config), "--report", str(report),
                      "--quiet", timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        reports.append(report)
    a = json.loads(reports[0].read_text())
    assert a["risk"]["soft_stops"] > 5 and a["fills"] > 5  # the case this is about happens
    assert reports[0].read_bytes() == reports[1].read_bytes(), \
        sorted(k for k, v in json.loads(reports[1].read_text()).items() if a.get(k) != v)


@pytest.mark.slow
@pytest.mark.parametrize("feed", BINANCE_CAPTURES, ids=[p.name for p in BINANCE_CAPTURES])
def test_every_binance_capture_identical_in_both_engines(tmp_path: Path, feed: Path):
    assert_engines_agree(tmp_path, feed, None)


@pytest.mark.skipif(not (DATA_DIR / QUICK[2][0]).exists(), reason=f"captured feeds not found at {DATA_DIR}")
def test_strategy_and_fixed_spread_both_trade_through_the_engine(tmp_path: Path):
    feed = DATA_DIR / QUICK[2][0]
    report = json.loads(replay(tmp_path, feed, "inproc").read_text())
    comparison = report["comparison"]
    # at USD-M's 2 bp maker fee the strategy quotes both sides all along, far enough out to cover the fee:
    # fewer fills than fixed spread's at the touch, each of them paying its fee (bench/quoter_loco.py)
    strategy, fixed = comparison["strategy"], comparison["fixed_spread"]
    assert 0 < strategy["fills"] < fixed["fills"] and fixed["fills"] > 50
    assert all(s > 0.9 * fixed["quoted_s"]["bid"] for s in report["quoting"]["quoted_s"].values())
    assert report["quoting"]["edge_stops"] == {"bid": 0, "ask": 0}
    assert strategy["pnl_per_notional_bps"] > fixed["pnl_per_notional_bps"]
    # on a zero-fee tier it quotes, and both strategies trade through the one engine
    base = load_config()
    zero = tmp_path / "zero_fee.toml"
    zero.write_text(dump_toml(msgspec.structs.replace(
        base, gateway=msgspec.structs.replace(base.gateway, maker_fee_bps=0.0, taker_fee_bps=0.0))))
    path = tmp_path / "zero_fee.json"
    done = run_mm("replay", str(feed), "--config", str(zero), "--report", str(path), "--quiet", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    comparison = json.loads(path.read_text())["comparison"]
    for name, least in (("strategy", 5), ("fixed_spread", 50)):
        assert comparison[name]["fills"] > least
        assert set(comparison[name]) >= {"pnl_quote", "pnl_per_notional_bps", "max_abs_inventory", "fills"}
    assert comparison["fixed_spread"] != comparison["strategy"]  # two strategies, one engine
    assert comparison["settings"]["engine"] == "inproc" and comparison["settings"]["maker_fee_bps"] == 0.0


def test_inproc_refuses_speed(tmp_path: Path):
    feed = tmp_path / "x.jsonl"
    feed.write_text("")
    done = run_mm("replay", str(feed), "--engine", "inproc", "--speed", "2")
    assert done.returncode == 2 and "--engine processes" in done.stderr
