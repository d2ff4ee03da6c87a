"""Refit before shipping, through the command line, on a daily series with a trend.

The series keeps rising, so the newest rows are the ones most like the next period. A forest
cannot extrapolate: fitted on the training part only, it predicts the next period at the level of
the oldest 80% of the data; refitted on every labelled row it has seen the latest level. The test
prints both errors on the next period (run with -s to read them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import invoke_cli

DAYS = 500
NEXT = 60
START = pd.Timestamp("2024-01-01")


def _series(first: int, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """Days ``first`` to ``first + count - 1``: trend, a weekly season and noise."""
    day = np.arange(first, first + count)
    weekday = day % 7
    frame = pd.DataFrame(
        {
            "date": [(START + pd.Timedelta(days=int(d))).date().isoformat() for d in day],
            "day": day,
            "weekday": weekday,
            "promo": rng.integers(0, 2, count),
        }
    )
    season = 3.0 * np.sin(2 * np.pi * weekday / 7)
    frame["sales"] = (0.05 * day + season + 2.0 * frame["promo"] + rng.normal(0, 0.5, count)).round(
        4
    )
    return frame


def _spec(root: Path, name: str, refit: str) -> Path:
    spec = root / f"{name}.yaml"
    spec.write_text(
        f"""name: {name}
task: regression
sources: [{{path: history.csv}}]
columns:
  - {{name: date, type: datetime, role: ignore}}
  - {{name: day, type: integer}}
  - {{name: weekday, type: integer}}
  - {{name: promo, type: integer}}
  - {{name: sales, type: float, role: target}}
models:
  - {{name: forest, estimator: random_forest, params: {{n_estimators: 40, random_state: 0}}}}
split: {{method: timeseries, time: date, holdout: 0.2, folds: 3}}
metric: mae
executor: inline
refit: {refit}
"""
    )
    return spec


def _predictions(home: Path, root: Path, ref: str, rows: pd.DataFrame, label: str) -> np.ndarray:
    inputs = root / f"{label}-inputs.csv"
    rows[["day", "weekday", "promo"]].to_csv(inputs, index=False)
    output = root / f"{label}-predictions.csv"
    invoke_cli("predict", ref, str(inputs), "-o", str(output), home=home)
    return pd.read_csv(output)["prediction"].to_numpy(dtype=float)


def _mae(y: pd.Series, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(y.to_numpy(dtype=float) - predicted)))


def test_refit_all_ships_a_model_that_has_seen_the_newest_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    history = _series(0, DAYS, rng)
    upcoming = _series(DAYS, NEXT, rng)
    root, home = tmp_path / "project", tmp_path / "home"
    root.mkdir()
    history.to_csv(root / "history.csv", index=False)
    test_rows = history.iloc[DAYS - DAYS // 5 :]  # the latest 20% by date: the test set

    runs: dict[str, dict[str, object]] = {}
    for name, refit in (("sales_all", "all"), ("sales_train", "train")):
        invoke_cli("run", str(_spec(root, name, refit)), home=home)
        shown = invoke_cli("runs", "show", name, "--json", home=home)
        runs[name] = json.loads(shown.stdout)

    refit_all = dict(runs["sales_all"]["details"]["refit"])  # type: ignore[index]
    kept = refit_all.pop("scored_model")  # the scored model, kept for the model card
    assert refit_all == {
        "on": "all",
        "rows": DAYS,
        "up_to": (START + pd.Timedelta(days=DAYS - 1)).date().isoformat(),
    }
    assert len(kept["sha256"]) == 64 and kept["signature"]
    assert runs["sales_train"]["details"]["refit"] == {  # type: ignore[index]
        "on": "train",
        "rows": DAYS - len(test_rows),
        "up_to": (START + pd.Timedelta(days=DAYS - len(test_rows) - 1)).date().isoformat(),
    }

    # The next period, beyond every labelled row.
    mae_all = _mae(upcoming["sales"], _predictions(home, root, "sales_all", upcoming, "all"))
    mae_train = _mae(upcoming["sales"], _predictions(home, root, "sales_train", upcoming, "train"))
    print(
        f"\nMAE on the next {NEXT} days: refit all {mae_all:.3f}, refit train {mae_train:.3f} "
        f"(sales rise {0.05 * NEXT:.1f} over the period)"
    )
    assert mae_all < mae_train

    # refit: train ships the model the run scored: its test-set MAE is the recorded one. The
    # refitted model has learnt the test rows, so its error on them is not the recorded one.
    for name, same in (("sales_train", True), ("sales_all", False)):
        record = runs[name]
        recorded = record["metrics"]["holdout"][record["best_candidate"]]["mae"]  # type: ignore[index]
        again = _mae(test_rows["sales"], _predictions(home, root, name, test_rows, f"test-{name}"))
        assert (abs(again - recorded) < 1e-9) is same, (name, again, recorded)

    text = invoke_cli("runs", "show", "sales_all", home=home).stdout
    assert f"The shipped model was fitted on {DAYS} rows up to 2025-05-14." in text
    text = invoke_cli("runs", "show", "sales_train", home=home).stdout
    assert "The shipped model is the one scored on the test set, fitted on the 400 training" in text
    model = invoke_cli("models", "show", "sales_all", home=home).stdout
    assert "fitted on" in model and "500 rows up to 2025-05-14" in model
    invoke_cli("models", "card", "sales_train:1", "-o", str(tmp_path / "cards"), home=home)
    card = (tmp_path / "cards" / "sales_train-1-card.md").read_text()
    assert "fitted on the 400 training rows" in card
    report = Path(runs["sales_all"]["details"]["report"]).read_text()  # type: ignore[index]
    assert "The shipped model was fitted on 500 rows up to 2025-05-14." in report
