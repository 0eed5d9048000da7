"""Online linear regression: recursive least squares with forgetting and ridge, online scaling.

`RLS` minimises, at every step t,

    sum_i lambda^(t-i) (y_i - w.x_i)^2  +  ridge * |w - w_prior|^2

approximately: the rank-one RLS recursion with forgetting factor lambda, plus one ridge
pseudo-observation every `REGULARISE_EVERY` updates on one coordinate in turn (x = e_j,
y = w_prior_j, weight ridge * n * REGULARISE_EVERY * (1 - lambda)). Forgetting alone lets the penalty decay to nothing, so a direction the
data stops exciting would wind its covariance up without bound (the classic RLS "blow-up"); the
rotating pseudo-observations keep the penalty near `ridge` in steady state, so the covariance of
each coordinate stays below about 1 / ridge.

Health guards: an update whose x or y is not finite is skipped and counted (`skipped`); a
covariance whose trace exceeds `max_trace` or goes non-finite or non-positive is reset to the
prior (w = w_prior, P = I / ridge) and counted (`resets`).

`Standardizer` keeps exponentially weighted means and variances of the features (half-life in
samples, bias-corrected so the first samples are usable) and maps x to clipped z-scores. A feature
that is not centred (a signed one whose zero is meaningful, e.g. a balanced book) keeps mean 0 and
is scaled by its root mean square: the model has no intercept, so its prediction is 0 at that
zero, not at the feature's recent average.
"""

from __future__ import annotations

import math

import numpy as np

REGULARISE_EVERY = 4  # updates per ridge pseudo-observation (it costs as much as an update)


def _centred_scaled(value: float, mean: float, inverse_std: float) -> float:
    return (value - mean) * inverse_std


class RLS:
    __slots__ = (
        "n",
        "forgetting",
        "ridge",
        "max_trace",
        "prior",
        "weights",
        "covariance",
        "_pseudo_weight",
        "_next_coordinate",
        "_px",
        "_gain",
        "_step",
        "_outer",
        "_inverse_forgetting",
        "updates",
        "skipped",
        "resets",
    )

    def __init__(
        self,
        n: int,
        *,
        forgetting: float,
        ridge: float,
        prior: np.ndarray | list[float] | None = None,
        max_trace: float | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"RLS needs n >= 1 features, was {n}")
        if not 0.0 < forgetting <= 1.0:
            raise ValueError(f"'forgetting' must be in (0, 1], was {forgetting}")
        if not ridge > 0.0:
            raise ValueError(f"'ridge' must be > 0, was {ridge}")
        self.n = n
        self.forgetting = forgetting
        self.ridge = ridge
        self.max_trace = max_trace if max_trace is not None else 1e3 * n / ridge
        self.prior = np.zeros(n) if prior is None else np.array(prior, dtype=float)
        if self.prior.shape != (n,):
            raise ValueError(f"RLS prior must have {n} coefficients, had {self.prior.shape}")
        self._pseudo_weight = ridge * n * REGULARISE_EVERY * (1.0 - forgetting)
        self._inverse_forgetting = 1.0 / forgetting
        self._outer = np.zeros((n, n))
        self._next_coordinate = 0
        self._px = np.zeros(n)
        self._gain = np.zeros(n)
        self._step = np.zeros(n)
        self.weights = self.prior.copy()
        self.covariance = np.eye(n) / ridge
        self.updates = 0
        self.skipped = 0
        self.resets = 0

    def reset(self) -> None:
        self.weights[:] = self.prior
        self.covariance[:] = np.eye(self.n) / self.ridge
        self.resets += 1

    def predict(self, x: np.ndarray) -> float:
        return float(self.weights @ x)

    def update(self, x: np.ndarray, y: float) -> bool:
        """One observation; False when skipped (non-finite input) or when it forced a reset.

        Preallocated buffers, no temporaries: P x, the gain and the outer product are written in place."""
        covariance = self.covariance
        weights = self.weights
        px = np.dot(covariance, x, out=self._px)
        denominator = self.forgetting + float(np.dot(x, px))
        error = y - float(np.dot(weights, x))
        if not (math.isfinite(denominator) and math.isfinite(error)):  # catches a NaN / inf in x or y
            self.skipped += 1
            return False
        gain = np.multiply(px, 1.0 / denominator, out=self._gain)
        weights += np.multiply(gain, error, out=self._step)
        covariance -= np.multiply.outer(gain, px, out=self._outer)
        covariance *= self._inverse_forgetting
        self.updates += 1
        if self._pseudo_weight > 0.0 and self.updates % REGULARISE_EVERY == 0:
            self._regularise()
        trace = float(covariance.trace())
        if not (0.0 < trace <= self.max_trace) or not math.isfinite(float(np.dot(weights, weights))):
            self.reset()
            return False
        return True

    def _regularise(self) -> None:
        """Pseudo-observation y = prior_j on x = e_j with weight `_pseudo_weight` (no forgetting step)."""
        j = self._next_coordinate
        self._next_coordinate = j + 1 if j + 1 < self.n else 0
        covariance = self.covariance
        column = covariance[:, j].copy()
        gain = column * (self._pseudo_weight / (1.0 + self._pseudo_weight * column[j]))
        self.weights += gain * (self.prior[j] - self.weights[j])
        covariance -= np.multiply.outer(gain, column)


