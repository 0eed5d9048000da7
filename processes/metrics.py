"""Prometheus metrics of the whole pipeline behind one endpoint (prometheus-client multiprocess mode).

Every process writes its series into `<run_dir>/metrics/` (mmap files); risk serves the merged
view at http://<metrics.host>:<metrics.port>/metrics. Nothing is recorded per message on the hot
path: each process flushes counter deltas and buffered latency samples on its heartbeat timer.
Every series has a `stage` label. `metrics.port = 0` turns metrics off.

PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is first imported in a process,
so this module imports it lazily, inside `StageMetrics.__init__`.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from mm.config import Config, run_dir
from mm.risk_rules import Reject

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3, 0.25)
TRADING_STATE_CODE = {"active": 0, "reducing": 1, "halted": 2}
ORDER_STATES = ("sent", "acked", "filled", "cancelled", "rejected")  # the gateway's mm_orders_total states


def metrics_dir(config: Config) -> Path:
    return run_dir(config) / "metrics"


def remove_metrics_dir(config: Config) -> None:
    shutil.rmtree(metrics_dir(config), ignore_errors=True)


class StageMetrics:
    """The metric families, labelled for one stage; counters are advanced by deltas."""

    def __init__(self, config: Config, stage: str) -> None:
        directory = metrics_dir(config)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        from prometheus_client import Counter, Gauge, Histogram, multiprocess

        self._multiprocess = multiprocess
        self.stage = stage
        self._last: dict[tuple[str, ...], float] = {}
        self.messages = Counter("mm_stage_messages_total", "Messages handled", ["stage", "direction"])
        self.decode_errors = Counter("mm_decode_errors_total", "Frames dropped as undecodable", ["stage"])
        self.restarts = Counter("mm_process_restarts_total", "Starts after an unclean exit", ["stage"])
        self.tick_to_order = Histogram("mm_tick_to_order_seconds", "Market event to first order out",
                                       ["stage"], buckets=LATENCY_BUCKETS_S)
        self.hop = Histogram("mm_hop_seconds", "Latency of one hop of the critical path", ["stage", "hop"],
                             buckets=LATENCY_BUCKETS_S)
        self.book_resyncs = Counter("mm_book_resyncs_total", "Book resyncs", ["stage"])
        self.book_gaps = Counter("mm_book_gaps_total", "Sequence gaps found", ["stage"])
        self.book_crossed = Counter("mm_book_crossed_total", "Crossed or locked books found", ["stage"])
        self.orders = Counter("mm_orders_total", "Order events by state", ["stage", "state"])
        self.risk_rejects = Counter("mm_risk_rejects_total", "Pre-trade checks failed", ["stage", "reason"])
        self.position = Gauge("mm_position", "Position (base units)", ["stage"], multiprocess_mode="mostrecent")
        self.pnl = Gauge("mm_pnl", "PnL (quote units)", ["stage", "kind"], multiprocess_mode="mostrecent")
        self.risk_state = Gauge("mm_risk_state", "0 active, 1 reducing, 2 halted", ["stage"],
                                multiprocess_mode="mostrecent")
        self.rate_limit_tokens = Gauge("mm_rate_limit_tokens", "Orders the rate limit still allows now",
                                       ["stage", "limiter"], multiprocess_mode="mostrecent")
        self.paused = Gauge("mm_paused", "1 when an operator paused quoting", ["stage"], multiprocess_mode="mostrecent")
        self.heartbeat_age = Gauge("mm_heartbeat_age_seconds", "Age of the last heartbeat seen by risk", ["stage"],
                                   multiprocess_mode="mostrecent")
        self.up = Gauge("mm_up", "1 while the process runs", ["stage"], multiprocess_mode="liveall")
        self.up.labels(stage).set(1)
        # every stage's traffic series exist from its start, at 0: a scrape never misses a stage that
        # has not flushed a message yet, and rate() has a first point
        for direction in ("in", "out"):
            self.messages.labels(stage, direction)
        self.decode_errors.labels(stage)
        # so do the counters a stage owns (a labelled counter is absent until its first inc(): a
        # dashboard or an alert on resyncs, rejects or restarts saw no series at all in a quiet run)
        self.restarts.labels(stage)
        if stage == "book":
            for counter in (self.book_resyncs, self.book_gaps, self.book_crossed):
                counter.labels(stage)
        elif stage == "gateway":
            for state in ORDER_STATES:
                self.orders.labels(stage, state)
        elif stage == "risk":
            for reject in Reject:
                self.risk_rejects.labels(stage, reject.value)

    def add(self, counter: Any, total: float, *labels: str) -> None:
        """Advance a counter to `total` (a running total kept by the process)."""
        key = (counter._name, *labels)
        delta = total - self._last.get(key, 0.0)
        if delta > 0:
            counter.labels(self.stage, *labels).inc(delta)
            self._last[key] = total

    def observe_many(self, histogram: Any, samples_ns: Any, *labels: str) -> None:
        child = histogram.labels(self.stage, *labels)
        for value in samples_ns:
            child.observe(value / 1e9)

    def close(self, pid: int) -> None:
        self._multiprocess.mark_process_dead(pid)


def serve(config: Config) -> Any:
    """Start the pipeline's one /metrics endpoint (a thread); None when off or the port is taken."""
    if config.metrics.port == 0:
        return None
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir(config)))
    try:
        server, _ = start_http_server(config.metrics.port, addr=config.metrics.host, registry=registry)
    except OSError as e:
        log.error("metrics endpoint %s:%d not started: %s", config.metrics.host, config.metrics.port, e)
        return None
    log.info("metrics at http://%s:%d/metrics", config.metrics.host, config.metrics.port)
    return server
