"""The evaluation of a trained model on real small scikit-learn problems: bootstrap intervals,
curves, the fit verdict, permutation importance, and the JSON and HTML report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlship.evaluation import evaluate, render_evaluation_html, write_evaluation_report
from mlship.evaluation.curves import downsample, regression_points
from mlship.evaluation.diagnosis import diagnose, fit_verdict, permutation_importances
from mlship.evaluation.metrics import (
    classification_metrics,
    regression_metrics,
    resample_weights,
)
from mlship.features.preprocess import build_pipeline
from mlship.html import svg
from mlship.spec.data import Column
from mlship.spec.models import Task
from mlship.train.cost import Usage
from mlship.train.folds import FoldResult
from mlship.train.metrics import METRICS, compute_metrics
from mlship.train.scoring import predict_outputs, score
from tests.html_structure import parse_page

HOSTILE = "<script>alert(1)</script>"
HOSTILE_COLUMN = "<img src=x onerror=alert(1)>"
RUN = {
    "id": "run-0001",
    "pipeline": "cancer",
    "model": "logistic",
    "estimator": "sklearn.linear_model.LogisticRegression",
    "dataset_hash": "ab" * 32,
    "created": "2026-03-14T09:26:53+00:00",
}


# -- fitted problems -------------------------------------------------------------------------


@dataclass
class Case:
    task: Task
    model: Any
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    folds: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]
    scores: list[FoldResult]

    def evaluate(self, metric: str, seed: int = 7, **options: Any) -> dict[str, Any]:
        return evaluate(
            self.task,
            self.model,
            self.X_train,
            self.y_train,
            self.X_test,
            self.y_test,
            metric=metric,
            cv=self.folds,
            fold_scores=self.scores,
            seed=seed,
            n_jobs=1,
            **options,
        )

    def diagnose(self, metric: str) -> dict[str, Any]:
        return diagnose(
            self.task,
            self.model,
            self.X_train,
            self.y_train,
            metric=metric,
            cv=self.folds,
            fold_scores=self.scores,
            seed=0,
            n_jobs=1,
        )


def fit_case(
    task: Task,
    X: pd.DataFrame,
    y: pd.Series,
    estimator: Any,
    *,
    train_rows: int | None = None,
    test_size: float = 0.25,
) -> Case:
    """Split, cross-validate and fit ``estimator`` in mlship's own pipeline, as a run does (the
    browser test fits its reports' models with this too)."""
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=test_size,
        random_state=0,
        stratify=y if task == "classification" else None,
    )
    X_train, X_test = X_train.reset_index(drop=True), X_test.reset_index(drop=True)
    y_train, y_test = y_train.reset_index(drop=True), y_test.reset_index(drop=True)
    if train_rows is not None:
        X_train, y_train = X_train.iloc[:train_rows], y_train.iloc[:train_rows]
    columns = [
        Column(name=str(c), type="float" if pd.api.types.is_numeric_dtype(X[c]) else "category")
        for c in X.columns
    ]
    model = build_pipeline(columns, estimator)
    splitter = StratifiedKFold if task == "classification" else KFold
    folds = list(splitter(n_splits=5, shuffle=True, random_state=0).split(X_train, y_train))
    scores = [_fold(task, model, X_train, y_train, i, fold) for i, fold in enumerate(folds)]
    model.fit(X_train, y_train)
    return Case(task, model, X_train, y_train, X_test, y_test, folds, scores)


def _fold(
    task: Task, model: Any, X: pd.DataFrame, y: pd.Series, number: int, fold: Any
) -> FoldResult:
    """One fold of cross-validation, scored as a run scores it."""
    train_index, valid_index = fold
    fitted = clone(model).fit(X.iloc[train_index], y.iloc[train_index])
    return FoldResult(
        candidate="candidate",
        fold=number,
        trial=-1,
        validation=score(task, fitted, X.iloc[valid_index], y.iloc[valid_index]),
        train=score(task, fitted, X.iloc[train_index], y.iloc[train_index]),
        fit_seconds=0.0,
        usage=Usage.zero(),
    )


