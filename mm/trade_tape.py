"""The local venue's public trade tape: every market print it produced for one symbol, and what
Binance derives from it (24 h ticker statistics, klines, aggregate trades), in ticks, lots and ms;
and klines of a sampled price (`sample_klines`: USD-M's mark, which is no trade).

Pure: the venue shell appends prints (`TradeTape.append`) and asks for views on `now_ms`. A print is
one trade (from `@trade`: agg_id = first_id = last_id = its trade id) or, on a tape built from
`@aggTrade` frames (`is_aggregated`), one aggregate (its `a`, `f`, `l`). The tape keeps at most
`max_prints` (oldest dropped first).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice
from typing import NamedTuple

DAY_MS = 24 * 3600 * 1000
DEFAULT_MAX_PRINTS = 200_000

# Binance kline intervals (spot and USD-M) -> ms; 1M is left out (calendar months)
INTERVAL_MS = {
    "1s": 1000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}


class Print(NamedTuple):
    """Trades of one taker at one price in one ms, trade ids first_id..last_id (one trade: all equal)."""

    agg_id: int
    px_tick: int
    qty_lot: int
    first_id: int
    last_id: int
    time_ms: int
    is_buyer_maker: bool

    @property
    def trades(self) -> int:
        return self.last_id - self.first_id + 1


class Stats(NamedTuple):
    """Statistics over the prints in [open_ms, close_ms]; notional_tick_lot = sum(px_tick * qty_lot)."""

    open_px_tick: int
    high_px_tick: int
    low_px_tick: int
    last_px_tick: int
    last_qty_lot: int
    volume_lot: int
    notional_tick_lot: int
    count: int  # trades, not prints
    first_id: int
    last_id: int
    open_ms: int
    close_ms: int


class Kline(NamedTuple):
    open_ms: int
    close_ms: int  # open_ms + interval - 1
    open_px_tick: int
    high_px_tick: int
    low_px_tick: int
    close_px_tick: int
    volume_lot: int
    notional_tick_lot: int
    count: int
    taker_buy_lot: int
    taker_buy_notional_tick_lot: int
    first_id: int  # -1 for an interval without trades
    last_id: int


class TradeTape:
    def __init__(self, *, is_aggregated: bool = False, max_prints: int = DEFAULT_MAX_PRINTS) -> None:
        if max_prints <= 0:
            raise ValueError(f"'max_prints' must be > 0, was {max_prints}")
        self.is_aggregated = is_aggregated
        self.prints: deque[Print] = deque(maxlen=max_prints)

    def append(self, item: Print) -> None:
        self.prints.append(item)

    def since(self, start_ms: int) -> list[Print]:
        """Prints at or after `start_ms`, oldest first (scans from the newest end)."""
        out: list[Print] = []
        for item in reversed(self.prints):
            if item.time_ms < start_ms:
                break
            out.append(item)
        out.reverse()
        return out

    def px_before(self, ms: int) -> int | None:
        """The price of the last print before `ms`, or None."""
        for item in reversed(self.prints):
            if item.time_ms < ms:
                return item.px_tick
        return None

    def stats(self, now_ms: int, window_ms: int = DAY_MS) -> Stats | None:
        """The window (now_ms - window_ms, now_ms]'s statistics, or None when nothing traded in it."""
        window = self.since(now_ms - window_ms)
        if not window:
            return None
        pxs = [p.px_tick for p in window]
        return Stats(open_px_tick=window[0].px_tick, high_px_tick=max(pxs), low_px_tick=min(pxs),
                     last_px_tick=window[-1].px_tick, last_qty_lot=window[-1].qty_lot,
                     volume_lot=sum(p.qty_lot for p in window),
                     notional_tick_lot=sum(p.px_tick * p.qty_lot for p in window),
                     count=sum(p.trades for p in window), first_id=window[0].first_id,
                     last_id=window[-1].last_id, open_ms=now_ms - window_ms, close_ms=now_ms)

    def recent(self, limit: int) -> list[Print]:
        """The last `limit` prints, oldest first."""
        out = list(islice(reversed(self.prints), max(limit, 0)))
        out.reverse()
        return out

    def from_id(self, first_id: int, limit: int) -> list[Print]:
        """The first `limit` prints whose (first) trade id is at least `first_id`, oldest first."""
        return list(islice((p for p in self.prints if p.first_id >= first_id), max(limit, 0)))

    def agg_trades(self) -> list[Print]:
        """The tape as aggregate trades: consecutive trades of the same price, taker side and ms are one,
        named by its first trade's id (so an aggregate's id never changes as the tape grows). A tape of
        aggregates is that already."""
        if self.is_aggregated:
            return list(self.prints)
        out: list[Print] = []
        for item in self.prints:
            if out:
                last = out[-1]
                if (last.px_tick == item.px_tick and last.time_ms == item.time_ms
                        and last.is_buyer_maker == item.is_buyer_maker):
                    out[-1] = last._replace(qty_lot=last.qty_lot + item.qty_lot, last_id=item.last_id)
                    continue
            out.append(item)
        return out

    def klines(self, interval_ms: int, start_ms: int | None, end_ms: int | None, limit: int) -> list[Kline]:
        """Klines of `interval_ms` opening within [start_ms, end_ms], from the first with a trade to the
        last; an interval without trades is flat at the previous close with volume 0 (as Binance writes
        it). The first `limit` from start_ms when it is given, else the last `limit`; ascending."""
        by_open: dict[int, list[Print]] = {}
        for item in self.prints:
            open_ms = item.time_ms - item.time_ms % interval_ms
            if (start_ms is None or open_ms >= start_ms) and (end_ms is None or open_ms <= end_ms):
                by_open.setdefault(open_ms, []).append(item)
        if not by_open or limit <= 0:
            return []
        opens = range(min(by_open), max(by_open) + 1, interval_ms)
        opens = opens[:limit] if start_ms is not None else opens[-limit:]
        close = self.px_before(opens[0])
        out: list[Kline] = []
        for open_ms in opens:
            items = by_open.get(open_ms)
            if items:
                out.append(kline_of(open_ms, interval_ms, items))
            else:
                assert close is not None  # the first interval listed always has a print or one before it
                out.append(Kline(open_ms, open_ms + interval_ms - 1, close, close, close, close, 0, 0, 0, 0, 0,
                                 -1, -1))
            close = out[-1].close_px_tick
        return out


