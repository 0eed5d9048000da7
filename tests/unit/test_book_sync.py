"""Binance sync procedure: classify rules (spot U/u, futures pu) and the BookSync state machine."""

from __future__ import annotations

import pytest

from mm.book import ASK, BID
from mm.book_sync import (
    NO_PREV_ID,
    BookSync,
    Market,
    Outcome,
    Sync,
    classify,
    classify_futures,
    market_of,
)


@pytest.mark.parametrize(
    "last_id,first_id,final_id,expected",
    [
        (100, 90, 100, Sync.STALE),  # u <= lastUpdateId
        (100, 90, 99, Sync.STALE),
        (100, 95, 105, Sync.APPLY),  # straddles
        (100, 101, 105, Sync.APPLY),  # U == lastUpdateId + 1
        (100, 101, 101, Sync.APPLY),
        (100, 102, 105, Sync.GAP),  # U > lastUpdateId + 1
    ],
)
def test_book_sync_classify_spot_rules(last_id, first_id, final_id, expected):
    assert classify(last_id, first_id, final_id) is expected


@pytest.mark.parametrize(
    "last_id,first_id,final_id,prev_final_id,is_first,expected",
    [
        (100, 90, 99, 80, True, Sync.STALE),  # u < lastUpdateId
        (100, 90, 100, 80, True, Sync.APPLY),  # u == lastUpdateId: applied (strict drop rule)
        (100, 100, 120, 99, True, Sync.APPLY),  # U <= lastUpdateId <= u
        (100, 101, 120, 100, True, Sync.GAP),  # U > lastUpdateId for the first diff
        (100, 5000, 6000, 100, False, Sync.APPLY),  # pu == previous u; U jumps (global ids)
        (100, 101, 120, 99, False, Sync.GAP),  # pu != previous u
        (100, 90, 100, 80, False, Sync.STALE),  # a duplicate of the last applied
    ],
)
def test_book_sync_classify_futures_rules(last_id, first_id, final_id, prev_final_id, is_first, expected):
    assert classify_futures(last_id, first_id, final_id, prev_final_id, is_first) is expected


def test_book_sync_market_of_prev_final_id():
    assert market_of(NO_PREV_ID) is Market.SPOT
    assert market_of(0) is Market.FUTURES


def _spot_synced(last_id: int = 100) -> BookSync:
    sync = BookSync("BTCUSDT")
    sync.on_snapshot(last_id, [(10, 1), (9, 2)], [(11, 1), (12, 2)])
    return sync


def test_book_sync_starts_needing_snapshot_and_buffers_diffs():
    sync = BookSync("BTCUSDT")

    outcome = sync.on_diff(95, 99, NO_PREV_ID, [(10, 5)], [])

    assert outcome is Outcome.BUFFERED
    assert sync.needs_snapshot and sync.buffered == 1 and sync.updates == 0


def test_book_sync_snapshot_drops_covered_and_applies_straddling_buffered_diffs():
    sync = BookSync("BTCUSDT")
    sync.on_diff(95, 99, NO_PREV_ID, [(10, 5)], [])  # covered by the snapshot
    sync.on_diff(100, 103, NO_PREV_ID, [(10, 7)], [])  # straddles 101
    sync.on_diff(104, 104, NO_PREV_ID, [], [(11, 0)])

    outcome = sync.on_snapshot(101, [(10, 1), (9, 2)], [(11, 1), (12, 2)])

    assert outcome is Outcome.LOADED
    assert not sync.needs_snapshot and sync.buffered == 0
    assert (sync.updates, sync.stale, sync.gaps, sync.last_id) == (2, 1, 0, 104)
    assert sync.book.levels(BID, 5) == [(10, 7), (9, 2)]
    assert sync.book.levels(ASK, 5) == [(12, 2)]
    assert sync.market is Market.SPOT


def test_book_sync_spot_continuous_diffs_apply_duplicate_is_stale():
    sync = _spot_synced(100)

    assert sync.on_diff(101, 105, NO_PREV_ID, [(10, 3)], []) is Outcome.APPLIED
    assert sync.on_diff(101, 105, NO_PREV_ID, [(10, 3)], []) is Outcome.STALE
    assert sync.on_diff(106, 106, NO_PREV_ID, [], [(13, 1)]) is Outcome.APPLIED
    assert (sync.updates, sync.stale, sync.last_id) == (2, 1, 106)


