"""Which fill model predicts the fills a venue gives us: a live run against `mm venue` serving a
real capture, replayed through each queue-position model and latency model.

    .venv/bin/python bench/fill_calibration.py record --out DIR [--feed CAPTURE] [--duration S]
    .venv/bin/python bench/fill_calibration.py evaluate DIR

`record` starts `mm venue --feed CAPTURE --speed 1` (the capture's market data at its own pace, our
orders matched by the venue's engine, `--queue-model` of the venue if given), records the stream as a
client sees it (`mm capture` against the venue: REST snapshot + diffs + trades with receive times),
and runs the six-process pipeline in live mode against it (orders through the real REST client);
the gateway journal keeps what we sent and when, and what the venue answered and when.

`evaluate` fits the latency model from that journal (mm/latency_model.py), then replays the recorded
stream through a fresh fill model per candidate (mm/queue_models.py x latency), sending each of our
orders and cancels at the time the journal says it left, and compares each model's fills order by
order with the venue's (the cumulative filled quantity of the venue's last report per order):
orders predicted filled / not filled correctly, lots predicted vs actual, and the per-order absolute
error in lots. Prints one table row per model.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ipc.messages import BookSnapshot, DepthDiff, Trade  # noqa: E402
from mm.config import Config, dump_toml, load_config  # noqa: E402
from mm.latency_model import latency_report, latency_samples  # noqa: E402
from mm.orders import CancelRequested, OrderSent, OrderSubmitted, Side, VenueUpdate  # noqa: E402
from mm.stages.commands import Cancel, Place  # noqa: E402
from mm.stages.gateway import GatewayStep  # noqa: E402
from processes.latency_fit import journal_records  # noqa: E402
from processes.replay_source import replay_source  # noqa: E402

DATA = REPO.parent / "shared" / "data"
DEFAULT_FEED = DATA / "binance-spot-btcusdt-20240808.jsonl.gz"
KEY, SECRET = "calibKey0123456789", "calibSecret-not-a-real-one"
CANDIDATES = [("ratio", 2.0), ("risk_averse", 2.0), ("power_prob", 1.0), ("power_prob", 2.0), ("power_prob", 3.0),
              ("power_prob2", 2.0), ("power_prob3", 3.0), ("log_prob", 2.0), ("log_prob2", 2.0)]


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", 0))
                port = a.getsockname()[1]
                b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two free consecutive ports")


def mm(*args: str) -> list[str]:
    return [sys.executable, "-m", "mm.cli", *args]


def live_config(out: Path, port: int, levels: int, requote_ticks: int) -> Config:
    """The default pipeline in live mode against the local venue, quoting near the touch (no fee or
    adverse-selection widening: the point is fills to compare, not PnL)."""
    data = msgspec.to_builtins(load_config())
    rest = f"http://127.0.0.1:{port + 1}"
    data["pipeline"].update(name=f"calib{os.getpid()}", mode="live", run_dir=str(out / "run"),
                            journal_dir=str(out))
    data["metrics"]["port"] = 0
    data["feed"].update(ws_url=f"ws://127.0.0.1:{port}", rest_url=rest)
    data["gateway"].update(venue="binance", rest_url=rest, maker_fee_bps=0.0, taker_fee_bps=0.0)
    if "ws_api_url" in data["gateway"]:  # the venue's WebSocket API, on the streams' port
        data["gateway"]["ws_api_url"] = f"ws://127.0.0.1:{port}/ws-api/v3"
    # several levels a tick apart, requoted only on a move of several ticks: orders rest long enough
    # behind a queue (thin below the touch) for the queue model to matter
    data["quoter"].update(maker_fee_bps=0.0, adverse_selection_weight=0.0, levels=levels, level_spacing_ticks=1.0,
                          requote_tolerance_ticks=requote_ticks)
    data["risk"]["max_orders_per_s"] = 10.0
    return msgspec.convert(data, type=Config)


def record(out: Path, feed: Path, duration_s: float, venue_queue: list[str], speed: float, levels: int,
           requote_ticks: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    port = free_port_pair()
    config = live_config(out, port, levels, requote_ticks)
    config_path = out / "live.toml"
    config_path.write_text(dump_toml(config))
    env = {**os.environ, "MM_VENUE_KEYS": f"{KEY}:{SECRET}", "MM_API_KEY": KEY, "MM_API_SECRET": SECRET}
    venue = subprocess.Popen(mm("venue", "--port", str(port), "--feed", str(feed), "--speed", str(speed), *venue_queue),
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=open(out / "venue.err", "w"), text=True)
    capture = None
    try:
        line = venue.stdout.readline()
        if not line.startswith("venue ws="):
            raise SystemExit(f"mm venue did not start: {line!r}; see {out / 'venue.err'}")
        capture = subprocess.Popen(mm("capture", "--venue", f"ws://127.0.0.1:{port}", "--symbol", config.instrument.symbol,
                                      "--out", str(out / "stream.jsonl.gz")),
                                   cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(out / "capture.err", "w"))
        run = subprocess.run(mm("run", "--config", str(config_path), "--duration", str(duration_s), "--quiet",
                                "--report", str(out / "live.json")),
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=duration_s + 180)
        (out / "run.err").write_text(run.stderr)
        if run.returncode != 0:
            raise SystemExit(f"mm run failed ({run.returncode}): {run.stderr[-2000:]}")
    finally:
        for proc in (capture, venue):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    (out / "meta.json").write_text(json.dumps({"feed": str(feed), "duration_s": duration_s, "speed": speed,
                                               "levels": levels, "requote_ticks": requote_ticks,
                                               "venue_queue": venue_queue}))
    print(f"recorded {out}: gateway.journal, stream.jsonl.gz, live.json")


# ---- evaluate -----------------------------------------------------------------------------------------


class Journal(msgspec.Struct):
    orders: dict[str, OrderSubmitted]
    requests: list[tuple[int, int, str, str]]   # (ts_ns, seq, "place" | "cancel", client id)
    actual_lot: dict[str, int]                   # client id -> filled lots, the venue's last word
    first_fill_ns: dict[str, int]                # client id -> when the first report of a fill came back
    acked: set[str]


def read_journal(records: list[Any]) -> Journal:
    orders: dict[str, OrderSubmitted] = {}
    requests: list[tuple[int, int, str, str]] = []
    actual: dict[str, int] = {}
    first_fill: dict[str, int] = {}
    acked: set[str] = set()
    placed: set[str] = set()
    for seq, record in enumerate(records):
        match record:
            case OrderSubmitted():
                orders[record.client_id] = record
            case OrderSent(client_id=cid, ts_ns=ts) if cid not in placed:
                placed.add(cid)
                requests.append((ts, seq, "place", cid))
            case CancelRequested(client_id=cid, ts_ns=ts) if cid in placed:
                requests.append((ts, seq, "cancel", cid))
            case VenueUpdate(client_id=cid, filled_qty_lot=filled, status=status):
                actual[cid] = max(actual.get(cid, 0), filled)
                if filled > 0 and cid not in first_fill:
                    first_fill[cid] = record.ts_ns
                if status.value != "REJECTED":
                    acked.add(cid)
    requests.sort()
    return Journal(orders, requests, actual, first_fill, acked)


def predicted_fills(config: Config, journal: Journal, messages: list[Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Replay the recorded stream with our requests at their send times through config's fill model:
    lots filled and the first fill's time, per client id."""
    step = GatewayStep(config)
    filled: dict[str, int] = {}
    first: dict[str, int] = {}
    requests = journal.requests
    i = 0

    def take(events: list[Any]) -> None:
        for event in events:
            if type(event).__name__ == "Filled":
                filled[event.client_id] = filled.get(event.client_id, 0) + event.qty_lot
                first.setdefault(event.client_id, event.ts_ns)

    def send_until(ts_ns: int) -> None:
        nonlocal i
        while i < len(requests) and requests[i][0] <= ts_ns:
            ts, _, kind, cid = requests[i]
            i += 1
            if kind == "place":
                order = journal.orders[cid]
                take(step.on_command(ts, Place(cid, 1 if order.side is Side.BUY else -1, order.px_tick,
                                               order.qty_lot, True)))
            else:
                take(step.on_command(ts, Cancel(cid)))

    for msg in messages:
        t = type(msg)
        ts = msg.ts_recv_ns
        send_until(ts)
        if t is DepthDiff:
            take(step.on_diff(ts, msg.final_id, msg.bids, msg.asks))
        elif t is Trade:
            take(step.on_trade(ts, msg.px_tick, msg.qty_lot, msg.taker_side))
        elif t is BookSnapshot:
            take(step.on_snapshot(ts, msg.last_id, msg.bids, msg.asks))
    send_until(2**62)
    take(step.advance(2**62))
    return filled, first


