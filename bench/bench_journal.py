"""Journal append per record: frame encode alone, then append to a file under each fsync policy.

`always` is dominated by the disk's fsync latency; `never` is one os.write (the kernel keeps the
bytes, so a killed process loses nothing)."""

from __future__ import annotations

import pytest

from mm.journal import FsyncPolicy, encode_frame, scan
from mm.orders import VenueStatus, VenueUpdate
from processes.journal_file import JournalFile

pytestmark = pytest.mark.benchmark(group="journal")

RECORD = VenueUpdate("mm1-a123456", VenueStatus.PARTIALLY_FILLED, 50, 1_723_161_255_208_000_000,
                     venue_order_id=4_293_153, last_px_tick=6_173_763)


def test_bench_journal_encode_frame(benchmark):
    frame = benchmark(encode_frame, RECORD)
    assert scan(b"MMJRNL\x00\x01" + frame).records == [RECORD]


@pytest.mark.parametrize("mode", ["never", "interval_ms", "always"])
def test_bench_journal_append(benchmark, tmp_path, mode: str):
    journal, _ = JournalFile.open(tmp_path / f"{mode}.journal", FsyncPolicy(mode=mode, interval_ms=50))
    with journal:
        benchmark.extra_info["record"] = type(RECORD).__name__
        benchmark(journal.append, RECORD)
    journal, recovery = JournalFile.open(tmp_path / f"{mode}.journal", FsyncPolicy(mode="never"))
    journal.close()
    assert recovery.records and all(r == RECORD for r in recovery.records)
