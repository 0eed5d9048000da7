"""Fixtures for the shared-memory tests: unique segment names that are always removed, polling
to a deadline, and a helper to run a separately started Python process against this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ipc.shm import unlink_segment

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shm_name():
    """Call it for a fresh `mm.<test-instance>.<writer>.<what>` name; all are unlinked after."""
    instance = f"t{os.getpid()}x{uuid.uuid4().hex[:10]}"
    names: list[str] = []

    def make(what: str = "slot", writer: str = "test") -> str:
        name = f"mm.{instance}.{writer}.{what}"
        names.append(name)
        return name

    make.instance = instance  # type: ignore[attr-defined]
    yield make
    for name in names:
        unlink_segment(name)


def _eventually(condition, timeout_s: float = 5.0, interval_s: float = 0.001) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s: {condition}")
        time.sleep(interval_s)  # polling interval, not a wait for state


@pytest.fixture
def eventually():
    return _eventually


@pytest.fixture
def python_process():
    """Start `python -c code args...` as a separately started process (not forked from pytest),
    with pipes; every process is killed and reaped after the test."""
    started: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
