"""Judging time-ordered runs: the backtest's spans and errors, and the verdict that tells drift
and bias from over-fitting, on constructed fold results and on small real fits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression

from mlship.evaluation.backtest import (
    Backtest,
    BacktestRow,
    Errors,
    Span,
    TimeOrder,
    run_backtest,
    time_order,
)
from mlship.evaluation.diagnosis import fit_verdict
from mlship.evaluation.time_diagnosis import (
    DRIFT_ADVICE,
    ErrorTrend,
    ScoreTrend,
    judge,
    learning_curve_over_time,
)
from mlship.spec.models import Task
from mlship.spec.training import Split
from mlship.train.cost import Usage
from mlship.train.folds import FoldResult
from mlship.train.splits import cv_folds, train_test_indices


def _backtest(
    scores: Sequence[float | None],
    train_scores: Sequence[float | None],
    levels: Sequence[float],
    *,
    sizes: Sequence[float] | None = None,
    trends: Sequence[float] | None = None,
    task: Task = "regression",
    metric: str = "rmse",
) -> Backtest:
    """Folds (then the test set, the last of ``scores`` and ``levels``) of 100 rows each, every
    fold training on all blocks before it."""
    count = len(scores)
    sizes = sizes or [1.0] * count
    trends = trends or [0.0] * count
    rows = [
        BacktestRow(
            label="test" if k == count - 1 else f"fold {k + 1}",
            train=Span(0, 100 * (k + 1) - 1, 100 * (k + 1)),
            valid=Span(100 * (k + 1), 100 * (k + 2) - 1, 100),
            score=scores[k],
            train_score=train_scores[k] if k < count - 1 else None,
            errors=Errors(levels[k], sizes[k], trends[k]),
        )
        for k in range(count)
    ]
    return Backtest("t", metric, task, tuple(rows[:-1]), rows[-1])


BASELINE = [4.0, 4.0, 4.0, 4.0]


# -- the verdict -----------------------------------------------------------------------------


def test_an_error_that_grows_with_time_and_a_bias_is_drift() -> None:
    scores = [1.0, 1.3, 1.6, 1.9, 2.4]
    backtest = _backtest(scores, [0.9, 1.0, 1.1, 1.2], [0.5, 0.9, 1.3, 1.7, 2.2], sizes=scores)
    fit = judge(backtest, BASELINE)
    assert fit["verdict"] == "drift", fit
    assert fit["advice"] == DRIFT_ADVICE
    assert "worsens with time: 1, 1.3, 1.6, 1.9 on the folds" in fit["reason"]
    assert (
        "residuals average +2.2 (actual above predicted), 84% of the squared error"
        in (fit["reason"])
    )
    time = fit["time"]
    assert time["drift"] and time["scores"]["falling"] and time["errors"]["biased"]
    assert time["scores"]["worse_steps"] == 4 and time["scores"]["steps"] == 4
    assert time["scores"]["test_loss_rise"] == pytest.approx(2.4 / 1.45 - 1, rel=1e-5)


def test_drift_wins_over_a_training_gap_and_says_why() -> None:
    # A tree model far above validation on every fold, whose error is a growing shift.
    scores = [1.0, 1.3, 1.6, 1.9, 2.4]
    backtest = _backtest(scores, [0.2, 0.2, 0.2, 0.2], [0.8, 1.2, 1.5, 1.8, 2.3], sizes=scores)
    fit = judge(backtest, BASELINE)
    assert fit["verdict"] == "drift"
    assert fit["time"]["gaps"]["everywhere"]
    assert "a shift that grows with time is not noise the model memorised" in fit["reason"]


def test_residuals_that_trend_across_the_test_set_count_as_a_shift() -> None:
    scores = [1.0, 1.1, 1.2, 1.3, 1.6]
    backtest = _backtest(
        scores,
        [0.95, 1.0, 1.1, 1.2],
        [0.0, 0.1, 0.0, 0.1, 0.2],
        sizes=scores,
        trends=[0] * 4 + [2.0],
    )
    errors = ErrorTrend.of(backtest)
    assert not errors.biased and errors.trending
    assert judge(backtest, BASELINE)["verdict"] == "drift"


def test_a_train_far_above_validation_on_every_fold_is_overfitting() -> None:
    # Validation flat (even improving with more history), the test set like the folds.
    scores = [2.0, 1.9, 1.85, 1.8, 1.85]
    backtest = _backtest(scores, [0.5, 0.5, 0.55, 0.6], [0.1, -0.1, 0.05, 0.0, 0.05], sizes=scores)
    fit = judge(backtest, BASELINE)
    assert fit["verdict"] == "overfitting", fit
    assert "on every fold, from the smallest training window to the largest" in fit["reason"]
    assert "More regularisation" in fit["advice"]
    assert not fit["time"]["drift"]


def test_a_gap_that_closes_as_the_window_grows_is_not_overfitting() -> None:
    # The mean gap passes the limit, but the largest windows are close to validation.
    train, valid = [0.2, 1.2, 1.25, 1.3], [3.0, 1.3, 1.3, 1.35]
    assert fit_verdict("regression", "rmse", train, valid, BASELINE)["verdict"] == "overfitting"
    backtest = _backtest([*valid, 1.3], train, [0.0, 0.05, -0.05, 0.0, 0.02], sizes=[*valid, 1.3])
    fit = judge(backtest, BASELINE)
    assert fit["verdict"] == "a good fit", fit
    assert fit["time"]["gaps"]["everywhere"] is False


def test_an_error_growing_without_a_shift_is_not_drift() -> None:
    # Worse with time, but the residuals stay centred and flat: noise, not a moving target.
    scores = [1.0, 1.2, 1.4, 1.6, 2.0]
    backtest = _backtest(
        scores, [0.95, 1.1, 1.3, 1.5], [0.0, 0.02, -0.03, 0.01, 0.05], sizes=scores
    )
    fit = judge(backtest, BASELINE)
    assert fit["time"]["scores"]["falling"] and not fit["time"]["errors"]["shifted"]
    assert fit["verdict"] != "drift"


def test_a_bias_that_lasts_into_the_test_set_is_drift_whatever_the_score() -> None:
    scores = [1.5, 1.4, 1.3, 1.2, 1.25]
    backtest = _backtest(scores, [1.4, 1.3, 1.2, 1.1], [0.2, 0.3, 0.5, -0.9, -0.9], sizes=scores)
    fit = judge(backtest, BASELINE)
    assert fit["time"]["errors"]["lasting_bias"] and not fit["time"]["scores"]["falling"]
    assert fit["verdict"] == "drift", fit
    assert fit["reason"] == (
        "The residuals lean one way on the newest rows: they average -0.9 on the latest fold "
        "(56% of its squared error) and -0.9 on the test set (52%): the newest rows sit below "
        "what the model learned from the older ones."
    )
    assert fit["advice"] == DRIFT_ADVICE


def test_a_bias_on_the_test_set_alone_with_a_steady_score_is_not_drift() -> None:
    scores = [1.5, 1.4, 1.3, 1.2, 1.25]
    for latest in (0.1, 0.9):  # unbiased latest fold; or biased the other way
        levels = [0.0, 0.1, -0.1, latest, -0.9]
        fit = judge(_backtest(scores, [1.4, 1.3, 1.2, 1.1], levels, sizes=scores), BASELINE)
        assert fit["time"]["errors"]["biased"] and not fit["time"]["errors"]["lasting_bias"]
        assert fit["verdict"] != "drift"


def test_a_classifier_whose_error_rate_rises_with_time_drifts() -> None:
    accuracy = [0.9, 0.87, 0.84, 0.8, 0.7]
    rates = [1 - a for a in accuracy]
    backtest = _backtest(
        accuracy,
        [0.92, 0.9, 0.88, 0.85],
        rates,
        sizes=rates,
        task="classification",
        metric="accuracy",
    )
    fit = judge(backtest, [0.5, 0.5, 0.5, 0.5])
    assert fit["verdict"] == "drift", fit
    assert "The error rate is 30.0% on the test set against 14.8% on the folds" in fit["reason"]


def test_a_steady_classifier_keeps_the_usual_verdict() -> None:
    accuracy = [0.86, 0.88, 0.87, 0.88, 0.875]
    rates = [1 - a for a in accuracy]
    backtest = _backtest(
        accuracy,
        [0.89, 0.9, 0.9, 0.9],
        rates,
        sizes=rates,
        task="classification",
        metric="accuracy",
    )
    fit = judge(backtest, [0.5, 0.5, 0.5, 0.5])
    assert fit["verdict"] == "a good fit", fit


finite = st.floats(min_value=-5, max_value=5, allow_nan=False)
maybe = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32))


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    scores=st.lists(maybe, min_size=2, max_size=7),
    levels=st.lists(finite, min_size=7, max_size=7),
    sizes=st.lists(st.floats(min_value=0, max_value=5), min_size=7, max_size=7),
    metric=st.sampled_from(["rmse", "r2", "mae"]),
)
def test_any_backtest_gets_a_verdict_with_plain_numbers(
    scores: list[float | None], levels: list[float], sizes: list[float], metric: str
) -> None:
    count = len(scores)
    backtest = _backtest(scores, scores[:-1], levels[:count], sizes=sizes[:count], metric=metric)
    fit = judge(backtest, [1.0] * (count - 1))
    assert fit["verdict"] in {"drift", "overfitting", "underfitting", "a good fit"}
    if fit["verdict"] == "drift":
        time = fit["time"]
        falling, errors = time["scores"]["falling"], time["errors"]
        assert (falling and errors["shifted"]) or errors["lasting_bias"]
    for value in fit["time"]["scores"]["scores"]:
        assert value is None or math.isfinite(value)


def test_the_score_trend_counts_steps_between_known_scores_only() -> None:
    trend = ScoreTrend.of(_backtest([0.9, None, 0.8, 0.7], [1, 1, 1], [0, 0, 0, 0], metric="r2"))
    assert (trend.worse_steps, trend.steps) == (1, 1)
    assert trend.rise == pytest.approx(0.3 / 0.15 - 1)


# -- the backtest ----------------------------------------------------------------------------


def test_errors_in_time_order_give_the_bias_and_its_trend() -> None:
    times = np.array([9.0, 0.0, 5.0, 3.0, 7.0, 1.0, 2.0, 8.0, 4.0, 6.0])
    actual = times * 2.0 + 10
    predicted = times + 10  # residual = time: mean 4.5, rising by 9 from first to last row
    errors = Errors.of("regression", actual, predicted, times)
    assert errors.level == pytest.approx(4.5)
    assert errors.trend == pytest.approx(9.0)
    assert errors.size == pytest.approx(math.sqrt(np.mean(times**2)))
    labels = np.array(["a", "b", "a", "b"], dtype=object)
    guesses = np.array(["a", "b", "b", "a"], dtype=object)
    misses = Errors.of("classification", labels, guesses, np.array([0.0, 1.0, 2.0, 3.0]))
    assert misses.level == 0.5 and misses.size == 0.5
    assert misses.trend == pytest.approx(1.2)  # misses at rows 2 and 3 of 0..3: slope 0.4


def test_times_show_as_dates_date_times_or_numbers() -> None:
    days = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, freq="D"), "y": range(10)})
    split = Split(method="timeseries", time="t", holdout=0.2, folds=2)
    order = time_order(days, split, np.arange(8), np.arange(8, 10))
    assert order.kind == "date"
    assert order.span(order.test).as_dict() == {"from": "2024-01-09", "to": "2024-01-10", "rows": 2}
    hours = days.assign(t=pd.date_range("2024-01-01 06:30", periods=10, freq="h"))
    timed = time_order(hours, split, np.arange(8), np.arange(8, 10))
    assert timed.span(timed.test).text() == "2024-01-01T14:30:00 \u2013 2024-01-01T15:30:00"
    steps = days.assign(t=np.arange(10) * 1.5)
    numbered = time_order(steps, split, np.arange(8), np.arange(8, 10))
    assert numbered.span(numbered.train).as_dict() == {"from": 0, "to": 10.5, "rows": 8}


def _series(rows: int, trend: float) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(4)
    t = np.arange(rows, dtype=float)
    x = rng.normal(size=rows)
    frame = pd.DataFrame({"t": t[::-1].copy(), "x": x[::-1].copy()})  # stored newest first
    y = pd.Series(2 * frame["x"] + trend * frame["t"] + rng.normal(scale=0.1, size=rows))
    return frame, y


def test_the_backtest_walks_forward_in_time_and_ends_with_the_test_set() -> None:
    frame, y = _series(200, trend=0.05)
    split = Split(method="timeseries", time="t", holdout=0.2, folds=3)
    train, test = train_test_indices(frame, y, split, "regression")
    order = time_order(frame, split, train, test)
    part = frame.iloc[train].reset_index(drop=True)
    y_train = y.iloc[train].reset_index(drop=True)
    folds = cv_folds(part, y_train, split, "regression")
    model = LinearRegression().fit(part[["x"]], y_train)
    predictions = model.predict(frame.iloc[test][["x"]])
    recorded = [
        FoldResult("linear", 1, -1, {"rmse": 0.5}, {"rmse": 0.25}, 0.0, Usage.zero()),
    ]
    backtest = run_backtest(
        "regression",
        LinearRegression(),
        part[["x"]],
        y_train,
        predictions,
        y.iloc[test],
        metric="rmse",
        folds=folds,
        fold_scores=recorded,
        test_score=1.23,
        order=order,
    )
    rows = backtest.as_dict()["rows"]
    assert [row["label"] for row in rows] == ["fold 1", "fold 2", "fold 3", "test"]
    for row in rows:
        assert row["train"]["from"] == 0 and row["train"]["to"] < row["validation"]["from"]
    for earlier, later in pairwise(rows):
        assert later["validation"]["from"] == earlier["validation"]["to"] + 1
        assert later["train"]["rows"] > earlier["train"]["rows"]
    assert rows[-1]["validation"] == {"from": 160, "to": 199, "rows": 40}
    assert rows[-1]["train"] == {"from": 0, "to": 159, "rows": 160}
    assert rows[-1]["score"] == 1.23
    # The run's recorded fold scores are shown where it has them; the refits fill the rest.
    assert (rows[1]["score"], rows[1]["train_score"]) == (0.5, 0.25)
    assert rows[0]["score"] != 0.5 and rows[0]["score"] > 0
    # y rises with t, which the model does not see: the newer the block, the larger the bias.
    levels = [row["errors"]["level"] for row in rows]
    assert levels == sorted(levels) and levels[-1] > 1
    assert (
        backtest.test_sentence()
        == "The test set is the latest 40 rows (160 \u2013 199), scored once."
    )
    curve = learning_curve_over_time(backtest)
    assert curve["train_sizes"] == [row["train"]["rows"] for row in rows[:-1]]
    assert curve["kind"] == "time folds"


def test_a_time_order_keeps_its_rows_apart() -> None:
    order = TimeOrder("t", np.array([1.0, 2.0]), np.array([3.0]), "number")
    assert order.show(2.0) == 2 and order.show(2.5) == 2.5
