"""Leave-one-capture-out (LOCO) choice of the quoter's fee / adverse-selection defaults, at the
default (non-zero) fees, over every Binance capture; and the table of issue 18 (gross, fees, net,
fills, markouts of the strategy beside the fixed-spread baseline).

    .venv/bin/python bench/quoter_loco.py [--data /work/shared/data] [--jobs 2] [--write]

1. Each capture is decoded once and replayed through the in-process engine (`mm replay`'s engine,
   default config, the capture's own market and fee tier, its default symbol) with the fixed-spread
   baseline and with every candidate setting of the quoter's free knobs (CANDIDATES: how much of the
   expected adverse selection the half-spread covers, and what the side stop says a fill earns).
2. A setting passes a capture where fixed spread fills when it fills too and its net PnL per traded
   notional is above fixed spread's. `score` over a set of captures: the passes, then the mean
   margin of net PnL per notional over fixed spread's on the captures where it filled (0 where not).
3. For each capture c, the setting chosen without c (best score on the others) is scored on c.

The script prints, per capture, fixed spread, the config's default setting and (where it differs) the
held-out fold's choice, and says whether every fold chose the config's defaults (exit 1 when not).
`--write` stores the figures in bench/quoter_loco.json; `--stored` prints them again without replaying.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mm.config import QuoterConfig, load_config  # noqa: E402

CANDIDATES: dict[str, tuple[Any, ...]] = {
    "adverse_selection_weight": (0.0, 0.5, 1.0),
    "edge_prior": ("zero_profit", "quote_distance", "adverse_selection"),
}
TABLE = Path(__file__).with_name("quoter_loco.json")


def binance_captures(data: Path) -> list[Path]:
    return sorted(data.glob("binance*.jsonl.gz"))


def settings() -> list[dict[str, Any]]:
    """Every candidate; with weight 0 the side stop is off, so edge_prior does not matter (one setting)."""
    out = []
    for weight in CANDIDATES["adverse_selection_weight"]:
        for prior in CANDIDATES["edge_prior"] if weight > 0 else (QuoterConfig().edge_prior,):
            out.append({"adverse_selection_weight": weight, "edge_prior": prior})
    return out


def key_of(setting: dict[str, Any]) -> str:
    return ",".join(f"{k}={setting[k]}" for k in CANDIDATES)


def _row(config: Any, decoded: Any, quoter: Any = None) -> dict[str, Any]:
    from processes.inproc import InprocReplay
    from processes.launcher import comparison_row, write_outputs

    engine = InprocReplay(config, quoter)
    engine.run(decoded.messages, None)
    report = write_outputs(config, engine.stats(decoded.source), 0.0, None, {}, plots=False)
    row = comparison_row(report)
    keep = ("fills", "gross_pnl_per_notional_bps", "fees_per_notional_bps", "pnl_per_notional_bps", "pnl_quote",
            "gross_pnl_quote", "fees_quote", "traded_notional_quote", "spread_capture_bps", "markout_bps",
            "markout_pnl_bps", "quoted_s")
    return {k: row[k] for k in keep}


def replay_capture(path: Path) -> tuple[str, dict[str, Any]]:
    """(name, {"fixed_spread": row, key: row for each setting, "symbol", "maker_fee_bps"})."""
    from mm.fees import config_fees
    from mm.stages.quoter import FixedSpreadStep
    from processes.launcher import BaselineRun, DecodedInput, replay_config

    logging.disable(logging.CRITICAL)
    config = replay_config(load_config(None), [path], symbol=None, speed=0.0)
    decoded = DecodedInput(config, [path])
    rows: dict[str, Any] = {"symbol": config.instrument.symbol, "maker_fee_bps": config_fees(config).maker_bps}
    fixed = FixedSpreadStep(config, "fx", half_spread_ticks=BaselineRun.HALF_SPREAD_TICKS)
    rows["fixed_spread"] = _row(config, decoded, fixed)
    for setting in settings():
        quoter = msgspec.structs.replace(config.quoter, **setting)
        rows[key_of(setting)] = _row(msgspec.structs.replace(config, quoter=quoter), decoded)
    return path.name, rows


def passes(row: dict[str, Any], fixed: dict[str, Any]) -> bool:
    return row["fills"] > 0 and row["pnl_per_notional_bps"] > fixed["pnl_per_notional_bps"]


def score(captures: dict[str, Any], key: str, names: list[str]) -> tuple[int, float]:
    counted = [n for n in names if captures[n]["fixed_spread"]["fills"] > 0]
    wins = sum(passes(captures[n][key], captures[n]["fixed_spread"]) for n in counted)
    margins = [captures[n][key]["pnl_per_notional_bps"] - captures[n]["fixed_spread"]["pnl_per_notional_bps"]
               if captures[n][key]["fills"] > 0 else 0.0 for n in counted]
    return wins, sum(margins) / len(margins) if margins else 0.0


def loco(captures: dict[str, Any], names: list[str]) -> dict[str, str]:
    """The setting each fold chooses without its capture."""
    keys = [key_of(s) for s in settings()]
    return {held: max(keys, key=lambda k: score(captures, k, [n for n in names if n != held])) for held in names}


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(captures: dict[str, Any], chosen: dict[str, str], default_key: str) -> None:
    """Per capture: fixed spread, the config's default setting, and the held-out fold's choice where it differs."""
    print(f"{'capture':<40} {'symbol':<10} {'fee':>4} {'strategy':<9} {'fills':>5} {'gross bp/n':>10} "
          f"{'fees bp/n':>9} {'net bp/n':>9} {'net quote':>11} {'capture':>8} {'adverse 1s/5s/30s bp':>21} "
          f"{'markout 5s':>10} {'quoted s bid/ask':>17}")
    for name, rows in captures.items():
        lines = [("fixed", rows["fixed_spread"]), ("default", rows[default_key])]
        if chosen[name] != default_key:
            lines.append(("held-out", rows[chosen[name]]))
        for label, row in lines:
            adverse = row["markout_bps"]
            quoted = row["quoted_s"]
            print(f"{name:<40} {rows['symbol']:<10} {rows['maker_fee_bps']:>4g} {label:<9} {row['fills']:>5} "
                  f"{row['gross_pnl_per_notional_bps']:>10.3f} {row['fees_per_notional_bps']:>9.3f} "
                  f"{row['pnl_per_notional_bps']:>9.3f} {row['pnl_quote']:>11.4g} "
                  f"{_fmt(row['spread_capture_bps'], '.2f'):>8} "
                  f"{'/'.join(_fmt(adverse.get(h), '.2f') for h in ('1s', '5s', '30s')):>21} "
                  f"{_fmt(row['markout_pnl_bps'].get('5s'), '.2f'):>10} "
                  f"{quoted.get('bid', 0.0):>8.0f}/{quoted.get('ask', 0.0):<8.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--stored", action="store_true", help="print the stored table (no replays)")
    args = parser.parse_args()
    files = binance_captures(args.data)
    if args.stored:
        captures = json.loads(TABLE.read_text())["table"]
    elif not files:
        print(f"no binance*.jsonl.gz captures in {args.data}", file=sys.stderr)
        return 2
    else:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            captures = dict(pool.map(replay_capture, files, chunksize=1))
    names = sorted(captures)
    chosen = loco(captures, names)
    defaults = QuoterConfig()
    default_key = key_of({k: getattr(defaults, k) for k in CANDIDATES})
    for held, key in chosen.items():
        print(f"fold without {held}: {key}  held-out pass: {passes(captures[held][key], captures[held]['fixed_spread'])}")
    print()
    print_table(captures, chosen, default_key)
    stable = set(chosen.values()) == {default_key}
    print(f"\nconfig defaults: {default_key}; every fold chooses them: {stable}")
    if args.write and not args.stored:
        TABLE.write_text(json.dumps({"candidates": {k: list(v) for k, v in CANDIDATES.items()},
                                     "captures": {p.name: p.stat().st_size for p in files},
                                     "table": captures, "chosen": chosen}, indent=1, sort_keys=True) + "\n")
    return 0 if stable else 1


if __name__ == "__main__":
    sys.exit(main())
