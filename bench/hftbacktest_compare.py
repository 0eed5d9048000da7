"""hftbacktest 2.4.4 on our captures, timed: the yardstick of issue 14 ("replay at backtester speed").

For each raw capture (`<recv_ts_ns> <json>` gzip, Binance USD-M combined-stream frames plus the
wrapped REST snapshot `{"rest": ..., "data": ...}`) this times, in a fresh process of a throwaway
virtualenv that holds hftbacktest (never a project dependency):

- adapter: our capture -> the line format hftbacktest's Binance-futures recorder writes (the REST
  reply unwrapped to a bare line, one symbol kept: hftbacktest's converter does not tell symbols
  apart). Not hftbacktest's work: printed, left out of `total`.
- convert: `hftbacktest.data.utils.binancefutures.convert` (json per line, float levels, latency
  and event-order correction) of the adapted file into its event array. Its correction helpers are
  numba functions too: `conv 1st` is the first call (their compile included), `conv hot` a second
  call on the same file in the same process.
- loop: the grid-trading example of hftbacktest's documentation (numba `njit`) on that array
  (set-up included), in a `HashMapMarketDepthBacktest` with constant 1 ms order entry / response latency, the
  risk-adverse queue model, no partial fills, maker -0.5 bp / taker 7 bp, a 100 ms step and a
  Recorder. `loop 1st` is the first call in the process, numba's compile included (numba's
  on-disk cache is off); `loop hot` a second call on a fresh backtest in the same process,
  compiled code reused.
- compile = (conv 1st - conv hot) + (loop 1st - loop hot): numba's compile cost, about.
- total = conv 1st + loop 1st (what a fresh `python backtest.py` pays); `tot hot` = conv hot +
  loop hot (every numba function compiled already); frames/s = capture lines / total (or / tot
  hot). The hftbacktest import (numba and its Rust library load) is printed apart, in neither.
  `total cpu` = the CPU seconds (process time, every thread) of conv 1st + loop 1st.

With `--mm`, `mm replay FILE --max --report <tmp>` runs too (a subprocess, wall clock, whole
process, start-up included), twice, on a decoded-capture cache of its own (`XDG_CACHE_HOME` a
fresh temporary folder): `cold` is the first run, which decodes the capture and writes the cache
(the counterpart of hftbacktest's convert), `warm` the second, which reads it back. The ratios
hold the cold run against hftbacktest's total (convert + loop, numba's compile included): the
fair comparison, since the cache is mm's conversion. With `--processes` the same through the six
processes (`--engine processes`). `cold cpu` is the cold run's CPU seconds (user + system, its
own and its children's: the baseline run, the six processes) and `cpu/cpu` its ratio to
hftbacktest's `total cpu`: the figure a loaded machine disturbs least.

    python bench/hftbacktest_compare.py [FILE ...] [--mm] [--processes] [--rounds N] [--venv DIR]

Default files: every binance-usdm-*.jsonl.gz in ../shared/data. The venv is made on first use
(`pip install hftbacktest==2.4.4` from the package index); a shared machine's timings are noisy:
`--rounds N` runs everything N times, interleaved (hftbacktest, then mm, file by file), prints each
round and then a table of each figure's best over the rounds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
HFTBACKTEST = "hftbacktest==2.4.4"
DEFAULT_VENV = ROOT / "build" / "hftbacktest-venv"


# --- the parent: venv, one worker process per file, the table -----------------------------------

def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import hftbacktest, sys; sys.exit(hftbacktest.__version__ != '2.4.4')"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"making {venv} with {HFTBACKTEST} (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", HFTBACKTEST], check=True)
    subprocess.run(probe, check=True)
    return python


def matplotlib_dir() -> str:
    """Where matplotlib keeps its config and font cache for this user (its own default)."""
    if os.environ.get("MPLCONFIGDIR"):
        return os.environ["MPLCONFIGDIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(cache) / "matplotlib")


def run_mm(path: Path, engine: str = "inproc") -> tuple[float, float, float]:
    """(cold, warm, cold CPU) seconds of `mm replay FILE --max`: the first run on an empty cache
    folder of its own (decode + write the cache), then the second on the cache the first wrote;
    the CPU (user + system) of the first and of every process it started and waited for."""
    mm = ROOT / ".venv" / "bin" / "mm"
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # matplotlib keeps its font cache under XDG_CACHE_HOME too: leave it where it is
        env = {**os.environ, "XDG_CACHE_HOME": f"{tmp}/cache", "MPLCONFIGDIR": matplotlib_dir()}
        for _ in ("cold", "warm"):
            start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run([str(mm), "replay", str(path), "--max", "--engine", engine,
                                   "--report", f"{tmp}/report.json", "--quiet"],
                                  capture_output=True, text=True, env=env)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                raise RuntimeError(f"mm replay {path} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return walls[0], walls[1], cpus[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--mm", action="store_true", help="also time `mm replay FILE --max`")
    parser.add_argument("--processes", action="store_true",
                        help="also time `mm replay FILE --max --engine processes` (the six processes)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="time everything this many times, interleaved, and keep each figure's best")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return 0
    files = args.files or sorted(DATA.glob("binance-usdm-*.jsonl.gz"))
    if not files:
        parser.error(f"no capture given and none in {DATA}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    python = ensure_venv(args.venv)
    engines = [engine for wanted, engine in ((args.mm, "inproc"), (args.processes, "processes")) if wanted]
    cols = ["frames", "adapt s", "import s", "conv 1st s", "conv hot s", "loop 1st s", "loop hot s",
            "compile s", "total s", "frames/s", "tot hot s", "hot fr/s", "total cpu s"] + (
                ["mm cold s", "mm warm s", "cold/total", "warm/total", "cold fr/s", "warm fr/s", "cold cpu s",
                 "cpu/cpu"] if args.mm else []) + (
                ["proc cold s", "proc warm s", "pcold/total", "pwarm/total", "pcold fr/s", "pwarm fr/s",
                 "pcold cpu s", "pcpu/cpu"] if args.processes else [])
    header = f"{'file':<40}" + "".join(f"{c:>12}" for c in cols)
    best: dict[Path, dict] = {}
    for n in range(args.rounds):
        if args.rounds > 1:
            print(f"round {n + 1} of {args.rounds}")
        print(header)
        sys.stdout.flush()
        for path in files:
            done = subprocess.run([str(python), __file__, "--worker", str(path)], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{path.name:<40} worker failed: {done.stderr.strip()[-600:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            for engine in engines:
                r[f"{engine}_cold_s"], r[f"{engine}_warm_s"], r[f"{engine}_cold_cpu_s"] = run_mm(path, engine)
            seen = best.setdefault(path, r)
            for key, value in r.items():
                if key.endswith("_s"):
                    seen[key] = min(seen[key], value)
            print_row(path, r, engines)
    if args.rounds > 1:
        print(f"best of {args.rounds} rounds (each figure its least; the ratios of those)")
        print(header)
        for path, r in best.items():
            print_row(path, r, engines)
    return 0


def print_row(path: Path, r: dict, engines: list[str]) -> None:
    total = r["convert_s"] + r["loop_first_s"]
    hot = r["convert_hot_s"] + r["loop_hot_s"]
    compile_s = r["convert_s"] - r["convert_hot_s"] + r["loop_first_s"] - r["loop_hot_s"]
    row = [r["frames"], r["adapt_s"], r["import_s"], r["convert_s"], r["convert_hot_s"], r["loop_first_s"],
           r["loop_hot_s"], compile_s, total, r["frames"] / total, hot, r["frames"] / hot, r["total_cpu_s"]]
    for engine in engines:
        cold, warm, cpu = r[f"{engine}_cold_s"], r[f"{engine}_warm_s"], r[f"{engine}_cold_cpu_s"]
        row += [cold, warm, cold / total, warm / total, r["frames"] / cold, r["frames"] / warm, cpu,
                cpu / r["total_cpu_s"]]
    cells = [f"{v:>12d}" if isinstance(v, int) else f"{v:>12.0f}" if v >= 1000 else f"{v:>12.3f}" for v in row]
    print(f"{path.name:<40}" + "".join(cells) + f"   ({r['symbol']}, {r['events']} hbt events, {r['fills']} fills)")
    sys.stdout.flush()


# --- the worker: runs inside the hftbacktest venv ------------------------------------------------

def adapt(src: Path, dst: Path) -> tuple[int, str, int, int]:
    """Our capture -> hftbacktest's recorder format, one symbol (the first with a REST snapshot).
    Returns (lines in the capture, symbol, price decimals, qty decimals)."""
    with gzip.open(src, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    symbol = ""
    for line in lines:
        if b'{"rest":' in line[:40] and b"/depth" in line[:120]:
            rest = json.loads(line.partition(b" ")[2])["rest"]
            symbol = next(p.partition("=")[2] for p in rest.partition("?")[2].split("&") if p.startswith("symbol="))
            break
    if not symbol:
        raise ValueError(f"{src}: no REST depth snapshot")
    tag = b'"s":"' + symbol.upper().encode() + b'"'
    out, decimals = [], None
    for line in lines:
        ts, _, body = line.partition(b" ")
        if body.startswith(b'{"rest":'):
            msg = json.loads(body)
            if "/depth" in msg["rest"] and f"symbol={symbol}" in msg["rest"]:
                out.append(ts + b" " + json.dumps(msg["data"], separators=(",", ":")).encode())
        elif tag in body:
            if decimals is None and b'"depthUpdate"' in body:
                data = json.loads(body)["data"]
                px, qty = (data["b"] or data["a"])[0]
                decimals = (len(px.partition(".")[2]), len(qty.partition(".")[2]))
            out.append(ts.rjust(19, b"0") + b" " + body)
    with gzip.open(dst, "wb", compresslevel=1) as f:
        f.write(b"\n".join(out) + b"\n")
    return len(lines), symbol.upper(), *(decimals or (2, 3))


def worker(path: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        adapted = Path(tmp) / "adapted.gz"
        t0 = time.perf_counter()
        frames, symbol, px_dec, qty_dec = adapt(path, adapted)
        t1 = time.perf_counter()
        import numpy as np
        from hftbacktest import GTX, LIMIT, BacktestAsset, HashMapMarketDepthBacktest, Recorder
        from hftbacktest.data.utils import binancefutures
        from numba import njit, uint64
        from numba.typed import Dict
        t2, cpu2 = time.perf_counter(), time.process_time()
        devnull = open(os.devnull, "w")
        stdout, sys.stdout = sys.stdout, devnull  # convert prints its progress
        try:
            data = binancefutures.convert(str(adapted), combined_stream=True)
            t3, cpu3 = time.perf_counter(), time.process_time()
            binancefutures.convert(str(adapted), combined_stream=True)  # its numba helpers compiled now
            t4 = time.perf_counter()
        finally:
            sys.stdout = stdout

    @njit
    def gridtrading(hbt, recorder, grid_num, max_position, order_qty):
        """hftbacktest's documented grid-trading example (tutorials: "Grid Trading")."""
        asset_no = 0
        tick_size = hbt.depth(asset_no).tick_size
        grid_interval = tick_size * 10
        half_spread = tick_size * 20
        while hbt.elapse(100_000_000) == 0:  # 100 ms
            hbt.clear_inactive_orders(asset_no)
            depth = hbt.depth(asset_no)
            position = hbt.position(asset_no)
            orders = hbt.orders(asset_no)
            best_bid = depth.best_bid
            best_ask = depth.best_ask
            mid_price = (best_bid + best_ask) / 2.0
            bid_price = np.floor((mid_price - half_spread) / grid_interval) * grid_interval
            ask_price = np.ceil((mid_price + half_spread) / grid_interval) * grid_interval
            new_bid_orders = Dict.empty(np.uint64, np.float64)
            if position < max_position and np.isfinite(bid_price):
                for _ in range(grid_num):
                    new_bid_orders[uint64(round(bid_price / tick_size))] = bid_price
                    bid_price -= grid_interval
            new_ask_orders = Dict.empty(np.uint64, np.float64)
            if position > -max_position and np.isfinite(ask_price):
                for _ in range(grid_num):
                    new_ask_orders[uint64(round(ask_price / tick_size))] = ask_price
                    ask_price += grid_interval
            order_values = orders.values()
            while order_values.has_next():
                order = order_values.get()
                if order.cancellable:
                    if (order.side == 1 and order.order_id not in new_bid_orders) or (
                        order.side == -1 and order.order_id not in new_ask_orders
                    ):
                        hbt.cancel(asset_no, order.order_id, False)
            for order_id, order_price in new_bid_orders.items():
                if order_id not in orders:
                    hbt.submit_buy_order(asset_no, order_id, order_price, order_qty, GTX, LIMIT, False)
            for order_id, order_price in new_ask_orders.items():
                if order_id not in orders:
                    hbt.submit_sell_order(asset_no, order_id, order_price, order_qty, GTX, LIMIT, False)
            recorder.record(hbt)
        return True

    def one_loop() -> tuple[float, float, int]:
        start, cpu_start = time.perf_counter(), time.process_time()  # the backtest's set-up included
        asset = (
            BacktestAsset()
            .data([data])
            .linear_asset(1.0)
            .constant_latency(1_000_000, 1_000_000)
            .risk_adverse_queue_model()
            .no_partial_fill_exchange()
            .trading_value_fee_model(-0.00005, 0.0007)
            .tick_size(10.0 ** -px_dec)
            .lot_size(10.0 ** -qty_dec)
            .last_trades_capacity(0)
        )
        hbt = HashMapMarketDepthBacktest([asset])
        recorder = Recorder(1, 10_000_000)
        gridtrading(hbt, recorder.recorder, 20, 10.0 ** -qty_dec * 1000, 10.0 ** -qty_dec * 10)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        fills = int(hbt.state_values(0).num_trades)
        hbt.close()
        return elapsed, cpu, fills

    loop_first, loop_first_cpu, fills = one_loop()
    loop_hot, _, _ = one_loop()
    return {"frames": frames, "symbol": symbol, "events": int(len(data)), "fills": fills,
            "adapt_s": t1 - t0, "import_s": t2 - t1, "convert_s": t3 - t2, "convert_hot_s": t4 - t3,
            "loop_first_s": loop_first, "loop_hot_s": loop_hot, "total_cpu_s": cpu3 - cpu2 + loop_first_cpu}


if __name__ == "__main__":
    sys.exit(main())
