"""Time-ordered runs through the command line: a trend the model cannot see is called drift, not
over-fitting; a stationary series is not, nor are real rows without a trend; the backtest is in
the run's record, its JSON and its report, and the report says the test set is the latest rows."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.conftest import invoke_cli

ROWS = 800


def _project(root: Path, trend: float) -> Path:
    """Daily sales, four rows a day, stored newest first: y = 3x + z + ``trend`` per day + noise.
    The day orders the rows but is no feature, so a forest cannot follow the trend."""
    rng = np.random.default_rng(3)
    step = np.arange(ROWS)
    x, z = rng.normal(size=ROWS), rng.normal(size=ROWS)
    y = 3 * x + z + trend * (step // 4) + rng.normal(scale=0.5, size=ROWS)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(step // 4, unit="D")
    frame = pd.DataFrame(
        {"day": day.strftime("%Y-%m-%d"), "x": x.round(4), "z": z.round(4), "y": y.round(4)}
    )
    root.mkdir(parents=True)
    frame.iloc[::-1].to_csv(root / "rows.csv", index=False)
    spec = root / "pipeline.yaml"
    spec.write_text(
        """name: sales
task: regression
sources: [{path: rows.csv}]
columns:
  - {name: day, type: datetime, role: ignore}
  - {name: x, type: float}
  - {name: z, type: float}
  - {name: y, type: float, role: target}
models:
  - {name: forest, estimator: random_forest, params: {n_estimators: 20}}
split: {method: timeseries, time: day, folds: 4, holdout: 0.2}
metric: rmse
executor: inline
"""
    )
    return spec


def _run(root: Path, home: Path, trend: float) -> tuple[dict[str, Any], str, dict[str, Any], str]:
    """Train; return the run's JSON record, ``runs report``'s output, the report's JSON and its
    HTML page."""
    _project(root, trend)
    trained = invoke_cli("run", "pipeline.yaml", home=home, cwd=root)
    assert "Backtest over day (oldest first; the test set last)" in trained.stdout
    record = json.loads(invoke_cli("runs", "show", "sales", "--json", home=home).stdout)
    reported = invoke_cli("runs", "report", "sales", home=home).stdout
    json_path = re.search(r"JSON: (\S+)", reported)
    assert json_path is not None, reported
    written = Path(json_path.group(1))
    document = json.loads(written.read_text())
    page = written.with_suffix(".html").read_text()
    return record, " ".join(reported.split()), document, page


def test_a_trend_the_model_cannot_see_is_drift_not_overfitting(tmp_path: Path) -> None:
    record, reported, document, page = _run(tmp_path / "p", tmp_path / "home", trend=0.05)
    backtest = record["details"]["backtest"]
    rows = backtest["rows"]
    assert [row["label"] for row in rows] == ["fold 1", "fold 2", "fold 3", "fold 4", "test"]
    assert rows[-1]["validation"] == {"from": "2024-06-09", "to": "2024-07-18", "rows": 160}
    assert rows[-1]["train"] == {"from": "2024-01-01", "to": "2024-06-08", "rows": 640}
    assert rows[0]["train"]["from"] == "2024-01-01"
    for earlier, later in pairwise(rows):
        assert earlier["validation"]["to"] < later["validation"]["from"]
        assert earlier["train"]["rows"] < later["train"]["rows"]
    holdout = record["metrics"]["holdout"][record["best_candidate"]]
    assert abs(rows[-1]["score"] - holdout["rmse"]) < 1e-4
    candidate = record["candidates"][0]
    fold_scores = [row["score"] for row in rows[:-1]]
    assert abs(np.mean(fold_scores) - candidate["cv_mean"]) < 1e-4
    assert fold_scores == sorted(fold_scores)  # worse every fold
    assert backtest["test_set"] == (
        "The test set is the latest 160 rows (2024-06-09 \u2013 2024-07-18), scored once."
    )

    assert reported.startswith("Fit: drift. Validation RMSE worsens with time:"), reported
    assert (
        "Error grows with time: the newest rows differ from the older ones; refit on recent "
        "data or add time features." in reported
    )
    assert "More regularisation" not in reported
    evaluation = document["evaluation"]
    assert evaluation["diagnosis"]["learning_curve"]["train_sizes"] == [128, 256, 384, 512]
    assert evaluation["backtest"] == backtest
    assert document["run"]["test set"] == backtest["test_set"]

    assert "The test set is the latest 160 rows (2024-06-09 \u2013 2024-07-18), scored once." in (
        page
    )
    assert 'id="backtest"' in page and "2024-01-01 \u2013 2024-06-08" in page

    shown = invoke_cli("runs", "show", "sales", home=tmp_path / "home").stdout
    assert "The test set is the latest 160 rows (2024-06-09 – 2024-07-18), scored once." in shown
    assert re.search(r"test\s+│ 2024-01-01 – 2024-06-08 │\s+640 │ 2024-06-09 – 2024-07-18", shown)


def test_a_stationary_series_is_not_called_drift(tmp_path: Path) -> None:
    record, reported, document, _ = _run(tmp_path / "p", tmp_path / "home", trend=0.0)
    assert len(record["details"]["backtest"]["rows"]) == 5
    fit = document["evaluation"]["diagnosis"]["fit"]
    assert fit["verdict"] != "drift", fit
    assert not fit["time"]["drift"] and not fit["time"]["scores"]["falling"]
    assert "newest rows differ" not in reported


def test_real_rows_without_a_trend_raise_no_drift(tmp_path: Path) -> None:
    """scikit-learn's diabetes rows in their stored order, the row number standing for time."""
    from sklearn.datasets import load_diabetes

    root, home = tmp_path / "p", tmp_path / "home"
    root.mkdir()
    frame = load_diabetes(as_frame=True).frame
    frame.insert(0, "seq", range(len(frame)))
    frame.to_csv(root / "rows.csv", index=False)
    features = "\n".join(f"  - {{name: {name}, type: float}}" for name in frame.columns[1:-1])
    (root / "pipeline.yaml").write_text(
        f"""name: diabetes
task: regression
sources: [{{path: rows.csv}}]
columns:
  - {{name: seq, type: integer, role: ignore}}
{features}
  - {{name: target, type: float, role: target}}
models:
  - {{name: ridge, estimator: ridge}}
split: {{method: timeseries, time: seq, folds: 4}}
metric: rmse
executor: inline
"""
    )
    invoke_cli("run", "pipeline.yaml", home=home, cwd=root)
    record = json.loads(invoke_cli("runs", "show", "diabetes", "--json", home=home).stdout)
    rows = record["details"]["backtest"]["rows"]
    assert rows[-1]["validation"] == {"from": 353, "to": 441, "rows": 89}
    assert [row["train"]["rows"] for row in rows] == [73, 143, 213, 283, 353]
    reported = " ".join(invoke_cli("runs", "report", "diabetes", home=home).stdout.split())
    assert reported.startswith("Fit: a good fit."), reported
