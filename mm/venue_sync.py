"""Keeping our order tracker in step with a Binance account (BINANCE.md §7): pure decisions.

- `spot_report` / `usdm_report`: one user-data order event (spot `executionReport`, USD-M
  `ORDER_TRADE_UPDATE`) as an `OrderReport`: the tracker's `VenueUpdate` (cumulative filled
  quantity, so a duplicate or a late event never counts a fill twice) plus this event's own fill
  (`l`, `L`, commission, maker flag, trade id). A cancel's report names the cancel's id in `c` and
  the order's in `C` (spot): the order's id is used.
- `missed_fill`: the event's cumulative filled quantity minus its own fill exceeds what we knew:
  an earlier event was lost (a gap), so the shell reconciles over REST. `account_gap`: the account's
  own event (spot `outboundAccountPosition`, USD-M `ACCOUNT_UPDATE`) shows a position the fills we
  applied do not add up to: a lost fill event (even an order's only one), so the shell reconciles.
- `reconcile_plan`: the venue's open orders against the tracker: which of ours the tracker lacks
  (cancel them, by client id), which tracked ones to update from the venue's row, which tracked
  open ones the venue does not list (query each by client id), and how many foreign ones were left.
- `usage_headers`: a ws-api reply's `rateLimits` as the `X-MBX-*` usage headers the rate limiter
  already reads from REST replies (one budget for both).
- `ws_error_kind`: how a ws-api error (status, code) must be treated: the same classes as REST.
- `countdown_due`: when the USD-M dead-man's switch must be re-armed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

import msgspec

from mm.errors import OffGridError
from mm.orders import Order, OrderState, OrderTracker, VenueStatus, VenueUpdate, is_ours
from mm.ticks import TickGrid, parse_price, parse_qty

MS = 1_000_000
STATUSES: dict[str, VenueStatus] = {s.value: s for s in VenueStatus} | {
    "EXPIRED_IN_MATCH": VenueStatus.EXPIRED, "PENDING_CANCEL": VenueStatus.NEW, "NEW_INSURANCE": VenueStatus.NEW,
    "NEW_ADL": VenueStatus.NEW}


class ReportError(ValueError):
    """A user-data event that cannot be read (a field missing, off the grid, not a number)."""


class OrderReport(msgspec.Struct, frozen=True, kw_only=True):
    update: VenueUpdate
    execution_type: str          # NEW, TRADE, CANCELED, EXPIRED, REJECTED, ... (`x`)
    last_qty_lot: int = 0        # this event's fill (`l`), 0 when it is not a trade
    last_px_tick: int = 0        # (`L`)
    commission: str = "0"        # of this fill (`n`), in `commission_asset`
    commission_asset: str = ""
    is_maker: bool = True
    trade_id: int = -1
    event_ms: int = 0
    realized_pnl: str = "0"      # USD-M `rp`


def _order_report(o: Mapping, grid: TickGrid, client_id: str, event_ms: int, trade_ms: int, realized: str,
                  now_ns: int) -> OrderReport:
    try:
        status = STATUSES[o["X"]]
        filled = parse_qty(grid, o["z"])
        last_qty = parse_qty(grid, o.get("l") or "0")
        last_px = parse_price(grid, o.get("L") or "0") if last_qty else 0
        order_id = int(o.get("i", -1))
        trade_id = int(o.get("t", -1))
    except KeyError as e:
        raise ReportError(f"order event for {client_id!r}: field {e.args[0]!r} missing") from None
    except (ValueError, ArithmeticError, InvalidOperation, TypeError, OffGridError) as e:
        raise ReportError(f"order event for {client_id!r}: {type(e).__name__}: {e}"[:200]) from None
    reason = "" if o.get("r", "NONE") in ("NONE", None) else str(o["r"])
    update = VenueUpdate(client_id, status, filled, now_ns, order_id, last_px, reason)
    return OrderReport(update=update, execution_type=str(o.get("x", "")), last_qty_lot=last_qty, last_px_tick=last_px,
                       commission=str(o.get("n") or "0"), commission_asset=str(o.get("N") or ""),
                       is_maker=bool(o.get("m", True)), trade_id=trade_id, event_ms=event_ms or trade_ms,
                       realized_pnl=realized)


def spot_report(event: Mapping, grid: TickGrid, now_ns: int) -> OrderReport:
    """A spot `executionReport` (BINANCE.md §7.1's field table)."""
    original = event.get("C") or ""
    client_id = original if event.get("x") == "CANCELED" and original else event.get("c", "")
    if not isinstance(client_id, str) or not client_id:
        raise ReportError("executionReport without a client order id")
    return _order_report(event, grid, client_id, int(event.get("E", 0) or 0), int(event.get("T", 0) or 0), "0", now_ns)


def usdm_report(event: Mapping, grid: TickGrid, now_ns: int) -> OrderReport:
    """A USD-M `ORDER_TRADE_UPDATE` (the order in `o`)."""
    o = event.get("o")
    if not isinstance(o, Mapping) or not isinstance(o.get("c"), str) or not o["c"]:
        raise ReportError("ORDER_TRADE_UPDATE without an order or a client order id")
    return _order_report(o, grid, o["c"], int(event.get("E", 0) or 0), int(event.get("T", 0) or 0),
                         str(o.get("rp") or "0"), now_ns)


def missed_fill(report: OrderReport, order: Order | None) -> bool:
    """True when the event shows fills we never saw: its cumulative quantity before its own fill is
    more than the tracker knows (a lost event; a reordered one shows the same)."""
    if order is None:
        return False
    return report.update.filled_qty_lot - report.last_qty_lot > order.filled_qty_lot


def position_lot(total: Decimal, baseline: Decimal, lot_size: Decimal) -> int:
    """The account's position since the baseline, in lots: spot, the base asset's total balance (free
    + locked) change; USD-M, the one-way position's change."""
    return int((total - baseline) / lot_size)


def account_gap(account_position_lot: int, fills_position_lot: int) -> bool:
    """The account (its balance or position event) moved by more or less than the fills we applied:
    a fill event was lost (or the account changed outside our orders): reconcile."""
    return account_position_lot != fills_position_lot


def fee_in_quote(report: OrderReport, quote_asset: str) -> float | None:
    """This fill's commission when it is in the quote asset; None when charged in another asset
    (the caller estimates it from its fee rate)."""
    try:
        amount = Decimal(report.commission)
    except InvalidOperation:
        return None
    if report.commission_asset == quote_asset or (not report.commission_asset and amount == 0):
        return float(amount)
    return None


# ---- reconciliation -------------------------------------------------------------------------


class ReconcilePlan(msgspec.Struct, frozen=True, kw_only=True):
    cancel_untracked: list[str]        # ours by prefix, open at the venue, unknown to the tracker
    apply: list[VenueUpdate]           # tracked and open at the venue: its row as an update
    query: list[str]                   # tracked, open here, not listed by the venue (sent orders excluded)
    foreign: int                       # open orders of the account that are not ours (left alone)

    @property
    def differences(self) -> int:
        return len(self.cancel_untracked) + len(self.query)


def reconcile_plan(tracker: OrderTracker, venue_open: Iterable[VenueUpdate]) -> ReconcilePlan:
    """What to do so the tracker equals the venue's open orders (rows as VenueUpdates)."""
    cancel, apply, listed = [], [], set()
    foreign = 0
    for row in venue_open:
        listed.add(row.client_id)
        if not is_ours(row.client_id, tracker.prefix):
            foreign += 1
        elif tracker.get(row.client_id) is None:
            cancel.append(row.client_id)
        else:
            apply.append(row)
    # NEW orders were never sent; a SENT one may still be on its way (its answer settles it)
    query = [o.client_id for o in tracker.open_orders()
             if o.client_id not in listed and o.state not in (OrderState.NEW, OrderState.SENT)]
    return ReconcilePlan(cancel_untracked=cancel, apply=apply, query=query, foreign=foreign)


# ---- the ws-api's replies ---------------------------------------------------------------------

_UNIT = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}


