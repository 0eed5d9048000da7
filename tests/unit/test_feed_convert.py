"""The one converter: Binance frames and the checked books of OKX, Kraken and Hyperliquid become
the feed messages the book stage syncs on, or a named drop; a refused frame reaches the book stage
as a gap, so its book goes invalid together with the venue's."""

from __future__ import annotations

import json

import msgspec

from ipc.messages import BookSnapshot, DepthDiff, Trade
from mm.book_sync import BookSync, Outcome
from mm.capture import DepthSnapshot, DepthUpdate
from mm.kraken_book import compute_kraken_checksum
from mm.okx_book import compute_okx_checksum
from mm.ticks import TickGrid
from processes.feed_convert import CheckedBookFeed, Drop, binance_message, symbol_name

GRID = TickGrid("BTC-USDT", 1, 2)  # tick 0.1, lot 0.01


def okx_frame(action: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
              book_bids: list[tuple[str, str]], book_asks: list[tuple[str, str]], checksum: int | None = None) -> bytes:
    """An OKX `books` push; the checksum is the venue's over `book_*` (the book after the push)."""
    crc = compute_okx_checksum(book_bids, book_asks) if checksum is None else checksum
    data = {"asks": [[p, q, "0", "1"] for p, q in asks], "bids": [[p, q, "0", "1"] for p, q in bids],
            "ts": "1652459225464", "checksum": crc}
    return json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [data]}).encode()


def sync_all(sync: BookSync, messages: list) -> list[Outcome]:
    outcomes = []
    for m in messages:
        if isinstance(m, BookSnapshot):
            outcomes.append(sync.on_snapshot(m.last_id, m.bids, m.asks))
        elif isinstance(m, DepthDiff):
            outcomes.append(sync.on_diff(m.first_id, m.final_id, m.prev_final_id, m.bids, m.asks))
    return outcomes


def test_okx_snapshot_then_changes_then_a_bad_checksum_is_a_gap():
    feed = CheckedBookFeed("okx", "BTC-USDT", GRID)
    sync = BookSync("BTC-USDT")
    bids, asks = [("100.1", "1.5"), ("100", "2")], [("100.2", "1"), ("100.3", "3")]
    first = feed.convert(okx_frame("snapshot", bids, asks, bids, asks), 10, 0)
    assert [type(m) for m in first] == [BookSnapshot] and first[0].last_id == 1
    assert first[0].bids == [(1001, 150), (1000, 200)] and first[0].asks == [(1002, 100), (1003, 300)]
    # 100.1 leaves the bids, 100.2 changes size
    after_bids, after_asks = [("100", "2")], [("100.2", "0.5"), ("100.3", "3")]
    second = feed.convert(okx_frame("update", [("100.1", "0")], [("100.2", "0.5")], after_bids, after_asks), 20, 0)
    assert len(second) == 1 and isinstance(second[0], DepthDiff)
    assert (second[0].first_id, second[0].final_id, second[0].prev_final_id) == (2, 2, -1)
    assert sorted(second[0].bids) == [(1001, 0)] and second[0].asks == [(1002, 50)]
    assert sync_all(sync, first + second) == [Outcome.LOADED, Outcome.APPLIED]
    assert sync.book.best_bid() == (1000, 200) and sync.book.best_ask() == (1002, 50)
    # the venue's checksum disagrees: the venue book is invalid, and so is ours at once
    bad = feed.convert(okx_frame("update", [("99.9", "1")], [], after_bids, after_asks, checksum=12345), 30, 0)
    assert isinstance(bad[0], DepthDiff) and bad[0].bids == [] and bad[0].asks == []
    assert bad[1] == Drop("checksum_fail", bad[1].detail) and "checksum" in bad[1].detail
    assert sync_all(sync, bad) == [Outcome.GAP] and not sync.is_synced
    # updates until the next snapshot are dropped, named
    assert feed.convert(okx_frame("update", [("99.8", "1")], [], [], []), 40, 0)[0].reason == "unsynced"
    again = feed.convert(okx_frame("snapshot", bids, asks, bids, asks), 50, 0)
    assert isinstance(again[0], BookSnapshot) and again[0].last_id > bad[0].final_id
    assert sync_all(sync, again) == [Outcome.LOADED] and sync.book.best_bid() == (1001, 150)


def test_okx_trades_and_other_instruments():
    feed = CheckedBookFeed("okx", "BTC-USDT", GRID)
    trades = json.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [
        {"instId": "BTC-USDT", "tradeId": "7849", "px": "100.1", "sz": "0.5", "side": "sell", "ts": "1652459199958"}]})
    [trade] = feed.convert(trades.encode(), 5, 7)
    assert trade == Trade(symbol="BTC-USDT", trade_id=7849, px_tick=1001, qty_lot=50, taker_side=-1,
                          ts_event_ns=1652459199958 * 1_000_000, ts_recv_ns=5, ts_feed_ns=7)
    other = okx_frame("snapshot", [("1", "1")], [("2", "1")], [("1", "1")], [("2", "1")]).replace(b"BTC-USDT", b"ETH-USDT")
    assert feed.convert(other, 1, 0) == []
    assert feed.convert(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}', 1, 0) == []
    off_grid = okx_frame("snapshot", [("100.15", "1")], [("100.2", "1")], [("100.15", "1")], [("100.2", "1")])
    [drop] = feed.convert(off_grid, 1, 0)
    assert drop.reason == "rejected" and "100.15" in drop.detail
    assert feed.convert(b'{"arg":{"instId":"BTC-USDT"', 1, 0)[0].reason == "decode_error"


