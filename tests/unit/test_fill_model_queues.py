"""The fill model's queue-position models (mm/queue_models.py) on hand-made queues, its latency
models (mm/latency_model.py), the latency fit on a hand-made journal, and `mm report latency`."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest

from mm.cli import main
from mm.config import Config, FillConfig, decode_config, dump_toml, load_config
from mm.errors import ConfigError
from mm.fill_model import Canceled, FillModel, Filled, Rejected
from mm.journal import FsyncPolicy
from mm.latency_model import (
    ConstantLatency,
    EmpiricalLatency,
    fit_latency,
    latency_report,
    latency_samples,
)
from mm.orders import (
    CancelRejected,
    CancelRequested,
    OrderSent,
    OrderSubmitted,
    RequestTimedOut,
    Side,
    VenueStatus,
    VenueUpdate,
)
from mm.queue_models import QUEUE_MODELS, queue_model
from mm.stages.commands import Cancel, Place
from mm.stages.gateway import GatewayStep
from processes.journal_file import JournalFile
from processes.venue_orders import MatchingEngine, SymbolRules

MS = 1_000_000

# front 30 lots ahead of us, back 10 behind: each model's share of a cancel taken from ahead
SHARES = {
    ("ratio", 2.0): 0.3,  # the constant, ratio=0.3 below
    ("risk_averse", 2.0): 0.0,
    ("power_prob", 1.0): 30 / 40,
    ("power_prob", 2.0): 900 / 1000,
    ("power_prob", 3.0): 27000 / 28000,
    ("power_prob2", 2.0): 1 - 100 / 1600,
    ("power_prob3", 3.0): (30 / 40) ** 3,
    ("log_prob", 2.0): math.log(31) / (math.log(31) + math.log(11)),
    ("log_prob2", 2.0): 1 - math.log(11) / math.log(41),
}


@pytest.mark.parametrize(("name", "power"), list(SHARES))
def test_each_queue_model_share_on_a_known_queue(name: str, power: float):
    model = queue_model(name, power=power, ratio=0.3)
    assert model.share_ahead(30, 10) == pytest.approx(SHARES[(name, power)], abs=1e-12)


@pytest.mark.parametrize("name", [n for n in QUEUE_MODELS if n != "ratio"])
def test_nothing_ahead_means_nothing_taken_from_ahead(name: str):
    model = queue_model(name, power=2.0)
    assert model.share_ahead(0, 10) == 0.0
    assert model.share_ahead(0, 0) == 0.0  # 0/0: nothing on either side


def test_the_prob_models_lean_to_the_longer_side():
    for name in ("power_prob", "power_prob2", "log_prob", "log_prob2"):
        model = queue_model(name, power=2.0)
        assert model.share_ahead(90, 10) > model.share_ahead(50, 50) > model.share_ahead(10, 90), name


def test_bad_queue_model_or_parameter_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown queue model 'fifo'"):
        queue_model("fifo")
    with pytest.raises(ValueError, match="power n must be > 0"):
        queue_model("power_prob", power=0.0)
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\]"):
        queue_model("ratio", ratio=1.5)


def fill_model(name: str, power: float = 2.0, latency=None) -> FillModel:
    return FillModel(maker_fee_bps=0.0, taker_fee_bps=0.0, tick_size=0.01, lot_size=1.0,
                     queue=queue_model(name, power=power, ratio=0.5), latency=latency)


def queued(name: str, power: float = 2.0) -> FillModel:
    """Our buy of 5 at 1000 behind 30 lots, then 10 more lots join behind us."""
    model = fill_model(name, power)
    model.on_snapshot(0, [(1000, 30)], [(1001, 50)])
    model.submit(0, "a", 1, 1000, 5, True)
    model.on_depth(1, [(1000, 40)], [])
    assert model.open_orders()[0].ahead_lot == 30
    return model


# an unexplained shrink of 8 lots (front 30, back 10): ahead after it, and the fill of a 25-lot sell
CANCEL_8 = {("ratio", 2.0): (26, 0), ("risk_averse", 2.0): (30, 0), ("power_prob", 2.0): (23, 2),
            ("power_prob", 1.0): (24, 1), ("log_prob", 2.0): (25, 0)}


@pytest.mark.parametrize(("name", "power"), list(CANCEL_8))
def test_fill_model_moves_us_up_by_the_models_share_and_fills_the_excess(name: str, power: float):
    model = queued(name, power)
    model.on_depth(2, [(1000, 32)], [])
    ahead, fill = CANCEL_8[(name, power)]
    assert model.open_orders()[0].ahead_lot == ahead  # power_prob(2): 30 - round(0.9 * 8)
    events = model.on_trade(3, 1000, 25, -1)
    assert [e.qty_lot for e in events if type(e) is Filled] == ([fill] if fill else [])


def test_a_traded_shrink_is_not_a_cancel_for_any_model():
    for name in ("ratio", "power_prob", "log_prob"):
        model = queued(name)
        model.on_trade(2, 1000, 8, -1)  # 8 traded ahead of us, then the level shows 32
        model.on_depth(3, [(1000, 32)], [])
        assert model.open_orders()[0].ahead_lot == 22, name


def test_a_shrink_beyond_what_is_behind_comes_from_ahead_even_risk_averse():
    model = queued("risk_averse")
    model.on_depth(2, [(1000, 25)], [])  # 15 cancelled, only 10 were behind us
    assert model.open_orders()[0].ahead_lot == 25


# ---- latency ---------------------------------------------------------------------------------------


def test_empirical_latency_draws_inside_its_table_and_repeats_with_its_seed():
    table = [0.1, 0.2, 0.4, 1.0, 5.0]
    a = EmpiricalLatency(table, table, seed=7)
    b = EmpiricalLatency(table, table, seed=7)
    draws = [a.entry_ns() for _ in range(2000)]
    assert draws == [b.entry_ns() for _ in range(2000)]
    assert min(draws) >= 0.1 * MS and max(draws) <= 5.0 * MS == a.max_ns
    assert 0.3 * MS < sorted(draws)[1000] < 0.5 * MS  # the median: halfway through the table, 0.4 ms


def test_empirical_latency_refuses_a_bad_table_by_name():
    with pytest.raises(ValueError, match="'cancel_latency_ms' must be non-decreasing"):
        EmpiricalLatency([0.1, 0.2], [0.3, 0.2], seed=1)
    with pytest.raises(ValueError, match="'entry_latency_ms' needs at least 2"):
        EmpiricalLatency([0.1], [0.1, 0.2], seed=1)


def test_a_request_never_overtakes_an_earlier_one():
    model = fill_model("ratio", latency=EmpiricalLatency([5.0, 5.0], [0.1, 0.1], seed=1))
    model.on_snapshot(0, [(1000, 30)], [(1001, 50)])
    model.submit(0, "a", 1, 1000, 5, True)  # arrives at 5 ms
    model.cancel(1 * MS, "a")               # would arrive at 1.1 ms: waits for the submit
    events = model.advance(10 * MS)
    assert [type(e).__name__ for e in events] == ["Accepted", "Canceled"]
    assert [e.ts_ns for e in events] == [5 * MS, 5 * MS]
    assert not any(type(e) is Rejected for e in events)


def test_constant_latency_is_the_fill_models_fixed_delay():
    model = fill_model("ratio", latency=ConstantLatency(2 * MS))
    model.on_snapshot(0, [(1000, 30)], [(1001, 50)])
    assert model.submit(0, "a", 1, 1000, 5, True) == []
    assert [e.ts_ns for e in model.advance(2 * MS)] == [2 * MS]
    assert [type(e) for e in model.cancel(3 * MS, "a") + model.advance(5 * MS)] == [Canceled]


def hand_made_journal() -> list:
    buy = dict(symbol="BTCUSDT", side=Side.BUY, px_tick=1000, qty_lot=5)
    return [
        OrderSubmitted("a", ts_ns=0, **buy), OrderSent("a", 0), VenueUpdate("a", VenueStatus.NEW, 0, 2 * MS),
        OrderSubmitted("b", ts_ns=10 * MS, **buy), OrderSent("b", 10 * MS),
        VenueUpdate("b", VenueStatus.FILLED, 5, 14 * MS),              # answered filled: still an ack
        CancelRequested("a", 20 * MS), VenueUpdate("a", VenueStatus.CANCELED, 0, 21 * MS),
        OrderSubmitted("c", ts_ns=30 * MS, **buy), OrderSent("c", 30 * MS), RequestTimedOut("c", 35 * MS),
        OrderSent("c", 36 * MS), VenueUpdate("c", VenueStatus.NEW, 0, 39 * MS),  # the resend's round trip
        CancelRequested("c", 40 * MS), CancelRejected("c", 43 * MS, "Unknown order sent."),
        OrderSubmitted("d", ts_ns=50 * MS, **buy), OrderSent("d", 50 * MS),  # never answered
        CancelRequested("b", 60 * MS),  # b was filled: no answer to this cancel
    ]


def test_latency_samples_pair_each_request_with_its_answer():
    samples = latency_samples(hand_made_journal())
    assert samples.entry_rtt_ns == [2 * MS, 4 * MS, 3 * MS]
    assert samples.cancel_rtt_ns == [1 * MS, 3 * MS]
    assert (samples.unanswered_entries, samples.unanswered_cancels) == (2, 1)  # c's timeout, d; b's cancel


def test_latency_fit_quantiles_and_lognormal_on_known_samples():
    fit = fit_latency([2 * MS, 4 * MS, 3 * MS])
    assert fit.n == 3 and fit.quantiles_ms[0] == 2.0 and fit.quantiles_ms[10] == 3.0 and fit.quantiles_ms[20] == 4.0
    assert fit.quantiles_ms[5] == pytest.approx(2.5)
    mu = (math.log(2) + math.log(3) + math.log(4)) / 3
    assert fit.lognormal_mu == pytest.approx(mu, abs=1e-6)
    assert fit.lognormal_sigma == pytest.approx(math.sqrt(sum((math.log(x) - mu) ** 2 for x in (2, 3, 4)) / 3),
                                                abs=1e-6)
    assert fit.mean_ms == 3.0 and 0 < fit.lognormal_ks < 0.5
    with pytest.raises(ValueError, match="no latency samples"):
        fit_latency([])


def test_latency_report_gives_the_halved_tables_a_config_takes():
    report = latency_report(latency_samples(hand_made_journal()))
    fill = report["fill"]
    assert fill["entry_latency_ms"][0] == 1.0 and fill["entry_latency_ms"][-1] == 2.0
    assert fill["cancel_latency_ms"][0] == 0.5 and fill["cancel_latency_ms"][-1] == 1.5
    data = msgspec.to_builtins(load_config())
    data["fill"].update(fill)
    config = msgspec.convert(data, type=Config)
    step = GatewayStep(config)
    assert step.latency_ns == 2 * MS  # the longest delay the table allows


def test_mm_report_latency_reads_a_journal_file(tmp_path: Path, capsys):
    path = tmp_path / "gateway.journal"
    journal, _ = JournalFile.open(path, FsyncPolicy(mode="never"))
    journal.append_many(hand_made_journal())
    journal.close()
    assert main(["report", "latency", str(path)]) == 0
    out = capsys.readouterr().out
    assert "entry" in out and "[fill]" in out and 'latency_model = "empirical"' in out
    assert "entry_latency_ms = [1, " in out
    snippet = out[out.index("[fill]"):]
    fill = msgspec.convert(msgspec.toml.decode(snippet.encode())["fill"], type=FillConfig)  # valid as printed
    assert fill.latency_model == "empirical" and fill.cancel_latency_ms[-1] == 1.5
    empty = tmp_path / "empty.journal"
    JournalFile.open(empty, FsyncPolicy(mode="never"))[0].close()
    assert main(["report", "latency", str(empty)]) == 1
    assert "no answered new order" in capsys.readouterr().err


# ---- config and the venue ---------------------------------------------------------------------------


def test_config_picks_the_queue_and_latency_model():
    data = msgspec.to_builtins(load_config())
    data["fill"].update(queue_model="power_prob", queue_power=3.0)
    step = GatewayStep(msgspec.convert(data, type=Config))
    assert repr(step.venue._queue) == "QueueModel(power_prob(3))"  # noqa: SLF001 - the model it built
    default = GatewayStep(load_config())
    assert repr(default.venue._queue) == "QueueModel(ratio(0.5))"  # noqa: SLF001
    assert default.latency_ns == 1 * MS


def test_empirical_latency_without_tables_is_a_config_error():
    text = dump_toml(load_config()).replace(
        'latency_model = "fixed"', 'latency_model = "empirical"')
    with pytest.raises(ConfigError, match="needs 'entry_latency_ms'"):
        decode_config(text.encode(), "test.toml")
    with pytest.raises(ConfigError, match="queue_model"):
        decode_config(text.replace('queue_model = "ratio"', 'queue_model = "fifo"').encode(), "test.toml")


def test_the_venue_engine_skips_an_off_grid_diff_and_uses_its_queue_model():
    rules = SymbolRules(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT")
    engine = MatchingEngine({"BTCUSDT": rules}, keys={"k": "s"}, queue=queue_model("risk_averse"),
                            seed_book=lambda s: ([("100.00000000", "1.00000000")], [("101.00000000", "1.00000000")]))
    model = engine.model("BTCUSDT", 0)
    engine.on_depth("BTCUSDT", [("200000.00000000", "25.42618900")], [], 1)  # a real capture's level, off 1e-5
    assert engine.counts["market_off_grid"] == 1
    assert repr(model._queue) == "QueueModel(risk_averse)"  # noqa: SLF001


def test_a_replay_with_drawn_latency_repeats_itself():
    data = msgspec.to_builtins(load_config())
    data["fill"].update(latency_model="empirical", entry_latency_ms=[0.1, 0.5, 3.0], cancel_latency_ms=[0.1, 0.2, 1.0],
                        queue_model="power_prob")
    config = msgspec.convert(data, type=Config)

    def run() -> list:
        step = GatewayStep(config)
        events = step.on_snapshot(0, 1, [(1000, 30), (999, 20)], [(1001, 50)])
        for i in range(200):
            t = i * MS // 2
            events += step.on_command(t, Place(f"o{i}", 1 if i % 2 else -1, 1000 if i % 2 else 1001, 3, True))
            events += step.on_trade(t + 1, 1000, 2, -1) + step.on_diff(t + 2, 2 + i, [(1000, 30 - i % 7)], [])
            if i % 3 == 0:
                events += step.on_command(t + 3, Cancel(f"o{i}"))
        return events + step.advance(10**12)

    first = run()
    assert first == run()
    assert any(type(e) is Filled for e in first) and any(type(e) is Canceled for e in first)
    arrivals = sorted({e.ts_ns % (MS // 2) for e in first if type(e).__name__ == "Accepted"})
    assert len(arrivals) > 10  # delays were drawn, not one constant


def test_a_constant_delay_never_holds_a_request_when_the_callers_clock_steps_back():
    model = fill_model("ratio", latency=ConstantLatency(0))  # mm venue: the request has arrived when handled
    model.on_snapshot(0, [(1000, 30)], [(1001, 50)])
    assert [type(e).__name__ for e in model.submit(5 * MS, "a", 1, 1000, 5, True)] == ["Accepted"]
    assert [type(e).__name__ for e in model.submit(4 * MS, "b", 1, 999, 5, True)] == ["Accepted"]  # wall clock stepped back