def cancer_data() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target.map({0: "malignant", 1: "benign"})


def diabetes_data() -> tuple[pd.DataFrame, pd.Series]:
    data = load_diabetes(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="module")
def cancer() -> Case:
    return fit_case("classification", *cancer_data(), LogisticRegression(max_iter=2000))


@pytest.fixture(scope="module")
def cancer_evaluation(cancer: Case) -> dict[str, Any]:
    return cancer.evaluate("roc_auc")


@pytest.fixture(scope="module")
def diabetes() -> Case:
    return fit_case("regression", *diabetes_data(), Ridge())


@pytest.fixture(scope="module")
def diabetes_evaluation(diabetes: Case) -> dict[str, Any]:
    return diabetes.evaluate("rmse")


def _held_out_predictions(rows: int) -> tuple[np.ndarray[Any, Any], ...]:
    """Predictions of a logistic regression on ``rows`` rows it was not trained on."""
    X, y = make_classification(
        n_samples=1000 + rows, n_features=8, n_informative=4, weights=[0.8], random_state=3
    )
    labels = np.where(y == 1, "yes", "no")
    model = LogisticRegression(max_iter=1000).fit(X[:1000], labels[:1000])
    proba = model.predict_proba(X[1000:])
    return labels[1000:], model.predict(X[1000:]), proba, model.classes_


# -- metrics with intervals ------------------------------------------------------------------


def _assert_matches(task: Task, ours: dict[str, Any], reference: dict[str, float]) -> None:
    """Every metric of the task is reported, and each equals scikit-learn's (to the rounding)."""
    assert list(ours["values"]) == list(METRICS[task])
    for name, value in reference.items():
        assert ours["values"][name]["value"] == pytest.approx(value, rel=1e-5, abs=1e-9), name


def test_point_estimates_equal_the_training_metrics(cancer: Case, diabetes: Case) -> None:
    predictions, proba = predict_outputs(cancer.model, cancer.X_test, "classification")
    classes = cancer.model.classes_
    ours = classification_metrics(cancer.y_test, predictions, proba, classes, resamples=50)
    reference = compute_metrics("classification", cancer.y_test, predictions, proba, classes)
    _assert_matches("classification", ours, reference)

    iris = load_iris(as_frame=True)
    X, y = iris.data, iris.target.map(dict(enumerate(iris.target_names)))
    model = LogisticRegression(max_iter=1000).fit(X, y)
    proba = model.predict_proba(X)
    ours = classification_metrics(y, model.predict(X), proba, model.classes_, resamples=50)
    reference = compute_metrics("classification", y, model.predict(X), proba, model.classes_)
    assert {"roc_auc", "average_precision", "brier", "mcc"} <= set(reference)
    _assert_matches("classification", ours, reference)

    predictions, _ = predict_outputs(diabetes.model, diabetes.X_test, "regression")
    ours = regression_metrics(diabetes.y_test, predictions, resamples=50)
    _assert_matches("regression", ours, compute_metrics("regression", diabetes.y_test, predictions))


def test_every_interval_contains_its_point_estimate(
    cancer_evaluation: dict[str, Any], diabetes_evaluation: dict[str, Any]
) -> None:
    for evaluation in (cancer_evaluation, diabetes_evaluation):
        metrics = evaluation["metrics"]
        assert metrics["resamples"] == 1000 and metrics["confidence"] == 0.95
        for name, entry in metrics["values"].items():
            assert entry["value"] is not None, name
            assert entry["low"] <= entry["value"] <= entry["high"], (name, entry)
    for entry in cancer_evaluation["metrics"]["per_class"]["f1"]:
        assert entry["low"] <= entry["value"] <= entry["high"]


