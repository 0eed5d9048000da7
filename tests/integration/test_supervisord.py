"""The pipeline under the real supervisord, from a temporary copy of supervisor.conf: all six
programs come up, a program killed with -9 is restarted and rejoins, a graceful group stop exits
every program cleanly, and shutting supervisord down leaves no segment and no socket file."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from mm.config import PROCESS_NAMES, Config
from tests.conftest import REPO_ROOT, all_alive, console_request, console_status, wait_until

pytestmark = pytest.mark.integration

BIN_DIR = Path(sys.executable).parent
SUPERVISORD = BIN_DIR / "supervisord"
SUPERVISORCTL = BIN_DIR / "supervisorctl"
MAX_UNIX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux; keep a margin


class Supervised:
    """One supervisord started by this test, driven by supervisorctl and its XML-RPC interface."""

    def __init__(self, conf: Path, sock: Path, proc: subprocess.Popen[bytes]) -> None:
        self.conf = conf
        self.sock = sock
        self.proc = proc
        self.seen_pids: set[int] = set()

    def ctl(self, *words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SUPERVISORCTL), "-c", str(self.conf), *words], capture_output=True, text=True,
                              timeout=30)

    def programs(self) -> dict[str, dict[str, Any]] | None:
        """name -> supervisor's process info (statename, pid, exitstatus), or None while it is not up."""
        rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=_transport(f"unix://{self.sock}"))
        try:  # a fresh connection each time: the transport does not recover from a failed request
            infos = rpc.supervisor.getAllProcessInfo()
        except (OSError, http.client.HTTPException, xmlrpc.client.Fault):
            return None
        out = {info["name"]: info for info in infos if info["group"] == "mm"}
        self.seen_pids.update(info["pid"] for info in out.values() if info["pid"])
        return out

    def all_running(self) -> dict[str, dict[str, Any]] | None:
        programs = self.programs()
        if programs and set(programs) == set(PROCESS_NAMES) and all(
                p["statename"] == "RUNNING" for p in programs.values()):
            return programs
        return None


def _transport(serverurl: str) -> Any:
    from supervisor.xmlrpc import SupervisorTransport

    return SupervisorTransport(None, None, serverurl)


def supervisor_conf_for_test(config_path: Path, work: Path) -> tuple[str, Path]:
    """supervisor.conf with its socket, pid file and logs under `work`, our config and interpreter."""
    text = (REPO_ROOT / "supervisor.conf").read_text()
    sv_dir = work / "sv"
    replacements = [
        ("%(here)s/run/", f"{sv_dir}/"),                        # socket, pid file, logs
        ("%(here)s/.venv/bin/python", sys.executable),
        ('MM_CONFIG="%(here)s/mm/default.toml"', f'MM_CONFIG="{config_path}"'),
    ]
    for old, new in replacements:
        assert old in text, f"supervisor.conf no longer contains {old!r}: update this test's rewrite"
        text = text.replace(old, new)
    text = re.sub(r"^directory = %\(here\)s$", f"directory = {REPO_ROOT}", text, flags=re.MULTILINE)
    assert "%(here)s" not in text, "supervisor.conf names another path under %(here)s: rewrite it here"
    (sv_dir / "logs").mkdir(parents=True)
    return text, sv_dir / "supervisor.sock"


def leftovers(config: Config, sock: Path) -> list[str]:
    shm = [p.name for p in Path("/dev/shm").glob(f"mm.{config.pipeline.name}.*")]
    run_dir = Path(config.pipeline.run_dir)
    sockets = [p.name for p in run_dir.glob("*.sock")] if run_dir.exists() else []
    return shm + sockets + ([sock.name] if sock.exists() else [])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] not in ("Z", "X")
    except (OSError, IndexError):
        return False


@pytest.fixture
def supervised(make_config, tmp_path: Path):
    if not SUPERVISORD.exists():
        pytest.skip(f"supervisord not installed next to {sys.executable} (the dev extra has it)")
    config, config_path = make_config()
    text, sock = supervisor_conf_for_test(config_path, tmp_path)
    assert len(str(sock)) < MAX_UNIX_SOCKET_PATH, f"socket path too long for AF_UNIX: {sock}"
    conf = tmp_path / "supervisor.conf"
    conf.write_text(text)
    log = (tmp_path / "supervisord.out").open("wb")
    env = {**os.environ, "MM_CONFIG": str(config_path)}
    proc = subprocess.Popen([str(SUPERVISORD), "-n", "-c", str(conf)], cwd=REPO_ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    sup = Supervised(conf, sock, proc)
    try:
        yield config, config_path, sup
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # supervisord stops its programs, then exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in sup.seen_pids:  # programs orphaned by a supervisord that did not stop them
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()


def test_supervisord_restarts_a_killed_program_and_stops_the_group_cleanly(supervised):
    config, config_path, sup = supervised
    programs = wait_until(sup.all_running, 30, interval_s=0.1, what="six programs RUNNING under supervisord")
    status = wait_until(lambda: all_alive(config_path), 15, interval_s=0.1,
                        what="console shows all six alive")
    assert {row["name"]: row["pid"] for row in status["processes"]} == {n: p["pid"] for n, p in programs.items()}

    for victim in ("book", "quoter", "signal", "gateway", "feed", "risk"):
        old_pid = sup.programs()[victim]["pid"]
        os.kill(old_pid, signal.SIGKILL)

        def restarted() -> int:
            programs = sup.all_running()
            return programs[victim]["pid"] if programs and programs[victim]["pid"] != old_pid else 0

        new_pid = wait_until(restarted, 10, interval_s=0.1, what=f"supervisord restarted {victim}")

        def rejoined() -> dict | None:
            status = all_alive(config_path)
            row = next(r for r in status["processes"] if r["name"] == victim) if status else None
            return status if row and row["pid"] == new_pid else None

        wait_until(rejoined, 10, interval_s=0.1, what=f"{victim} (pid {new_pid}) alive again with its five peers")

        def quoting_again() -> bool:
            status = console_status(config_path)
            if not status or status["trading"] != "active":
                return False
            orders = console_request(config_path, "orders")
            return bool(orders and orders["open"])

        wait_until(quoting_again, 15, interval_s=0.2, what=f"trading active and orders resting after {victim} rejoined")

        def position_agrees() -> bool:  # risk's position (journal + reconciliation) is the venue's
            status = console_status(config_path)
            return bool(status and status["venue"]) and \
                status["position"]["position_lot"] == status["venue"]["position_lot"]

        wait_until(position_agrees, 10, interval_s=0.2, what=f"no lost position after {victim} rejoined")

    stopped = sup.ctl("stop", "mm:*")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    programs = sup.programs()
    states = {name: (p["statename"], p["exitstatus"]) for name, p in programs.items()}
    assert states == {name: ("STOPPED", 0) for name in PROCESS_NAMES}
    for name in PROCESS_NAMES:  # each wrote its final stats at a clean stop
        stats = json.loads((Path(config.pipeline.run_dir) / f"{name}.stats.json").read_text())
        assert stats["clean_stop"] is True, name

    shutdown = sup.ctl("shutdown")
    assert shutdown.returncode == 0, shutdown.stdout + shutdown.stderr
    assert sup.proc.wait(timeout=30) == 0
    assert not any(_alive(pid) for pid in sup.seen_pids)
    assert leftovers(config, sup.sock) == []
