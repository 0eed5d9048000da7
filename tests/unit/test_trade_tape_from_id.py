"""mm.trade_tape.TradeTape.from_id: the page of prints `trades.historical` serves from `fromId` on."""

from __future__ import annotations

from mm.trade_tape import Print, TradeTape


def tape_of(*ids: tuple[int, int]) -> TradeTape:
    tape = TradeTape(max_prints=3)
    for first_id, last_id in ids:
        tape.append(Print(first_id, 100, 1, first_id, last_id, 1000 + first_id, False))
    return tape


def test_from_id_gives_the_first_limit_prints_at_or_after_the_id() -> None:
    tape = tape_of((1, 1), (2, 2), (3, 3), (4, 4))  # 1 fell off (max_prints 3)
    assert [p.first_id for p in tape.from_id(0, 10)] == [2, 3, 4]
    assert [p.first_id for p in tape.from_id(3, 10)] == [3, 4]
    assert [p.first_id for p in tape.from_id(2, 2)] == [2, 3]
    assert tape.from_id(5, 10) == [] and tape.from_id(2, 0) == []


def test_from_id_names_an_aggregate_by_its_first_trade() -> None:
    tape = tape_of((10, 12), (13, 13))
    assert [p.first_id for p in tape.from_id(11, 10)] == [13]  # 11 is inside the first aggregate
