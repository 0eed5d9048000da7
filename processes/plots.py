"""PNG plots of one run: mid with our quotes and fills, inventory, cumulative PnL, tick-to-order latency.

Inputs are the run report (mm/report.py) and each stage's final stats. The time series come
from the stats, in this contract (every `ts_ns` is `time.time_ns()` of the recording process,
so series from different processes share one axis; rows are recorded on change and may be
decimated by the writer):

    report["instrument"]             {"tick_size": float, "lot_size": float}   prices / sizes
    stats["book"]["mid_log"]         [[ts_ns, bid_px_tick, ask_px_tick], ...]  top of book
    stats["gateway"]["quote_log"]    [[ts_ns, bid_px_tick|None, ask_px_tick|None], ...]
                                     our best working bid / ask at the venue (None: no order)
    stats["gateway"]["fill_log"]     [{"ts_ns", "side" (+1 buy / -1 sell), "px_tick", "qty_lot",
                                       "fee" (quote), "maker"}, ...]
    stats["gateway"]["tick_to_order_ns"]  [int, ...] raw samples (a list or a numpy array)
    stats["risk"]["position_log"]    optional [[ts_ns, position_lot], ...] (else from fill_log)
    stats["risk"]["pnl_log"]         optional [[ts_ns, realized, unrealized, fees], ...] in quote
                                     (else marked to the mid from fill_log and mid_log)

A panel whose series are absent is skipped and the reason returned (and logged); a partly
fed panel draws what it has. Uses matplotlib's object API with the Agg canvas: no pyplot,
no global backend, no display.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

PANELS = ("quotes", "inventory", "pnl", "latency")
FIGSIZE_IN = (10.0, 4.5)
DPI = 100


@dataclass
class PlotOutcome:
    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # panel or "panel.series" -> why


@dataclass(frozen=True)
class Units:
    tick_size: float
    lot_size: float
    is_known: bool  # False: the report has no instrument; prices in ticks, sizes in lots
    contract_size: float = 0.0  # > 0: an inverse contract (mm.position): sizes in contracts, PnL in the base coin

    @property
    def price_label(self) -> str:
        return "price" if self.is_known else "price (ticks)"

    @property
    def size_label(self) -> str:
        if not self.is_known:
            return "lots"
        return "contracts" if self.contract_size > 0 else "base units"

    @property
    def money_label(self) -> str:
        return "base coin" if self.contract_size > 0 else "quote"


def write_plots(report: dict[str, Any], stats: dict[str, dict[str, Any]], out_prefix: Path) -> list[Path]:
    """Write `<out_prefix>.<panel>.png` for each panel that has data; return the paths written."""
    outcome = render_plots(report, stats, out_prefix)
    for what, reason in outcome.skipped.items():
        log.warning("plots: %s skipped: %s", what, reason)
    return outcome.written


def render_plots(report: dict[str, Any], stats: dict[str, dict[str, Any]], out_prefix: Path) -> PlotOutcome:
    outcome = PlotOutcome()
    units = units_of(report)
    series = RunSeries.from_stats(stats)
    title = f"{report.get('pipeline', '?')} ({report.get('mode', '?')})"
    for panel, draw in (("quotes", _draw_quotes), ("inventory", _draw_inventory), ("pnl", _draw_pnl),
                        ("latency", _draw_latency)):
        figure = Figure(figsize=FIGSIZE_IN, dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        reason = draw(axes, series, units, outcome.skipped)
        if reason:
            outcome.skipped[panel] = reason
            continue
        axes.set_title(f"{title}: {panel}")
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        path = out_prefix.with_name(f"{out_prefix.name}.{panel}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
        outcome.written.append(path)
    return outcome


def units_of(report: dict[str, Any]) -> Units:
    instrument = report.get("instrument") or {}
    try:
        tick_size, lot_size = float(instrument["tick_size"]), float(instrument["lot_size"])
    except (KeyError, TypeError, ValueError):
        return Units(1.0, 1.0, is_known=False)
    return Units(tick_size, lot_size, is_known=True, contract_size=float(instrument.get("contract_size", 0.0)))


# ---- series: copied out of the stats into arrays, all on one time origin ------------------------


def _first_ts_ns(value: Any) -> int | None:
    try:
        return min(int(row[0]) for row in value)
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def _rows(value: Any, width: int, t0_ns: int) -> np.ndarray | None:
    """Rows as a float array, column 0 made relative to `t0_ns` (exact in float64 for ~100 days of
    nanoseconds, which absolute epoch nanoseconds are not); None cells -> NaN; None when absent or malformed."""
    if value is None:
        return None
    try:
        array = np.array([[int(row[0]) - t0_ns, *(np.nan if cell is None else cell for cell in row[1:])]
                          for row in value], dtype=float)
    except (TypeError, ValueError, IndexError):
        return None
    if array.size == 0:
        return np.empty((0, width))
    return array if array.ndim == 2 and array.shape[1] >= width else None


@dataclass
class RunSeries:
    """Every array's column 0 is ns since `t0_ns`, the earliest timestamp of any series."""

    mid: np.ndarray | None       # [ts_ns, bid_px_tick, ask_px_tick]
    quotes: np.ndarray | None    # [ts_ns, bid_px_tick, ask_px_tick] (NaN: no order)
    fills: np.ndarray | None     # [ts_ns, side, px_tick, qty_lot, fee]
    position: np.ndarray | None  # [ts_ns, position_lot]
    pnl: np.ndarray | None       # [ts_ns, realized, unrealized, fees]
    latency_ns: np.ndarray | None
    t0_ns: int = 0

    @classmethod
    def from_stats(cls, stats: dict[str, dict[str, Any]]) -> RunSeries:
        book, gateway, risk = stats.get("book", {}), stats.get("gateway", {}), stats.get("risk", {})
        fill_log = gateway.get("fill_log")
        fill_rows = None
        if isinstance(fill_log, list) and all(isinstance(f, dict) for f in fill_log):
            fill_rows = [[f.get("ts_ns"), f.get("side"), f.get("px_tick"), f.get("qty_lot"), f.get("fee", 0.0)]
                         for f in fill_log]
        raw = {"mid": book.get("mid_log"), "quotes": gateway.get("quote_log"), "fills": fill_rows,
               "position": risk.get("position_log"), "pnl": risk.get("pnl_log")}
        firsts = [ts for ts in (_first_ts_ns(rows) for rows in raw.values() if rows) if ts is not None]
        t0_ns = min(firsts) if firsts else 0
        latency = gateway.get("tick_to_order_ns")
        return cls(
            mid=_rows(raw["mid"], 3, t0_ns), quotes=_rows(raw["quotes"], 3, t0_ns), fills=_rows(fill_rows, 5, t0_ns),
            position=_rows(raw["position"], 2, t0_ns), pnl=_rows(raw["pnl"], 4, t0_ns),
            latency_ns=None if latency is None else np.asarray(latency, dtype=float).ravel(), t0_ns=t0_ns,
        )

    @staticmethod
    def seconds(array: np.ndarray) -> np.ndarray:
        return array[:, 0] / 1e9


