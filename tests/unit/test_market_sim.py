"""MarketSim: determinism, the Binance-spot diff protocol, and STATS.md's stylized facts (loosely)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from mm.config import SimConfig
from mm.market_sim import MarketSim, SimDepth, SimTrade

START_NS = 1_700_000_000_000_000_000
S = 1_000_000_000
TICK = 0.01
LOT = 0.00001


def make_sim(**overrides) -> MarketSim:
    return MarketSim(SimConfig(**overrides), TICK, LOT, START_NS)


class DictBook:
    """The simplest reference book: snapshot, then every diff's absolute quantities."""

    def __init__(self, snapshot: tuple[int, list[tuple[int, int]], list[tuple[int, int]]]) -> None:
        self.last_id, bids, asks = snapshot
        self.bids = dict(bids)
        self.asks = dict(asks)

    def apply(self, depth: SimDepth) -> None:
        assert depth.first_id == self.last_id + 1, f"gap: first_id {depth.first_id} after {self.last_id}"
        assert depth.final_id >= depth.first_id
        for levels, book in ((depth.bids, self.bids), (depth.asks, self.asks)):
            for px, qty in levels:
                assert qty >= 0
                if qty:
                    book[px] = qty
                else:
                    book.pop(px, None)
        self.last_id = depth.final_id
        assert max(self.bids) < min(self.asks), f"crossed after {depth.final_id}"

    def as_snapshot(self) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        return self.last_id, sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


@pytest.fixture(scope="module")
def five_minutes() -> tuple[DictBook, list[SimDepth | SimTrade], list[float], list[int]]:
    """Five simulated minutes at the default config: events, 1 s mids and spreads at every diff."""
    sim = make_sim()
    book = DictBook(sim.snapshot())
    events = sim.advance(START_NS + 300 * S)
    mids: list[float] = []
    spreads: list[int] = []
    grid_ns = START_NS
    for event in events:
        while event.ts_ns > grid_ns:
            mids.append((max(book.bids) + min(book.asks)) / 2)
            grid_ns += S
        if isinstance(event, SimDepth):
            book.apply(event)
            spreads.append(min(book.asks) - max(book.bids))
    return book, events, mids, spreads


def one_second_returns_bps(mids: list[float]) -> np.ndarray:
    mid = np.asarray(mids)
    return np.diff(mid) / mid[:-1] * 1e4


# ---- determinism and the protocol ---------------------------------------------------------


def test_market_sim_same_seed_same_events():
    assert make_sim().advance(START_NS + 20 * S) == make_sim().advance(START_NS + 20 * S)


def test_market_sim_other_seed_other_events():
    assert make_sim(seed=1).advance(START_NS + 5 * S) != make_sim(seed=2).advance(START_NS + 5 * S)


def test_market_sim_advance_every_ms_same_events_as_one_call():
    stepped = make_sim()
    events = []
    for ms in range(1, 20_001):
        events.extend(stepped.advance(START_NS + ms * 1_000_000))

    bulk = make_sim()
    assert events == bulk.advance(START_NS + 20 * S)
    assert stepped.snapshot() == bulk.snapshot()


def test_market_sim_next_event_ns_interleaved_same_events_and_snapshot():
    paced, bulk = make_sim(), make_sim()
    events = []
    while (t := paced.next_event_ns()) <= START_NS + 20 * S:
        assert t > START_NS
        batch = paced.advance(t)
        assert batch and all(e.ts_ns == t for e in batch)
        events.extend(batch)
    paced_snapshot = paced.snapshot()

    assert events == bulk.advance(START_NS + 20 * S)
    assert paced_snapshot == bulk.snapshot()