def test_kraken_book_with_checksums_and_trades():
    grid = TickGrid("XBT-USD", 1, 8)
    feed = CheckedBookFeed("kraken", "XBT/USD", grid)
    assert feed.symbol == symbol_name("XBT/USD") == "XBT-USD"
    asks, bids = [["100.2", "1.00000000", "1618678135.0"]], [["100.1", "2.00000000", "1618678135.0"]]
    snap = json.dumps([7, {"as": asks, "bs": bids}, "book-10", "XBT/USD"]).encode()
    [snapshot] = feed.convert(snap, 1, 0)
    assert snapshot.bids == [(1001, 200000000)] and snapshot.asks == [(1002, 100000000)]
    crc = compute_kraken_checksum([("100.2", "0.50000000")], [("100.1", "2.00000000")])
    update = json.dumps([7, {"a": [["100.2", "0.50000000", "1618678136.0"]], "c": str(crc)}, "book-10", "XBT/USD"])
    [diff] = feed.convert(update.encode(), 2, 0)
    assert diff.asks == [(1002, 50000000)] and diff.bids == [] and diff.final_id == 2
    wrong = update.replace(str(crc), str(crc ^ 1))
    gap, drop = feed.convert(wrong.encode(), 3, 0)
    assert isinstance(gap, DepthDiff) and gap.first_id == 4 and drop.reason == "checksum_fail"
    trade = json.dumps([8, [["100.1", "0.1", "1618678137.250000", "b", "l", ""]], "trade", "XBT/USD"])
    [t] = feed.convert(trade.encode(), 4, 0)
    assert (t.trade_id, t.px_tick, t.qty_lot, t.taker_side, t.ts_event_ns) == (1, 1001, 10000000, 1, 1618678137250000000)
    [off] = feed.convert(trade.replace('"100.1"', '"100.15"').encode(), 5, 0)
    assert off.reason == "off_grid" and "100.15" in off.detail


def test_hyperliquid_pushes_are_whole_books_a_refused_one_keeps_the_last():
    grid = TickGrid("BTC", 0, 5)
    feed = CheckedBookFeed("hyperliquid", "BTC", grid)

    def push(bids: list[tuple[str, str]], asks: list[tuple[str, str]], time_ms: int) -> bytes:
        side = lambda levels: [{"px": p, "sz": s, "n": 1} for p, s in levels]  # noqa: E731
        return msgspec.json.encode({"channel": "l2Book", "data": {"coin": "BTC", "levels": [side(bids), side(asks)],
                                                                  "time": time_ms}})

    [snap] = feed.convert(push([("105055", "1")], [("105056", "2")], 1000), 1, 0)
    assert isinstance(snap, BookSnapshot) and snap.ts_event_ns == 1000 * 1_000_000
    [diff] = feed.convert(push([("105054", "1")], [("105056", "2")], 1001), 2, 0)
    assert sorted(diff.bids) == [(105054, 100000), (105055, 0)] and diff.asks == []
    [crossed] = feed.convert(push([("105057", "1")], [("105056", "2")], 1002), 3, 0)
    assert crossed.reason == "crossed"
    [stale] = feed.convert(push([("105054", "1")], [("105056", "2")], 900), 4, 0)
    assert stale.reason == "stale"
    assert feed.convert(push([("105054", "1")], [("105056", "2")], 1003), 5, 0) == []  # nothing changed
    trades = msgspec.json.encode({"channel": "trades", "data": [
        {"coin": "BTC", "side": "B", "px": "105056", "sz": "0.001", "time": 1004, "tid": 99, "hash": "0x", "users": []}]})
    [trade] = feed.convert(trades, 6, 0)
    assert (trade.trade_id, trade.taker_side, trade.px_tick, trade.qty_lot) == (99, 1, 105056, 100)


def test_binance_frames_and_their_drops():
    grid = TickGrid("BTCUSDT", 2, 5)
    diff = DepthUpdate(E=1, s="BTCUSDT", U=5, u=7, b=[("100.01", "1.00000")], a=[])
    message = binance_message("BTCUSDT", diff, grid, 10, 11)
    assert isinstance(message, DepthDiff) and message.bids == [(10001, 100000)] and message.ts_feed_ns == 11
    assert binance_message("BTCUSDT", msgspec.structs.replace(diff, U=9), grid, 10, 11).reason == "bad_field"
    off = binance_message("BTCUSDT", msgspec.structs.replace(diff, b=[("100.001", "1")]), grid, 10, 11)
    assert off.reason == "off_grid" and "100.001" in off.detail
    snapshot = DepthSnapshot(lastUpdateId=4, bids=[("100.00", "2")], asks=[("100.02", "1")])
    book = binance_message("BTCUSDT", snapshot, grid, 10, 0)
    assert isinstance(book, BookSnapshot) and book.last_id == 4 and book.asks == [(10002, 100000)]
    assert binance_message("BTCUSDT", msgspec.structs.replace(snapshot, bids=[("nan", "1")]), grid, 0, 0).reason == "off_grid"
