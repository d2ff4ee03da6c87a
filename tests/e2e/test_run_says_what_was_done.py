"""What a run did, said where users look: the split strategy and its columns in ``run``,
``runs show`` (text and JSON) and the evaluation report; the selection metric in ``models list``;
whole numbers beside long names in a narrow terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import invoke_cli

ROWS = 300


def _project(
    root: Path, split: str, *, task: str = "regression", model: str = "", name: str = "said"
) -> Path:
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
        f"""name: {name}
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


def _cells(table: str) -> list[str]:
    return [cell.strip() for line in table.splitlines() for cell in line.split("│")]


def _column(table: str, index: int) -> list[str]:
    """The ``index``-th cell of every body line of the tables in ``table``."""
    lines = table.splitlines()
    return [line.split("│")[index].strip() for line in lines if line.count("│") > index]


def test_models_list_shows_the_selection_metric_with_cv_and_test_values(tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", "{folds: 3}", task="classification")
    home = tmp_path / "ws"
    invoke_cli("run", str(spec), home=home)
    record = json.loads(invoke_cli("runs", "show", "said", "--json", home=home).stdout)
    cv = record["candidates"][0]["cv_mean"]
    test = record["metrics"]["holdout"]["lr"]["roc_auc"]
    listed = invoke_cli("models", "list", home=home).stdout
    cells = _cells(listed)
    assert "selected by" in listed and "accuracy" not in listed
    assert "roc_auc" in cells
    assert f"{cv:.4f}" in cells and f"{test:.4f}" in cells


def test_long_names_fold_and_numbers_stay_whole_in_80_columns(tmp_path: Path) -> None:
    long_model = "logistic_regression_with_a_very_long_descriptive_name_v2_001"
    long_spec = "churn_prediction_for_the_subscription_business_unit_emea_2026"
    assert len(long_model) == 60 and len(long_spec) == 61  # spec names allow it
    spec = _project(
        tmp_path / "p",
        "{folds: 3}",
        task="classification",
        model=f"{{name: {long_model}, estimator: logistic_regression}}",
        name=long_spec,
    )
    home = tmp_path / "ws"
    narrow = {"COLUMNS": "80"}
    ran = invoke_cli("run", str(spec), home=home, env=narrow)
    record = json.loads(invoke_cli("runs", "show", long_spec, "--json", home=home).stdout)
    row = record["candidates"][0]
    holdout = record["metrics"]["holdout"][long_model]
    shown = invoke_cli("runs", "show", long_spec, home=home, env=narrow).stdout
    listed = invoke_cli("models", "list", home=home, env=narrow).stdout
    runs = invoke_cli("runs", "list", home=home, env=narrow).stdout
    for output in (ran.stdout, shown, listed, runs):
        assert max(len(line) for line in output.splitlines()) <= 80, output
        assert "…" not in output, output
    for output in (ran.stdout, shown):
        cells = _cells(output)
        assert f"{row['cv_mean']:.4f} ± {row['cv_std']:.3f}" in cells, output
        assert f"{row['train_mean']:.4f}" in cells, output
        assert f"{holdout['roc_auc']:.4f}" in cells, output
        # the name is all there, folded over several lines of its column
        assert long_model in "".join(_column(output, 2)), output
    assert f"{row['cv_mean']:.4f}" in _cells(listed), listed
    assert f"{holdout['roc_auc']:.4f}" in _cells(listed), listed
    assert f"{row['cv_mean']:.4f}" in _cells(runs), runs


def _breast_cancer(root: Path, models: str, executor: str) -> Path:
    """scikit-learn's bundled breast cancer table as a CSV project (features unscaled)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "cancer.csv", index=False)
    columns = "\n".join(f"  - {{name: {c}, type: float}}" for c in frame.columns[:-1])
    spec = root / "pipeline.yaml"
    spec.write_text(
        f"""name: cancer
task: classification
sources: [{{path: cancer.csv}}]
columns:
{columns}
  - {{name: target, type: category, role: target, positive: malignant}}
models:
{models}
split: {{folds: 3}}
metric: roc_auc
tuning: {{method: grid, trials: 2, pruner: none}}
executor: {executor}
"""
    )
    return spec


def test_library_warnings_are_counted_per_candidate_and_said_once(tmp_path: Path) -> None:
    """A logistic regression stopped after 5 iterations warns on every fit: in the pool's
    workers, nothing reaches stderr; the run counts them per candidate and says each once."""
    from tests.conftest import run_cli

    spec = _breast_cancer(
        tmp_path / "p",
        "  - {name: lr, estimator: logistic_regression, params: {max_iter: 5}}\n"
        "  - name: lr_tuned\n"
        "    estimator: logistic_regression\n"
        "    params: {max_iter: 5}\n"
        "    search: {C: [0.1, 1.0]}\n"
        "  - {name: tree, estimator: decision_tree, params: {max_depth: 3}}",
        executor="process",
    )
    home = tmp_path / "ws"
    ran = run_cli("run", str(spec), home=home)
    assert "ConvergenceWarning" not in ran.stderr, ran.stderr
    assert "Warning" not in ran.stderr, ran.stderr
    # 3 folds and the fit on the training part; 2 trials of 3 folds and the fit
    lr = re.search(r"lr: (\d+) × ConvergenceWarning: lbfgs failed to converge", ran.stdout)
    tuned = re.search(r"lr_tuned: (\d+) × ConvergenceWarning: lbfgs failed to", ran.stdout)
    assert lr is not None and tuned is not None, ran.stdout
    assert int(lr[1]) == 4 and int(tuned[1]) == 7, ran.stdout
    assert ran.stdout.count("× ConvergenceWarning") == 2
    assert "tree:" not in ran.stdout

    record = json.loads(run_cli("runs", "show", "cancer", "--json", home=home).stdout)
    found = record["details"]["warnings"]
    assert set(found) == {"lr", "lr_tuned"}
    assert found["lr"][0]["category"] == "ConvergenceWarning" and found["lr"][0]["count"] == 4
    shown = run_cli("runs", "show", "cancer", home=home).stdout
    assert lr[0] in shown and tuned[0] in shown
    html = Path(re.search(r"Evaluation report: (\S+)", ran.stdout)[1]).read_text()  # type: ignore[index]
    assert "library warnings" in html and "ConvergenceWarning" in html
