"""Evidently's side of ``bench_drift.py``; runs in Evidently's own virtualenv, not the project's.

    python _evidently_drift.py DATA_DIR REPEAT

Reads ``reference.parquet``, ``current.parquet`` and ``columns.json`` (``{"numerical": [...],
"categorical": [...]}``) from DATA_DIR, runs Evidently's data-drift preset REPEAT times and prints
one JSON object: the version, the seconds of each run, and each column's method, score and
verdict from the last run. A run is what a user of the preset times: both frames wrapped as
Evidently datasets with the given column types, and ``Report([DataDriftPreset()]).run``; reading
the Parquet files and importing Evidently are not part of it.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd


def main() -> None:
    data, repeat = Path(sys.argv[1]), int(sys.argv[2])
    warnings.filterwarnings("ignore")  # its deprecation warnings are not ours to act on
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = json.loads((data / "columns.json").read_text())
    reference = pd.read_parquet(data / "reference.parquet")
    current = pd.read_parquet(data / "current.parquet")
    definition = DataDefinition(
        numerical_columns=columns["numerical"], categorical_columns=columns["categorical"]
    )
    seconds: list[float] = []
    snapshot: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        report = Report([DataDriftPreset()], include_tests=True)
        snapshot = report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        seconds.append(time.perf_counter() - started)
    result = snapshot.dict()
    by_column: dict[str, dict[str, Any]] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            by_column[config["column"]] = {
                "method": config["method"],
                "threshold": config["threshold"],
                "score": float(metric["value"]),
            }
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if params.get("type", "").endswith(":ValueDrift"):
            by_column[params["column"]]["drifted"] = test["status"] == "FAIL"
    print(json.dumps({"version": evidently.__version__, "seconds": seconds, "columns": by_column}))


if __name__ == "__main__":
    main()
