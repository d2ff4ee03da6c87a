"""How often a rollout rolls back a candidate that is as good as production (A/A), and how
often it catches one that is worse, judged the way ``mlship rollout step`` judges: at each look,
the candidate's comparison with production over the current step's labelled records, rolled back
on the verdict ``worse`` (:class:`~mlship.monitor.abtest.Comparison`). Each step starts a new
test; the rollout is looked at every 25 labelled records, far more often than cron would.
Seeded, so the figures are the same on every run."""

from __future__ import annotations

import numpy as np

from mlship.monitor.abtest import Comparison
from mlship.monitor.sequential import sequential_test

STEPS = (5, 25, 50)
"""The steps at which production still answers (at 100 % there is nothing to compare)."""
RECORDS, EVERY = 1000, 25


def _rolled_back(rng: np.random.Generator, control: float, candidate: float) -> bool:
    for weight in STEPS:
        arms = rng.random(RECORDS) < weight / 100
        accuracy = np.where(arms, candidate, control)
        values = (rng.random(RECORDS) < accuracy).astype(float)
        for end in range(EVERY, RECORDS + 1, EVERY):
            test = sequential_test(arms[:end], values[:end], tau=0.05, alpha=0.05)
            if Comparison(1, 2, test, greater_is_better=True).verdict == "worse":
                return True
    return False


def test_an_equal_candidate_is_rarely_rolled_back_however_often_it_is_looked_at() -> None:
    rng = np.random.default_rng(3)
    rate = np.mean([_rolled_back(rng, 0.8, 0.8) for _ in range(200)])
    assert rate < 0.05, rate  # 2.0 % in this seeded run


def test_a_candidate_ten_points_worse_is_rolled_back_in_nearly_every_rollout() -> None:
    rng = np.random.default_rng(4)
    rate = np.mean([_rolled_back(rng, 0.8, 0.7) for _ in range(50)])
    assert rate > 0.9, rate  # 96 % in this seeded run
