"""Candidate recipes: resampling lives inside the pipeline, so it only ever sees training rows."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from mlship.spec.data import Column
from mlship.spec.training import Imbalance
from mlship.train.candidates import Recipe
from mlship.train.scoring import predict_outputs, score


def _data(rows: int = 600) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=rows), "plan": rng.choice(["x", "y"], rows)})
    y = pd.Series(np.where(X["a"] + rng.normal(scale=0.5, size=rows) > 1.6, "yes", "no"))
    return X, y


def _recipe(strategy: str, estimator: str = "logistic_regression") -> Recipe:
    return Recipe(
        name="c",
        estimator=estimator,
        task="classification",
        params={},
        features=(Column(name="a", type="float"), Column(name="plan", type="category")),
        imbalance=Imbalance.model_validate({"strategy": strategy}),
        seed=3,
    )


@pytest.mark.parametrize("strategy", ["oversample", "undersample", "smote", "adasyn"])
def test_resampling_happens_in_fit_only(strategy: str) -> None:
    X, y = _data()
    assert (y == "yes").mean() < 0.15
    pipeline = _recipe(strategy).build()
    assert "resample" in pipeline.named_steps
    pipeline.fit(X, y)
    resampled = pipeline.named_steps["resample"]
    assert resampled.random_state == 3
    predictions = pipeline.predict(X)  # samplers are skipped when predicting: one row per row
    assert len(predictions) == len(X)
    plain = _recipe("none").build().fit(X, y)
    assert (predictions == "yes").mean() > (plain.predict(X) == "yes").mean()
    again = pickle.loads(pickle.dumps(pipeline))
    assert (again.predict(X) == predictions).all()
    # The scoring shortcut (preprocess once for predict and predict_proba) skips the sampler too.
    outputs, proba = predict_outputs(pipeline, X, "classification")
    assert (outputs == predictions).all()
    assert proba is not None and np.allclose(proba, pipeline.predict_proba(X))
    assert 0.0 < score("classification", pipeline, X, y)["f1"] <= 1.0


def test_class_weight_is_set_where_the_estimator_takes_it() -> None:
    weighted = _recipe("class_weight").build()
    assert weighted.named_steps["model"].class_weight == "balanced"
    boosted = _recipe("class_weight", "knn").build()  # k-NN has no class weights
    assert "class_weight" not in boosted.named_steps["model"].get_params()


def test_a_seed_reaches_every_random_estimator() -> None:
    forest = _recipe("none", "random_forest").build()
    assert forest.named_steps["model"].random_state == 3
