"""The market side run once (processes/inproc.py MarketTape) and read by several strategies gives
each the result of running its own book and signal: every stage's stats, byte for byte."""

from __future__ import annotations

import json

import pytest

from mm.config import load_config
from mm.stages.quoter import FixedSpreadStep
from processes.inproc import InprocReplay, MarketTape
from processes.launcher import DecodedInput, replay_config
from tests.conftest import DATA_DIR

CAPTURE = DATA_DIR / "binance-usdm-multi-20210722.jsonl.gz"


def stats_of(engine: InprocReplay, decoded: DecodedInput) -> str:
    stats = engine.stats(decoded.source)
    stats["gateway"].pop("latency_ns")  # this machine's clock: the wall file's, not the report's
    return json.dumps(stats, sort_keys=True)


@pytest.mark.skipif(not CAPTURE.exists(), reason=f"{CAPTURE} not found")
@pytest.mark.parametrize("symbol", ["AKROUSDT", None])
def test_strategies_on_one_market_tape_equal_their_own_runs(symbol):
    config = replay_config(load_config(), [CAPTURE], symbol=symbol, speed=0.0)
    decoded = DecodedInput(config, [CAPTURE])
    tape = MarketTape(config, decoded.messages)
    assert any(record is not None for record in tape.records)

    def quoters():  # the configured strategy, and the fixed-spread baseline
        yield None
        yield FixedSpreadStep(config, f"{config.gateway.client_id_prefix}fx", half_spread_ticks=1.0)

    for alone, shared in zip(quoters(), quoters()):
        own = InprocReplay(config, alone)
        own.run(decoded.messages)
        on_tape = InprocReplay(config, shared)
        on_tape.run(decoded.messages, tape=tape)
        assert stats_of(on_tape, decoded) == stats_of(own, decoded)
        assert on_tape.schedule.barriers == len(tape.records)
