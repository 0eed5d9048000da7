"""Issue 18's signal acceptance on every Binance capture, measured the way a user would: `mm replay FILE
--report R` (the in-process engine, the default config or `--config`), one capture at a time.

    .venv/bin/python bench/signal_acceptance.py [--data /work/shared/data] [--out DIR] [--config TOML]

Prints one row per capture: the traded symbol, the emitted signal's r2_oos beside the imbalance
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


def passes(emitted: dict, imbalance: dict) -> bool:
    return emitted["r2_oos"] > 0.0 and emitted["r2_oos"] >= imbalance["r2_oos"] and emitted["hit_rate"] > 0.52


def row(capture: Path, report: dict) -> dict:
    signal = report["signal"]
    versus = signal["versus_imbalance"]["all"]
    independent = float(signal["independent_labels"])
    return {"capture": capture.name.removesuffix(".jsonl.gz"), "symbol": report["instrument"]["symbol"],
            "r2_oos": versus["emitted"]["r2_oos"], "imbalance_r2_oos": versus["imbalance"]["r2_oos"],
            "hit_rate": versus["emitted"]["hit_rate"], "n": versus["emitted"]["n"],
            "independent_labels": independent,
            "ic_se": 1.0 / math.sqrt(independent) if independent > 0.0 else math.inf,
            "pass": passes(versus["emitted"], versus["imbalance"])}


def replay(capture: Path, out: Path, config: Path | None) -> dict:
    report = out / f"{capture.name.removesuffix('.jsonl.gz')}.json"
    command = [str(ROOT / ".venv" / "bin" / "mm"), "replay", str(capture), "--report", str(report), "--quiet"]
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
    args = parser.parse_args(argv)
    captures = sorted(args.data.glob("binance*.jsonl.gz"))
    if not captures:
        print(f"no binance*.jsonl.gz capture in {args.data}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{'capture':32s} {'symbol':10s} {'r2_oos':>9s} {'imbalance':>9s} {'hit':>6s} {'n':>6s} "
          f"{'indep':>8s} {'ic_se':>6s}")
    rows = []
    for capture in captures:
        r = row(capture, replay(capture, args.out, args.config))
        rows.append(r)
        print(f"{r['capture']:32s} {r['symbol']:10s} {r['r2_oos']:+9.5f} {r['imbalance_r2_oos']:+9.5f} "
              f"{r['hit_rate']:6.3f} {r['n']:6d} {r['independent_labels']:8.1f} {r['ic_se']:6.3f} "
              f"{'pass' if r['pass'] else 'FAIL'}", flush=True)
    print(f"pass on {sum(r['pass'] for r in rows)} of {len(rows)}")
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
