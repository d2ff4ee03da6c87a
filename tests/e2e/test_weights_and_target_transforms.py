"""Sample weights and target transforms through the command line.

Two populations with opposite trends share one feature; one of them weighs twenty times as much.
A model trained with the weight column follows the heavy population, so its weighted test error is
lower than that of the same model trained without weights, and the metrics a run reports are the
weighted ones (checked against scikit-learn on the predictions ``mlship predict`` gives). A
log-normal target learnt as its log comes back from the registered model in its own units.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from tests.conftest import invoke_cli

ROWS = 600
HOLDOUT = 0.25
SEED = 7


def _two_populations(root: Path) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    heavy = rng.random(ROWS) < 0.5
    x = rng.uniform(0, 4, ROWS).round(4)
    y = np.where(heavy, 3 * x, 10 - 2 * x) + rng.normal(0, 0.3, ROWS)
    frame = pd.DataFrame(
        {
            "x": x,
            "population": np.where(heavy, "heavy", "light"),
            "w": np.where(heavy, 20.0, 1.0),
            "y": y.round(4),
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "rows.csv", index=False)
    return frame


def _spec(root: Path, name: str, weight_role: str, extra: str = "") -> Path:
    spec = root / f"{name}.yaml"
    spec.write_text(
        f"""name: {name}
task: regression
sources: [{{path: rows.csv}}]
columns:
  - {{name: x, type: float}}
  - {{name: population, type: category, role: ignore}}
  - {{name: w, type: float, role: {weight_role}}}
  - {{name: y, type: float, role: target}}
models:
  - {{name: linear, estimator: linear_regression}}
  - name: ridge
    estimator: ridge
    search: {{alpha: {{float: [0.01, 10.0], log: true}}}}
split: {{method: kfold, holdout: {HOLDOUT}, folds: 3, seed: {SEED}}}
metric: rmse
refit: train  # the scored model is registered: its predictions give the metrics
tuning: {{method: random, trials: 3, batch: 3}}
executor: inline
{extra}"""
    )
    return spec


def _run(spec: Path, home: Path) -> tuple[str, dict[str, Any]]:
    out = invoke_cli("run", str(spec), home=home, cwd=spec.parent).stdout
    name = spec.stem
    [report] = (home / "reports").glob(f"{name}-run-*.json")
    return out, json.loads(report.read_text(encoding="utf-8"))


def _test_predictions(name: str, frame: pd.DataFrame, root: Path, home: Path) -> pd.DataFrame:
    """The registered model's predictions for the test rows, from ``mlship predict``."""
    _, test = train_test_split(np.arange(len(frame)), test_size=HOLDOUT, random_state=SEED)
    rows = frame.iloc[np.sort(test)].reset_index(drop=True)
    rows.to_csv(root / f"{name}-test.csv", index=False)
    out = root / f"{name}-scored.csv"
    invoke_cli("predict", name, str(root / f"{name}-test.csv"), "-o", str(out), home=home)
    scored = pd.read_csv(out)
    assert len(scored) == len(rows)
    rows["prediction"] = scored["prediction"].to_numpy()
    return rows


def test_weights_steer_the_fit_and_every_reported_metric_is_weighted(tmp_path: Path) -> None:
    root, home = tmp_path / "p", tmp_path / "home"
    frame = _two_populations(root)
    weighted_out, weighted = _run(_spec(root, "weighted", "weight"), home)
    _, plain = _run(_spec(root, "plain", "ignore"), home)
    assert "Registered weighted:1" in weighted_out
    said = " ".join(weighted_out.split())
    assert "Sample weights from column w: every fit and every metric" in said

    mine = _test_predictions("weighted", frame, root, home)
    theirs = _test_predictions("plain", frame, root, home)
    w = mine["w"].to_numpy()

    def weighted_rmse(rows: pd.DataFrame) -> float:
        return float(skm.root_mean_squared_error(rows["y"], rows["prediction"], sample_weight=w))

    # The weighted model follows the heavy population; trained without weights, it cannot.
    assert weighted_rmse(mine) < 0.5 * weighted_rmse(theirs)
    heavy = mine["population"] == "heavy"
    assert np.abs(mine["prediction"][heavy] - 3 * mine["x"][heavy]).mean() < 1.0

    # The reported test metrics are the weighted ones, as scikit-learn computes them.
    values = weighted["evaluation"]["metrics"]["values"]
    by_hand = {
        "rmse": weighted_rmse(mine),
        "mae": skm.mean_absolute_error(mine["y"], mine["prediction"], sample_weight=w),
        "r2": skm.r2_score(mine["y"], mine["prediction"], sample_weight=w),
    }
    unweighted_rmse = skm.root_mean_squared_error(mine["y"], mine["prediction"])
    for name, expected in by_hand.items():
        assert np.isclose(values[name]["value"], expected, rtol=1e-4), name
        assert values[name]["low"] <= values[name]["value"] <= values[name]["high"]
    assert not np.isclose(values["rmse"]["value"], unweighted_rmse, rtol=1e-2)
    # The run without weights reports the plain metrics of its own predictions.
    plain_rmse = skm.root_mean_squared_error(theirs["y"], theirs["prediction"])
    assert np.isclose(plain["evaluation"]["metrics"]["values"]["rmse"]["value"], plain_rmse, 1e-4)

    # The run's record and its report say the numbers are weighted.
    record = invoke_cli("runs", "show", weighted["run"]["id"][:8], home=home).stdout
    assert "Sample weights from column w: every fit and every metric" in " ".join(record.split())
    assert weighted["run"]["sample weights"] == "w" and "sample weights" not in plain["run"]
    # The stored holdout metrics and the model's record agree with the report.
    shown = invoke_cli("models", "show", "weighted", home=home).stdout
    assert f"{by_hand['rmse']:.4f}" in shown


