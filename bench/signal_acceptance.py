"""Issue 18's signal acceptance on every Binance capture, measured the way a user would: `mm replay FILE
--report R` (the in-process engine, the default config or `--config`), one capture at a time.

    .venv/bin/python bench/signal_acceptance.py [--data /work/shared/data] [--out DIR] [--config TOML]

Every symbol of a capture is scored (issue 18: "on every Binance capture"; a multi-symbol capture is
one market per symbol): one `mm replay FILE --symbol S` per symbol with a book snapshot, each on its
own book and model, and the labels pooled over the symbols (r2_oos = 1 - sum SSE / sum SS, hit rate =
sum hits / sum moves, from `signal.versus_imbalance.all.sums`). Before, only the first symbol with a
snapshot was scored, a quarter (COIN-M: a tenth) of the labels of the 30 s multi-symbol captures.
Pooled labels of different symbols count as independent ones in `indep`: an upper bound where
the symbols move together (COIN-M's perpetual and dated contracts of one coin).

Prints one row per capture: the symbols scored, the emitted signal's r2_oos beside the imbalance
baseline's on the same labels (`signal.versus_imbalance.all`), the emitted hit rate, the independent
labels those figures rest on (non-overlapping horizons, `signal.independent_labels`) and whether the
acceptance holds (emitted r2_oos > 0 and >= the imbalance baseline, hit rate > 0.52). `ic_se` is
1 / sqrt(independent labels), the noise of an information coefficient measured on them: where it is
near or above the skill a model can have (an IC of ~0.3 on the liquid captures), a pass or a fail there
is mostly chance. Exit status 0 when every capture passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mm.strategy_eval import book_symbols, pooled_scores  # noqa: E402


def passes(emitted: dict, imbalance: dict) -> bool:
    return emitted["r2_oos"] > 0.0 and emitted["r2_oos"] >= imbalance["r2_oos"] and emitted["hit_rate"] > 0.52


def _row(capture: Path, symbols: list[str], figures: dict, independent: float) -> dict:
    return {"capture": capture.name.removesuffix(".jsonl.gz"), "symbol": ",".join(symbols),
            "symbols": len(symbols), **figures, "independent_labels": independent,
            "ic_se": 1.0 / math.sqrt(independent) if independent > 0.0 else math.inf,
            "pass": passes({"r2_oos": figures["r2_oos"], "hit_rate": figures["hit_rate"]},
                           {"r2_oos": figures["imbalance_r2_oos"]})}


def row(capture: Path, report: dict) -> dict:
    """The acceptance on one replay's report (one symbol)."""
    signal = report["signal"]
    versus = signal["versus_imbalance"]["all"]
    figures = {"r2_oos": versus["emitted"]["r2_oos"], "imbalance_r2_oos": versus["imbalance"]["r2_oos"],
               "hit_rate": versus["emitted"]["hit_rate"], "n": versus["emitted"]["n"]}
    return _row(capture, [report["instrument"]["symbol"]], figures, float(signal["independent_labels"]))


def pooled_row(capture: Path, reports: list[dict]) -> dict:
    """The acceptance on the labels of every symbol's replay pooled (mm.strategy_eval.pooled_scores)."""
    if len(reports) == 1:
        return row(capture, reports[0])
    figures = pooled_scores([report["signal"] for report in reports])
    independent = figures.pop("independent_labels")
    return _row(capture, [report["instrument"]["symbol"] for report in reports], figures, independent)


def replay(capture: Path, out: Path, config: Path | None, symbol: str | None = None) -> dict:
    name = capture.name.removesuffix(".jsonl.gz")
    report = out / (f"{name}.{symbol}.json" if symbol else f"{name}.json")
    command = [str(ROOT / ".venv" / "bin" / "mm"), "replay", str(capture), "--report", str(report), "--quiet"]
    if symbol is not None:
        command += ["--symbol", symbol]
    if config is not None:
        command += ["--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(report.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/mm-signal-acceptance"))
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--first-symbol", action="store_true",
                        help="score only the first symbol with a snapshot (mm replay's default), as before")
    args = parser.parse_args(argv)
    captures = sorted(args.data.glob("binance*.jsonl.gz"))
    if not captures:
        print(f"no binance*.jsonl.gz capture in {args.data}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{'capture':32s} {'symbols':>7s} {'r2_oos':>9s} {'imbalance':>9s} {'hit':>6s} {'n':>6s} "
          f"{'indep':>8s} {'ic_se':>6s}")
    rows = []
    for capture in captures:
        symbols = [None] if args.first_symbol else (book_symbols(capture) or [None])
        reports = [replay(capture, args.out, args.config, symbol if len(symbols) > 1 else None)
                   for symbol in symbols]
        r = pooled_row(capture, reports)
        rows.append(r)
        print(f"{r['capture']:32s} {r['symbols']:7d} {r['r2_oos']:+9.5f} {r['imbalance_r2_oos']:+9.5f} "
              f"{r['hit_rate']:6.3f} {r['n']:6d} {r['independent_labels']:8.1f} {r['ic_se']:6.3f} "
              f"{'pass' if r['pass'] else 'FAIL'}", flush=True)
        if len(reports) > 1:
            for report in reports:
                s = row(capture, report)
                print(f"  {s['symbol']:30s} {1:7d} {s['r2_oos']:+9.5f} {s['imbalance_r2_oos']:+9.5f} "
                      f"{s['hit_rate']:6.3f} {s['n']:6d} {s['independent_labels']:8.1f} {s['ic_se']:6.3f}",
                      flush=True)
    print(f"pass on {sum(r['pass'] for r in rows)} of {len(rows)}")
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
