"""The sim venue's hot paths: MarketSim.advance per event, FillModel.on_trade / on_depth per event."""

from __future__ import annotations

import itertools

import pytest

from mm.config import SimConfig
from mm.fill_model import FillModel
from mm.market_sim import MarketSim, SimDepth, SimTrade

S = 1_000_000_000
TICK = 0.01
LOT = 0.00001


@pytest.fixture(scope="module")
def market_events() -> tuple[tuple[int, list, list], list[SimDepth | SimTrade]]:
    sim = MarketSim(SimConfig(), TICK, LOT, 0)
    snapshot = sim.snapshot()
    return snapshot, sim.advance(120 * S)


def make_model_with_orders(snapshot: tuple[int, list, list]) -> FillModel:
    """Eight resting orders: two queued at each of the 2nd and 3rd levels, per side."""
    _, bids, asks = snapshot
    model = FillModel(latency_ns=0, maker_fee_bps=0.0, taker_fee_bps=4.0, cancel_ahead_ratio=0.5,
                      tick_size=TICK, lot_size=LOT)
    model.on_snapshot(0, bids, asks)
    for i, (px, _) in enumerate(bids[1:3] + bids[1:3]):
        model.submit(0, f"b{i}", 1, px, 100, True)
    for i, (px, _) in enumerate(asks[1:3] + asks[1:3]):
        model.submit(0, f"a{i}", -1, px, 100, True)
    assert len(model.open_orders()) == 8
    return model


@pytest.mark.benchmark(group="sim")
def test_market_sim_advance_per_event(benchmark):
    """One call = the next event time: a depth batch, or a burst of trades printed at one ns."""
    sim = MarketSim(SimConfig(), TICK, LOT, 0)
    emitted = [0, 0]  # calls, events

    def next_event() -> int:
        count = len(sim.advance(sim.next_event_ns()))
        emitted[0] += 1
        emitted[1] += count
        return count

    count = benchmark(next_event)

    assert count >= 1
    benchmark.extra_info["events_per_call"] = round(emitted[1] / emitted[0], 3)
    last_id, bids, asks = sim.snapshot()
    assert last_id > 0 and bids[0][0] < asks[0][0]


@pytest.mark.benchmark(group="sim")
def test_fill_model_on_trade_per_event(benchmark, market_events):
    snapshot, events = market_events
    trades = itertools.cycle([e for e in events if isinstance(e, SimTrade)])
    model = make_model_with_orders(snapshot)

    def on_trade() -> int:
        trade = next(trades)
        return len(model.on_trade(trade.ts_ns, trade.px_tick, trade.qty_lot, trade.taker_side))

    benchmark(on_trade)

    for order in model.open_orders():
        assert order.ahead_lot >= 0 and 0 < order.leaves_lot <= order.qty_lot


@pytest.mark.benchmark(group="sim")
def test_fill_model_on_depth_per_event(benchmark, market_events):
    snapshot, events = market_events
    depths = itertools.cycle([e for e in events if isinstance(e, SimDepth)])
    model = make_model_with_orders(snapshot)

    def on_depth() -> int:
        depth = next(depths)
        return len(model.on_depth(depth.ts_ns, depth.bids, depth.asks))

    benchmark(on_depth)

    for order in model.open_orders():
        assert order.ahead_lot >= 0 and 0 < order.leaves_lot <= order.qty_lot
