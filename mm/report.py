"""The run report: assembled from each stage's final stats, in the keys DESIGN.md fixes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mm.config import PROCESS_NAMES

EMPTY_LATENCY = {"p50": 0, "p90": 0, "p99": 0, "max": 0, "count": 0}


def build_report(stats: dict[str, dict[str, Any]], *, wall_s: float, mode: str, pipeline: str, symbol: str,
                 tick_size: float, lot_size: float, contract_size: float = 0.0) -> dict[str, Any]:
    """`stats` maps process name -> what it wrote at its clean stop (missing = it did not stop cleanly).

    `contract_size` > 0: an inverse contract (mm.position): quantities are contracts, and the PnL,
    fees and traded notional are in the base coin; the instrument block says so.

    `duration_s` is the span of market time covered: the wall time of a live or sim run, the
    capture's own span in a replay. A replay's report holds only what the input and config decide,
    so two replays write byte-identical reports: its `latency_ns` is on the capture's clock (each
    event is handled completely before the next, so the pipeline adds no event time: zeros, with
    the count of orders), and the figures measured on this machine's clock go to `split_wall_clock`.
    """
    feed = stats.get("feed", {})
    book = stats.get("book", {})
    signal = stats.get("signal", {})
    risk = stats.get("risk", {})
    gateway = stats.get("gateway", {})
    quoter = stats.get("quoter", {})
    position = risk.get("position", {})
    top = book.get("top", {})
    latency = gateway.get("latency_ns", {"tick_to_order": dict(EMPTY_LATENCY)})

    def px(tick: int | None) -> float | None:  # exact decimal, then one rounding to float
        return None if tick is None else float(Decimal(tick) * Decimal(repr(tick_size)))

    def qty(lot: int | None) -> float | None:
        return None if lot is None else float(Decimal(lot) * Decimal(repr(lot_size)))

    if mode == "replay" and feed.get("last_ts_ns"):
        duration_s = (feed["last_ts_ns"] - feed["first_ts_ns"]) / 1e9
    else:
        duration_s = wall_s
    if mode == "replay":
        latency = {"clock": "event", **{name: {**EMPTY_LATENCY, "count": p.get("count", 0)}
                                         for name, p in latency.items()}}
    return {
        "pipeline": pipeline,
        "instrument": {"symbol": symbol, "tick_size": tick_size, "lot_size": lot_size,
                       **({"contract_size": contract_size, "settlement": "base"} if contract_size > 0 else {})},
        "wall_s": round(wall_s, 3),
        "mode": mode,
        "events": feed.get("events", 0),
        "duration_s": round(duration_s, 3),
        "stages": {
            name: {"in": stats[name].get("in", 0), "out": stats[name].get("out", 0),
                   "clean_stop": stats[name].get("clean_stop", False), "cpu_s": stats[name].get("cpu_s", 0.0),
                   "wakeups": stats[name].get("wakeups", 0), "work_turns": stats[name].get("work_turns", 0),
                   "work_cpu_s": stats[name].get("work_cpu_s", 0.0),
                   **({"preforward_ns": stats[name]["preforward_ns"]} if "preforward_ns" in stats[name] else {})}
            if name in stats
            else {"in": 0, "out": 0, "clean_stop": False}
            for name in PROCESS_NAMES
        },
        "latency_ns": latency,
        "orders": gateway.get("orders", {"sent": 0, "acked": 0, "filled": 0, "cancelled": 0, "rejected": 0}),
        "fills": gateway.get("fills", 0),
        "position": position.get("position", 0.0),
        "position_lot": position.get("position_lot", 0),
        "max_abs_position": risk.get("max_abs_position", 0.0),
        "traded_notional": risk.get("traded_quote", 0.0),
        "pnl": {"realized": position.get("realized", 0.0), "unrealized": position.get("unrealized", 0.0),
                "fees": position.get("fees", 0.0), "total": position.get("total", 0.0),
                "gross": position.get("realized", 0.0) + position.get("unrealized", 0.0),
                "net": position.get("total", 0.0)},
        "markouts": quoter.get("markouts", {}),
        "quoting": {key: quoter[key] for key in ("quoted_s", "edge_stops", "expected_adverse_bps", "expected_markout_bps")
                    if key in quoter},
        "book": {
            "updates": book.get("updates", 0), "resyncs": book.get("resyncs", 0), "gaps": book.get("gaps", 0),
            "crossed": book.get("crossed", 0),
            **{key: book.get(key, 0) for key in ("shadow_matches", "shadow_mismatches", "shadow_skipped",
                                                  "recoveries", "recover_ms_last", "recover_ms_max")},
            "top": {"bid_px": px(top.get("bid_px_tick")), "bid_qty": qty(top.get("bid_qty_lot")),
                    "ask_px": px(top.get("ask_px_tick")), "ask_qty": qty(top.get("ask_qty_lot"))},
        },
        "signal": signal_block(signal),
        "feed": {"snapshots": feed.get("snapshots", 0), "stream": feed.get("stream", {}),
                 "dropped": feed.get("dropped", {}),
                 # a replay's refused input by file:line (the first few), and how many there were
                 "problems": feed.get("problems", []), "problem_count": feed.get("problem_count", 0)},
        "risk": {"halts": risk.get("halts", 0), "soft_stops": risk.get("soft_stops", 0),
                 "hard_stops": risk.get("hard_stops", 0), "kills": risk.get("kills", 0),
                 "rejected_checks": risk.get("rejected_checks", {}), "trading": risk.get("trading", "unknown"),
                 "stop_reason": risk.get("stop_reason", "")},
        "gateway": {"reject_reasons": gateway.get("reject_reasons", {}),
                    **({"venue": gateway["venue"]} if "venue" in gateway else {})},  # live: requests by path
    }


def signal_block(signal: dict[str, Any]) -> dict[str, Any]:
    """Prequential scores of the online model (every prediction scored before its label is
    learned), of what the quoter was given (after the self-check's fallback), of the baselines and
    of each expert the model aggregates."""
    model = signal.get("model", {})
    return {
        "r2_oos": model.get("r2_oos"), "hit_rate": model.get("hit_rate"), "n": model.get("n", 0),
        "emitted": model.get("emitted", {}), "baselines": model.get("baselines", {}),
        "alpha_enabled": model.get("alpha_enabled"), "fallbacks": model.get("fallbacks", 0),
        "recoveries": model.get("recoveries", 0), "ic_rolling": model.get("ic_rolling"),
        # the emitted prediction beside the imbalance baseline on the same labels, and the independent
        # horizons those labels span (mm/signal.py SignalModel.versus_imbalance)
        "ic_standard_error": model.get("ic_standard_error"), "versus_imbalance": model.get("versus_imbalance", {}),
        "independent_labels": model.get("independent_labels", 0.0),
        **({"second_half": model["second_half"]} if "second_half" in model else {}),
        "features": model.get("features", []), "coefficients_bps": model.get("coefficients_bps", []),
        # the aggregation (mm/experts.py): each expert's figures and weight, the weights over time, the regret
        "model": model.get("model"), "experts": model.get("experts", {}), "weights": model.get("weights", {}),
        "aggregation": model.get("aggregation", {}),
        "counts": model.get("counts", {}), "predictions": signal.get("predictions", 0),
        "trades": signal.get("trades", 0), "volatility_bps_per_s": signal.get("volatility_bps_per_s", 0.0),
    }


WALL_CLOCK_STAGE_KEYS = ("cpu_s", "wakeups", "work_turns", "work_cpu_s", "preforward_ns")


def split_wall_clock(report: dict[str, Any], measured_latency_ns: dict[str, Any]) -> dict[str, Any]:
    """A replay's machine-measured figures, kept out of its deterministic report: the wall time,
    the tick-to-order and hop latencies on the wall clock, each stage's CPU and wakeups. Removes
    `wall_s` and the stages' CPU figures from `report` and returns them."""
    wall = {"wall_s": report.pop("wall_s"), "latency_ns": measured_latency_ns, "stages": {}}
    for name, stage in report["stages"].items():
        wall["stages"][name] = {key: stage.pop(key) for key in WALL_CLOCK_STAGE_KEYS if key in stage}
    return wall