def compute_inventory_lot(fills: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, position_lot after each fill), starting flat: the running sum of side * qty."""
    order = np.argsort(fills[:, 0], kind="stable")
    ordered = fills[order]
    return ordered[:, 0], np.cumsum(ordered[:, 1] * ordered[:, 3])


def compute_pnl_quote(fills: np.ndarray, mid: np.ndarray, units: Units) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, cash + position x mid - fees) at every fill and every mid change, in quote units
    (an inverse contract: in the base coin, cash + contracts x contract size / price for each fill,
    less the position's worth at the mid).

    Equals realized + unrealized - fees of mm/position.py; before the first mid it is NaN.
    """
    fills = fills[np.argsort(fills[:, 0], kind="stable")]
    mid = mid[np.argsort(mid[:, 0], kind="stable")]
    times = np.union1d(fills[:, 0], mid[:, 0])
    position_lot = np.concatenate(([0.0], np.cumsum(fills[:, 1] * fills[:, 3])))
    mid_tick = np.concatenate(([np.nan], (mid[:, 1] + mid[:, 2]) / 2))
    done = np.searchsorted(fills[:, 0], times, side="right")  # fills at or before each time
    seen = np.searchsorted(mid[:, 0], times, side="right")
    if units.contract_size > 0:
        coins = units.lot_size * units.contract_size / units.tick_size  # a lot at one tick, in coins
        cash = np.concatenate(([0.0], np.cumsum(fills[:, 1] * fills[:, 3] * coins / fills[:, 2] - fills[:, 4])))
        return times, cash[done] - position_lot[done] * coins / mid_tick[seen]
    notional = units.tick_size * units.lot_size
    # index 0 of each running total is the state before the first fill / mid
    cash = np.concatenate(([0.0], np.cumsum(-fills[:, 1] * fills[:, 2] * fills[:, 3] * notional - fills[:, 4])))
    return times, cash[done] + position_lot[done] * mid_tick[seen] * notional


# ---- panels: each returns None when drawn, else why it was skipped ------------------------------


