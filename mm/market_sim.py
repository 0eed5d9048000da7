"""The built-in simulated venue's market: a seeded generator of L2 depth diffs and trades.

Owns one instrument's order book and the order flow that changes it. Everything is in int ticks
and lots; time is the caller's `now_ns`. The model, in brief:

- The mid moves in discrete *moves* (clusters of them, Poisson in time): a move of k ticks trades
  into the touch with one aggressive order (a burst of trades at one timestamp, one per maker),
  sometimes into the next levels too, cancels what is left of the passed-through levels (fleeting
  liquidity) and re-quotes one tick wide on the new price. The move's direction leans on the
  touch queue imbalance; its size is |Student-t(5)|-shaped, scaled so the calm regime's 1 s
  mid-return std is `cfg.vol_bps_per_s`. A high-volatility regime (rate and size
  up, std x `high_vol_multiplier`) switches on at `regime_switch_per_min` and off at 9x that rate;
  jumps of `jump_bps` (x uniform 0.5..1.5) arrive at `jump_per_min`.
- Between moves, aggressive orders (several makers each, long-tailed lognormal sizes) trade at the
  touch without emptying it, and a stream of limit arrivals, cancels and level births/deaths
  (concentrated near the touch, mean-reverting to a target depth) changes dozens of levels per
  100 ms. About one move in ten leaves the spread two ticks wide until a later depth batch.
- Depth is published in batches every 1/`depth_updates_per_s` s on a fixed grid from `start_ns`,
  Binance-spot style: update ids count every level change, a batch covers first_id..final_id with
  first_id == previous final_id + 1 and lists each changed level once with its absolute qty.
  Trades are published when they happen, before the batch that shows their effect.

Sizes are modelled as BTC quantities at a reference price of 60 000 (STATS.md's BTCUSDT spot) and
scaled to keep the same quote notional at `cfg.start_px`, then converted with `lot_size`.
Generation runs ahead of the caller only in `next_event_ns`; what `advance` returns and what
`snapshot` shows depend on `now_ns` alone, never on how often the caller asks.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import msgspec
import numpy as np

from mm.config import SimConfig

_REF_PX = 60_000.0  # the base quantities below are BTC at this price; other prices keep the notional
_TRADE_MEDIAN_BASE = 0.0005  # one maker fill (one trade print), median
_TRADE_SIGMA = 2.6  # lognormal sigma of one trade print
_TOUCH_TARGET_BASE = 1.5  # depth the touch queue reverts to
_DEEP_TARGET_BASE = 0.12  # depth a level behind the touch reverts to
_PIECE_RATIO = 0.3  # a limit arrival or cancel is this share of the level's target
_EXTRA_MAKERS_MEAN = 2.0  # makers per aggressive order = 1 + geometric with this mean
_MOVE_CLUSTERS_PER_S = 0.7  # calm regime: about half of all 1 s intervals see no move
_MOVE_EXTRA_MEAN = 1.0  # moves per cluster = 1 + geometric with this mean
_MOVE_GAP_NS = 20_000_000  # mean time between the moves of one cluster
_SWEEP_CONTINUE_RATIO = 0.3  # chance a move's aggressor also trades the next passed-through level
_JUMP_SWEEP_CONTINUE_RATIO = 0.7
_NOISE_OPS_PER_S = 720.0  # limit arrivals, cancels, level births and deaths
_TOUCH_OP_RATIO = 0.3  # share of those aimed at a touch
_NOISE_RANK_MEAN = 12.0  # other ops pick a level at an exponential rank from the touch
_LEVEL_BIRTH_RATIO = 0.1
_LEVEL_DEATH_RATIO = 0.1
_SPREAD_OPEN_RATIO = 0.1  # a move leaves the spread 2 ticks wide ...
_SPREAD_CLOSE_RATIO = 0.6  # ... until a batch closes it (at each batch, this chance)
_IMBALANCE_TILT = 0.3  # P(up move) = 0.5 + tilt * (bid - ask) / (bid + ask) at the touch
_HIGH_EXIT_FACTOR = 9.0  # the high regime ends this much faster than it starts: ~10% of the time
_TRADE_SHARE_FROM_MOVES = 0.2  # of cfg.trades_per_s, expected from move sweeps
_GAP_PER_VOL_TICK = 1.0 / 20.0  # mean tick gap between levels per tick of 1 s volatility
_FIRST_UPDATE_ID = 1_000_000
_BUFFER = 4096
_T_DOF = 5


class SimDepth(msgspec.Struct, frozen=True):
    """One batched depth update, Binance-spot-like ids; qty is the level's new absolute qty, 0 removes."""

    first_id: int
    final_id: int
    ts_ns: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


