"""Endpoint names of one pipeline: ipc:// files under the run directory, or tcp:// ports.

Each endpoint has one binder (named here) and any number of connecters. Over tcp every endpoint
gets a fixed offset from `ipc.tcp_base_port`, so another host finds it from the same config.
"""

from __future__ import annotations

from pathlib import Path

from ipc.shm import segment_name, segment_prefix
from mm.config import PROCESS_NAMES, Config, run_dir

# name -> (binding process, socket family); order fixes the tcp port offsets: append only.
ENDPOINTS: dict[str, str] = {
    "md": "feed",          # XPUB market data -> book, gateway (sim venue)
    "feedctl": "feed",     # PULL snapshot requests <- book
    "book": "book",        # XPUB BookChanged -> signal, quoter, risk
    "signal": "signal",    # XPUB SignalUpdated -> quoter, risk
    "intents": "risk",     # PULL order intents <- quoter
    "risk": "risk",        # XPUB RiskRejected / RiskStatus -> quoter
    "orders": "gateway",   # PULL approved orders <- risk
    "events": "gateway",   # XPUB order events -> risk, quoter
    "control": "risk",     # REP operator console
    **{f"ctl.{p}": p for p in PROCESS_NAMES},  # XPUB heartbeats and control events -> all
    "barrier": "book",     # PULL replay lockstep: barrier cleared <- quoter
}


def endpoint(config: Config, name: str) -> str:
    if name not in ENDPOINTS:
        raise KeyError(f"unknown endpoint {name!r}")
    if config.ipc.transport == "tcp":
        port = config.ipc.tcp_base_port + list(ENDPOINTS).index(name)
        return f"tcp://{config.ipc.tcp_host}:{port}"
    return f"ipc://{socket_path(config, name)}"


def socket_path(config: Config, name: str) -> Path:
    return run_dir(config) / f"{name}.sock"


def shm_name(config: Config, writer: str, what: str) -> str:
    """Shared-memory segment names: mm.<instance>.<writer>.<what> (ipc/shm.py names them)."""
    return segment_name(config.pipeline.name, writer, what)


def shm_prefix(config: Config) -> str:
    return segment_prefix(config.pipeline.name)


def pid_path(config: Config, process: str) -> Path:
    return run_dir(config) / f"{process}.pid"


def stats_path(config: Config, process: str) -> Path:
    return run_dir(config) / f"{process}.stats.json"


def latency_path(config: Config) -> Path:
    """The gateway's raw latency samples of the last run (numpy .npz)."""
    return run_dir(config) / "gateway.latency.npz"