def score(journal: Journal, predicted: dict[str, int], first: dict[str, int]) -> dict[str, Any]:
    ids = [cid for _, _, kind, cid in journal.requests if kind == "place" and cid in journal.acked]
    actual = journal.actual_lot
    both = sum(1 for c in ids if actual.get(c, 0) > 0 and predicted.get(c, 0) > 0)
    only_actual = sum(1 for c in ids if actual.get(c, 0) > 0 and predicted.get(c, 0) == 0)
    only_pred = sum(1 for c in ids if actual.get(c, 0) == 0 and predicted.get(c, 0) > 0)
    act_lots = sum(actual.get(c, 0) for c in ids)
    pred_lots = sum(predicted.get(c, 0) for c in ids)
    abs_err = sum(abs(actual.get(c, 0) - predicted.get(c, 0)) for c in ids)
    dts = sorted((first[c] - journal.first_fill_ns[c]) / 1e6 for c in ids if c in first and c in journal.first_fill_ns)
    return {"orders": len(ids), "filled_actual": both + only_actual, "filled_pred": both + only_pred,
            "both": both, "missed": only_actual, "extra": only_pred,
            "accuracy": round((len(ids) - only_actual - only_pred) / len(ids), 4) if ids else None,
            "lots_actual": act_lots, "lots_pred": pred_lots, "abs_err_lots": abs_err,
            "rel_err": round(abs_err / act_lots, 4) if act_lots else None,
            "fill_dt_p50_ms": round(dts[len(dts) // 2], 3) if dts else None}


def with_fill(config: Config, queue: str, power: float, latency: str, fit: dict | None, fixed_ms: float) -> Config:
    data = msgspec.to_builtins(config)
    data["pipeline"]["mode"] = "replay"
    data["gateway"].update(venue="sim", order_latency_ms=fixed_ms)
    data["fill"].update(queue_model=queue, queue_power=power, latency_model=latency)
    if latency == "empirical":
        data["fill"].update(entry_latency_ms=fit["entry_latency_ms"], cancel_latency_ms=fit["cancel_latency_ms"])
    return msgspec.convert(data, type=Config)


def evaluate(out: Path) -> list[dict[str, Any]]:
    records = journal_records([out / "gateway.journal"])
    journal = read_journal(records)
    fit = latency_report(latency_samples(records))
    base = msgspec.convert(msgspec.toml.decode((out / "live.toml").read_bytes()), type=Config)
    data = msgspec.to_builtins(base)
    data["pipeline"]["mode"] = "replay"
    data["replay"]["files"] = [str(out / "stream.jsonl.gz")]
    data["gateway"]["venue"] = "sim"
    base = msgspec.convert(data, type=Config)
    messages = list(replay_source(base).messages())
    entry, cancel = fit["entry"], fit["cancel"]
    print(f"journal: {len(journal.orders)} orders, {len(journal.requests)} requests; stream: {len(messages)} messages")
    for kind, f in (("entry", entry), ("cancel", cancel)):
        if f:
            q = f["quantiles_ms"]
            print(f"{kind} round trip ms: n={f['n']} p5={q[1]:.3f} p50={q[10]:.3f} p90={q[18]:.3f} max={q[20]:.3f} "
                  f"lognormal mu={f['lognormal_mu']:.3f} sigma={f['lognormal_sigma']:.3f} KS={f['lognormal_ks']:.3f}")
    median_one_way = entry["quantiles_ms"][10] / 2
    rows = []
    variants = [(q, n, "empirical") for q, n in CANDIDATES]
    variants += [("ratio", 2.0, "fixed0"), ("ratio", 2.0, "fixed_default"), ("ratio", 2.0, "fixed_median")]
    for queue, power, latency in variants:
        fixed_ms = {"fixed0": 0.0, "fixed_default": 1.0, "fixed_median": median_one_way}.get(latency, 0.0)
        config = with_fill(base, queue, power, "empirical" if latency == "empirical" else "fixed", fit["fill"],
                           fixed_ms)
        name = queue + (f"({power:g})" if queue.startswith("power") else "")
        lat = "fitted" if latency == "empirical" else f"fixed {fixed_ms:.3f} ms"
        rows.append({"queue_model": name, "latency": lat, **score(journal, *predicted_fills(config, journal, messages))})
    header = (f"{'queue model':<16} {'latency':<17} {'orders':>6} {'fill act':>8} {'fill pred':>9} {'missed':>6} "
              f"{'extra':>5} {'accuracy':>8} {'lots act':>8} {'lots pred':>9} {'|err| lots':>10} {'rel err':>7} "
              f"{'fill dt p50 ms':>14}")
    print(header)
    for r in rows:
        print(f"{r['queue_model']:<16} {r['latency']:<17} {r['orders']:>6} {r['filled_actual']:>8} {r['filled_pred']:>9} "
              f"{r['missed']:>6} {r['extra']:>5} {r['accuracy']!s:>8} {r['lots_actual']:>8} {r['lots_pred']:>9} "
              f"{r['abs_err_lots']:>10} {r['rel_err']!s:>7} {r['fill_dt_p50_ms']!s:>14}")
    (out / "calibration.json").write_text(json.dumps({"latency": fit, "rows": rows}, indent=2))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--feed", type=Path, default=DEFAULT_FEED)
    rec.add_argument("--duration", type=float, default=90.0)
    rec.add_argument("--venue-queue-model", default=None, help="the venue's own queue model (mm venue --queue-model)")
    rec.add_argument("--speed", type=float, default=1.0, help="the venue replays the capture this many times real time")
    rec.add_argument("--levels", type=int, default=5, help="quoter levels per side")
    rec.add_argument("--requote-ticks", type=int, default=5, help="quoter requote tolerance")
    ev = sub.add_parser("evaluate")
    ev.add_argument("dir", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        started = time.monotonic()
        record(args.out, args.feed, args.duration,
               ["--queue-model", args.venue_queue_model] if args.venue_queue_model else [], args.speed, args.levels,
               args.requote_ticks)
        print(f"record took {time.monotonic() - started:.0f} s")
    else:
        evaluate(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
