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
samples, bias-corrected so the first samples are usable) and maps x to clipped z-scores.
"""

from __future__ import annotations

import math

import numpy as np

REGULARISE_EVERY = 4  # updates per ridge pseudo-observation (it costs as much as an update)


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
        """One observation; False when skipped (non-finite input) or when it forced a reset."""
        if not math.isfinite(y) or not np.isfinite(x).all():
            self.skipped += 1
            return False
        covariance = self.covariance
        px = np.dot(covariance, x, out=self._px)
        denominator = self.forgetting + float(x @ px)
        error = y - float(self.weights @ x)
        gain = px / denominator
        self.weights += gain * error
        outer = np.multiply.outer(gain, px, out=self._outer)
        covariance -= outer
        covariance *= self._inverse_forgetting
        self.updates += 1
        if self._pseudo_weight > 0.0 and self.updates % REGULARISE_EVERY == 0:
            self._regularise()
        trace = float(covariance.trace())
        if not (0.0 < trace <= self.max_trace) or not math.isfinite(float(self.weights.sum())):
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
    """EW mean / variance per feature (half-life in samples); z = clip((x - mean) / std)."""

    __slots__ = ("_alpha", "_keep_power", "mean", "variance", "clip", "samples", "_z")

    def __init__(self, n: int, *, halflife_samples: float, clip: float = 5.0) -> None:
        if not halflife_samples > 0:
            raise ValueError(f"'halflife_samples' must be > 0, was {halflife_samples}")
        self._alpha = 1.0 - 2.0 ** (-1.0 / halflife_samples)
        self._keep_power = 1.0  # (1 - alpha)^samples, for the bias correction
        self.mean = np.zeros(n)
        self.variance = np.ones(n)
        self.clip = clip
        self.samples = 0
        self._z = np.zeros(n)

    def update(self, x: np.ndarray) -> None:
        """Add one sample (finite x only; the caller checks)."""
        self.samples += 1
        self._keep_power *= 1.0 - self._alpha
        # bias-corrected step: the first sample sets the mean, later ones move it by ~alpha
        step = self._alpha / (1.0 - self._keep_power)
        delta = x - self.mean
        self.mean += step * delta
        if self.samples > 1:  # the prior variance 1 keeps a weight of about 1 / samples
            self.variance += step * (delta * (x - self.mean) - self.variance)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """z-scores into an internal buffer (copy it to keep it); a zero-variance feature gives 0."""
        z = np.subtract(x, self.mean, out=self._z)
        z /= np.sqrt(self.variance + 1e-18)
        np.clip(z, -self.clip, self.clip, out=z)
        return z
