from mm.synthetic import SyntheticLadder


def test_synthetic_ladder_every_update_moves_touch_and_stays_consistent():
    ladder = SyntheticLadder(mid_tick=1000, levels=3, qty_lot=5)
    last_id, bids, asks = ladder.snapshot()
    book_bids, book_asks = dict(bids), dict(asks)
    best = []
    for _ in range(6):
        first_id, final_id, d_bids, d_asks = ladder.next_update()
        assert first_id == last_id + 1 == final_id
        last_id = final_id
        for side, diff in ((book_bids, d_bids), (book_asks, d_asks)):
            for px, qty in diff:
                if qty == 0:
                    side.pop(px)
                else:
                    side[px] = qty
        assert max(book_bids) < min(book_asks)
        best.append(max(book_bids))
    assert best == [1001, 1000, 1001, 1000, 1001, 1000]
    _, snap_bids, snap_asks = ladder.snapshot()
    assert dict(snap_bids) == book_bids and dict(snap_asks) == book_asks
