"""Every frame of the Hyperliquid BTC recording decoded into int ticks and lots: books never
crossed, levels strictly sorted, sizes > 0, frame counts as shared/data/README.md states, and a
malformed frame is a counted drop (never a raise)."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from mm.hyperliquid_frames import BookSnapshot, Control, Dropped, TradeBatch, decode_frame, grid_for
from tests.conftest import DATA_DIR

CAPTURE = DATA_DIR / "hyperliquid-btc-20250126.jsonl.gz"
GRIDS = {"BTC": grid_for("BTC", 5)}  # BTC perp: szDecimals 5 -> tick 0.1, lot 0.00001

pytestmark = pytest.mark.skipif(
    not CAPTURE.exists(), reason=f"capture {CAPTURE} not found (../shared/data, see shared/data/README.md)"
)


def _lines(path: Path) -> list[tuple[int, bytes]]:
    with gzip.open(path, "rb") as f:
        out = []
        for line in f:
            ts, _, body = line.rstrip(b"\n").partition(b" ")
            out.append((int(ts), body))
        return out


def _decode_all(lines: list[tuple[int, bytes]]) -> tuple[list[BookSnapshot], list[TradeBatch], Counter[str]]:
    books, trades, drops = [], [], Counter()
    for ts_recv_ns, body in lines:
        match decode_frame(body, GRIDS, ts_recv_ns):
            case BookSnapshot() as book:
                books.append(book)
            case TradeBatch() as batch:
                trades.append(batch)
            case Dropped(reason=reason):
                drops[reason] += 1
            case Control():
                pass
    return books, trades, drops


@pytest.fixture(scope="module")
def lines() -> list[tuple[int, bytes]]:
    return _lines(CAPTURE)


def test_capture_decodes_every_frame_counts_match(lines):
    books, trades, drops = _decode_all(lines)
    assert (len(books), len(trades), sum(drops.values())) == (46, 9, 0)


def test_capture_books_never_crossed_sorted_positive(lines):
    books, _, _ = _decode_all(lines)
    for book in books:
        assert len(book.bids) == len(book.asks) == 20  # full 20-level snapshots
        bid_px = [px for px, _ in book.bids]
        ask_px = [px for px, _ in book.asks]
        assert bid_px == sorted(bid_px, reverse=True) and len(set(bid_px)) == 20
        assert ask_px == sorted(ask_px) and len(set(ask_px)) == 20
        assert bid_px[0] < ask_px[0], f"crossed at {book.ts_event_ns}: {bid_px[0]} >= {ask_px[0]}"
        assert all(qty > 0 for _, qty in book.bids + book.asks)
        assert all(n > 0 for n in book.bid_orders + book.ask_orders)
    assert [b.ts_event_ns for b in books] == sorted(b.ts_event_ns for b in books)


def test_capture_first_book_golden_top(lines):
    books, _, _ = _decode_all(lines)
    first = books[0]
    # README frame: bid 105055.0 x 3.03622, ask 105056.0 x 6.34472; tick 0.1, lot 0.00001
    assert first.bids[:2] == [(1050550, 303622), (1050540, 14280)]
    assert first.asks[:2] == [(1050560, 634472), (1050570, 10)]
    assert first.ts_event_ns == 1737918843542 * 1_000_000


def test_capture_trades_positive_and_on_grid(lines):
    _, batches, _ = _decode_all(lines)
    trades = [t for batch in batches for t in batch.trades]
    assert trades and all(t.qty_lot > 0 and t.px_tick > 0 for t in trades)
    assert all(t.px_tick % 10 == 0 for t in trades)  # whole dollars near 105 000 (5 significant figures)
    quoted = [t for t in trades if t.tid == 917211710228416]  # the trade HYPERLIQUID.md §4 quotes
    assert [(t.px_tick, t.qty_lot, t.is_buyer_aggressor, t.ts_event_ns) for t in quoted] == [
        (1050560, 2222, True, 1737918847000 * 1_000_000)]


def test_capture_with_malformed_frames_counts_drops(lines):
    bad = [
        (1, b"{not json"),
        (2, b'{"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":1,"px":"NaN","sz":"1"}],[]],"time":1}}'),
        (3, b'{"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":1,"px":"105057.0","sz":"1"}],'
            b'[{"n":1,"px":"105056.0","sz":"1"}]],"time":1}}'),
        (4, b'{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"105056.0","sz":"0.0","time":1,"tid":1}]}'),
        (5, b'{"channel":"l2Book","data":{"coin":"ETH","levels":[[],[]],"time":1}}'),
        (6, b'{"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":1,"px":"1.0","sz":"1"},'
            b'{"n":1,"px":"2.0","sz":"1"}],[]],"time":1}}'),
        (7, b'{"channel":"mystery","data":{}}'),
    ]
    books, trades, drops = _decode_all(lines[:10] + bad + lines[10:])
    assert (len(books), len(trades)) == (46, 9)
    assert drops == Counter({"undecodable": 2, "off_grid": 1, "crossed": 1, "zero_size": 1,
                             "unknown_coin": 1, "unsorted": 1})


def test_decode_control_frames_not_counted_as_data():
    assert decode_frame(b"Websocket connection established.", GRIDS, 0) == Control("greeting")
    assert decode_frame(b'{"channel":"pong"}', GRIDS, 0) == Control("pong")
    ack = b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}}'
    assert decode_frame(ack, GRIDS, 0) == Control("subscriptionResponse")
