"""mm.trade_tape: the venue's tape of public prints and Binance's views of it (24 h stats, klines,
aggregate trades), on hand-built tapes whose answers are worked out here."""

from __future__ import annotations

import pytest

from mm.trade_tape import DAY_MS, Kline, Print, TradeTape


def trade(trade_id: int, px_tick: int, qty_lot: int, time_ms: int, is_buyer_maker: bool = False) -> Print:
    return Print(trade_id, px_tick, qty_lot, trade_id, trade_id, time_ms, is_buyer_maker)


def tape_of(*prints: Print, is_aggregated: bool = False, max_prints: int = 1000) -> TradeTape:
    tape = TradeTape(is_aggregated=is_aggregated, max_prints=max_prints)
    for item in prints:
        tape.append(item)
    return tape


def test_stats_window_covers_the_last_24h_only() -> None:
    now_ms = 10 * DAY_MS
    tape = tape_of(trade(1, 500, 9, now_ms - DAY_MS - 1),  # just outside the window
                   trade(2, 100, 2, now_ms - DAY_MS), trade(3, 130, 1, now_ms - 5, True), trade(4, 90, 3, now_ms))
    stats = tape.stats(now_ms)
    assert stats is not None
    assert (stats.open_px_tick, stats.high_px_tick, stats.low_px_tick, stats.last_px_tick) == (100, 130, 90, 90)
    assert (stats.last_qty_lot, stats.volume_lot, stats.notional_tick_lot) == (3, 6, 100 * 2 + 130 + 90 * 3)
    assert (stats.count, stats.first_id, stats.last_id) == (3, 2, 4)
    assert (stats.open_ms, stats.close_ms) == (now_ms - DAY_MS, now_ms)
    assert tape.px_before(now_ms - DAY_MS) == 500  # spot's prevClosePrice
    assert tape.stats(now_ms + 2 * DAY_MS) is None  # nothing traded in that window


def test_stats_count_trades_of_an_aggregated_tape_not_prints() -> None:
    tape = tape_of(Print(7, 100, 5, 20, 24, 1000, False), Print(8, 101, 1, 25, 25, 1001, True), is_aggregated=True)
    stats = tape.stats(2000)
    assert stats is not None and (stats.count, stats.first_id, stats.last_id) == (6, 20, 25)


def test_agg_trades_merge_same_price_side_and_ms_only() -> None:
    tape = tape_of(trade(1, 100, 1, 50), trade(2, 100, 2, 50), trade(3, 100, 4, 50, True),  # side differs
                   trade(4, 101, 1, 50, True), trade(5, 101, 1, 51, True), trade(6, 101, 3, 51, True))
    assert tape.agg_trades() == [Print(1, 100, 3, 1, 2, 50, False), Print(3, 100, 4, 3, 3, 50, True),
                                 Print(4, 101, 1, 4, 4, 50, True), Print(5, 101, 4, 5, 6, 51, True)]


def test_agg_trades_of_an_aggregated_tape_are_its_prints() -> None:
    prints = [Print(7, 100, 5, 20, 24, 1000, False), Print(8, 100, 1, 25, 25, 1000, False)]  # two takers
    assert tape_of(*prints, is_aggregated=True).agg_trades() == prints


def test_klines_bucket_by_interval_and_fill_gaps_flat_at_the_last_close() -> None:
    tape = tape_of(trade(1, 100, 2, 1000), trade(2, 110, 1, 1500, True), trade(3, 105, 4, 1999),
                   trade(4, 120, 1, 4200))  # nothing in [2000, 4000)
    klines = tape.klines(1000, None, None, 10)
    assert klines[0] == Kline(1000, 1999, 100, 110, 100, 105, 7, 200 + 110 + 420, 3, 6, 200 + 420, 1, 3)
    assert klines[1] == Kline(2000, 2999, 105, 105, 105, 105, 0, 0, 0, 0, 0, -1, -1)
    assert klines[2] == Kline(3000, 3999, 105, 105, 105, 105, 0, 0, 0, 0, 0, -1, -1)
    assert klines[3] == Kline(4000, 4999, 120, 120, 120, 120, 1, 120, 1, 1, 120, 4, 4)
    assert len(klines) == 4


def test_klines_limit_takes_the_first_from_start_time_else_the_last() -> None:
    tape = tape_of(*(trade(i, 100 + i, 1, i * 1000) for i in range(1, 7)))
    assert [k.open_ms for k in tape.klines(1000, None, None, 2)] == [5000, 6000]
    assert [k.open_ms for k in tape.klines(1000, 2000, None, 2)] == [2000, 3000]
    assert [k.open_ms for k in tape.klines(1000, 2000, 4000, 10)] == [2000, 3000, 4000]
    # the last two of a range that starts with a gap: flat at the close before it
    gap = tape_of(trade(1, 100, 1, 1000), trade(2, 200, 1, 4000))
    assert [(k.open_ms, k.close_px_tick, k.count) for k in gap.klines(1000, None, None, 2)] == [(3000, 100, 0),
                                                                                              (4000, 200, 1)]
    assert tape.klines(1000, 90_000, None, 5) == [] and tape.klines(1000, None, None, 0) == []


def test_recent_is_the_last_prints_oldest_first() -> None:
    tape = tape_of(*(trade(i, 100, 1, i) for i in range(1, 6)))
    assert [p.agg_id for p in tape.recent(2)] == [4, 5]
    assert [p.agg_id for p in tape.recent(50)] == [1, 2, 3, 4, 5]
    assert tape.recent(0) == []


def test_tape_keeps_at_most_max_prints_dropping_the_oldest() -> None:
    tape = tape_of(*(trade(i, 100, 1, i) for i in range(1, 6)), max_prints=3)
    assert [p.agg_id for p in tape.prints] == [3, 4, 5]
    with pytest.raises(ValueError, match="'max_prints' must be > 0, was 0"):
        TradeTape(max_prints=0)
