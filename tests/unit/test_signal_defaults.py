"""The signal's free defaults (the emitted model, the self-check's confidence bound, the calibration's
prior) were chosen by leave-one-capture-out over every Binance capture, not fitted on one file:
checked on the table bench/signal_loco.py stored (bench/signal_loco.json)."""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import DATA_DIR, bench_module
from mm.config import SignalConfig



LOCO = bench_module("signal_loco")
STORED = json.loads(LOCO.TABLE.read_text())


def test_table_covers_every_binance_capture():
    names = sorted(STORED["captures"])
    assert len(names) >= 2
    assert all(set(row) == set(names) for row in STORED["table"].values())
    if DATA_DIR.is_dir():  # the captures the table was computed on are the ones there, unchanged
        present = {path.name: path.stat().st_size for path in LOCO.binance_captures(DATA_DIR)}
        assert STORED["captures"] == present


def test_table_covers_every_candidate_setting():
    assert sorted(STORED["table"]) == sorted(LOCO.key_of(setting) for setting in LOCO.settings())
    assert {key: list(values) for key, values in LOCO.CANDIDATES.items()} == STORED["candidates"]


def test_every_fold_chooses_the_config_defaults():
    """LOCO-stable: leaving out any one capture, the others choose the same setting, and it is the
    default; so no single capture decided it."""
    names = sorted(STORED["captures"])
    chosen = LOCO.loco(STORED["table"], names)
    defaults = SignalConfig()
    default_key = LOCO.key_of({key: getattr(defaults, key) for key in LOCO.CANDIDATES})

    assert chosen == STORED["chosen"]
    assert set(chosen.values()) == {default_key}


def test_a_fold_does_not_see_its_held_out_capture():
    """Rewriting the held-out capture's figures (say, making another setting far the best there)
    leaves that fold's choice as it was."""
    names = sorted(STORED["captures"])
    chosen = LOCO.loco(STORED["table"], names)
    for held_out in names:
        table = copy.deepcopy(STORED["table"])
        for key in table:
            row = table[key][held_out]
            best_elsewhere = key != chosen[held_out]
            row["r2_oos"], row["hit_rate"] = (1.0, 1.0) if best_elsewhere else (-1.0, 0.0)
        assert LOCO.loco(table, names)[held_out] == chosen[held_out]


def test_captures_too_short_to_rank_do_not_decide_the_tie_break():
    """A capture with fewer than MIN_INDEPENDENT_LABELS independent labels counts in the passes, not in
    the ranks: making another setting far the best there (without passing) changes no fold's choice."""
    names = sorted(STORED["captures"])
    chosen = LOCO.loco(STORED["table"], names)
    short = [name for name in names
             if STORED["table"][chosen[name]][name]["independent_labels"] < LOCO.MIN_INDEPENDENT_LABELS]
    assert short  # the 30 s multi-symbol captures: ~6 independent 5 s labels each
    table = copy.deepcopy(STORED["table"])
    other = next(key for key in sorted(table) if key != chosen[names[0]])
    for name in short:
        table[other][name].update(r2_oos=-0.0001, imbalance_r2_oos=-0.5, hit_rate=0.0)  # margin 0.5, no pass

    assert LOCO.loco(table, names) == chosen


def test_choice_follows_the_other_captures():
    """The selection is not a constant: a setting that passes everywhere else is chosen."""
    names = sorted(STORED["captures"])
    table = copy.deepcopy(STORED["table"])
    target = sorted(table)[0]
    for name in names:
        table[target][name].update(r2_oos=0.5, imbalance_r2_oos=0.0, hit_rate=0.9)

    assert set(LOCO.loco(table, names).values()) == {target}


@pytest.mark.slow
@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="no captures")
def test_script_still_chooses_the_defaults(tmp_path):
    """Re-run the whole selection (every capture, every setting, the model as it is now): every fold
    still chooses the config's defaults."""
    assert LOCO.main(["--data", str(DATA_DIR), "--cache", str(tmp_path)]) == 0
