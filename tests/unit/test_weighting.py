"""Sample weights and target transforms: weighted metrics agree with scikit-learn and with
repeated rows, bad weights are quarantined, fits hand the weights to the model step only, and
the spec refuses what cannot honour them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsRegressor

from mlship.data.checks import validate
from mlship.data.typing import REASONS
from mlship.errors import DataError, SpecError
from mlship.evaluation.metrics import classification_metrics, regression_metrics
from mlship.spec import parse_spec
from mlship.spec.data import Column, TableChecks
from mlship.spec.models import ModelSpec
from mlship.train.candidates import Recipe
from mlship.train.metrics import compute_metrics
from mlship.train.threshold import tune_threshold
from mlship.train.weighting import (
    accepts_sample_weight,
    check_target,
    final_estimator,
    fit_weighted,
)
from mlship.train.xgb import XGBLabelClassifier


def _classification(seed: int, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 120
    truth = rng.integers(0, classes, n)
    proba = rng.dirichlet(np.ones(classes), n)
    proba[np.arange(n), truth] += 0.3  # better than chance
    proba /= proba.sum(axis=1, keepdims=True)
    return truth, proba, rng.uniform(0.1, 5.0, n)


@pytest.mark.parametrize("classes", [2, 3])
def test_weighted_classification_metrics_are_scikit_learns(classes: int) -> None:
    truth, proba, weights = _classification(1, classes)
    predicted = proba.argmax(axis=1)
    found = compute_metrics(
        "classification", truth, predicted, proba, list(range(classes)), weights=weights
    )
    average = "binary" if classes == 2 else "macro"
    expected = {
        "accuracy": skm.accuracy_score(truth, predicted, sample_weight=weights),
        "balanced_accuracy": skm.balanced_accuracy_score(truth, predicted, sample_weight=weights),
        "f1": skm.f1_score(truth, predicted, average=average, sample_weight=weights),
        "recall": skm.recall_score(truth, predicted, average=average, sample_weight=weights),
        "mcc": skm.matthews_corrcoef(truth, predicted, sample_weight=weights),
        "log_loss": skm.log_loss(truth, proba, sample_weight=weights),
    }
    if classes == 2:
        expected["roc_auc"] = skm.roc_auc_score(truth, proba[:, 1], sample_weight=weights)
    for name, value in expected.items():
        assert found[name] == pytest.approx(value), name
    unweighted = compute_metrics("classification", truth, predicted, proba, list(range(classes)))
    assert unweighted["accuracy"] != pytest.approx(found["accuracy"])


def test_weighted_regression_metrics_are_scikit_learns() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(10, 3, 200)
    predicted = truth + rng.normal(0, 1, 200)
    weights = rng.uniform(0, 4, 200)
    found = compute_metrics("regression", truth, predicted, weights=weights)
    assert found["rmse"] == pytest.approx(
        skm.root_mean_squared_error(truth, predicted, sample_weight=weights)
    )
    assert found["r2"] == pytest.approx(skm.r2_score(truth, predicted, sample_weight=weights))
    assert found["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(truth, predicted, sample_weight=weights)
    )
    assert found["median_ae"] == pytest.approx(
        skm.median_absolute_error(truth, predicted, sample_weight=weights)
    )


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2), st.floats(-50, 50), st.integers(0, 4)),
        min_size=3,
        max_size=30,
    )
)
def test_a_whole_weight_counts_as_that_many_copies_of_the_row(
    rows: list[tuple[int, int, float, int]],
) -> None:
    """A weight of k scores exactly as k copies of the row (0: as if the row were not there)."""
    counts = np.array([r[3] for r in rows])
    counts[:2] = np.maximum(counts[:2], 1)  # two rows at least, so that R2 is defined
    truth = np.array([r[0] for r in rows])
    predicted = np.array([r[1] for r in rows])
    value = np.array([r[2] for r in rows])
    estimate = value + (truth - predicted)
    repeated = np.repeat(np.arange(len(rows)), counts)
    for task, t, p in (
        ("regression", value, estimate),
        ("classification", truth, predicted),
    ):
        classes = [0, 1, 2] if task == "classification" else None
        weighted = compute_metrics(task, t, p, None, classes, weights=counts)  # type: ignore[arg-type]
        copied = compute_metrics(task, t[repeated], p[repeated], None, classes)  # type: ignore[arg-type]
        for name in ("accuracy", "mcc", "rmse", "mae", "r2"):
            if name in copied:
                assert weighted[name] == pytest.approx(copied[name], rel=1e-9, abs=1e-9), name


def test_bootstrapped_metrics_with_weights_start_from_the_weighted_point() -> None:
    truth, proba, weights = _classification(3, 2)
    predicted = proba.argmax(axis=1)
    found = classification_metrics(truth, predicted, proba, [0, 1], weights=weights, resamples=50)
    direct = compute_metrics("classification", truth, predicted, proba, [0, 1], weights=weights)
    for name in ("accuracy", "f1", "precision", "recall", "mcc", "roc_auc", "log_loss", "brier"):
        value = found["values"][name]
        assert value["value"] == pytest.approx(direct[name], abs=1e-5), name
        assert value["low"] <= value["value"] <= value["high"]
    rng = np.random.default_rng(4)
    y = rng.lognormal(2, 1, 150)
    guess = y * rng.uniform(0.7, 1.3, 150)
    w = rng.uniform(0, 3, 150)
    regression = regression_metrics(y, guess, weights=w, resamples=50)["values"]
    direct = compute_metrics("regression", y, guess, weights=w)
    for name in ("rmse", "mae", "r2", "mape", "median_ae"):
        assert regression[name]["value"] == pytest.approx(direct[name], rel=1e-5), name


def test_bad_weights_are_quarantined_naming_the_column_and_value() -> None:
    frame = pl.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "w": [1.0, -0.5, None, float("nan"), float("inf"), 0.0],
            "_source": ["s"] * 6,
            "_row": [f"line {i}" for i in range(2, 8)],
        }
    )
    columns = [
        Column(name="x", type="float"),
        Column(name="w", type="float", role="weight"),
    ]
    result = validate(frame, columns, TableChecks(max_quarantine=1.0))
    assert result.quarantine["_row"].to_list() == ["line 3", "line 4", "line 5", "line 6"]
    assert result.quarantine[REASONS].to_list() == [
        "w: -0.5 is not a sample weight (expected a number of 0 or more)",
        "w: is empty, but a sample weight is required",
        "w: NaN is not a sample weight (expected a number of 0 or more)",
        "w: inf is not a sample weight (expected a number of 0 or more)",
    ]
    assert result.clean["w"].to_list() == [1.0, 0.0]  # a zero weight is a weight


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=40))
def test_exactly_the_rows_without_a_usable_weight_are_quarantined(
    weights: list[float | None],
) -> None:
    frame = pl.DataFrame({"w": weights}, schema={"w": pl.Float64})
    result = validate(
        frame,
        [Column(name="w", type="float", role="weight")],
        TableChecks(max_quarantine=1.0, duplicates="allow"),
    )
    usable = [w for w in weights if w is not None and np.isfinite(w) and w >= 0]
    assert result.clean["w"].to_list() == usable
    assert len(result.quarantine) == len(weights) - len(usable)


def test_estimators_that_take_sample_weights_are_told_apart() -> None:
    assert accepts_sample_weight(LinearRegression)
    assert not accepts_sample_weight(KNeighborsRegressor)
    assert accepts_sample_weight(XGBLabelClassifier)  # forwards **kwargs to XGBoost's fit


def _recipe(estimator: str, transform: str | None = None) -> Recipe:
    spec = parse_spec(
        f"""name: r
