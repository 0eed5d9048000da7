"""`mm report latency JOURNAL...`: read gateway journals, fit the order-entry / cancel latency
(mm/latency_model.py) and print it with the `[fill]` keys a replay takes."""

from __future__ import annotations

import json
from pathlib import Path

from mm.errors import MMError
from mm.journal import scan
from mm.latency_model import format_latency_report, latency_report, latency_samples


class LatencyFitError(MMError):
    pass


def journal_records(paths: list[Path]) -> list:
    """Every good record of the journals, in file order then journal order (a damaged tail is left out)."""
    records: list = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise LatencyFitError(f"{path}: cannot read journal: {e.strerror}") from None
        try:
            records.extend(scan(data).records)
        except MMError as e:
            raise LatencyFitError(f"{path}: {e}") from None
    return records


def run_latency_fit(paths: list[Path], *, as_json: bool) -> int:
    samples = latency_samples(journal_records(paths))
    if not samples.entry_rtt_ns:
        raise LatencyFitError(f"{', '.join(map(str, paths))}: no answered new order in the journal "
                              "(a live run's gateway.journal has them: paper and sim runs journal none)")
    report = latency_report(samples)
    print(json.dumps(report, indent=2) if as_json else format_latency_report(report))
    return 0
