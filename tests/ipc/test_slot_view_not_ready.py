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