def test_intervals_narrow_with_more_test_rows() -> None:
    y, predictions, proba, classes = _held_out_predictions(4000)
    few = classification_metrics(y[:250], predictions[:250], proba[:250], classes, seed=1)
    many = classification_metrics(y, predictions, proba, classes, seed=1)
    for name in METRICS["classification"]:
        narrow = many["values"][name]["high"] - many["values"][name]["low"]
        wide = few["values"][name]["high"] - few["values"][name]["low"]
        assert narrow < wide, name

    rng = np.random.default_rng(5)
    truth = rng.normal(100, 20, 4000)
    guess = truth + rng.normal(0, 10, 4000)
    few_r = regression_metrics(truth[:200], guess[:200], seed=1)
    many_r = regression_metrics(truth, guess, seed=1)
    for name in METRICS["regression"]:
        narrow = many_r["values"][name]["high"] - many_r["values"][name]["low"]
        wide = few_r["values"][name]["high"] - few_r["values"][name]["low"]
        assert narrow < wide, name


def test_stratified_resamples_never_lose_a_class() -> None:
    labels = np.array(["rare"] * 3 + ["common"] * 297)
    chunks = list(resample_weights(300, 1000, seed=0, strata=labels))
    weights = np.vstack(chunks)
    assert weights.shape == (1000, 300)
    assert (weights.sum(axis=1) == 300).all()
    assert (
        weights[:, :3].sum(axis=1) == 3
    ).all()  # every resample keeps the three rare rows' count
    # Without strata a one-class resample is common here: this is what stratifying prevents.
    plain = np.vstack(list(resample_weights(300, 1000, seed=0)))
    assert (plain[:, :3].sum(axis=1) == 0).any()

    proba = np.column_stack([np.linspace(0.9, 0.1, 300), np.linspace(0.1, 0.9, 300)])
    predicted = np.where(proba[:, 1] > 0.5, "rare", "common")
    result = classification_metrics(labels, predicted, proba, ["common", "rare"], seed=0)
    assert result["stratified"] is True
    assert result["values"]["roc_auc"]["low"] is not None


def test_the_bootstrap_is_seeded() -> None:
    y, predictions, proba, classes = _held_out_predictions(2000)
    first = classification_metrics(y, predictions, proba, classes, seed=11)
    assert first == classification_metrics(y, predictions, proba, classes, seed=11)
    assert first != classification_metrics(y, predictions, proba, classes, seed=12)

    rng = np.random.default_rng(0)
    truth = rng.normal(size=2000)
    guessed = truth + rng.normal(size=2000)
    once = regression_metrics(truth, guessed, seed=11)
    assert once == regression_metrics(truth, guessed, seed=11)
    assert once != regression_metrics(truth, guessed, seed=12)


def test_mape_leaves_out_zero_targets_and_says_so() -> None:
    result = regression_metrics([0.0, 10.0, 20.0, 0.0], [1.0, 11.0, 18.0, 2.0], resamples=20)
    assert result["values"]["mape"]["value"] == pytest.approx((0.1 + 0.1) / 2)
    assert result["notes"] == ["MAPE leaves out 2 rows whose true value is 0."]
    all_zero = regression_metrics([0.0, 0.0], [1.0, 2.0], resamples=20)
    assert all_zero["values"]["mape"] == {
        "value": None,
        "low": None,
        "high": None,
        "greater_is_better": False,
    }


def test_positive_label_picks_the_class_binary_metrics_describe(cancer: Case) -> None:
    predictions, proba = predict_outputs(cancer.model, cancer.X_test, "classification")
    classes = cancer.model.classes_
    default = classification_metrics(cancer.y_test, predictions, proba, classes, resamples=20)
    benign = classification_metrics(
        cancer.y_test, predictions, proba, classes, positive_label="benign", resamples=20
    )
    assert default["positive_label"] == "malignant" and benign["positive_label"] == "benign"
    per_class = {e["label"]: e["value"] for e in default["per_class"]["f1"]}
    assert default["values"]["f1"]["value"] == per_class["malignant"]
    assert benign["values"]["f1"]["value"] == per_class["benign"]
    with pytest.raises(ValueError, match="not one of the classes"):
        classification_metrics(cancer.y_test, predictions, proba, classes, positive_label="x")


