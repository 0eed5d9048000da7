"""The quoter's pricing and requote planning: pure functions from market, signal and inventory to
one post-only quote per side, and from that quote and our working orders to cancel / place actions.

Side is +1 buy (bid) / -1 sell (ask). Prices are int ticks, sizes int lots.
"""

from __future__ import annotations

import math

import msgspec

from mm.config import QuoterConfig

BUY = 1
SELL = -1


class Quote(msgspec.Struct, frozen=True):
    """One level each side; qty 0 = no quote on that side (its price is then only informative)."""

    bid_px_tick: int
    bid_qty_lot: int
    ask_px_tick: int
    ask_qty_lot: int


NO_QUOTE = Quote(0, 0, 0, 0)


class WorkingOrder(msgspec.Struct, frozen=True):
    client_id: str
    side: int
    px_tick: int
    qty_lot: int  # what is still open (leaves), compared with the desired size
    placed_ns: int


class PlaceAction(msgspec.Struct, frozen=True):
    side: int
    px_tick: int
    qty_lot: int


class CancelAction(msgspec.Struct, frozen=True):
    client_id: str


def compute_quote(
    cfg: QuoterConfig,
    *,
    best_bid_tick: int,
    best_ask_tick: int,
    position_lot: int,
    max_position_lot: int,
    predicted_return: float,
    volatility_bps_per_s: float,
    alpha_enabled: bool = True,
) -> Quote:
    """Reservation price with inventory skew and predicted drift, spread from volatility.

        mid          = (best_bid + best_ask) / 2                                  (ticks)
        reservation  = mid + alpha_weight * predicted_return * mid - skew_ticks_per_lot * position
        half_spread  = max(min_half_spread_ticks, vol_spread_mult * sigma_1s)
        sigma_1s     = volatility_bps_per_s * 1e-4 * mid   (std of a 1 s mid move, in ticks)
        bid = floor(reservation - half_spread), ask = ceil(reservation + half_spread)

    then clamped so a post-only order never crosses: bid <= best_ask - 1, ask >= best_bid + 1.
    Clamping only lowers the bid and raises the ask, and before it ask - bid >= 2 * half_spread >= 2,
    so bid < ask always holds. A side whose size would take |position| beyond max_position_lot is
    shrunk to what is left (0 = no quote); a bid below 1 tick is not quoted. A locked, crossed or
    empty book, or a non-finite input, gives NO_QUOTE.
    """
    if best_bid_tick <= 0 or best_ask_tick <= best_bid_tick:
        return NO_QUOTE
    if not (math.isfinite(predicted_return) and math.isfinite(volatility_bps_per_s)):
        return NO_QUOTE
    mid_tick = 0.5 * (best_bid_tick + best_ask_tick)
    alpha_tick = cfg.alpha_weight * predicted_return * mid_tick if alpha_enabled else 0.0
    reservation_tick = mid_tick + alpha_tick - cfg.skew_ticks_per_lot * position_lot
    sigma_tick = max(0.0, volatility_bps_per_s) * 1e-4 * mid_tick
    half_spread_tick = max(float(cfg.min_half_spread_ticks), cfg.vol_spread_mult * sigma_tick)
    if not (math.isfinite(reservation_tick) and math.isfinite(half_spread_tick)):
        return NO_QUOTE

    bid_px_tick = min(math.floor(reservation_tick - half_spread_tick), best_ask_tick - 1)
    ask_px_tick = max(math.ceil(reservation_tick + half_spread_tick), best_bid_tick + 1)

    bid_qty_lot = max(0, min(cfg.size_lot, max_position_lot - position_lot))
    ask_qty_lot = max(0, min(cfg.size_lot, max_position_lot + position_lot))
    if bid_px_tick < 1:
        bid_qty_lot = 0
    return Quote(bid_px_tick, bid_qty_lot, ask_px_tick, ask_qty_lot)


def _pick_keeper(
    orders: list[WorkingOrder], px_tick: int, qty_lot: int, tolerance_ticks: int, max_age_ns: int, now_ns: int
) -> WorkingOrder | None:
    """The working order closest to the desired price that may stay: same size, within tolerance, not too old."""
    keeper = None
    for order in orders:
        distance = abs(order.px_tick - px_tick)
        if order.qty_lot != qty_lot or distance > tolerance_ticks or now_ns - order.placed_ns >= max_age_ns:
            continue
        if keeper is None or distance < abs(keeper.px_tick - px_tick):
            keeper = order
    return keeper


def plan_requote(
    desired: Quote,
    working: list[WorkingOrder],
    *,
    tolerance_ticks: int,
    max_age_ns: int,
    now_ns: int,
) -> list[CancelAction | PlaceAction]:
    """Actions that turn our working orders into `desired`: every cancel first, then the places.

    Per side at most one order stays: the one closest to the desired price among those within
    `tolerance_ticks`, of the desired size and younger than `max_age_ns`; every other order on the
    side is cancelled and, if none stays, the desired one is placed. A side with qty 0 is cancelled.
    Keepers are dropped when they would leave our bid at or above our ask (tolerance can do that),
    so the plan never makes us trade with ourselves. Cancels keep the order of `working`.
    """
    bids = [o for o in working if o.side == BUY]
    asks = [o for o in working if o.side == SELL]
    if len(bids) + len(asks) != len(working):
        bad = next(o for o in working if o.side not in (BUY, SELL))
        raise ValueError(f"working order {bad.client_id}: side must be +1 or -1, was {bad.side}")

    bid_keeper = (
        _pick_keeper(bids, desired.bid_px_tick, desired.bid_qty_lot, tolerance_ticks, max_age_ns, now_ns)
        if desired.bid_qty_lot > 0
        else None
    )
    ask_keeper = (
        _pick_keeper(asks, desired.ask_px_tick, desired.ask_qty_lot, tolerance_ticks, max_age_ns, now_ns)
        if desired.ask_qty_lot > 0
        else None
    )
    if desired.bid_qty_lot > 0 and desired.ask_qty_lot > 0:
        final_bid_tick = bid_keeper.px_tick if bid_keeper is not None else desired.bid_px_tick
        final_ask_tick = ask_keeper.px_tick if ask_keeper is not None else desired.ask_px_tick
        if final_bid_tick >= final_ask_tick:
            bid_keeper = ask_keeper = None

    actions: list[CancelAction | PlaceAction] = [
        CancelAction(o.client_id) for o in working if o is not bid_keeper and o is not ask_keeper
    ]
    if desired.bid_qty_lot > 0 and bid_keeper is None:
        actions.append(PlaceAction(BUY, desired.bid_px_tick, desired.bid_qty_lot))
    if desired.ask_qty_lot > 0 and ask_keeper is None:
        actions.append(PlaceAction(SELL, desired.ask_px_tick, desired.ask_qty_lot))
    return actions
