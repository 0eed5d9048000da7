"""The quoter's fee / adverse-selection defaults were chosen by leave-one-capture-out over every Binance
capture at the default fees, not fitted on one file: checked on the table bench/quoter_loco.py stored
(bench/quoter_loco.json)."""

from __future__ import annotations

import copy
import json
from collections import Counter

from tests.conftest import DATA_DIR, bench_module
from mm.config import QuoterConfig



LOCO = bench_module("quoter_loco")
STORED = json.loads(LOCO.TABLE.read_text())
NAMES = sorted(STORED["captures"])
DEFAULT_KEY = LOCO.key_of({key: getattr(QuoterConfig(), key) for key in LOCO.CANDIDATES})


def test_table_covers_every_binance_capture_and_candidate():
    assert len(NAMES) >= 2 and sorted(STORED["table"]) == NAMES
    keys = sorted(LOCO.key_of(s) for s in LOCO.settings())
    assert all(sorted(k for k in rows if k not in ("symbol", "maker_fee_bps", "fixed_spread")) == keys
               for rows in STORED["table"].values())
    assert {key: list(values) for key, values in LOCO.CANDIDATES.items()} == STORED["candidates"]
    if DATA_DIR.is_dir():  # the captures the table was computed on are the ones there, unchanged
        assert STORED["captures"] == {p.name: p.stat().st_size for p in LOCO.binance_captures(DATA_DIR)}


def test_the_default_is_what_the_folds_choose():
    """The default is the choice on every capture together and of all folds but at most one (the
    fold without the capture that alone told the settings apart), so no single capture decided it."""
    chosen = LOCO.loco(STORED["table"], NAMES)
    assert chosen == STORED["chosen"]
    keys = [LOCO.key_of(s) for s in LOCO.settings()]
    assert max(keys, key=lambda k: LOCO.score(STORED["table"], k, NAMES)) == DEFAULT_KEY
    assert Counter(chosen.values())[DEFAULT_KEY] >= len(NAMES) - 1


def test_a_fold_does_not_see_its_held_out_capture():
    """Rewriting the held-out capture's figures (making another setting far the best there) leaves
    that fold's choice as it was."""
    for held in NAMES:
        table = copy.deepcopy(STORED["table"])
        before = LOCO.loco(table, NAMES)[held]
        other = next(LOCO.key_of(s) for s in LOCO.settings() if LOCO.key_of(s) != before)
        table[held][other].update(fills=1, pnl_per_notional_bps=1e6)
        table[held]["fixed_spread"].update(fills=1)
        assert LOCO.loco(table, NAMES)[held] == before


def test_score_counts_a_capture_only_where_the_setting_trades_and_beats_fixed_spread():
    fixed = {"fills": 10, "pnl_per_notional_bps": -2.0}
    table = {"a": {"fixed_spread": fixed, "s": {"fills": 0, "pnl_per_notional_bps": 0.0}},
             "b": {"fixed_spread": fixed, "s": {"fills": 3, "pnl_per_notional_bps": -1.0}},
             "c": {"fixed_spread": {"fills": 0, "pnl_per_notional_bps": 0.0},
                   "s": {"fills": 0, "pnl_per_notional_bps": 0.0}}}
    assert LOCO.score(table, "s", ["a", "b", "c"]) == (1, 0.5)  # b passes by 1 bp; a did not trade; c not counted
