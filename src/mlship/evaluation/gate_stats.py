"""How sure we are that one model scores better than another on the same rows.

Two models scored on the same test rows make *paired* measurements: a hard row tends to be hard
for both, so the difference of their metrics varies much less than either metric. Comparing two
separate intervals throws that away and calls real improvements noise. So the difference itself
is resampled: each bootstrap resample draws the rows once and scores both models on that same
draw (the counts-matrix machinery of :mod:`mlship.evaluation.metrics`, with the same fixed seed,
so a gate decides the same way every time it is run on the same predictions).

Two classical paired tests back the interval where they apply:

* McNemar's test for accuracy: only the rows where the models disagree on being right carry
  information; under equal accuracy each such row is a fair coin. The exact binomial form is
  used, which is valid for any number of discordant rows.
* DeLong's test for the ROC-AUC of two scores of the same binary rows: each AUC is a mean of
  per-row placement values, whose covariance across the two models gives the variance of the
  difference (DeLong, DeLong and Clarke-Pearson 1988, with the midrank computation of Sun and Xu
  2014). Ties count a half, as in the AUC itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mlship.evaluation.metrics import ResampledMetrics, resample_weights


@dataclass(frozen=True)
class Difference:
    """The paired bootstrap of ``candidate - baseline`` on one metric.

    ``improvement`` and its interval are signed so that a positive value is better whatever the
    metric's direction (a smaller RMSE is an improvement): ``low``/``high`` bound the improvement,
    not the raw difference.
    """

    metric: str
    greater_is_better: bool
    candidate: float
    baseline: float
    improvement: float
    low: float
    high: float
    confidence: float
    resamples: int
    seed: int

    @property
    def includes_zero(self) -> bool:
        return self.low <= 0 <= self.high


@dataclass(frozen=True)
class PairedTest:
    """A classical paired test of equal performance: its name, statistic and two-sided p-value."""

    name: str
    statistic: float
    p_value: float
    detail: str


def paired_bootstrap(
    metric: str,
    greater_is_better: bool,
    candidate: ResampledMetrics,
    baseline: ResampledMetrics,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> Difference:
    """The point improvement of ``candidate`` over ``baseline`` on ``metric`` and its percentile
    interval, both models scored on every resample's same rows.

    Raises ``ValueError`` when the two are not predictions of the same rows or the metric is not
    defined for one of them (a model without probabilities has no ROC-AUC).
    """
    if candidate.n_rows != baseline.n_rows:
        raise ValueError(
            f"the candidate was scored on {candidate.n_rows} rows, the baseline on "
            f"{baseline.n_rows}; a paired comparison needs the same rows"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1 (got {resamples})")
    n_rows = candidate.n_rows
    sign = 1.0 if greater_is_better else -1.0
    every_row = np.ones((1, n_rows))
    point_candidate = _metric(candidate.values(every_row), metric, "candidate")[0]
    point_baseline = _metric(baseline.values(every_row), metric, "baseline")[0]
    differences = [
        sign
        * (
            _metric(candidate.values(weights), metric, "candidate")
            - _metric(baseline.values(weights), metric, "baseline")
        )
        for weights in resample_weights(n_rows, resamples, seed=seed, strata=candidate.strata)
    ]
    spread = np.concatenate(differences)
    finite = spread[np.isfinite(spread)]
    if not len(finite):
        raise ValueError(f"{metric} is undefined on every resample")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Difference(
        metric=metric,
        greater_is_better=greater_is_better,
        candidate=float(point_candidate),
        baseline=float(point_baseline),
        improvement=float(sign * (point_candidate - point_baseline)),
        low=float(low),
        high=float(high),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def _metric(values: dict[str, np.ndarray[Any, Any]], metric: str, which: str) -> Any:
    if metric not in values:
        raise ValueError(f"{metric} is not defined for the {which}'s predictions")
    return values[metric]


def mcnemar(candidate_correct: Any, baseline_correct: Any) -> PairedTest:
    """McNemar's exact test that two classifiers are right equally often on the same rows.

    Only the discordant rows count: ``b`` where only the candidate is right, ``c`` where only the
    baseline is. Under equal accuracy ``b`` is Binomial(b + c, 1/2).
    """
    a = np.asarray(candidate_correct, dtype=bool)
    z = np.asarray(baseline_correct, dtype=bool)
    if a.shape != z.shape:
        raise ValueError("McNemar's test needs the two models' results on the same rows")
    only_candidate = int((a & ~z).sum())
    only_baseline = int((~a & z).sum())
    discordant = only_candidate + only_baseline
    if discordant == 0:
        p_value = 1.0
    else:
        p_value = float(stats.binomtest(only_candidate, discordant, 0.5).pvalue)
    return PairedTest(
        name="McNemar (exact)",
        statistic=float(only_candidate - only_baseline),
        p_value=min(1.0, p_value),
        detail=(
            f"{only_candidate} rows right only by the candidate, "
            f"{only_baseline} right only by the baseline"
        ),
    )


def delong(positive: Any, candidate_scores: Any, baseline_scores: Any) -> PairedTest:
    """DeLong's test that two scores of the same binary rows have equal ROC-AUC.

    ``positive`` marks the rows of the positive class; the scores rank them (a larger score, more
    likely positive). The statistic is the z-score of ``AUC(candidate) - AUC(baseline)``.
    """
    is_positive = np.asarray(positive, dtype=bool)
    scores = np.vstack(
        [np.asarray(candidate_scores, dtype=float), np.asarray(baseline_scores, dtype=float)]
    )
    if scores.shape[1] != len(is_positive):
        raise ValueError("DeLong's test needs the two models' scores of the same rows")
    m, n = int(is_positive.sum()), int((~is_positive).sum())
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least two rows of each class")
    pos, neg = scores[:, is_positive], scores[:, ~is_positive]
    every = stats.rankdata(np.hstack([pos, neg]), axis=1)
    within_pos = stats.rankdata(pos, axis=1)
    within_neg = stats.rankdata(neg, axis=1)
    # A positive's placement: the share of negatives it outranks (ties a half), and a negative's:
    # the share of positives that outrank it.
    v10 = (every[:, :m] - within_pos) / n
    v01 = 1 - (every[:, m:] - within_neg) / m
    aucs = v10.mean(axis=1)
    covariance = np.cov(v10) / m + np.cov(v01) / n
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    difference = float(aucs[0] - aucs[1])
    if variance <= 0 or not math.isfinite(variance):
        z, p_value = 0.0, 1.0 if difference == 0 else 0.0
    else:
        z = difference / math.sqrt(variance)
        p_value = float(2 * stats.norm.sf(abs(z)))
    return PairedTest(
        name="DeLong",
        statistic=z,
        p_value=p_value,
        detail=f"ROC-AUC {aucs[0]:.4f} (candidate) against {aucs[1]:.4f} (baseline)",
    )
