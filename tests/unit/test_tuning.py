"""The search: budgets, pruning, resuming a killed study, and the same choices on every executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from mlship.spec.data import Column
from mlship.spec.training import Tuning
from mlship.train.candidates import Recipe
from mlship.train.cost import Prices
from mlship.train.executors import Executor, InlineExecutor, ProcessExecutor
from mlship.train.folds import shared_inputs
from mlship.train.spaces import default_space
from mlship.train.tuning import Search, storage_for
from tests.ray_fixture import ray_fixture  # noqa: F401 (a fixture)


def _data(rows: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    noise = rng.normal(scale=0.8, size=rows)
    y = pd.Series(np.where(X["a"] + 0.5 * X["b"] + noise > 0, "yes", "no"))
    return X, y


def _shared(folds: int = 3) -> dict[str, Any]:
    X, y = _data()
    recipe = Recipe(
        name="forest",
        estimator="random_forest",
        task="classification",
        params={"n_estimators": 10},
        features=(Column(name="a", type="float"), Column(name="b", type="float")),
    )
    positions = np.arange(len(X))
    fold_list = [
        (positions[positions % folds != k], positions[positions % folds == k]) for k in range(folds)
    ]
    return shared_inputs({"forest": recipe}, X, y, fold_list)


def _search(tuning: Tuning, storage: Any, name: str = "forest-study") -> Search:
    space = {
        k: v
        for k, v in default_space("random_forest", "classification").items()
        if k != "n_estimators"
    }
    return Search(
        study_name=name,
        storage=storage,
        candidate="forest",
        space=space,
        tuning=tuning,
        metric="roc_auc",
        bigger=True,
        n_folds=3,
        prices=Prices(),
    )


def test_a_search_runs_its_budget_and_records_every_trial(tmp_path: Path) -> None:
    storage = storage_for(f"sqlite:///{tmp_path / 'studies.db'}")
    tuning = Tuning(method="random", trials=6, batch=3, pruner="none")
    outcome = _search(tuning, storage).run(InlineExecutor(), _shared())
    assert len(outcome.trials) == 6
    assert all(t.state == "COMPLETE" and len(t.fold_scores) == 3 for t in outcome.trials)
    assert outcome.best_value == max(t.value for t in outcome.trials if t.value is not None)
    assert outcome.best_folds is not None and len(outcome.best_folds) == 3
    assert all(t.cost > 0 and t.usage.cpu_seconds > 0 for t in outcome.trials)
    assert outcome.stopped_by == "trials"


def test_the_median_pruner_stops_lagging_trials(tmp_path: Path) -> None:
    tuning = Tuning(method="random", trials=16, batch=4, pruner="median")
    outcome = _search(tuning, None).run(InlineExecutor(), _shared())
    states = [t.state for t in outcome.trials]
    assert states.count("PRUNED") >= 1
    pruned = [t for t in outcome.trials if t.state == "PRUNED"]
    assert all(len(t.fold_scores) < 3 for t in pruned)


def test_a_killed_search_resumes_where_it_stopped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    first = _search(Tuning(method="bayes", trials=4, batch=2, pruner="none"), storage_for(url))
    first.run(InlineExecutor(), _shared())
    first.study.ask()  # a trial that was running when the process died
    resumed = _search(Tuning(method="bayes", trials=8, batch=2, pruner="none"), storage_for(url))
    assert resumed.resumed == 4
    outcome = resumed.run(InlineExecutor(), _shared())
    states = [t.state for t in outcome.trials]
    assert states.count("COMPLETE") == 8
    assert states.count("FAIL") == 1  # the interrupted trial, asked again rather than lost
    assert optuna.load_study(study_name="forest-study", storage=url).user_attrs["mlship:cost"] > 0


def test_a_grid_search_stops_when_the_grid_is_exhausted() -> None:
    tuning = Tuning(method="grid", trials=100, batch=4, pruner="none", grid_points=2)
    search = _search(tuning, None)
    outcome = search.run(InlineExecutor(), _shared())
    assert len(outcome.trials) == search.limit < 100
    assert outcome.stopped_by == "grid exhausted"
    assert len({tuple(sorted(map(str, t.params.items()))) for t in outcome.trials}) == search.limit


def _choices(executor: Executor) -> list[tuple[dict[str, Any], float | None, str]]:
    tuning = Tuning(method="bayes", trials=6, batch=3, pruner="median")
    with executor:
        outcome = _search(tuning, None).run(executor, _shared())
    return [(t.params, t.value, t.state) for t in outcome.trials]


def test_the_same_choices_on_every_executor(ray_executor: Executor) -> None:
    inline = _choices(InlineExecutor())
    assert _choices(ProcessExecutor(workers=2)) == inline
    tuning = Tuning(method="bayes", trials=6, batch=3, pruner="median")
    ray_outcome = _search(tuning, None).run(ray_executor, _shared())
    assert [(t.params, t.value, t.state) for t in ray_outcome.trials] == inline


def test_a_failing_configuration_fails_its_trial_only() -> None:
    tuning = Tuning(method="grid", trials=10, batch=2, pruner="none")
    search = Search(
        study_name="bad",
        storage=None,
        candidate="forest",
        space={"max_features": [0.5, "no-such-option"]},
        tuning=tuning,
        metric="roc_auc",
        bigger=True,
        n_folds=3,
        prices=Prices(),
    )
    outcome = search.run(InlineExecutor(), _shared())
    states = sorted(t.state for t in outcome.trials)
    assert states == ["COMPLETE", "FAIL"]
    assert any(t.error and "max_features" in t.error for t in outcome.trials)


def test_a_search_where_nothing_completes_says_why() -> None:
    from mlship.train.tuning import TuningError

    search = Search(
        study_name="hopeless",
        storage=None,
        candidate="forest",
        space={"max_features": ["nope"]},
        tuning=Tuning(method="grid", trials=3, pruner="none"),
        metric="roc_auc",
        bigger=True,
        n_folds=3,
        prices=Prices(),
    )
    with pytest.raises(TuningError, match="max_features"):
        search.run(InlineExecutor(), _shared())


class _Counting(InlineExecutor):
    """In-process, counting the jobs it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = 0

    def map(self, fn: Any, items: Any, **kwargs: Any) -> Any:
        self.jobs += len(items)
        return super().map(fn, items, **kwargs)


def test_a_screened_search_resumes_with_its_survivors_and_does_not_screen_again(
    tmp_path: Path,
) -> None:
    storage = storage_for(f"sqlite:///{tmp_path / 'studies.db'}")
    tuning = Tuning.model_validate(
        {
            "method": "random",
            "trials": 8,
            "pruner": "none",
            "sample_first": {"fraction": 0.3, "keep": 0.5, "folds": 2},
        }
    )
    shared = _shared()
    first = _search(tuning, storage)
    stages = first.screen(InlineExecutor(), shared)
    assert [(s.candidates, s.kept) for s in stages] == [(8, 4), (4, 2)]
    assert [s.rows for s in stages] == [90, 180]  # 0.3 and 0.6 of the 300 rows
    assert first.limit == 2
    again = _search(tuning, storage)  # a killed run started again
    counting = _Counting()
    assert again.screen(counting, shared) == stages and counting.jobs == 0
    outcome = again.run(counting, shared)
    assert len(outcome.trials) == 2 and outcome.stopped_by == "survivors"
    assert counting.jobs == 2 * 3  # the two survivors, on every fold
