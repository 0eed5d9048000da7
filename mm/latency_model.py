"""Order-entry and cancel latency: measured from our own journal, drawn by the fill model in replay.

Measuring (`latency_samples`): a live run's gateway journal (a venue or `mm venue`) holds, per client id, when
each request left (`OrderSent`, `CancelRequested`) and when the venue's answer came back
(`VenueUpdate`, `CancelRejected`), both on the venue's clock. The entry round trip is an order's
last `OrderSent` before its first answer (any status: NEW, FILLED, REJECTED...) to that answer;
a request that timed out (`RequestTimedOut`) has no round trip. The cancel round trip is a
`CancelRequested` to the first CANCELED / EXPIRED update or cancel reject after it.

Fitting (`fit_latency`): the empirical quantiles (0, 5, ..., 100 %) and, to describe the shape, a
lognormal by its log-moments with the Kolmogorov-Smirnov distance between it and the sample.

Using (`EmpiricalLatency`): the fill model's request reaches the venue a ONE-WAY delay after it
left, and the venue's answer is stamped then (mm.fill_model). We see only round trips, so the
one-way delay is half of one (a symmetric path; `[fill] entry_latency_ms` / `cancel_latency_ms` hold
the halved quantiles that `mm report latency` prints). A draw is the quantile table's inverse CDF,
linear between points, at a uniform from a seeded generator: the same seed and the same requests
give the same delays, so replays stay deterministic. `ConstantLatency` is the fixed delay.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

import msgspec
from msgspec import Struct

from mm.orders import CancelRejected, CancelRequested, OrderSent, RequestTimedOut, VenueStatus, VenueUpdate

QUANTILE_POINTS = 21  # 0, 5, ..., 100 %
_CANCEL_ANSWERS = (VenueStatus.CANCELED, VenueStatus.EXPIRED)


class LatencySamples(Struct, frozen=True):
    entry_rtt_ns: list[int]
    cancel_rtt_ns: list[int]
    unanswered_entries: int   # sent, never answered in the journal (timed out or the run ended)
    unanswered_cancels: int


def latency_samples(records: Iterable[object]) -> LatencySamples:
    """Round trips of new orders and cancels from journal records in journal order."""
    sent: dict[str, int] = {}          # client id -> last OrderSent not answered yet
    cancels: dict[str, int] = {}       # client id -> CancelRequested not answered yet
    entry: list[int] = []
    cancel: list[int] = []
    timed_out = 0
    for record in records:
        match record:
            case OrderSent(client_id=cid, ts_ns=ts):
                sent[cid] = ts
            case RequestTimedOut(client_id=cid):
                if sent.pop(cid, None) is not None:
                    timed_out += 1
            case CancelRequested(client_id=cid, ts_ns=ts):
                cancels[cid] = ts
            case VenueUpdate(client_id=cid, status=status, ts_ns=ts):
                left = sent.pop(cid, None)
                if left is not None and ts >= left:
                    entry.append(ts - left)
                if status in _CANCEL_ANSWERS:
                    asked = cancels.pop(cid, None)
                    if asked is not None and ts >= asked:
                        cancel.append(ts - asked)
            case CancelRejected(client_id=cid, ts_ns=ts):
                asked = cancels.pop(cid, None)
                if asked is not None and ts >= asked:
                    cancel.append(ts - asked)
    return LatencySamples(entry, cancel, len(sent) + timed_out, len(cancels))


class LatencyFit(Struct, frozen=True):
    """One kind of round trip: n samples, quantiles (ms, QUANTILE_POINTS evenly spaced from 0 to
    100 %), mean, and a lognormal by log-moments with its KS distance to the sample."""

    n: int
    quantiles_ms: list[float]
    mean_ms: float
    lognormal_mu: float      # of ln(ms)
    lognormal_sigma: float
    lognormal_ks: float


def fit_latency(samples_ns: Sequence[int]) -> LatencyFit:
    if not samples_ns:
        raise ValueError("no latency samples to fit: the journal has no answered request")
    ms = sorted(s / 1e6 for s in samples_ns)
    n = len(ms)
    quantiles = [_quantile(ms, i / (QUANTILE_POINTS - 1)) for i in range(QUANTILE_POINTS)]
    logs = [math.log(max(x, 1e-6)) for x in ms]
    mu = sum(logs) / n
    sigma = math.sqrt(sum((x - mu) ** 2 for x in logs) / n)
    ks = 0.0
    for i, x in enumerate(ms):
        cdf = _lognormal_cdf(x, mu, sigma)
        ks = max(ks, abs(cdf - i / n), abs((i + 1) / n - cdf))
    return LatencyFit(n, [round(q, 6) for q in quantiles], round(sum(ms) / n, 6), round(mu, 6), round(sigma, 6),
                      round(ks, 6))


def _halved(quantiles_ms: list[float]) -> list[float]:
    """Round-trip quantiles halved: the one-way delay `[fill] entry_latency_ms` / `cancel_latency_ms` take."""
    return [round(q / 2, 6) for q in quantiles_ms]


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _lognormal_cdf(x: float, mu: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    if sigma == 0:
        return 1.0 if math.log(x) >= mu else 0.0
    return 0.5 * (1 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2))))


# ---- the delays the fill model draws ----------------------------------------------------------------


class ConstantLatency:
    __slots__ = ("latency_ns",)

    def __init__(self, latency_ns: int) -> None:
        if latency_ns < 0:
            raise ValueError(f"'latency_ns' must be >= 0, was {latency_ns}")
        self.latency_ns = latency_ns

    def entry_ns(self) -> int:
        return self.latency_ns

    def cancel_ns(self) -> int:
        return self.latency_ns

    @property
    def max_ns(self) -> int:
        return self.latency_ns


class EmpiricalLatency:
    """One-way delays drawn from quantile tables (ms, evenly spaced from 0 to 100 %)."""

    __slots__ = ("_entry", "_cancel", "_rng", "max_ns")

    def __init__(self, entry_ms: Sequence[float], cancel_ms: Sequence[float], seed: int) -> None:
        for name, table in (("entry_latency_ms", entry_ms), ("cancel_latency_ms", cancel_ms)):
            if len(table) < 2:
                raise ValueError(f"'{name}' needs at least 2 quantiles (0 % and 100 %), has {len(table)}")
            if any(not math.isfinite(x) or x < 0 for x in table):
                raise ValueError(f"'{name}' must hold finite values >= 0, has {list(table)}")
            if any(b < a for a, b in zip(table, table[1:])):
                raise ValueError(f"'{name}' must be non-decreasing (quantiles from 0 % to 100 %), is {list(table)}")
        self._entry = [x * 1e6 for x in entry_ms]
        self._cancel = [x * 1e6 for x in cancel_ms]
        self._rng = random.Random(seed)
        self.max_ns = math.ceil(max(self._entry[-1], self._cancel[-1]))

    def entry_ns(self) -> int:
        return self._draw(self._entry)

    def cancel_ns(self) -> int:
        return self._draw(self._cancel)

    def _draw(self, table: list[float]) -> int:
        pos = self._rng.random() * (len(table) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(table) - 1)
        return round(table[lo] + (table[hi] - table[lo]) * (pos - lo))


OrderLatency = ConstantLatency | EmpiricalLatency


# ---- what `mm report latency` prints ---------------------------------------------------------------


def latency_report(samples: LatencySamples) -> dict:
    """The fit of each kind with samples, the counts without an answer, and the `[fill]` keys."""
    report: dict = {"unanswered_entries": samples.unanswered_entries,
                    "unanswered_cancels": samples.unanswered_cancels}
    for kind, values in (("entry", samples.entry_rtt_ns), ("cancel", samples.cancel_rtt_ns)):
        report[kind] = msgspec.to_builtins(fit_latency(values)) if values else None
    if report["entry"] is not None:
        entry = report["entry"]["quantiles_ms"]
        cancel = report["cancel"]["quantiles_ms"] if report["cancel"] is not None else entry
        report["fill"] = {"latency_model": "empirical", "entry_latency_ms": _halved(entry),
                          "cancel_latency_ms": _halved(cancel)}
    return report


def format_latency_report(report: dict) -> str:
    lines = [f"{'round trip':<10} {'n':>6} {'p5':>8} {'p50':>8} {'p90':>8} {'max':>8} {'mean':>8}"
             f" {'ln mu':>7} {'ln sig':>7} {'KS':>6}   (ms)"]
    for kind in ("entry", "cancel"):
        fit = report[kind]
        if fit is None:
            lines.append(f"{kind:<10} {0:>6}   no answered {kind} in the journal")
            continue
        q = fit["quantiles_ms"]
        lines.append(f"{kind:<10} {fit['n']:>6} {q[1]:>8.3f} {q[10]:>8.3f} {q[18]:>8.3f} {q[20]:>8.3f}"
                     f" {fit['mean_ms']:>8.3f} {fit['lognormal_mu']:>7.3f} {fit['lognormal_sigma']:>7.3f}"
                     f" {fit['lognormal_ks']:>6.3f}")
    lines.append(f"unanswered: {report['unanswered_entries']} new order(s), {report['unanswered_cancels']} cancel(s)")
    fill = report.get("fill")
    if fill is not None:
        lines.append("")
        lines.append("# one-way delays (half the round trips) for the replay's fill model:")
        lines.append("[fill]")
        lines.append(f'latency_model = "{fill["latency_model"]}"')
        for key in ("entry_latency_ms", "cancel_latency_ms"):
            lines.append(f"{key} = [{', '.join(f'{x:g}' for x in fill[key])}]")
    return "\n".join(lines)
