"""Training through the command line: a tuned run, a killed search resumed, a Ray-executed search,
threshold tuning on an imbalanced target, nested cross-validation with SMOTE inside the folds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from tests.conftest import mlship_env, run_cli
from tests.ray_fixture import ray_cluster

ROWS = 1200


def _project(
    root: Path,
    *,
    executor: str,
    tuning: str,
    extra: str = "",
    rows: int = ROWS,
    split: str = "{holdout: 0.25, folds: 3, seed: 5}",
) -> Path:
    """A small imbalanced classification project (about 8% positives) with one CSV source."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(rows)],
            "a": rng.normal(size=rows).round(4),
            "b": rng.normal(size=rows).round(4),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
        }
    )
    logit = -3.2 + 1.5 * frame["a"] + 0.7 * frame["b"] + 0.6 * (frame["plan"] == "pro")
    frame["label"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "rows.csv", index=False)
    spec = root / "pipeline.yaml"
    spec.write_text(
        f"""name: tuned
task: classification
sources: [{{path: rows.csv}}]
columns:
  - {{name: id, type: string, role: id}}
  - {{name: a, type: float}}
  - {{name: b, type: float}}
  - {{name: plan, type: category}}
  - {{name: label, type: category, role: target}}
models:
  - {{name: logistic, estimator: logistic_regression}}
  - name: forest
    estimator: random_forest
    params: {{n_estimators: 20}}
    search:
      max_depth: [2, 4, 8, null]
      min_samples_leaf: {{int: [1, 30], log: true}}
      max_features: {{float: [0.3, 1.0]}}
split: {split}
metric: average_precision
tuning: {tuning}
executor: {executor}
{extra}"""
    )
    return spec


def test_a_tuned_run_records_every_trial_and_its_cost(tmp_path: Path) -> None:
    spec = _project(
        tmp_path / "p", executor="inline", tuning="{method: random, trials: 6, batch: 3}"
    )
    home = tmp_path / "home"
    out = run_cli("run", str(spec), home=home, cwd=tmp_path).stdout
    assert "Registered tuned:1" in out
    assert "Cost:" in out and "CPU-s" in out
    url = f"sqlite:///{home / 'mlship.db'}"
    studies = _searches(url)
    assert [s.n_trials for s in studies] == [6]
    trials = optuna.load_study(study_name=studies[0].study_name, storage=url).trials
    assert all(len(t.user_attrs["fold_scores"]) in (1, 2, 3) for t in trials)
    assert all(t.user_attrs["usage"]["cpu_seconds"] > 0 for t in trials)
    run_id = studies[0].study_name.split(":")[0][:8]
    shown = run_cli("runs", "show", run_id, home=home).stdout
    assert "forest" in shown
    assert (home / "reports" / f"tuned-run-{run_id}.html").is_file()
    again = run_cli("runs", "report", run_id, "-o", str(tmp_path / "out"), home=home).stdout
    assert "Fit: " in again
    page = (tmp_path / "out" / f"tuned-run-{run_id}.html").read_text()
    assert "<svg" in page and "scored once" in page


def _searches(url: str) -> list[optuna.study.StudySummary]:
    """The studies of searches (the run's study of finished folds, ``RUN::folds``, is not one)."""
    summaries = optuna.get_all_study_summaries(storage=url)
    return [s for s in summaries if not s.study_name.endswith("::folds")]


def _completed(url: str) -> int:
    try:
        summaries = _searches(url)
    except Exception:  # the database is being created
        return 0
    return sum(
        len(
            optuna.load_study(study_name=s.study_name, storage=url).get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
        )
        for s in summaries
    )


def test_a_killed_search_resumes_where_it_stopped(tmp_path: Path) -> None:
    spec = _project(
        tmp_path / "p",
        executor="inline",
        tuning="{method: bayes, trials: 30, batch: 2, pruner: none}",
    )
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'mlship.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlship", "run", str(spec)],
        cwd=tmp_path,
        env=mlship_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while _completed(url) < 4:
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no trial completed in time"
        time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)  # no clean-up: as if the machine went down
    process.wait(timeout=30)
    done_before = _completed(url)

    resumed = run_cli("run", str(spec), "--resume", home=home, cwd=tmp_path).stdout
    assert "Resuming run" in resumed
    assert f"resumed at {done_before}" in resumed or "resumed at" in resumed
    assert "Registered tuned:1" in resumed
    study = _searches(url)
    assert len(study) == 1  # the same study, continued
    trials = optuna.load_study(study_name=study[0].study_name, storage=url).trials
    finished = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 30
    listed = run_cli("runs", "list", home=home).stdout
    assert "succeeded" in listed and "running" not in listed


