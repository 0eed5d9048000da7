"""L2Book: absolute levels, best-first reads, crossed/locked, and snapshot + deltas == later snapshot."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.book import ASK, BID, L2Book


def _book() -> L2Book:
    book = L2Book("BTCUSDT")
    book.load_snapshot([(100, 5), (99, 7), (97, 1)], [(101, 2), (103, 4), (102, 3)])
    return book


def test_book_load_snapshot_sorts_best_first():
    book = _book()

    assert book.best_bid() == (100, 5)
    assert book.best_ask() == (101, 2)
    assert book.levels(BID, 10) == [(100, 5), (99, 7), (97, 1)]
    assert book.levels(ASK, 2) == [(101, 2), (102, 3)]


def test_book_load_snapshot_skips_zero_qty_and_replaces_previous_book():
    book = _book()

    book.load_snapshot([(50, 0), (49, 1)], [])

    assert book.levels(BID, 10) == [(49, 1)]
    assert book.best_ask() is None


def test_book_apply_sets_absolute_qty_inserts_and_removes():
    book = _book()

    book.apply([(100, 9), (98, 2), (97, 0)], [(101, 0), (104, 1)])

    assert book.levels(BID, 10) == [(100, 9), (99, 7), (98, 2)]
    assert book.levels(ASK, 10) == [(102, 3), (103, 4), (104, 1)]


def test_book_apply_removing_unknown_level_is_a_no_op():
    book = _book()

    book.apply([(1, 0)], [(500, 0)])

    assert book.levels(BID, 10) == [(100, 5), (99, 7), (97, 1)]
    assert book.depth(ASK) == 3


def test_book_is_crossed_true_when_locked_or_crossed_false_when_side_empty():
    book = _book()
    assert not book.is_crossed()

    book.apply([(101, 1)], [])
    assert book.is_crossed()  # locked: bid == ask

    book.apply([(101, 0), (102, 1)], [])
    assert book.is_crossed()  # crossed

    book.load_snapshot([(100, 1)], [])
    assert not book.is_crossed()


def test_book_top_fills_caller_arrays_best_first_and_returns_counts():
    book = _book()
    bid_px, bid_qty, ask_px, ask_qty = (np.full(5, -1, dtype=np.int64) for _ in range(4))

    counts = book.top(5, bid_px, bid_qty, ask_px, ask_qty)

    assert counts == (3, 3)
    assert bid_px[:3].tolist() == [100, 99, 97] and bid_qty[:3].tolist() == [5, 7, 1]
    assert ask_px[:3].tolist() == [101, 102, 103] and ask_qty[:3].tolist() == [2, 3, 4]
    assert bid_px[3:].tolist() == [-1, -1]  # untouched past the count


def test_book_top_of_empty_book_returns_zero_counts():
    book = L2Book("X")
    arrays = [np.zeros(3, dtype=np.int64) for _ in range(4)]

    assert book.top(3, *arrays) == (0, 0)
    assert book.best_bid() is None and book.best_ask() is None


def test_book_clear_empties_both_sides():
    book = _book()

    book.clear()

    assert book.levels(BID, 10) == [] and book.levels(ASK, 10) == []


def test_book_levels_bad_side_raises_naming_value():
    with pytest.raises(ValueError, match="was 0"):
        _book().levels(0, 3)


levels = st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(snapshot_bids=levels, snapshot_asks=levels, deltas=st.lists(st.tuples(levels, levels), max_size=20))
def test_book_snapshot_plus_deltas_equals_later_snapshot(snapshot_bids, snapshot_asks, deltas):
    model = [
        {px: qty for px, qty in snapshot_bids if qty},
        {px: qty for px, qty in snapshot_asks if qty},
    ]
    book = L2Book("P")
    book.load_snapshot(snapshot_bids, snapshot_asks)

    for bids, asks in deltas:
        book.apply(bids, asks)
        for side_model, side_levels in zip(model, (bids, asks)):
            for px, qty in side_levels:
                if qty:
                    side_model[px] = qty
                else:
                    side_model.pop(px, None)

    later = L2Book("P")
    later.load_snapshot(model[0].items(), model[1].items())
    for side in (BID, ASK):
        assert book.levels(side, 100) == later.levels(side, 100)
    assert book.levels(BID, 100) == sorted(model[0].items(), reverse=True)
    assert book.levels(ASK, 100) == sorted(model[1].items())
    arrays = [np.zeros(20, dtype=np.int64) for _ in range(4)]
    n_bids, n_asks = book.top(20, *arrays)
    assert list(zip(arrays[0][:n_bids].tolist(), arrays[1][:n_bids].tolist())) == book.levels(BID, 20)
    assert list(zip(arrays[2][:n_asks].tolist(), arrays[3][:n_asks].tolist())) == book.levels(ASK, 20)


@settings(max_examples=300, deadline=None)
@given(
    snapshot_bids=st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=40),
    snapshot_asks=st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=40),
    deltas=st.lists(st.tuples(levels, levels), max_size=30),
    read_n=st.integers(0, 70),
)
def test_book_small_near_lists_refill_and_trim_keep_every_level(
    snapshot_bids, snapshot_asks, deltas, read_n
):
    """With a near list of 4 levels, refills and trims happen all the time: reads must not care."""
    model = [
        {px: qty for px, qty in snapshot_bids if qty},
        {px: qty for px, qty in snapshot_asks if qty},
    ]
    with mock.patch.multiple("mm.book", NEAR_LEVELS=4, NEAR_LOW=2, NEAR_HIGH=8):
        book = L2Book("P")
        book.load_snapshot(snapshot_bids, snapshot_asks)
        for bids, asks in deltas:
            book.apply(bids, asks)
            for side_model, side_levels in zip(model, (bids, asks)):
                for px, qty in side_levels:
                    if qty:
                        side_model[px] = qty
                    else:
                        side_model.pop(px, None)
            best_bid = max(model[0].items(), default=None)
            best_ask = min(model[1].items(), default=None)
            assert book.best_bid() == best_bid and book.best_ask() == best_ask
            assert book.is_crossed() == bool(best_bid and best_ask and best_bid[0] >= best_ask[0])
        assert book.levels(BID, read_n) == sorted(model[0].items(), reverse=True)[:read_n]
        assert book.levels(ASK, read_n) == sorted(model[1].items())[:read_n]
        assert book.depth(BID) == len(model[0]) and book.depth(ASK) == len(model[1])