def test_market_sim_events_sorted_and_not_after_now():
    sim = make_sim()
    seen: list[int] = []
    for now_ns in (START_NS + 1, START_NS + S // 3, START_NS + 2 * S, START_NS + 7 * S):
        batch = sim.advance(now_ns)
        assert all(e.ts_ns <= now_ns for e in batch)
        seen.extend(e.ts_ns for e in batch)
    assert seen == sorted(seen) and len(seen) > 100


def test_market_sim_snapshot_plus_diffs_equals_snapshot_at_any_point():
    sim = make_sim(seed=3)
    book = DictBook(sim.snapshot())
    now_ns = START_NS
    for step_ms in (1, 37, 100, 250, 999, 3, 5_000, 123, 60_000):
        now_ns += step_ms * 1_000_000
        for event in sim.advance(now_ns):
            if isinstance(event, SimDepth):
                book.apply(event)

        assert book.as_snapshot() == sim.snapshot()


def test_market_sim_snapshot_is_full_book_sorted_best_first_and_uncrossed():
    last_id, bids, asks = make_sim(levels=50).snapshot()

    assert len(bids) == len(asks) == 50
    assert [px for px, _ in bids] == sorted((px for px, _ in bids), reverse=True)
    assert [px for px, _ in asks] == sorted(px for px, _ in asks)
    assert bids[0][0] < asks[0][0] and asks[0][0] - bids[0][0] == 1
    assert all(qty > 0 for _, qty in bids + asks)
    assert round(6_000_000 - bids[0][0]) <= 1  # start_px 60 000.00 at tick 0.01


def test_market_sim_trades_ids_consecutive_sides_and_sizes_valid(five_minutes):
    _, events, _, _ = five_minutes
    trades = [e for e in events if isinstance(e, SimTrade)]

    assert [t.trade_id for t in trades] == list(range(trades[0].trade_id, trades[0].trade_id + len(trades)))
    assert {t.taker_side for t in trades} == {1, -1}
    assert all(t.qty_lot > 0 for t in trades)


def test_market_sim_trades_mostly_at_published_touch_of_their_side():
    # a trade can precede the batch showing the move it belongs to, so only "mostly"
    sim = make_sim(seed=5)
    book = DictBook(sim.snapshot())
    at_touch = []
    for event in sim.advance(START_NS + 60 * S):
        if isinstance(event, SimDepth):
            book.apply(event)
        else:
            touch = min(book.asks) if event.taker_side > 0 else max(book.bids)
            at_touch.append(event.taker_side * (event.px_tick - touch) >= 0)

    assert statistics.mean(at_touch) >= 0.8


def test_market_sim_depth_batches_on_fixed_grid(five_minutes):
    _, events, _, _ = five_minutes
    interval_ns = S // 10
    depth_times = [e.ts_ns for e in events if isinstance(e, SimDepth)]

    assert all((t - START_NS) % interval_ns == 0 for t in depth_times)


# ---- stylized facts (STATS.md), loosely -------------------------------------------------


def test_market_sim_spread_one_tick_most_of_the_time(five_minutes):
    _, _, _, spreads = five_minutes

    assert statistics.mean(s == 1 for s in spreads) >= 0.97
    assert max(spreads) <= 3


def test_market_sim_one_second_vol_near_config(five_minutes):
    _, _, mids, _ = five_minutes
    returns = one_second_returns_bps(mids)
    vol = SimConfig().vol_bps_per_s

    assert vol / 2 <= returns.std() <= vol * 2
    assert 0.2 <= float(np.mean(returns == 0)) <= 0.7  # the mid often sits still for a second


def test_market_sim_calm_regime_vol_matches_config():
    sim = make_sim(regime_switch_per_min=0.0, jump_per_min=0.0, vol_bps_per_s=2.0, seed=11)
    book = DictBook(sim.snapshot())
    mids: list[float] = []
    for second in range(1, 301):
        for event in sim.advance(START_NS + second * S):
            if isinstance(event, SimDepth):
                book.apply(event)
        mids.append((max(book.bids) + min(book.asks)) / 2)

    assert 2.0 * 0.75 <= one_second_returns_bps(mids).std() <= 2.0 * 1.33


def test_market_sim_returns_fat_tailed(five_minutes):
    _, _, mids, _ = five_minutes
    returns = one_second_returns_bps(mids)
    excess_kurtosis = float(np.mean((returns - returns.mean()) ** 4) / returns.var() ** 2 - 3.0)

    assert excess_kurtosis > 2.0


def test_market_sim_trades_in_bursts_with_long_tailed_sizes(five_minutes):
    _, events, _, _ = five_minutes
    trades = [e for e in events if isinstance(e, SimTrade)]
    gaps_ms = np.diff([t.ts_ns for t in trades]) / 1e6
    sizes = np.array([t.qty_lot for t in trades])

    assert np.median(gaps_ms) == 0.0  # one aggressive order prints several makers at once
    assert 10 <= np.percentile(gaps_ms, 90) <= 400
    assert 15 <= len(trades) / 300 <= 60  # cfg 30 trades/s
    assert np.percentile(sizes, 99) > 50 * np.median(sizes)
    assert 0.4 <= np.mean([t.taker_side > 0 for t in trades]) <= 0.6


def test_market_sim_depth_changes_dozens_of_levels_per_batch(five_minutes):
    _, events, _, _ = five_minutes
    depths = [e for e in events if isinstance(e, SimDepth)]
    levels = [len(d.bids) + len(d.asks) for d in depths]

    assert 9 <= len(depths) / 300 <= 10  # cfg 10 batches/s
    assert 20 <= statistics.median(levels) <= 100


def test_market_sim_top_five_depth_a_few_base_units(five_minutes):
    book, _, _, _ = five_minutes
    top = sorted(book.bids.items(), reverse=True)[:5] + sorted(book.asks.items())[:5]

    assert 0.5 <= sum(qty for _, qty in top) * LOT <= 50


def test_market_sim_other_instrument_stays_consistent():
    sim = MarketSim(SimConfig(start_px=2_600.0, levels=20, depth_updates_per_s=100.0), 0.01, 0.001, 0)
    book = DictBook(sim.snapshot())
    for event in sim.advance(30 * S):
        if isinstance(event, SimDepth):
            book.apply(event)

    assert book.as_snapshot() == sim.snapshot()
    assert len(book.bids) == len(book.asks) == 20
    assert abs((max(book.bids) + min(book.asks)) / 2 - 260_000) < 260_000 * 0.01
