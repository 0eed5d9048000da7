"""What the live pipeline tests against `mm venue` (spot: test_pipeline_live_stream, USD-M:
test_pipeline_live_usdm) share: signed REST reads of the venue's own account, the venue's counters
(`GET /_mm/counts`), one `mm run` with a report, and the secret grep."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from mm.signing import HmacSigner
from tests.conftest import REPO_ROOT, mm_command


def signed_get(rest_url: str, path: str, params: dict[str, str], *, key: str, secret: str) -> object:
    query = HmacSigner(secret).signed_query({**params, "timestamp": str(time.time_ns() // 1_000_000)})
    request = urllib.request.Request(f"{rest_url}{path}?{query}", headers={"X-MBX-APIKEY": key})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def venue_counts(rest_url: str) -> dict[str, dict[str, int]]:
    """The venue's counters by source (market, engine, ws_api, user_data): the faults the run met."""
    with urllib.request.urlopen(f"{rest_url}/_mm/counts", timeout=5) as reply:
        return json.loads(reply.read())


def traded_quote(trades: list[dict]) -> float:
    """The quote notional of the venue's trades of the account (myTrades / userTrades rows)."""
    return float(sum(Decimal(t["quoteQty"]) for t in trades))


def run_report(path: Path, seconds: int, report_path: Path, env: dict[str, str]) -> tuple[dict, str]:
    """`mm run` for `seconds`; (its report, its stdout + stderr)."""
    run = subprocess.run(mm_command("run", "--config", str(path), "--duration", str(seconds), "--report",
                                    str(report_path)), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(report_path.read_text()), run.stdout + run.stderr


def assert_no_secret(texts: list[str], tmp_path: Path, secret: str) -> None:
    """`secret` is in none of `texts` nor in any file the run wrote under `tmp_path`."""
    texts = texts + [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png"]
    assert texts and all(secret not in text for text in texts)
