"""The shipped Grafana dashboard: valid JSON, every panel queries mm_ metrics the pipeline exports,
and every exported metric family has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "mm-dashboard.json"

# metric families the pipeline exports (processes/metrics.py), PromQL names
EXPORTED = {
    "mm_stage_messages_total", "mm_tick_to_order_seconds", "mm_hop_seconds", "mm_book_resyncs_total",
    "mm_book_gaps_total", "mm_orders_total", "mm_risk_rejects_total", "mm_position", "mm_pnl", "mm_risk_state",
    "mm_process_restarts_total", "mm_heartbeat_age_seconds",
}
HISTOGRAM_SERIES = re.compile(r"_(bucket|count|sum)$")
METRIC = re.compile(r"\b(mm_[a-z0-9_]+)")


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # panels of a collapsed row
    return out


def query_panels(dashboard: dict) -> list[dict]:
    return [panel for panel in all_panels(dashboard) if panel["type"] != "row"]


def family(series: str) -> str:
    return series if series in EXPORTED else HISTOGRAM_SERIES.sub("", series)


def test_dashboard_is_valid_json_with_identity():
    dashboard = load()

    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert query_panels(dashboard)


def test_dashboard_panel_ids_unique():
    ids = [panel["id"] for panel in all_panels(load())]

    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("panel", query_panels(load()), ids=lambda p: p["title"])
def test_dashboard_every_panel_expr_references_an_mm_metric(panel: dict):
    assert panel.get("targets"), f"panel {panel['title']!r} has no query"
    for target in panel["targets"]:
        names = METRIC.findall(target["expr"])
        assert names, f"panel {panel['title']!r}: {target['expr']!r} names no mm_ metric"
        unknown = {name for name in names if family(name) not in EXPORTED}
        assert not unknown, f"panel {panel['title']!r} queries {unknown}, which the pipeline does not export"


def test_dashboard_every_exported_family_has_a_panel():
    exprs = " ".join(t["expr"] for panel in query_panels(load()) for t in panel["targets"])

    shown = {family(name) for name in METRIC.findall(exprs)}

    assert EXPORTED - shown == set()


def test_dashboard_histograms_queried_through_buckets_or_counts():
    exprs = [t["expr"] for panel in query_panels(load()) for t in panel["targets"]]

    for expr in exprs:
        for name in METRIC.findall(expr):
            if name in ("mm_tick_to_order_seconds", "mm_hop_seconds"):
                pytest.fail(f"histogram {name} queried without _bucket/_count/_sum: {expr}")


def test_dashboard_datasource_and_stage_variables_used_by_panels():
    dashboard = load()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "mm_" in variables["stage"]["definition"]
    for panel in query_panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_panels_fit_the_24_column_grid():
    for panel in all_panels(load()):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
