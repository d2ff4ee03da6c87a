"""Sample-first tuning through ``mlship run``: the points are screened on growing stratified
samples of the training rows, and only the survivors get the full cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import optuna

from tests.conftest import run_cli
from tests.quick_project import fast_churn

SCREENED = """models:
  - name: forest
    estimator: random_forest
    params: {n_estimators: 10}
    search:
      max_depth: [2, 4, 8]
      min_samples_leaf: {int: [1, 40], log: true}
split: {holdout: 0.2, folds: 2, seed: 42}
metric: average_precision
tuning: {method: grid, grid_points: 3, pruner: none, sample_first: {fraction: 0.25, keep: 0.5}}
executor: inline
"""


def test_sample_first_tuning_screens_on_samples_and_records_each_stages_rows(
    tmp_path: Path,
) -> None:
    spec = fast_churn(tmp_path / "p")
    text = spec.read_text()
    spec.write_text(text[: text.index("models:")] + SCREENED)
    home = tmp_path / "home"
    run_cli("run", str(spec), home=home, cwd=tmp_path)
    url = f"sqlite:///{home / 'mlship.db'}"
    (study,) = optuna.get_all_study_summaries(storage=url)
    run_id = study.study_name.split(":")[0]
    record = json.loads(run_cli("runs", "show", run_id[:8], "--json", home=home).stdout)
    (forest,) = record["candidates"]
    stages = forest["tuning"]["sample_first"]
    # 9 grid points: 9 on a quarter of the rows, 5 on half, 3 to the full cross-validation.
    assert [s["candidates"] for s in stages] == [9, 5, 3]
    assert [s["kept"] for s in stages] == [5, 3, 1]
    full = stages[-1]["rows"]
    assert full > 1000  # the training part of the small example, holdout set aside
    assert abs(stages[0]["rows"] - 0.25 * full) <= 1
    assert abs(stages[1]["rows"] - 0.5 * full) <= 1
    # Only the survivors were cross-validated on every row: they are the study's trials.
    assert study.n_trials == 3 and forest["trials"] == 3
    assert forest["tuning"]["stopped_by"] == "survivors"
    shown = run_cli("runs", "show", run_id[:8], home=home).stdout
    assert "Sample-first tuning of forest: 9 points on" in shown
    assert f"3 confirmed by cross-validation on all {full}" in shown


def test_sample_first_with_a_bayesian_search_is_refused_naming_the_key(tmp_path: Path) -> None:
    spec = fast_churn(tmp_path / "p")
    text = spec.read_text()
    spec.write_text(
        text[: text.index("models:")]
        + SCREENED.replace("method: grid", "method: bayes").replace("pruner: none", "trials: 4")
    )
    failed = run_cli("run", str(spec), home=tmp_path / "home", cwd=tmp_path, check=False)
    said = " ".join((failed.stdout + failed.stderr).split())
    assert failed.returncode != 0 and "Traceback" not in said
    assert "tuning" in said and "sample_first" in said and "grid or random" in said
