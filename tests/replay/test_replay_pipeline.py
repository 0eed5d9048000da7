"""`mm replay` drives the six processes over a real capture: deterministic, complete, and the
report carries the book, signal, risk blocks and the strategy comparison."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import msgspec
import pytest

from mm.config import dump_toml, load_config
from processes.launcher import live_pids
from tests.conftest import DATA_DIR, REPO_ROOT, mm_command, run_mm, wait_until

pytestmark = pytest.mark.integration

SPOT = DATA_DIR / "binance-spot-btcusdt-20240808.jsonl.gz"


def zero_fee_config(tmp_path: Path) -> Path:
    """BTCUSDT spot at the standard 10 bp maker fee is not worth quoting (the quoter rightly stays
    out of the money); on a zero-fee tier, as Binance has run for BTC pairs, it trades."""
    base = load_config()
    replace = msgspec.structs.replace
    config = tmp_path / "zero_fee.toml"
    config.write_text(dump_toml(replace(
        base, quoter=replace(base.quoter, maker_fee_bps=0.0),
        gateway=replace(base.gateway, maker_fee_bps=0.0, taker_fee_bps=0.0))))
    return config


def replay(tmp_path: Path, name: str, feed: Path) -> dict:
    report_path = tmp_path / f"{name}.json"
    done = run_mm("replay", str(feed), "--max", "--config", str(zero_fee_config(tmp_path)),
                  "--report", str(report_path), "--quiet", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(report_path.read_text())


@pytest.mark.skipif(not SPOT.exists(), reason=f"captured feeds not found at {DATA_DIR}")
def test_replay_twice_gives_the_same_report(tmp_path: Path):
    first = replay(tmp_path, "a", SPOT)
    replay(tmp_path, "b", SPOT)  # the same input again: compared byte for byte below
    reference = json.loads(SPOT.with_name(SPOT.name.replace(".jsonl.gz", ".top10.json")).read_text())["BTCUSDT"]
    assert first["book"]["updates"] == reference["updates"] and first["book"]["gaps"] == 0
    assert first["book"]["top"]["bid_px"] == float(reference["bids"][0][0])
    assert first["book"]["top"]["ask_px"] == float(reference["asks"][0][0])
    assert first["stages"]["book"]["in"] == first["stages"]["feed"]["out"]
    assert first["orders"]["sent"] > 0 and first["fills"] > 0
    assert first["signal"]["n"] > 1000 and first["signal"]["r2_oos"] is not None
    assert set(first["signal"]["baselines"]) >= {"zero", "momentum"}
    second_half = first["signal"]["second_half"]  # comparable with a fit on the first half
    assert set(second_half) == {"model", "momentum", "imbalance", "emitted"}
    assert 0 < second_half["model"]["n"] <= first["signal"]["n"] - second_half["model"]["n"] + 1
    assert {"halts", "soft_stops", "hard_stops", "rejected_checks"} <= set(first["risk"])
    assert {"pipeline", "strategy", "fixed_spread"} <= set(first["comparison"])
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()  # byte for byte
    wall = json.loads((tmp_path / "a.wall.json").read_text())  # this machine's figures, beside it
    assert wall["latency_ns"]["tick_to_order"]["count"] == first["latency_ns"]["tick_to_order"]["count"] > 0
    assert wall["wall_s"] > 0 and "cpu_s" in wall["stages"]["book"]
    for suffix in ("quotes", "inventory", "pnl", "latency"):
        assert (tmp_path / f"a.{suffix}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not (DATA_DIR / "binance-usdm-multi-20210722.jsonl.gz").exists(),
                    reason=f"captured feeds not found at {DATA_DIR}")
def test_replay_futures_multi_symbol_file_picks_a_symbol(tmp_path: Path):
    feed = DATA_DIR / "binance-usdm-multi-20210722.jsonl.gz"
    report_path = tmp_path / "akro.json"
    done = run_mm("replay", str(feed), "--symbol", "AKROUSDT", "--report", str(report_path), "--quiet", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    reference = json.loads((DATA_DIR / "binance-usdm-multi-20210722.top10.json").read_text())["AKROUSDT"]
    assert report["instrument"]["symbol"] == "AKROUSDT"
    assert report["book"]["updates"] == reference["updates"] and report["book"]["gaps"] == 0


def test_replay_missing_file_is_usage_error(tmp_path: Path):
    done = run_mm("replay", str(tmp_path / "nope.jsonl.gz"))
    assert done.returncode == 2 and "no such capture file" in done.stderr


@pytest.mark.skipif(not SPOT.exists(), reason=f"captured feeds not found at {DATA_DIR}")
def test_a_stage_dying_in_a_process_replay_fails_it_at_once_by_name(make_config, tmp_path: Path):
    """The lockstep waits on every stage: a dead one must end the replay with an error, not hang it."""
    config, path = make_config()
    proc = subprocess.Popen(mm_command("replay", str(SPOT), "--engine", "processes", "--quiet", "--config", str(path),
                                       "--report", str(tmp_path / "report.json")),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    name = f"replay{proc.pid}"  # the replay's own pipeline, as processes/launcher.replay_config names it
    config = msgspec.structs.replace(config, pipeline=msgspec.structs.replace(
        config.pipeline, name=name, run_dir=str(Path(config.pipeline.run_dir) / name)))
    try:
        risk = wait_until(lambda: live_pids(config).get("risk"), timeout_s=60, what="risk's pid file")
        os.kill(risk, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert "replay stopped: risk died" in stderr
    assert not live_pids(config)  # the other five were stopped too