def test_book_sync_gap_invalidates_book_keeps_buffering_and_resyncs_without_loss():
    sync = _spot_synced(100)
    sync.on_diff(101, 105, NO_PREV_ID, [(10, 3)], [])

    gap = sync.on_diff(110, 112, NO_PREV_ID, [(8, 1)], [])  # 106..109 missed
    after = [
        sync.on_diff(113, 115, NO_PREV_ID, [(7, 1)], []),
        sync.on_diff(116, 118, NO_PREV_ID, [(6, 1)], []),
    ]

    assert gap is Outcome.GAP and after == [Outcome.BUFFERED, Outcome.BUFFERED]
    assert sync.needs_snapshot and (sync.gaps, sync.resyncs) == (1, 1)
    assert sync.last_problem.startswith("book BTCUSDT: gap after update 105: next diff U=110")
    assert sync.book.best_bid() is None  # invalid book: nothing to quote from
    assert sync.buffered == 3  # the gap diff and everything after it

    # the new snapshot covers up to 114; 116..118 must still be applied
    outcome = sync.on_snapshot(114, [(10, 4), (8, 1)], [(11, 1)])

    assert outcome is Outcome.LOADED and not sync.needs_snapshot
    assert sync.book.levels(BID, 5) == [(10, 4), (8, 1), (7, 1), (6, 1)]
    assert (sync.last_id, sync.snapshots, sync.stale) == (118, 2, 1)


def test_book_sync_snapshot_older_than_buffer_is_a_gap_and_keeps_buffer():
    sync = BookSync("BTCUSDT")
    sync.on_diff(200, 210, NO_PREV_ID, [(10, 5)], [])
    sync.on_diff(211, 220, NO_PREV_ID, [(10, 6)], [])

    outcome = sync.on_snapshot(150, [(10, 1)], [(11, 1)])  # misses 151..199

    assert outcome is Outcome.GAP and sync.needs_snapshot
    assert sync.buffered == 2 and sync.gaps == 1
    assert sync.on_snapshot(205, [(10, 1)], [(11, 1)]) is Outcome.LOADED
    assert sync.book.best_bid() == (10, 6) and sync.last_id == 220


def test_book_sync_crossed_after_diff_resyncs():
    sync = _spot_synced(100)

    outcome = sync.on_diff(101, 101, NO_PREV_ID, [(11, 1)], [])  # bid 11 == ask 11: locked

    assert outcome is Outcome.CROSSED
    assert sync.needs_snapshot and (sync.crossed, sync.resyncs, sync.updates) == (1, 1, 1)
    assert sync.last_problem == "book BTCUSDT: crossed after update 101: bid 11 >= ask 11 (ticks)"
    assert sync.on_diff(102, 102, NO_PREV_ID, [(9, 9)], []) is Outcome.BUFFERED
    assert sync.on_snapshot(101, [(10, 1)], [(12, 1)]) is Outcome.LOADED
    assert sync.book.levels(BID, 5) == [(10, 1), (9, 9)] and not sync.book.is_crossed()


def test_book_sync_crossed_snapshot_needs_another():
    sync = BookSync("BTCUSDT")

    assert sync.on_snapshot(100, [(12, 1)], [(11, 1)]) is Outcome.CROSSED
    assert sync.needs_snapshot and sync.crossed == 1


def test_book_sync_futures_snapshot_id_equal_to_buffered_u_applies_it_then_pu_links():
    sync = BookSync("AKROUSDT")
    sync.on_diff(900, 950, 899, [(10, 1)], [])  # u < lastUpdateId: stale
    sync.on_diff(960, 1000, 950, [(10, 2)], [])  # u == lastUpdateId: first applied
    sync.on_diff(5000, 5100, 1000, [(10, 3)], [])  # pu == previous u; U jumps (global ids)

    outcome = sync.on_snapshot(1000, [(10, 9)], [(11, 1)])

    assert outcome is Outcome.LOADED and sync.market is Market.FUTURES
    assert (sync.updates, sync.stale, sync.gaps, sync.last_id) == (2, 1, 0, 5100)
    assert sync.on_diff(5101, 5200, 5099, [], []) is Outcome.GAP  # pu != previous u


def test_book_sync_futures_first_diff_after_snapshot_must_straddle():
    sync = BookSync("ETHUSDT", market=Market.FUTURES)
    sync.on_snapshot(1000, [(10, 1)], [(11, 1)])

    assert sync.on_diff(1001, 1010, 990, [], []) is Outcome.GAP


def test_book_sync_snapshot_not_newer_than_valid_book_is_ignored():
    sync = _spot_synced(100)
    sync.on_diff(101, 105, NO_PREV_ID, [(10, 3)], [])

    assert sync.on_snapshot(104, [(10, 99)], [(11, 1)]) is Outcome.IGNORED
    assert sync.book.best_bid() == (10, 3) and sync.snapshots_ignored == 1


def test_book_sync_buffer_overflow_drops_oldest_and_counts():
    sync = BookSync("BTCUSDT", max_buffer=2)
    for first_id in (1, 2, 3):
        sync.on_diff(first_id, first_id, NO_PREV_ID, [(10, first_id)], [])

    assert sync.buffered == 2 and sync.buffer_dropped == 1
    assert sync.on_snapshot(1, [(10, 1)], [(11, 1)]) is Outcome.LOADED
    assert sync.book.best_bid() == (10, 3)
