"""The signal stage's model: book and trade events in, a Prediction out, learning as it goes.

Per healthy book event (all on event time, no clock):
1. labels whose horizon has passed mature (mm/labels.py): each is scored prequentially (the
   predictions made at its time, before any update with its label), then trains every expert
   and the aggregation;
2. features (mm/features.py) are computed and standardised online (the signed ones scaled, not centred);
3. every expert predicts the log mid return over `horizon_s`, in bps, and the aggregation
   (mm/experts.py: the aggregating algorithm with fixed share, its learning rate set by theory)
   mixes them by their running out-of-sample loss;
4. at most once per `sample_interval_ms` the z-scores and predictions are queued for their label,
   so learning runs on that grid, not per book.

The experts (`expert_names` order; `model = "experts"` emits their aggregate):
- `rls`: RLS (mm/rls.py) on `features` with `forgetting`, x its `Calibration.ratio` (the out-of-sample
  slope of the realised on its raw prediction: shrinks toward 0 when it has no skill out of sample);
- `rls_f<f>`: the same with each forgetting factor of `expert_forgetting` (a shorter memory);
- `rls_wide`: RLS on `features` + `wide_features` (e.g. momentum), with `forgetting`;
- `imbalance`: an online regression on the plain top-k imbalance (the reference predictor of issue 5);
- `momentum`: an online regression on the momentum at the lookback closest to the horizon;
- `zero`: 0 (its r2 is 0 and hit rate 0.5 by definition, labels.Score).
`model = "rls"` (the default, chosen by leave-one-capture-out: bench/signal_loco.py) emits the `rls`
expert alone, `model = "experts"` the aggregate and `model = "imbalance"` the fixed rule
`imbalance_coef_bps` x imbalance (every expert is scored whichever is emitted).
The aggregation's loss range is `aggregation_clip_sigma` horizon sigmas (the current volatility,
floored at `vol_floor_bps_per_s`, x sqrt(horizon)); predictions and labels beyond it are clipped
for the aggregation only.
With `normalise_by_volatility` the RLS target is the return in units of the horizon's volatility
and its prediction is scaled back to bps by the current volatility.

The imbalance and momentum experts double as the report's `baselines` (whatever the features).

Warm start: the coefficients start at `prior_coefs_bps` (z units, the `rls` expert), the
volatility at `vol_prior_bps_per_s`, the weights uniform, so quoting can begin at the first book.
Self-check: when the upper confidence bound of the rolling out-of-sample information coefficient
(`RollingIC`) of the model's prediction, IC + `ic_confidence_z` x its standard error, drops below
`ic_threshold` after `min_labels` labels, alpha falls back to zero (predicted_return 0, fair price =
mid) until it climbs above `ic_recover_threshold`. The standard error counts overlapping labels as the
independent horizons they span (a 1 000-label half-life at a 50 ms grid is ~30 independent 5 s
labels, an IC noise of ~0.2): the bare IC (z = 0) switched a skilled model off and on on that noise and
cost it out-of-sample R2 on each of the five long Binance captures; with the bound, alpha goes off
on evidence. The model's prediction stays visible in `raw_return`.

The report's `versus_imbalance` sets the emitted prediction beside the imbalance baseline on the same
labels (all of them, and the second half with `keep_scored`), with `independent_labels`, the number
of non-overlapping horizons those labels span: the statistical power behind the figures.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import msgspec
import numpy as np

from mm.config import SignalConfig
from mm.experts import ETA, FixedShare, regret_bound
from mm.features import NS_PER_S, FeatureState, decay, feature_columns
from mm.labels import DelayedLabels, RollingIC, Score
from mm.rls import RLS, Standardizer

_LABEL_VARIANCE_HALFLIFE = 2_000.0  # labels; for the training label's winsorisation


class Prediction(msgspec.Struct, frozen=True):
    ts_ns: int  # event time of the book update that produced it
    predicted_return: float  # fraction (0.0001 = 1 bp) over the model's horizon; 0 while alpha is off
    fair_px_tick: float  # mid * (1 + predicted_return)
    volatility_bps_per_s: float  # std of 1 s mid log-returns, in bps
    imbalance: float  # (sum bid qty - sum ask qty) / (sum of both) over the top levels, in [-1, 1]
    healthy: bool  # False: an empty side, a crossed book or a non-finite feature; do not quote on it
    alpha_enabled: bool = True  # False: the self-check switched alpha off (predicted_return is 0)
    raw_return: float = 0.0  # the model's prediction (fraction) whether or not alpha is on


class ScalarRLS:
    """One-coefficient RLS with forgetting and ridge, in plain floats (the baselines)."""

    __slots__ = ("forgetting", "ridge_weight", "weight", "variance")

    def __init__(self, forgetting: float, ridge: float) -> None:
        self.forgetting = forgetting
        self.ridge_weight = ridge * (1.0 - forgetting)
        self.weight = 0.0
        self.variance = 1.0 / ridge

    def update(self, x: float, y: float) -> None:
        px = self.variance * x
        gain = px / (self.forgetting + x * px)
        self.weight += gain * (y - self.weight * x)
        self.variance = (self.variance - gain * px) / self.forgetting
        # ridge pseudo-observation (x = 1, y = 0) so the penalty does not forget
        gain = self.variance * self.ridge_weight / (1.0 + self.ridge_weight * self.variance)
        self.weight -= gain * self.weight
        self.variance -= gain * self.variance


class Calibration:
    """Out-of-sample shrinkage of the model: ratio = the EW regression slope of realised on the raw
    prediction (prequential pairs only), pulled toward 1 by `prior_labels` pseudo-labels and
    clipped to [0, max_ratio]. No skill out of sample -> ratio near 0 -> the emitted drift fades;
    an honest model keeps ~1. It is cov / var of the prediction, i.e. IC x std(realised) / std(raw).

    Each pair counts with its `independence` (labels.RollingIC: min(1, time since the previous
    label / horizon)), so `prior_labels` and the evidence against it are both in independent labels:
    a thousand 5 s labels 50 ms apart are ~10 pieces of evidence, not a thousand (counted as a
    thousand, the slope's noise, ~1 / (IC sqrt(10)), shrank skilled models at random)."""

    __slots__ = ("_alpha", "_prior_labels", "_max_ratio", "_mean_py", "_mean_pp", "_weight", "ratio")

    def __init__(self, halflife_labels: float, prior_labels: float, max_ratio: float) -> None:
        self._alpha = 1.0 - 2.0 ** (-1.0 / halflife_labels)
        self._prior_labels = prior_labels
        self._max_ratio = max_ratio
        self._mean_py = 0.0
        self._mean_pp = 0.0
        self._weight = 0.0  # effective independent labels in the EW means (<= ~1.44 x half-life)
        self.ratio = min(1.0, max_ratio)

    def add(self, predicted: float, realised: float, independence: float = 1.0) -> None:
        if independence <= 0.0:
            return
        self._weight = (1.0 - self._alpha) * self._weight + independence
        step = independence / self._weight
        self._mean_py += step * (predicted * realised - self._mean_py)
        self._mean_pp += step * (predicted * predicted - self._mean_pp)
        if self._mean_pp <= 1e-30:
            return
        slope = self._mean_py / self._mean_pp
        ratio = (self._weight * slope + self._prior_labels) / (self._weight + self._prior_labels)
        self.ratio = min(max(ratio, 0.0), self._max_ratio)


class RLSExpert:
    """One RLS forecaster on the first `size` standardised features, with its calibration."""

    __slots__ = ("name", "size", "rls", "calibration", "weights")

    def __init__(self, name: str, size: int, cfg: SignalConfig, forgetting: float, prior: list[float] | None) -> None:
        self.name = name
        self.size = size
        self.rls = RLS(size, forgetting=forgetting, ridge=cfg.ridge, prior=prior)
        self.calibration = Calibration(cfg.calibration_halflife_labels, cfg.calibration_prior_labels,
                                       cfg.calibration_max_ratio)
        self.weights = self.rls.weights.tolist()  # floats, refreshed after learning


class WeightSeries:
    """The aggregation's weights every `stride` labels, at most 2 x `points` rows: when full, every
    other row is dropped and the stride doubles (deterministic, bounded)."""

    __slots__ = ("points", "stride", "labels", "ts_ns", "rows")

    def __init__(self, points: int) -> None:
        self.points = points
        self.stride = 1
        self.labels: list[int] = []
        self.ts_ns: list[int] = []
        self.rows: list[list[float]] = []

    def add(self, label: int, ts_ns: int, weights: np.ndarray) -> None:
        if label % self.stride:
            return
        self.labels.append(label)
        self.ts_ns.append(ts_ns)
        self.rows.append(weights.tolist())
        if len(self.rows) >= 2 * self.points:
            self.labels = self.labels[::2]
            self.ts_ns = self.ts_ns[::2]
            self.rows = self.rows[::2]
            self.stride *= 2

    def as_dict(self, names: list[str]) -> dict[str, Any]:
        return {"labels": list(self.labels), "ts_ns": list(self.ts_ns),
                **{name: [row[i] for row in self.rows] for i, name in enumerate(names)}}


class SignalModel:
    """Mutable model state; `on_book` and `on_trade` are pure in their inputs (no clock, no I/O)."""

    def __init__(self, cfg: SignalConfig, *, keep_scored: bool = False) -> None:
        self._cfg = cfg
        # keep_scored: every scored label as (ts_ns, model, momentum, imbalance, emitted, realised) bps
        self.scored: list[tuple[int, float, float, float, float, float]] | None = [] if keep_scored else None
        wide = tuple(name for name in cfg.wide_features if name not in cfg.features)
        self.features = FeatureState(msgspec.structs.replace(cfg, features=cfg.features + wide))
        self.columns = feature_columns(cfg)  # the `rls` expert's, a prefix of the feature state's
        n = len(self.columns)
        if cfg.prior_coefs_bps and len(cfg.prior_coefs_bps) != n:
            raise ValueError(f"'prior_coefs_bps' needs {n} values ({self.columns}), had {len(cfg.prior_coefs_bps)}")
        prior = list(cfg.prior_coefs_bps) or None
        self.rls_experts = [RLSExpert("rls", n, cfg, cfg.forgetting, prior)]
        for forgetting in cfg.expert_forgetting:
            self.rls_experts.append(RLSExpert(f"rls_f{forgetting:g}", n, cfg, forgetting, prior))
        if wide:
            self.rls_experts.append(RLSExpert("rls_wide", self.features.size, cfg, cfg.forgetting,
                                              prior and prior + [0.0] * (self.features.size - n)))
        self.expert_names = [expert.name for expert in self.rls_experts] + ["imbalance", "momentum", "zero"]
        n_experts = len(self.expert_names)
        self._n_rls = len(self.rls_experts)
        self.aggregation = FixedShare(n_experts, cfg.share)
        self._expert_bps = np.zeros(n_experts)  # this book's predictions (the zero expert stays 0)
        self._clipped_bps = np.zeros(n_experts)
        self._raw_bps = [0.0] * self._n_rls  # the RLS experts' uncalibrated predictions
        self._z = [0.0] * self.features.size
        self.expert_scores = [Score() for _ in range(n_experts)]
        self.weight_series = WeightSeries(cfg.weights_points)
        self.scaler = Standardizer(self.features.size, halflife_samples=cfg.scaler_halflife_samples,
                                   centred=self.features.centred)
        self.labels = DelayedLabels(int(cfg.horizon_s * NS_PER_S), cfg.max_pending_samples)
        self._sample_interval_ns = int(cfg.sample_interval_ms * 1_000_000)
        self._next_sample_ns = -(2**62)
        self._read_levels = max(cfg.imbalance_levels, cfg.weighted_levels if "imbalance_weighted" in cfg.features
                                or "imbalance_weighted" in wide else 1)
        lookbacks = cfg.momentum_lookbacks_s
        self._momentum_lookback = (
            min(range(len(lookbacks)), key=lambda i: abs(lookbacks[i] - cfg.horizon_s)) if lookbacks else -1
        )
        # the imbalance and momentum experts' inputs, scaled like the signed features
        self._baseline_scaler = Standardizer(2, halflife_samples=cfg.scaler_halflife_samples, centred=[False, False])
        self._baseline_x = [0.0, 0.0]
        self._baseline_z = [0.0, 0.0]
        self._momentum_baseline = ScalarRLS(cfg.forgetting, cfg.ridge)
        self._imbalance_baseline = ScalarRLS(cfg.forgetting, cfg.ridge)
        self.score = Score()  # the model's prediction (before the self-check)
        self.emitted_score = Score()  # what the quoter got: 0 while alpha was off
        self.ic = RollingIC(cfg.ic_halflife_labels)
        self._horizon_ns = self.labels.horizon_ns
        self._last_label_ns: int | None = None  # the previous scored label's sample time
        self.independent_labels = 0.0  # sum over scored labels of min(1, time since the previous / horizon)
        self._label_variance = 0.0  # of the label in bps (the baselines' winsorisation)
        self._target_variance = 0.0  # of the RLS target (bps, or sigmas when normalised)
        self._label_count = 0
        self._label_step = 1.0 - 2.0 ** (-1.0 / _LABEL_VARIANCE_HALFLIFE)
        self._bound = math.inf  # |raw RLS prediction| cap, in target units
        self._sqrt_horizon_s = math.sqrt(cfg.horizon_s)
        self.alpha_enabled = True
        self.fallbacks = 0  # times the self-check switched alpha off
        self.recoveries = 0
        self.unhealthy = 0
        self.nonfinite_features = 0
        self._last_fair_px_tick = 0.0
        self._ewma_mid_tick = 0.0
        self._mid_halflife_ns = cfg.ewma_halflife_s * NS_PER_S
        self._last_mid_ns = 0

    @property
    def cfg(self) -> SignalConfig:
        return self._cfg

    @cfg.setter
    def cfg(self, cfg: SignalConfig) -> None:
        """Runtime change (config.RUNTIME_PARAMS): thresholds and the fixed coefficient apply at once."""
        self._cfg = cfg

    @property
    def rls(self) -> RLS:
        """The `rls` expert's regression (on `features`)."""
        return self.rls_experts[0].rls

    @property
    def ewma_mid_tick(self) -> float:
        """EWMA of the mid (half-life `ewma_halflife_s`); 0.0 before the first healthy book."""
        return self._ewma_mid_tick

    @property
    def trade_flow_imbalance(self) -> float:
        return self.features.trade_flow_imbalance

    @property
    def trades_ignored(self) -> int:
        return self.features.trades_ignored

    @property
    def volatility_bps_per_s(self) -> float:
        return self.features.volatility.bps_per_s

    def on_trade(self, ts_ns: int, px_tick: int, qty_lot: int, taker_side: int) -> None:
        """Feed the trade flow; a trade with px or qty <= 0 or side not +1 / -1 is ignored and counted."""
        if px_tick <= 0:
            self.features.trades_ignored += 1
            return
        self.features.on_trade(ts_ns, qty_lot, taker_side)

    def on_book(
        self,
        ts_ns: int,
        bid_px: np.ndarray,
        bid_qty: np.ndarray,
        ask_px: np.ndarray,
        ask_qty: np.ndarray,
        n_bids: int,
        n_asks: int,
    ) -> Prediction:
        """Update on a book (int64 arrays, best first; only the first n_bids / n_asks rows count)."""
        if n_bids <= 0 or n_asks <= 0:
            return self._unhealthy(ts_ns)
        best_bid_tick = int(bid_px[0])
        best_ask_tick = int(ask_px[0])
        if best_bid_tick <= 0 or best_ask_tick <= best_bid_tick:
            return self._unhealthy(ts_ns)
        read = self._read_levels
        bids = bid_qty[: min(n_bids, read)].tolist()
        asks = ask_qty[: min(n_asks, read)].tolist()
        if min(bids) < 0 or min(asks) < 0:
            return self._unhealthy(ts_ns)

        features = self.features
        if len(self.labels) and features.mid_tick > 0.0:
            matured = self.labels.pop_matured(ts_ns, features.mid_tick)
            if matured:
                self._learn(matured)
        x = features.on_book(ts_ns, best_bid_tick, best_ask_tick, bids, asks)
        if x is None:
            return self._unhealthy(ts_ns)
        mid_tick = features.mid_tick
        self._update_ewma_mid(ts_ns, mid_tick)
        if not math.isfinite(math.fsum(x)):  # NaN or inf in any feature
            self.nonfinite_features += 1
            return self._unhealthy(ts_ns)
        z = self.scaler.transform(x, self._z)
        cfg = self._cfg
        volatility_bps_per_s = features.volatility.bps_per_s
        # the RLS target's unit: bps, or the horizon's volatility (sigma) when normalised
        unit_bps = self._unit_bps(volatility_bps_per_s)
        expert_bps = self._expert_bps
        raw_bps = self._raw_bps
        bound = self._bound
        calibrate = cfg.calibrate
        for k, expert in enumerate(self.rls_experts):
            raw = sum(map(operator.mul, expert.weights, z))  # the expert's prefix of z
            if raw > bound:
                raw = bound
            elif raw < -bound:
                raw = -bound
            raw_bps[k] = raw * unit_bps
            expert_bps[k] = raw_bps[k] * expert.calibration.ratio if calibrate else raw_bps[k]
        imbalance = features.imbalance
        baseline_x = self._baseline_x
        baseline_x[0] = features.momentum_bps(self._momentum_lookback) if self._momentum_lookback >= 0 else 0.0
        baseline_x[1] = imbalance
        momentum_z, imbalance_z = self._baseline_scaler.transform(baseline_x, self._baseline_z)
        n_rls = self._n_rls
        imbalance_bps = expert_bps[n_rls] = self._imbalance_baseline.weight * imbalance_z
        momentum_bps = expert_bps[n_rls + 1] = self._momentum_baseline.weight * momentum_z
        # the aggregation's range: a few horizon sigmas of the current volatility
        clip_bps = cfg.aggregation_clip_sigma * max(volatility_bps_per_s, cfg.vol_floor_bps_per_s) * self._sqrt_horizon_s
        clipped = np.clip(expert_bps, -clip_bps, clip_bps, out=self._clipped_bps)
        aggregate_bps = self.aggregation.predict(clipped, clip_bps)
        if cfg.model == "experts":
            emitted_bps = aggregate_bps
        elif cfg.model == "rls":
            emitted_bps = float(expert_bps[0])
        else:
            emitted_bps = cfg.imbalance_coef_bps * imbalance

        if ts_ns >= self._next_sample_ns:
            self._next_sample_ns = ts_ns + self._sample_interval_ns
            published_bps = emitted_bps if self.alpha_enabled else 0.0
            self.labels.push(ts_ns, mid_tick, np.array(z), (
                emitted_bps, momentum_bps, imbalance_bps, published_bps, tuple(raw_bps), unit_bps, momentum_z,
                imbalance_z, expert_bps.copy(), clipped.copy(), aggregate_bps, clip_bps))
            self.scaler.update(x)
            self._baseline_scaler.update(baseline_x)

        predicted_return = emitted_bps * 1e-4 if self.alpha_enabled else 0.0
        fair_px_tick = mid_tick * (1.0 + predicted_return)
        if not (math.isfinite(fair_px_tick) and math.isfinite(volatility_bps_per_s)):
            self.nonfinite_features += 1
            return self._unhealthy(ts_ns)
        self._last_fair_px_tick = fair_px_tick
        return Prediction(
            ts_ns, predicted_return, fair_px_tick, volatility_bps_per_s, imbalance, True, self.alpha_enabled,
            emitted_bps * 1e-4,
        )

    def _unit_bps(self, volatility_bps_per_s: float) -> float:
        """1.0 (the target is the return in bps) or the horizon's sigma in bps (volatility-normalised
        target), floored at `vol_floor_bps_per_s` so a quiet book does not blow the target up."""
        if not self._cfg.normalise_by_volatility:
            return 1.0
        return max(volatility_bps_per_s, self._cfg.vol_floor_bps_per_s) * self._sqrt_horizon_s

    def _learn(self, matured: list) -> None:
        cfg = self._cfg
        experts = self.rls_experts
        scores = self.expert_scores
        aggregation = self.aggregation
        for sample, realised_bps in matured:
            (predicted_bps, momentum_bps, imbalance_bps, published_bps, raw_bps, unit_bps, momentum_z,
             imbalance_z, expert_bps, clipped_bps, aggregate_bps, clip_bps) = sample.predictions
            # prequential: score first, with the predictions made at the sample's own time
            self.score.add(predicted_bps, realised_bps)
            self.emitted_score.add(published_bps, realised_bps)
            if self.scored is not None:
                self.scored.append(
                    (sample.ts_ns, predicted_bps, momentum_bps, imbalance_bps, published_bps, realised_bps)
                )
            for k, score in enumerate(scores):
                score.add(float(expert_bps[k]), realised_bps)
            last_ns = self._last_label_ns
            independence = 1.0 if last_ns is None else min(1.0, (sample.ts_ns - last_ns) / self._horizon_ns)
            self._last_label_ns = sample.ts_ns
            self.independent_labels += independence
            self.ic.add(predicted_bps, realised_bps, independence)
            self._self_check(cfg)
            if not math.isfinite(realised_bps):
                for expert in experts:
                    expert.rls.skipped += 1
                continue
            aggregation.update(clipped_bps, aggregate_bps, realised_bps, clip_bps)
            # winsorise the training labels at label_clip_sigma running stds (jumps teach nothing)
            self._label_count += 1
            self.weight_series.add(self._label_count, sample.ts_ns, aggregation.weights)
            step = max(1.0 / self._label_count, self._label_step)
            self._label_variance += step * (realised_bps * realised_bps - self._label_variance)
            bound = cfg.label_clip_sigma * math.sqrt(self._label_variance)
            target_bps = min(max(realised_bps, -bound), bound) if bound > 0.0 else realised_bps
            target = realised_bps / unit_bps
            self._target_variance += step * (target * target - self._target_variance)
            bound = cfg.label_clip_sigma * math.sqrt(self._target_variance)
            target = min(max(target, -bound), bound) if bound > 0.0 else target
            z = sample.features
            for k, expert in enumerate(experts):
                expert.calibration.add(raw_bps[k], realised_bps, independence)
                expert.rls.update(z[: expert.size], target)
            self._momentum_baseline.update(momentum_z, target_bps)
            self._imbalance_baseline.update(imbalance_z, target_bps)
        for expert in experts:
            expert.weights = expert.rls.weights.tolist()
        self._bound = cfg.max_prediction_sigma * math.sqrt(self._target_variance)

    def _self_check(self, cfg: SignalConfig) -> None:
        if self.ic.n < cfg.min_labels:
            return
        ic = self.ic.value + cfg.ic_confidence_z * self.ic.standard_error  # the upper confidence bound
        if self.alpha_enabled and ic < cfg.ic_threshold:
            self.alpha_enabled = False
            self.fallbacks += 1
        elif not self.alpha_enabled and ic > cfg.ic_recover_threshold:
            self.alpha_enabled = True
            self.recoveries += 1

    def _update_ewma_mid(self, ts_ns: int, mid_tick: float) -> None:
        if self._ewma_mid_tick <= 0.0:
            self._ewma_mid_tick = mid_tick
        elif ts_ns > self._last_mid_ns:
            keep = decay(ts_ns - self._last_mid_ns, self._mid_halflife_ns)
            self._ewma_mid_tick = keep * self._ewma_mid_tick + (1.0 - keep) * mid_tick
        self._last_mid_ns = max(ts_ns, self._last_mid_ns)

    def _unhealthy(self, ts_ns: int) -> Prediction:
        """No usable book: state is left untouched; the last fair price and volatility are reported."""
        self.unhealthy += 1
        volatility_bps_per_s = self.features.volatility.bps_per_s
        if not math.isfinite(volatility_bps_per_s):
            volatility_bps_per_s = 0.0
        return Prediction(ts_ns, 0.0, self._last_fair_px_tick, volatility_bps_per_s, 0.0, False, self.alpha_enabled)

    def second_half(self) -> dict[str, Any]:
        """Scores over the second half of the scored labels only (kept with `keep_scored`): still
        prequential, comparable with a model fitted on the first half and tested on the second."""
        names = ("model", "momentum", "imbalance", "emitted")
        scores = {name: Score() for name in names}
        scored = self.scored or []
        for row in scored[len(scored) // 2 :]:
            realised = row[5]
            for i, name in enumerate(names, 1):
                scores[name].add(row[i], realised)
        return {name: score.as_dict() for name, score in scores.items()}

    def versus_imbalance(self) -> dict[str, Any]:
        """The emitted prediction (what the quoter got) beside the imbalance baseline, scored on the
        same labels: all of them and, with `keep_scored`, the second half; `margin` is the emitted
        r2_oos minus the baseline's; `all.sums` holds the sums behind both scores (labels.Score.sums),
        so that the symbols of one capture pool exactly (bench/signal_acceptance.py). Compare these,
        not one block's all-label r2 with another's second-half one."""
        imbalance = self.expert_scores[self.expert_names.index("imbalance")]
        out = {"all": {"emitted": self.emitted_score.as_dict(), "imbalance": imbalance.as_dict(),
                       "margin": self.emitted_score.r2_oos - imbalance.r2_oos,
                       "sums": {"emitted": self.emitted_score.sums(), "imbalance": imbalance.sums()}}}
        if self.scored is not None:
            half = self.second_half()
            out["second_half"] = {"emitted": half["emitted"], "imbalance": half["imbalance"],
                                  "margin": half["emitted"]["r2_oos"] - half["imbalance"]["r2_oos"]}
        return out

    def experts_report(self) -> dict[str, Any]:
        """Each expert's prequential figures, its weight now and its cumulative normalised loss."""
        aggregation = self.aggregation
        return {name: {**score.as_dict(), "weight": float(aggregation.weights[k]),
                       "loss": float(aggregation.losses[k])}
                for k, (name, score) in enumerate(zip(self.expert_names, self.expert_scores))}

    def aggregation_report(self) -> dict[str, Any]:
        """The aggregation's settings and its realised regret against the best expert (normalised
        losses) beside the prompt-feedback bound (mm/experts.py)."""
        aggregation = self.aggregation
        steps = aggregation.steps
        best = float(aggregation.losses.min()) if steps else 0.0
        return {"eta": ETA, "share": aggregation.share, "clip_sigma": self._cfg.aggregation_clip_sigma,
                "steps": steps, "loss": aggregation.aggregate_loss, "regret_vs_best": aggregation.aggregate_loss - best,
                "regret_bound": regret_bound(aggregation.n, max(steps, 1), aggregation.share)}

    def report(self) -> dict[str, Any]:
        """The run report's `signal` block: prequential figures of the model, its experts and baselines."""
        names = self.expert_names
        imbalance, momentum, zero = (self.expert_scores[names.index(name)] for name in ("imbalance", "momentum",
                                                                                          "zero"))
        experts = self.rls_experts
        return {
            **self.score.as_dict(),
            "model": self._cfg.model,
            "ic_rolling": self.ic.value,
            "ic_standard_error": self.ic.standard_error if self.ic.n else None,
            "independent_labels": self.independent_labels,
            "versus_imbalance": self.versus_imbalance(),
            "emitted": self.emitted_score.as_dict(),
            "alpha_enabled": self.alpha_enabled,
            "fallbacks": self.fallbacks,
            "recoveries": self.recoveries,
            "baselines": {"zero": zero.as_dict(), "momentum": momentum.as_dict(), "imbalance": imbalance.as_dict()},
            "experts": self.experts_report(),
            "weights": self.weight_series.as_dict(names),
            "aggregation": self.aggregation_report(),
            **({"second_half": self.second_half()} if self.scored is not None else {}),
            "features": list(self.columns),
            "coefficients_bps": [float(w) for w in self.rls.weights],
            "counts": {
                "updates": self.rls.updates,
                "skipped_nonfinite": self.rls.skipped,
                "covariance_resets": sum(expert.rls.resets for expert in experts),
                "pending": len(self.labels),
                "pending_dropped": self.labels.dropped,
                "unhealthy_books": self.unhealthy,
                "nonfinite_features": self.nonfinite_features,
                "trades_ignored": self.features.trades_ignored,
            },
        }