task: regression
sources: [{{path: rows.csv}}]
columns:
  - {{name: a, type: float, transform: {{scale: standard}}}}
  - {{name: y, type: float, role: target{", target_transform: " + transform if transform else ""}}}
models: [{{estimator: {estimator}}}]
metric: rmse
""",
        Path("/p/pipeline.yaml"),
    ).spec
    return Recipe.from_spec(spec, ModelSpec(estimator=estimator))


def test_a_weighted_fit_reaches_the_model_step_only() -> None:
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(3, 2, 80)})
    y = pd.Series(np.where(np.arange(80) < 40, 2.0, -1.0) * X["a"])
    weights = np.where(np.arange(80) < 40, 10.0, 1.0)
    pipeline = fit_weighted(_recipe("linear_regression").build(), X, y, weights)
    # The scaler learnt from the rows as they are; the regression from weighted rows.
    scaled = (X[["a"]] - X["a"].mean()) / X["a"].std(ddof=0)
    direct = LinearRegression().fit(scaled, y, sample_weight=weights)
    assert pipeline.named_steps["model"].coef_ == pytest.approx(direct.coef_)
    unweighted = fit_weighted(_recipe("linear_regression").build(), X, y)
    assert unweighted.named_steps["model"].coef_ != pytest.approx(direct.coef_)


@pytest.mark.parametrize("transform", ["log", "log1p", "yeo_johnson"])
def test_a_transformed_target_is_predicted_in_its_own_units(transform: str) -> None:
    rng = np.random.default_rng(6)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    y = pd.Series(np.exp(2 + 1.5 * X["a"]))
    pipeline = _recipe("linear_regression", transform).build()
    assert isinstance(pipeline.named_steps["model"], TransformedTargetRegressor)
    assert isinstance(final_estimator(pipeline), LinearRegression)
    fit_weighted(pipeline, X, y, np.ones(200))
    predicted = pipeline.predict(X)
    assert np.median(np.abs(predicted / y - 1)) < (0.01 if transform == "log" else 0.5)


def test_log_targets_must_be_positive_and_log1p_ones_not_negative() -> None:
    check_target("price", "log", pd.Series([0.5, 3.0]))
    check_target("price", "log1p", pd.Series([0.0, 3.0]))
    check_target("price", "yeo_johnson", pd.Series([-4.0, 3.0]))
    with pytest.raises(DataError) as info:
        check_target("price", "log", pd.Series([0.0, -2.0, 3.0]))
    assert str(info.value) == (
        "target column 'price': target_transform log needs values greater than 0; 2 are not "
        "(the smallest is -2); use log1p for targets of 0 or more, or yeo_johnson, which takes "
        "any value"
    )
    with pytest.raises(DataError, match="log1p needs values 0 or more; 1 are not"):
        check_target("price", "log1p", pd.Series([0.0, -2.0]))


def test_threshold_tuning_with_weights_fits_and_scores_weighted() -> None:
    rng = np.random.default_rng(7)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = pd.Series(np.where(rng.random(n) < 1 / (1 + np.exp(1.5 - 2 * X["a"])), "yes", "no"))
    weights = rng.uniform(0.2, 5.0, n)
    folds = [
        (np.arange(n)[np.arange(n) % 3 != k], np.arange(n)[np.arange(n) % 3 == k]) for k in range(3)
    ]
    spec = parse_spec(
        """name: c