def usage_headers(rate_limits: Iterable[Mapping] | None) -> dict[str, str]:
    """`rateLimits` [{rateLimitType, interval, intervalNum, count}] -> {"x-mbx-used-weight-1m": "12", ...}."""
    headers: dict[str, str] = {}
    for entry in rate_limits or ():
        try:
            unit = _UNIT[entry["interval"]]
            span = f"{int(entry['intervalNum'])}{unit.lower()}"
            count = str(int(entry["count"]))
        except (KeyError, ValueError, TypeError):
            continue
        kind = entry.get("rateLimitType")
        if kind == "REQUEST_WEIGHT":
            headers[f"x-mbx-used-weight-{span}"] = count
        elif kind == "ORDERS":
            headers[f"x-mbx-order-count-{span}"] = count
    return headers


class ErrorKind(enum.Enum):
    RATE_LIMITED = "rate_limited"    # 429 / 418: back off, a new order is dropped
    TIMESTAMP = "timestamp"          # -1021: resync the clock, resend once
    UNKNOWN = "unknown"              # 5xx, -1007, 408: it may have been applied
    NOT_FOUND = "not_found"          # -2011 (cancel) / -2013 (query): not open / never existed
    REJECTED = "rejected"            # any other: a definite refusal


def ws_error_kind(status: int, code: int) -> ErrorKind:
    if status in (418, 429) or code in (-1003, -1015):
        return ErrorKind.RATE_LIMITED
    if code == -1021:
        return ErrorKind.TIMESTAMP
    if status >= 500 or status == 408 or code == -1007:
        return ErrorKind.UNKNOWN
    if code in (-2011, -2013):
        return ErrorKind.NOT_FOUND
    return ErrorKind.REJECTED


# ---- the USD-M dead-man's switch --------------------------------------------------------------


def countdown_due(now_ns: int, armed_ns: int, countdown_ms: int, renew_fraction: float = 1 / 3) -> bool:
    """Re-arm `countdownCancelAll` once `renew_fraction` of the countdown has passed since the last
    arm (never armed: at once), so two renewals can be lost before the venue cancels."""
    return armed_ns <= 0 or now_ns - armed_ns >= int(countdown_ms * MS * renew_fraction)
