"""KrakenBook: the Kraken v1 book checksum on every update, depth truncation, resync by snapshot."""

from __future__ import annotations

import zlib

import msgspec
import pytest

from mm.kraken_book import KrakenBook, compute_kraken_checksum, decode_kraken_book_frame
from mm.okx_book import BookCheck

ASKS = [("0.05005", "0.00000500"), ("0.05010", "0.00500000")]
BIDS = [("0.05000", "0.00000500"), ("0.04995", "0.01000000")]
# top asks then top bids, '.' removed, leading zeros stripped, price then volume
CHECKSUM_TEXT = "5005500" + "5010500000" + "5000500" + "49951000000"


def _crc(text: str) -> str:
    return str(zlib.crc32(text.encode()))


def _body(*payloads: dict, depth: int = 1000) -> bytes:
    return msgspec.json.encode([336, *payloads, f"book-{depth}", "XBT/USD"])


def _snapshot(asks=ASKS, bids=BIDS, depth: int = 1000) -> bytes:
    return _body(
        {"as": [[px, qty, "1618678133.365913"] for px, qty in asks],
         "bs": [[px, qty, "1618678133.365913"] for px, qty in bids]},
        depth=depth,
    )


def _apply(book: KrakenBook, body: bytes) -> BookCheck:
    return book.apply_frame(decode_kraken_book_frame(body))


def _loaded() -> KrakenBook:
    book = KrakenBook("XBT/USD")
    assert _apply(book, _snapshot()) is BookCheck.LOADED
    return book


def test_kraken_checksum_is_crc32_of_asks_then_bids_without_dots_and_leading_zeros():
    assert compute_kraken_checksum(ASKS, BIDS) == zlib.crc32(CHECKSUM_TEXT.encode())


def test_kraken_checksum_uses_only_the_top_10_levels():
    asks = [(f"{100 + i}.0", "1.0") for i in range(12)]
    bids = [(f"{99 - i}.0", "1.0") for i in range(12)]
    text = "".join(f"{100 + i}010" for i in range(10)) + "".join(f"{99 - i}010" for i in range(10))

    assert compute_kraken_checksum(asks, bids) == zlib.crc32(text.encode())


def test_kraken_book_snapshot_loads_best_first():
    book = _loaded()

    assert book.is_synced
    assert book.top_text(10) == (BIDS, ASKS)
    assert (book.snapshots, book.updates, book.checksum_ok) == (1, 0, 0)  # a snapshot has no `c`


def test_kraken_book_update_with_correct_checksum_applies():
    book = _loaded()
    text = "5005500" + "5010500000" + "5000200" + "49951000000"  # bid 0.05000 now 0.00000200
    update = _body({"b": [["0.05000", "0.00000200", "1618678134.1"]], "c": _crc(text)})

    outcome = _apply(book, update)

    assert outcome is BookCheck.APPLIED
    assert book.top_text(1)[0] == [("0.05000", "0.00000200")]
    assert (book.updates, book.checksum_ok, book.checksum_fail) == (1, 1, 0)


def test_kraken_book_frame_with_asks_and_bids_payloads_applies_both_then_checks():
    book = _loaded()
    text = "5010500000" + "5000500" + "49951000000"  # ask 0.05005 removed, bid 0.04995 kept
    update = _body(
        {"a": [["0.05005", "0.00000000", "1618678134.1"]]},
        {"b": [["0.04990", "0.00000000", "1618678134.1"]], "c": _crc(text)},
    )

    assert _apply(book, update) is BookCheck.APPLIED
    assert book.top_text(10)[1] == [("0.05010", "0.00500000")]


def test_kraken_book_republished_level_applies():
    book = _loaded()
    text = "5005500" + "5010500000" + "5015100000000" + "5000500" + "49951000000"
    update = _body({"a": [["0.05015", "1.00000000", "1618678134.1", "r"]], "c": _crc(text)})

    assert _apply(book, update) is BookCheck.APPLIED
    assert len(book.asks) == 3


def test_kraken_book_update_with_changed_qty_fails_checksum_and_drops_until_snapshot():
    book = _loaded()
    # the venue's checksum is for a volume of 0.00000200; the frame we got says 0.00000300
    update = _body(
        {"b": [["0.05000", "0.00000300", "1618678134.1"]],
         "c": _crc("5005500" + "5010500000" + "5000200" + "49951000000")}
    )

    outcome = _apply(book, update)
    later = _apply(book, _body({"a": [["0.05005", "0.00000100", "1"]], "c": "0"}))

    assert outcome is BookCheck.CHECKSUM_FAIL
    assert later is BookCheck.UNSYNCED
    assert not book.is_synced and book.top_text(10) == ([], [])
    assert (book.checksum_ok, book.checksum_fail, book.unsynced) == (0, 1, 1)
    assert "XBT/USD" in book.last_error


def test_kraken_book_snapshot_after_failure_recovers():
    book = _loaded()
    _apply(book, _body({"b": [["0.05000", "0.00000300", "1"]], "c": "12345"}))

    outcome = _apply(book, _snapshot())
    update = _body({"b": [["0.05000", "0.00000200", "1"]],
                    "c": _crc("5005500" + "5010500000" + "5000200" + "49951000000")})

    assert outcome is BookCheck.LOADED and book.is_synced
    assert _apply(book, update) is BookCheck.APPLIED
    assert (book.snapshots, book.checksum_ok, book.checksum_fail) == (2, 1, 1)


def test_kraken_book_keeps_its_depth_and_checks_after_truncating():
    asks = [(f"{100 + i}.0", "1.0") for i in range(10)]
    bids = [(f"{99 - i}.0", "1.0") for i in range(10)]
    book = KrakenBook("XBT/USD", depth=10)
    assert _apply(book, _snapshot(asks, bids, depth=10)) is BookCheck.LOADED
    # a better ask pushes 109.0 out of the 10-level book
    text = "99520" + "".join(f"{100 + i}010" for i in range(9)) + "".join(f"{99 - i}010" for i in range(10))
    update = _body({"a": [["99.5", "2.0", "1"]], "c": _crc(text)}, depth=10)

    outcome = _apply(book, update)

    assert outcome is BookCheck.APPLIED
    assert len(book.asks) == 10
    assert book.top_text(10)[1][-1] == ("108.0", "1.0")


def test_kraken_book_value_off_the_grid_is_rejected():
    book = _loaded()  # prices at 5 decimals, volumes at 8

    outcome = _apply(book, _body({"b": [["0.050001", "1.00000000", "1"]], "c": "0"}))

    assert outcome is BookCheck.REJECTED and book.rejected == 1 and not book.is_synced
    assert "0.050001" in book.last_error


def test_kraken_book_update_before_snapshot_is_unsynced():
    book = KrakenBook("XBT/USD")

    assert _apply(book, _body({"b": [["0.05000", "1.00000000", "1"]], "c": "0"})) is BookCheck.UNSYNCED


def test_kraken_book_depth_below_checksum_levels_raises():
    with pytest.raises(ValueError, match="'depth' must be >= 10, was 5"):
        KrakenBook("XBT/USD", depth=5)


def test_kraken_decoder_skips_other_channels_and_rejects_event_objects():
    assert decode_kraken_book_frame(b'[0,[["5541.3","0.1","1534614057.3","s","l",""]],"trade","XBT/USD"]') is None
    with pytest.raises(msgspec.DecodeError):
        decode_kraken_book_frame(b'{"event":"heartbeat"}')
    frame = decode_kraken_book_frame(_snapshot(depth=25))
    assert (frame.pair, frame.depth, frame.channel_id) == ("XBT/USD", 25, 336)
