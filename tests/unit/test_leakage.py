"""Screening features for target leakage: planted leaks are caught on real and generated data sets,
the same data sets without the plant raise no alarm, and every figure is printed (``-s``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier

from mlship.evaluation.diagnosis import UNTRUSTED, diagnose, permutation_importances
from mlship.spec import parse_spec
from mlship.spec.models import ColumnType, PipelineSpec, Task
from mlship.train import leakage
from mlship.train.splits import Fold, cv_folds, train_test_indices

# -- data sets ---------------------------------------------------------------------------------


def _spec(
    task: Task,
    types: dict[str, ColumnType],
    *,
    target_type: ColumnType = "category",
    extra: str = "",
    split: str = "{folds: 5, seed: 3}",
) -> PipelineSpec:
    columns = "\n".join(f"  - {{name: {name}, type: {kind}}}" for name, kind in types.items())
    estimator = "logistic_regression" if task == "classification" else "linear_regression"
    text = f"""name: screened
task: {task}
sources: [{{path: rows.csv}}]
columns:
{columns}
  - {{name: target, type: {target_type}, role: target}}
models: [{{estimator: {estimator}}}]
split: {split}
metric: {"roc_auc" if task == "classification" else "r2"}
{extra}"""
    return parse_spec(text, Path("/project/pipeline.yaml")).spec


def _training_part(spec: PipelineSpec, frame: pd.DataFrame, y: pd.Series) -> Any:
    """The training rows and folds a run of ``spec`` would screen (never the test rows)."""
    frame = frame.reset_index(drop=True)
    y = y.reset_index(drop=True)
    train, _ = train_test_indices(frame, y, spec.split, spec.task)
    X = frame.iloc[train].reset_index(drop=True)
    y_train = y.iloc[train].reset_index(drop=True)
    return X, y_train, cv_folds(X, y_train, spec.split, spec.task)


def _screen(
    task: Task,
    frame: pd.DataFrame,
    y: pd.Series,
    types: dict[str, ColumnType] | None = None,
    *,
    label: str,
    extra: str = "",
) -> leakage.Screening:
    kinds: dict[str, ColumnType] = {str(c): "float" for c in frame.columns}
    kinds.update(types or {})
    target_type: ColumnType = "category" if task == "classification" else "float"
    spec = _spec(task, kinds, target_type=target_type, extra=extra)
    X, y_train, folds = _training_part(spec, frame, y)
    found = leakage.screen(spec, X, y_train, folds)
    _print_figures(label, spec, X, y_train, folds, found)
    return found


def _print_figures(
    label: str,
    spec: PipelineSpec,
    X: pd.DataFrame,
    y: pd.Series,
    folds: Sequence[Fold],
    found: leakage.Screening,
) -> None:
    """The best single-column score of the data set and every suspect, to quote."""
    kinds = {c.name: c.type for c in spec.features}
    figures = {
        name: leakage.single_feature_figure(spec.task, X[name], kinds[name], y, folds)
        for name in X.columns
    }
    best = max(
        ((name, f) for name, f in figures.items() if f is not None), key=lambda i: i[1].figure
    )
    print(
        f"\n[{label}] {len(X)} training rows, {found.seconds:.3f} s; best single column "
        f"{best[0]!r}: {best[1].measure} {best[1].figure:.4f}; suspects: {len(found.suspects)}"
    )
    for suspect in found.suspects:
        print(f"  {suspect.column} / {suspect.test}: {suspect.figure:.4f} - {suspect.sentence}")


def _cancer() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    frame = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    return frame, data.target.map({0: "malignant", 1: "benign"})


def _generated(rows: int = 1200, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    """Orders with a plan, an amount, a count of visits and when each was placed; whether the
    order is returned depends (noisily) on all of them."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 365 * 24 * 3600, rows)), unit="s"
    )
    frame = pd.DataFrame(
        {
            "created_at": created,
            "amount": rng.gamma(2.0, 40.0, rows).round(2),
            "visits": rng.poisson(3, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "signed_up_at": created - pd.to_timedelta(rng.uniform(1, 900, rows), unit="D"),
        }
    )
    logit = -1.0 + 0.01 * frame["amount"] - 0.3 * frame["visits"] + 0.8 * (frame["plan"] == "pro")
    y = pd.Series(np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "returned", "kept"))
    return frame, y


