"""`mm bench latency`: the six processes on a paced synthetic feed (every event moves the touch,
so every event makes an order), tick-to-order and per-hop percentiles in ns; beside it, in the
same run, a bare ZeroMQ chain and a bare shared-memory chain of as many processes as the critical
path (processes/bare_chain.py) and the ratios of the medians (`ratio_p50` over the ZeroMQ chain,
`ratio_p50_shm` over the shm chain): what our code costs over each transport.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from mm.config import PROCESS_NAMES, Config, core_of, decode_config, dump_toml
from mm.stats import percentiles_ns
from processes.actor import core_for
from processes.bare_chain import run_bare_chain
from processes.launcher import Launcher
from processes.logsetup import setup_logging

CRITICAL_PATH = ("feed", "book", "quoter", "risk", "gateway")


def bench_config(base: Config, directory: Path, *, events: int, rate_hz: float, cores: dict[str, int]) -> Config:
    replace = msgspec.structs.replace
    return replace(
        base,
        pipeline=replace(base.pipeline, name=f"bench{os.getpid()}", run_dir=str(directory / "run")),
        feed=replace(base.feed, synthetic_hz=rate_hz, synthetic_events=events, cpu=cores["feed"]),
        book=replace(base.book, cpu=cores["book"]),
        signal=replace(base.signal, cpu=cores["signal"]),
        # no side stop: quote on every event whatever the fee (a bench of the order path, not of the strategy)
        quoter=replace(base.quoter, cpu=cores["quoter"], requote_tolerance_ticks=0, adverse_selection_weight=0.0),
        risk=replace(base.risk, cpu=cores["risk"], max_orders_per_s=1e9, max_position_lot=10**12,
                     max_notional_quote=1e18, max_book_age_ms=60_000.0, max_signal_age_ms=60_000.0),
        gateway=replace(base.gateway, cpu=cores["gateway"]),
        metrics=replace(base.metrics, port=0),
        log=replace(base.log, level="WARNING"),
    )


def placement(base: Config, pin: bool) -> dict[str, int]:
    """Unpinned without --pin. With it, each process on its configured `cpu` where it has one,
    else one core per process in order; with fewer cores than processes they share (said in the
    output). The bare chain runs on the critical path's cores, so the ratio compares like with like."""
    if not pin:
        return {name: -1 for name in PROCESS_NAMES}
    cores = sorted(os.sched_getaffinity(0))
    configured = {name: core_of(base, name) for name in PROCESS_NAMES}
    return {name: core_for(configured[name], cores) if configured[name] >= 0 else cores[i % len(cores)]
            for i, name in enumerate(PROCESS_NAMES)}