# -- curves ----------------------------------------------------------------------------------


def test_classification_curves_are_well_formed(cancer_evaluation: dict[str, Any]) -> None:
    curves = cancer_evaluation["curves"]
    test_rows = cancer_evaluation["rows"]["test"]

    matrix = curves["confusion_matrix"]
    assert matrix["labels"] == ["benign", "malignant"]
    assert sum(map(sum, matrix["counts"])) == test_rows
    for row in matrix["normalized"]:
        assert sum(row) == pytest.approx(1.0, abs=1e-3)

    (roc,) = curves["roc"]["series"]
    assert roc["label"] == "malignant"
    assert len(roc["fpr"]) == len(roc["tpr"]) <= 200
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert roc["auc"] == pytest.approx(cancer_evaluation["metrics"]["values"]["roc_auc"]["value"])

    (pr,) = curves["precision_recall"]["series"]
    assert len(pr["recall"]) == len(pr["precision"]) <= 200
    assert pr["recall"][0] == 0 and pr["recall"][-1] == 1
    assert np.all(np.diff(pr["recall"]) >= 0)
    assert all(0 <= p <= 1 for p in pr["precision"])
    assert 0 < pr["prevalence"] < 1

    (calibration,) = curves["calibration"]["series"]
    assert sum(calibration["count"]) == test_rows
    assert (
        len(calibration["predicted"]) == len(calibration["observed"]) == len(calibration["count"])
    )
    assert all(0 <= v <= 1 for v in calibration["predicted"] + calibration["observed"])


def test_long_curves_are_downsampled_keeping_their_ends() -> None:
    xs = np.sort(np.random.default_rng(0).random(10_000))
    xs[0], xs[-1] = 0.0, 1.0
    small_x, _ = downsample(xs, np.sqrt(xs))
    assert len(small_x) <= 200
    assert (small_x[0], small_x[-1]) == (0.0, 1.0)
    assert np.all(np.diff(small_x) >= 0)
    assert downsample(xs[:50], xs[:50])[0].tolist() == xs[:50].tolist()


def test_regression_points_are_a_seeded_sample(diabetes_evaluation: dict[str, Any]) -> None:
    points = diabetes_evaluation["curves"]["points"]
    assert points["shown"] == points["total"] == diabetes_evaluation["rows"]["test"]
    for actual, predicted, residual in zip(
        points["actual"], points["predicted"], points["residual"], strict=True
    ):
        assert residual == pytest.approx(actual - predicted, abs=0.2)
    rng = np.random.default_rng(1)
    truth = rng.normal(size=5000)
    sampled = regression_points(truth, truth * 0.9, seed=3)
    assert sampled["shown"] == 500 and sampled["total"] == 5000
    assert sampled == regression_points(truth, truth * 0.9, seed=3)


# -- the fit verdict -------------------------------------------------------------------------


def test_a_sensible_model_is_a_good_fit(
    cancer_evaluation: dict[str, Any], diabetes_evaluation: dict[str, Any]
) -> None:
    for evaluation in (cancer_evaluation, diabetes_evaluation):
        fit = evaluation["diagnosis"]["fit"]
        assert fit["verdict"] == "a good fit", fit
        assert fit["source"] == "cross-validation" and fit["folds"] == 5
        assert fit["reason"] and fit["advice"]
    fit = cancer_evaluation["diagnosis"]["fit"]
    assert fit["baseline"] == pytest.approx(0.5)  # class priors rank nothing
    assert fit["gap_kind"] == "absolute"
    assert diabetes_evaluation["diagnosis"]["fit"]["gap_kind"] != "absolute"