_GENERATED_TYPES: dict[str, ColumnType] = {
    "created_at": "datetime",
    "amount": "float",
    "visits": "integer",
    "plan": "category",
    "signed_up_at": "datetime",
}
_TIME_SPLIT = "{method: timeseries, time: created_at, folds: 4}"


def _screen_generated(frame: pd.DataFrame, y: pd.Series, label: str) -> leakage.Screening:
    types: dict[str, ColumnType] = {
        name: _GENERATED_TYPES.get(name, "datetime" if name.endswith("_at") else "float")
        for name in frame.columns
    }
    spec = _spec("classification", types, split=_TIME_SPLIT)
    X, y_train, folds = _training_part(spec, frame, y)
    found = leakage.screen(spec, X, y_train, folds, X["created_at"])
    _print_figures(label, spec, X, y_train, folds, found)
    return found


# -- no false alarm ----------------------------------------------------------------------------


def test_no_column_of_breast_cancer_wine_or_diabetes_is_suspect() -> None:
    cancer, diagnosis = _cancer()
    wine = load_wine(as_frame=True)
    diabetes = load_diabetes(as_frame=True)
    assert _screen("classification", cancer, diagnosis, label="breast cancer").suspects == ()
    wine_y = wine.target.astype(str)
    assert _screen("classification", wine.data, wine_y, label="wine").suspects == ()
    assert _screen("regression", diabetes.data, diabetes.target, label="diabetes").suspects == ()


def test_no_column_of_a_generated_time_ordered_set_is_suspect() -> None:
    frame, y = _generated()
    found = _screen_generated(frame, y, "generated orders")
    assert found.suspects == ()
    assert found.screened == tuple(frame.columns)


# -- planted leaks -----------------------------------------------------------------------------


def test_the_target_plus_noise_is_caught_in_breast_cancer() -> None:
    frame, diagnosis = _cancer()
    rng = np.random.default_rng(0)
    frame["review_score"] = (diagnosis == "malignant") + rng.normal(0, 0.1, len(frame))
    found = _screen("classification", frame, diagnosis, label="breast cancer + target + noise")
    assert found.columns == ["review_score"]
    (suspect,) = found.suspects
    assert suspect.test == "single-feature score"
    assert suspect.measure == "roc_auc"
    assert suspect.figure >= leakage.AUC_SUSPECT
    assert "ROC AUC" in suspect.sentence and "a shallow decision tree" in suspect.sentence


def test_the_target_re_encoded_as_a_category_is_caught_in_breast_cancer() -> None:
    frame, diagnosis = _cancer()
    frame["coded"] = diagnosis.map({"malignant": "M", "benign": "B"})
    found = _screen(
        "classification", frame, diagnosis, {"coded": "category"}, label="breast cancer + code"
    )
    assert found.columns == ["coded"]
    tests = {s.test: s for s in found.suspects}
    assert set(tests) == {"single-feature score", "deterministic mapping"}
    mapping = tests["deterministic mapping"]
    assert mapping.figure == 1.0
    assert "looks like the target re-encoded" in mapping.sentence


def test_twice_the_target_plus_noise_is_caught_in_diabetes() -> None:
    diabetes = load_diabetes(as_frame=True)
    frame = diabetes.data.copy()
    rng = np.random.default_rng(1)
    frame["billed"] = diabetes.target * 2 + rng.normal(0, 5, len(frame))
    found = _screen("regression", frame, diabetes.target, label="diabetes + 2*target + noise")
    assert found.columns == ["billed"]
    (suspect,) = found.suspects
    assert suspect.measure == "r2"
    assert suspect.figure >= leakage.R2_SUSPECT


