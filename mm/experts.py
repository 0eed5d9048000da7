"""Prequential aggregation of a few forecasters ("experts"): Vovk's Aggregating Algorithm for the
square loss with Herbster & Warmuth's fixed share, so the mixture cannot do much worse than the
best expert, or the best sequence of experts when the best one changes.

Setting. At step t each expert i predicts p_i in bps; the aggregate predicts p; then the outcome y
is revealed. Predictions and the outcome are clipped to [-B_t, B_t] (B_t = a few standard
deviations of the label, fixed when the predictions are made) and the loss is the normalised
square loss  l(p, y) = (y - p)^2 / (4 B_t^2), in [0, 1].

Algorithm (`FixedShare`), weights w over the N experts, w_1 = 1 / N:
- predict: u = g(-1) - g(+1), where g(v) = -(1/eta) ln sum_i w_i exp(-eta (v - u_i)^2 / 4) and
  u_i = p_i / B_t; p = B_t * clip(u, -1, 1) (Vovk's substitution function for the square loss,
  Vovk 2001, "Competitive on-line statistics", Int. Stat. Review 69, sec. 2.4);
- update: v_i = w_i exp(-eta l_i) / sum_j (...); w_i <- (1 - alpha) v_i + alpha / N (the fixed
  share, Herbster & Warmuth 1998, "Tracking the best expert", Machine Learning 32).

The learning rate is set by theory, not fitted: the normalised square loss on [-1, 1] is
eta-mixable for eta <= 2 (Vovk 2001; Cesa-Bianchi & Lugosi 2006, "Prediction, Learning, and
Games", sec. 3.6), so ETA = 2 and, for every step, l(p, y) <= -(1/eta) ln sum_i w_i exp(-eta l_i).
Summing that inequality over the steps (Cesa-Bianchi & Lugosi, thm. 3.2 and sec. 5.2) gives, for
every expert j and every sequence of experts with m switches, after T steps:

    L_aggregate - L_j          <= (ln N + (T - 1) ln(1 / (1 - alpha))) / eta
    L_aggregate - L_switching  <= (ln N + m ln(N / alpha) + (T - 1 - m) ln(1 / (1 - alpha))) / eta

(`regret_bound`), with losses in the normalised units above. alpha = 0 is the plain aggregating
algorithm: regret <= ln N / eta against the best expert, whatever T.

The bounds are for prompt feedback. The signal's labels arrive a horizon late (D samples pending);
the generic reduction (Weinberger & Ordentlich 2002; Joulani, Gyorgy & Szepesvari 2013) multiplies
a prompt bound by at most D + 1. The signal updates with each label as it matures, in time order.

All state is preallocated numpy; `predict` and `update` allocate nothing per call.
"""

from __future__ import annotations

import math

import numpy as np

ETA = 2.0  # the normalised square loss is eta-mixable for eta <= 2


def regret_bound(n_experts: int, steps: int, share: float, switches: int = 0) -> float:
    """The bound above on the aggregate's cumulative normalised loss minus a comparator's, where the
    comparator is one expert (switches = 0) or a sequence of experts with `switches` switches."""
    if switches and share <= 0.0:
        return math.inf
    bound = math.log(n_experts) + switches * (math.log(n_experts / share) if switches else 0.0)
    if share > 0.0:
        bound += max(steps - 1 - switches, 0) * -math.log1p(-share)
    return bound / ETA


class FixedShare:
    __slots__ = ("n", "share", "weights", "losses", "aggregate_loss", "steps", "_scaled", "_work")

    def __init__(self, n: int, share: float) -> None:
        if n < 1:
            raise ValueError(f"an aggregation needs at least one expert, had {n}")
        if not 0.0 <= share < 1.0:
            raise ValueError(f"'share' must be in [0, 1), was {share}")
        self.n = n
        self.share = share
        self.weights = np.full(n, 1.0 / n)
        self.losses = np.zeros(n)  # cumulative normalised loss of each expert
        self.aggregate_loss = 0.0  # ... and of the aggregate's predictions (as `update` was told them)
        self.steps = 0
        self._scaled = np.zeros(n)
        self._work = np.zeros(n)

    def _g_diff(self, u: np.ndarray) -> float:
        """g(-1) - g(+1) for scaled predictions u in [-1, 1]."""
        work = self._work
        weights = self.weights
        np.add(u, 1.0, out=work)  # (-1 - u)^2 = (1 + u)^2
        np.multiply(work, work, out=work)
        np.multiply(work, -ETA / 4.0, out=work)
        np.exp(work, out=work)
        at_minus = float(np.dot(weights, work))
        np.subtract(u, 1.0, out=work)
        np.multiply(work, work, out=work)
        np.multiply(work, -ETA / 4.0, out=work)
        np.exp(work, out=work)
        at_plus = float(np.dot(weights, work))
        return (math.log(at_plus) - math.log(at_minus)) / ETA

    def predict(self, predictions: np.ndarray, bound: float) -> float:
        """The aggregate of the experts' `predictions`, already clipped to [-bound, bound]."""
        if not bound > 0.0:
            return float(np.dot(self.weights, predictions))
        u = np.multiply(predictions, 1.0 / bound, out=self._scaled)
        value = self._g_diff(u)
        value = 1.0 if value > 1.0 else -1.0 if value < -1.0 else value
        return value * bound

    def update(self, predictions: np.ndarray, aggregate: float, outcome: float, bound: float) -> None:
        """Learn from one outcome: the experts' clipped `predictions` and the `aggregate` made with
        `bound` at prediction time; the outcome is clipped to the same bound."""
        if not bound > 0.0 or not math.isfinite(outcome):
            return
        y = min(max(outcome, -bound), bound)
        scale = 1.0 / (4.0 * bound * bound)
        work = self._work
        np.subtract(predictions, y, out=work)
        np.multiply(work, work, out=work)
        np.multiply(work, scale, out=work)  # each expert's normalised loss
        self.losses += work
        error = y - aggregate
        self.aggregate_loss += error * error * scale
        self.steps += 1
        weights = self.weights
        np.multiply(work, -ETA, out=work)
        np.exp(work, out=work)
        np.multiply(weights, work, out=weights)
        total = float(weights.sum())
        if not (total > 0.0 and math.isfinite(total)):  # cannot underflow with losses <= 1, but be safe
            weights.fill(1.0 / self.n)
            return
        np.multiply(weights, (1.0 - self.share) / total, out=weights)
        weights += self.share / self.n
