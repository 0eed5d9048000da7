"""The gateway's step: the simulated venue (the queue-position fill model fed with the market
the book sees, orders after the order-entry latency) and the record of every venue answer.

`GatewayStep.record` is the one place a venue's answer (simulated or real, as mm.fill_model's
Accepted / Rejected / Canceled / Filled) is counted, logged for the report and journaled; it
returns the events to publish and the journal records.

Our orders are tracked once, by mm.orders.OrderTracker, on both paths: with the sim venue the
step owns the tracker (each command goes in as the tracker's command, each answer as its venue
event, by the pipeline's own client ids); with a real venue the live adapter owns it and the step
only reads it. Either way the step reads our orders through `orders` (a read-only view). The fill
model's own orders are the venue's book, not ours: it is the venue. The sim venue's book follows the stream
the way the book's sync does: diffs before the first snapshot wait for it, a diff the snapshot
already covers is dropped (applying it would resurrect levels the venue has since removed).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mm.config import Config
from mm.fees import config_fees
from mm.fill_model import Accepted, Canceled, FillEvent, FillModel, Filled, Rejected
from mm.journal import FillRecorded
from mm.latency_model import ConstantLatency, EmpiricalLatency, OrderLatency
from mm.position import contract_size
from mm.queue_models import queue_model
from mm.orders import (
    CancelRejected,
    OrdersView,
    OrderTracker,
    Side,
    VenueEvent,
    VenueStatus,
    VenueUpdate,
)
from mm.stages.commands import Cancel, CancelEverything, Place

QUOTE_LOG_MAX_ROWS = 500_000
PRUNE_EVERY_NS = 60_000_000_000  # venue time between forgetting closed orders ...
KEEP_CLOSED_NS = 60_000_000_000  # ... closed at least this long
SIM_INSTANCE = "sim"  # the sim tracker's own id instance: it makes no ids (the pipeline's are tracked)


def sim_latency(config: Config) -> OrderLatency:
    """The sim venue's order-entry / cancel delay: [fill] latency_model."""
    fill = config.fill
    if fill.latency_model == "empirical":
        return EmpiricalLatency(fill.entry_latency_ms, fill.cancel_latency_ms, fill.latency_seed)
    return ConstantLatency(int(config.gateway.order_latency_ms * 1e6))


def sim_venue(config: Config) -> FillModel:
    gateway, fill, instrument = config.gateway, config.fill, config.instrument
    fees = config_fees(config)
    queue = queue_model(fill.queue_model, power=fill.queue_power, ratio=gateway.queue_cancel_ahead_ratio)
    return FillModel(maker_fee_bps=fees.maker_bps, taker_fee_bps=fees.taker_bps, queue=queue,
                     latency=sim_latency(config), tick_size=float(instrument.tick_size),
                     lot_size=float(instrument.lot_size),
                     contract_size=contract_size(instrument.market, instrument.symbol))


