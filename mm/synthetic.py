"""A paced synthetic market for latency measurement: every event moves the touch by one tick.

Each event is a depth update that shifts the best bid and ask up or down together, so a quoter
with zero requote tolerance answers every event with an order: tick-to-order gets one sample
per event. Deterministic: the n-th event depends only on n.
"""

from __future__ import annotations

Levels = list[tuple[int, int]]


class SyntheticLadder:
    def __init__(self, *, mid_tick: int, levels: int = 5, qty_lot: int = 1000) -> None:
        self._mid_tick = mid_tick
        self._levels = levels
        self._qty_lot = qty_lot
        self.update_id = 1
        self._offset = 0

    def _book(self, offset: int) -> tuple[Levels, Levels]:
        best_bid = self._mid_tick + offset
        bids = [(best_bid - i, self._qty_lot) for i in range(self._levels)]
        asks = [(best_bid + 1 + i, self._qty_lot) for i in range(self._levels)]
        return bids, asks

    def snapshot(self) -> tuple[int, Levels, Levels]:
        bids, asks = self._book(self._offset)
        return self.update_id, bids, asks

    def next_update(self) -> tuple[int, int, Levels, Levels]:
        """Return (first_id, final_id, bids, asks): the levels that changed, absolute qty, 0 removes."""
        old_bids, old_asks = self._book(self._offset)
        self._offset = 1 - self._offset  # 0, 1, 0, 1, ...: the touch moves one tick each event
        new_bids, new_asks = self._book(self._offset)
        self.update_id += 1
        return self.update_id, self.update_id, _changes(old_bids, new_bids), _changes(old_asks, new_asks)


def _changes(old: Levels, new: Levels) -> Levels:
    new_px = {px for px, _ in new}
    removed = [(px, 0) for px, _ in old if px not in new_px]
    old_map = dict(old)
    changed = [(px, qty) for px, qty in new if old_map.get(px) != qty]
    return removed + changed
