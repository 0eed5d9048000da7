"""The bench's reference stack (bench/reference_stack.py: orjson + SortedDict, as a script) builds
the same final book as `mm book --json`, so the whole-process comparison is apples to apples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("orjson", reason="the reference stack needs orjson (dev extra)")
pytest.importorskip("sortedcontainers", reason="the reference stack needs sortedcontainers (dev extra)")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
SCRIPT = ROOT / "bench" / "reference_stack.py"
SPOT = DATA / "binance-spot-btcusdt-20240808.jsonl.gz"
COMPARED = ("bids", "asks", "updates", "gaps")


def _run_json(*argv: str | Path) -> dict:
    done = subprocess.run(
        [sys.executable, *map(str, argv)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not SPOT.exists(), reason=f"capture {SPOT} not found (../shared/data)")
def test_reference_stack_btcusdt_spot_top10_equals_mm_book():
    reference = _run_json(SCRIPT, SPOT, "--depth", "10")
    ours = _run_json("-m", "mm.cli", "book", SPOT, "--depth", "10", "--json")

    assert sorted(reference) == sorted(ours) == ["BTCUSDT"]
    book = ours["BTCUSDT"]
    assert len(book["bids"]) == len(book["asks"]) == 10 and book["gaps"] == 0
    assert {key: reference["BTCUSDT"][key] for key in COMPARED} == {
        key: book[key] for key in COMPARED
    }
    expected = json.loads(SPOT.with_name(SPOT.name.replace(".jsonl.gz", ".top10.json")).read_text())
    assert reference["BTCUSDT"]["bids"] == expected["BTCUSDT"]["bids"]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"captured data not found at {DATA}")
@pytest.mark.parametrize(
    "name", ["binance-usdm-ethusdt-20240808", "binance-usdm-multi-20210722", "binance-spot-multi-20211012"]
)
def test_reference_stack_other_sets_equal_reference_top10(name):
    """The script's simple sync also gets the futures rules and multi-symbol files right."""
    path = DATA / f"{name}.jsonl.gz"
    if not path.exists():
        pytest.skip(f"capture {path} is absent")
    from bench.reference_stack import run

    result = run([str(path)], 10)

    expected = json.loads((DATA / f"{name}.top10.json").read_text())
    assert {s: {k: result[s][k] for k in COMPARED} for s in result} == {
        s: {k: expected[s][k] for k in COMPARED} for s in expected
    }