class GatewayStep:
    def __init__(self, config: Config, orders: OrdersView | None = None) -> None:
        """`orders`: the live venue's view of its tracker (a real venue); None: the sim venue, whose
        tracker this step owns."""
        self.symbol = config.instrument.symbol
        self.venue = sim_venue(config)
        self.latency_ns = sim_latency(config).max_ns  # the longest a request can be in flight
        self.tracker: OrderTracker | None = None
        if orders is None:
            bound_ns = max(1, self.latency_ns)  # the sim venue answers every request within its latency
            self.tracker = OrderTracker(config.gateway.client_id_prefix, SIM_INSTANCE, query_after_ns=bound_ns,
                                        cancel_timeout_ns=bound_ns)
            orders = self.tracker.view()
        self.orders = orders
        self._next_prune_ns = 0
        self.account_position_lot = 0  # the venue account's position: the truth risk reconciles with
        self._venue_last_id = -1  # no snapshot yet
        self._diffs_before_snapshot: list[tuple[int, list, list]] = []
        self.stale_diffs = 0
        self.counts: Counter[str] = Counter()
        self.reject_reasons: Counter[str] = Counter()
        self.fills: list[dict[str, Any]] = []
        self.quote_log: list[list[int | None]] = []
        self._last_quotes: tuple[int | None, int | None] = (None, None)

    # ---- the sim venue's market -------------------------------------------------------------------

    def on_snapshot(self, now_ns: int, last_id: int, bids: list, asks: list) -> list[FillEvent]:
        self._venue_last_id = last_id
        events = self.venue.on_snapshot(now_ns, bids, asks)
        held, self._diffs_before_snapshot = self._diffs_before_snapshot, []
        for final_id, diff_bids, diff_asks in held:
            events.extend(self.on_diff(now_ns, final_id, diff_bids, diff_asks))
        return events

    def on_diff(self, now_ns: int, final_id: int, bids: list, asks: list) -> list[FillEvent]:
        if self._venue_last_id < 0:  # no snapshot yet: hold the diff, as the book's sync does
            self._diffs_before_snapshot.append((final_id, bids, asks))
            return []
        if final_id <= self._venue_last_id:
            self.stale_diffs += 1
            return []
        self._venue_last_id = final_id
        return self.venue.on_depth(now_ns, bids, asks)

    def on_trade(self, now_ns: int, px_tick: int, qty_lot: int, taker_side: int) -> list[FillEvent]:
        return self.venue.on_trade(now_ns, px_tick, qty_lot, taker_side)

    # ---- orders to the sim venue ------------------------------------------------------------------

    def on_command(self, now_ns: int, command: Place | Cancel | CancelEverything) -> list[FillEvent]:
        """Hand a command to the sim venue; the tracker records it first. The venue hears every
        command, even one the tracker knows is too late (its refusal is the answer risk and the
        quoter wait for)."""
        match command:
            case Place():
                return self.place(now_ns, command.client_id, command.side, command.px_tick, command.qty_lot,
                                  command.post_only)
            case Cancel():
                return self.cancel(now_ns, command.client_id)
            case CancelEverything():
                tracker = self.tracker
                assert tracker is not None, "on_command drives the sim venue only"
                tracker.cancel_all(now_ns)
                return self.venue.cancel_all(now_ns)
        raise TypeError(f"gateway: unknown command {type(command).__name__}")

    def place(self, now_ns: int, client_id: str, side: int, px_tick: int, qty_lot: int,
              post_only: bool) -> list[FillEvent]:
        """on_command(Place(...)) without the command (the gateway shell's path, per order)."""
        tracker = self.tracker
        assert tracker is not None, "place drives the sim venue only"
        self.counts["sent"] += 1
        if side in (1, -1) and px_tick > 0 and qty_lot > 0 and client_id not in tracker.orders:  # else refused
            tracker.track(client_id, self.symbol, Side.BUY if side > 0 else Side.SELL, px_tick, qty_lot, now_ns)
            tracker.mark_sent(client_id, now_ns)
        return self.venue.submit(now_ns, client_id, side, px_tick, qty_lot, post_only)

    def cancel(self, now_ns: int, client_id: str) -> list[FillEvent]:
        """on_command(Cancel(...)) without the command."""
        tracker = self.tracker
        assert tracker is not None, "cancel drives the sim venue only"
        tracker.request_cancel(client_id, now_ns)
        return self.venue.cancel(now_ns, client_id)

    def advance(self, now_ns: int) -> list[FillEvent]:
        if self.tracker is not None and now_ns >= self._next_prune_ns:
            self.tracker.prune(now_ns, KEEP_CLOSED_NS)
            self._next_prune_ns = now_ns + PRUNE_EVERY_NS
        return self.venue.advance(now_ns)

    def open_orders(self) -> list[list[Any]]:
        """[[client_id, side, px_tick, leaves_lot], ...] of the sim venue, sorted."""
        return sorted([o.client_id, o.side, o.px_tick, o.leaves_lot] for o in self.venue.open_orders())

    # ---- every venue answer, simulated or real --------------------------------------------------------

    def record(self, events: list[FillEvent], clock_ns: int) -> list[FillRecorded]:
        """Count, log and journal the venue's answers; returns the journal records to append."""
        journal: list[FillRecorded] = []
        tracker = self.tracker
        for event in events:
            if tracker is not None:
                venue_event = self._tracker_event(event)
                if venue_event is not None:
                    tracker.apply(venue_event, clock_ns)
            match event:
                case Accepted():
                    self.counts["acked"] += 1
                case Rejected():
                    self.counts["rejected"] += 1
                    self.reject_reasons[reject_category(event.reason)] += 1
                case Canceled():
                    self.counts["cancelled"] += 1
                case Filled():
                    self.counts["fills"] += 1
                    if event.leaves_lot == 0:
                        self.counts["filled"] += 1
                    self.account_position_lot += event.side * event.qty_lot
                    journal.append(FillRecorded(client_id=event.client_id, symbol=self.symbol,
                                                side=Side.BUY if event.side > 0 else Side.SELL, px_tick=event.px_tick,
                                                qty_lot=event.qty_lot, fee_quote=event.fee_quote, trade_id=0,
                                                ts_ns=event.ts_ns))
                    self.fills.append({"ts_ns": event.ts_ns, "side": event.side, "px_tick": event.px_tick,
                                       "qty_lot": event.qty_lot, "fee": event.fee_quote, "maker": event.is_maker})
                case _:
                    raise TypeError(f"venue produced an unknown event {type(event).__name__}")
        if events:
            self._log_quotes(clock_ns)
        return journal

    def _tracker_event(self, event: FillEvent) -> VenueEvent | None:
        """The sim venue's answer as the tracker's venue event (fills as cumulative quantities);
        None: nothing for the tracker (an order it never tracked, a refused duplicate id)."""
        tracker = self.tracker
        assert tracker is not None
        order = tracker.orders.get(event.client_id)
        if order is None:
            return None
        match event:
            case Accepted():
                venue_id = int(event.venue_order_id) if event.venue_order_id.isdigit() else -1
                return VenueUpdate(event.client_id, VenueStatus.NEW, order.filled_qty_lot, event.ts_ns,
                                   venue_order_id=venue_id)
            case Filled():
                status = VenueStatus.FILLED if event.leaves_lot == 0 else VenueStatus.PARTIALLY_FILLED
                return VenueUpdate(event.client_id, status, order.qty_lot - event.leaves_lot, event.ts_ns,
                                   last_px_tick=event.px_tick)
            case Canceled():
                return VenueUpdate(event.client_id, VenueStatus.CANCELED, order.qty_lot - event.leaves_lot,
                                   event.ts_ns)
            case Rejected():
                category = reject_category(event.reason)
                if category == "cancel_unknown_order":
                    return CancelRejected(event.client_id, event.ts_ns, event.reason)
                if category == "duplicate_client_id":  # the order already holding the id is untouched
                    return None
                return VenueUpdate(event.client_id, VenueStatus.REJECTED, 0, event.ts_ns, reason=event.reason)
        raise TypeError(f"venue produced an unknown event {type(event).__name__}")

    def count_sent(self) -> None:
        """A place sent to a real venue (the sim venue counts its own in on_command)."""
        self.counts["sent"] += 1

    def _log_quotes(self, clock_ns: int) -> None:
        """Our best working bid / ask for the plots, on change (None: no order on that side)."""
        best = self.orders.best_working()
        bid, ask = best
        if best != self._last_quotes and len(self.quote_log) < QUOTE_LOG_MAX_ROWS:
            self.quote_log.append([clock_ns, bid, ask])
            self._last_quotes = best

    def stats(self) -> dict[str, Any]:
        return {
            "orders": {k: self.counts[k] for k in ("sent", "acked", "filled", "cancelled", "rejected")},
            "fills": self.counts["fills"],
            "reject_reasons": dict(sorted(self.reject_reasons.items())),
            "fill_log": self.fills, "quote_log": self.quote_log, "stale_diffs": self.stale_diffs,
        }


def reject_category(reason: str) -> str:
    """A bounded label for a venue's reject reason (reasons name order ids; labels must not)."""
    if reason.startswith("cancel"):
        return "cancel_unknown_order"
    return reason.split(":")[0].strip().replace(" ", "_").replace("-", "_")