class SimTrade(msgspec.Struct, frozen=True):
    trade_id: int
    px_tick: int
    qty_lot: int
    taker_side: int  # +1 the aggressor bought (lifted the ask), -1 it sold
    ts_ns: int


SimEvent = SimDepth | SimTrade


class _Draws:
    """Buffered draws from one PCG64 stream; the order of calls fixes the sequence."""

    __slots__ = ("_rng", "_uniform", "_iu", "_normal", "_in", "_student", "_is")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._uniform: list[float] = []
        self._normal: list[float] = []
        self._student: list[float] = []
        self._iu = self._in = self._is = 0

    def uniform(self) -> float:
        """In [0, 1)."""
        i = self._iu
        if i == len(self._uniform):
            self._uniform = self._rng.random(_BUFFER).tolist()
            i = 0
        self._iu = i + 1
        return self._uniform[i]

    def normal(self) -> float:
        i = self._in
        if i == len(self._normal):
            self._normal = self._rng.standard_normal(_BUFFER).tolist()
            i = 0
        self._in = i + 1
        return self._normal[i]

    def abs_student(self) -> float:
        i = self._is
        if i == len(self._student):
            self._student = np.abs(self._rng.standard_t(_T_DOF, _BUFFER)).tolist()
            i = 0
        self._is = i + 1
        return self._student[i]

    def exponential(self) -> float:
        """Mean 1."""
        return -math.log(1.0 - self.uniform())

    def geometric(self, mean: float) -> int:
        """0, 1, 2, ... with the given mean."""
        return int(math.log(1.0 - self.uniform()) / math.log(mean / (1.0 + mean)))


class _Side:
    """One side of the book: qty by price and the sorted prices (ascending on both sides)."""

    __slots__ = ("is_bid", "px", "qty", "changed")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.px: list[int] = []
        self.qty: dict[int, int] = {}
        self.changed: set[int] = set()

    def best(self) -> int:
        return self.px[-1] if self.is_bid else self.px[0]


def _calibrate_move_scale(target_sq_ticks: float) -> float:
    """Scale c with mean(max(1, ceil(c*|t5|))^2) = target, on a fixed sample (seed-independent)."""
    sample = np.abs(np.random.Generator(np.random.PCG64(12345)).standard_t(_T_DOF, 8192))

    def mean_sq(c: float) -> float:
        return float(np.mean(np.maximum(1.0, np.ceil(c * sample)) ** 2))

    low, high = 1e-9, 1e9
    if mean_sq(low) >= target_sq_ticks:
        return low
    for _ in range(100):
        mid = math.sqrt(low * high)
        if mean_sq(mid) < target_sq_ticks:
            low = mid
        else:
            high = mid
    return low


