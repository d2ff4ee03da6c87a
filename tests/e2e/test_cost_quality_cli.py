"""Cost against quality through the command line: a run with a distilled candidate, selected by
what serving costs, whose leaderboard marks the Pareto fronts and says why it chose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import invoke_cli

ROWS = 600


def _project(root: Path, selection: str) -> Path:
    """A classification project with a slow teacher (a forest), a distilled tree and a logistic."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=ROWS).round(4),
            "b": rng.normal(size=ROWS).round(4),
            "plan": rng.choice(["basic", "plus", "pro"], ROWS),
        }
    )
    logit = 1.4 * frame["a"] - 0.9 * frame["b"] + 0.8 * (frame["plan"] == "pro")
    frame["label"] = np.where(rng.random(ROWS) < 1 / (1 + np.exp(-logit)), "yes", "no")
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "rows.csv", index=False)
    spec = root / "pipeline.yaml"
    spec.write_text(
        f"""name: churn
task: classification
sources: [{{path: rows.csv}}]
columns:
  - {{name: a, type: float}}
  - {{name: b, type: float}}
  - {{name: plan, type: category}}
  - {{name: label, type: category, role: target}}
models:
  - {{name: forest, estimator: random_forest, params: {{n_estimators: 60}}}}
  - name: student
    estimator: decision_tree
    params: {{max_depth: 4}}
    distilled_from: forest
  - {{name: logistic, estimator: logistic_regression}}
split: {{holdout: 0.25, folds: 3, seed: 5}}
metric: accuracy
selection: {selection}
executor: inline
"""
    )
    return spec


def test_a_distilled_candidate_selected_by_serving_cost(tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", "{rule: cheapest_within, tolerance: 0.2, cost: serving}")
    home = tmp_path / "home"
    out = invoke_cli("run", str(spec), home=home, cwd=tmp_path).stdout
    assert "student (distilled from forest)" in out
    assert "serve/1k" in out and "front" in out
    assert "Selected by cheapest_within 0.2 by serving cost" in out
    shown = json.loads(invoke_cli("runs", "show", "churn", "--json", home=home).stdout)
    details = shown["details"]
    costs = details["costs"]
    assert costs["student"]["distilled_from"] == "forest"
    assert details["selection"]["cost"] == "serving"
    # The forest of 60 trees is the largest and slowest to serve; within 0.2 accuracy of the
    # best, something cheaper to serve is selected, and it is on the serving front.
    serving = {name: c["serving_per_1k"] for name, c in costs.items()}
    assert serving["forest"] > min(serving.values())
    selected = next(c["name"] for c in shown["candidates"] if c["selected"])
    assert selected != "forest"
    assert serving[selected] == min(serving.values())
    assert "serving" in costs[selected]["fronts"]
    if selected == "student":  # the registry says whose predictions it learnt
        version = invoke_cli("models", "show", "churn", home=home).stdout
        assert '"distilled_from": "forest"' in version
    assert costs["forest"]["model_bytes"] > costs["student"]["model_bytes"]
    table = invoke_cli("runs", "show", "churn", home=home).stdout
    assert "serve" in table and "(distilled from forest)" in table
    assert "Selected by cheapest_within 0.2 by serving cost" in table
    page = Path(details["report"]).read_text()
    assert 'id="cost-quality"' in page and page.count("Score against") == 3
    assert "student, distilled from forest" in page


def test_a_teacher_that_is_not_a_candidate_is_refused(tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", "{rule: best}")
    spec.write_text(spec.read_text().replace("distilled_from: forest", "distilled_from: boost"))
    result = invoke_cli("run", str(spec), home=tmp_path / "home", check=False)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "models[1].distilled_from" in said or "models.1.distilled_from" in said
    assert "no candidate is called 'boost'" in said


def test_an_unknown_selection_cost_names_the_field(tmp_path: Path) -> None:
    spec = _project(tmp_path / "p", "{rule: cheapest_within, cost: storage}")
    result = invoke_cli("run", str(spec), home=tmp_path / "home", check=False)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "selection" in said and "cost" in said
    assert "training" in said and "serving" in said


def test_compress_prunes_a_boosted_model_and_sets_the_student_beside_its_teacher(
    tmp_path: Path,
) -> None:
    spec = _project(tmp_path / "p", "{rule: best}")
    spec.write_text(
        spec.read_text().replace(
            "{name: logistic, estimator: logistic_regression}",
            "{name: boost, estimator: gradient_boosting, params: {n_estimators: 30}}",
        )
    )
    home = tmp_path / "home"
    invoke_cli("run", str(spec), home=home, cwd=tmp_path)
    shown = json.loads(invoke_cli("runs", "show", "churn", "--json", home=home).stdout)
    boost = next(c for c in shown["candidates"] if c["name"] == "boost")
    out = invoke_cli(
        "compress", "churn", "--candidate", "boost", "--trees", "5,10,60", home=home
    ).stdout
    assert "Compression of run" in out and "score: CV accuracy" in out
    assert "student, distilled from forest" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "boost, first 5 of 30 trees" in lines and "boost, first 10 of 30 trees" in lines
    assert not any("first 60" in name for name in lines)  # more trees than it has: nothing to cut
    # "before" is the full ensemble scored on the run's own folds: the leaderboard's CV score.
    before = lines["boost, first 5 of 30 trees"].split("│")[2].split("->")[0].strip()
    assert float(before) == pytest.approx(boost["cv_mean"], abs=5e-5)
    sizes = lines["boost, first 5 of 30 trees"].split("│")[3].split("->")
    assert _bytes(sizes[1]) < _bytes(sizes[0])

    bad = invoke_cli("compress", "churn", "--candidate", "student", home=home, check=False)
    assert bad.returncode != 0
    assert "--candidate: student is a decision_tree; tree pruning takes" in bad.stderr
    bad = invoke_cli("compress", "churn", "--trees", "5,x", home=home, check=False)
    assert bad.returncode != 0 and "--trees: expected comma-separated whole numbers" in bad.stderr


def _bytes(shown: str) -> float:
    number, unit = shown.split()
    return float(number) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
