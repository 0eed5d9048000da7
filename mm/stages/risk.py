"""Risk's step: pre-trade checks, the authoritative position and PnL, stops, the peer halt,
reconcile with the venue, flatten, and recovery from the journal.

Actions it returns, carried out by the shell (processes/risk.py) or the in-process engine:
- `Place` / `Cancel` / `CancelEverything`: send to the gateway;
- `Rejection`: tell the quoter a place was refused;
- `StatusChanged`: publish risk's status (what the quoter acts on changed);
- `FillRecorded` / `PositionSnapshot` (mm.journal): append to the journal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import msgspec

from mm.config import Config
from mm.journal import FillRecorded, PositionSnapshot
from mm.orders import Side
from mm.position import Position, contract_size
from mm.risk_rules import (
    AdjustQuotesAction,
    CancelAllAction,
    Exposure,
    FlattenAction,
    KillSwitch,
    MarketView,
    OperatorReduceOnly,
    OperatorResume,
    RateWindow,
    StopAction,
    StopEvent,
    StopState,
    TradingState,
    apply_mark,
    apply_stop_event,
    check_order,
    dependency_policy,
)
from mm.stages.commands import CancelEverything, Place, Rejection

SNAPSHOT_EVERY_FILLS = 100  # recovery replays at most this many fills after the last snapshot


class StatusChanged(msgspec.Struct, frozen=True):
    """What the quoter acts on (trading state, pause, position, the soft stop's terms) changed."""


STATUS_CHANGED = StatusChanged()


class MarketRead(msgspec.Struct, frozen=True, gc=False):
    """One read of the book and prediction slots: 0 where there is none yet."""

    book_ts_ns: int = 0
    bid_px_tick: int = 0  # 0 with ask_px_tick 0: a side of the book is empty
    ask_px_tick: int = 0
    signal_ts_ns: int = 0
    volatility_bps_per_s: float = 0.0


class OpenOrder(msgspec.Struct):
    side: int
    px_tick: int
    leaves_lot: int


Action = Place | CancelEverything | Rejection | StatusChanged | FillRecorded | PositionSnapshot


class RiskStep:
    def __init__(self, config: Config, flatten_id_prefix: str) -> None:
        self.config = config
        self.flatten_id_prefix = flatten_id_prefix  # + a count: the flatten orders' client ids
        self.symbol = config.instrument.symbol
        self.tick_size = float(config.instrument.tick_size)
        self.lot_size = float(config.instrument.lot_size)
        self.position = Position(self.tick_size, self.lot_size,  # inverse contracts: PnL in the base coin
                                 contract_size(config.instrument.market, config.instrument.symbol))
        self.open_orders: dict[str, OpenOrder] = {}
        self.rate = RateWindow()
        self.stops = StopState()
        self.max_abs_position_lot = 0
        self.traded_quote = 0.0
        self.peer_halt = ""  # "peer_dead:<name>" while a dependency is silent
        self.last_event_ns = 0
        self.paused = False
        self.rejected_checks: Counter[str] = Counter()
        self.approved = 0
        self.halts = 0
        self.last_mid_tick = 0.0
        self.last_volatility = 0.0
        self.touch: tuple[int, int] | None = None  # the best bid and ask a flatten would take
        self.reconcile_pending = True  # with the gateway's first open-orders report
        self.reconcile_position = False
        self.reconciled_gone = self.reconciled_adopted = self.reconciled_position_lot = 0
        self.flattens = 0

    # ---- journal recovery -------------------------------------------------------------------------

    def recover(self, records: Iterable[Any]) -> int:
        """The position from the journal: the last snapshot, then the fills after it. Returns the
        number of fills replayed after the snapshot."""
        records = list(records)
        base = 0
        for i, record in enumerate(records):
            if isinstance(record, PositionSnapshot) and record.symbol == self.symbol:
                base = i
        replayed = 0
        for record in records[base:]:
            match record:
                case PositionSnapshot(symbol=symbol) if symbol == self.symbol:
                    self.position.restore(record.position_lot, record.cost_tick_lot, record.realized_tick_lot,
                                          record.fees_quote, record.traded_lot, record.fills)
                case FillRecorded(symbol=symbol) if symbol == self.symbol:
                    self.position.apply_fill(1 if record.side is Side.BUY else -1, record.px_tick, record.qty_lot,
                                             record.fee_quote)
                    replayed += 1
        return replayed

    def position_snapshot(self, ts_ns: int) -> PositionSnapshot:
        lot, cost, realized, fees, traded, fills = self.position.state()
        return PositionSnapshot(symbol=self.symbol, position_lot=lot, cost_tick_lot=cost, realized_tick_lot=realized,
                                fees_quote=fees, traded_lot=traded, fills=fills, ts_ns=ts_ns)

    # ---- the market -------------------------------------------------------------------------------

    def market_view(self, read: MarketRead) -> MarketView:
        if read.bid_px_tick and read.ask_px_tick:
            self.last_mid_tick = 0.5 * (read.bid_px_tick + read.ask_px_tick)
            self.touch = (read.bid_px_tick, read.ask_px_tick)
        else:
            self.touch = None
        self.last_volatility = read.volatility_bps_per_s if read.signal_ts_ns else 0.0
        pnl_quote = self.position.in_quote(self.position.total_quote(self.last_mid_tick), self.last_mid_tick)
        return MarketView(mid_px_tick=self.last_mid_tick, book_ts_ns=read.book_ts_ns,
                          signal_ts_ns=read.signal_ts_ns, equity_quote=self.config.risk.equity_quote + pnl_quote,
                          pnl_quote=pnl_quote)

    def _exposure(self) -> Exposure:
        buy_lot = sell_lot = 0
        best_bid: int | None = None
        best_ask: int | None = None
        for o in self.open_orders.values():
            if o.side > 0:
                buy_lot += o.leaves_lot
                if best_bid is None or o.px_tick > best_bid:
                    best_bid = o.px_tick
            else:
                sell_lot += o.leaves_lot
                if best_ask is None or o.px_tick < best_ask:
                    best_ask = o.px_tick
        return Exposure(position_lot=self.position.position_lot, open_buy_lot=buy_lot, open_sell_lot=sell_lot,
                        best_own_bid_tick=best_bid, best_own_ask_tick=best_ask)

    # ---- the order path ---------------------------------------------------------------------------

    @property
    def trading(self) -> TradingState:
        """HALTED while a dependency is dead (auto-clears) or a stop / kill holds; else the stops' state."""
        return TradingState.HALTED if self.peer_halt else self.stops.trading

    @property
    def halt_reason(self) -> str:
        return self.peer_halt or (self.stops.reason if self.stops.trading != TradingState.ACTIVE else "")

    def begin_decision(self, ts_recv_ns: int, read: MarketRead, now_ns: int) -> tuple[MarketView, list[Action]]:
        """One quoter decision is checked against one read of the market and one PnL mark."""
        self.last_event_ns = max(self.last_event_ns, ts_recv_ns)
        market = self.market_view(read)
        return market, self.mark(now_ns, market)

    def check(self, place: Place, now_ns: int, market: MarketView, peers_alive: bool) -> Rejection | None:
        """A place passes every pre-trade check (None) or is refused. Cancels need no check. `place`:
        a Place or any command with its fields (the shell checks the PlaceOrder it received).

        After a restart (ours or the gateway's) nothing is approved until the venue's position is
        reconciled: a fill of an order approved before that could reach us before or after the venue
        snapshot it races (fills and snapshots come on different channels), and the difference booked
        would then drop a fill made while we were down or count a new one twice."""
        reject = check_order(
            self.config.risk, place, self._exposure(), market,
            tick_size=self.tick_size, lot_size=self.lot_size, contract_size=self.position.contract_size,
            now_ns=now_ns, state=self.trading,
            paused=self.paused, peers_alive=peers_alive, recent_orders=self.rate,
            reconciled=not self.reconcile_position,
        )
        if reject is not None:
            self.rejected_checks[reject.value] += 1
            return Rejection(place.client_id, reject.value, now_ns)
        self.rate.record(now_ns)
        self.open_orders[place.client_id] = OpenOrder(place.side, place.px_tick, place.qty_lot)
        self.approved += 1
        return None

    # ---- order events -----------------------------------------------------------------------------

    def on_accepted(self, client_id: str, side: int, px_tick: int, qty_lot: int) -> None:
        if client_id not in self.open_orders:  # adopted: e.g. sent before a risk restart
            self.open_orders[client_id] = OpenOrder(side, px_tick, qty_lot)

    def on_fill(self, client_id: str, side: int, px_tick: int, qty_lot: int, leaves_lot: int, fee_quote: float,
                ts_event_ns: int, now_ns: int | None, read: MarketRead) -> list[Action]:
        """A fill: journal it, book it, mark PnL (at `now_ns`; None: on event time, the newest event
        seen, this fill's included) and say the status changed."""
        actions: list[Action] = [FillRecorded(client_id=client_id, symbol=self.symbol, side=side_of(side),
                                              px_tick=px_tick, qty_lot=qty_lot, fee_quote=fee_quote, trade_id=0,
                                              ts_ns=ts_event_ns)]
        self.position.apply_fill(side, px_tick, qty_lot, fee_quote)
        if self.position.fills % SNAPSHOT_EVERY_FILLS == 0:
            actions.append(self.position_snapshot(ts_event_ns))
        self.max_abs_position_lot = max(self.max_abs_position_lot, abs(self.position.position_lot))
        self.traded_quote += self.position.notional(px_tick, qty_lot)
        self.last_event_ns = max(self.last_event_ns, ts_event_ns)
        order = self.open_orders.get(client_id)
        if order is not None:
            order.leaves_lot = leaves_lot
            if leaves_lot == 0:
                del self.open_orders[client_id]
        actions.extend(self.mark(self.last_event_ns if now_ns is None else now_ns, self.market_view(read)))
        actions.append(STATUS_CHANGED)
        return actions

    def on_done(self, client_id: str) -> None:
        self.open_orders.pop(client_id, None)

    # ---- stops ------------------------------------------------------------------------------------

    def apply_stop(self, event: StopEvent, now_ns: int) -> list[Action]:
        """The pure stop-loss / kill-switch state machine, and what it says to do."""
        return self._carry_out(apply_stop_event(self.config.risk, self.stops, event, now_ns), now_ns)

    def _carry_out(self, stopped: tuple[StopState, list[StopAction]], now_ns: int) -> list[Action]:
        """The stops' new state and actions (`apply_stop_event`'s answer) in the step's terms."""
        before = self.stops
        self.stops, stop_actions = stopped
        if self.stops is before and not stop_actions:  # a mark that changed nothing
            return []
        if self.stops.trading != before.trading and self.stops.trading == TradingState.HALTED:
            self.halts += 1
        actions: list[Action] = []
        for action in stop_actions:
            match action:
                case CancelAllAction():
                    actions.append(CancelEverything(action.reason))
                case FlattenAction():
                    actions.extend(self.flatten_orders(now_ns))
                case AdjustQuotesAction():
                    pass  # carried to the quoter by the status (size_ratio, widen_ticks)
        if quoting_terms(self.stops) != quoting_terms(before):  # a mark alone changes only the PnL figures
            actions.append(STATUS_CHANGED)
        return actions

    def mark(self, now_ns: int, market: MarketView) -> list[Action]:
        """A PnL mark for the stops (`market.pnl_quote`: pnl()'s total, in quote like their limits), on
        every fill and every order check (event time in replay). No mark before the book gives a mid:
        PnL marked at 0 would be a false peak or drawdown."""
        if market.mid_px_tick <= 0:
            return []
        stopped = apply_mark(self.config.risk, self.stops, market.pnl_quote, self.last_volatility, now_ns)
        return self._carry_out(stopped, now_ns)

    def kill(self, reason: str, now_ns: int) -> list[Action]:
        return self.apply_stop(KillSwitch(reason), now_ns)

    def reduce_only(self, now_ns: int) -> list[Action]:
        return self.apply_stop(OperatorReduceOnly(True), now_ns)

    def resume(self, now_ns: int, peers_dead: set[str]) -> list[Action]:
        self.paused = False
        actions = self.apply_stop(OperatorResume(), now_ns)
        if self.stops.is_operator_reduce_only:
            actions.extend(self.apply_stop(OperatorReduceOnly(False), now_ns))
        if self.peer_halt and dependency_policy(peers_dead) is None:
            self.peer_halt = ""
        actions.append(STATUS_CHANGED)
        return actions

    def pause(self) -> list[Action]:
        self.paused = True
        return [CancelEverything("operator pause"), STATUS_CHANGED]

    def flatten_orders(self, now_ns: int) -> list[Action]:
        """Cancel all, go reduce-only, and take the touch for the whole position (not post-only)."""
        actions: list[Action] = [CancelEverything("operator flatten")]
        actions.extend(self.reduce_only(now_ns))
        position = self.position.position_lot
        if position == 0 or self.touch is None:
            return actions
        side = -1 if position > 0 else 1
        bid, ask = self.touch
        self.flattens += 1
        cid = f"{self.flatten_id_prefix}{self.flattens}"
        place = Place(cid, side, bid if side < 0 else ask, abs(position), post_only=False)
        self.open_orders[cid] = OpenOrder(side, place.px_tick, place.qty_lot)
        actions.append(place)
        return actions

    # ---- peers ------------------------------------------------------------------------------------

    def on_peer_died(self, peer: str) -> list[Action]:
        if dependency_policy({peer}) != TradingState.HALTED:
            return []
        if not self.peer_halt:
            self.halts += 1
        self.peer_halt = f"peer_dead:{peer}"
        return [CancelEverything(self.peer_halt), STATUS_CHANGED]

    def on_peer_revived(self, peer: str, peers_dead: set[str]) -> list[Action]:
        if peer == "gateway":
            self.reconcile_pending = self.reconcile_position = True
        if self.peer_halt and dependency_policy(peers_dead) is None:
            self.peer_halt = ""
            return [STATUS_CHANGED]
        return []

    # ---- reconcile --------------------------------------------------------------------------------

    def reconcile(self, rows: list[tuple[str, int, int, int]], venue_position_lot: int,
                  ts_ns: int) -> tuple[list[Action], dict[str, int]] | None:
        """The venue's open orders and position are the truth after a restart (ours or the gateway's):
        adopt the unknown, drop the gone; a position the journal missed (fills while we were down) is
        booked at the mid. None while the difference cannot be booked yet (no mid); else the journal
        records and what changed: {"missed_lot", "gone", "adopted"}."""
        # the position only after a restart (ours or the gateway's): in steady state a fill can be on
        # its way to us while the venue already counts it, and booking that difference would double it
        missed = venue_position_lot - self.position.position_lot if self.reconcile_position else 0
        if missed and self.last_mid_tick <= 0:
            return None  # no mid to book the difference at yet: the next report settles it
        self.reconcile_pending = self.reconcile_position = False
        actions: list[Action] = []
        if missed:
            side = 1 if missed > 0 else -1
            px_tick = round(self.last_mid_tick)
            actions.append(FillRecorded(client_id="reconcile", symbol=self.symbol, side=side_of(side), px_tick=px_tick,
                                        qty_lot=abs(missed), fee_quote=0.0, trade_id=0, ts_ns=ts_ns))
            self.position.apply_fill(side, px_tick, abs(missed), 0.0)
            self.reconciled_position_lot += missed
        venue = {cid: OpenOrder(side, px, leaves) for cid, side, px, leaves in rows}
        gone = [cid for cid in self.open_orders if cid not in venue]
        adopted = [cid for cid in venue if cid not in self.open_orders]
        for cid in gone:
            del self.open_orders[cid]
        for cid in adopted:
            self.open_orders[cid] = venue[cid]
        self.reconciled_gone += len(gone)
        self.reconciled_adopted += len(adopted)
        return actions, {"missed_lot": missed, "gone": len(gone), "adopted": len(adopted)}

    # ---- figures ----------------------------------------------------------------------------------

    def pnl(self) -> dict[str, Any]:
        return self.position.snapshot(self.last_mid_tick)

    def stats(self) -> dict[str, Any]:
        return {
            "approved": self.approved, "position": self.pnl(), "trading": self.trading.value,
            "halts": self.halts, "soft_stops": self.stops.soft_stops, "hard_stops": self.stops.hard_stops,
            "kills": self.stops.kills, "stop_reason": self.stops.reason,
            "max_abs_position": self.max_abs_position_lot * self.lot_size, "traded_quote": self.traded_quote,
            "reconciled": {"gone": self.reconciled_gone, "adopted": self.reconciled_adopted,
                           "position_lot": self.reconciled_position_lot},
            "rejected_checks": dict(sorted(self.rejected_checks.items())),
            "mid_px_tick": self.last_mid_tick,
        }


def quoting_terms(stops: StopState) -> tuple[TradingState, float, float]:
    """What of the stops' state the quoter acts on (carried by risk's status)."""
    return stops.trading, stops.size_ratio, stops.widen_ticks


def side_of(side: int) -> Side:
    return Side.BUY if side > 0 else Side.SELL
