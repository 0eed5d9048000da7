"""OKX `books` and Kraken `book-1000` captures in ../shared/data: every venue checksum validates,
the books end at the golden state, and a corrupted size is caught by the checksum."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mm.capture import CaptureStats
from mm.kraken_book import KrakenBook, decode_kraken_book_frame
from mm.okx_book import OkxBook, decode_okx_book_frame
from mm.venue_books import KRAKEN, OKX, build_checked_books, venue_of_file

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OKX_SET = DATA / "okx-multi-20220513.jsonl.gz"
KRAKEN_SET = DATA / "kraken-multi-20210417.jsonl.gz"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"captured data not found at {DATA} (../shared/data)"
)

# per shared/data/README.md: 290 OKX book frames (3 snapshots + 287 updates), 4 269 Kraken updates with `c`
OKX_UPDATES = {"BTC-USD-220527": 98, "BTC-USDT": 97, "UNI-USD-SWAP": 92}
KRAKEN_UPDATES = {
    "ADA/XBT": 347, "ETH/CHF": 317, "GRT/ETH": 20, "KSM/XBT": 335, "OCEAN/XBT": 148,
    "OMG/USD": 573, "SC/EUR": 818, "WAVES/EUR": 576, "XBT/CHF": 289, "XMR/USD": 846,
}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"data set {path} is absent")
    return path


def _lines(path: Path) -> list[str]:
    with gzip.open(_need(path), "rt") as f:
        return f.read().splitlines()


def test_okx_every_book_frame_checksum_validates():
    stats = CaptureStats()

    books = build_checked_books([_need(OKX_SET)], depth=10, stats=stats)

    assert {name: book["updates"] for name, book in books.items()} == OKX_UPDATES
    assert sum(book["checksum_ok"] for book in books.values()) == 290
    assert all(book["checksum_fail"] == 0 and book["gaps"] == 0 for book in books.values())
    assert all(book["synced"] and book["venue"] == OKX and book["crossed"] == 0 for book in books.values())
    assert stats.malformed_count == 0
    assert books["BTC-USDT"]["bids"][0] == ["30236.1", "0.18050747"]
    assert books["BTC-USDT"]["asks"][0] == ["30236.2", "0.001"]
    assert len(books["BTC-USDT"]["bids"]) == len(books["BTC-USDT"]["asks"]) == 10


def test_kraken_every_update_checksum_validates():
    stats = CaptureStats()

    books = build_checked_books([_need(KRAKEN_SET)], depth=10, stats=stats)

    assert {name: book["updates"] for name, book in books.items()} == KRAKEN_UPDATES
    assert sum(book["checksum_ok"] for book in books.values()) == 4269
    assert all(book["checksum_fail"] == 0 and book["synced"] for book in books.values())
    assert all(book["venue"] == KRAKEN and book["snapshots"] == 1 for book in books.values())
    assert stats.malformed_count == 0
    assert books["XMR/USD"]["bids"][0] == ["353.64000000", "30.30000000"]
    assert books["XMR/USD"]["asks"][0] == ["354.48000000", "6.86050247"]


def test_okx_book_is_never_crossed_and_every_step_validates():
    books: dict[str, OkxBook] = {}
    for line in _lines(OKX_SET):
        body = line.partition(" ")[2]
        if '"action":' not in body:
            continue
        frame = decode_okx_book_frame(body)
        book = books.setdefault(frame.arg.inst_id, OkxBook(frame.arg.inst_id))
        for outcome in book.apply_frame(frame):
            assert outcome.value in ("loaded", "applied"), book.last_error
            (best_bid, _), (best_ask, _) = book.bids.top(1)[0], book.asks.top(1)[0]
            assert best_bid < best_ask


def _corrupt_first_visible_update(lines: list[str], venue: str) -> tuple[list[str], str]:
    """Lines with one size changed: in the first update whose first level stays in the checksummed
    top (25 levels OKX, 10 Kraken) in the clean replay. Returns (lines, instrument)."""
    okx_books: dict[str, OkxBook] = {}
    kraken_books: dict[str, KrakenBook] = {}
    for index, line in enumerate(lines):
        ts, _, body = line.partition(" ")
        if venue == OKX and '"action":"update"' in body:
            frame = decode_okx_book_frame(body)
            book = okx_books[frame.arg.inst_id]
            book.apply_frame(frame)
            name = frame.arg.inst_id
            levels = frame.data[0].asks or frame.data[0].bids
            side = "asks" if frame.data[0].asks else "bids"
            top = book.asks.top_text(25) if side == "asks" else book.bids.top_text(25)
        elif venue == OKX and '"action":"snapshot"' in body:
            frame = decode_okx_book_frame(body)
            okx_books.setdefault(frame.arg.inst_id, OkxBook(frame.arg.inst_id)).apply_frame(frame)
            continue
        elif venue == KRAKEN and body.startswith("[") and '"c":' in body:
            frame = decode_kraken_book_frame(body)
            book = kraken_books[frame.pair]
            book.apply_frame(frame)
            payload = frame.payloads[0]
            levels = payload.asks or payload.bids
            side = "a" if payload.asks else "b"
            top = book.asks.top_text(10) if payload.asks else book.bids.top_text(10)
            name = frame.pair
        elif venue == KRAKEN and body.startswith("[") and '"as":' in body:
            frame = decode_kraken_book_frame(body)
            kraken_books.setdefault(frame.pair, KrakenBook(frame.pair, frame.depth)).apply_frame(frame)
            continue
        else:
            continue
        px, qty = levels[0][0], levels[0][1]
        if (px, qty) not in top:
            continue
        message = json.loads(body)
        changed = str(int(qty.replace(".", "")) + 1)  # one unit of the last decimal more
        if "." in qty:
            decimals = len(qty) - qty.index(".") - 1
            changed = changed.rjust(decimals + 1, "0")
            changed = f"{changed[:-decimals]}.{changed[-decimals:]}"
        if venue == OKX:
            message["data"][0][side][0][1] = changed
        else:
            message[1][side][0][1] = changed
        corrupted = list(lines)
        corrupted[index] = f"{ts} {json.dumps(message, separators=(',', ':'))}"
        return corrupted, name
    raise AssertionError(f"no {venue} update with a level in the checksummed top")


@pytest.mark.parametrize(("path", "venue"), [(OKX_SET, OKX), (KRAKEN_SET, KRAKEN)], ids=[OKX, KRAKEN])
def test_venue_book_corrupted_size_is_detected(tmp_path: Path, path: Path, venue: str):
    corrupted, name = _corrupt_first_visible_update(_lines(path), venue)
    changed = tmp_path / "corrupted.jsonl.gz"
    with gzip.open(changed, "wt") as f:
        f.write("\n".join(corrupted) + "\n")

    books = build_checked_books([changed], depth=10)

    assert books[name]["checksum_fail"] == 1
    assert not books[name]["synced"] and books[name]["bids"] == []  # no snapshot follows: stays invalid
    assert books[name]["unsynced"] > 0
    others = [book for other, book in books.items() if other != name]
    assert others and all(book["checksum_fail"] == 0 and book["synced"] for book in others)


def test_venue_books_two_replays_are_identical():
    paths = [_need(OKX_SET), _need(KRAKEN_SET)]

    assert build_checked_books(paths, depth=10) == build_checked_books(paths, depth=10)


def test_venue_of_file_names_each_set():
    assert venue_of_file(_need(OKX_SET)) == OKX
    assert venue_of_file(_need(KRAKEN_SET)) == KRAKEN
    for binance in DATA.glob("binance*.jsonl.gz"):
        assert venue_of_file(binance) == "binance"


def test_mm_book_cli_validates_okx_checksums():
    from tests.conftest import run_mm

    path = DATA / "okx-multi-20220513.jsonl.gz"
    if not path.exists():
        pytest.skip(f"captured feeds not found at {DATA}")
    done = run_mm("book", str(path), "--depth", "5", "--json")
    assert done.returncode == 0, done.stderr
    books = json.loads(done.stdout)
    assert sum(b["checksum_ok"] for b in books.values()) == 290
    assert all(b["checksum_fail"] == 0 and len(b["bids"]) == 5 for b in books.values())
