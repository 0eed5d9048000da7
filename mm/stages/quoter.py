"""The quoter's step: on each book change, one quote decision over the newest book and prediction
and our own orders; order events and risk's status update what it knows.

Every choice of the quoter lives here: the volatility fallback while the signal is unhealthy,
one level or a ladder, the soft stop's shrink and widen, self-crossing deferral, the client ids,
which orders to forget on a reconcile. The process shell (processes/quoter.py) and the
in-process engine (mm/engine.py) only feed it and carry out its commands.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from mm.config import Config, QuoterConfig
from mm.fees import config_fees
from mm.markouts import Markouts
from mm.quoting import (
    CancelAction,
    Ladder,
    PlaceAction,
    Quote,
    WorkingOrder,
    compute_quote,
    compute_quotes,
    defer_self_crossing,
    plan_requote,
    plan_requote_levels,
)
from mm.stages.commands import Cancel, Place


class QuoterStep:
    """Our working orders as the quoter knows them, the position, risk's terms, and the counters."""

    def __init__(self, config: Config, id_prefix: str, *, risk_position_authoritative: bool) -> None:
        self.config = config
        cfg = self.config.quoter
        self.markouts = Markouts(estimate_horizon_ns=int(cfg.adverse_selection_horizon_s * 1e9),
                                 halflife_fills=cfg.adverse_selection_halflife_fills,
                                 prior_fills=cfg.adverse_selection_prior_fills)
        self.clock_ns = 0  # the newest book's time: our fills are stamped with it
        self.quoted_ns = [0, 0]  # time with a quote out, bid and ask (from one decision to the next)
        self.edge_stops = [0, 0]  # decisions that left a side out: its expected edge was negative
        self._quoting = (False, False)
        self.id_prefix = id_prefix
        # live: risk's position wins (a restarted quoter learns it so); lockstep replay: our own count
        self.risk_position_authoritative = risk_position_authoritative
        self._ids = itertools.count(1)
        self.working: dict[str, WorkingOrder] = {}  # acked or in flight, not cancel-pending
        self.cancel_pending: dict[str, WorkingOrder] = {}  # cancel sent, still at the venue until confirmed
        self.position_lot = 0
        self.paused = False
        self.trading = "active"
        self.size_ratio, self.widen_ticks = 1.0, 0.0  # the soft stop's shrink and widen, from risk
        self.quotes = self.places = self.cancels = self.fills = self.rejects = 0

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        """The config, with the maker fee it prices in resolved (unset: the venue's standard tier)."""
        fees = config_fees(config)
        if config.quoter.maker_fee_bps != fees.quoter_maker_bps:
            config = msgspec.structs.replace(
                config, quoter=msgspec.structs.replace(config.quoter, maker_fee_bps=fees.quoter_maker_bps))
        self._config = config
        self._max_order_age_ns = int(config.quoter.max_order_age_s * 1e9)

    # ---- events ---------------------------------------------------------------------------------

    def on_fill(self, client_id: str, side: int, qty_lot: int, leaves_lot: int) -> None:
        self.fills += 1
        self.position_lot += side * qty_lot
        order = self.working.get(client_id) or self.cancel_pending.get(client_id)
        if order is not None:
            self.markouts.on_fill(self.clock_ns, side, order.px_tick, qty_lot)
        if leaves_lot == 0:
            self._forget(client_id)
            return
        order = self.working.get(client_id)
        if order is not None:
            self.working[client_id] = WorkingOrder(order.client_id, order.side, order.px_tick, leaves_lot,
                                                   order.placed_ns)

    def on_done(self, client_id: str, *, rejected: bool) -> None:
        """Cancelled or rejected (by the venue or by risk): the order is gone."""
        if rejected:
            self.rejects += 1
        self._forget(client_id)

    def on_risk_status(self, *, paused: bool, trading: str, position_lot: int, size_ratio: float,
                       widen_ticks: float) -> None:
        self.paused, self.trading = paused, trading
        if self.risk_position_authoritative:
            self.position_lot = position_lot
        self.size_ratio, self.widen_ticks = size_ratio, widen_ticks

    def on_venue_orders(self, live_client_ids: set[str]) -> None:
        """The venue's open orders after a gateway restart: forget ours it no longer holds."""
        for client_id in [c for c in (*self.working, *self.cancel_pending) if c not in live_client_ids]:
            self._forget(client_id)

    def _forget(self, client_id: str) -> None:
        self.working.pop(client_id, None)
        self.cancel_pending.pop(client_id, None)

    # ---- decisions ------------------------------------------------------------------------------

    def may_quote(self) -> bool:
        return not self.paused and self.trading != "halted"

    def on_book(self, best_bid_tick: int, best_ask_tick: int, prediction: tuple[float, float] | None,
                now_ns: int) -> list[Place | Cancel]:
        """One quote decision. `prediction`: (predicted return, volatility bps/s) of a healthy
        signal, None when there is none or it is unhealthy (quote on the volatility prior, no drift)."""
        if now_ns > self.clock_ns:
            for j in (0, 1):
                if self._quoting[j] and self.clock_ns:
                    self.quoted_ns[j] += now_ns - self.clock_ns
            self.clock_ns = now_ns
        mid_tick = 0.5 * (best_bid_tick + best_ask_tick)
        if best_bid_tick > 0 and best_ask_tick > best_bid_tick:
            self.markouts.on_mid(now_ns, mid_tick)
        self._quoting = (False, False)
        if not self.may_quote():
            return []
        cfg = self.config.quoter
        fee_bps = cfg.maker_fee_bps or 0.0
        bid_cost_bps, ask_cost_bps = self.half_spread_costs_bps(fee_bps)
        predicted_return, volatility = prediction if prediction is not None else (
            0.0, self.config.signal.vol_prior_bps_per_s)
        alpha_enabled = self.trading == "active"
        working = self.working.values()
        if cfg.levels > 1:  # a ladder of N levels a side (the soft stop shrinks and widens it)
            bids = self._ladder(cfg, best_bid_tick, best_ask_tick, predicted_return, volatility, bid_cost_bps)
            asks = bids if ask_cost_bps == bid_cost_bps else self._ladder(  # each side's own costs
                cfg, best_bid_tick, best_ask_tick, predicted_return, volatility, ask_cost_bps)
            ladder = Ladder(bids.bids, asks.asks)
            bid_ok, ask_ok = self._edge_ok(ladder.bids[0][0] if ladder.bids else None,
                                           ladder.asks[0][0] if ladder.asks else None, mid_tick, predicted_return,
                                           alpha_enabled, fee_bps)
            ladder = Ladder(ladder.bids if bid_ok else (), ladder.asks if ask_ok else ())
            self._quoting = (bool(ladder.bids), bool(ladder.asks))
            actions = plan_requote_levels(ladder, working, tolerance_ticks=cfg.requote_tolerance_ticks,
                                          max_age_ns=self._max_order_age_ns, now_ns=now_ns)
        else:
            if self.size_ratio != 1.0 or self.widen_ticks:
                cfg = msgspec.structs.replace(cfg, size_lot=max(1, int(cfg.size_lot * self.size_ratio)),
                                              min_half_spread_ticks=cfg.min_half_spread_ticks + self.widen_ticks)
            bid_quote = self._level(cfg, best_bid_tick, best_ask_tick, predicted_return, volatility, bid_cost_bps)
            ask_quote = bid_quote if ask_cost_bps == bid_cost_bps else self._level(  # each side's own costs
                cfg, best_bid_tick, best_ask_tick, predicted_return, volatility, ask_cost_bps)
            quote = Quote(bid_quote.bid_px_tick, bid_quote.bid_qty_lot, ask_quote.ask_px_tick, ask_quote.ask_qty_lot)
            bid_ok, ask_ok = self._edge_ok(quote.bid_px_tick if quote.bid_qty_lot else None,
                                           quote.ask_px_tick if quote.ask_qty_lot else None, mid_tick,
                                           predicted_return, alpha_enabled, fee_bps)
            if not (bid_ok and ask_ok):
                quote = Quote(quote.bid_px_tick, quote.bid_qty_lot if bid_ok else 0, quote.ask_px_tick,
                              quote.ask_qty_lot if ask_ok else 0)
            self._quoting = (quote.bid_qty_lot > 0, quote.ask_qty_lot > 0)
            actions = plan_requote(quote, working, tolerance_ticks=cfg.requote_tolerance_ticks,
                                   max_age_ns=self._max_order_age_ns, now_ns=now_ns)
        actions = defer_self_crossing(actions, working, self.cancel_pending.values())
        if not actions:
            return []
        self.quotes += 1
        return [self._command(action, now_ns) for action in actions]

    def _level(self, cfg: QuoterConfig, best_bid_tick: int, best_ask_tick: int, predicted_return: float,
               volatility: float, cost_bps: float) -> Quote:
        """One level a side on our position and risk's terms, its half-spread covering `cost_bps`."""
        return compute_quote(cfg, best_bid_tick=best_bid_tick, best_ask_tick=best_ask_tick,
                             position_lot=self.position_lot, max_position_lot=self.config.risk.max_position_lot,
                             predicted_return=predicted_return, volatility_bps_per_s=volatility,
                             alpha_enabled=self.trading == "active", half_spread_cost_bps=cost_bps)

    def _ladder(self, cfg: QuoterConfig, best_bid_tick: int, best_ask_tick: int, predicted_return: float,
                volatility: float, cost_bps: float) -> Ladder:
        """`_level`'s ladder of `cfg.levels` levels a side, shrunk and widened by the soft stop."""
        return compute_quotes(cfg, best_bid_tick=best_bid_tick, best_ask_tick=best_ask_tick,
                              position_lot=self.position_lot, max_position_lot=self.config.risk.max_position_lot,
                              predicted_return=predicted_return, volatility_bps_per_s=volatility,
                              alpha_enabled=self.trading == "active", size_ratio=self.size_ratio,
                              extra_half_spread_ticks=self.widen_ticks, half_spread_cost_bps=cost_bps)

    def half_spread_costs_bps(self, fee_bps: float) -> tuple[float, float]:
        """What the bid's and the ask's half-spread must cover beyond the pricing model's own, in bp of
        the mid: the maker fee plus `adverse_selection_weight` x the expected adverse selection of a
        fill on that side (the online per-side estimate from our own fills' markouts, mm.markouts;
        a favourable one, < 0, does not narrow the quote)."""
        weight = self.config.quoter.adverse_selection_weight
        if weight == 0.0:  # the fee alone (the estimates are finite: 0 x them adds nothing)
            return fee_bps, fee_bps
        return (fee_bps + weight * max(0.0, self.markouts.expected_adverse_bps(1)),
                fee_bps + weight * max(0.0, self.markouts.expected_adverse_bps(-1)))

    def _edge_ok(self, bid_px: int | None, ask_px: int | None, mid_tick: float, predicted_return: float,
                 alpha_enabled: bool, fee_bps: float) -> tuple[bool, bool]:
        """Whether each side's quote has a non-negative expected edge (None: no quote there): what
        a fill on that side is expected to earn at the markout horizon, plus the signal's drift in
        its favour, less the maker fee, in bp of the mid. `edge_prior` says what a fill earns:

        - "zero_profit": our fills' own markouts (capture less adverse selection, mm.markouts),
          weighted with `adverse_selection_prior_fills` pseudo-fills that earn 0 bp at any price (in
          a competitive book every level breaks even before fees, Glosten 1994): the quote's distance
          does not count, a fill further out is assumed met by a larger move (a sweep through the
          touch), so widening alone never pays a fee.
        - "quote_distance": as "zero_profit", but the pseudo-fills earn the quote's distance.
        - "adverse_selection": the quote's own distance from the mid less the expected adverse
          selection of a fill on that side. The half-spread covers the fee and that estimate
          (`half_spread_costs_bps`) and the reservation price moves with the drift, so no side's
          edge is negative: each is quoted wider by its adverse selection instead of stopped.

        A side that reduces our inventory is kept (its cost is what the skew chose to pay to unload risk)."""
        cfg = self.config.quoter
        weight = cfg.adverse_selection_weight
        if weight <= 0.0 or cfg.edge_prior == "adverse_selection":
            return True, True
        drift_bps = cfg.alpha_weight * predicted_return * 1e4 if alpha_enabled else 0.0
        position = self.position_lot
        verdict = []
        for side, px in ((1, bid_px), (-1, ask_px)):
            if px is None:
                verdict.append(True)
                continue
            prior = side * (mid_tick - px) / mid_tick * 1e4 if cfg.edge_prior == "quote_distance" else 0.0
            edge = side * drift_bps + self.markouts.expected_markout_bps(side, weight, prior) - fee_bps
            ok = edge >= 0.0 or side * position < 0
            if not ok:
                self.edge_stops[0 if side > 0 else 1] += 1
            verdict.append(ok)
        return verdict[0], verdict[1]

    def cancel_working(self) -> list[Cancel]:
        """Cancel every working order (a dependency went silent, or we stop)."""
        return [self._command(CancelAction(cid), 0) for cid in list(self.working)]  # type: ignore[misc]

    def _command(self, action: CancelAction | PlaceAction, now_ns: int) -> Place | Cancel:
        if type(action) is CancelAction:
            cancelled = self.working.pop(action.client_id, None)
            if cancelled is not None:
                self.cancel_pending[action.client_id] = cancelled
            self.cancels += 1
            return Cancel(action.client_id)
        client_id = f"{self.id_prefix}{next(self._ids)}"
        self.working[client_id] = WorkingOrder(client_id, action.side, action.px_tick, action.qty_lot, now_ns)
        self.places += 1
        return Place(client_id, action.side, action.px_tick, action.qty_lot)

    def stats(self) -> dict[str, Any]:
        return {"quotes": self.quotes, "places": self.places, "cancels": self.cancels, "fills": self.fills,
                "rejects": self.rejects, "position_lot": self.position_lot,
                "quoted_s": {"bid": self.quoted_ns[0] / 1e9, "ask": self.quoted_ns[1] / 1e9},
                "edge_stops": {"bid": self.edge_stops[0], "ask": self.edge_stops[1]},
                "expected_adverse_bps": {"bid": round(self.markouts.expected_adverse_bps(1), 6),
                                         "ask": round(self.markouts.expected_adverse_bps(-1), 6)},
                "expected_markout_bps": {"bid": round(self.markouts.expected_markout_bps(1), 6),
                                         "ask": round(self.markouts.expected_markout_bps(-1), 6)},
                "markouts": self.markouts.summary()}


class FixedSpreadStep(QuoterStep):
    """The baseline strategy: mid +- `half_spread_ticks` (at least the touch), no skew, no signal,
    one level of the configured size; the same requote rules, risk limits and venue as the
    strategy, so a comparison compares strategies, not implementations."""

    def __init__(self, config: Config, id_prefix: str, *, half_spread_ticks: float = 1.0) -> None:
        baseline = msgspec.structs.replace(
            config.quoter, min_half_spread_ticks=half_spread_ticks, vol_spread_mult=0.0, skew_ticks_per_lot=0.0,
            alpha_weight=0.0, risk_aversion=0.0, maker_fee_bps=0.0, levels=1, adverse_selection_weight=0.0)
        super().__init__(msgspec.structs.replace(config, quoter=baseline), id_prefix,
                         risk_position_authoritative=False)
        self.half_spread_ticks = half_spread_ticks

    def on_book(self, best_bid_tick: int, best_ask_tick: int, prediction: tuple[float, float] | None,
                now_ns: int) -> list[Place | Cancel]:
        return super().on_book(best_bid_tick, best_ask_tick, None, now_ns)
