"""The quoter's pricing and requote planning: pure functions from market, signal and inventory to
post-only quotes (one level per side: `compute_quote`; N levels with a size ladder:
`compute_quotes`), and from those and our working orders to cancel / place actions
(`plan_requote`, `plan_requote_levels`).

Reservation price = mid + predicted drift - inventory skew; the half-spread comes from
volatility, risk aversion, order-arrival intensity and fees (GLFT infinite-horizon form when
`risk_aversion` > 0, else the linear rule). Prices are rounded away from the mid on the tick
grid, clamped so that a post-only order never crosses the book.

Side is +1 buy (bid) / -1 sell (ask). Prices are int ticks, sizes int lots.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import msgspec

from mm.config import QuoterConfig

BUY = 1
SELL = -1
_NO_ASK = 2**63  # above every int64 price: no own sell order to meet
_NO_BID = -(2**63)


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


def glft_coefficients(cfg: QuoterConfig) -> tuple[float, float]:
    """(c1, c2) of the GLFT infinite-horizon approximation (Gueant, Lehalle, Fernandez-Tapia 2013),
    with inventory q counted in order sizes (delta = 1), distances in ticks:

        c1 = ln(1 + gamma / k) / gamma
        c2 = sqrt(gamma / (2 A k) * (1 + gamma / k) ^ (k / gamma + 1))
        half_spread = c1 + c2 * sigma / 2,   skew = c2 * sigma   (ticks; sigma in ticks per sqrt(s))

    As gamma -> 0, c1 -> 1 / k (the risk-neutral spread) and the skew vanishes."""
    gamma = cfg.risk_aversion
    k = cfg.arrival_decay_per_tick
    if gamma <= 0.0:
        return 1.0 / k, 0.0
    ratio = gamma / k
    c1 = math.log1p(ratio) / gamma
    c2 = math.sqrt(gamma / (2.0 * cfg.arrival_intensity_per_s * k) * (1.0 + ratio) ** (1.0 / ratio + 1.0))
    return c1, c2


def reservation_and_half_spread(
    cfg: QuoterConfig,
    *,
    mid_tick: float,
    position_lot: int,
    predicted_return: float,
    volatility_bps_per_s: float,
    alpha_enabled: bool,
    half_spread_cost_bps: float | None = None,
) -> tuple[float, float]:
    """(reservation, half-spread) in ticks: mid + predicted drift - inventory skew, and the spread.

    risk_aversion == 0 (linear):  skew = skew_ticks_per_lot * position,
        half = max(min_half_spread_ticks, vol_spread_mult * sigma_1s)
    risk_aversion > 0 (GLFT):     skew = c2 * sigma_1s * position / size_lot,
        half = max(min_half_spread_ticks, vol_spread_mult * sigma_1s, c1 + c2 * sigma_1s / 2)
    then the maker fee (bps of mid) is added to the half-spread in both forms, or what
    `half_spread_cost_bps` says the half-spread must cover in its place (the quoter's fee plus
    its expected adverse selection).
    sigma_1s = volatility_bps_per_s * 1e-4 * mid is the std of a 1 s mid move in ticks.
    """
    alpha_tick = cfg.alpha_weight * predicted_return * mid_tick if alpha_enabled else 0.0
    sigma_tick = max(0.0, volatility_bps_per_s) * 1e-4 * mid_tick
    half_spread_tick = max(float(cfg.min_half_spread_ticks), cfg.vol_spread_mult * sigma_tick)
    if cfg.risk_aversion > 0.0:
        c1, c2 = glft_coefficients(cfg)
        skew_tick = c2 * sigma_tick * position_lot / cfg.size_lot
        half_spread_tick = max(half_spread_tick, c1 + 0.5 * c2 * sigma_tick)
    else:
        skew_tick = cfg.skew_ticks_per_lot * position_lot
    cost_bps = cfg.maker_fee_bps if half_spread_cost_bps is None else half_spread_cost_bps
    half_spread_tick += (cost_bps or 0.0) * 1e-4 * mid_tick  # a None fee: resolved by the quoter step
    half_spread_tick = max(half_spread_tick, 0.5)  # a rebate never makes us quote inside our own mid
    return mid_tick + alpha_tick - skew_tick, half_spread_tick


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
    half_spread_cost_bps: float | None = None,
) -> Quote:
    """One level per side: bid = floor(reservation - half_spread), ask = ceil(reservation + half_spread)
    (see `reservation_and_half_spread`; the first level of `compute_quotes`).

    then clamped so a post-only order never crosses: bid <= best_ask - 1, ask >= best_bid + 1.
    Clamping only lowers the bid and raises the ask, and before it ask - bid >= 2 * half_spread >= 1,
    so bid < ask always holds. A side whose size would take |position| beyond max_position_lot is
    shrunk to what is left (0 = no quote); a bid below 1 tick is not quoted. A locked, crossed or
    empty book, or a non-finite input, gives NO_QUOTE.
    """
    if best_bid_tick <= 0 or best_ask_tick <= best_bid_tick:
        return NO_QUOTE
    if not (math.isfinite(predicted_return) and math.isfinite(volatility_bps_per_s)):
        return NO_QUOTE
    mid_tick = 0.5 * (best_bid_tick + best_ask_tick)
    reservation_tick, half_spread_tick = reservation_and_half_spread(
        cfg, mid_tick=mid_tick, position_lot=position_lot, predicted_return=predicted_return,
        volatility_bps_per_s=volatility_bps_per_s, alpha_enabled=alpha_enabled,
        half_spread_cost_bps=half_spread_cost_bps,
    )
    if not (math.isfinite(reservation_tick) and math.isfinite(half_spread_tick)):
        return NO_QUOTE
    if abs(reservation_tick) > 1e15 or half_spread_tick > 1e15:
        return NO_QUOTE

    bid_px_tick = min(math.floor(reservation_tick - half_spread_tick), best_ask_tick - 1)
    ask_px_tick = max(math.ceil(reservation_tick + half_spread_tick), best_bid_tick + 1)
    if bid_px_tick >= ask_px_tick:  # only with half_spread < 1 and reservation on a tick boundary
        bid_px_tick = ask_px_tick - 1

    bid_qty_lot = max(0, min(cfg.size_lot, max_position_lot - position_lot))
    ask_qty_lot = max(0, min(cfg.size_lot, max_position_lot + position_lot))
    if bid_px_tick < 1:
        bid_qty_lot = 0
    return Quote(bid_px_tick, bid_qty_lot, ask_px_tick, ask_qty_lot)


class Ladder(msgspec.Struct, frozen=True):
    """N levels per side, best first, as (px_tick, qty_lot); an empty side quotes nothing."""

    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


NO_LADDER = Ladder((), ())


def compute_quotes(
    cfg: QuoterConfig,
    *,
    best_bid_tick: int,
    best_ask_tick: int,
    position_lot: int,
    max_position_lot: int,
    predicted_return: float,
    volatility_bps_per_s: float,
    alpha_enabled: bool = True,
    size_ratio: float = 1.0,
    extra_half_spread_ticks: float = 0.0,
    half_spread_cost_bps: float | None = None,
) -> Ladder:
    """`cfg.levels` levels per side around the same reservation price as `compute_quote`.

    Level i (0 = best) sits `i * level_spacing_ticks` further out, rounded to the tick away from
    the mid, and is at least one tick beyond level i - 1; size = size_lot * size_ladder_ratio^i
    * size_ratio (rounded to lots, at least 1). Level 0 is clamped so post-only never crosses
    (bid <= best_ask - 1, ask >= best_bid + 1). On each side the sizes add up to no more than
    the room left to max_position_lot; a level that no longer fits is shrunk, the rest dropped.
    `size_ratio` and `extra_half_spread_ticks` are the soft stop's shrink and widen.
    """
    if best_bid_tick <= 0 or best_ask_tick <= best_bid_tick:
        return NO_LADDER
    if not (math.isfinite(predicted_return) and math.isfinite(volatility_bps_per_s) and size_ratio > 0.0):
        return NO_LADDER
    mid_tick = 0.5 * (best_bid_tick + best_ask_tick)
    reservation_tick, half_spread_tick = reservation_and_half_spread(
        cfg, mid_tick=mid_tick, position_lot=position_lot, predicted_return=predicted_return,
        volatility_bps_per_s=volatility_bps_per_s, alpha_enabled=alpha_enabled,
        half_spread_cost_bps=half_spread_cost_bps,
    )
    half_spread_tick += max(0.0, extra_half_spread_ticks)
    if not (math.isfinite(reservation_tick) and math.isfinite(half_spread_tick)):
        return NO_LADDER
    if abs(reservation_tick) > 1e15 or half_spread_tick > 1e15:
        return NO_LADDER
    bid0 = min(math.floor(reservation_tick - half_spread_tick), best_ask_tick - 1)
    ask0 = max(math.ceil(reservation_tick + half_spread_tick), best_bid_tick + 1)
    if bid0 >= ask0:
        bid0 = ask0 - 1
    bid_room = max(0, max_position_lot - position_lot)
    ask_room = max(0, max_position_lot + position_lot)
    bids: list[tuple[int, int]] = []
    asks: list[tuple[int, int]] = []
    for i in range(cfg.levels):
        size = max(1, round(cfg.size_lot * cfg.size_ladder_ratio**i * size_ratio))
        offset = i * cfg.level_spacing_ticks
        bid_px = math.floor(bid0 - offset)
        ask_px = math.ceil(ask0 + offset)
        if bids and bid_px >= bids[-1][0]:
            bid_px = bids[-1][0] - 1
        if asks and ask_px <= asks[-1][0]:
            ask_px = asks[-1][0] + 1
        if bid_room > 0 and bid_px >= 1:
            qty = min(size, bid_room)
            bids.append((bid_px, qty))
            bid_room -= qty
        if ask_room > 0:
            qty = min(size, ask_room)
            asks.append((ask_px, qty))
            ask_room -= qty
    return Ladder(tuple(bids), tuple(asks))


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
    working: Collection[WorkingOrder],
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


def plan_requote_levels(
    desired: Ladder,
    working: Collection[WorkingOrder],
    *,
    tolerance_ticks: int,
    max_age_ns: int,
    now_ns: int,
) -> list[CancelAction | PlaceAction]:
    """Actions that turn our working orders into the ladder `desired`: every cancel first, then
    the places (best level first).

    Each desired level keeps at most one working order of its side: the closest one within
    `tolerance_ticks` of its price, of the same size, younger than `max_age_ns` and not kept for
    another level; every other working order is cancelled and each level without a keeper is
    placed. If the kept and placed bids would reach our lowest ask (tolerance can do that), no
    order is kept: all are cancelled and the ladder placed fresh, so we never trade with ourselves.
    """
    bids = [o for o in working if o.side == BUY]
    asks = [o for o in working if o.side == SELL]
    if len(bids) + len(asks) != len(working):
        bad = next(o for o in working if o.side not in (BUY, SELL))
        raise ValueError(f"working order {bad.client_id}: side must be +1 or -1, was {bad.side}")

    def keep_for(levels: tuple[tuple[int, int], ...], orders: list[WorkingOrder]) -> list[WorkingOrder | None]:
        free = list(orders)
        kept: list[WorkingOrder | None] = []
        for px_tick, qty_lot in levels:
            keeper = _pick_keeper(free, px_tick, qty_lot, tolerance_ticks, max_age_ns, now_ns)
            if keeper is not None:
                free.remove(keeper)
            kept.append(keeper)
        return kept

    bid_keepers = keep_for(desired.bids, bids)
    ask_keepers = keep_for(desired.asks, asks)
    final_bids = [k.px_tick if k is not None else px for k, (px, _) in zip(bid_keepers, desired.bids)]
    final_asks = [k.px_tick if k is not None else px for k, (px, _) in zip(ask_keepers, desired.asks)]
    if final_bids and final_asks and max(final_bids) >= min(final_asks):
        bid_keepers = [None] * len(desired.bids)
        ask_keepers = [None] * len(desired.asks)
    kept_ids = {id(k) for k in bid_keepers + ask_keepers if k is not None}
    actions: list[CancelAction | PlaceAction] = [CancelAction(o.client_id) for o in working if id(o) not in kept_ids]
    for side, levels, keepers in ((BUY, desired.bids, bid_keepers), (SELL, desired.asks, ask_keepers)):
        for (px_tick, qty_lot), keeper in zip(levels, keepers):
            if keeper is None:
                actions.append(PlaceAction(side, px_tick, qty_lot))
    return actions


def defer_self_crossing(
    actions: list[CancelAction | PlaceAction], working: Collection[WorkingOrder],
    cancel_pending: Collection[WorkingOrder],
) -> list[CancelAction | PlaceAction]:
    """`actions` less the places that would meet one of our own orders still at the venue.

    An order stays at the venue until its cancel is confirmed: the ones cancelled earlier
    (`cancel_pending`) and by these very actions count, like the working ones kept. A buy at or
    above the lowest of them that sells (a sell at or below the highest that buys) would trade with
    us; risk refuses it as a self-trade. It is left out instead, and placed by the first requote
    after the cancel's confirmation. `actions` are as the plan functions give them: cancels first.
    """
    if not (cancel_pending or (actions and type(actions[0]) is CancelAction)):
        return actions  # nothing cancelled: the plan already keeps its bids below its asks
    lowest_ask, highest_bid = _NO_ASK, _NO_BID
    for orders in (working, cancel_pending):
        for order in orders:
            if order.side == SELL:
                if order.px_tick < lowest_ask:
                    lowest_ask = order.px_tick
            elif order.px_tick > highest_bid:
                highest_bid = order.px_tick
    return [a for a in actions if type(a) is CancelAction
            or (a.px_tick < lowest_ask if a.side == BUY else a.px_tick > highest_bid)]
