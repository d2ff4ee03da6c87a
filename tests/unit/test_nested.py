"""Nested cross-validation: each outer fold is tuned on its own rows, scored on unseen ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlship.spec.data import Column
from mlship.spec.training import Split
from mlship.train.candidates import Recipe
from mlship.train.cost import Usage
from mlship.train.executors import InlineExecutor
from mlship.train.folds import shared_inputs
from mlship.train.nested import OuterFold, lay_out, nested_scores
from mlship.train.splits import cv_folds, nested_cv_folds


def _data(rows: int = 400) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(8)
    X = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    y = pd.Series(np.where(X["a"] - 0.5 * X["b"] + rng.normal(size=rows) > 0.8, "yes", "no"))
    return X, y


def _recipe(name: str) -> Recipe:
    return Recipe(
        name=name,
        estimator="logistic_regression",
        task="classification",
        params={},
        features=(Column(name="a", type="float"), Column(name="b", type="float")),
    )


def test_folds_are_laid_out_after_the_runs_own() -> None:
    X, y = _data()
    split = Split(folds=3, seed=2, nested=True)
    folds = cv_folds(X, y, split, "classification")
    nested = nested_cv_folds(X, y, split, "classification")
    every, outer = lay_out(folds, nested)
    assert every[:3] == folds  # untouched positions for everything that ignores nesting
    assert len(every) == 3 + 3 * (3 + 1)
    for part, source in zip(outer, nested, strict=True):
        train, valid = every[part.fold]
        assert np.array_equal(train, source.train) and np.array_equal(valid, source.valid)
        for fold in part.inner:  # inner folds only ever use the outer fold's training rows
            inner_train, inner_valid = every[fold]
            assert set(inner_train) | set(inner_valid) <= set(source.train)


def test_outer_scores_are_fits_on_outer_training_rows_scored_on_the_outer_fold() -> None:
    X, y = _data()
    split = Split(folds=3, seed=2, nested=True)
    every, outer = lay_out(
        cv_folds(X, y, split, "classification"), nested_cv_folds(X, y, split, "classification")
    )
    recipes = {"fixed": _recipe("fixed"), "tuned": _recipe("tuned")}
    shared = shared_inputs(recipes, X, y, every)
    asked: list[tuple[str, int, tuple[int, ...]]] = []

    def tune(name: str, part: OuterFold) -> tuple[dict[str, Any], Usage]:
        asked.append((name, part.number, part.inner))
        return {"C": 0.01 * (part.number + 1)}, Usage(cpu_seconds=1.0)

    found = nested_scores(
        ["fixed", "tuned"], {"tuned"}, outer, tune, InlineExecutor(), shared, "roc_auc"
    )
    assert [(n, k) for n, k, _ in asked] == [("tuned", 0), ("tuned", 1), ("tuned", 2)]
    assert [inner for _, _, inner in asked] == [p.inner for p in outer]
    for name, params in (
        ("fixed", [{}, {}, {}]),
        ("tuned", [{"C": 0.01}, {"C": 0.02}, {"C": 0.03}]),
    ):
        estimate = found[name]
        assert estimate.params == params
        for part, chosen, got in zip(outer, params, estimate.scores, strict=True):
            train, valid = every[part.fold]
            model = recipes[name].build(chosen).fit(X.iloc[train], y.iloc[train])
            expected = roc_auc_score(
                y.iloc[valid] == "yes", model.predict_proba(X.iloc[valid])[:, 1]
            )
            assert got == pytest.approx(expected)
        assert estimate.mean == pytest.approx(np.mean(estimate.scores))
    assert found["tuned"].usage.cpu_seconds >= 3.0  # the tuning it took is billed to it
    assert found["tuned"].as_dict()["tuned"] and not found["fixed"].as_dict()["tuned"]
