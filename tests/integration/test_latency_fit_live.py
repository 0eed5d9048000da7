"""The live gateway journals its order records, and `mm report latency` fits the round trips from
that journal: six processes live against `mm venue` on loopback, then the fit of gateway.journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from mm.config import journal_path
from tests.conftest import REPO_ROOT, mm_command, run_mm
from tests.integration.test_pipeline_venue import free_port_pair

pytestmark = pytest.mark.integration

API_KEY = "fitTestKey0123456789"
API_SECRET = "fitTestSecret-do-not-print-1a2b3c"


def test_live_gateway_journal_gives_the_latency_fit(make_config, tmp_path: Path):
    port = free_port_pair()
    env = {**os.environ, "MM_VENUE_KEYS": f"{API_KEY}:{API_SECRET}", "MM_API_KEY": API_KEY,
           "MM_API_SECRET": API_SECRET}
    venue = subprocess.Popen(mm_command("venue", "--port", str(port)), cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert venue.stdout.readline().startswith("venue ws=")
        rest = f"http://127.0.0.1:{port + 1}"
        config, path = make_config(pipeline={"mode": "live", "journal_dir": str(tmp_path / "journal")},
                                   feed={"ws_url": f"ws://127.0.0.1:{port}", "rest_url": rest},
                                   gateway={"venue": "binance", "rest_url": rest,
                                            "ws_api_url": f"ws://127.0.0.1:{port}/ws-api/v3"},
                                   risk={"max_orders_per_s": 10.0})
        run = subprocess.run(mm_command("run", "--config", str(path), "--duration", "8", "--quiet"),
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        venue.send_signal(signal.SIGTERM)
        venue.communicate(timeout=20)
    journal = journal_path(config, "gateway")
    fit = run_mm("report", "latency", str(journal), "--json")
    assert fit.returncode == 0, fit.stderr
    report = json.loads(fit.stdout)
    entry = report["entry"]
    assert entry["n"] > 0 and 0 < entry["quantiles_ms"][0] <= entry["quantiles_ms"][10] <= entry["quantiles_ms"][20]
    assert entry["quantiles_ms"][20] < 5000  # loopback round trips, in ms
    assert report["fill"]["entry_latency_ms"] == [round(q / 2, 6) for q in entry["quantiles_ms"]]
    text = run_mm("report", "latency", str(journal))
    assert text.returncode == 0 and "[fill]" in text.stdout
