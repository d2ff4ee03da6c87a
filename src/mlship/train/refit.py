"""What the registered model is fitted on, once the test set has had its say.

The test set is split off to measure the selected model honestly, once. After that measurement
the rows have done their job as a test, and on time-ordered data they are the newest rows, the
ones most like tomorrow's. With ``refit: all`` the shipped model is therefore a fresh fit of the
selected candidate, with the parameters the run chose, on every labelled row (training part and
test set, in their original order); the test score stays that of the model fitted on the
training part, the best estimate there is of a model fitted on more rows. With ``refit: train``
the shipped model is the very model that was scored.

A tuned decision threshold is kept as tuned: choosing it again on rows that include the test set
would leave no honest measure of the cut-off the shipped model serves with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlship.json_values import plain
from mlship.spec.models import Refit
from mlship.store.context import HasArtifacts, SignsArtifacts
from mlship.train.candidates import Recipe
from mlship.train.estimators import DecisionThreshold
from mlship.train.fitted_on import FittedOn
from mlship.train.model_io import save_model
from mlship.train.observer import RunObserver
from mlship.train.weighting import fit_weighted


class ShipStores(HasArtifacts, SignsArtifacts, Protocol):
    """Where a refit keeps the scored model it replaces, signed like a registered one."""


@dataclass(frozen=True)
class Labelled:
    """Every labelled row of a run (positions as index), its target, and which rows trained."""

    X: pd.DataFrame
    y: pd.Series
    train_rows: np.ndarray[Any, Any]
    times: pd.Series | None
    """The split's ``time`` column, when the spec names one."""
    weights: np.ndarray[Any, Any] | None = None
    """Every row's sample weight, when the spec has a weight column: the refit is weighted too."""


def latest(times: pd.Series | None) -> str | float | int | None:
    """The latest of ``times`` as a JSON value: ISO text for dates and times, else the number."""
    if times is None or times.empty:
        return None
    value = plain(times.max())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime) and value.time() == time() and not value.utcoffset():
        return value.date().isoformat()  # a day, not midnight (UTC) of it
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value  # type: ignore[no-any-return]


def ship(
    refit: Refit,
    scored: Any,
    recipe: Recipe,
    params: dict[str, Any],
    rows: Labelled,
    observer: RunObserver | None = None,
    workspace: ShipStores | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The model to register, given the ``scored`` one (fitted on the training part), and the
    record of what it was fitted on (:meth:`FittedOn.as_dict`, for the run's details).

    ``refit: train`` ships ``scored`` itself. ``refit: all`` builds ``recipe`` with ``params``
    again and fits it on every row of ``rows``; when ``scored`` carries a tuned decision
    threshold, the new fit serves with that same threshold. With a ``workspace``, the scored
    model is kept in its artifact store (signed, like a version) and the record names it as
    ``scored_model``: the model card scores groups of test rows with it, since the refitted
    model has learnt those rows.
    """
    if refit == "train":
        train_times = None if rows.times is None else rows.times.iloc[rows.train_rows]
        fitted_on = FittedOn("train", len(rows.train_rows), latest(train_times))
        return scored, fitted_on.as_dict()
    if observer is not None:
        observer.stage(f"Refitting {recipe.name} on all {len(rows.X)} labelled rows")
    model: Any = fit_weighted(recipe.build(params), rows.X, rows.y, rows.weights)
    if isinstance(scored, DecisionThreshold):
        model = DecisionThreshold(model, scored.threshold, scored.positive)
    record = FittedOn("all", len(rows.X), latest(rows.times)).as_dict()
    if workspace is not None:
        kept = save_model(scored, workspace.artifacts)
        signature = workspace.artifact_signature(kept.sha256)
        record["scored_model"] = {"sha256": kept.sha256, "signature": signature}
    return model, record