def test_a_wine_class_id_with_a_few_typos_is_caught_as_a_mapping() -> None:
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    y = wine.target.astype(str)
    frame["cellar"] = "cellar-" + y
    frame.loc[frame.index[:1], "cellar"] = "cellar-x"  # one typo: a value seen once
    found = _screen("classification", frame, y, {"cellar": "string"}, label="wine + cellar = class")
    assert found.columns == ["cellar"]
    assert {s.test for s in found.suspects} == {"single-feature score", "deterministic mapping"}
    accuracy = next(s for s in found.suspects if s.test == "single-feature score")
    assert accuracy.measure == "accuracy"
    assert "always answering the most common class gives" in accuracy.sentence


def test_a_date_recorded_after_the_prediction_time_is_caught() -> None:
    frame, y = _generated()
    rng = np.random.default_rng(2)
    frame["closed_at"] = frame["created_at"] + pd.to_timedelta(
        rng.uniform(0.5, 40, len(frame)), unit="D"
    )
    found = _screen_generated(frame, y, "generated orders + closed_at")
    assert found.columns == ["closed_at"]
    (suspect,) = found.suspects
    assert suspect.test == "recorded after prediction time"
    assert suspect.figure == 1.0
    assert "'created_at'" in suspect.sentence


def test_a_date_before_the_prediction_time_or_equal_to_it_is_not_suspect() -> None:
    frame, y = _generated()
    frame["copied_at"] = frame["created_at"]  # the same moment: known when predicting
    found = _screen_generated(frame, y, "generated orders + copy of created_at")
    assert found.suspects == ()


# -- the spec key ------------------------------------------------------------------------------


def test_allowed_columns_are_not_screened() -> None:
    frame, diagnosis = _cancer()
    frame["review_score"] = (diagnosis == "malignant").astype(float)
    found = _screen(
        "classification",
        frame,
        diagnosis,
        label="breast cancer + allowed leak",
        extra="leakage: {allow: [review_score]}",
    )
    assert found.suspects == ()
    assert found.allowed == ("review_score",)
    assert "review_score" not in found.screened


def test_fail_stops_with_the_column_and_its_evidence() -> None:
    frame, diagnosis = _cancer()
    frame["review_score"] = (diagnosis == "malignant").astype(float)
    with pytest.raises(leakage.LeakageError) as info:
        _screen("classification", frame, diagnosis, label="fail", extra="leakage: fail")
    message = str(info.value)
    assert "leakage: fail" in message and "nothing was trained or registered" in message
    assert "'review_score' (single-feature score): a shallow decision tree" in message
    assert "leakage.allow" in message


def test_off_screens_nothing() -> None:
    frame, diagnosis = _cancer()
    frame["review_score"] = (diagnosis == "malignant").astype(float)
    spec = _spec("classification", dict.fromkeys(frame.columns, "float"), extra="leakage: off")
    X, y, folds = _training_part(spec, frame, diagnosis)
    assert leakage.screen(spec, X, y, folds) == leakage.Screening("off")


def test_the_spec_takes_a_mode_or_a_mapping_and_checks_allowed_names() -> None:
    types: dict[str, ColumnType] = {"a": "float", "b": "category"}
    assert _spec("classification", types).leakage.mode == "warn"
    assert _spec("classification", types, extra="leakage: fail").leakage.mode == "fail"
    mapped = _spec("classification", types, extra="leakage: {mode: off, allow: [b]}").leakage
    assert (mapped.mode, mapped.allow) == ("off", ["b"])
    from mlship.errors import SpecError

    with pytest.raises(
        SpecError, match=r"line 11, field leakage.allow\[0\]: no feature column is called 'c'"
    ):
        _spec("classification", types, extra="leakage: {allow: [c]}")
    with pytest.raises(
        SpecError,
        match=r"line 11, field leakage.mode: Input should be 'warn', 'fail' or 'off' "
        r"\(got 'sometimes'\)",
    ):
        _spec("classification", types, extra="leakage: sometimes")


# -- after training: permutation importance ---------------------------------------------------


