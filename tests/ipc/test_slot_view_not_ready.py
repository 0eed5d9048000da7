"""A reader that attaches to a slot while its writer is still creating it (the segment exists, its
header does not yet: magic 0) reads nothing and tries again, instead of failing the process. Seen
under supervisord: risk, reconciling on the gateway's first venue state, attached the signal's
prediction slot mid-creation and exited 1 (LayoutMismatchError: magic is 0x0); supervisord
restarted it."""

from __future__ import annotations

import pytest

from ipc import shm, shm_layout
from ipc.seqlock import SeqlockReader, SeqlockWriter
from ipc.shm_layout import SIGNAL_DTYPE
from mm.errors import LayoutMismatchError, SegmentNotReadyError
from processes.shm_views import SlotView


def test_slot_view_of_a_slot_mid_creation_reads_nothing_then_the_value(shm_name):
    name = shm_name("prediction", writer="signal")
    segment = shm.create_segment(name, shm_layout.seqlock_segment_size(SIGNAL_DTYPE))  # zeros: no header yet
    view = SlotView(name, SIGNAL_DTYPE)
    writer = None
    try:
        with pytest.raises(SegmentNotReadyError):
            SeqlockReader.attach(name, SIGNAL_DTYPE)
        assert view.read() is False
        shm.write_header(segment, shm_layout.KIND_SEQLOCK, 1, SIGNAL_DTYPE)  # as SeqlockWriter.create goes on
        writer = SeqlockWriter(name, segment, SIGNAL_DTYPE)
        writer.publish((1, 0, 0.5, 0.0, 0.0, 0.0, 1))
        assert view.read() is True and view.seq > 0
    finally:
        view.close()
        if writer is not None:
            writer.close()
        else:
            segment.close()


def test_a_finished_header_of_another_layout_is_still_a_mismatch_not_a_wait(shm_name):
    from ipc.ring import RingWriter
    from ipc.shm_layout import TRADE_DTYPE

    name = shm_name("trades")
    writer = RingWriter.create(name, 8, TRADE_DTYPE)
    try:
        with pytest.raises(LayoutMismatchError) as refused:
            SeqlockReader.attach(name, TRADE_DTYPE)
        assert not isinstance(refused.value, SegmentNotReadyError)
    finally:
        writer.close()


def test_a_slot_whose_writer_stopped_keeps_its_last_value_until_a_successor_writes(shm_name, caplog):
    """A stopped writer unlinks its segment (mm run's end: the book before risk's last mark): the
    reader still reads the last value, without taking the gone name for a recreated segment, and
    re-attaches once a new writer creates the name again."""
    name = shm_name("prediction", writer="signal")
    writer = SeqlockWriter.create(name, SIGNAL_DTYPE)
    view = SlotView(name, SIGNAL_DTYPE)
    successor = None
    try:
        writer.publish((1, 0, 0.5, 0.0, 0.0, 0.0, 1))
        assert view.read() is True
        writer.close()  # unlinks the name
        view._next_inode_check_ns = 0  # the periodic check is due
        assert view.read() is True and view.value["predicted_return"][0] == 0.5
        assert view.reattaches == 0 and "recreated" not in caplog.text
        successor = SeqlockWriter.create(name, SIGNAL_DTYPE)
        successor.publish((2, 0, -0.25, 0.0, 0.0, 0.0, 1))
        view._next_inode_check_ns = 0
        assert view.read() is True and view.value["predicted_return"][0] == -0.25 and view.reattaches == 1
    finally:
        view.close()
        if successor is not None:
            successor.close()