class MarketSim:
    """Seeded, deterministic market generator; see the module docstring for the model."""

    def __init__(self, cfg: SimConfig, tick_size: float, lot_size: float, start_ns: int) -> None:
        self._cfg = cfg
        self._rng = np.random.Generator(np.random.PCG64(cfg.seed))
        self._draws = _Draws(self._rng)
        start_tick = max(2, round(cfg.start_px / tick_size))
        base_per_ref = _REF_PX / cfg.start_px / lot_size  # lots per reference BTC
        self._trade_mu = math.log(max(1.0, _TRADE_MEDIAN_BASE * base_per_ref))
        self._touch_target_lot = max(1.0, _TOUCH_TARGET_BASE * base_per_ref)
        self._deep_target_lot = max(1.0, _DEEP_TARGET_BASE * base_per_ref)
        self._levels = cfg.levels

        vol_tick = cfg.vol_bps_per_s * 1e-4 * cfg.start_px / tick_size  # calm 1 s std, ticks
        self._gap_mean_tick = max(1.0, vol_tick * _GAP_PER_VOL_TICK)
        cluster_per_s = _MOVE_CLUSTERS_PER_S
        target_sq = vol_tick**2 / (cluster_per_s * (1.0 + _MOVE_EXTRA_MEAN))
        if target_sq < 1.0:  # coarse tick: moves are one tick; fewer of them
            cluster_per_s = vol_tick**2 / (1.0 + _MOVE_EXTRA_MEAN)
        self._move_scale = _calibrate_move_scale(target_sq)
        self._cluster_mean_ns = 1e9 / cluster_per_s
        self._jump_tick = cfg.jump_bps * 1e-4 * cfg.start_px / tick_size
        self._high_mult = cfg.high_vol_multiplier
        self._high_size_mult = math.sqrt(cfg.high_vol_multiplier)
        orders_per_s = max(0.1, cfg.trades_per_s * (1.0 - _TRADE_SHARE_FROM_MOVES)) / (1.0 + _EXTRA_MAKERS_MEAN)
        self._order_mean_ns = 1e9 / orders_per_s
        self._batch_interval_ns = max(1, round(1e9 / cfg.depth_updates_per_s))
        self._noise_per_batch = _NOISE_OPS_PER_S / cfg.depth_updates_per_s

        self._bids = _Side(is_bid=True)
        self._asks = _Side(is_bid=False)
        self._update_id = _FIRST_UPDATE_ID
        self._trade_id = 0
        self._is_high = False
        self._cluster_left = 0
        self._pending: deque[SimEvent] = deque()
        self._build_initial_book(start_tick)
        self._bids.changed.clear()
        self._asks.changed.clear()
        self._emitted_id = self._update_id
        self._published_bids = dict(self._bids.qty)
        self._published_asks = dict(self._asks.qty)
        self._published_id = self._update_id

        self._batch_ns = start_ns + self._batch_interval_ns
        self._order_ns = start_ns + self._draw_interval_ns(self._order_mean_ns)
        self._move_ns = start_ns + self._draw_interval_ns(self._cluster_mean_ns)
        self._regime_ns = start_ns + self._draw_regime_interval_ns()
        self._jump_ns = start_ns + self._draw_jump_interval_ns()

    # ---- public ----------------------------------------------------------------------------

    def snapshot(self) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """The full book as the emitted events left it: (last_id, bids best-first, asks best-first)."""
        bids = sorted(self._published_bids.items(), reverse=True)
        asks = sorted(self._published_asks.items())
        return self._published_id, bids, asks

    def next_event_ns(self) -> int:
        while not self._pending:
            self._step()
        return self._pending[0].ts_ns

    def advance(self, now_ns: int) -> list[SimEvent]:
        """Every event with ts_ns <= now_ns not returned before, in time order."""
        while self._next_internal_ns() <= now_ns:
            self._step()
        out: list[SimEvent] = []
        pending = self._pending
        while pending and pending[0].ts_ns <= now_ns:
            event = pending.popleft()
            if type(event) is SimDepth:
                self._publish(event)
            out.append(event)
        return out

    # ---- scheduling ------------------------------------------------------------------------

    def _next_internal_ns(self) -> int:
        return min(self._regime_ns, self._jump_ns, self._move_ns, self._order_ns, self._batch_ns)

    def _step(self) -> None:
        t = self._next_internal_ns()
        if t == self._regime_ns:
            self._is_high = not self._is_high
            self._regime_ns = t + self._draw_regime_interval_ns()
            self._order_ns = t + self._draw_interval_ns(self._order_mean_ns / self._rate_mult(0.5))
            if self._cluster_left == 0:
                self._move_ns = t + self._draw_interval_ns(self._cluster_mean_ns / self._rate_mult(1.0))
        elif t == self._jump_ns:
            self._jump_ns = t + self._draw_jump_interval_ns()
            size = max(1, round((0.5 + self._draws.uniform()) * self._jump_tick))
            direction = 1 if self._draws.uniform() < 0.5 else -1
            self._apply_move(t, direction, size, _JUMP_SWEEP_CONTINUE_RATIO)
        elif t == self._move_ns:
            self._on_move(t)
        elif t == self._order_ns:
            self._order_ns = t + self._draw_interval_ns(self._order_mean_ns / self._rate_mult(0.5))
            self._apply_aggressive_order(t)
        else:
            self._batch_ns = t + self._batch_interval_ns
            self._apply_noise()
            self._emit_batch(t)

    def _rate_mult(self, power: float) -> float:
        return self._high_mult**power if self._is_high else 1.0

    def _draw_interval_ns(self, mean_ns: float) -> int:
        return 1 + int(self._draws.exponential() * mean_ns)

    def _draw_regime_interval_ns(self) -> int:
        per_min = self._cfg.regime_switch_per_min * (_HIGH_EXIT_FACTOR if self._is_high else 1.0)
        if per_min <= 0:
            return 2**62
        return self._draw_interval_ns(60e9 / per_min)

    def _draw_jump_interval_ns(self) -> int:
        if self._cfg.jump_per_min <= 0:
            return 2**62
        return self._draw_interval_ns(60e9 / self._cfg.jump_per_min)

    # ---- book primitives (every change takes one update id) --------------------------------

    def _set(self, side: _Side, px: int, qty: int) -> None:
        if px not in side.qty:
            bisect.insort(side.px, px)
        side.qty[px] = qty
        side.changed.add(px)
        self._update_id += 1

    def _remove_slice(self, side: _Side, start: int, stop: int) -> list[int]:
        """Remove side.px[start:stop]; return those prices."""
        removed = side.px[start:stop]
        del side.px[start:stop]
        for px in removed:
            del side.qty[px]
            side.changed.add(px)
        self._update_id += len(removed)
        return removed

    def _draw_gap(self) -> int:
        return 1 + int(self._draws.exponential() * (self._gap_mean_tick - 1.0))

    def _draw_level_qty(self, target_lot: float) -> int:
        return max(1, int(target_lot * math.exp(0.8 * self._draws.normal() - 0.32)))

    def _draw_trade_qty(self) -> int:
        return max(1, int(math.exp(self._trade_mu + _TRADE_SIGMA * self._draws.normal())))

    def _build_initial_book(self, start_tick: int) -> None:
        bid, ask = start_tick - 1, start_tick
        self._set(self._bids, bid, self._draw_level_qty(self._touch_target_lot))
        self._set(self._asks, ask, self._draw_level_qty(self._touch_target_lot))
        self._refill_far(self._bids)
        self._refill_far(self._asks)

    def _refill_far(self, side: _Side) -> None:
        """Add levels beyond the worst one until the side holds cfg.levels."""
        step = -1 if side.is_bid else 1
        while len(side.px) < self._levels:
            worst = side.px[0] if side.is_bid else side.px[-1]
            px = worst + step * self._draw_gap()
            if px <= 0:
                return
            self._set(side, px, self._draw_level_qty(self._deep_target_lot))

    def _trim_far(self, side: _Side) -> None:
        excess = len(side.px) - self._levels
        if excess > 0:
            if side.is_bid:
                self._remove_slice(side, 0, excess)
            else:
                self._remove_slice(side, len(side.px) - excess, len(side.px))

    # ---- order flow ------------------------------------------------------------------------

    def _emit_trades(self, t: int, px: int, makers: int, cap_lot: int, taker_side: int) -> int:
        """One aggressive order at `px`: one trade per maker, lognormal sizes, at most `cap_lot` in all."""
        total = 0
        for _ in range(makers):
            piece = min(self._draw_trade_qty(), cap_lot - total)
            if piece <= 0:
                break
            self._trade_id += 1
            self._pending.append(SimTrade(self._trade_id, px, piece, taker_side, t))
            total += piece
        return total

    def _apply_aggressive_order(self, t: int) -> None:
        """Market order at the touch: several makers, never the whole queue (that is a move)."""
        taker_side = 1 if self._draws.uniform() < 0.5 else -1
        side = self._asks if taker_side > 0 else self._bids
        px = side.best()
        queue = side.qty[px]
        total = self._emit_trades(t, px, 1 + self._draws.geometric(_EXTRA_MAKERS_MEAN), queue - 1, taker_side)
        if total:
            self._set(side, px, queue - total)

    def _on_move(self, t: int) -> None:
        if self._cluster_left > 0:
            self._cluster_left -= 1
        else:
            self._cluster_left = self._draws.geometric(_MOVE_EXTRA_MEAN)
        if self._cluster_left > 0:
            self._move_ns = t + self._draw_interval_ns(_MOVE_GAP_NS)
        else:
            self._move_ns = t + self._draw_interval_ns(self._cluster_mean_ns / self._rate_mult(1.0))
        bid_qty = self._bids.qty[self._bids.best()]
        ask_qty = self._asks.qty[self._asks.best()]
        up_ratio = 0.5 + _IMBALANCE_TILT * (bid_qty - ask_qty) / (bid_qty + ask_qty)
        direction = 1 if self._draws.uniform() < up_ratio else -1
        scale = self._move_scale * (self._high_size_mult if self._is_high else 1.0)
        size = max(1, math.ceil(scale * self._draws.abs_student()))
        self._apply_move(t, direction, size, _SWEEP_CONTINUE_RATIO)

    def _apply_move(self, t: int, direction: int, size_tick: int, continue_ratio: float) -> None:
        """Move the touch `size_tick` in `direction`: sweep, cancel the passed levels, re-quote."""
        if direction > 0:
            advancing, swept_side = self._bids, self._asks
        else:
            advancing, swept_side = self._asks, self._bids
        old_best = advancing.best()
        new_best = old_best + direction * size_tick
        if new_best <= 1:
            return
        spread = 2 if self._draws.uniform() < _SPREAD_OPEN_RATIO else 1
        new_opposite = new_best + direction * spread
        # the swept side's levels strictly better than new_opposite, best first
        if direction > 0:
            cut = bisect.bisect_left(swept_side.px, new_opposite)
            passed = swept_side.px[:cut]
        else:
            cut = bisect.bisect_right(swept_side.px, new_opposite)
            passed = swept_side.px[cut:][::-1]
        for index, px in enumerate(passed):
            if index and self._draws.uniform() >= continue_ratio:
                break
            makers = 1 + self._draws.geometric(_EXTRA_MAKERS_MEAN)
            self._emit_trades(t, px, makers, swept_side.qty[px], direction)
        if direction > 0:
            self._remove_slice(swept_side, 0, cut)
        else:
            self._remove_slice(swept_side, cut, len(swept_side.px))
        self._set(swept_side, new_opposite, swept_side.qty.get(new_opposite, 0) + self._draw_level_qty(self._touch_target_lot))
        self._refill_far(swept_side)
        self._set(advancing, new_best, self._draw_level_qty(self._touch_target_lot))
        px = new_best - direction * self._draw_gap()
        added = 0
        while direction * (px - old_best) > 0 and added < self._levels:
            self._set(advancing, px, self._draw_level_qty(self._deep_target_lot))
            px -= direction * self._draw_gap()
            added += 1
        self._trim_far(advancing)

    def _apply_noise(self) -> None:
        """Limit arrivals, cancels, level births and deaths since the last batch; close an open spread."""
        draws = self._draws
        bids, asks = self._bids, self._asks
        if asks.best() - bids.best() > 1 and draws.uniform() < _SPREAD_CLOSE_RATIO:
            side = bids if draws.uniform() < 0.5 else asks
            px = bids.best() + 1 if side is bids else asks.best() - 1
            self._set(side, px, self._draw_level_qty(self._touch_target_lot))
        ops = int(self._noise_per_batch * 2.0 * draws.uniform() + 0.5)  # uniform count, same mean
        touch_target, deep_target = self._touch_target_lot, self._deep_target_lot
        log = math.log
        for u_side, u_rank, u_kind, u_add, u_piece in self._rng.random((ops, 5)).tolist():
            side = bids if u_side < 0.5 else asks
            prices = side.px
            if u_rank < _TOUCH_OP_RATIO:
                rank = 0
            else:  # the uniform above the touch share, reused as an exponential rank draw
                rank = 1 + int(-log((1.0 - u_rank) / (1.0 - _TOUCH_OP_RATIO)) * _NOISE_RANK_MEAN)
                if rank >= len(prices):
                    rank = len(prices) - 1
            index = len(prices) - 1 - rank if side.is_bid else rank
            px = prices[index]
            qty = side.qty[px]
            if rank > 0 and u_kind < _LEVEL_BIRTH_RATIO:
                neighbour = index - 1 if side.is_bid else index + 1
                if 0 <= neighbour < len(prices):  # a new level strictly between this one and the next deeper
                    low, high = sorted((px, prices[neighbour]))
                    if high - low > 1:
                        self._set(side, low + 1 + int(u_add * (high - low - 1)), self._draw_level_qty(deep_target))
                continue
            if rank > 0 and u_kind < _LEVEL_BIRTH_RATIO + _LEVEL_DEATH_RATIO:
                self._remove_slice(side, index, index + 1)
                continue
            target = touch_target if rank == 0 else deep_target
            piece = 1 + int(-_PIECE_RATIO * target * log(1.0 - u_piece))
            if u_add * (target + qty) < target:  # arrivals win while the level is below its target
                self._set(side, px, qty + piece)
            elif rank == 0:
                self._set(side, px, max(qty - piece, (qty + 1) // 2))
            elif piece < qty:
                self._set(side, px, qty - piece)
            else:
                self._remove_slice(side, index, index + 1)
        self._refill_far(bids)
        self._refill_far(asks)
        self._trim_far(bids)
        self._trim_far(asks)

    def _emit_batch(self, t: int) -> None:
        if self._update_id == self._emitted_id:
            return
        bid_qty, ask_qty = self._bids.qty, self._asks.qty
        bids = [(px, bid_qty.get(px, 0)) for px in sorted(self._bids.changed, reverse=True)]
        asks = [(px, ask_qty.get(px, 0)) for px in sorted(self._asks.changed)]
        self._bids.changed.clear()
        self._asks.changed.clear()
        self._pending.append(SimDepth(self._emitted_id + 1, self._update_id, t, bids, asks))
        self._emitted_id = self._update_id

    def _publish(self, depth: SimDepth) -> None:
        for levels, book in ((depth.bids, self._published_bids), (depth.asks, self._published_asks)):
            for px, qty in levels:
                if qty:
                    book[px] = qty
                else:
                    book.pop(px, None)
        self._published_id = depth.final_id
