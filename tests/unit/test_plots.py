"""Run plots: valid PNGs from synthetic series, the PnL and inventory series, and panels that
are skipped with a reason when their series are absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from processes.plots import (PANELS, RunSeries, Units, compute_inventory_lot, compute_pnl_quote, render_plots,
                             write_plots)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = 1_700_000_000_000_000_000
TICK, LOT = 0.01, 0.00001


def report() -> dict:
    return {"pipeline": "t", "mode": "sim", "instrument": {"tick_size": TICK, "lot_size": LOT},
            "latency_ns": {"tick_to_order": {"p50": 300_000, "p90": 0, "p99": 0, "max": 0, "count": 3}}}


def full_stats() -> dict:
    rng = np.random.default_rng(7)
    steps = np.cumsum(rng.integers(-2, 3, size=200))
    mid_log = [[T0 + i * 50_000_000, 6_000_000 + int(s), 6_000_001 + int(s)] for i, s in enumerate(steps)]
    quote_log = [[ts, bid - 1, ask + 1] for ts, bid, ask in mid_log[::5]]
    quote_log[3] = [quote_log[3][0], None, quote_log[3][2]]  # no bid for a while
    fill_log = [{"ts_ns": T0 + i * 400_000_000, "side": 1 if i % 3 else -1, "px_tick": 6_000_000 + i,
                 "qty_lot": 100, "fee": 0.001, "maker": True} for i in range(20)]
    return {
        "book": {"mid_log": mid_log},
        "gateway": {"fill_log": fill_log, "quote_log": quote_log,
                    "tick_to_order_ns": rng.lognormal(np.log(300_000), 0.5, size=500).astype(int).tolist()},
    }


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_write_plots_full_series_writes_one_valid_png_per_panel(tmp_path: Path):
    paths = write_plots(report(), full_stats(), tmp_path / "run")

    assert [p.name for p in paths] == [f"run.{panel}.png" for panel in PANELS]
    for path in paths:
        assert_png(path)


def test_render_plots_nothing_recorded_skips_every_panel_with_a_reason(tmp_path: Path):
    outcome = render_plots(report(), {}, tmp_path / "run")

    assert outcome.written == []
    assert set(PANELS) <= set(outcome.skipped)
    assert "samples" in outcome.skipped["latency"]
    assert list(tmp_path.iterdir()) == []


def test_render_plots_only_todays_fill_log_draws_quotes_and_inventory(tmp_path: Path):
    stats = {"gateway": {"fill_log": full_stats()["gateway"]["fill_log"]}}

    outcome = render_plots(report(), stats, tmp_path / "run")

    assert [p.name for p in outcome.written] == ["run.quotes.png", "run.inventory.png"]
    assert "book.mid_log" in outcome.skipped["quotes.mid"]
    assert "gateway.quote_log" in outcome.skipped["quotes.quotes"]
    assert "book.mid_log" in outcome.skipped["pnl"]
    for path in outcome.written:
        assert_png(path)


def test_render_plots_report_without_instrument_plots_ticks_but_not_pnl_from_fills(tmp_path: Path):
    bare = {key: value for key, value in report().items() if key != "instrument"}

    outcome = render_plots(bare, full_stats(), tmp_path / "run")

    assert "instrument" in outcome.skipped["pnl"]
    assert {p.name for p in outcome.written} == {"run.quotes.png", "run.inventory.png", "run.latency.png"}


def test_render_plots_risk_logs_preferred_and_numpy_latency_accepted(tmp_path: Path):
    stats = full_stats()
    stats["gateway"]["tick_to_order_ns"] = np.array(stats["gateway"]["tick_to_order_ns"])
    stats["risk"] = {"position_log": [[T0, 0], [T0 + 10**9, 300], [T0 + 2 * 10**9, -100]],
                     "pnl_log": [[T0, 0.0, 0.0, 0.0], [T0 + 10**9, 0.5, -0.2, 0.01]]}

    outcome = render_plots(report(), stats, tmp_path / "run")

    assert len(outcome.written) == len(PANELS) and outcome.skipped == {}


def test_render_plots_malformed_series_skipped_not_raised(tmp_path: Path):
    stats = {"book": {"mid_log": [[1, 2]]}, "gateway": {"quote_log": "oops", "tick_to_order_ns": [0, -5]}}

    outcome = render_plots(report(), stats, tmp_path / "run")

    assert outcome.written == []
    assert "no positive samples" in outcome.skipped["latency"]


def test_compute_inventory_lot_running_sum_in_time_order():
    fills = np.array([[30, -1, 100, 5, 0.0], [10, 1, 100, 20, 0.0], [20, 1, 101, 10, 0.0]])

    ts_ns, position_lot = compute_inventory_lot(fills)

    assert ts_ns.tolist() == [10, 20, 30]
    assert position_lot.tolist() == [20, 30, 25]


def test_compute_pnl_quote_marks_position_to_mid_net_of_fees():
    units = Units(TICK, LOT, is_known=True)
    fills = np.array([[10, 1, 100, 50, 0.002], [30, -1, 104, 50, 0.002]])  # buy 50 at 100, sell 50 at 104
    mid = np.array([[5, 99, 101], [20, 101, 103]])  # mid 100, then 102

    ts_ns, total = compute_pnl_quote(fills, mid, units)

    notional = TICK * LOT
    assert ts_ns.tolist() == [5, 10, 20, 30]
    assert total == pytest.approx([0.0, -0.002, 2 * 50 * notional - 0.002, 4 * 50 * notional - 0.004])


def test_compute_pnl_quote_before_first_mid_is_nan_and_no_fills_is_flat():
    units = Units(TICK, LOT, is_known=True)
    mid = np.array([[20, 99, 101]])

    ts_ns, total = compute_pnl_quote(np.array([[10, 1, 100, 5, 0.0]]), mid, units)
    assert np.isnan(total[0]) and total[1] == pytest.approx(0.0)

    _, flat = compute_pnl_quote(np.empty((0, 5)), mid, units)
    assert flat.tolist() == [0.0]


def test_run_series_time_origin_is_the_earliest_timestamp():
    stats = {"book": {"mid_log": [[T0 + 5, 1, 3]]}, "gateway": {"fill_log": [
        {"ts_ns": T0 + 2, "side": 1, "px_tick": 2, "qty_lot": 1, "fee": 0.0, "maker": True}]}}

    series = RunSeries.from_stats(stats)

    assert series.t0_ns == T0 + 2
    assert series.seconds(series.mid).tolist() == [3e-9]
    assert series.fills[0, 0] == 0.0


def test_compute_pnl_of_an_inverse_contract_is_in_the_base_coin():
    units = Units(0.01, 1.0, is_known=True, contract_size=10.0)  # BCHUSD_PERP
    fills = np.array([[10, 1, 40_000, 5, 0.0], [30, -1, 50_000, 5, 0.0]])  # 5 contracts: 400.00 -> 500.00
    mid = np.array([[5, 39_999, 40_001], [20, 44_999, 45_001]])  # mid 400, then 450

    ts_ns, total = compute_pnl_quote(fills, mid, units)

    assert ts_ns.tolist() == [5, 10, 20, 30]
    assert total == pytest.approx([0.0, 0.0, 50 * (1 / 400 - 1 / 450), 50 * (1 / 400 - 1 / 500)])
    assert units.size_label == "contracts" and units.money_label == "base coin"