def kline_of(open_ms: int, interval_ms: int, items: list[Print]) -> Kline:
    pxs = [p.px_tick for p in items]
    buys = [p for p in items if not p.is_buyer_maker]  # the taker bought
    return Kline(open_ms=open_ms, close_ms=open_ms + interval_ms - 1, open_px_tick=items[0].px_tick,
                 high_px_tick=max(pxs), low_px_tick=min(pxs), close_px_tick=items[-1].px_tick,
                 volume_lot=sum(p.qty_lot for p in items),
                 notional_tick_lot=sum(p.px_tick * p.qty_lot for p in items), count=sum(p.trades for p in items),
                 taker_buy_lot=sum(p.qty_lot for p in buys),
                 taker_buy_notional_tick_lot=sum(p.px_tick * p.qty_lot for p in buys),
                 first_id=items[0].first_id, last_id=items[-1].last_id)


class SampleKline(NamedTuple):
    """One interval of a sampled price (USD-M's mark): its first, highest, lowest and last sample."""

    open_ms: int
    open_px: float
    high_px: float
    low_px: float
    close_px: float
    count: int


def sample_klines(samples: Iterable[tuple[int, float]], interval_ms: int, start_ms: int | None,
                  end_ms: int | None, limit: int) -> list[SampleKline]:
    """Klines of (time_ms, price) samples, oldest first, opening within [start_ms, end_ms]; an interval
    without a sample is left out. The first `limit` from start_ms when it is given, else the last `limit`."""
    by_open: dict[int, list[float]] = {}
    for time_ms, px in samples:
        open_ms = time_ms - time_ms % interval_ms
        if (start_ms is None or open_ms >= start_ms) and (end_ms is None or open_ms <= end_ms):
            by_open.setdefault(open_ms, []).append(px)
    out = [SampleKline(o, pxs[0], max(pxs), min(pxs), pxs[-1], len(pxs)) for o, pxs in sorted(by_open.items())]
    if limit <= 0:
        return []
    return out[:limit] if start_ms is not None else out[-limit:]


class NewTrades:
    """Which prints a matching engine has not seen yet, per symbol, by trade id: a venue that serves
    a trade on both `@trade` and `@aggTrade` (USD-M) must fill resting orders against it once.
    Trade ids rise per symbol; a print whose first id is not above the last one taken was taken
    already (alone, or inside an aggregate)."""

    def __init__(self) -> None:
        self._last_id: dict[str, int] = {}

    def take(self, symbol: str, first_id: int, last_id: int) -> bool:
        """True (and remembered) for a print not seen yet; False for one seen on the other stream."""
        if first_id <= self._last_id.get(symbol, -1):
            return False
        self._last_id[symbol] = last_id
        return True