def test_a_deep_tree_on_few_rows_is_overfitting() -> None:
    tree = fit_case(
        "classification", *cancer_data(), DecisionTreeClassifier(random_state=0), train_rows=120
    )
    fit = tree.diagnose("accuracy")["fit"]
    assert fit["verdict"] == "overfitting", fit
    assert fit["train"] == 1.0 and fit["gap"] > 0.05
    assert "regularisation" in fit["advice"]

    tree_r = fit_case(
        "regression", *diabetes_data(), DecisionTreeRegressor(random_state=0), train_rows=150
    )
    assert tree_r.diagnose("mae")["fit"]["verdict"] == "overfitting"


def test_a_dummy_like_model_is_underfitting() -> None:
    dummy = fit_case("classification", *cancer_data(), DummyClassifier(strategy="prior"))
    fit = dummy.diagnose("balanced_accuracy")["fit"]
    assert fit["verdict"] == "underfitting", fit
    assert fit["validation_skill"] == pytest.approx(0.0, abs=1e-6)

    stiff = fit_case("regression", *diabetes_data(), Ridge(alpha=1e5))
    assert stiff.diagnose("r2")["fit"]["verdict"] == "underfitting"


def test_the_verdict_measures_errors_against_the_baseline() -> None:
    def verdict(train: float, valid: float, base: float, metric: str = "rmse") -> str:
        task: Task = "regression" if metric == "rmse" else "classification"
        result = fit_verdict(task, metric, [train] * 5, [valid] * 5, [base] * 5)
        return str(result["verdict"])

    assert verdict(10, 11.9, 20) == "a good fit"  # the gap is 9.5% of the baseline's error
    assert verdict(10, 12.5, 20) == "overfitting"  # 12.5%
    assert verdict(19, 19.5, 20) == "underfitting"
    assert verdict(0.95, 0.92, 0.6, "accuracy") == "a good fit"
    assert verdict(0.98, 0.90, 0.6, "accuracy") == "overfitting"
    assert verdict(0.63, 0.62, 0.6, "accuracy") == "underfitting"


def test_the_learning_curve_has_five_sizes(cancer_evaluation: dict[str, Any]) -> None:
    curve = cancer_evaluation["diagnosis"]["learning_curve"]
    assert curve["metric"] == "roc_auc"
    assert len(curve["train_sizes"]) == 5
    assert curve["train_sizes"] == sorted(curve["train_sizes"])
    for key in ("train_mean", "train_std", "validation_mean", "validation_std"):
        assert len(curve[key]) == 5 and all(v is not None for v in curve[key])
    baseline = cancer_evaluation["diagnosis"]["baseline"]
    assert baseline["strategy"] == "class priors" and len(baseline["scores"]) == 5


# -- importance ------------------------------------------------------------------------------


def test_importance_ranks_an_informative_column_above_noise() -> None:
    rng = np.random.default_rng(0)
    rows = 600
    frame = pd.DataFrame(
        {
            "noise": rng.normal(size=rows),
            "signal": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
        }
    )
    target = pd.Series(np.where(frame["signal"] + rng.normal(0, 0.3, rows) > 0, "yes", "no"))
    case = fit_case("classification", frame, target, LogisticRegression(max_iter=1000))
    importance = permutation_importances(
        "classification", case.model, case.X_test, case.y_test, metric="accuracy", seed=0, n_jobs=1
    )
    names = [column["name"] for column in importance["columns"]]
    assert sorted(names) == ["colour", "noise", "signal"]  # raw inputs, not encoded columns
    assert names[0] == "signal"
    by_name = {column["name"]: column["mean"] for column in importance["columns"]}
    assert by_name["signal"] > by_name["noise"] + 0.2
    assert importance["repeats"] == 5


# -- the report ------------------------------------------------------------------------------


