import zlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.errors import JournalFormatError
from mm.journal import (
    FRAME,
    HEADER,
    AuditEntry,
    FillRecorded,
    FsyncPolicy,
    PositionSnapshot,
    Tail,
    encode_frame,
    is_sync_due,
    scan,
)
from mm.orders import (
    CancelRejected,
    CancelRequested,
    OrderNotFound,
    OrderSent,
    OrderSubmitted,
    RequestTimedOut,
    Side,
    VenueStatus,
    VenueUpdate,
)
from processes.journal_file import JournalFile

RECORDS = [
    OrderSubmitted("mm1-a1", "BTCUSDT", Side.BUY, 6_173_763, 150, 1_000),
    OrderSent("mm1-a1", 1_001),
    VenueUpdate("mm1-a1", VenueStatus.PARTIALLY_FILLED, 50, 1_002, venue_order_id=99, last_px_tick=6_173_763),
    FillRecorded("mm1-a1", "BTCUSDT", Side.BUY, 6_173_763, 50, -0.0012, 3_735_683_259, 1_002),
    RequestTimedOut("mm1-a2", 1_003),
    CancelRequested("mm1-a1", 1_004),
    CancelRejected("mm1-a1", 1_005, "Unknown order sent."),
    OrderNotFound("mm1-a2", 1_006),
    PositionSnapshot("BTCUSDT", 50, 308_688_150.0, 0.0, -0.0012, 50, 1, 1_007, {"USDT": "1000.5"}),
    AuditEntry(1_008, "console:alice", "set quoter.half_spread_bps", "2.0", "2.5"),
]


def journal_bytes(records: list) -> bytes:
    return HEADER + b"".join(encode_frame(r) for r in records)


def test_scan_round_trip_every_record_kind():
    data = journal_bytes(RECORDS)
    recovery = scan(data)
    assert recovery.records == RECORDS
    assert (recovery.tail, recovery.good_length, recovery.dropped_bytes) == (Tail.CLEAN, len(data), 0)


def test_scan_empty_file_is_a_new_journal():
    recovery = scan(b"")
    assert (recovery.tail, recovery.records, recovery.good_length) == (Tail.EMPTY, [], 0)


def test_scan_partial_header_is_truncated_to_zero():
    recovery = scan(HEADER[:5])
    assert (recovery.tail, recovery.good_length, recovery.dropped_bytes) == (Tail.TRUNCATED, 0, 5)


def test_scan_truncated_tail_at_every_byte_of_the_last_record_keeps_the_rest():
    data = journal_bytes(RECORDS)
    last = len(encode_frame(RECORDS[-1]))
    good_length = len(data) - last
    for cut in range(1, last):
        recovery = scan(data[: len(data) - cut])
        assert recovery.records == RECORDS[:-1], cut
        assert (recovery.tail, recovery.good_length, recovery.dropped_bytes) == (Tail.TRUNCATED, good_length, last - cut)


@pytest.mark.parametrize("byte_in_frame", [4, 5, 7, FRAME.size, FRAME.size + 3, -1])
def test_scan_corrupted_checksum_or_payload_cuts_from_that_record(byte_in_frame: int):
    data = bytearray(journal_bytes(RECORDS))
    start = len(journal_bytes(RECORDS[:6]))
    end = len(journal_bytes(RECORDS[:7]))
    position = start + byte_in_frame if byte_in_frame >= 0 else end + byte_in_frame
    data[position] ^= 0x40
    recovery = scan(bytes(data))
    assert recovery.tail is Tail.CORRUPT and "offset" in recovery.detail
    assert recovery.records == RECORDS[:6] and recovery.good_length == start


def test_scan_impossible_length_is_corrupt():
    data = journal_bytes(RECORDS[:2]) + (0xFFFFFFF0).to_bytes(4, "little") + b"\0" * 20
    recovery = scan(data)
    assert recovery.tail is Tail.CORRUPT and recovery.records == RECORDS[:2]