task: classification
sources: [{path: rows.csv}]
columns:
  - {name: a, type: float}
  - {name: b, type: float}
  - {name: y, type: category, role: target}
models: [{estimator: logistic_regression}]
metric: f1
""",
        Path("/p/pipeline.yaml"),
    ).spec
    recipe = Recipe.from_spec(spec, spec.models[0])
    tuned = tune_threshold(recipe.build(), X, y, folds, "f1", "yes", weights=weights)
    plain = tune_threshold(recipe.build(), X, y, folds, "f1", "yes")
    direct = fit_weighted(recipe.build(), X, y, weights).named_steps["model"]
    assert tuned.model.pipeline.named_steps["model"].coef_ == pytest.approx(direct.coef_)
    assert tuned.cv_score_tuned != pytest.approx(plain.cv_score_tuned)
    assert isinstance(tuned.model.pipeline.named_steps["model"], LogisticRegression)


WEIGHTED = """\
name: w
task: regression
sources: [{path: rows.csv}]
columns:
  - {name: a, type: float}
  - {name: w, type: float, role: weight}
  - {name: y, type: float, role: target}
models:
  - {name: linear, estimator: linear_regression}
metric: rmse
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, Path("/project/pipeline.yaml"))
    return " ".join(str(info.value).split())


def test_a_weight_column_is_not_a_feature() -> None:
    spec = parse_spec(WEIGHTED, Path("/p/pipeline.yaml")).spec
    assert [c.name for c in spec.features] == ["a"]
    assert spec.weight is not None and spec.weight.name == "w"


def test_candidates_that_cannot_take_weights_are_refused_by_name() -> None:
    text = WEIGHTED.replace(
        "  - {name: linear, estimator: linear_regression}\n",
        "  - {name: linear, estimator: linear_regression}\n  - {name: near, estimator: knn}\n",
    )
    message = _error(text)
    assert (
        "models[1].estimator: candidate 'near' (knn) cannot learn from sample weights, and "
        "column 'w' has role weight" in message
    )


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (
            ("type: float, role: weight", "type: string, role: weight"),
            "columns[1].type",
            "integer or float",
        ),
        (
            ("{name: a, type: float}", "{name: a, type: float, role: weight}"),
            "columns[1].role",
            "at most one column with role weight",
        ),
        (
            ("{name: a, type: float}", "{name: a, type: float, target_transform: log}"),
            "columns[0].target_transform",
            "target of a regression only",
        ),
    ],
)
def test_weight_and_transform_mistakes_name_their_field(
    change: tuple[str, str], where: str, says: str
) -> None:
    message = _error(WEIGHTED.replace(*change))
    assert where in message and says in message


def test_resampling_is_refused_with_weights() -> None:
    text = (
        WEIGHTED.replace("task: regression", "task: classification")
        .replace("{name: y, type: float, role: target}", "{name: y, type: category, role: target}")
        .replace("linear_regression", "logistic_regression")
        .replace("metric: rmse", "metric: f1\nimbalance: {strategy: smote}")
    )
    message = _error(text)
    assert "imbalance.strategy" in message
    assert "strategy smote resamples rows, which takes no account of the sample weights" in message
    assert parse_spec(text.replace("smote", "class_weight"), Path("/p/p.yaml")).spec.weight


def test_the_readme_weight_snippet_is_a_valid_spec() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    section = readme.read_text().split("### Sample weights and target transforms", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    text = WEIGHTED.replace(
        "columns:\n  - {name: a, type: float}\n  - {name: w, type: float, role: weight}\n"
        "  - {name: y, type: float, role: target}\n",
        snippet + "  - {name: a, type: float}\n",
    )
    spec = parse_spec(text, Path("/p/pipeline.yaml")).spec
    assert spec.weight is not None and spec.weight.name == "exposure"
    assert spec.target.target_transform == "log1p"
