"""The always-valid sequential test: hand-computed figures, its properties over any sequence, and
seeded simulations of many looks: A/A traffic keeps the false-alarm rate under the level where a
one-look z-test checked at every look exceeds it, and a real difference is found."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.errors import DataError
from mlship.monitor.abtest import _tau
from mlship.monitor.sequential import (
    confidence_radius,
    fixed_p_values,
    mixture_likelihood_ratio,
    sequential_test,
)

ALPHA = 0.05


def test_the_likelihood_ratio_matches_the_hand_computed_one() -> None:
    # d = 0.1, v = 0.0032, tau^2 = 0.0025, v + tau^2 = 0.0057:
    # sqrt(0.0032 / 0.0057) = 0.7492686; 0.01 * 0.0025 / (2 * 0.0032 * 0.0057) = 0.6853070;
    # exp(0.6853070) = 1.9843810; L = 0.7492686 * 1.9843810 = 1.4868345.
    assert mixture_likelihood_ratio(0.1, 0.0032, 0.05) == pytest.approx(1.4868345, rel=1e-6)
    # No difference: only the penalty for the spread of the alternatives, sqrt(v / (v + tau^2)).
    assert mixture_likelihood_ratio(0.0, 0.0032, 0.05) == pytest.approx(0.7492686, rel=1e-6)
    assert mixture_likelihood_ratio(0.3, 0.0, 0.05) == 1.0


def test_a_two_by_two_sample_matches_the_hand_computed_test() -> None:
    # A: 0, 2 (mean 1, sample variance 2, variance of the mean 1); B: 10, 12 (mean 11, same).
    # d = 10, v = 2, tau = 1: L = sqrt(2 / 3) * exp(100 / (2 * 2 * 3)) = 0.8164966 * 4160.2620
    # = 3396.8397, p = 1 / L = 2.94391e-4. Radius: sqrt(2 * 3 / 1 * (2 ln 20 + ln 1.5))
    # = sqrt(6 * (5.9914645 + 0.4054651)) = sqrt(38.3815777) = 6.1952867.
    test = sequential_test([False, True, False, True], [0, 10, 2, 12], tau=1.0, min_per_arm=2)
    assert test.looks == 1  # after the third record B has one outcome only: no look
    assert (test.n_a, test.n_b, test.mean_a, test.mean_b) == (2, 2, 1.0, 11.0)
    assert test.difference == 10.0
    assert test.p_value == pytest.approx(2.94391e-4, rel=1e-5)
    assert test.interval == pytest.approx((10 - 6.1952867, 10 + 6.1952867), rel=1e-7)
    assert confidence_radius(2.0, 1.0, ALPHA) == pytest.approx(6.1952867, rel=1e-7)
    # One-look z-test: z = 10 / sqrt(2) = 7.0710678, two-sided p = erfc(5) = 1.5374597e-12;
    # Wald interval 10 +- 1.9599640 * 1.4142136 = 10 +- 2.7718076.
    assert test.fixed_p_value == pytest.approx(1.5374597e-12, rel=1e-6)
    assert test.fixed_interval == pytest.approx((7.2281924, 12.7718076), rel=1e-7)
    assert test.significant


def test_before_each_arm_has_enough_outcomes_nothing_is_claimed() -> None:
    test = sequential_test([True] * 5 + [False] * 5, [1.0] * 5 + [0.0] * 5, tau=0.05)
    assert (test.looks, test.p_value, test.interval, test.fixed_p_value) == (0, 1.0, None, None)
    empty = sequential_test([], [], tau=0.05)
    assert (empty.looks, empty.p_value, empty.difference, empty.mean_a) == (0, 1.0, None, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": [True], "values": [1.0], "tau": 0.0}, "tau must be a positive difference"),
        ({"arms": [True], "values": [1.0], "tau": 0.1, "alpha": 1.0}, "alpha must lie"),
        ({"arms": [True, False], "values": [1.0], "tau": 0.1}, "the same length"),
        ({"arms": [True], "values": [math.nan], "tau": 0.1}, "finite number"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sequential_test(**kwargs)  # type: ignore[arg-type]


outcomes = st.lists(
    st.tuples(st.booleans(), st.integers(0, 1) | st.floats(-100, 100)), min_size=0, max_size=120
)


@settings(derandomize=True, max_examples=80, deadline=None)
@given(outcomes)
def test_the_p_value_never_rises_and_ignores_which_arm_is_called_b(
    pairs: list[tuple[bool, float]],
) -> None:
    arms = [a for a, _ in pairs]
    values = [float(v) for _, v in pairs]
    previous = 1.0
    for end in (len(pairs) // 3, 2 * len(pairs) // 3, len(pairs)):
        test = sequential_test(arms[:end], values[:end], tau=0.5, min_per_arm=3)
        assert 0.0 <= test.p_value <= previous + 1e-12
        previous = test.p_value
        if test.interval is not None and test.difference is not None:
            assert test.interval[0] <= test.interval[1]
    swapped = sequential_test([not a for a in arms], values, tau=0.5, min_per_arm=3)
    assert swapped.p_value == pytest.approx(previous, rel=1e-9)


def _simulate(runs: int, n: int, rate_a: float, rate_b: float, seed: int) -> tuple[float, float]:
    """Share of ``runs`` simulated splits of ``n`` 0/1 outcomes (each record a look) where the
    always-valid test, and a one-look z-test checked at every look, ever reject at ALPHA."""
    rng = np.random.default_rng(seed)
    sequential = fixed = 0
    for _ in range(runs):
        arms = rng.random(n) < 0.5
        values = (rng.random(n) < np.where(arms, rate_b, rate_a)).astype(float)
        sequential += sequential_test(arms, values, tau=0.05, alpha=ALPHA).significant
        fixed += bool(fixed_p_values(arms, values).min() < ALPHA)
    return sequential / runs, fixed / runs


def test_a_over_many_looks_the_false_alarm_rate_stays_under_the_level() -> None:
    sequential, fixed = _simulate(runs=400, n=2000, rate_a=0.8, rate_b=0.8, seed=7)
    print(
        f"A/A, 400 runs of 2000 records, a look after each: always-valid test false alarms "
        f"{sequential:.1%}, one-look z-test checked at every look {fixed:.1%} (level {ALPHA:.0%})"
    )
    assert sequential <= ALPHA
    assert fixed > 2 * ALPHA  # peeking at a fixed-horizon test is what this test exists to avoid


def test_a_over_many_looks_holds_for_means_too() -> None:
    rng = np.random.default_rng(3)
    alarms = 0
    for _ in range(300):
        arms = rng.random(1500) < 0.3  # an unbalanced split, as a canary is
        values = rng.exponential(2.0, 1500)  # skewed, like absolute errors
        alarms += sequential_test(arms, values, tau=0.2, alpha=ALPHA).significant
    print(f"A/A on means, 300 runs of 1500 records: always-valid false alarms {alarms / 300:.1%}")
    assert alarms / 300 <= ALPHA


def test_a_real_difference_is_found() -> None:
    power, _ = _simulate(runs=100, n=3000, rate_a=0.80, rate_b=0.86, seed=11)
    print(f"A/B 80% against 86% accuracy, 100 runs of 3000 records: found in {power:.0%}")
    assert power >= 0.8


def test_the_difference_worth_finding_is_known_before_the_traffic() -> None:
    assert _tau("accuracy", {}, None) == 0.05
    assert _tau("mae", {"holdout": {"mae": 2.5}}, None) == pytest.approx(0.25)
    assert _tau("mae", {}, 0.7) == 0.7
    with pytest.raises(DataError, match="give one with --effect"):
        _tau("mae", {"holdout": {}}, None)
    with pytest.raises(DataError, match="--effect: expected a positive difference in mae"):
        _tau("mae", {}, 0.0)
