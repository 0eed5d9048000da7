"""Stopping ONE program under supervisord stops that program only (mm/shutdown.py): its end of stream
says "program_stop", the stages below acknowledge it and keep running, see it gone by its heartbeats
and take it back when it starts again; a group stop still drains and stops all six cleanly. Before,
`supervisorctl stop mm:feed` cascaded: every stage below took the feed's end of stream for the
pipeline's end and stopped too (and supervisord restarted them all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mm.config import PROCESS_NAMES
from tests.conftest import all_alive, console_request, console_status, wait_until
from tests.integration.test_supervisord import _alive, leftovers, supervised  # noqa: F401  (supervised: the fixture)

pytestmark = pytest.mark.integration


def _row(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in status["processes"] if r["name"] == name)


def _clean_stop(run_dir: str, name: str) -> bool:
    return json.loads((Path(run_dir) / f"{name}.stats.json").read_text())["clean_stop"]


def test_supervisorctl_stop_of_the_feed_leaves_the_other_five_running(supervised):  # noqa: F811
    config, path, sup = supervised
    pids = {n: p["pid"] for n, p in wait_until(sup.all_running, 30, interval_s=0.1, what="six RUNNING").items()}
    wait_until(lambda: all_alive(path), 15, interval_s=0.1, what="console shows all six alive")
    others = [n for n in PROCESS_NAMES if n != "feed"]

    stopped = sup.ctl("stop", "mm:feed")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert (sup.programs()["feed"]["statename"], sup.programs()["feed"]["exitstatus"]) == ("STOPPED", 0)
    assert _clean_stop(config.pipeline.run_dir, "feed")  # the book acknowledged its end of stream
    # the others see the feed gone by its heartbeats and stay up, in the same processes
    status = wait_until(lambda: (s := console_status(path)) and not _row(s, "feed")["alive"] and s, 5,
                        interval_s=0.05, what="the feed seen gone by risk")
    for name in others:
        assert _row(status, name)["alive"] and _row(status, name)["state"] in ("running", "degraded"), \
            _row(status, name)
    programs = sup.programs()
    assert {n: (programs[n]["statename"], programs[n]["pid"]) for n in others} == \
        {n: ("RUNNING", pids[n]) for n in others}
    book_in = _row(status, "book")["in"]  # from its heartbeats: what the book has read, final now

    started = sup.ctl("start", "mm:feed")
    assert started.returncode == 0, started.stdout + started.stderr
    feed_pid = sup.programs()["feed"]["pid"]
    assert feed_pid != pids["feed"]
    # all six alive again, and the book reads the new feed's stream
    wait_until(lambda: (s := all_alive(path)) and _row(s, "feed")["pid"] == feed_pid and _row(s, "book")["in"] > book_in,
               10, interval_s=0.05, what="the new feed alive and its stream read by the book")
    programs = sup.programs()
    assert {n: programs[n]["pid"] for n in others} == {n: pids[n] for n in others}

    stopped = sup.ctl("stop", "mm:*")  # the whole group: every program drains and stops cleanly
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert {n: (p["statename"], p["exitstatus"]) for n, p in sup.programs().items()} == \
        {n: ("STOPPED", 0) for n in PROCESS_NAMES}
    assert {n: _clean_stop(config.pipeline.run_dir, n) for n in PROCESS_NAMES} == dict.fromkeys(PROCESS_NAMES, True)
    assert sup.ctl("shutdown").returncode == 0
    assert sup.proc.wait(timeout=30) == 0
    assert not any(_alive(pid) for pid in sup.seen_pids)
    assert leftovers(config, sup.sock) == []


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["book", "gateway"])
def test_supervisorctl_restart_of_a_middle_stage_leaves_the_others_running_and_trading_resumes(supervised, victim):  # noqa: F811
    """A stage with an upstream that stays up stops without waiting for that upstream's end of stream
    (mm/shutdown.py upstream_staying), cleanly, within supervisord's stopwaitsecs."""
    config, path, sup = supervised
    wait_until(sup.all_running, 30, interval_s=0.1, what="six RUNNING")
    wait_until(lambda: all_alive(path), 15, interval_s=0.1, what="console shows all six alive")

    def trading() -> bool:
        status = console_status(path)
        return bool(status and status["trading"] == "active" and (console_request(path, "orders") or {}).get("open"))

    wait_until(trading, 15, interval_s=0.1, what="trading active and orders resting")
    pids = {n: p["pid"] for n, p in sup.programs().items()}
    restarted = sup.ctl("restart", f"mm:{victim}")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert _clean_stop(config.pipeline.run_dir, victim)  # its previous life stopped cleanly, in time
    programs = sup.programs()
    assert programs[victim]["statename"] == "RUNNING" and programs[victim]["pid"] != pids[victim]
    others = [n for n in PROCESS_NAMES if n != victim]
    assert {n: (programs[n]["statename"], programs[n]["pid"]) for n in others} == \
        {n: ("RUNNING", pids[n]) for n in others}
    wait_until(lambda: (s := all_alive(path)) and _row(s, victim)["pid"] == programs[victim]["pid"], 10,
               interval_s=0.05, what=f"the new {victim} alive with its five peers")
    wait_until(trading, 15, interval_s=0.1, what=f"trading active and orders resting after {victim}'s restart")
