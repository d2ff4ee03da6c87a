"""The gate's paired statistics against their definitions: the bootstrap of a difference on the
same resamples, McNemar's exact test and DeLong's test of two ROC-AUCs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score

from mlship.errors import SpecError
from mlship.evaluation.gate import Scored, judge_metric
from mlship.evaluation.gate_stats import delong, mcnemar, paired_bootstrap
from mlship.evaluation.metrics import resampled_metrics
from mlship.spec.gate import GateSpec


def _labels(correct: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.where(correct, truth, np.where(truth == "yes", "no", "yes"))


def _accuracy_pair(n: int, right_a: int, right_b: int) -> tuple[np.ndarray, Scored, Scored]:
    """``n`` rows; the candidate right on the first ``right_a``, the baseline on the first
    ``right_b``: a known accuracy difference of (right_a - right_b) / n."""
    rng = np.random.default_rng(7)
    truth = rng.choice(np.array(["no", "yes"]), size=n)
    a = _labels(np.arange(n) < right_a, truth)
    b = _labels(np.arange(n) < right_b, truth)
    classes = ["no", "yes"]
    return truth, Scored("m:2", a, None, classes), Scored("m:1", b, None, classes)


def test_mcnemar_exact_p_value_counts_only_the_discordant_rows() -> None:
    a = np.array([True] * 8 + [False] * 1 + [True] * 50 + [False] * 10)
    b = np.array([False] * 8 + [True] * 1 + [True] * 50 + [False] * 10)
    test = mcnemar(a, b)
    assert test.p_value == pytest.approx(2 * (1 + 9) / 2**9)  # 2 * P(X <= 1), X ~ B(9, 1/2)
    assert test.statistic == 7
    assert mcnemar(b, a).statistic == -7
    assert mcnemar(a, a).p_value == 1.0


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    n_pos=st.integers(2, 40),
    n_neg=st.integers(2, 40),
    seed=st.integers(0, 2**16),
    ties=st.booleans(),
)
def test_delong_aucs_are_scikit_learns_and_swapping_negates_z(
    n_pos: int, n_neg: int, seed: int, ties: bool
) -> None:
    rng = np.random.default_rng(seed)
    positive = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    a = rng.normal(positive * 1.0, 1.0)
    b = rng.normal(positive * 0.5, 1.0)
    if ties:
        a, b = np.round(a), np.round(b)
    test = delong(positive, a, b)
    expected = f"ROC-AUC {roc_auc_score(positive, a):.4f} (candidate) against " + (
        f"{roc_auc_score(positive, b):.4f} (baseline)"
    )
    assert test.detail == expected
    assert 0.0 <= test.p_value <= 1.0
    swapped = delong(positive, b, a)
    assert swapped.statistic == pytest.approx(-test.statistic)
    assert swapped.p_value == pytest.approx(test.p_value)


def test_delong_variance_matches_the_placement_definition() -> None:
    """The z-score from the definition: per-row placements computed pair by pair."""
    rng = np.random.default_rng(3)
    positive = rng.random(60) < 0.4
    a, b = rng.normal(positive * 1.2, 1), rng.normal(positive * 0.6, 1)

    def placements(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = score[positive], score[~positive]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (a10, a01), (b10, b01) = placements(a), placements(b)
    m, n = positive.sum(), (~positive).sum()
    var = (np.var(a10 - b10, ddof=1)) / m + (np.var(a01 - b01, ddof=1)) / n
    z = (a10.mean() - b10.mean()) / math.sqrt(var)
    test = delong(positive, a, b)
    assert test.statistic == pytest.approx(z)
    assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_identical_predictions_differ_by_exactly_nothing() -> None:
    truth, candidate, _ = _accuracy_pair(200, 150, 0)
    metrics = resampled_metrics("classification", truth, candidate.predictions, None, ["no", "yes"])
    difference = paired_bootstrap(
        "accuracy", True, metrics, metrics, resamples=200, confidence=0.95, seed=0
    )
    assert (difference.improvement, difference.low, difference.high) == (0.0, 0.0, 0.0)


def test_the_bootstrap_is_paired_seeded_and_signed_by_direction() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(size=300)
    good, bad = truth + rng.normal(0, 0.5, 300), truth + rng.normal(0, 0.8, 300)
    a = resampled_metrics("regression", truth, good)
    b = resampled_metrics("regression", truth, bad)
    once = paired_bootstrap("rmse", False, a, b, resamples=300, confidence=0.9, seed=1)
    again = paired_bootstrap("rmse", False, a, b, resamples=300, confidence=0.9, seed=1)
    assert once == again
    # A smaller RMSE is an improvement: positive, and the swapped pair mirrors it.
    assert once.improvement > 0 and once.low > 0
    swapped = paired_bootstrap("rmse", False, b, a, resamples=300, confidence=0.9, seed=1)
    assert swapped.improvement == pytest.approx(-once.improvement)
    assert (swapped.low, swapped.high) == pytest.approx((-once.high, -once.low))
    assert once.candidate == pytest.approx(math.sqrt(np.mean((truth - good) ** 2)))


def test_a_known_small_gain_is_not_significant_but_a_large_one_is() -> None:
    gate = GateSpec()
    truth, candidate, baseline = _accuracy_pair(200, 153, 150)
    difference, test, checks = judge_metric(
        gate, "classification", "accuracy", truth, candidate, baseline
    )
    assert difference.improvement == pytest.approx(3 / 200)
    assert difference.includes_zero
    failed = [check.name for check in checks if not check.passed]
    assert failed == ["significant", "McNemar (exact)"]
    assert test is not None and test.p_value == pytest.approx(0.25)  # 3 discordant rows, all b
    truth, candidate, baseline = _accuracy_pair(200, 180, 140)
    _, _, checks = judge_metric(gate, "classification", "accuracy", truth, candidate, baseline)
    assert all(check.passed for check in checks)


def test_significant_with_a_margin_asks_it_of_the_intervals_low_end() -> None:
    """A known gain of 0.2: a margin the point estimate reaches but the interval's low end does
    not fails; one below the low end passes; a negative margin asks no less than zero."""
    truth, candidate, baseline = _accuracy_pair(200, 180, 140)
    difference, _, _ = judge_metric(
        GateSpec(), "classification", "accuracy", truth, candidate, baseline
    )
    assert difference.improvement == pytest.approx(0.2) and 0 < difference.low < 0.19
    tight = GateSpec(min_improvement=0.19)
    _, _, checks = judge_metric(tight, "classification", "accuracy", truth, candidate, baseline)
    failed = {check.name: check.reason for check in checks if not check.passed}
    assert list(failed) == ["significant"]
    assert failed["significant"].endswith(
        "does not lie above the min_improvement of +0.1900: the candidate is not "
        "significantly better by +0.1900"
    )
    within = GateSpec(min_improvement=difference.low / 2)
    _, _, checks = judge_metric(within, "classification", "accuracy", truth, candidate, baseline)
    assert all(check.passed for check in checks), checks
    truth, candidate, baseline = _accuracy_pair(200, 153, 150)  # +0.015, interval holds zero
    loose = GateSpec(min_improvement=-0.05)
    _, _, checks = judge_metric(loose, "classification", "accuracy", truth, candidate, baseline)
    failed = {check.name: check.reason for check in checks if not check.passed}
    assert list(failed) == ["significant", "McNemar (exact)"]
    assert "includes zero: the candidate is not significantly better" in failed["significant"]


def test_not_worse_allows_a_bounded_loss() -> None:
    truth, candidate, baseline = _accuracy_pair(400, 298, 300)
    lenient = GateSpec(require="not_worse", max_loss=0.05, min_improvement=-0.01)
    _, _, checks = judge_metric(lenient, "classification", "accuracy", truth, candidate, baseline)
    assert all(check.passed for check in checks), checks
    strict = GateSpec(require="not_worse", max_loss=0.001)
    _, _, checks = judge_metric(strict, "classification", "accuracy", truth, candidate, baseline)
    failed = {check.name: check.reason for check in checks if not check.passed}
    assert set(failed) == {"improvement", "not worse"}
    assert "below the largest loss allowed, -0.0010" in failed["not worse"]


def test_a_metric_without_probabilities_is_refused_by_name() -> None:
    truth, candidate, baseline = _accuracy_pair(50, 40, 30)
    with pytest.raises(SpecError, match="cannot compare ROC-AUC: roc_auc is not defined"):
        judge_metric(GateSpec(), "classification", "roc_auc", truth, candidate, baseline)
