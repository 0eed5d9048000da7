"""The operator-facing contract of DESIGN.md as a user meets it: /metrics read by a real Prometheus
parser while `mm run` runs, every console command's reply and exit code (bad input named, risk
unharmed), the console with no pipeline, supervisorctl on the group and on one program, and API
keys in the environment absent from every output."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from mm.config import PROCESS_NAMES
from tests.conftest import REPO_ROOT, all_alive, console_status, mm_command, run_mm, stop_pipeline, wait_until
from tests.integration.test_pipeline_venue import free_port_pair
from tests.integration.test_supervisord import supervised  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration

# the series README.md names (DESIGN.md: mm_ prefix, mm_tick_to_order_seconds), each with its stage label
METRIC_NAMES = ("mm_stage_messages_total", "mm_tick_to_order_seconds", "mm_hop_seconds", "mm_book_resyncs_total",
                "mm_book_gaps_total", "mm_book_crossed_total", "mm_orders_total", "mm_risk_rejects_total",
                "mm_position", "mm_pnl", "mm_risk_state", "mm_paused", "mm_heartbeat_age_seconds",
                "mm_process_restarts_total", "mm_decode_errors_total", "mm_up",
                "mm_rate_limit_tokens")  # DESIGN.md's "rate-limit tokens"
API_KEY = "operatorContractKey0123456789"
API_SECRET = "operatorContractSecret-never-printed-4c3b"


def console(path: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return run_mm("console", "--config", str(path), "--timeout-ms", "1000", *words, timeout=30)


def assert_one_clear_line(done: subprocess.CompletedProcess[str], code: int, *named: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in named:
        assert word in lines[0], (word, lines[0])


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, parsed by prometheus_client's own text parser."""
    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def names(samples: dict) -> set[str]:
    out = set()
    for name, _ in samples:
        for suffix in ("_bucket", "_count", "_sum", "_created"):
            if name.endswith(suffix) and not name.endswith("_total"):
                name = name[: -len(suffix)]
        out.add(name)
    return out


@pytest.fixture
def sim_pipeline(make_config):
    port = free_port_pair()
    config, path = make_config(metrics={"port": port})
    env = {**os.environ, "MM_API_KEY": API_KEY, "MM_API_SECRET": API_SECRET}
    proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "120"), cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: all_alive(path), 30, interval_s=0.1, what="all six processes alive")
        yield config, path, port, proc
    finally:
        stop_pipeline(proc)


def test_metrics_one_endpoint_every_named_series_finite_and_counting(sim_pipeline):
    config, path, port, proc = sim_pipeline
    first = wait_until(lambda: (s := scrape(port)) and s.get(("mm_tick_to_order_seconds_count", (("stage", "gateway"),)))
                       and s, 30, interval_s=0.2, what="a first order on /metrics")
    second = wait_until(lambda: (s := scrape(port))[("mm_tick_to_order_seconds_count", (("stage", "gateway"),))]
                        > first[("mm_tick_to_order_seconds_count", (("stage", "gateway"),))] and s,
                        30, interval_s=0.2, what="more orders on a later scrape")
    assert set(METRIC_NAMES) <= names(second), set(METRIC_NAMES) - names(second)
    assert all(math.isfinite(v) for v in second.values())
    for _, labels in second:
        assert dict(labels)["stage"] in PROCESS_NAMES, labels
    # one endpoint for the whole pipeline: every stage's series, each stage up
    assert {dict(labels)["stage"] for name, labels in second if name == "mm_up"} == set(PROCESS_NAMES)
    for key, value in second.items():
        if key[0].endswith(("_total", "_count", "_bucket")):
            assert value >= first.get(key, 0.0), key  # counters never go back
    feed_out = ("mm_stage_messages_total", (("direction", "out"), ("stage", "feed")))
    assert second[feed_out] > first[feed_out]
    # a quiet run still has the owned counters, at zero, so alerts and dashboards find them
    for name in ("mm_book_resyncs_total", "mm_book_gaps_total", "mm_book_crossed_total"):
        assert (name, (("stage", "book"),)) in second, name
    assert ("mm_risk_rejects_total", (("reason", "order_rate"), ("stage", "risk"))) in second
    for state in ("sent", "acked", "filled", "cancelled", "rejected"):
        assert ("mm_orders_total", (("stage", "gateway"), ("state", state))) in second, state
    tokens = second[("mm_rate_limit_tokens", (("limiter", "order_rate"), ("stage", "risk")))]
    assert 0 <= tokens <= config.risk.max_orders_per_s
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert API_KEY not in body and API_SECRET not in body