def run_latency_bench(base: Config, *, events: int, rate_hz: float, pin: bool, as_json: bool) -> int:
    setup_logging("WARNING", "bench")
    cores = placement(base, pin)
    warmup = max(50, events // 10)
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        directory = Path(tmp)
        config = bench_config(base, directory, events=events, rate_hz=rate_hz, cores=cores)
        config_path = directory / "bench.toml"
        config_path.write_text(dump_toml(config))
        decode_config(config_path.read_bytes(), str(config_path))  # what the children will read
        launcher = Launcher(config, str(config_path), duration_s=events / rate_hz + 60.0, report_path=None,
                            quiet=True)
        code = launcher.run()
        samples = launcher.latency_samples
        stages = launcher.report["stages"] if launcher.report else {}
        chain_cores = [cores[name] for name in CRITICAL_PATH]
        bare = run_bare_chain(directory, events=events, rate_hz=rate_hz, cores=chain_cores)
        bare_shm = run_bare_chain(directory, events=events, rate_hz=rate_hz, cores=chain_cores, transport="shm")
    tick_to_order = samples.get("tick_to_order", np.empty(0, np.int64))[warmup:]
    result: dict[str, Any] = {
        "tick_to_order": percentiles_ns(tick_to_order),
        "hops": {hop: percentiles_ns(values[warmup:]) for hop, values in samples.items() if hop != "tick_to_order"},
        "placement": {name: (None if core < 0 else core) for name, core in cores.items()},
        "bare_chain": percentiles_ns(bare.samples[warmup:]),
        "bare_chain_relay_work_cpu_us_per_turn": bare.relay_work_cpu_us,
        "bare_shm_chain": percentiles_ns(bare_shm.samples[warmup:]),
        "bare_shm_chain_relay_work_cpu_us_per_turn": bare_shm.relay_work_cpu_us,
        "critical_path": "shm" if config.ipc.critical_path == "shm" and config.ipc.transport == "ipc" else "zmq",
        "events": events, "rate_hz": rate_hz, "warmup_dropped": warmup,
        "stage_cpu_us_per_event": {name: round(stage.get("cpu_s", 0.0) / events * 1e6, 1)
                                   for name, stage in stages.items()},
        "stage_wakeups_per_event": {name: round(stage.get("wakeups", 0) / events, 2) for name, stage in stages.items()},
        "stage_work_cpu_us_per_turn": {name: round(stage.get("work_cpu_s", 0.0) / max(1, stage.get("work_turns", 0)) * 1e6, 1)
                                       for name, stage in stages.items()},
        # wakeup -> first send down the critical path, p50 / p99 in us: of each hop, what our code takes
        "stage_preforward_us": {name: {q: round(stage["preforward_ns"][q] / 1000, 1) for q in ("p50", "p99")}
                                for name, stage in stages.items() if "preforward_ns" in stage},
        "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu": _cpu_name(),
                    "python": platform.python_version()},
    }
    bare_p50 = result["bare_chain"]["p50"]
    result["ratio_p50"] = round(result["tick_to_order"]["p50"] / bare_p50, 3) if bare_p50 else None
    shm_p50 = result["bare_shm_chain"]["p50"]
    result["ratio_p50_shm"] = round(result["tick_to_order"]["p50"] / shm_p50, 3) if shm_p50 else None
    if as_json:
        print(json.dumps(result))
    else:
        print(format_table(result))
    return code


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_table(result: dict[str, Any]) -> str:
    rows = [("tick_to_order", result["tick_to_order"]), *result["hops"].items(),
            ("bare_chain (4 hops)", result["bare_chain"]), ("bare_shm_chain (4 hops)", result["bare_shm_chain"])]
    lines = [f"{'ns':<22} {'p50':>10} {'p90':>10} {'p99':>10} {'max':>10} {'count':>7}"]
    for name, p in rows:
        lines.append(f"{name:<22} {p['p50']:>10} {p['p90']:>10} {p['p99']:>10} {p['max']:>10} {p['count']:>7}")
    lines.append(f"critical path over: {result['critical_path']}")
    lines.append(f"ratio of medians (pipeline / bare chain): {result['ratio_p50']}")
    lines.append(f"ratio of medians (pipeline / bare shm chain): {result['ratio_p50_shm']}")
    lines.append(f"cpu per event (us, from RUNNING to stop, heartbeats included): {result['stage_cpu_us_per_event']}")
    lines.append(f"wakeups per event: {result['stage_wakeups_per_event']}")
    lines.append(f"own work per wakeup that handled messages (us of CPU, poll excluded; the feed works on its timer): {result['stage_work_cpu_us_per_turn']}")
    lines.append(f"a bare relay's receive + send, measured the same way (us of CPU): {result['bare_chain_relay_work_cpu_us_per_turn']}"
                 f" (zmq), {result['bare_shm_chain_relay_work_cpu_us_per_turn']} (shm)")
    lines.append(f"wakeup to first critical send (us of wall time, p50 / p99; the rest of a hop is transport and scheduler): "
                 f"{result['stage_preforward_us']}")
    lines.append(f"placement: {result['placement']}  machine: {result['machine']}")
    return "\n".join(lines)
