"""MLflow's side of ``bench_ui.py``: the benchmark's runs written into an MLflow SQLite store.

Runs in MLflow's own virtualenv (the project has mlflow-skinny only, without the tracking
store). Logging 10,000 runs through MLflow's client takes many minutes, so the experiment is
created through the client (which creates and migrates the schema) and the runs are then
written in bulk into the tables its store reads: runs, params, metrics, latest_metrics and the
``mlflow.runName`` tag. Each run keeps the id it has in mlship, so a row links to the same id in
both tools.

    python _mlflow_ui_seed.py RUNS.json DB

``RUNS.json`` is what ``bench_ui.py`` wrote: a list of runs, each with ``id``, ``name``,
``started_ms``, ``params`` (name to text) and ``metrics`` (name to number). Prints the
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


def seed(runs: list[dict[str, Any]], database: Path) -> int:
    """Create the experiment in a new store at ``database`` and write ``runs``; its id."""
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
    finally:
        connection.close()
    return experiment_id


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: _mlflow_ui_seed.py RUNS.json DB")
    runs = json.loads(Path(sys.argv[1]).read_text())
    print(seed(runs, Path(sys.argv[2])))


if __name__ == "__main__":
    main()