class Standardizer:
    """EW mean / variance per feature (half-life in samples); z = clip((x - mean) / std).
    `centred[i]` False: mean stays 0 and the variance is the EW mean of x^2.

    Python floats, not numpy: at ~8 features one numpy call costs more than the whole loop."""

    __slots__ = ("_alpha", "_keep_power", "_centred", "mean", "variance", "clip", "samples", "_inverse_std")

    def __init__(
        self, n: int, *, halflife_samples: float, clip: float = 5.0, centred: list[bool] | None = None
    ) -> None:
        if not halflife_samples > 0:
            raise ValueError(f"'halflife_samples' must be > 0, was {halflife_samples}")
        if centred is not None and len(centred) != n:
            raise ValueError(f"'centred' needs {n} flags, had {len(centred)}")
        self._centred = [True] * n if centred is None else [bool(flag) for flag in centred]
        self._alpha = 1.0 - 2.0 ** (-1.0 / halflife_samples)
        self._keep_power = 1.0  # (1 - alpha)^samples, for the bias correction
        self.mean = [0.0] * n
        self.variance = [1.0] * n
        self._inverse_std = [1.0 / math.sqrt(1.0 + 1e-18)] * n
        self.clip = clip
        self.samples = 0

    def update(self, x) -> None:
        """Add one sample (finite x only; the caller checks)."""
        self.samples += 1
        self._keep_power *= 1.0 - self._alpha
        # bias-corrected step: the first sample sets the mean, later ones move it by ~alpha
        step = self._alpha / (1.0 - self._keep_power)
        mean = self.mean
        variance = self.variance
        inverse_std = self._inverse_std
        has_variance = self.samples > 1  # the prior variance 1 keeps a weight of about 1 / samples
        for i, value in enumerate(x):
            value = float(value)
            if self._centred[i]:
                delta = value - mean[i]
                mean[i] += step * delta
                square = delta * (value - mean[i])
            else:
                square = value * value
            if has_variance:
                variance[i] += step * (square - variance[i])
                inverse_std[i] = 1.0 / math.sqrt(variance[i] + 1e-18)

    def transform(self, x, out: list[float] | None = None) -> list[float]:
        """z-scores, written into `out` (a list of the features' length) or a new list; a zero-variance
        feature gives 0."""
        clip = self.clip
        low = -clip
        if out is None:
            z = [(value - mean) * inverse for value, mean, inverse in zip(x, self.mean, self._inverse_std)]
        else:
            z = out
            z[:] = map(_centred_scaled, x, self.mean, self._inverse_std)
        for i, value in enumerate(z):
            if value > clip:
                z[i] = clip
            elif value < low:
                z[i] = low
        return z
