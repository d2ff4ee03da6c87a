"""What a run did, said where users look: the split strategy and its columns in ``run``,
``runs show`` (text and JSON) and the evaluation report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import invoke_cli

ROWS = 300


def _project(root: Path, split: str, *, task: str = "regression", model: str = "") -> Path:
    """Generated rows with a date, a customer group and a numeric target (or a class)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "day": pd.date_range("2024-01-01", periods=ROWS, freq="D").strftime("%Y-%m-%d"),
            "customer_id": [f"c{i % 30}" for i in range(ROWS)],
            "a": rng.normal(size=ROWS).round(4),
            "b": rng.normal(size=ROWS).round(4),
        }
    )
    signal = 2 * frame["a"] - frame["b"] + rng.normal(scale=0.3, size=ROWS)
    if task == "classification":
        frame["y"] = np.where(signal > 0, "yes", "no")
        target = '{name: y, type: category, role: target, positive: "yes"}'
        model = model or "{name: lr, estimator: logistic_regression}"
        metric = "roc_auc"
    else:
        frame["y"] = signal.round(4)
        target = "{name: y, type: float, role: target}"
        model = model or "{name: ridge, estimator: ridge}"
        metric = "rmse"
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "rows.csv", index=False)
    spec = root / "pipeline.yaml"
    spec.write_text(
        f"""name: said
task: {task}
sources: [{{path: rows.csv}}]
columns:
  - {{name: day, type: datetime, role: ignore}}
  - {{name: customer_id, type: string, role: ignore}}
  - {{name: a, type: float}}
  - {{name: b, type: float}}
  - {target}
models:
  - {model}
split: {split}
metric: {metric}
executor: inline
"""
    )
    return spec


def test_a_time_split_is_named_with_its_column_everywhere(tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", "{method: timeseries, time: day, folds: 3}")
    home = tmp_path / "ws"
    ran = invoke_cli("run", str(spec), home=home)
    said = "split: timeseries on `day`, 3 expanding folds, test = latest 20% (60 rows)"
    assert said in ran.stdout

    shown = invoke_cli("runs", "show", "said", home=home)
    assert said in shown.stdout

    record = json.loads(invoke_cli("runs", "show", "said", "--json", home=home).stdout)
    strategy = record["details"]["split"]["strategy"]
    assert strategy["method"] == "timeseries"
    assert strategy["time"] == "day"
    assert strategy["folds"] == 3
    assert strategy["test_rows"] == 60 and strategy["train_rows"] == 240
    assert strategy["text"] == said
    assert record["metric"] == "rmse"
    assert record["candidates"][0]["name"] == "ridge"

    html = Path(re.search(r"Evaluation report: (\S+)", ran.stdout)[1]).read_text()  # type: ignore[index]
    assert "timeseries on `day`, 3 expanding folds, test = latest 20% (60 rows)" in html


def test_a_group_split_is_named_with_its_column(tmp_path: Path) -> None:
    spec = _project(
        tmp_path / "p",
        "{group: customer_id, folds: 3}",
        task="classification",
    )
    home = tmp_path / "ws"
    ran = invoke_cli("run", str(spec), home=home)
    said = re.search(
        r"split: stratified_group_kfold by `customer_id`, 3 folds, test = 20% of "
        r"`customer_id` groups \((\d+) rows\)",
        ran.stdout,
    )
    assert said is not None, ran.stdout
    record = json.loads(invoke_cli("runs", "show", "said", "--json", home=home).stdout)
    strategy = record["details"]["split"]["strategy"]
    assert strategy["method"] == "group_kfold" and strategy["group"] == "customer_id"
    assert strategy["stratified_folds"] is True and strategy["stratified_test"] is False
    assert strategy["test_rows"] == int(said[1])
    # whole groups: 30 customers of 10 rows each, so the test set is a multiple of 10 rows
    assert strategy["test_rows"] % 10 == 0
    shown = invoke_cli("runs", "show", "said", home=home)
    assert said[0] in shown.stdout


def test_a_shuffled_split_says_stratified_and_repeats(tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", "{folds: 3, repeats: 2}", task="classification")
    home = tmp_path / "ws"
    ran = invoke_cli("run", str(spec), home=home)
    assert "split: stratified 3-fold × 2 repeats, test = stratified 20% (60 rows)" in ran.stdout