def test_the_evaluation_is_plain_json_with_stable_keys(
    cancer_evaluation: dict[str, Any], cancer: Case
) -> None:
    text = json.dumps(cancer_evaluation, allow_nan=False)
    assert json.loads(text) == cancer_evaluation
    assert list(cancer_evaluation) == [
        "format",
        "task",
        "metric",
        "rows",
        "columns",
        "classes",
        "metrics",
        "curves",
        "diagnosis",
        "importance",
    ]
    # Another model of the same task: the same keys, whatever it could compute.
    svc = fit_case("classification", *cancer_data(), SVC())
    other = svc.evaluate("accuracy")
    assert list(other) == list(cancer_evaluation)
    assert list(other["metrics"]["values"]) == list(cancer_evaluation["metrics"]["values"])
    assert list(other["curves"]) == list(cancer_evaluation["curves"])
    assert other["metrics"]["values"]["roc_auc"]["value"] is None
    assert other["curves"]["roc"] is None
    assert "no class probabilities" in other["metrics"]["notes"][0]
    page = render_evaluation_html("svc", other, RUN)
    parse_page(page)
    assert "the model gives no class probabilities" in page


def test_a_multiclass_model_gets_a_curve_per_class() -> None:
    iris = load_iris(as_frame=True)
    y = iris.target.map(dict(enumerate(iris.target_names)))
    case = fit_case("classification", iris.data, y, LogisticRegression(max_iter=1000))
    evaluation = case.evaluate("f1")
    assert evaluation["metrics"]["positive_label"] is None
    assert len(evaluation["metrics"]["per_class"]["f1"]) == 3
    assert [s["label"] for s in evaluation["curves"]["roc"]["series"]] == list(iris.target_names)
    assert len(evaluation["curves"]["confusion_matrix"]["counts"]) == 3
    parse_page(render_evaluation_html("iris", evaluation, RUN))


def test_write_evaluation_report_writes_both_files_atomically(
    tmp_path: Path, diabetes_evaluation: dict[str, Any]
) -> None:
    json_path, html_path = write_evaluation_report(
        tmp_path / "reports", "diabetes-evaluation", diabetes_evaluation, RUN
    )
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "diabetes-evaluation.html",
        "diabetes-evaluation.json",
    ]
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document == {
        "name": "diabetes-evaluation",
        "run": RUN,
        "evaluation": diabetes_evaluation,
    }
    page = html_path.read_text(encoding="utf-8")
    assert page == render_evaluation_html("diabetes-evaluation", diabetes_evaluation, RUN)
    with pytest.raises(ValueError, match="plain file name"):
        write_evaluation_report(tmp_path, "../escape", diabetes_evaluation, RUN)


def test_the_page_shows_the_run_and_every_section(cancer_evaluation: dict[str, Any]) -> None:
    page = render_evaluation_html("cancer-evaluation", cancer_evaluation, RUN)
    parsed = parse_page(page)
    text = " ".join(parsed.text)
    for fact in RUN.values():
        assert fact in text or fact.startswith("2026")
    assert "2026-03-14 09:26:53 UTC" in text
    assert "The test set was scored once, by the selected model, after selection." in text
    assert "a good fit" in text
    ids = {attrs.get("id") for _, attrs in parsed.starts}
    assert {"metrics", "fit", "curves", "importance"} <= ids
    labels = [attrs.get("aria-label") or "" for tag, attrs in parsed.starts if tag == "svg"]
    for chart in ("ROC curve", "precision-recall curve", "calibration curve", "learning curve"):
        assert any(label.startswith(chart) for label in labels), chart
    assert any(label.startswith("permutation importance") for label in labels)
    assert 'class="heat"' in page  # the confusion matrix
    lowered = page.lower()
    for needle in ("<script", "<link", "@import", "url(", 'src="http', 'href="http'):
        assert needle not in lowered