def test_scan_other_file_raises_format_error():
    with pytest.raises(JournalFormatError, match="not a journal"):
        scan(b"PK\x03\x04 a zip file, not ours")


def test_scan_good_checksum_but_unknown_record_raises_format_error():
    payload = msgspec.msgpack.encode(["futurerecord", 1, 2])
    length = len(payload).to_bytes(4, "little")
    frame = length + zlib.crc32(payload, zlib.crc32(length)).to_bytes(4, "little") + payload
    with pytest.raises(JournalFormatError, match="another version"):
        scan(journal_bytes(RECORDS[:1]) + frame)


record_strategy = st.one_of(
    st.builds(OrderSent, st.text(max_size=36), st.integers(0, 2**63 - 1)),
    st.builds(VenueUpdate, st.text(max_size=36), st.sampled_from(VenueStatus), st.integers(0, 10**12),
              st.integers(0, 2**63 - 1), st.integers(-1, 2**62), st.integers(0, 10**12), st.text(max_size=40)),
    st.builds(AuditEntry, st.integers(0, 2**63 - 1), st.text(max_size=20), st.text(max_size=40),
              st.text(max_size=40), st.text(max_size=40)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(record_strategy, max_size=20), st.binary(max_size=64))
def test_scan_good_records_survive_any_garbage_tail(records: list, garbage: bytes):
    good = journal_bytes(records)
    recovery = scan(good + garbage)
    assert recovery.records[: len(records)] == records
    assert recovery.good_length >= len(good)
    if not garbage:
        assert recovery.tail is Tail.CLEAN


def test_fsync_policy_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'mode'"):
        FsyncPolicy(mode="sometimes")


def test_is_sync_due_by_policy():
    interval = FsyncPolicy(mode="interval_ms", interval_ms=10)
    assert is_sync_due(FsyncPolicy(mode="always"), True, 0, 0)
    assert not is_sync_due(FsyncPolicy(mode="never"), True, 0, 10**12)
    assert not is_sync_due(interval, True, 0, 9_999_999) and is_sync_due(interval, True, 0, 10_000_000)
    assert not is_sync_due(interval, False, 0, 10**12)


# ---- the file shell ----

@pytest.mark.parametrize("mode", ["always", "interval_ms", "never"])
def test_journal_file_append_close_reopen_recovers_records(tmp_path, mode: str):
    path = tmp_path / "gateway.journal"
    journal, recovery = JournalFile.open(path, FsyncPolicy(mode=mode, interval_ms=5))
    assert recovery.tail is Tail.EMPTY
    with journal:
        for record in RECORDS[:5]:
            journal.append(record)
        journal.append_many(RECORDS[5:])
    assert path.stat().st_mode & 0o777 == 0o600
    journal, recovery = JournalFile.open(path, FsyncPolicy(mode=mode))
    journal.close()
    assert recovery.records == RECORDS and recovery.tail is Tail.CLEAN


def test_journal_file_torn_tail_is_cut_and_appends_continue(tmp_path):
    path = tmp_path / "gateway.journal"
    with JournalFile.open(path, FsyncPolicy(mode="never"))[0] as journal:
        journal.append_many(RECORDS)
    full = path.read_bytes()
    path.write_bytes(full[:-3])  # a crash in the middle of the last write
    journal, recovery = JournalFile.open(path, FsyncPolicy(mode="always"))
    assert recovery.tail is Tail.TRUNCATED and recovery.records == RECORDS[:-1]
    assert path.stat().st_size == recovery.good_length
    journal.append(RECORDS[-1])
    journal.close()
    assert path.read_bytes() == full


def test_journal_file_refuses_a_file_that_is_not_a_journal(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is not a journal")
    with pytest.raises(JournalFormatError):
        JournalFile.open(path, FsyncPolicy())
    assert path.read_bytes() == b"hello, this is not a journal"
