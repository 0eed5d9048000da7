"""bench/signal_acceptance.py reads issue 18's signal acceptance off a replay report, and the LOCO
tool's experiment option extends the candidates without touching the stored selection."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import bench_module



ACCEPTANCE = bench_module("signal_acceptance")
LOCO = bench_module("signal_loco")


def _report(emitted_r2: float, imbalance_r2: float, hit_rate: float, independent: float) -> dict:
    return {"instrument": {"symbol": "BTCUSDT"},
            "signal": {"independent_labels": independent,
                       "versus_imbalance": {"all": {"emitted": {"r2_oos": emitted_r2, "hit_rate": hit_rate, "n": 400},
                                                    "imbalance": {"r2_oos": imbalance_r2, "hit_rate": 0.5,
                                                                  "n": 400}}}}}


@pytest.mark.parametrize(("emitted", "imbalance", "hit", "ok"), [
    (0.02, 0.01, 0.60, True),
    (0.0, -0.01, 0.60, False),  # r2 must be > 0: the zero predictor does not pass
    (0.01, 0.02, 0.60, False),  # below the imbalance baseline on the same labels
    (0.02, 0.01, 0.52, False),  # hit rate must be > 0.52
])
def test_row_applies_the_acceptance(emitted, imbalance, hit, ok):
    row = ACCEPTANCE.row(Path("binance-x.jsonl.gz"), _report(emitted, imbalance, hit, 25.0))

    assert row["pass"] is ok
    assert row["capture"] == "binance-x" and row["symbol"] == "BTCUSDT"
    assert row["ic_se"] == pytest.approx(0.2)


def test_row_without_labels_has_no_ic_noise_figure():
    assert math.isinf(ACCEPTANCE.row(Path("a.jsonl.gz"), _report(0.0, 0.0, 0.0, 0.0))["ic_se"])


def test_extra_candidates_extend_the_grid_not_the_stored_one():
    extended = LOCO.settings({**LOCO.CANDIDATES, "horizon_s": (0.5, 5.0)})

    assert len(extended) == 2 * len(LOCO.settings())
    assert {setting["horizon_s"] for setting in extended} == {0.5, 5.0}
    assert LOCO._value("0.5") == 0.5 and LOCO._value("true") is True and LOCO._value("rls") == "rls"
    with pytest.raises(SystemExit):
        LOCO.main(["--also", "horizon_s=1", "--write"])