def test_negative_and_missing_weights_are_quarantined_with_their_reason(tmp_path: Path) -> None:
    root, home = tmp_path / "p", tmp_path / "home"
    frame = _two_populations(root)
    frame["w"] = frame["w"].astype(object)
    frame.loc[4, "w"] = -2.5
    frame.loc[9, "w"] = ""
    frame.to_csv(root / "rows.csv", index=False)
    spec = _spec(root, "weighted", "weight")
    out = invoke_cli("data", "validate", str(spec), home=home).stdout
    assert f"{ROWS} rows in, {ROWS - 2} kept, 2 quarantined" in out
    quarantine = pl.read_parquet(home / "reports" / "weighted-quarantine.parquet")
    reasons = sorted(quarantine["_reasons"].to_list())
    negative = "w: -2.5 is not a sample weight (expected a number of 0 or more)"
    assert any(negative in reason for reason in reasons)
    assert any("w: is empty, but a sample weight is required" in r for r in reasons)


def test_refused_combinations_name_the_model_and_the_weight_column(tmp_path: Path) -> None:
    root, home = tmp_path / "p", tmp_path / "home"
    _two_populations(root)
    spec = _spec(root, "weighted", "weight")
    spec.write_text(
        spec.read_text().replace(
            "  - {name: linear, estimator: linear_regression}",
            "  - {name: linear, estimator: linear_regression}\n  - {name: near, estimator: knn}",
        )
    )
    failed = invoke_cli("run", str(spec), home=home, check=False)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    assert (
        "candidate 'near' (knn) cannot learn from sample weights, and column 'w' has role weight"
        in " ".join(failed.stderr.split())
    )

    spec.write_text(
        spec.read_text().replace("role: target}", "role: target, target_transform: logs}")
    )
    failed = invoke_cli("run", str(spec), home=home, check=False)
    assert "target_transform" in failed.stderr and "log1p" in failed.stderr


def _log_normal(root: Path, rows: int = 500) -> pd.DataFrame:
    """Prices spread over three orders of magnitude, multiplicative in their features."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=rows).round(4), "b": rng.normal(size=rows).round(4)})
    frame["price"] = np.exp(3 + 1.2 * frame["a"] - 0.8 * frame["b"] + rng.normal(0, 0.2, rows))
    frame["price"] = frame["price"].round(3)
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "prices.csv", index=False)
    return frame


def _price_spec(root: Path, transform: str) -> Path:
    spec = root / "prices.yaml"
    spec.write_text(
        f"""name: prices
task: regression
sources: [{{path: prices.csv}}]
columns:
  - {{name: a, type: float}}
  - {{name: b, type: float}}
  - {{name: price, type: float, role: target, target_transform: {transform}}}
models:
  - {{name: linear, estimator: linear_regression}}
