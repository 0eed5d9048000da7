"""A multi-symbol capture is scored on every symbol: mm.strategy_eval.book_symbols names the books a
replay can build, and pooled_scores pools the symbols' prequential labels exactly (as one Score over
all of them), which bench/signal_acceptance.py and bench/signal_loco.py use."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mm.config import SignalConfig
from mm.labels import Score
from mm.signal import SignalModel
from mm.strategy_eval import book_symbols, pooled_scores
from tests.conftest import bench_module
from tests.unit.test_signal_model import planted_stream

ACCEPTANCE = bench_module("signal_acceptance")


def _model(strength: float, seed: int) -> SignalModel:
    model = SignalModel(SignalConfig(ridge=100.0), keep_scored=True)
    for ts, bp, bq, ap, aq in planted_stream(1_500, strength, seed):
        model.on_book(ts, bp, bq, ap, aq, 10, 10)
    return model


def test_pooled_scores_equal_one_score_over_every_symbols_labels():
    models = [_model(20.0, 1), _model(0.0, 2)]  # one symbol with skill, one without
    emitted, imbalance = Score(), Score()
    for model in models:
        for _, _, _, imbalance_bps, emitted_bps, realised in model.scored:
            emitted.add(emitted_bps, realised)
            imbalance.add(imbalance_bps, realised)

    pooled = pooled_scores([model.report() for model in models])

    assert pooled["n"] == emitted.n == sum(model.report()["n"] for model in models)
    assert pooled["r2_oos"] == pytest.approx(emitted.r2_oos, rel=1e-12)
    assert pooled["imbalance_r2_oos"] == pytest.approx(imbalance.r2_oos, rel=1e-12)
    assert pooled["hit_rate"] == pytest.approx(emitted.hit_rate, rel=1e-12)
    assert pooled["independent_labels"] == pytest.approx(sum(m.independent_labels for m in models))
    # not the mean of the two r2s: the symbols' sums of squares weigh them
    r2s = [model.report()["emitted"]["r2_oos"] for model in models]
    assert min(r2s) < pooled["r2_oos"] < max(r2s)


def test_pooled_scores_reject_scores_on_different_labels():
    report = _model(0.0, 3).report()
    report["versus_imbalance"]["all"]["sums"]["imbalance"]["n"] += 1

    with pytest.raises(ValueError, match="not on the same labels"):
        pooled_scores([report])


def test_acceptance_pools_symbols_and_one_symbol_reads_as_before():
    reports = [{"instrument": {"symbol": symbol}, "signal": model.report()}
               for symbol, model in (("AUSDT", _model(20.0, 4)), ("BUSDT", _model(0.0, 5)))]

    one = ACCEPTANCE.pooled_row(Path("binance-x.jsonl.gz"), reports[:1])
    both = ACCEPTANCE.pooled_row(Path("binance-x.jsonl.gz"), reports)

    assert one == ACCEPTANCE.row(Path("binance-x.jsonl.gz"), reports[0])
    assert both["symbol"] == "AUSDT,BUSDT" and both["symbols"] == 2
    assert both["n"] == sum(r["signal"]["n"] for r in reports)
    assert both["independent_labels"] == pytest.approx(sum(r["signal"]["independent_labels"] for r in reports))


def test_book_symbols_are_the_depth_snapshots_in_file_order(tmp_path):
    def rest(path: str) -> str:
        return json.dumps({"rest": path, "data": {"lastUpdateId": 1, "bids": [], "asks": []}}, separators=(",", ":"))

    lines = [
        '{"stream":"ethusdt@depth@100ms","data":{}}',
        rest("/fapi/v1/depth?symbol=ETHUSDT&limit=1000"),
        rest("/api/v3/exchangeInfo?symbol=XRPUSDT"),  # not a book
        rest("/api/v3/depth?symbol=btcusdt&limit=1000"),
        rest("/fapi/v1/depth?symbol=ETHUSDT&limit=1000"),  # a resync: the same book
    ]
    path = tmp_path / "binance-multi.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.writelines(f"{1_000 + i} {line}\n" for i, line in enumerate(lines))

    assert book_symbols(path) == ["ETHUSDT", "BTCUSDT"]