def _evaluated(frame: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """What a run's evaluation holds for a forest on ``frame``: the diagnosis and the test-set
    permutation importance."""
    spec = _spec("classification", dict.fromkeys(frame.columns, "float"))
    train, test = train_test_indices(frame, y, spec.split, spec.task)
    X_train, y_train = frame.iloc[train], y.iloc[train]
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X_train, y_train)
    X_part, y_part = X_train.reset_index(drop=True), y_train.reset_index(drop=True)
    folds = cv_folds(X_part, y_part, spec.split, spec.task)
    return {
        "diagnosis": diagnose(
            "classification",
            model,
            X_part,
            y_part,
            metric="roc_auc",
            cv=folds,
            fold_scores=[],
            seed=0,
            n_jobs=1,
        ),
        "importance": permutation_importances(
            "classification",
            model,
            frame.iloc[test],
            y.iloc[test],
            metric="roc_auc",
            seed=0,
            n_jobs=1,
        ),
    }


def test_a_column_whose_importance_dwarfs_the_rest_is_suspect_and_the_verdict_withheld() -> None:
    frame, diagnosis = _cancer()
    clean = _evaluated(frame, diagnosis)
    top = clean["importance"]["columns"][:2]
    print(f"\n[breast cancer forest] top importances {top}")
    assert leakage.dominant_importance(clean, ()) is None
    frame = frame.assign(review_score=(diagnosis == "malignant").astype(float))
    leaky = _evaluated(frame, diagnosis)
    found = leakage.dominant_importance(leaky, ())
    print(f"[breast cancer forest + leak] {leaky['importance']['columns'][:2]}\n  {found}")
    assert found is not None and found.column == "review_score"
    assert found.test == "dominant importance" and found.figure >= leakage.DOMINANCE_SHARE
    assert leakage.dominant_importance(leaky, ("review_score",)) is None

    details: dict[str, Any] = {}
    leakage.conclude(leakage.Screening("warn"), leaky, details)
    assert details["leakage"]["suspects"][0]["column"] == "review_score"
    fit = leaky["diagnosis"]["fit"]
    assert fit["verdict"] == UNTRUSTED and fit["withheld"] == "a good fit"
    assert "cannot be trusted until the suspect column(s) 'review_score'" in fit["reason"]
    with pytest.raises(leakage.LeakageError, match="dominant importance"):
        leakage.conclude(leakage.Screening("fail"), _evaluated(frame, diagnosis), {})


# -- adversarial columns -----------------------------------------------------------------------

_CELLS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.sampled_from(["", "a", "b", " ", "\u00e9"]),
)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    cells=st.lists(st.lists(_CELLS, min_size=3, max_size=3), min_size=30, max_size=80),
    labels=st.lists(st.sampled_from(["x", "y"]), min_size=30, max_size=80),
)
def test_odd_columns_never_break_the_screen(cells: list[list[Any]], labels: list[str]) -> None:
    """Missing values, constant columns, mixed text and numbers: the screen answers."""
    rows = min(len(cells), len(labels))
    frame = pd.DataFrame(cells[:rows], columns=["n", "c", "d"]).astype(object)
    y = pd.Series(labels[:rows])
    if y.nunique() < 2:
        y.iloc[0] = "y" if y.iloc[0] == "x" else "x"
    kinds: dict[str, ColumnType] = {"n": "float", "c": "category", "d": "datetime"}
    spec = _spec("classification", kinds, split="{folds: 3, seed: 1, stratify: false}")
    folds = [(np.arange(0, rows, 2), np.arange(1, rows, 2))] * 2
    found = leakage.screen(spec, frame, y, folds, frame["d"])
    assert found.screened == ("n", "c", "d")
    for suspect in found.suspects:
        assert suspect.column in kinds and np.isfinite(suspect.figure)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 2.5])),
        min_size=2,
        max_size=60,
    )
)
def test_the_screens_auc_is_scikit_learns(pairs: list[tuple[int, float]]) -> None:
    from sklearn.metrics import roc_auc_score

    truth = np.array([t for t, _ in pairs])
    score = np.array([s for _, s in pairs])
    if len(set(truth.tolist())) < 2:
        truth[0] = 1 - truth[0]
    assert leakage._auc(truth, score) == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
