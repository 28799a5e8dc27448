"""Statistics over seeds: pure functions, no store, no rendering.

- :func:`describe` — mean, sample standard deviation (n − 1) and n of one column's values.
- :func:`paired_difference` — a row against the baseline row, paired by seed: the mean of the
  per-seed differences with a two-sided t confidence interval,
  ``mean ± t_{1−α/2, n−1} · sd / √n`` (sd = sample standard deviation of the differences).
  Pairing removes what the seed does to both rows alike (data order, initialization), so the
  interval is about the regularizer, not about the seed.
- :func:`mean_difference` — the difference of two independent means (nothing pairs their
  values: Δs measured on different training data, say), with Welch's t interval,
  ``d ± t_{1−α/2, ν} · √(s₁²/n₁ + s₂²/n₂)``, ν by the Welch–Satterthwaite equation.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Described:
    mean: float | None
    std: float | None  # None for n < 2
    n: int


@dataclass(frozen=True)
class PairedDifference:
    """``treatment − baseline`` over the seeds both have."""

    mean: float | None
    sd: float | None
    n: int
    low: float | None  # None for n < 2 ("n too small")
    high: float | None
    confidence: float = CONFIDENCE
    seeds: tuple[int, ...] = ()

    @property
    def half_width(self) -> float | None:
        return None if self.low is None or self.mean is None else self.mean - self.low

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly on one side of 0."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


@dataclass(frozen=True)
class MeanDifference:
    """``mean(a) − mean(b)`` of two independent samples."""

    mean: float | None
    low: float | None  # None when either sample has fewer than 2 values
    high: float | None
    n_a: int
    n_b: int
    confidence: float = CONFIDENCE

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def stdev(values: Sequence[float]) -> float:
    """The sample standard deviation; NaN when a value is NaN or infinite (a diverged run),
    where :func:`statistics.stdev` raises."""
    return statistics.stdev(values) if all(math.isfinite(v) for v in values) else math.nan


def describe(values: Sequence[float]) -> Described:
    values = [float(v) for v in values]
    if not values:
        return Described(None, None, 0)
    std = stdev(values) if len(values) > 1 else None
    return Described(statistics.fmean(values), std, len(values))


def t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(probability, df))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Two-sided confidence interval for the mean of ``values``; None when n < 2."""
    n = len(values)
    if n < 2:
        return None
    mean = statistics.fmean(values)
    se = stdev(values) / math.sqrt(n)
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * se
    return mean - half, mean + half


def paired_difference(treatment: Mapping[int, float], baseline: Mapping[int, float],
                      confidence: float = CONFIDENCE) -> PairedDifference:
    """Mean and t interval of ``treatment[seed] − baseline[seed]`` over the shared seeds."""
    seeds = tuple(sorted(set(treatment) & set(baseline)))
    diffs = [treatment[s] - baseline[s] for s in seeds]
    if not diffs:
        return PairedDifference(None, None, 0, None, None, confidence, seeds)
    interval = t_interval(diffs, confidence)
    sd = stdev(diffs) if len(diffs) > 1 else None
    low, high = interval if interval is not None else (None, None)
    return PairedDifference(statistics.fmean(diffs), sd, len(diffs), low, high, confidence, seeds)


def mean_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> MeanDifference:
    """``mean(a) − mean(b)`` with Welch's t interval (unequal variances); no interval when
    either sample has fewer than 2 values."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        return MeanDifference(None, None, None, len(a), len(b), confidence)
    mean = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return MeanDifference(mean, None, None, len(a), len(b), confidence)
    va, vb = stdev(a) ** 2 / len(a), stdev(b) ** 2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0 or not math.isfinite(se):
        return MeanDifference(mean, mean, mean, len(a), len(b), confidence)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(1 - (1 - confidence) / 2, df) * se
    return MeanDifference(mean, mean - half, mean + half, len(a), len(b), confidence)
