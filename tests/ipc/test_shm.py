"""Segments: crash leftovers, attachers that must not unlink, cleanup, the CPU check."""

from __future__ import annotations

import logging
import multiprocessing
import os
import platform
from pathlib import Path

import numpy as np
import pytest

from ipc import shm
from ipc.ring import RingReader, RingWriter
from ipc.seqlock import SeqlockReader, SeqlockWriter
from ipc.shm_layout import SIGNAL_DTYPE, TRADE_DTYPE

SIGNAL = (123, 7, 0.25, 100.5, 1.5, -0.125, 1)

# Starts this process's resource tracker first, so anything the attach registered would be
# unlinked by it when this process exits; prints the tracker's pid so the test can wait for it.
SEPARATE_ATTACHER = """
import sys
from multiprocessing import resource_tracker
import numpy as np
from ipc.seqlock import SeqlockReader
from ipc.shm_layout import SIGNAL_DTYPE

resource_tracker.ensure_running()
reader = SeqlockReader.attach(sys.argv[1], SIGNAL_DTYPE)
out = np.zeros(1, SIGNAL_DTYPE)
seq = reader.read(out)
reader.close()
print(resource_tracker._resource_tracker._pid, seq, int(out[0]["ts_ns"]), flush=True)
"""

# The same with the stdlib's plain attach: on Python 3.11 its tracker unlinks the segment.
SEPARATE_PLAIN_ATTACHER = """
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory

resource_tracker.ensure_running()
segment = SharedMemory(name=sys.argv[1])
segment.close()
print(resource_tracker._resource_tracker._pid, flush=True)
"""


def _segment_exists(name: str) -> bool:
    return Path(shm.SHM_DIR, name).exists()


def _is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has run its cleanup already


def _run_separate_attacher(python_process, code: str, name: str, eventually) -> list[str]:
    attacher = python_process(code, name)
    out, err = attacher.communicate(timeout=30)
    assert attacher.returncode == 0, err
    fields = out.split()
    tracker_pid = int(fields[0])
    eventually(lambda: not _is_running(tracker_pid), timeout_s=10)
    return fields


def test_shm_attach_in_separately_started_process_keeps_segment_after_exit(
    shm_name, python_process, eventually
):
    name = shm_name("signal")
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    try:
        seq = writer.publish(SIGNAL)
        fields = _run_separate_attacher(python_process, SEPARATE_ATTACHER, name, eventually)
        is_left = _segment_exists(name)
        reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
        out = np.zeros(1, SIGNAL_DTYPE)
        read_seq = reader.read(out)
        reader.close()
    finally:
        writer.close()

    assert fields[1:] == [str(seq), str(SIGNAL[0])]
    assert is_left
    assert read_seq == seq
    assert out[0].item() == SIGNAL
    assert not _segment_exists(name)  # the writer's close unlinked it


def test_shm_plain_stdlib_attach_in_separate_process_unlinks_segment(
    shm_name, python_process, eventually
):
    # Control for the test above: it shows the tracker behaviour attach_segment works around.
    name = shm_name("signal")
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    try:
        _run_separate_attacher(python_process, SEPARATE_PLAIN_ATTACHER, name, eventually)
        is_left = _segment_exists(name)
    finally:
        writer.close()

    assert not is_left


def _read_signal_in_child(name: str, expected_seq: int) -> None:
    reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
    out = np.zeros(1, SIGNAL_DTYPE)
    seq = reader.read(out)
    reader.close()
    ring = RingReader.attach(name + "-trades", TRADE_DTYPE, from_start=True)
    trades = np.zeros(4, TRADE_DTYPE)
    n = ring.poll(trades)
    ring.close()
    if (seq, out[0].item(), n, int(trades[0]["trade_id"])) != (expected_seq, SIGNAL, 1, 42):
        raise AssertionError(f"child read seq {seq} {out[0].item()}, {n} trades")


def test_shm_attach_in_forked_child_keeps_segment_after_exit(shm_name):
    name = shm_name("signal")
    trades_name = name + "-trades"
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    ring = RingWriter.create(trades_name, 8, TRADE_DTYPE)
    try:
        seq = writer.publish(SIGNAL)
        ring.push((42, 1000, 3, 1, 5, 6))
        child = multiprocessing.get_context("fork").Process(
            target=_read_signal_in_child, args=(name, seq)
        )
        child.start()
        child.join(timeout=30)
        exit_code = child.exitcode
        are_left = _segment_exists(name) and _segment_exists(trades_name)
        reader = SeqlockReader.attach(name, SIGNAL_DTYPE)
        read_seq = reader.read(np.zeros(1, SIGNAL_DTYPE))
        reader.close()
    finally:
        ring.close()
        writer.close()

    assert exit_code == 0
    assert are_left
    assert read_seq == seq
    assert not _segment_exists(name) and not _segment_exists(trades_name)


def test_shm_create_over_crash_leftover_warns_and_starts_fresh(shm_name, caplog):
    name = shm_name()
    leftover = shm.create_segment(name, 4096)
    leftover.buf[:4] = b"junk"
    leftover.close()  # a crashed writer: mapped no more, never unlinked

    with caplog.at_level(logging.WARNING, logger="ipc.shm"):
        fresh = shm.create_segment(name, 8192)
    size, head = fresh.size, bytes(fresh.buf[:4])
    fresh.close()
    shm.unlink_segment(name)

    assert size == 8192
    assert head == b"\0\0\0\0"
    assert [r.levelno for r in caplog.records if r.name == "ipc.shm"] == [logging.WARNING]


def test_shm_unlink_missing_segment_is_quiet(shm_name):
    name = shm_name()
    segment = shm.create_segment(name, 64)
    segment.close()

    shm.unlink_segment(name)
    shm.unlink_segment(name)

    assert not _segment_exists(name)


def test_shm_attach_missing_segment_raises_file_not_found(shm_name):
    with pytest.raises(FileNotFoundError):
        shm.attach_segment(shm_name())


def test_shm_cleanup_segments_removes_only_prefix(shm_name):
    names = [shm_name("book"), shm_name("trades"), shm_name("signal", writer="signal")]
    other = f"mm.other{os.getpid()}{shm_name.instance}.book.top"
    for name in [*names, other]:
        shm.create_segment(name, 64).close()
    try:
        removed = shm.cleanup_segments(f"mm.{shm_name.instance}.")
        is_other_left = _segment_exists(other)
    finally:
        shm.unlink_segment(other)

    assert removed == sorted(names)
    assert not any(_segment_exists(name) for name in names)
    assert is_other_left


def test_shm_cleanup_segments_empty_prefix_raises():
    with pytest.raises(ValueError, match="prefix"):
        shm.cleanup_segments("")


def test_shm_attach_on_weakly_ordered_cpu_raises_unless_allowed(shm_name, monkeypatch):
    name = shm_name()
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    try:
        with pytest.raises(RuntimeError, match=f"{name}.*'aarch64'.*allow_weak_memory"):
            SeqlockReader.attach(name, SIGNAL_DTYPE)
        with pytest.raises(RuntimeError, match="aarch64"):
            RingWriter.create(shm_name("trades"), 8, TRADE_DTYPE)
        reader = SeqlockReader.attach(name, SIGNAL_DTYPE, allow_weak_memory=True)
        seq = reader.read(np.zeros(1, SIGNAL_DTYPE))
        reader.close()
    finally:
        writer.close()

    assert seq == 0


def test_shm_segment_name_has_instance_writer_what():
    assert shm.segment_name("paper1", "book", "top") == "mm.paper1.book.top"
