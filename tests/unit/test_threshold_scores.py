"""The counting metrics of threshold tuning give scikit-learn's numbers on any binary labels."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from mlship.train.threshold_scores import POSITIVE_METRICS, SCORES

SKLEARN = {
    "accuracy": metrics.accuracy_score,
    "balanced_accuracy": metrics.balanced_accuracy_score,
    "f1": metrics.f1_score,
    "precision": metrics.precision_score,
    "recall": metrics.recall_score,
    "mcc": metrics.matthews_corrcoef,
}
LABELS = st.sampled_from([("no", "yes"), (0, 1), (False, True), ("stay", "churn")])


@st.composite
def _labelled(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], ...]:
    labels = draw(LABELS)
    n = draw(st.integers(1, 40))
    truth = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    said = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    weights = draw(st.lists(st.floats(0.01, 10), min_size=n, max_size=n))
    return np.array(truth), np.array(said), np.array(weights), np.array(labels)


@pytest.mark.parametrize("name", sorted(SCORES))
@settings(max_examples=150, deadline=None)
@given(case=_labelled(), weighted=st.booleans(), positive_first=st.booleans())
def test_each_score_equals_scikit_learns(
    name: str, case: tuple[np.ndarray[Any, Any], ...], weighted: bool, positive_first: bool
) -> None:
    truth, said, weights, labels = case
    positive = labels[0] if positive_first else labels[1]
    kwargs: dict[str, Any] = {"sample_weight": weights if weighted else None}
    if name in POSITIVE_METRICS:
        kwargs |= {"pos_label": positive, "zero_division": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of a class never true; so be it
        expected = SKLEARN[name](truth, said, **kwargs)
    assert SCORES[name](truth, said, **kwargs) == pytest.approx(expected, abs=1e-9)
    # The symmetric metrics take a positive class too (the tuner names it to save sorting the
    # labels), and give the same number whichever class it is.
    assert SCORES[name](truth, said, **{**kwargs, "pos_label": positive}) == pytest.approx(
        expected, abs=1e-9
    )
