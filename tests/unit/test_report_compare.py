"""Report compare: every numeric leaf of two run reports with difference and ratio."""

from __future__ import annotations

from mm.report_compare import compare_reports, leaves


def report(**overrides):
    base = {
        "pipeline": "a", "mode": "sim", "events": 1000, "duration_s": 5.0,
        "stages": {"feed": {"in": 0, "out": 1000, "clean_stop": True}},
        "latency_ns": {"tick_to_order": {"p50": 200_000, "p99": 900_000, "count": 400}},
        "pnl": {"realized": 1.5, "unrealized": -0.25, "fees": 0.0},
        "signal": {"r2_oos": None, "n": 0},
    }
    for path, value in overrides.items():
        node = base
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return base


def table_row(text: str, key: str) -> list[str]:
    rows = [line.split() for line in text.splitlines() if line.split()[:1] == [key]]
    assert len(rows) == 1, f"{key}: {rows}"
    return rows[0]


def test_leaves_nested_dicts_and_lists_dotted_paths_in_order():
    tree = {"a": {"b": 1, "c": [10, {"d": 2}]}, "e": "x"}

    assert leaves(tree) == {"a.b": 1, "a.c[0]": 10, "a.c[1].d": 2, "e": "x"}


def test_compare_reports_every_numeric_leaf_has_a_row():
    a, b = report(), report(events=1500)

    text = compare_reports(a, b)

    for key in ("events", "duration_s", "stages.feed.in", "stages.feed.out", "latency_ns.tick_to_order.p50",
                "latency_ns.tick_to_order.p99", "latency_ns.tick_to_order.count", "pnl.realized",
                "pnl.unrealized", "pnl.fees", "signal.n"):
        table_row(text, key)


def test_compare_reports_int_leaf_difference_and_ratio():
    text = compare_reports(report(events=1000), report(events=1500))

    assert table_row(text, "events") == ["events", "1000", "1500", "+500", "1.5"]


def test_compare_reports_float_leaf_signed_difference():
    text = compare_reports(report(pnl__realized=1.5), report(pnl__realized=0.5))

    assert table_row(text, "pnl.realized") == ["pnl.realized", "1.5", "0.5", "-1", "0.3333"]


def test_compare_reports_zero_baseline_ratio_undefined_but_zero_over_zero_is_one():
    text = compare_reports(report(pnl__fees=0.0, signal__n=0), report(pnl__fees=0.2, signal__n=0))

    assert table_row(text, "pnl.fees")[-1] == "-"
    assert table_row(text, "signal.n")[-2:] == ["+0", "1"]


def test_compare_reports_booleans_are_not_numbers():
    text = compare_reports(report(), report(stages__feed__clean_stop=False))

    assert not [line for line in text.splitlines() if line.startswith("stages.feed.clean_stop ")]
    assert "stages.feed.clean_stop: True -> False" in text


def test_compare_reports_leaf_on_one_side_only_has_no_difference():
    b = report()
    b["orders"] = {"sent": 12}

    text = compare_reports(report(), b)

    assert table_row(text, "orders.sent") == ["orders.sent", "-", "12", "-", "-"]


def test_compare_reports_null_against_number_shown_without_difference():
    text = compare_reports(report(), report(signal__r2_oos=0.04))

    assert table_row(text, "signal.r2_oos") == ["signal.r2_oos", "null", "0.04", "-", "-"]


def test_compare_reports_header_names_both_runs():
    text = compare_reports(report(pipeline="base"), report(pipeline="wider"), names=("old.json", "new.json"))

    lines = text.splitlines()
    assert lines[0].startswith("old.json: pipeline=base mode=sim")
    assert lines[1].startswith("new.json: pipeline=wider")
    assert table_row(text, "key") == ["key", "old.json", "new.json", "new.json-old.json", "new.json/old.json"]
    assert "pipeline: base -> wider" in text


def test_compare_reports_same_report_all_differences_zero():
    text = compare_reports(report(), report())

    rows = [line.split() for line in text.splitlines()[5:] if line.strip()]
    assert rows and all(float(row[3]) == 0 and row[4] == "1" for row in rows)
    assert "differing" not in text