split: {{method: kfold, holdout: {HOLDOUT}, folds: 3, seed: {SEED}}}
metric: rmse
refit: train  # the scored model is registered: its predictions give the metrics
executor: inline
"""
    )
    return spec


def test_a_log_target_is_predicted_and_scored_in_its_own_units(tmp_path: Path) -> None:
    root, home = tmp_path / "p", tmp_path / "home"
    frame = _log_normal(root)
    out, report = _run(_price_spec(root, "log"), home)
    assert "Registered prices:1" in out
    said = " ".join(out.split())
    assert "Target price learnt as log: predictions and metrics are in its own units" in said

    scored = _test_predictions("prices", frame, root, home)
    predicted, truth = scored["prediction"].to_numpy(), scored["price"].to_numpy()
    # Original units: the same order of magnitude as the prices, not their logarithms.
    assert 0.5 < np.median(predicted) / np.median(truth) < 2
    assert predicted.max() > 100 and (predicted > 0).all()
    # A linear model of log(price) is exact up to noise: errors of about 20%, not of the scale.
    assert np.median(np.abs(predicted / truth - 1)) < 0.3
    values = report["evaluation"]["metrics"]["values"]
    assert np.isclose(values["rmse"]["value"], skm.root_mean_squared_error(truth, predicted), 1e-4)
    assert np.isclose(values["mae"]["value"], skm.mean_absolute_error(truth, predicted), 1e-4)
    assert "LinearRegression" in invoke_cli("models", "show", "prices", home=home).stdout


def test_log_refuses_targets_that_are_not_positive(tmp_path: Path) -> None:
    root, home = tmp_path / "p", tmp_path / "home"
    frame = _log_normal(root)
    frame.loc[[3, 8], "price"] = [0.0, -1.5]
    frame.to_csv(root / "prices.csv", index=False)
    failed = invoke_cli("run", str(_price_spec(root, "log")), home=home, check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    message = " ".join(failed.stderr.split())
    assert "target column 'price': target_transform log needs values greater than 0" in message
    assert "use log1p for targets of 0 or more, or yeo_johnson" in message


def test_a_weighted_classifier_with_a_tuned_threshold(tmp_path: Path) -> None:
    """Scikit-learn's bundled breast cancer set, benign tumours weighing three times as much:
    the weighted threshold tuner runs inside a real run, and the report's F1 is weighted."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.iloc[:, [0, 1, 2, 3, 20, 21]].copy()
    frame.columns = ["radius", "texture", "perimeter", "area", "worst_radius", "worst_texture"]
    frame["diagnosis"] = np.where(data.target == 1, "benign", "malignant")
    frame["w"] = np.where(data.target == 1, 3.0, 1.0)
    root, home = tmp_path / "p", tmp_path / "home"
    root.mkdir()
    frame.to_csv(root / "tumours.csv", index=False)
    features = "".join(f"  - {{name: {name}, type: float}}\n" for name in frame.columns[:6])
    spec = root / "tumours.yaml"
    spec.write_text(
        f"""name: tumours
task: classification
sources: [{{path: tumours.csv}}]
columns:
{features}  - {{name: diagnosis, type: category, role: target, positive: malignant}}
  - {{name: w, type: float, role: weight}}
models:
  - {{name: logistic, estimator: logistic_regression, params: {{max_iter: 2000}}}}
split: {{holdout: 0.25, folds: 3, seed: 2}}
metric: f1
refit: train  # the scored model is registered: its predictions give the metrics
imbalance: {{strategy: class_weight, threshold: {{metric: f1}}}}
executor: inline
"""
    )
    out, report = _run(spec, home)
    said = " ".join(out.split())
    assert "Decision threshold of logistic tuned for f1" in said
    assert "Sample weights from column w" in said
    assert 0 < report["run"]["decision threshold"] < 1
    values = report["evaluation"]["metrics"]["values"]
    assert values["f1"]["value"] > 0.8 and values["roc_auc"]["value"] > 0.9
    # The test rows of the stratified split (classes coded in order of appearance, as the run
    # codes them), scored by the registered model with its tuned threshold: the reported F1 is
    # the weighted F1 of the malignant class.
    _, test = train_test_split(
        np.arange(len(frame)),
        test_size=0.25,
        random_state=2,
        stratify=pd.factorize(frame["diagnosis"])[0],
    )
    rows = frame.iloc[np.sort(test)]
    rows.to_csv(root / "test.csv", index=False)
    invoke_cli("predict", "tumours", str(root / "test.csv"), "-o", str(root / "out.csv"), home=home)
    predicted = pd.read_csv(root / "out.csv")["prediction"]
    f1 = skm.f1_score(rows["diagnosis"], predicted, pos_label="malignant", sample_weight=rows["w"])
    assert values["f1"]["value"] == pytest.approx(f1, abs=1e-5)
    assert values["f1"]["value"] != pytest.approx(
        skm.f1_score(rows["diagnosis"], predicted, pos_label="malignant"), abs=1e-5
    )
