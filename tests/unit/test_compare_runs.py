"""Comparing runs: one column per run, union of params and metrics, the best value of each metric
in its own direction, rows that differ, and the HTML page."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlship.errors import MlshipError, NotFoundError
from mlship.evaluation.compare import compare_runs
from mlship.evaluation.compare_page import render_comparison_html, write_comparison
from mlship.store.metadata import MetadataStore
from mlship.store.repositories import NewCandidate, NewMetric
from mlship.workspace import Workspace
from tests.unit.test_metadata import _dataset, _start


def _run(
    store: MetadataStore,
    dataset: int,
    params: dict[str, object],
    holdout: dict[str, float],
    cost: float,
) -> str:
    run_id = _start(store)
    store.finish_run(
        run_id,
        dataset_id=dataset,
        candidates=[
            NewCandidate(name="best", estimator="e.Best", params=params, cv_mean=0.5, cv_std=0.1,
                      fit_seconds=1.0, rank=1, selected=True),
            NewCandidate(name="other", estimator="e.Other", params={"depth": 3}, cv_mean=0.4,
                      cv_std=0.1, fit_seconds=1.0, rank=2, selected=False),
        ],
        metrics=[
            *(NewMetric(candidate="best", split="holdout", name=k, value=v)
              for k, v in holdout.items()),
            NewMetric(candidate="best", split="cv", name="accuracy",
                      value=holdout["accuracy"] - 0.01),
            NewMetric(candidate="other", split="cv", name="accuracy", value=0.99),
        ],
        best_candidate="best",
        wall_seconds=1.0,
        outcome={"cost": cost, "cpu_seconds": 2.0, "peak_memory_bytes": 2**20},
    )  # fmt: skip
    return run_id


@pytest.fixture
def runs(workspace: Workspace) -> list[str]:
    store = workspace.metadata
    dataset = _dataset(workspace)
    first = _run(store, dataset, {"C": 1.0}, {"accuracy": 0.80, "log_loss": 0.40}, 0.02)
    l1 = {"C": 0.1, "penalty": "l1"}
    second = _run(store, dataset, l1, {"accuracy": 0.85, "log_loss": 0.45}, 0.01)
    third = _run(store, dataset, {"C": 1.0}, {"accuracy": 0.85, "log_loss": 0.50, "f1": 0.3}, 0.03)
    store.tag_run(first, {"team": "growth"})
    return [first, second, third]


def test_runs_side_by_side(workspace: Workspace, runs: list[str]) -> None:
    store = workspace.metadata
    found = compare_runs([store.get_run(ref[:8]) for ref in runs])
    assert found.labels == tuple(ref[:8] for ref in runs)
    rows = {(row.section, row.name): row for row in found.rows}
    assert rows["run", "tags"].values == ("team=growth", None, None)
    assert rows["run", "dataset"].values == ("h" * 12,) * 3 and not rows["run", "dataset"].differs
    assert rows["params", "C"].values == (1.0, 0.1, 1.0) and rows["params", "C"].differs
    assert rows["params", "penalty"].values == (None, "l1", None)
    assert ("params", "depth") not in rows  # the selected candidate's params only
    # Larger accuracy is better (ties are both best); smaller log loss is better.
    assert rows["holdout", "accuracy"].best == (False, True, True)
    assert rows["holdout", "accuracy"].greater_is_better is True
    assert rows["holdout", "log_loss"].best == (True, False, False)
    assert rows["holdout", "f1"].values == (None, None, 0.3) and rows["holdout", "f1"].best == ()
    assert rows["cv", "accuracy"].values == pytest.approx((0.79, 0.84, 0.84))
    assert rows["resources", "cost"].best == (False, True, False)
    cpu = rows["resources", "CPU seconds"]
    assert not cpu.differs and cpu.best == ()  # the same everywhere: nothing is the best
    assert found.as_dict()["rows"][0]["section"] == "run"


def test_fewer_than_two_runs_or_the_same_run_twice_are_refused(
    workspace: Workspace, runs: list[str]
) -> None:
    store = workspace.metadata
    with pytest.raises(MlshipError, match="at least two runs"):
        compare_runs([store.get_run(runs[0])])
    with pytest.raises(MlshipError, match=f"run {runs[0][:8]} is given twice"):
        compare_runs([store.get_run(runs[0]), store.get_run(runs[0][:10])])
    with pytest.raises(NotFoundError, match="no run with id 'nothere'"):
        store.get_run("nothere")


def test_the_page_has_the_table_and_a_chart_per_metric(
    workspace: Workspace, runs: list[str], tmp_path: Path
) -> None:
    found = compare_runs([workspace.tracking.get_run(ref) for ref in runs])
    page = render_comparison_html(found)
    assert page.count('<svg class="chart"') == 4  # accuracy, log loss, F1 (test), accuracy (CV)
    assert 'aria-label="Log loss (test set) by run"'.lower() in page.lower()
    assert 'class="differs"' in page and "best" in page and "<script" not in page
    json_path, html_path = write_comparison(tmp_path / "out", found)
    assert html_path.name == f"compare-{'-'.join(found.labels)}.html"
    assert html_path.read_text() == page and json_path.exists()
