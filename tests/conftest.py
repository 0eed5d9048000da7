"""Shared fixtures: a unique pipeline config per test, polling to a deadline, the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mm.config import Config, dump_toml, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def bench_module(name: str) -> Any:
    """bench/<name>.py, imported by path (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checked(condition: Callable[[], Any], deadline: float, timeout_s: float, what: str) -> Any:
    """`condition()`, failing the test when it is still false past `deadline`."""
    value = condition()
    if not value and time.monotonic() > deadline:
        raise AssertionError(f"not true within {timeout_s} s: {what or condition}")
    return value


def wait_until(condition: Callable[[], Any], timeout_s: float, interval_s: float = 0.02, what: str = "") -> Any:
    """Poll `condition` until it returns a truthy value or the deadline passes (then fail)."""
    deadline = time.monotonic() + timeout_s
    while not (value := _checked(condition, deadline, timeout_s, what)):
        time.sleep(interval_s)  # polling interval of a deadline loop, not a wait for state
    return value


async def wait_until_async(condition: Callable[[], Any], timeout_s: float, what: str = "",
                           interval_s: float = 0.01) -> Any:
    """`wait_until` inside an event loop: the loop keeps serving while we poll to the deadline."""
    deadline = time.monotonic() + timeout_s
    while not (value := _checked(condition, deadline, timeout_s, what)):
        await asyncio.sleep(interval_s)  # polling interval of a deadline loop, not a wait for state
    return value


def run_async(coro_fn: Callable[[], Any], timeout_s: float) -> Any:
    """Run a test's coroutine on a fresh loop, failing it (not hanging) past `timeout_s`."""
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout_s)
    return asyncio.run(bounded())


@pytest.fixture
def eventually() -> Callable[..., Any]:
    return wait_until


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., tuple[Config, Path]]:
    """Write a config with a unique pipeline name and run dir under tmp_path; returns (config, path)."""

    def make(**sections: dict[str, Any]) -> tuple[Config, Path]:
        base = load_config()
        data = msgspec.to_builtins(base)
        data["pipeline"]["name"] = f"t{os.getpid()}{uuid.uuid4().hex[:6]}"
        data["pipeline"]["run_dir"] = str(tmp_path / "run")
        data["metrics"]["port"] = 0
        # MM_TEST_CRITICAL_PATH=shm|zmq runs a test over either critical-path transport
        data["ipc"]["critical_path"] = os.environ.get("MM_TEST_CRITICAL_PATH", data["ipc"]["critical_path"])
        for section, values in sections.items():
            data[section].update(values)
        config = msgspec.convert(data, type=Config)
        path = tmp_path / "mm.toml"
        path.write_text(dump_toml(config))
        return config, path

    return make


def mm_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mm.cli", *args]


def run_mm(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(mm_command(*args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def console_request(config_path: Path, command: str, *args: str) -> Any:
    """The control endpoint's result for `command` (what `mm console <command> --json` prints), or None
    when it does not answer or refuses. In this process: a poll loop that started `mm console` each time
    (0.4 s of CPU) took that CPU from the pipeline under test. Tests of the console itself run the CLI."""
    from ipc.console_client import ControlClient, ControlUnreachableError

    with ControlClient(load_config(config_path), timeout_ms=500) as client:
        try:
            reply = client.request(command, list(args))
        except ControlUnreachableError:
            return None
    return reply.result if reply.ok else None


def console_status(config_path: Path) -> dict | None:
    """`mm console status --json` of the pipeline of `config_path`, or None when it does not answer."""
    return console_request(config_path, "status")


def all_alive(config_path: Path) -> dict | None:
    """The status when all six processes are alive, else None (for wait_until)."""
    status = console_status(config_path)
    if status and all(row["alive"] for row in status["processes"]):
        return status
    return None


def wait_pipeline_up(proc: subprocess.Popen, config_path: Path, timeout_s: float, what: str = "pipeline up") -> dict:
    """`all_alive` to a deadline, failing at once with `mm run`'s stderr when it has exited instead."""
    def up() -> dict | None:
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"{what}: `mm run` exited {proc.returncode} first; stderr: {(err or '')[-2000:]}")
        return all_alive(config_path)

    return wait_until(up, timeout_s, what=what)


def stop_pipeline(proc: subprocess.Popen) -> None:
    """SIGTERM to `mm run` (a graceful stop), killed only if it does not end within 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
