"""Refit before shipping: which model is registered, what it was fitted on, and how that is said."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from mlship.errors import SpecError
from mlship.spec.data import Column
from mlship.spec.loader import parse_spec
from mlship.train.candidates import Recipe
from mlship.train.estimators import DecisionThreshold
from mlship.train.fitted_on import FittedOn
from mlship.train.refit import Labelled, latest, ship
from mlship.train.threshold import tune_threshold

FEATURES = (Column(name="a", type="float"), Column(name="b", type="float"))


def _rows(task: str, rows: int = 300) -> Labelled:
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    signal = 2 * X["a"] - X["b"] + rng.normal(scale=0.5, size=rows)
    y = pd.Series(np.where(signal > 1.0, "yes", "no") if task == "classification" else signal)
    days = pd.Series(pd.date_range("2025-01-01", periods=rows, freq="D", tz=UTC))
    return Labelled(X, y, np.arange(rows - rows // 5), days)


def _recipe(task: str, estimator: str) -> Recipe:
    return Recipe(name="c", estimator=estimator, task=task, params={}, features=FEATURES)  # type: ignore[arg-type]


def _train_part(rows: Labelled) -> tuple[pd.DataFrame, pd.Series]:
    return rows.X.iloc[rows.train_rows], rows.y.iloc[rows.train_rows]


def test_refit_train_ships_the_scored_model_itself() -> None:
    rows = _rows("regression")
    scored = _recipe("regression", "ridge").build().fit(*_train_part(rows))
    model, record = ship("train", scored, _recipe("regression", "ridge"), {}, rows)
    assert model is scored
    assert record == {"on": "train", "rows": 240, "up_to": "2025-08-28"}


def test_refit_all_fits_the_chosen_params_on_every_labelled_row() -> None:
    rows = _rows("regression")
    recipe = _recipe("regression", "ridge")
    scored = recipe.build({"alpha": 5.0}).fit(*_train_part(rows))
    model, record = ship("all", scored, recipe, {"alpha": 5.0}, rows)
    assert model is not scored
    assert model.named_steps["model"].alpha == 5.0  # the chosen params, not the defaults
    on_all = recipe.build({"alpha": 5.0}).fit(rows.X, rows.y)
    np.testing.assert_allclose(model.predict(rows.X), on_all.predict(rows.X))
    assert not np.allclose(model.predict(rows.X), scored.predict(rows.X))
    assert record == {"on": "all", "rows": 300, "up_to": "2025-10-27"}
    # The scored model is untouched: still the fit on the training part.
    again = recipe.build({"alpha": 5.0}).fit(*_train_part(rows))
    np.testing.assert_allclose(scored.predict(rows.X), again.predict(rows.X))


def test_refit_all_keeps_a_tuned_threshold_as_tuned() -> None:
    rows = _rows("classification")
    recipe = _recipe("classification", "logistic_regression")
    X_train, y_train = _train_part(rows)
    folds = list(KFold(3, shuffle=True, random_state=0).split(X_train))
    scored = tune_threshold(recipe.build(), X_train, y_train, folds, "f1", "yes").model
    assert isinstance(scored, DecisionThreshold)
    model, _ = ship("all", scored, recipe, {}, rows)
    assert isinstance(model, DecisionThreshold) and model is not scored
    assert (model.threshold, model.positive) == (scored.threshold, scored.positive)
    on_all = recipe.build().fit(rows.X, rows.y)
    np.testing.assert_allclose(model.predict_proba(rows.X), on_all.predict_proba(rows.X))
    decided = np.where(on_all.predict_proba(rows.X)[:, 1] >= scored.threshold, "yes", "no")
    assert (model.predict(rows.X) == decided).all()


def test_without_a_time_column_nothing_is_dated() -> None:
    rows = _rows("regression")
    undated = Labelled(rows.X, rows.y, rows.train_rows, None)
    _, record = ship("all", None, _recipe("regression", "ridge"), {}, undated)
    assert record == {"on": "all", "rows": 300, "up_to": None}


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (pd.Series(pd.to_datetime(["2025-03-01", "2025-02-01"], utc=True)), "2025-03-01"),
        (pd.Series(pd.to_datetime(["2025-03-01 10:30"])), "2025-03-01T10:30:00"),
        (pd.Series([3.0, 7.0]), 7),
        (pd.Series([3.5, 7.25]), 7.25),
        (pd.Series([1, 9, 4]), 9),
        (pd.Series([], dtype="float64"), None),
        (None, None),
    ],
)
def test_the_latest_time_is_a_json_value(times: pd.Series | None, expected: object) -> None:
    assert latest(times) == expected


def test_what_people_read() -> None:
    assert FittedOn("all", 1200, "2026-03-31").sentence() == (
        "The shipped model was fitted on 1,200 rows up to 2026-03-31."
    )
    assert (
        FittedOn("all", 569).sentence() == "The shipped model was fitted on all 569 labelled rows."
    )
    assert FittedOn("train", 455, 90).sentence() == (
        "The shipped model is the one scored on the test set, fitted on the 455 training rows."
    )


def test_runs_from_before_refitting_shipped_the_training_part_fit() -> None:
    recorded = {"refit": {"on": "all", "rows": 10, "up_to": None, "scored_model": {}}}
    assert FittedOn.from_details(recorded) == FittedOn("all", 10, None)
    older = {"split": {"train_rows": 80, "test_rows": 20}}
    assert FittedOn.from_details(older) == FittedOn("train", 80)
    assert FittedOn.from_details({}) is None


SPEC = """name: p
task: regression
sources: [{path: rows.csv}]
columns:
  - {name: a, type: float}
  - {name: y, type: float, role: target}
models: [{estimator: ridge}]
metric: mae
"""


def test_the_spec_says_all_unless_told_otherwise() -> None:
    where = Path("/project/pipeline.yaml")
    assert parse_spec(SPEC, where).spec.refit == "all"
    assert parse_spec(SPEC + "refit: train\n", where).spec.refit == "train"
    with pytest.raises(SpecError) as raised:
        parse_spec(SPEC + "refit: newest\n", where)
    message = str(raised.value)
    assert "line 9" in message and "refit" in message and "'all' or 'train'" in message