def test_console_commands_answer_in_shape_and_bad_input_is_named_without_harming_risk(sim_pipeline):
    config, path, _, proc = sim_pipeline
    status = json.loads(console(path, "status", "--json").stdout)
    assert status["pipeline"] == config.pipeline.name and status["mode"] == "sim"
    assert isinstance(status["paused"], bool)
    assert [row["name"] for row in status["processes"]] == list(PROCESS_NAMES)
    for row in status["processes"]:
        assert type(row["alive"]) is bool and type(row["pid"]) is int and row["pid"] > 0
        assert row["core"] is None or type(row["core"]) is int
        assert type(row["heartbeat_age_ms"]) is float and math.isfinite(row["heartbeat_age_ms"])
        assert type(row["in"]) is int and type(row["out"]) is int
    risk_pid = next(row["pid"] for row in status["processes"] if row["name"] == "risk")

    for words, named in ((("book", "abc"), ("book", "abc")), (("book", "0"), ("book",)),
                         (("audit", "x"), ("audit", "x")), (("frobnicate",), ("frobnicate",)),
                         (("set", "quoter.nope", "1"), ("quoter.nope",)),
                         (("set", "quoter.size_lot", "-3"), ("size_lot",)),
                         (("set", "quoter.size_lot", "abc"), ("size_lot", "abc")),
                         (("set", "quoter.size_lot"), ("usage",))):
        assert_one_clear_line(console(path, *words), 2, *named)
    assert_one_clear_line(run_mm("console", "--config", str(path), "--timeout-ms", "-1", "status"), 2,
                          "--timeout-ms")
    after = all_alive(path)  # bad operator input never reaches risk's loop as an exception
    assert after and next(r["pid"] for r in after["processes"] if r["name"] == "risk") == risk_pid

    assert json.loads(console(path, "pause", "--json").stdout) == {"paused": True}
    assert console_status(path)["paused"] is True
    assert json.loads(console(path, "resume", "--json").stdout)["paused"] is False
    good = json.loads(console(path, "set", "quoter.size_lot", "200", "--json").stdout)
    assert good["key"] == "quoter.size_lot" and good["after"] == 200
    assert type(json.loads(console(path, "cancel-all", "--json").stdout)["cancelled"]) is int
    assert json.loads(console(path, "kill", "--json").stdout)["trading"] == "halted"
    assert console_status(path)["trading"] == "halted"
    assert json.loads(console(path, "resume", "--json").stdout)["trading"] == "active"
    assert "sent" in json.loads(console(path, "flatten", "--json").stdout)
    audit = json.loads(console(path, "audit", "3", "--json").stdout)["entries"]
    assert len(audit) == 3
    outputs = [console(path, command, "--json").stdout for command in ("status", "orders", "risk", "position")]
    assert not any(API_KEY in text or API_SECRET in text for text in outputs)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert API_KEY not in out + err and API_SECRET not in out + err


def test_console_without_a_pipeline_says_so_in_one_line(make_config):
    _, path = make_config()
    status = run_mm("console", "--config", str(path), "status", "--json", timeout=30)
    assert_one_clear_line(status, 1, "no pipeline is running", "control.sock")
    body = json.loads(status.stdout)  # the fixed shape still, from the pid files
    assert [row["alive"] for row in body["processes"]] == [False] * len(PROCESS_NAMES)
    for words in (("pause",), ("set", "quoter.size_lot", "200"), ("kill",)):
        assert_one_clear_line(console(path, *words), 1, "no pipeline is running")


def test_run_refuses_a_duration_that_never_ends(make_config):
    _, path = make_config()
    # its own session: if it does start a pipeline, the whole process group is stopped, none orphaned
    proc = subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "nan", "--quiet"), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
        raise AssertionError("mm run --duration nan started a pipeline that does not end") from None
    assert_one_clear_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), 2, "--duration")


def _pids(sup) -> dict[str, int]:
    return {name: info["pid"] for name, info in sup.programs().items()}


def test_supervisorctl_status_restart_of_one_program_and_stop_start_restart_of_the_group(supervised):  # noqa: F811
    config, path, sup = supervised
    wait_until(sup.all_running, 30, interval_s=0.1, what="six programs RUNNING")
    wait_until(lambda: all_alive(path), 15, interval_s=0.1, what="console shows all six alive")
    listed = sup.ctl("status")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = dict(line.split()[:2] for line in listed.stdout.strip().splitlines())
    assert rows == {f"mm:{name}": "RUNNING" for name in PROCESS_NAMES}

    before = _pids(sup)
    assert sup.ctl("restart", "mm:gateway").returncode == 0
    after = wait_until(lambda: (p := sup.all_running()) and p["gateway"]["pid"] != before["gateway"] and p, 20,
                       interval_s=0.1, what="gateway restarted")
    # one program, not the pipeline: the other five keep their processes
    assert {n: after[n]["pid"] for n in PROCESS_NAMES if n != "gateway"} == \
        {n: before[n] for n in PROCESS_NAMES if n != "gateway"}
    wait_until(lambda: (s := all_alive(path)) and s["trading"] == "active", 15, interval_s=0.2,
               what="the pipeline alive and trading after the gateway's restart")

    stopped = sup.ctl("stop", "mm:*")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert {p["statename"] for p in sup.programs().values()} == {"STOPPED"}
    assert sup.ctl("start", "mm:*").returncode == 0
    wait_until(sup.all_running, 30, interval_s=0.1, what="group started again")
    wait_until(lambda: all_alive(path), 15, interval_s=0.1, what="all six alive after start")
    before = _pids(sup)
    assert sup.ctl("restart", "mm:*").returncode == 0
    restarted = wait_until(sup.all_running, 30, interval_s=0.1, what="group restarted")
    assert all(restarted[n]["pid"] != before[n] for n in PROCESS_NAMES)
    wait_until(lambda: all_alive(path), 15, interval_s=0.1, what="all six alive after the group's restart")


def test_rate_window_count_for_metrics_agrees_with_the_check_and_evicts_nothing():
    from mm.risk_rules import RateWindow

    window = RateWindow()
    for sent_ns in (1, 500_000_000, 1_000_000_000, 2_000_000_000):
        window.record(sent_ns)
    seen = window.count_without_evicting(1_000_000_001)
    # an observer on a clock ahead of the checks' leaves every order for a check at an earlier time
    assert window.count(1_000_000_000) == 4
    assert seen == window.count(1_000_000_001) == 3
