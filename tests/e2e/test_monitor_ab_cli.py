"""``mlship monitor ab`` end to end: a real server splits traffic between churn:1 and churn:2,
the true labels of most requests come back through ``POST /feedback`` (churn:2's answers judged
against labels that are half wrong: a canary that got worse), and the command reports each
variant's accuracy, requests and errors as the test counted them, and calls the canary
significantly worse."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import run_cli, two_churn_versions
from tests.serving import serving
from tests.traffic import churn_traffic

RECORDS, PER_REQUEST, REFUSED, UNLABELLED_EVERY = 800, 10, 4, 8


@dataclass(frozen=True)
class Canary:
    home: Path
    answered: Counter[int]
    """Records answered per version."""
    labelled: Counter[int]
    """Records whose label was sent back, per version (every 8th request's were not)."""
    right: Counter[int]
    """Records whose sent label equals the answer, per version."""
    refused: int


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Canary:
    root = tmp_path_factory.mktemp("abtest")
    home = two_churn_versions(root)
    traffic = churn_traffic(home, RECORDS, 0, seed=5)
    records, truth = traffic.records, traffic.truth
    deployment = root / "canary.yaml"
    deployment.write_text(
        """name: churn-ab
routes:
  - {model: "churn:1", weight: 0.6}
  - {model: "churn:2", weight: 0.4}
""",
        encoding="utf-8",
    )
    rng = np.random.default_rng(11)
    answered: Counter[int] = Counter()
    labelled: Counter[int] = Counter()
    right: Counter[int] = Counter()
    labels: list[dict[str, Any]] = []
    with serving(str(deployment), home) as server, httpx.Client(base_url=server.base) as client:
        for start in range(0, RECORDS, PER_REQUEST):
            # A key per request pins its route by a hash: the same split on every run.
            sent = {"records": records[start : start + PER_REQUEST], "key": f"request-{start}"}
            answer = client.post("/predict", json=sent)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            version = int(body["version"])
            answered[version] += PER_REQUEST
            if (start // PER_REQUEST) % UNLABELLED_EVERY == 0:
                continue  # no label came back for this request
            for row, predicted in enumerate(body["predictions"]):
                label = truth[start + row]
                if version == 2 and rng.random() < 0.5:  # the canary's world: half its answers
                    label = "no" if label == "yes" else "yes"  # are judged wrong
                labelled[version] += 1
                right[version] += label == str(predicted)
                labels.append({"request_id": body["request_id"], "row": row, "label": label})
        for _ in range(REFUSED):
            refused = client.post("/predict", json={"records": [{**records[0], "age": "old"}]})
            assert refused.status_code == 422
        stored = client.post("/feedback", json={"feedback": labels})
        assert stored.json() == {"stored": len(labels)}
    server.stop()
    return Canary(home, answered, labelled, right, REFUSED)


def test_each_variant_is_counted_and_the_worse_canary_is_called_worse(canary: Canary) -> None:
    result = run_cli("monitor", "ab", "churn", "--json", home=canary.home)
    report = json.loads(result.stdout)
    assert report["metric"] == "accuracy" and report["greater_is_better"] is True
    variants = {v["version"]: v for v in report["variants"]}
    assert set(variants) == {1, 2}
    for version in (1, 2):
        assert variants[version]["answered"] == canary.answered[version]
        assert variants[version]["labelled"] == canary.labelled[version]
        assert canary.labelled[version] < canary.answered[version]
        expected = canary.right[version] / canary.labelled[version]
        assert variants[version]["metric"] == pytest.approx(expected)
        assert variants[version]["health"]["requests"] is not None
        assert variants[version]["health"]["latency_p50_ms"] > 0
    # Refused requests are errors of the version they were routed to.
    errors = [v["health"]["error_rate"] * v["health"]["requests"] for v in variants.values()]
    assert sum(errors) == pytest.approx(canary.refused)
    assert report["control"] == max(canary.answered, key=lambda v: (canary.answered[v], v))
    (comparison,) = report["comparisons"]
    treatment = comparison["treatment"]
    assert {comparison["control"], treatment} == {1, 2}
    difference = variants[treatment]["metric"] - variants[comparison["control"]]["metric"]
    assert comparison["difference"] == pytest.approx(difference)
    low, high = comparison["interval"]
    assert low <= difference <= high
    # The always-valid interval is wider than the one-look interval at the same sample.
    fixed_low, fixed_high = comparison["fixed_interval"]
    assert high - low > fixed_high - fixed_low
    assert comparison["p_value"] < 0.05
    assert comparison["verdict"] == ("worse" if treatment == 2 else "better")


def test_the_table_names_the_control_and_says_the_canary_is_worse(canary: Canary) -> None:
    result = run_cli("monitor", "ab", "churn", "--control", "1", home=canary.home)
    assert "churn:1 (control)" in result.stdout
    assert "churn:2 against churn:1: accuracy -" in result.stdout
    assert "significantly worse" in result.stdout
    assert "sequential p = " in result.stdout


def test_too_few_labels_and_bad_options_are_said_plainly(canary: Canary) -> None:
    few = run_cli("monitor", "ab", "churn", "--window", "40 rows", "--control", "1",
                  home=canary.home)  # fmt: skip
    assert "too few labelled records to compare" in few.stdout
    absent = run_cli("monitor", "ab", "churn", "--control", "7", home=canary.home, check=False)
    assert absent.returncode == 1
    assert "--control: churn:7 answered no request in the last 1d" in absent.stderr
    window = run_cli("monitor", "ab", "churn", "--window", "soon", home=canary.home, check=False)
    assert window.returncode == 1 and "--window: expected" in window.stderr
    effect = run_cli("monitor", "ab", "churn", "--effect", "-1", home=canary.home, check=False)
    assert effect.returncode == 1 and "--effect: expected a positive difference" in effect.stderr
    alpha = run_cli("monitor", "ab", "churn", "--alpha", "1.5", home=canary.home, check=False)
    assert alpha.returncode == 1 and "--alpha: expected a level between 0 and 1" in alpha.stderr
    one = run_cli("monitor", "ab", "churn", "--window", "1 rows", home=canary.home)
    assert "answered in the last 1 row: nothing to compare." in one.stdout
    nothing = run_cli("monitor", "ab", "churn", "--window", "1s", home=canary.home)
    assert "No traffic for churn in the last 1s." in nothing.stdout


REGRESSION_SPEC = """name: lift
task: regression
sources: [{path: rows.csv}]
columns:
  - {name: a, type: float}
  - {name: y, type: float, role: target}
models: [{estimator: ridge}]
metric: mae
"""


def test_a_regressor_is_judged_on_absolute_error_sized_by_its_test_mae(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """lift:1 and lift:2 (the same pipeline run twice) split traffic; the labels of lift:2's
    answers are 4 units off them: its absolute error is larger, and lower is better."""
    root = tmp_path_factory.mktemp("abtest-regression")
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 10, 300)
    pd.DataFrame({"a": a, "y": 3 * a + rng.normal(0, 6, 300)}).to_csv(
        root / "rows.csv", index=False
    )
    (root / "pipeline.yaml").write_text(REGRESSION_SPEC, encoding="utf-8")
    home = root / "home"
    for _ in range(2):
        run_cli("run", str(root / "pipeline.yaml"), home=home, cwd=root)
    workspace = Workspace.open(Settings(home=home))
    try:
        test_mae = float(workspace.tracking.get_version("lift", 1).metrics["holdout"]["mae"])
    finally:
        workspace.close()
    deployment = root / "ab.yaml"
    deployment.write_text('name: lift-ab\nroutes: [{model: "lift:1"}, {model: "lift:2"}]\n')
    errors: dict[int, list[float]] = {1: [], 2: []}
    labels: list[dict[str, Any]] = []
    with serving(str(deployment), home) as server, httpx.Client(base_url=server.base) as client:
        for value in rng.uniform(0, 10, 400):
            body = client.post("/predict", json={"records": [{"a": float(value)}]}).json()
            version, (predicted,) = int(body["version"]), body["predictions"]
            label = 3 * float(value) + float(rng.normal(0, 1)) + (4.0 if version == 2 else 0.0)
            errors[version].append(abs(label - predicted))
            labels.append({"request_id": body["request_id"], "label": label})
        assert client.post("/feedback", json={"feedback": labels}).json() == {"stored": 400}
    server.stop()
    report = json.loads(run_cli("monitor", "ab", "lift", "--json", "--control", "1",
                                home=home).stdout)  # fmt: skip
    assert report["metric"] == "mae" and report["greater_is_better"] is False
    variants = {v["version"]: v for v in report["variants"]}
    for version in (1, 2):
        assert variants[version]["labelled"] == len(errors[version])
        assert variants[version]["metric"] == pytest.approx(np.mean(errors[version]))
    (comparison,) = report["comparisons"]
    assert comparison["tau"] == pytest.approx(0.1 * test_mae)
    assert comparison["difference"] > 0 and comparison["verdict"] == "worse"
    table = run_cli("monitor", "ab", "lift", "--control", "1", home=home).stdout
    assert "lift:2 against lift:1: mae +" in table and "significantly worse" in table
