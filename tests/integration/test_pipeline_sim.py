"""The whole six-process pipeline on the simulated venue, as a user runs it: `mm run`, the
console, kill -9, SIGTERM, and the files it must not leave behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from mm.config import PROCESS_NAMES, Config
from tests.conftest import (REPO_ROOT, all_alive, console_request, console_status, mm_command, run_mm, stop_pipeline,
                            wait_until)

pytestmark = pytest.mark.integration


def leftovers(config: Config) -> list[str]:
    shm = [p.name for p in Path("/dev/shm").glob(f"mm.{config.pipeline.name}.*")]
    run_dir = Path(config.pipeline.run_dir)
    files = [p.name for p in run_dir.iterdir()] if run_dir.exists() else []
    return shm + files


def console(config_path: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return run_mm("console", "--config", str(config_path), "--timeout-ms", "500", *words, timeout=30)


def test_mm_run_sim_trades_and_writes_report(make_config, tmp_path: Path):
    config, path = make_config()
    report_path = tmp_path / "report.json"
    done = run_mm("run", "--config", str(path), "--duration", "5", "--report", str(report_path), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(report_path.read_text())
    for key in ("events", "duration_s", "stages", "latency_ns", "orders", "fills", "position", "pnl", "book",
                "signal", "risk"):
        assert key in report
    assert report["events"] > 0
    for name in PROCESS_NAMES:
        stage = report["stages"][name]
        assert stage["clean_stop"], name
        assert stage["in"] + stage["out"] > 0, name
    assert report["stages"]["book"]["in"] == report["stages"]["feed"]["out"]
    assert report["latency_ns"]["tick_to_order"]["count"] > 0
    assert report["orders"]["sent"] > 0 and report["orders"]["acked"] > 0
    assert report["book"]["crossed"] == 0 and report["book"]["top"]["bid_px"] < report["book"]["top"]["ask_px"]
    assert leftovers(config) == []
    from matplotlib.image import imread

    for panel in ("quotes", "inventory", "pnl", "latency"):
        png = tmp_path / f"report.{panel}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", panel
        assert imread(png).shape[0] > 100  # decodes, and is a real picture


def test_shutdown_drains_every_message_of_a_burst(make_config, tmp_path: Path):
    """A 20 kHz burst that ends by itself: every stage counts exactly what its upstream sent."""
    config, path = make_config(feed={"synthetic_hz": 20_000.0, "synthetic_events": 3000},
                               quoter={"requote_tolerance_ticks": 0},
                               risk={"max_orders_per_s": 1e9, "max_book_age_ms": 60_000.0,
                                     "max_signal_age_ms": 60_000.0})
    report_path = tmp_path / "report.json"
    done = run_mm("run", "--config", str(path), "--duration", "60", "--report", str(report_path), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    stages = json.loads(report_path.read_text())["stages"]
    assert 3001 <= stages["feed"]["out"] <= 3003  # every diff, the start snapshot, and any the book asked for
    assert stages["book"]["in"] == stages["feed"]["out"]
    assert stages["signal"]["in"] == stages["book"]["out"]
    assert stages["quoter"]["in"] == stages["book"]["out"] + stages["gateway"]["out"]
    assert stages["risk"]["in"] == stages["quoter"]["out"] + stages["gateway"]["out"]
    assert stages["gateway"]["in"] == stages["feed"]["out"] + stages["risk"]["out"]
    assert all(stage["clean_stop"] for stage in stages.values())
    assert leftovers(config) == []


@pytest.fixture
def running_pipeline(make_config):
    config, path = make_config()
    proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "120", "--quiet"),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: all_alive(path), 30, what="all six processes alive")
        yield config, path, proc
    finally:
        stop_pipeline(proc)


def test_console_status_json_has_the_fixed_shape(running_pipeline):
    config, path, _ = running_pipeline
    status = console_status(path)
    assert status["pipeline"] == config.pipeline.name and status["mode"] == "sim"
    assert isinstance(status["paused"], bool)
    assert [row["name"] for row in status["processes"]] == list(PROCESS_NAMES)
    for row in status["processes"]:
        assert row["alive"] is True and row["pid"] > 0
        assert isinstance(row["heartbeat_age_ms"], float) and row["core"] is None
        assert isinstance(row["in"], int) and isinstance(row["out"], int)


def test_each_process_runs_at_its_configured_niceness(running_pipeline):
    config, path, _ = running_pipeline
    started_at = os.getpriority(os.PRIO_PROCESS, 0)  # mm run's children start from ours
    for row in console_status(path)["processes"]:
        expected = started_at + getattr(config, row["name"]).nice
        assert os.getpriority(os.PRIO_PROCESS, row["pid"]) == min(expected, 19), row["name"]
    assert config.signal.nice > 0 and config.book.nice == 0  # off the critical path: yields first


def test_console_pause_resume_cancel_all_and_set(running_pipeline):
    _, path, _ = running_pipeline
    assert console(path, "pause").returncode == 0
    assert console_status(path)["paused"] is True
    wait_until(lambda: (console_request(path, "orders") or {}).get("open") == {}, 5,
               what="paused pipeline has no open orders")
    assert console(path, "resume").returncode == 0
    assert console_status(path)["paused"] is False
    assert console(path, "cancel-all").returncode == 0
    good = console(path, "set", "quoter.size_lot", "200")
    assert good.returncode == 0 and "200" in good.stdout
    bad = console(path, "set", "quoter.size_lot", "-3")
    assert bad.returncode == 2 and "size_lot" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    unknown = console(path, "frobnicate")
    assert unknown.returncode == 2 and "unknown command" in unknown.stderr


def test_console_reads_and_reduce_only_and_flatten(running_pipeline):
    _, path, _ = running_pipeline
    # the gateway reports once a second: its first report may come before its first order
    latency = wait_until(lambda: (r := console_request(path, "latency") or {}).get("available")
                         and r["tick_to_order"]["count"] > 0 and r,
                         10, interval_s=0.2, what="latency figures of at least one order from the gateway")
    assert "risk_to_gateway" in latency
    signal_reply = json.loads(console(path, "signal", "--json").stdout)
    assert signal_reply["available"] and signal_reply["volatility_bps_per_s"] > 0
    book = json.loads(console(path, "book", "3", "--json").stdout)
    assert len(book["bids"]) == 3 and book["bids"][0][0] < book["asks"][0][0]
    assert "bids" in json.loads(console(path, "quotes", "--json").stdout)
    assert json.loads(console(path, "reduce-only", "--json").stdout)["trading"] == "reducing"
    flat = console(path, "flatten", "--json")
    assert flat.returncode == 0 and "sent" in json.loads(flat.stdout)
    assert console_status(path)["trading"] == "reducing"
    assert "p50" in console(path, "latency").stdout  # the table a person reads


@pytest.mark.parametrize("victim", ["book", "gateway", "risk"])
def test_kill_9_shows_dead_within_1s_and_stops_quoting(running_pipeline, victim: str):
    config, path, proc = running_pipeline
    pid = next(row["pid"] for row in console_status(path)["processes"] if row["name"] == victim)
    os.kill(pid, signal.SIGKILL)

    def shows_dead():
        # risk answers the control endpoint: while it lives, ask it directly (a `mm console` process per
        # poll spends most of the second starting Python on a loaded machine); with risk dead, what the
        # console itself shows is what is under test
        status = console_status(path) if victim != "risk" else json.loads(console(path, "status", "--json").stdout)
        if not status:
            return None
        row = next(r for r in status["processes"] if r["name"] == victim)
        return status if not row["alive"] else None

    status = wait_until(shows_dead, 1.0, interval_s=0.05, what=f"{victim} shown dead")
    cli = json.loads(console(path, "status", "--json").stdout)  # and the console says so
    assert not next(r for r in cli["processes"] if r["name"] == victim)["alive"]
    if victim != "risk":
        assert status["trading"] == "halted"
    if victim == "book":  # with the gateway alive, risk's cancel-all is acknowledged
        wait_until(lambda: (console_request(path, "orders") or {}).get("open") == {}, 5,
                   what="risk cancelled our orders")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert leftovers(config) == []


def test_sigterm_to_mm_run_stops_all_and_leaves_nothing(running_pipeline):
    config, _, proc = running_pipeline
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert leftovers(config) == []


def test_bad_config_exits_2_with_one_line_naming_file_and_key(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO_ROOT / "mm" / "default.toml").read_text() + "\n[book]\ndepht = 3\n")
    for cmd in (mm_command("run", "--config", str(bad)),
                ["python", "-m", "processes.book", "--config", str(bad)]):
        done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PATH": os.path.dirname(mm_command()[0]) + ":" + os.environ["PATH"]})
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "bad.toml" in lines[0] and "depht" in lines[0]


def test_bench_latency_json_shape():
    done = run_mm("bench", "latency", "--json", "--events", "400", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    for key in ("p50", "p90", "p99", "max", "count"):
        assert key in result["tick_to_order"]
    assert result["tick_to_order"]["count"] > 0
    assert set(result["hops"]) == {"feed_to_book", "book_to_quoter", "quoter_to_risk", "risk_to_gateway"}
    assert "placement" in result and result["bare_chain"]["count"] > 0
    for stage in ("book", "quoter", "risk", "gateway"):  # each critical stage's own CPU per handled wakeup
        assert result["stage_work_cpu_us_per_turn"][stage] > 0
    assert result["bare_chain_relay_work_cpu_us_per_turn"] > 0  # the transport's share, measured alike
    assert result["bare_shm_chain"]["count"] > 0 and result["ratio_p50_shm"] > 0  # the shm chain, same run
    for stage in ("book", "quoter", "risk", "gateway"):  # wakeup -> first critical send: our share of a hop
        assert 0 < result["stage_preforward_us"][stage]["p50"] <= result["stage_preforward_us"][stage]["p99"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_metrics_endpoint_serves_every_stage_and_latency(make_config):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    port = _free_port()
    config, path = make_config(metrics={"port": port})
    proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "60", "--quiet"),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def scrape() -> dict | None:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            return None
        families = {f.name: f for f in text_string_to_metric_families(body)}
        hist = families.get("mm_tick_to_order_seconds")
        if hist is None:
            return None
        count = sum(s.value for s in hist.samples if s.name.endswith("_count"))
        return families if count > 0 else None

    try:
        families = wait_until(scrape, 30, interval_s=0.2, what="latency observations on /metrics")
        stages = {s.labels["stage"] for s in families["mm_stage_messages"].samples}
        assert stages == set(PROCESS_NAMES)
        for family in families.values():
            assert family.name.startswith("mm_")
            for sample in family.samples:
                assert "stage" in sample.labels, sample
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert leftovers(config) == []


def test_quoter_ladder_of_three_levels_rests_orders_on_each_side(make_config):
    config, path = make_config(quoter={"levels": 3}, risk={"max_orders_per_s": 200.0})
    proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "60", "--quiet"),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def ladder() -> dict | None:
            done = console(path, "orders", "--json")
            orders = json.loads(done.stdout)["open"] if done.returncode == 0 else {}
            sides = [o["side"] for o in orders.values()]
            return orders if sides.count(1) >= 2 and sides.count(-1) >= 2 else None

        orders = wait_until(ladder, 20, interval_s=0.2, what="several levels resting on each side")
        bids = sorted((o["px_tick"] for o in orders.values() if o["side"] > 0), reverse=True)
        asks = sorted(o["px_tick"] for o in orders.values() if o["side"] < 0)
        assert bids[0] < asks[0] and len(set(bids)) == len(bids)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert leftovers(config) == []
