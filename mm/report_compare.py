"""Two run reports side by side: every numeric leaf with its difference (B - A) and ratio (B / A).

Pure: report dicts in, text out. Leaves are named by their dotted path in the report
(`latency_ns.tick_to_order.p99`, a list item as `name[0]`), in the order the reports hold them,
A's keys first. Booleans are not numbers here; text leaves that differ are listed after the table.
"""

from __future__ import annotations

from typing import Any

Number = int | float
MISSING = "-"


def leaves(report: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a nested dict / list, keyed by its dotted path, in document order."""
    out: dict[str, Any] = {}
    if isinstance(report, dict):
        for key, value in report.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(report, (list, tuple)):
        for index, value in enumerate(report):
            out.update(leaves(value, f"{prefix}[{index}]"))
    else:
        out[prefix] = report
    return out


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_number(value: Number) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


def format_difference(a: Number, b: Number) -> str:
    difference = b - a
    if isinstance(difference, int):
        return f"{difference:+d}"
    return f"{difference:+.6g}"


def format_ratio(a: Number, b: Number) -> str:
    """B / A; undefined (shown as '-') when A is 0, except 0 / 0, which is unchanged (1)."""
    if a == 0:
        return "1" if b == 0 else MISSING
    return f"{b / a:.4g}"


def compare_reports(a: dict[str, Any], b: dict[str, Any], *, names: tuple[str, str] = ("A", "B")) -> str:
    """The side-by-side text of `mm report compare A.json B.json`."""
    leaves_a, leaves_b = leaves(a), leaves(b)
    paths = list(leaves_a) + [path for path in leaves_b if path not in leaves_a]
    rows: list[tuple[str, str, str, str, str]] = []
    text_changes: list[str] = []
    for path in paths:
        value_a, value_b = leaves_a.get(path), leaves_b.get(path)
        numeric_a, numeric_b = is_number(value_a), is_number(value_b)
        if numeric_a and numeric_b:
            rows.append((path, format_number(value_a), format_number(value_b), format_difference(value_a, value_b),
                         format_ratio(value_a, value_b)))
        elif numeric_a or numeric_b:  # a number on one side only (absent, null or text on the other)
            rows.append((path, format_number(value_a) if numeric_a else _text(path, leaves_a),
                         format_number(value_b) if numeric_b else _text(path, leaves_b), MISSING, MISSING))
        elif value_a != value_b or (path in leaves_a) != (path in leaves_b):
            text_changes.append(f"  {path}: {_text(path, leaves_a)} -> {_text(path, leaves_b)}")

    name_a, name_b = names
    header = ("key", name_a, name_b, f"{name_b}-{name_a}", f"{name_b}/{name_a}")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"{name_a}: {_describe(a)}", f"{name_b}: {_describe(b)}", ""]
    lines.append(_row(header, widths))
    lines.append(_row(tuple("-" * w for w in widths), widths))
    lines.extend(_row(row, widths) for row in rows)
    if text_changes:
        lines += ["", "differing non-numeric values:", *text_changes]
    return "\n".join(lines)


def _text(path: str, values: dict[str, Any]) -> str:
    if path not in values:
        return MISSING
    value = values[path]
    return "null" if value is None else str(value)


def _describe(report: dict[str, Any]) -> str:
    parts = [f"{key}={report[key]}" for key in ("pipeline", "mode", "duration_s", "events") if key in report]
    return " ".join(parts) or "(no pipeline, mode, duration_s or events)"


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    key, *numbers = cells
    return "  ".join([key.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(numbers, widths[1:]))]).rstrip()
