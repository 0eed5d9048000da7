"""Risk's step after a restart (issue 16): the venue's position is the truth, and a fill of the new run
racing the venue's snapshot must count once, whichever of the two reaches risk first.

The live USD-M kill test once ended with `assert -53 == -153`: run 1 had booked +47 lots, the venue sold
100 more of ours while the gateway was dead (before its countdownCancelAll fired), so it held -53 at
the restart. In run 2 risk approved a quote before it had reconciled; the venue filled it (a sell of
100) and that fill reached risk before the venue snapshot the gateway had taken just before it: the
position difference then looked like 0 and the fill made while we were dead was lost. Here the same
events are driven by hand, in both orders the two channels (events and control) can deliver them.
"""

from __future__ import annotations

import pytest

from mm.config import load_config
from mm.journal import FillRecorded, PositionSnapshot
from mm.orders import Side
from mm.risk_rules import Reject
from mm.stages.commands import Place
from mm.stages.risk import MarketRead, RiskStep

S = 1_000_000_000
T0 = 1_700_000_000_000_000_000
BID, ASK = 6_000_000, 6_000_001
RUN1_LOT = 47  # what run 1 booked (its journal)
DEAD_FILL_LOT = -100  # what the venue filled while the gateway was dead


@pytest.fixture
def config():
    return load_config(None)


def read(now_ns: int) -> MarketRead:
    return MarketRead(book_ts_ns=now_ns, bid_px_tick=BID, ask_px_tick=ASK, signal_ts_ns=now_ns,
                      volatility_bps_per_s=1.0)


def run1_journal(config) -> list:
    symbol = config.instrument.symbol
    return [PositionSnapshot(symbol=symbol, position_lot=0, cost_tick_lot=0.0, realized_tick_lot=0.0, fees_quote=0.0,
                             traded_lot=0, fills=0, ts_ns=T0 - 10 * S),
            FillRecorded(client_id="run1-a", symbol=symbol, side=Side.BUY, px_tick=BID, qty_lot=RUN1_LOT,
                         fee_quote=0.0, trade_id=0, ts_ns=T0 - 9 * S)]


class Venue:
    """The venue as risk learns of it: our position there, and the fills of orders risk approved."""

    def __init__(self) -> None:
        self.position_lot = RUN1_LOT + DEAD_FILL_LOT

    def sell(self, risk: RiskStep, client_id: str, now_ns: int) -> list:
        """A sell quote of 100 lots from the quoter; approved, the venue fills it at once. Returns
        the fill as risk will receive it (empty if risk refused the quote)."""
        view, _ = risk.begin_decision(now_ns, read(now_ns), now_ns)
        if risk.check(Place(client_id, -1, ASK, 100), now_ns, view, True) is not None:
            return []
        self.position_lot -= 100
        return [("fill", client_id, -1, ASK, 100)]


def deliver(risk: RiskStep, messages: list, now_ns: int) -> None:
    for message in messages:
        if message[0] == "fill":
            _, client_id, side, px, qty = message
            risk.on_fill(client_id, side, px, qty, 0, 0.0, now_ns, now_ns, read(now_ns))
        elif risk.reconcile_pending:  # as processes/risk.py: the venue's reports until one is reconciled
            risk.market_view(read(now_ns))
            risk.reconcile([], message[1], now_ns)


@pytest.mark.parametrize("first", ["fill", "snapshot"])
def test_a_fill_racing_the_first_venue_snapshot_after_a_restart_is_counted_once(config, first: str):
    risk = RiskStep(config, "flat")
    risk.recover(run1_journal(config))
    risk.reconcile_position = True  # a live run's start, as processes/risk.py sets it
    assert risk.position.position_lot == RUN1_LOT
    venue = Venue()

    # the quoter's first quote; the gateway's snapshot of the venue is taken just before its fill
    # ("fill" first: the fill overtakes that older snapshot) or just after it ("snapshot" first)
    before = venue.position_lot
    fill = venue.sell(risk, "q1", T0)
    snapshot = [("snapshot", before if first == "fill" else venue.position_lot)]
    deliver(risk, fill + snapshot if first == "fill" else snapshot + fill, T0 + S // 100)

    deliver(risk, [("snapshot", venue.position_lot)], T0 + S)  # the next report, once a second
    deliver(risk, venue.sell(risk, "q2", T0 + S + S // 10), T0 + S + S // 10)  # quoting goes on
    deliver(risk, [("snapshot", venue.position_lot)], T0 + 2 * S)

    assert risk.position.position_lot == venue.position_lot  # the dead-time fill booked, nothing twice
    assert risk.reconciled_position_lot == DEAD_FILL_LOT
    assert risk.approved >= 1 and venue.position_lot < RUN1_LOT + DEAD_FILL_LOT  # it did trade again


def test_no_quote_is_approved_until_the_venue_position_is_reconciled(config):
    risk = RiskStep(config, "flat")
    risk.recover(run1_journal(config))
    risk.reconcile_position = True
    view, _ = risk.begin_decision(T0, read(T0), T0)
    refused = risk.check(Place("q1", 1, BID, 100), T0, view, True)
    assert refused is not None and refused.reason == Reject.UNRECONCILED.value
    assert risk.open_orders == {} and risk.rejected_checks == {"unreconciled": 1}

    risk.market_view(read(T0))
    actions, changed = risk.reconcile([], RUN1_LOT + DEAD_FILL_LOT, T0)
    assert changed["missed_lot"] == DEAD_FILL_LOT and actions[0].qty_lot == -DEAD_FILL_LOT
    assert risk.check(Place("q2", 1, BID, 100), T0, view, True) is None  # reconciled: quoting resumes

    risk.on_peer_revived("gateway", set())  # a restarted gateway: its venue's word again first
    assert risk.check(Place("q3", -1, ASK, 100), T0, view, True).reason == "unreconciled"


def test_a_restart_without_a_mid_keeps_refusing_until_the_difference_is_booked(config):
    risk = RiskStep(config, "flat")
    risk.recover(run1_journal(config))
    risk.reconcile_position = True
    assert risk.reconcile([], RUN1_LOT + DEAD_FILL_LOT, T0) is None  # no mid yet: cannot book it
    view, _ = risk.begin_decision(T0, read(T0), T0)
    assert risk.check(Place("q1", 1, BID, 100), T0, view, True).reason == "unreconciled"
    assert risk.reconcile([], RUN1_LOT + DEAD_FILL_LOT, T0) is not None
    assert risk.check(Place("q2", 1, BID, 100), T0, view, True) is None
    assert risk.position.position_lot == RUN1_LOT + DEAD_FILL_LOT
