"""MLflow's side of ``bench_ui.py``: the benchmark's runs written into an MLflow SQLite store.

Runs in MLflow's own virtualenv (the project has mlflow-skinny only, without the tracking
store). Logging 10,000 runs through MLflow's client takes many minutes, so the experiment is
created through the client (which creates and migrates the schema) and the runs are then
written in bulk into the tables its store reads: runs, params, metrics, latest_metrics and the
``mlflow.runName`` tag. Each run keeps the id it has in mlship, so a row links to the same id in
both tools.

    python _mlflow_ui_seed.py RUNS.json DB [VERSIONS.json]

``RUNS.json`` is what ``bench_ui.py`` wrote: a list of runs, each with ``id``, ``name``,
``started_ms``, ``params`` (name to text) and ``metrics`` (name to number); ``VERSIONS.json``,
``{"model": NAME, "runs": [run ids]}``: the registered model whose versions 1, 2, ... those runs
made (rows of registered_models and model_versions, as the registry writes them). Prints the
experiment's id. :func:`mlflow_rows` imports nothing of MLflow, so the project's tests can check
it without MLflow installed.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

EXPERIMENT = "synthetic"
RUN_SECONDS = 30

COLUMNS = {
    "runs": (
        "run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id", "status",
        "start_time", "end_time", "source_version", "lifecycle_stage", "artifact_uri",
        "experiment_id",
    ),
    "params": ("key", "value", "run_uuid"),
    "metrics": ("key", "value", "timestamp", "run_uuid", "step", "is_nan"),
    "latest_metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
    "tags": ("key", "value", "run_uuid"),
}  # fmt: skip
"""The columns written, per table, in the order of :func:`mlflow_rows`' tuples."""


def mlflow_rows(runs: list[dict[str, Any]], experiment_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """The rows MLflow's store holds for ``runs``, per table (columns as :data:`COLUMNS`)."""
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in COLUMNS}
    for run in runs:
        run_id, started = run["id"], int(run["started_ms"])
        ended = started + RUN_SECONDS * 1000
        rows["runs"].append(
            (run_id, run["name"], "LOCAL", "bench", "", "bench", "FINISHED", started, ended, "",
             "active", f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts", experiment_id)
        )  # fmt: skip
        rows["params"] += [(key, str(value), run_id) for key, value in run["params"].items()]
        for key, value in run["metrics"].items():
            rows["metrics"].append((key, float(value), started, run_id, 0, 0))
            rows["latest_metrics"].append((key, float(value), started, 0, 0, run_id))
        rows["tags"].append(("mlflow.runName", run["name"], run_id))
    return rows


def version_rows(
    model: str, made_by: list[str], runs: list[dict[str, Any]]
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The registered model's row and its versions' rows (columns as :data:`VERSION_COLUMNS`):
    version N made by run ``made_by[N - 1]``, registered when that run ended."""
    ended = {run["id"]: int(run["started_ms"]) + RUN_SECONDS * 1000 for run in runs}
    last = max((ended[run_id] for run_id in made_by), default=0)
    versions = [
        (model, number, ended[run_id], ended[run_id], "", "bench", "None",
         f"runs:/{run_id}/model", run_id, "READY", "", "", f"mlflow-artifacts:/{run_id}/model")
        for number, run_id in enumerate(made_by, start=1)
    ]  # fmt: skip
    return (model, last, last, ""), versions


VERSION_COLUMNS = (
    "name", "version", "creation_time", "last_updated_time", "description", "user_id",
    "current_stage", "source", "run_id", "status", "status_message", "run_link",
    "storage_location",
)  # fmt: skip


def seed(runs: list[dict[str, Any]], database: Path, versions: dict[str, Any] | None = None) -> int:
    """Create the experiment in a new store at ``database`` and write ``runs`` (and the
    versions of ``versions``); the experiment's id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    experiment_id = int(client.create_experiment(EXPERIMENT))
    connection = sqlite3.connect(database)
    try:
        with connection:  # one transaction: a failed seed leaves no half-written experiment
            for table, values in mlflow_rows(runs, experiment_id).items():
                names = COLUMNS[table]
                quoted = ", ".join(f'"{name}"' for name in names)
                marks = ", ".join("?" for _ in names)
                connection.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", values)
            if versions is not None:
                model, rows = version_rows(versions["model"], versions["runs"], runs)
                connection.execute(
                    "INSERT INTO registered_models (name, creation_time, last_updated_time,"
                    " description) VALUES (?, ?, ?, ?)",
                    model,
                )
                quoted = ", ".join(VERSION_COLUMNS)
                marks = ", ".join("?" for _ in VERSION_COLUMNS)
                connection.executemany(
                    f"INSERT INTO model_versions ({quoted}) VALUES ({marks})", rows
                )
    finally:
        connection.close()
    return experiment_id


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: _mlflow_ui_seed.py RUNS.json DB [VERSIONS.json]")
    runs = json.loads(Path(sys.argv[1]).read_text())
    versions = json.loads(Path(sys.argv[3]).read_text()) if len(sys.argv) == 4 else None
    print(seed(runs, Path(sys.argv[2]), versions))


if __name__ == "__main__":
    main()