def _draw_quotes(axes: Any, series: RunSeries, units: Units, skipped: dict[str, str]) -> str | None:
    drawn = False
    if series.mid is not None and len(series.mid):
        mid_px = (series.mid[:, 1] + series.mid[:, 2]) / 2 * units.tick_size
        axes.step(series.seconds(series.mid), mid_px, where="post", color="black", linewidth=1.0, label="mid")
        drawn = True
    else:
        skipped["quotes.mid"] = "no book.mid_log in the stats"
    if series.quotes is not None and len(series.quotes):
        t = series.seconds(series.quotes)
        axes.step(t, series.quotes[:, 1] * units.tick_size, where="post", color="tab:green", linewidth=0.8,
                  label="our bid")
        axes.step(t, series.quotes[:, 2] * units.tick_size, where="post", color="tab:red", linewidth=0.8,
                  label="our ask")
        drawn = True
    else:
        skipped["quotes.quotes"] = "no gateway.quote_log in the stats"
    if series.fills is not None and len(series.fills):
        for side, marker, color, name in ((1, "^", "tab:green", "we bought"), (-1, "v", "tab:red", "we sold")):
            mine = series.fills[series.fills[:, 1] == side]
            if len(mine):
                axes.scatter(series.seconds(mine), mine[:, 2] * units.tick_size, marker=marker, color=color, s=28,
                             zorder=3, label=name)
        drawn = True
    elif series.fills is None:
        skipped["quotes.fills"] = "no gateway.fill_log in the stats"
    if not drawn:
        return "none of book.mid_log, gateway.quote_log, gateway.fill_log"
    axes.set_xlabel("time (s)")
    axes.set_ylabel(units.price_label)
    axes.ticklabel_format(axis="y", useOffset=False, style="plain")  # prices as prices, not "+6e4"
    axes.legend(loc="best", fontsize="small")
    return None


def _draw_inventory(axes: Any, series: RunSeries, units: Units, skipped: dict[str, str]) -> str | None:
    if series.position is not None and len(series.position):
        t, position_lot = series.seconds(series.position), series.position[:, 1]
        source = "risk"
    elif series.fills is not None:
        ts_ns, position_lot = compute_inventory_lot(series.fills)
        t = np.concatenate(([0.0], ts_ns / 1e9))
        position_lot = np.concatenate(([0.0], position_lot))
        source = "fills"
    else:
        return "no risk.position_log and no gateway.fill_log"
    axes.step(t, position_lot * units.lot_size, where="post", color="tab:blue", label=f"position ({source})")
    axes.axhline(0.0, color="grey", linewidth=0.6)
    axes.set_xlabel("time (s)")
    axes.set_ylabel(f"position ({units.size_label})")
    axes.legend(loc="best", fontsize="small")
    return None


def _draw_pnl(axes: Any, series: RunSeries, units: Units, skipped: dict[str, str]) -> str | None:
    if series.pnl is not None and len(series.pnl):
        t = series.seconds(series.pnl)
        realized, unrealized, fees = series.pnl[:, 1], series.pnl[:, 2], series.pnl[:, 3]
        axes.plot(t, realized + unrealized - fees, color="tab:purple", label="total")
        axes.plot(t, realized, color="tab:olive", linewidth=0.8, label="realized")
        axes.plot(t, -fees, color="tab:grey", linewidth=0.8, label="fees")
        unit = units.money_label
    elif series.fills is not None and series.mid is not None and len(series.mid):
        if not units.is_known:
            return "no risk.pnl_log, and the report has no instrument.tick_size / lot_size to value fills"
        ts_ns, total = compute_pnl_quote(series.fills, series.mid, units)
        axes.plot(ts_ns / 1e9, total, color="tab:purple", label="total, marked to mid")
        unit = units.money_label
    else:
        return "no risk.pnl_log, and not both gateway.fill_log and book.mid_log"
    axes.axhline(0.0, color="grey", linewidth=0.6)
    axes.set_xlabel("time (s)")
    axes.set_ylabel(f"cumulative PnL ({unit})")
    axes.legend(loc="best", fontsize="small")
    return None


def _draw_latency(axes: Any, series: RunSeries, units: Units, skipped: dict[str, str]) -> str | None:
    samples = series.latency_ns
    if samples is None:
        return "no gateway.tick_to_order_ns samples (the report keeps percentiles only)"
    samples = samples[np.isfinite(samples) & (samples > 0)]
    if len(samples) == 0:
        return "gateway.tick_to_order_ns has no positive samples"
    micros = samples / 1e3
    low, high = micros.min(), micros.max()
    if high > 20 * low:  # wide range: log-spaced bins on a log axis
        bins = np.geomspace(low, high * 1.0001, 50)
        axes.set_xscale("log")
    else:
        bins = 50
    axes.hist(micros, bins=bins, color="tab:blue", alpha=0.8)
    for q, style in ((50, "-"), (99, "--")):
        value = float(np.percentile(micros, q))
        axes.axvline(value, color="black", linestyle=style, linewidth=0.9, label=f"p{q} {value:.0f} us")
    axes.set_xlabel(f"tick-to-order latency (us), n={len(micros)}")
    axes.set_ylabel("orders")
    axes.legend(loc="best", fontsize="small")
    return None
