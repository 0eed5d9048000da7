"""Risk's pre-trade checks, its trading state and its dependency policy: pure rules.

`check_order` answers one place-order command with None (approved) or the first Reject reason.
Cancels are always allowed and have no check. Side is +1 buy / -1 sell; prices int ticks,
sizes int lots, time `*_ns` handed in by the caller.
"""

from __future__ import annotations

import collections
import enum
import math
from typing import Protocol

import msgspec

from mm.config import RiskConfig

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000

# Stages whose death halts trading (DESIGN.md heartbeats): without the quoter nobody manages our
# quotes, without the book we price blind, without the gateway we cannot cancel.
HALT_ON_DEAD_PEERS: frozenset[str] = frozenset({"quoter", "book", "gateway"})


class TradingState(enum.Enum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that shrink |position| pass
    HALTED = "halted"  # nothing passes until an operator resumes


# the members every order check and mark compares with, bound once: a read of an Enum class's
# attribute takes EnumType.__getattr__'s slow path (Python 3.11: about 8x a module global's cost)
_ACTIVE, _REDUCING, _HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


class Reject(enum.Enum):
    MAX_ORDER_SIZE = "max_order_size"
    MAX_NOTIONAL = "max_notional"
    MAX_POSITION = "max_position"
    MAX_POSITION_EQUITY = "max_position_equity"
    PRICE_BAND = "price_band"
    ORDER_RATE = "order_rate"
    STALE_BOOK = "stale_book"
    STALE_SIGNAL = "stale_signal"
    SELF_TRADE = "self_trade"
    HALTED = "halted"
    PAUSED = "paused"
    REDUCE_ONLY = "reduce_only"
    PEER_DEAD = "peer_dead"
    UNRECONCILED = "unreconciled"  # after a restart, before the venue's position is reconciled (RiskStep)


class OrderTerms(Protocol):
    """What the checks read of a place: an OrderCheck, or the command itself (RiskStep passes its own)."""

    side: int  # +1 buy / -1 sell
    px_tick: int
    qty_lot: int


class OrderCheck(msgspec.Struct, frozen=True):
    side: int  # +1 buy / -1 sell
    px_tick: int
    qty_lot: int


class Exposure(msgspec.Struct, frozen=True):
    """What we hold and have working at the venue (working includes orders whose cancel is pending)."""

    position_lot: int
    open_buy_lot: int
    open_sell_lot: int
    best_own_bid_tick: int | None = None  # our highest working buy, None if none
    best_own_ask_tick: int | None = None  # our lowest working sell, None if none


class MarketView(msgspec.Struct, frozen=True):
    mid_px_tick: float
    book_ts_ns: int  # when the book we price against was received
    signal_ts_ns: int  # when the prediction in force was made
    equity_quote: float = math.inf  # account equity now (capital + PnL): the % of equity limit's base
    pnl_quote: float = 0.0  # total PnL (realised + unrealised - fees) in quote at this mid: what the stops mark


class RateWindow:
    """Timestamps of recent orders over a sliding 1 s window (the order-rate limit)."""

    def __init__(self) -> None:
        self._sent_ns: collections.deque[int] = collections.deque()

    def _evict(self, now_ns: int) -> None:
        horizon_ns = now_ns - _NS_PER_S
        sent_ns = self._sent_ns
        while sent_ns and sent_ns[0] <= horizon_ns:
            sent_ns.popleft()

    def count(self, now_ns: int) -> int:
        """Orders recorded in (now - 1 s, now]."""
        self._evict(now_ns)
        return len(self._sent_ns)

    def count_without_evicting(self, now_ns: int) -> int:
        """`count` for an observer (metrics): evicting on its clock could drop an order a later check,
        on event time that may lag it, still counts."""
        horizon_ns = now_ns - _NS_PER_S
        return sum(1 for sent_ns in self._sent_ns if sent_ns > horizon_ns)

    def allow(self, now_ns: int, max_per_s: float) -> bool:
        """True when one more order now keeps the count over the last second <= max_per_s."""
        self._evict(now_ns)
        return len(self._sent_ns) + 1 <= max_per_s

    def record(self, now_ns: int) -> None:
        self._sent_ns.append(now_ns)


def _is_reducing(order: OrderTerms, exposure: Exposure) -> bool:
    """The order, with what is already working on its side, shrinks |position| without flipping it."""
    if order.side > 0:
        return exposure.position_lot < 0 and exposure.open_buy_lot + order.qty_lot <= -exposure.position_lot
    return exposure.position_lot > 0 and exposure.open_sell_lot + order.qty_lot <= exposure.position_lot


def check_order(
    limits: RiskConfig,
    order: OrderTerms,
    exposure: Exposure,
    market: MarketView,
    *,
    tick_size: float,
    lot_size: float,
    contract_size: float = 0.0,
    now_ns: int,
    state: TradingState,
    paused: bool,
    peers_alive: bool,
    recent_orders: RateWindow,
    reconciled: bool = True,
) -> Reject | None:
    """None if `order` may go to the venue, else the first failed check in this order:
    halted, paused, peer dead, stale book, stale signal, reduce-only, order size, notional,
    position, price band, self-trade, order rate, unreconciled (after a restart, until the
    venue's position is booked: mm.stages.risk says why).

    Position: a buy fails if position + open buys + qty > max_position_lot, a sell if
    position - open sells - qty < -max_position_lot (an order on the other side only reduces);
    and, with max_position_equity_pct > 0, if that worst-case position valued at the mid exceeds
    that share of equity (`market.equity_quote`: capital + PnL; a NaN or a loss wiping it out fails).
    Notional = px * qty * tick_size * lot_size (quote currency); an inverse contract (contract_size
    > 0, mm.position) is worth qty * lot_size * contract_size of quote whatever the price. Band:
    |px - mid| / mid in bps.
    Reads `recent_orders` only: the caller records an approved order there when it sends it.
    Raises ValueError on a side other than +1 / -1 or qty <= 0 (the quoter never makes one).
    """
    if order.side != 1 and order.side != -1:
        raise ValueError(f"order side must be +1 or -1, was {order.side}")
    if order.qty_lot <= 0:
        raise ValueError(f"order qty_lot must be > 0, was {order.qty_lot}")

    if state is _HALTED:
        return Reject.HALTED
    if paused:
        return Reject.PAUSED
    if not peers_alive:
        return Reject.PEER_DEAD
    if now_ns - market.book_ts_ns > limits.max_book_age_ms * _NS_PER_MS:
        return Reject.STALE_BOOK
    if now_ns - market.signal_ts_ns > limits.max_signal_age_ms * _NS_PER_MS:
        return Reject.STALE_SIGNAL
    if state is _REDUCING and not _is_reducing(order, exposure):
        return Reject.REDUCE_ONLY

    if order.qty_lot > limits.max_order_lot:
        return Reject.MAX_ORDER_SIZE
    quote_per_lot = lot_size * contract_size if contract_size > 0 else 0.0  # inverse: a contract's face value
    notional_quote = order.qty_lot * quote_per_lot if quote_per_lot else order.px_tick * order.qty_lot * tick_size * lot_size
    if not (notional_quote <= limits.max_notional_quote):
        return Reject.MAX_NOTIONAL
    if order.side > 0:
        if exposure.position_lot + exposure.open_buy_lot + order.qty_lot > limits.max_position_lot:
            return Reject.MAX_POSITION
    elif exposure.position_lot - exposure.open_sell_lot - order.qty_lot < -limits.max_position_lot:
        return Reject.MAX_POSITION
    mid = market.mid_px_tick
    if limits.max_position_equity_pct > 0:  # the same worst case, valued at the mid, vs % of equity
        worst_lot = (exposure.position_lot + exposure.open_buy_lot + order.qty_lot if order.side > 0
                     else exposure.position_lot - exposure.open_sell_lot - order.qty_lot)
        value_quote = abs(worst_lot) * quote_per_lot if quote_per_lot else abs(worst_lot) * mid * tick_size * lot_size
        if not (value_quote <= market.equity_quote * limits.max_position_equity_pct / 100):
            return Reject.MAX_POSITION_EQUITY
    # written so a NaN, infinite or non-positive mid fails the band (no market = no price check passes)
    if not (0 < mid < math.inf and order.px_tick > 0 and abs(order.px_tick - mid) * 1e4 <= limits.price_band_bps * mid):
        return Reject.PRICE_BAND
    if order.side > 0:
        if exposure.best_own_ask_tick is not None and order.px_tick >= exposure.best_own_ask_tick:
            return Reject.SELF_TRADE
    elif exposure.best_own_bid_tick is not None and order.px_tick <= exposure.best_own_bid_tick:
        return Reject.SELF_TRADE
    if not recent_orders.allow(now_ns, limits.max_orders_per_s):
        return Reject.ORDER_RATE
    if not reconciled:
        return Reject.UNRECONCILED
    return None


def dependency_policy(dead_peers: set[str] | frozenset[str]) -> TradingState | None:
    """HALTED if the quoter, book or gateway is dead; None (no change) otherwise."""
    if HALT_ON_DEAD_PEERS & dead_peers:
        return TradingState.HALTED
    return None


# ---- reduce-only, stop-losses, kill switch: one pure state machine ----------------------------------


class StopState(msgspec.Struct, frozen=True):
    """Risk's trading state and what decides it. `trading` is derived: HALTED while hard-stopped
    (hard stop or kill switch), else REDUCING while soft-stopped or the operator's reduce-only is
    on, else ACTIVE. PnL is total PnL in quote currency (realised + unrealised - fees)."""

    trading: TradingState = TradingState.ACTIVE
    is_hard_stopped: bool = False
    is_soft_stopped: bool = False
    is_operator_reduce_only: bool = False
    peak_pnl_quote: float = 0.0  # highest PnL since start or the last resume: the hard stop's peak
    soft_peak_pnl_quote: float = 0.0  # the soft stop's peak, re-based when a soft stop ends
    soft_until_ns: int = 0  # the soft stop's cooldown ends here
    last_pnl_quote: float = 0.0
    last_volatility_bps_per_s: float = 0.0
    size_ratio: float = 1.0  # quote sizes x this (the soft stop's shrink)
    widen_ticks: float = 0.0  # half-spread + this (the soft stop's widen)
    soft_stops: int = 0
    hard_stops: int = 0
    kills: int = 0
    reason: str = ""


class MarkEvent(msgspec.Struct, frozen=True):
    """A new PnL mark (after a fill or a book change) and the volatility in force."""

    pnl_quote: float
    volatility_bps_per_s: float = 0.0


class OperatorReduceOnly(msgspec.Struct, frozen=True):
    is_on: bool


class OperatorResume(msgspec.Struct, frozen=True):
    """The only way out of a hard stop or the kill switch."""


class KillSwitch(msgspec.Struct, frozen=True):
    reason: str = "kill switch"


StopEvent = MarkEvent | OperatorReduceOnly | OperatorResume | KillSwitch


class CancelAllAction(msgspec.Struct, frozen=True):
    reason: str


class FlattenAction(msgspec.Struct, frozen=True):
    """Close the position (reduce-only, taker if need be): the shell sends it, risk approves it."""

    reason: str


class AdjustQuotesAction(msgspec.Struct, frozen=True):
    size_ratio: float
    widen_ticks: float


StopAction = CancelAllAction | FlattenAction | AdjustQuotesAction


def _derive(state: StopState) -> TradingState:
    if state.is_hard_stopped:
        return _HALTED
    if state.is_soft_stopped or state.is_operator_reduce_only:
        return _REDUCING
    return _ACTIVE


def apply_stop_event(
    limits: RiskConfig, state: StopState, event: StopEvent, now_ns: int
) -> tuple[StopState, list[StopAction]]:
    """(state, event, now_ns) -> (state, actions). Policy:

    - Hard stop: drawdown from the peak PnL (peak since start or the last resume) reaches
      `hard_stop_drawdown_quote` -> HALTED, cancel all, flatten if `flatten_on_hard_stop`; only
      OperatorResume leaves it (the peaks restart at the PnL then). The kill switch does the same.
    - Soft stop: drawdown from the soft peak reaches `soft_stop_drawdown_quote`, or volatility
      reaches `soft_stop_vol_bps_per_s` -> REDUCING (reduce-only), cancel all (resting orders
      that add exposure go), quotes shrink by `soft_stop_size_ratio` and widen by
      `soft_stop_widen_ticks`, for at least `soft_stop_cooldown_s`.
    - Recovery (stated policy): at the first mark after the cooldown where volatility is below its
      trigger, the soft stop ends, sizes and spread go back to normal, and the soft peak is
      re-based to the PnL then (the loss is accepted; the hard stop still measures from the
      overall peak, so repeated soft stops cannot walk PnL down past the hard limit).
    - Operator reduce-only: REDUCING while on, whatever the stops say; off returns to what they say.
    """
    actions: list[StopAction] = []
    match event:
        case MarkEvent(pnl_quote=pnl, volatility_bps_per_s=volatility):
            return apply_mark(limits, state, pnl, volatility, now_ns)
        case OperatorReduceOnly(is_on=is_on):
            state = msgspec.structs.replace(state, is_operator_reduce_only=is_on)
            if is_on and not state.is_hard_stopped:
                actions = [CancelAllAction("operator reduce-only")]
        case OperatorResume():
            if state.is_hard_stopped:
                pnl = state.last_pnl_quote
                state = msgspec.structs.replace(
                    state, is_hard_stopped=False, is_soft_stopped=False, peak_pnl_quote=pnl,
                    soft_peak_pnl_quote=pnl, size_ratio=1.0, widen_ticks=0.0, reason="resumed by operator",
                )
                actions = [AdjustQuotesAction(1.0, 0.0)]
        case KillSwitch(reason=reason):
            state = msgspec.structs.replace(state, kills=state.kills + 1)
            return _hard_stop(limits, state, reason, is_kill=True)
        case _:
            raise TypeError(f"apply_stop_event: unknown event {type(event).__name__}")
    return _with_trading(state), actions


def apply_mark(limits: RiskConfig, state: StopState, pnl_quote: float, volatility_bps_per_s: float,
               now_ns: int) -> tuple[StopState, list[StopAction]]:
    """`apply_stop_event` of `MarkEvent(pnl_quote, volatility_bps_per_s)`, without building the
    event: risk marks on every order decision. A mark that changes nothing returns `state` itself."""
    pnl, volatility = pnl_quote, volatility_bps_per_s
    actions: list[StopAction] = []
    if not math.isfinite(pnl):
        return state, actions
    peak = max(state.peak_pnl_quote, pnl)
    soft_peak = max(state.soft_peak_pnl_quote, pnl)
    if not (pnl == state.last_pnl_quote and volatility == state.last_volatility_bps_per_s
            and pnl <= state.peak_pnl_quote and pnl <= state.soft_peak_pnl_quote):  # else the same mark again
        state = msgspec.structs.replace(
            state, peak_pnl_quote=peak, soft_peak_pnl_quote=soft_peak, last_pnl_quote=pnl,
            last_volatility_bps_per_s=volatility,
        )
    if state.is_hard_stopped:
        return state, actions
    if 0.0 < limits.hard_stop_drawdown_quote <= peak - pnl:
        return _hard_stop(limits, state, f"hard stop: drawdown {peak - pnl:.6g} from peak {peak:.6g}")
    is_vol_high = 0.0 < limits.soft_stop_vol_bps_per_s <= volatility
    is_drawdown = 0.0 < limits.soft_stop_drawdown_quote <= soft_peak - pnl
    if not state.is_soft_stopped and (is_vol_high or is_drawdown):
        reason = (f"soft stop: drawdown {soft_peak - pnl:.6g}" if is_drawdown
                  else f"soft stop: volatility {volatility:.6g} bps/s")
        state = msgspec.structs.replace(
            state, is_soft_stopped=True, soft_until_ns=now_ns + int(limits.soft_stop_cooldown_s * 1e9),
            size_ratio=limits.soft_stop_size_ratio, widen_ticks=limits.soft_stop_widen_ticks,
            soft_stops=state.soft_stops + 1, reason=reason,
        )
        actions = [CancelAllAction(reason), AdjustQuotesAction(state.size_ratio, state.widen_ticks)]
    elif state.is_soft_stopped and now_ns >= state.soft_until_ns and not is_vol_high:
        state = msgspec.structs.replace(
            state, is_soft_stopped=False, size_ratio=1.0, widen_ticks=0.0, soft_peak_pnl_quote=pnl,
            reason="soft stop ended",
        )
        actions = [AdjustQuotesAction(1.0, 0.0)]
    return _with_trading(state), actions


def _with_trading(state: StopState) -> StopState:
    """`state` with `trading` derived from its flags (itself when that changes nothing)."""
    trading = _derive(state)
    return state if trading is state.trading else msgspec.structs.replace(state, trading=trading)


def _hard_stop(
    limits: RiskConfig, state: StopState, reason: str, is_kill: bool = False
) -> tuple[StopState, list[StopAction]]:
    was_stopped = state.is_hard_stopped
    state = msgspec.structs.replace(
        state, is_hard_stopped=True, hard_stops=state.hard_stops + (0 if is_kill or was_stopped else 1),
        reason=reason, trading=TradingState.HALTED,
    )
    actions: list[StopAction] = [CancelAllAction(reason)]
    if limits.flatten_on_hard_stop:
        actions.append(FlattenAction(reason))
    return state, actions


class RejectCounts:
    """Every rejection counted by reason (the report's `risk.rejected_checks`)."""

    def __init__(self) -> None:
        self.by_reason: dict[str, int] = {}

    def record(self, reject: Reject | None) -> Reject | None:
        if reject is not None:
            self.by_reason[reject.value] = self.by_reason.get(reject.value, 0) + 1
        return reject

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.by_reason.items()))
