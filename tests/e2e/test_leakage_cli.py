"""Target leakage through the command line: a planted leak warns (the run's output, the report's
panel, ``runs show --json``) and withholds the fit verdict; ``leakage: fail`` stops the run before
training and registers nothing; clean data raises no alarm."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

from tests.conftest import CliResult, invoke_cli


def _cancer_project(root: Path, *, leak: bool, leakage: str = "") -> Path:
    """Breast cancer with a few of its columns; with ``leak`` a ``review_score`` that is the
    diagnosis plus a little noise (as if written by the pathologist after the result)."""
    data = load_breast_cancer(as_frame=True)
    names = ["mean radius", "mean texture", "mean smoothness", "worst concavity", "worst area"]
    frame = data.data[names].rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = data.target.map({0: "malignant", 1: "benign"})
    if leak:
        rng = np.random.default_rng(4)
        frame["review_score"] = ((data.target == 0) + rng.normal(0, 0.1, len(frame))).round(3)
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "cells.csv", index=False)
    features = [c for c in frame.columns if c != "diagnosis"]
    columns = "\n".join(f"  - {{name: {name}, type: float}}" for name in features)
    spec = root / "pipeline.yaml"
    spec.write_text(
        f"""name: cells
task: classification
sources: [{{path: cells.csv}}]
columns:
{columns}
  - {{name: diagnosis, type: category, role: target, positive: malignant}}
models: [{{name: logistic, estimator: logistic_regression, params: {{max_iter: 2000}}}}]
split: {{holdout: 0.25, folds: 3, seed: 5}}
metric: roc_auc
executor: inline
{leakage}"""
    )
    return spec


def _run(spec: Path, home: Path, *, check: bool = True) -> CliResult:
    result = invoke_cli("run", str(spec), home=home, cwd=spec.parent, check=check)
    print(f"\n$ mlship run {spec.name} -> exit {result.returncode}\n{result.stderr}")
    return result


def _record(home: Path) -> dict[str, Any]:
    shown = invoke_cli("runs", "show", "cells", "--json", home=home).stdout
    record: dict[str, Any] = json.loads(shown)
    return record


def _report(stdout: str) -> str:
    found = re.search(r"Evaluation report: (\S+\.html)", stdout)
    assert found is not None, stdout
    return Path(found.group(1)).read_text()


def test_a_leaking_column_warns_shows_the_panel_and_withholds_the_verdict(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    result = _run(_cancer_project(tmp_path / "p", leak=True), home)
    assert (
        "warning: possible target leakage in column 'review_score' (single-feature score, "
        "roc_auc 1)" in result.stderr
    )
    assert "no fit verdict while a suspect stands" in result.stderr
    assert "Registered cells:1" in result.stdout  # warn: the run goes on

    page = _report(result.stdout)
    assert "<h2>Possible target leakage</h2>" in page
    assert "<code>review_score</code>" in page and "single-feature score" in page
    assert "possible leakage" in page and "cannot be trusted until" in page
    assert ">a good fit<" not in page

    record = _record(home)
    screening = record["details"]["leakage"]
    print(json.dumps(screening, indent=1))
    assert screening["mode"] == "warn" and screening["screened"] == 6
    found = {(s["column"], s["test"]) for s in screening["suspects"]}
    assert ("review_score", "single-feature score") in found
    assert {column for column, _ in found} == {"review_score"}
    suspect = screening["suspects"][0]
    assert suspect["figure"] >= suspect["threshold"] == 0.98

    shown = invoke_cli("runs", "show", "cells", home=home).stdout
    assert "Leakage screening (warn): 6 features screened" in shown
    assert "possible target leakage in 'review_score' (single-feature score)" in shown
    again = invoke_cli("runs", "report", "cells", "-o", str(tmp_path / "out"), home=home).stdout
    assert "Fit: possible leakage. The scores cannot be trusted" in again


def test_leakage_fail_stops_before_training_and_registers_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = _cancer_project(tmp_path / "p", leak=True, leakage="leakage: fail")
    result = _run(spec, home, check=False)
    assert result.returncode == 1
    assert "error: possible target leakage (leakage: fail)" in result.stderr
    assert "'review_score' (single-feature score)" in result.stderr
    assert "Registered" not in result.stdout
    record = _record(home)
    assert record["status"] == "failed"
    assert "review_score" in record["error"]
    assert record["candidates"] == []
    models = invoke_cli("models", "list", home=home).stdout
    assert "cells" not in models

    allowed = spec.read_text().replace(
        "leakage: fail", "leakage: {mode: fail, allow: [review_score]}"
    )
    spec.write_text(allowed)
    passed = _run(spec, home)
    assert "Registered cells:1" in passed.stdout
    assert "possible target leakage" not in passed.stderr


def test_clean_data_raises_no_alarm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = _run(_cancer_project(tmp_path / "p", leak=False), home)
    assert "leakage" not in result.stderr
    assert "Possible target leakage" not in _report(result.stdout)
    screening = _record(home)["details"]["leakage"]
    assert screening["suspects"] == [] and screening["screened"] == 5


def test_a_date_recorded_after_the_time_split_column_is_caught(tmp_path: Path) -> None:
    rows = 600
    rng = np.random.default_rng(8)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        np.sort(rng.uniform(0, 300, rows)), unit="D"
    )
    frame = pd.DataFrame(
        {
            "created_at": created.strftime("%Y-%m-%d %H:%M:%S"),
            "amount": rng.gamma(2.0, 40.0, rows).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "closed_at": (created + pd.to_timedelta(rng.uniform(1, 30, rows), unit="D")).strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
        }
    )
    logit = -1.0 + 0.01 * frame["amount"] + 0.8 * (frame["plan"] == "pro")
    frame["returned"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    root = tmp_path / "orders"
    root.mkdir()
    frame.to_csv(root / "orders.csv", index=False)
    spec = root / "pipeline.yaml"
    spec.write_text(
        """name: cells
task: classification
sources: [{path: orders.csv}]
columns:
  - {name: created_at, type: datetime, role: ignore}
  - {name: amount, type: float}
  - {name: plan, type: category}
  - {name: closed_at, type: datetime}
  - {name: returned, type: category, role: target}
models: [{estimator: logistic_regression}]
split: {method: timeseries, time: created_at, folds: 3}
metric: roc_auc
executor: inline
"""
    )
    home = tmp_path / "home"
    result = _run(spec, home)
    assert (
        "possible target leakage in column 'closed_at' (recorded after prediction time"
        in result.stderr
    )
    assert "at or after 'created_at'" in result.stderr
    suspects = _record(home)["details"]["leakage"]["suspects"]
    assert [(s["column"], s["test"]) for s in suspects] == [
        ("closed_at", "recorded after prediction time")
    ]
