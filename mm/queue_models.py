"""Where a cancel at our price came from: the queue-position models of the fill model (mm.fill_model).

We see a price level only as its total quantity (L2). When it shrinks by more than the trades at
that price explain, someone cancelled, and the model has to guess how much of it was ahead of us.
Each model here answers with `share_ahead(front, back)`: the share of that unexplained shrink taken
from the `front` lots ahead of us (the market's, not our own orders), given the `back` lots behind us
before the update. The fill model takes what the share says from ahead, the rest from behind, and
from ahead again once nothing is left behind (so the queue ahead never exceeds the level).

The models are hftbacktest's (ProbQueueModel and RiskAdverseQueueModel, whose probability `p` is
the chance a cancel was BEHIND us, so share_ahead = 1 - p), after Rigtorp's estimator:
- `ratio`: a constant share (`[gateway] queue_cancel_ahead_ratio`; the fill model's original rule).
- `risk_averse`: cancels never advance us (share 0); only trades, and a level shrinking below the
  queue ahead, do.
- `power_prob` (n): p = f(back) / (f(back) + f(front)), f(x) = x**n: a cancel is likelier from the
  longer side of us; n = 1 is proportional, larger n leans harder on the longer side.
- `power_prob2` (n): p = f(back) / f(back + front).
- `power_prob3` (n): p = 1 - f(front / (front + back)).
- `log_prob`: p = f(back) / (f(back) + f(front)), f(x) = log(1 + x).
- `log_prob2`: p = f(back) / f(back + front), f(x) = log(1 + x).
With nothing on either side (0/0) the share is 0: there is nothing ahead to take from.
"""

from __future__ import annotations

import math
from collections.abc import Callable

QUEUE_MODELS = ("ratio", "risk_averse", "power_prob", "power_prob2", "power_prob3", "log_prob", "log_prob2")


class QueueModel:
    """share_ahead(front, back) in [0, 1]; `name` says which model and its parameter."""

    __slots__ = ("name", "_share")

    def __init__(self, name: str, share: Callable[[float, float], float]) -> None:
        self.name = name
        self._share = share

    def share_ahead(self, front: int, back: int) -> float:
        share = self._share(float(max(front, 0)), float(max(back, 0)))
        if math.isnan(share):  # 0/0: nothing on either side
            return 0.0
        return min(1.0, max(0.0, share))

    def __repr__(self) -> str:
        return f"QueueModel({self.name})"


def _behind_share(f: Callable[[float], float]) -> Callable[[float, float], float]:
    """1 - f(back) / (f(back) + f(front))."""
    def share(front: float, back: float) -> float:
        fb, ff = f(back), f(front)
        total = fb + ff
        return ff / total if total > 0 else math.nan
    return share


def _behind_share2(f: Callable[[float], float]) -> Callable[[float, float], float]:
    """1 - f(back) / f(back + front)."""
    def share(front: float, back: float) -> float:
        whole = f(back + front)
        return 1.0 - f(back) / whole if whole > 0 else math.nan
    return share


def queue_model(name: str, *, power: float = 2.0, ratio: float = 0.5) -> QueueModel:
    """The model `name` (one of QUEUE_MODELS); `power` is n of the power models, `ratio` the
    constant share of `ratio`. A bad name or parameter raises ValueError naming it."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"queue model 'ratio': the share must be in [0, 1], was {ratio}")
    if name.startswith("power_prob") and not (power > 0 and math.isfinite(power)):
        raise ValueError(f"queue model {name!r}: power n must be > 0, was {power}")

    def pw(x: float) -> float:
        return x ** power

    def log1(x: float) -> float:
        return math.log1p(x)

    match name:
        case "ratio":
            return QueueModel(f"ratio({ratio:g})", lambda front, back: ratio)
        case "risk_averse":
            return QueueModel("risk_averse", lambda front, back: 0.0)
        case "power_prob":
            return QueueModel(f"power_prob({power:g})", _behind_share(pw))
        case "power_prob2":
            return QueueModel(f"power_prob2({power:g})", _behind_share2(pw))
        case "power_prob3":
            def share3(front: float, back: float) -> float:
                total = front + back
                return (front / total) ** power if total > 0 else math.nan
            return QueueModel(f"power_prob3({power:g})", share3)
        case "log_prob":
            return QueueModel("log_prob", _behind_share(log1))
        case "log_prob2":
            return QueueModel("log_prob2", _behind_share2(log1))
    raise ValueError(f"unknown queue model {name!r}: one of {', '.join(QUEUE_MODELS)}")