def test_class_labels_and_column_names_are_escaped() -> None:
    X, y = cancer_data()
    X = X.iloc[:, :4].rename(columns={X.columns[0]: HOSTILE_COLUMN})
    case = fit_case(
        "classification",
        X,
        y.map({"malignant": HOSTILE, "benign": "benign"}),
        LogisticRegression(max_iter=2000),
    )
    evaluation = case.evaluate("accuracy")
    assert HOSTILE in evaluation["classes"]
    run = {**RUN, "model": HOSTILE, "note": "<b>bold</b>"}
    page = render_evaluation_html(f"report {HOSTILE}", evaluation, run)
    assert "<script" not in page.lower()
    assert "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = "".join(parse_page(page).text)
    assert HOSTILE in text and HOSTILE_COLUMN in text and "<b>bold</b>" in text


# -- the chart helpers -----------------------------------------------------------------------


def test_line_and_scatter_charts_are_well_formed_and_escaped() -> None:
    chart = svg.line_chart(
        [
            svg.guide("chance", [0, 1], [0, 1]),
            svg.Series(HOSTILE, [0, 0.5, float("nan"), 1], [0, 0.8, 0.9, 1], markers=True),
        ],
        x=svg.Axis("x", 0, 1),
        y=svg.Axis("y <axis>"),
        label="a line chart",
    )
    parsed = parse_page(chart)
    assert HOSTILE not in chart and "y &lt;axis&gt;" in chart
    assert sum(1 for tag, _ in parsed.starts if tag == "polyline") == 2
    assert sum(1 for tag, _ in parsed.starts if tag == "circle") >= 3  # the NaN point is left out
    scatter = svg.scatter_chart([1, 2, 3], [3, 1, 2], x=svg.Axis("a"), y=svg.Axis("b"))
    assert sum(1 for tag, _ in parse_page(scatter).starts if tag == "circle") == 3
    assert "no values" in svg.line_chart([], x=svg.Axis("a"), y=svg.Axis("b"))


def test_axis_ranges_are_round() -> None:
    assert svg.nice_range(0, 1, fixed_low=True, fixed_high=True)[2] == pytest.approx(
        [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    )
    low, high, ticks = svg.nice_range(37.2, 81.9)
    assert low <= 37.2 and high >= 81.9 and ticks[0] >= low and ticks[-1] <= high
    assert [svg.tick_label(t, ticks) for t in ticks] == [f"{t:,.0f}" for t in ticks]
    assert svg.tick_label(0.25, [0, 0.25, 0.5]) == "0.25"


def test_fold_metrics_match_scikit_learn_on_labels_as_they_are() -> None:
    from sklearn import metrics as skm

    from mlship.train.metrics import compute_metric, compute_metrics

    rng = np.random.default_rng(5)
    truth = np.where(rng.random(500) < 0.2, "churn", "stay").astype(object)
    predicted = np.where(rng.random(500) < 0.2, "churn", "stay").astype(object)
    proba = rng.random((500, 2))
    proba /= proba.sum(axis=1, keepdims=True)
    found = compute_metrics("classification", truth, predicted, proba, ["churn", "stay"], "churn")
    assert found["f1"] == pytest.approx(skm.f1_score(truth, predicted, pos_label="churn"))
    assert found["recall"] == pytest.approx(skm.recall_score(truth, predicted, pos_label="churn"))
    assert found["mcc"] == pytest.approx(skm.matthews_corrcoef(truth, predicted))
    expected_ap = skm.average_precision_score(truth == "churn", proba[:, 0])
    assert found["average_precision"] == pytest.approx(expected_ap)
    assert found["log_loss"] == pytest.approx(skm.log_loss(truth, proba, labels=["churn", "stay"]))
    # A label the model never saw (not among its classes) is scored as it is, not mistaken.
    truth[0] = "unknown"
    odd = compute_metric("classification", "accuracy", truth, predicted, None, ["churn", "stay"])
    assert odd == pytest.approx(skm.accuracy_score(truth, predicted))