def _trials_run_on(root: Path, executor: str, label: str) -> list[Any]:
    tuning = "{method: bayes, trials: 6, batch: 3, pruner: median}"
    spec = _project(root / label, executor=executor, tuning=tuning)
    home = root / f"home-{label}"
    run_cli("run", str(spec), home=home, cwd=root / label)
    url = f"sqlite:///{home / 'mlship.db'}"
    name = _searches(url)[0].study_name
    trials = optuna.load_study(study_name=name, storage=url).trials
    return [(t.params, t.value, t.state) for t in trials]


@pytest.fixture(scope="module")
def inline_trials(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """The search's trials run in-process: what Ray, local or a cluster, must reproduce."""
    return _trials_run_on(tmp_path_factory.mktemp("inline"), "inline", "inline")


def test_a_search_on_ray_gives_the_same_choices_as_in_process(
    tmp_path: Path, inline_trials: list[Any]
) -> None:
    assert _trials_run_on(tmp_path, "ray", "ray") == inline_trials


def test_a_search_on_a_ray_cluster_through_the_ray_client(
    tmp_path: Path, inline_trials: list[Any]
) -> None:
    with ray_cluster(tmp_path) as address:
        on_cluster = _trials_run_on(tmp_path, address, "cluster")
    assert on_cluster == inline_trials


def test_an_unreachable_ray_cluster_is_a_clear_error(tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", executor="ray://127.0.0.1:9", tuning="{trials: 2}")
    failed = run_cli("run", str(spec), home=tmp_path / "home", cwd=tmp_path, check=False)
    assert failed.returncode == 1
    assert "executor ray://127.0.0.1:9: cannot connect to the Ray cluster" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_threshold_tuning_on_an_imbalanced_target(tmp_path: Path) -> None:
    spec = _project(
        tmp_path / "p",
        executor="process",
        tuning="{method: random, trials: 3}",
        extra="imbalance: {strategy: class_weight, threshold: {metric: f1}}\n",
    )
    out = run_cli("run", str(spec), home=tmp_path / "home", cwd=tmp_path).stdout
    flat = " ".join(out.split())  # the console wraps long lines
    found = re.search(r"tuned for f1: [0-9.]+ \(CV f1 ([0-9.]+) at 0\.5 -> ([0-9.]+)\)", flat)
    assert found, flat
    assert float(found.group(2)) > float(found.group(1))


def test_a_run_is_reproduced_from_its_record(tmp_path: Path) -> None:
    spec = _project(
        tmp_path / "p", executor="process", tuning="{method: bayes, trials: 4, batch: 2}"
    )
    home = tmp_path / "home"
    run_cli("run", str(spec), home=home, cwd=tmp_path)
    run_id = _searches(f"sqlite:///{home / 'mlship.db'}")[0]
    original = run_id.study_name.split(":")[0][:8]
    spec.write_text("this file may change after the run; the record is what is re-run\n")
    out = run_cli("runs", "reproduce", original, home=home, cwd=tmp_path).stdout
    assert "Reproduced: every metric within 1e-09." in out
    assert "Same data (content hash): yes" in out
    assert "holdout" in out and "average_precision" in out


def test_nested_cross_validation_with_smote_inside_the_folds(tmp_path: Path) -> None:
    spec = _project(
        tmp_path / "p",
        executor="process",
        tuning="{method: random, trials: 3, batch: 3}",
        split="{holdout: 0.25, folds: 3, seed: 5, nested: true}",
        extra="imbalance: {strategy: smote, ratio: 0.5}\n",
    )
    home = tmp_path / "home"
    out = run_cli("run", str(spec), home=home, cwd=tmp_path).stdout
    flat = " ".join(out.split())
    assert re.search(
        r"Nested cross-validation of \w+: [0-9.]+ ± [0-9.]+ average_precision over 3 outer folds",
        flat,
    ), flat

    shown = " ".join(
        run_cli("runs", "show", "tuned", "--trials", home=home, cwd=tmp_path).stdout.split()
    )
    assert "Nested cross-validation (3 outer folds)" in shown
    # The run's own search and one search inside each outer fold, every trial listed.
    for study in ("forest", "forest:outer1", "forest:outer2", "forest:outer3"):
        assert f"Trials of {study}" in shown
    assert "Trials of logistic" not in shown  # fixed parameters: nothing to tune
    assert len(re.findall(r"│ [0-2] │ (complete|pruned) ", shown)) == 4 * 3

    # SMOTE resamples while fitting only: the registered model scores every input row.
    rows = pd.read_csv(tmp_path / "p" / "rows.csv").drop(columns=["label"])
    rows.to_csv(tmp_path / "in.csv", index=False)
    run_cli("predict", "tuned", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"),
            home=home, cwd=tmp_path)  # fmt: skip
    scored = pd.read_csv(tmp_path / "out.csv")
    assert len(scored) == len(rows)
    assert scored["id"].tolist() == rows["id"].tolist()
