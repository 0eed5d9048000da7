"""OkxBook: the OKX v5 `books` checksum on every frame, seqId continuity, resync by snapshot."""

from __future__ import annotations

import zlib

import msgspec
import pytest

from mm.okx_book import BookCheck, OkxBook, compute_okx_checksum, decode_okx_book_frame


def _signed_crc(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - 2**32 if crc >= 2**31 else crc


def _frame(action: str, bids, asks, checksum_text: str, **seq) -> bytes:
    data = {
        "asks": [[px, sz, "0", "1"] for px, sz in asks],
        "bids": [[px, sz, "0", "1"] for px, sz in bids],
        "ts": "1652459225507",
        "checksum": _signed_crc(checksum_text),
        **seq,
    }
    return msgspec.json.encode(
        {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [data]}
    )


SNAPSHOT = _frame(
    "snapshot",
    bids=[("3366.1", "7"), ("3366", "6")],
    asks=[("3366.8", "9"), ("3368", "8")],
    checksum_text="3366.1:7:3366.8:9:3366:6:3368:8",  # OKX docs' example string
)


def _apply(book: OkxBook, body: bytes) -> BookCheck:
    (outcome,) = book.apply_frame(decode_okx_book_frame(body))
    return outcome


def _loaded() -> OkxBook:
    book = OkxBook("BTC-USDT")
    assert _apply(book, SNAPSHOT) is BookCheck.LOADED
    return book


def test_okx_checksum_interleaves_bid_and_ask_levels_as_signed_crc32():
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8")]

    checksum = compute_okx_checksum(bids, asks)

    assert checksum == _signed_crc("3366.1:7:3366.8:9:3366:6:3368:8")
    assert -(2**31) <= checksum < 2**31


def test_okx_checksum_uneven_sides_skips_the_missing_levels():
    assert compute_okx_checksum([("1.5", "2"), ("1.4", "3")], [("1.6", "1")]) == _signed_crc(
        "1.5:2:1.6:1:1.4:3"
    )


def test_okx_checksum_uses_only_the_top_25_levels():
    bids = [(str(1000 - i), "1") for i in range(30)]
    asks = [(str(2000 + i), "1") for i in range(30)]
    text = ":".join(f"{b[0]}:1:{a[0]}:1" for b, a in zip(bids[:25], asks[:25]))

    assert compute_okx_checksum(bids, asks) == _signed_crc(text)


def test_okx_book_snapshot_with_correct_checksum_loads():
    book = _loaded()

    assert book.is_synced
    assert book.top_text(10) == ([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
    assert (book.snapshots, book.checksum_ok, book.checksum_fail) == (1, 1, 0)


def test_okx_book_update_with_correct_checksum_applies_absolute_sizes_and_removals():
    book = _loaded()
    update = _frame(
        "update",
        bids=[("3366", "0"), ("3365.5", "2")],  # remove 3366, add 3365.5
        asks=[("3366.8", "4")],  # absolute size
        checksum_text="3366.1:7:3366.8:4:3365.5:2:3368:8",
    )

    outcome = _apply(book, update)

    assert outcome is BookCheck.APPLIED
    assert book.top_text(10) == ([("3366.1", "7"), ("3365.5", "2")], [("3366.8", "4"), ("3368", "8")])
    assert (book.updates, book.checksum_ok, book.checksum_fail) == (1, 2, 0)


def test_okx_book_update_with_changed_qty_fails_checksum_and_drops_until_snapshot():
    book = _loaded()
    # the venue's checksum says 3366.8 has 4; the frame we got says 5 (a corrupted size)
    corrupted = _frame(
        "update", bids=[], asks=[("3366.8", "5")], checksum_text="3366.1:7:3366.8:4:3366:6:3368:8"
    )

    outcome = _apply(book, corrupted)
    later = _apply(book, _frame("update", bids=[], asks=[], checksum_text=""))

    assert outcome is BookCheck.CHECKSUM_FAIL
    assert later is BookCheck.UNSYNCED
    assert not book.is_synced and book.top_text(10) == ([], [])
    assert (book.checksum_ok, book.checksum_fail, book.unsynced) == (1, 1, 1)
    assert "venue" in book.last_error and "BTC-USDT" in book.last_error


def test_okx_book_snapshot_after_failure_recovers():
    book = _loaded()
    _apply(book, _frame("update", bids=[], asks=[("3366.8", "5")], checksum_text="wrong"))

    outcome = _apply(book, SNAPSHOT)

    assert outcome is BookCheck.LOADED
    assert book.is_synced
    assert book.top_text(1) == ([("3366.1", "7")], [("3366.8", "9")])
    assert (book.snapshots, book.checksum_ok, book.checksum_fail) == (2, 2, 1)


def test_okx_book_snapshot_with_wrong_checksum_fails():
    book = OkxBook("BTC-USDT")
    body = _frame("snapshot", bids=[("10", "1")], asks=[("11", "1")], checksum_text="10:1:11:2")

    assert _apply(book, body) is BookCheck.CHECKSUM_FAIL
    assert not book.is_synced and book.checksum_fail == 1


def test_okx_book_update_before_snapshot_is_unsynced():
    book = OkxBook("BTC-USDT")

    outcome = _apply(book, _frame("update", bids=[("10", "1")], asks=[], checksum_text="10:1"))

    assert outcome is BookCheck.UNSYNCED and book.unsynced == 1 and book.updates == 0


@pytest.mark.parametrize(
    ("prev_seq_id", "expected"), [(5, BookCheck.APPLIED), (4, BookCheck.GAP), (7, BookCheck.GAP)]
)
def test_okx_book_prev_seq_id_must_continue_seq_id(prev_seq_id, expected):
    book = OkxBook("BTC-USDT")
    snapshot = _frame("snapshot", [("10", "1")], [("11", "1")], "10:1:11:1", seqId=5, prevSeqId=-1)
    assert _apply(book, snapshot) is BookCheck.LOADED
    update = _frame("update", [("10", "2")], [], "10:2:11:1", seqId=9, prevSeqId=prev_seq_id)

    outcome = _apply(book, update)

    assert outcome is expected
    assert book.gaps == (expected is BookCheck.GAP)
    assert book.is_synced == (expected is BookCheck.APPLIED)


def test_okx_book_keepalive_update_with_equal_seq_ids_applies():
    book = OkxBook("BTC-USDT")
    _apply(book, _frame("snapshot", [("10", "1")], [("11", "1")], "10:1:11:1", seqId=5, prevSeqId=-1))

    outcome = _apply(book, _frame("update", [], [], "10:1:11:1", seqId=5, prevSeqId=5))

    assert outcome is BookCheck.APPLIED and book.gaps == 0


def test_okx_book_value_off_the_snapshot_grid_is_rejected():
    book = _loaded()  # prices written with at most 1 decimal, sizes with none

    outcome = _apply(book, _frame("update", [("3366.15", "1")], [], "x"))

    assert outcome is BookCheck.REJECTED
    assert book.rejected == 1 and not book.is_synced
    assert "3366.15" in book.last_error


def test_okx_book_negative_size_is_rejected():
    book = _loaded()

    assert _apply(book, _frame("update", [("3366", "-1")], [], "x")) is BookCheck.REJECTED


def test_okx_book_decoder_rejects_a_non_book_frame():
    with pytest.raises(msgspec.DecodeError):
        decode_okx_book_frame(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}')
