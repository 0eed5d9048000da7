"""mm.venue_sync: user-data events into the one order tracker (duplicates, reordering, a lost event),
the reconcile plan, ws-api errors and rate limits, the USD-M countdown's renewal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mm.orders import Applied, OrderState, OrderTracker, Side, VenueStatus, VenueUpdate
from mm.ticks import grid_from_sizes
from mm.venue_sync import (
    ErrorKind,
    ReportError,
    account_gap,
    countdown_due,
    fee_in_quote,
    missed_fill,
    position_lot,
    reconcile_plan,
    spot_report,
    usage_headers,
    usdm_report,
    ws_error_kind,
)

GRID = grid_from_sizes("BTCUSDT", "0.01", "0.00001", 8, 8)
NOW = 1_700_000_000_000_000_000


def tracker_with_order(qty_lot: int = 300) -> tuple[OrderTracker, str]:
    tracker = OrderTracker("mm", "a", query_after_ns=6_000_000_000, cancel_timeout_ns=5_000_000_000)
    record = tracker.submit("BTCUSDT", Side.BUY, 5_000_000, qty_lot, NOW)
    tracker.mark_sent(record.client_id, NOW)
    return tracker, record.client_id


def spot_event(client_id: str, x: str, status: str, cum: str, last: str = "0", px: str = "0", **extra) -> dict:
    return {"e": "executionReport", "E": 1, "s": "BTCUSDT", "c": client_id, "C": "", "x": x, "X": status,
            "i": 7, "l": last, "z": cum, "L": px, "n": "0.01", "N": "USDT", "T": 1, "t": 3, "m": True, "r": "NONE",
            **extra}


def test_spot_fills_applied_once_whatever_the_order_of_events() -> None:
    tracker, cid = tracker_with_order()
    events = [spot_event(cid, "NEW", "NEW", "0"),
              spot_event(cid, "TRADE", "PARTIALLY_FILLED", "0.00100", "0.00100", "50000.00"),
              spot_event(cid, "TRADE", "FILLED", "0.00300", "0.00200", "50000.01")]
    filled = []
    for event in [events[0], events[1], events[1], events[2], events[2]]:  # duplicates
        report = spot_report(event, GRID, NOW)
        outcome = tracker.apply(report.update, NOW)
        filled.append(outcome.fill_qty_lot)
    assert filled == [0, 100, 0, 200, 0] and tracker.get(cid).state is OrderState.FILLED
    # reordered: the later fill first; the earlier is then stale, nothing counted twice
    tracker, cid = tracker_with_order()
    late, early = spot_report(events[2] | {"c": cid}, GRID, NOW), spot_report(events[1] | {"c": cid}, GRID, NOW)
    assert missed_fill(late, tracker.get(cid))  # shows fills we never saw: reconcile
    assert tracker.apply(late.update, NOW).fill_qty_lot == 300
    assert not missed_fill(early, tracker.get(cid))
    outcome = tracker.apply(early.update, NOW)
    assert outcome.applied is not Applied.APPLIED and outcome.fill_qty_lot == 0


def test_spot_cancel_report_names_the_order_in_C_and_bad_events_are_refused() -> None:
    tracker, cid = tracker_with_order()
    report = spot_report(spot_event("cancel-1", "CANCELED", "CANCELED", "0", C=cid), GRID, NOW)
    assert report.update.client_id == cid and report.update.status is VenueStatus.CANCELED
    with pytest.raises(ReportError, match="'z' missing"):
        spot_report({k: v for k, v in spot_event(cid, "NEW", "NEW", "0").items() if k != "z"}, GRID, NOW)
    with pytest.raises(ReportError):
        spot_report(spot_event(cid, "NEW", "NEW", "0.000001"), GRID, NOW)  # off the lot grid
    assert fee_in_quote(report, "USDT") == pytest.approx(0.01)
    assert fee_in_quote(spot_report(spot_event(cid, "NEW", "NEW", "0", N="BNB"), GRID, NOW), "USDT") is None


def test_usdm_order_trade_update() -> None:
    event = {"e": "ORDER_TRADE_UPDATE", "E": 5, "T": 4, "o": {
        "s": "BTCUSDT", "c": "mma1", "x": "TRADE", "X": "PARTIALLY_FILLED", "i": 9, "l": "0.001", "z": "0.001",
        "L": "60000.1", "n": "0.012", "N": "USDT", "t": 11, "m": True, "rp": "0.5"}}
    report = usdm_report(event, GRID, NOW)
    assert (report.update.client_id, report.update.filled_qty_lot, report.last_px_tick, report.realized_pnl) == \
        ("mma1", 100, 6_000_010, "0.5")
    with pytest.raises(ReportError):
        usdm_report({"e": "ORDER_TRADE_UPDATE"}, GRID, NOW)


def test_reconcile_plan_cancels_untracked_queries_missing_leaves_foreign() -> None:
    tracker, cid = tracker_with_order()
    tracker.apply(VenueUpdate(cid, VenueStatus.NEW, 0, NOW), NOW)
    sent = tracker.submit("BTCUSDT", Side.SELL, 5_000_100, 100, NOW).client_id
    tracker.mark_sent(sent, NOW)  # in flight: its answer settles it, not a query
    rows = [VenueUpdate("mmzz9", VenueStatus.NEW, 0, NOW), VenueUpdate("manual-1", VenueStatus.NEW, 0, NOW)]
    plan = reconcile_plan(tracker, rows)
    assert plan.cancel_untracked == ["mmzz9"] and plan.query == [cid] and plan.foreign == 1 and plan.differences == 2
    plan = reconcile_plan(tracker, [VenueUpdate(cid, VenueStatus.PARTIALLY_FILLED, 50, NOW)])
    assert plan.apply[0].client_id == cid and plan.query == [] and plan.differences == 0


def test_ws_errors_limits_positions_and_countdown() -> None:
    assert ws_error_kind(429, -1003) is ErrorKind.RATE_LIMITED and ws_error_kind(418, -1003) is ErrorKind.RATE_LIMITED
    assert ws_error_kind(400, -1021) is ErrorKind.TIMESTAMP
    assert ws_error_kind(503, -1007) is ErrorKind.UNKNOWN
    assert ws_error_kind(400, -2011) is ErrorKind.NOT_FOUND
    assert ws_error_kind(400, -2010) is ErrorKind.REJECTED
    assert usage_headers([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "count": 12},
                          {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "count": 3},
                          {"rateLimitType": "ORDERS", "interval": "FORTNIGHT", "intervalNum": 1, "count": 3}]) == \
        {"x-mbx-used-weight-1m": "12", "x-mbx-order-count-10s": "3"}
    assert position_lot(Decimal("10.00100"), Decimal("10"), Decimal("0.00001")) == 100
    assert account_gap(100, 0) and not account_gap(100, 100)
    assert countdown_due(NOW, 0, 9000)  # never armed
    assert not countdown_due(NOW + 2_999_000_000, NOW, 9000) and countdown_due(NOW + 3_000_000_000, NOW, 9000)
