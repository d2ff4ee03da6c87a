"""Finished folds kept as they finish: a resumed cross-validation fits only the folds missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from mlship.prices import Usage
from mlship.spec.data import Column
from mlship.train.candidates import Recipe
from mlship.train.cross_validation import cross_validate
from mlship.train.executors import InlineExecutor
from mlship.train.fold_journal import FoldJournal
from mlship.train.folds import FoldResult, shared_inputs
from mlship.train.observer import RunObserver
from mlship.train.tuning import storage_for, trials_of

FOLDS = 3


class Counted(RunObserver):
    """Counts the folds reported done, whether fitted now or reused."""

    def __init__(self) -> None:
        self.done: list[FoldResult] = []

    def fold_done(self, score: FoldResult) -> None:
        self.done.append(score)


def _recipes() -> list[Recipe]:
    features = (Column(name="a", type="float"), Column(name="b", type="float"))
    return [
        Recipe("forest", "random_forest", "classification", {"n_estimators": 5}, features),
        Recipe("logistic", "logistic_regression", "classification", {}, features),
    ]


def _shared() -> dict[str, object]:
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = pd.Series(np.where(X["a"] + rng.normal(scale=0.8, size=120) > 0, "yes", "no"))
    rows = np.arange(len(X))
    folds = [(rows[rows % FOLDS != k], rows[rows % FOLDS == k]) for k in range(FOLDS)]
    return shared_inputs({r.name: r for r in _recipes()}, X, y, folds)


def test_a_resumed_cross_validation_reuses_the_folds_kept_and_fits_the_rest(
    tmp_path: Path,
) -> None:
    storage = storage_for(f"sqlite:///{tmp_path / 'studies.db'}")
    shared = _shared()
    whole = cross_validate(_recipes(), FOLDS, InlineExecutor(), shared, RunObserver())

    # An attempt stopped after three folds: those three are in the journal, and only those.
    journal = FoldJournal(storage, "run1")
    stopped = [whole["forest"].folds[0], whole["forest"].folds[2], whole["logistic"].folds[1]]
    for fold in stopped:
        journal.record(fold)

    observer = Counted()
    again = FoldJournal(storage, "run1")
    resumed = cross_validate(_recipes(), FOLDS, InlineExecutor(), shared, observer, again)

    kept = FoldJournal(storage, "run1").finished()
    assert sorted(kept) == [(n, f) for n in ("forest", "logistic") for f in range(FOLDS)]
    assert len(again.study.get_trials()) == 2 * FOLDS  # three kept + three fitted, none twice
    assert len(observer.done) == 2 * FOLDS
    for fold in stopped:  # reused as recorded, usage and all
        assert resumed[fold.candidate].folds[fold.fold] == fold
    for name in ("forest", "logistic"):  # the same scores as one uninterrupted pass
        assert [f.validation for f in resumed[name].folds] == [
            f.validation for f in whole[name].folds
        ]
    assert trials_of(storage, "run1") == {}  # the fold study is not a search


def test_a_failed_fold_is_not_kept() -> None:
    journal = FoldJournal(optuna.storages.InMemoryStorage(), "run2")
    journal.record(FoldResult("forest", 0, -1, {}, {}, 0.0, Usage.zero(), error="boom"))
    assert journal.finished() == {}
