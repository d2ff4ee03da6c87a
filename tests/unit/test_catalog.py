"""The model catalog and its search spaces: every entry trains inside the project's pipeline,
pickles, and has a default space whose every point builds a valid estimator."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone

from mlship.features.preprocess import build_pipeline
from mlship.spec.data import Column
from mlship.spec.models import ModelSpec, Task
from mlship.spec.training import Choice, FloatRange, IntRange
from mlship.train.catalog import CATALOG, build_estimator, resolve_estimator_class
from mlship.train.estimators import CalibratedSVC
from mlship.train.spaces import (
    SPACES,
    SpaceError,
    check_space,
    decode_optuna,
    default_space,
    grid,
    grid_axes,
    grid_size,
    resolve_space,
    sample_optuna,
)
from mlship.train.xgb import XGBLabelClassifier

optuna.logging.set_verbosity(optuna.logging.WARNING)

FEATURES = [
    Column(name="age", type="float"),
    Column(name="visits", type="integer"),
    Column(name="plan", type="category"),
]

# Few trees and rounds: these tests check that entries work, not how well.
FAST: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 8},
    "extra_trees": {"n_estimators": 8},
    "gradient_boosting": {"n_estimators": 8},
    "hist_gradient_boosting": {"max_iter": 8},
    "lightgbm": {"n_estimators": 8},
    "xgboost": {"n_estimators": 8},
}
ROUNDS = ("n_estimators", "max_iter")

ENTRIES = [(task, name) for task in ("classification", "regression") for name in CATALOG[task]]


def _frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n)
    age[::17] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "visits": rng.integers(0, 30, n),
            "plan": rng.choice(["basic", "plus", "pro"], n).astype(object),
        }
    )


def _target(frame: pd.DataFrame, task: Task, classes: int = 2) -> pd.Series:
    signal = frame["visits"].to_numpy() + np.nan_to_num(frame["age"].to_numpy(), nan=40) / 4
    if task == "regression":
        return pd.Series(signal * 1.5 + 3.0, name="spend")
    labels = np.array(["no", "yes", "maybe"][:classes], dtype=object)
    cuts = np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1])
    return pd.Series(labels[np.searchsorted(cuts, signal)], name="churned")


@pytest.mark.parametrize(("task", "name"), ENTRIES)
def test_every_entry_fits_predicts_and_pickles_inside_the_pipeline(task: Task, name: str) -> None:
    X = _frame()
    y = _target(X, task)
    model = build_pipeline(FEATURES, build_estimator(name, task, FAST.get(name, {})))
    model.fit(X, y)
    predicted = model.predict(X)
    assert len(predicted) == len(X)
    if task == "classification":
        assert set(predicted) <= {"no", "yes"}
        assert list(model.classes_) == ["no", "yes"]
        proba = model.predict_proba(X)
        assert proba.shape == (len(X), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    else:
        assert np.isfinite(np.asarray(predicted, dtype=float)).all()
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), predicted)


@pytest.mark.parametrize("name", ["lightgbm", "xgboost"])
def test_boosting_libraries_take_string_labels_of_several_classes(name: str) -> None:
    X = _frame(150)
    y = _target(X, "classification", classes=3)
    model = build_pipeline(FEATURES, build_estimator(name, "classification", FAST[name]))
    model.fit(X, y)
    assert list(model.classes_) == ["maybe", "no", "yes"]
    assert set(model.predict(X)) <= {"maybe", "no", "yes"}
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    best = np.asarray(model.classes_)[proba.argmax(axis=1)]
    np.testing.assert_array_equal(best, model.predict(X))
    # A clone of the fitted model starts afresh, even on two classes.
    binary = clone(model).fit(X, _target(X, "classification"))
    assert list(binary.classes_) == ["no", "yes"]


def test_xgboost_classifier_keeps_its_parameters_and_original_labels() -> None:
    X = np.random.default_rng(1).random((90, 3))
    y = np.array(["b", "a", "c"] * 30, dtype=object)
    model = XGBLabelClassifier(n_estimators=5)
    before = model.get_params()
    model.fit(X, y)
    assert model.get_params() == before  # XGBoost alone would switch the objective
    assert list(model.classes_) == ["a", "b", "c"]
    restored = pickle.loads(pickle.dumps(model))
    assert list(restored.classes_) == ["a", "b", "c"]
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    booleans = XGBLabelClassifier(n_estimators=5).fit(X, X[:, 0] > 0.5)
    assert booleans.predict(X).dtype == bool


def test_calibrated_svm_probabilities_agree_with_its_predictions() -> None:
    X = _frame()
    y = _target(X, "classification")
    model = build_pipeline(FEATURES, build_estimator("svm", "classification", {"C": 2.0}))
    model.fit(X, y)
    svm = model.named_steps["model"]
    assert isinstance(svm, CalibratedSVC)
    best = np.asarray(model.classes_)[model.predict_proba(X).argmax(axis=1)]
    np.testing.assert_array_equal(best, model.predict(X))
    assert model.decision_function(X).shape == (len(X),)


def test_catalog_defaults_sit_under_the_spec_params() -> None:
    assert build_estimator("lightgbm", "classification", {}).get_params()["verbose"] == -1
    assert build_estimator("lightgbm", "regression", {"verbose": 0}).get_params()["verbose"] == 0
    assert build_estimator("logistic_regression", "classification", {}).max_iter == 1000


def test_every_catalog_entry_has_a_default_space_with_valid_keys() -> None:
    for task in ("classification", "regression"):
        assert set(SPACES[task]) == set(CATALOG[task])
        for name, space in SPACES[task].items():
            assert space, f"{task} {name} has an empty default space"
            cls = resolve_estimator_class(name, task)
            assert check_space(space, cls) == [], (task, name)


@pytest.mark.parametrize(("task", "name"), ENTRIES)
def test_random_points_of_every_default_space_build_and_fit(task: Task, name: str) -> None:
    X = _frame(80)
    y = _target(X, task)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    for _ in range(2):
        trial = study.ask()
        params = sample_optuna(trial, default_space(name, task))
        estimator = build_estimator(name, task, params)  # validates the parameters
        fast = {key: 8 for key in ROUNDS if key in params}
        build_pipeline(FEATURES, build_estimator(name, task, {**params, **fast})).fit(X, y)
        study.tell(trial, 0.0)
        assert estimator.get_params()[next(iter(params))] == params[next(iter(params))]


def test_resolve_space_default_dict_and_none() -> None:
    assert resolve_space(ModelSpec(estimator="random_forest"), "classification") == {}
    fixed = ModelSpec(estimator="random_forest", params={"max_depth": 3}, search="default")
    space = resolve_space(fixed, "classification")
    assert "max_depth" not in space
    assert space["n_estimators"] == IntRange(bounds=(50, 500), log=True)
    own = ModelSpec.model_validate(
        {"estimator": "knn", "search": {"n_neighbors": {"int": [1, 9]}, "weights": ["uniform"]}}
    )
    resolved = resolve_space(own, "classification")
    assert resolved["weights"] == Choice(choice=["uniform"])
    assert resolved["n_neighbors"] == IntRange(bounds=(1, 9))


def test_default_space_of_a_dotted_path() -> None:
    assert "max_depth" in default_space("sklearn.tree.DecisionTreeRegressor", "regression")
    assert "max_depth" in default_space("xgboost.XGBClassifier", "classification")
    with pytest.raises(SpaceError, match=r"no default search space for 'sklearn\.linear_model"):
        default_space("sklearn.linear_model.SGDRegressor", "regression")


def test_check_space_names_unknown_fixed_and_invalid_parameters() -> None:
    cls = resolve_estimator_class("random_forest", "classification")
    problems = check_space(
        {
            "max_dept": [2, 4],
            "n_estimators": {"int": [10, 50]},
            "min_samples_leaf": IntRange(bounds=(0, 5)),
            "max_features": ["sqrt", "most"],
        },
        cls,
        params={"n_estimators": 20},
    )
    assert problems[0].startswith("max_dept: not a parameter of RandomForestClassifier")
    assert "did you mean 'max_depth'" in problems[0]
    assert problems[1] == "n_estimators: fixed in params and also searched; keep it in one of them"
    assert problems[2].startswith("min_samples_leaf: 0 is not a valid value")
    assert problems[3].startswith("max_features: 'most' is not a valid value")
    assert len(problems) == 4


def test_grid_discretises_ranges_and_keeps_choices() -> None:
    space = {
        "trees": IntRange(bounds=(1, 100), log=True),
        "depth": Choice(choice=[None, 4]),
        "rate": FloatRange(bounds=(0.001, 0.1), log=True),
        "leaves": IntRange(bounds=(2, 11), step=3),
        "small": IntRange(bounds=(1, 3)),
    }
    axes = grid_axes(space, 4)
    assert axes["trees"] == [1, 5, 22, 100]
    assert axes["depth"] == [None, 4]
    assert axes["rate"] == [0.001, 0.00464159, 0.0215443, 0.1]
    assert axes["leaves"] == [2, 5, 8, 11]
    assert axes["small"] == [1, 2, 3]  # whole numbers without repeats
    points = grid(space, 4)
    assert len(points) == grid_size(space, 4) == 4 * 2 * 4 * 4 * 3
    assert points[0] == {"trees": 1, "depth": None, "rate": 0.001, "leaves": 2, "small": 1}
    assert points[1]["small"] == 2  # the last dimension varies fastest, as a product does
    assert len({tuple(p.values()) for p in points}) == len(points)
    assert grid({}, 4) == [{}]


def test_a_truncated_grid_is_a_seeded_sample_of_distinct_points() -> None:
    space = {"a": IntRange(bounds=(1, 50)), "b": FloatRange(bounds=(0.0, 1.0)), "c": [1, 2, 3]}
    full = grid(space, 10)
    first = grid(space, 10, limit=25, seed=3)
    assert first == grid(space, 10, limit=25, seed=3)
    assert first != grid(space, 10, limit=25, seed=4)
    assert len(first) == 25
    assert len({tuple(p.values()) for p in first}) == 25
    assert all(point in full for point in first)
    assert grid(space, 10, limit=5) == full[:5]


def test_optuna_sampling_with_none_mixed_and_list_choices() -> None:
    space = {
        "depth": [None, 4, "auto", 2.5, True],  # 4 and True are different values
        "flag": [True, 1],  # equal in Python, so Optuna gets labels
        "layers": [[64], [64, 32]],
        "count": IntRange(bounds=(0, 10), step=3),
        "rate": FloatRange(bounds=(0.01, 1.0), log=True),
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, list[Any]] = {name: [] for name in space}
    for _ in range(40):
        trial = study.ask()
        point = sample_optuna(trial, space)
        assert decode_optuna(space, trial.params) == point
        study.tell(trial, 0.0)
        for name, value in point.items():
            seen[name].append(value)
    assert {repr(v) for v in seen["depth"]} == {"None", "4", "'auto'", "2.5", "True"}
    assert {repr(v) for v in seen["flag"]} == {"True", "1"}
    assert {tuple(v) for v in seen["layers"]} == {(64,), (64, 32)}
    assert set(seen["count"]) <= {0, 3, 6, 9}
    assert all(0.01 <= v <= 1.0 for v in seen["rate"])


def test_optuna_grid_sampler_walks_grid_axes() -> None:
    space = {"depth": [None, 4], "rate": FloatRange(bounds=(0.01, 0.3), log=True)}
    sampler = optuna.samplers.GridSampler(grid_axes(space, 3), seed=0)
    study = optuna.create_study(sampler=sampler)
    points: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        points.append(sample_optuna(trial, space, "grid"))
        return 0.0

    study.optimize(objective, n_trials=20)  # GridSampler stops the study when the grid is done
    expected = grid(space, 3)
    assert sorted(map(repr, points)) == sorted(map(repr, expected))
