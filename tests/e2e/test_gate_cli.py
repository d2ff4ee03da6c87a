"""``mlship gate`` on versions with a known difference: the same logistic regression, with a
known share of its answers turned wrong on purpose (``tests.gate_models.FlippedLogistic``).

churn:1 flips every third row (far worse), churn:2 flips none (the best), churn:3 flips a few
rows only (slightly worse: a difference the test rows cannot tell from noise).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import invoke_cli
from tests.quick_project import fast_churn

FLIPS = {1: 3, 2: 0, 3: 150}
GATE = """
gate:
  metric: accuracy
  require: significant
"""


def _model(spec: Path, flip_every: int) -> None:
    text = re.sub(
        r"  - \{name: logistic, estimator: [^\n]*",
        "  - {name: logistic, estimator: tests.gate_models.FlippedLogistic, "
        f"params: {{flip_every: {flip_every}}}}}",
        spec.read_text(),
    )
    spec.write_text(text)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace home with churn:1..3 (the spec of each declares the gate above)."""
    root = tmp_path_factory.mktemp("gate")
    spec = fast_churn(root / "churn")
    spec.write_text(spec.read_text() + GATE)
    home = root / "home"
    for version in sorted(FLIPS):
        _model(spec, FLIPS[version])
        invoke_cli("run", str(spec), home=home, cwd=root)
    return home, root


def _gate(project: tuple[Path, Path], *args: str) -> tuple[int, str, dict[str, Any]]:
    home, root = project
    verdict = root / f"verdict-{abs(hash(args))}.json"
    result = invoke_cli("gate", *args, "--json", str(verdict), home=home, cwd=root, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    return result.returncode, said, json.loads(verdict.read_text()) if verdict.exists() else {}


def _file(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text)
    return path


def test_a_better_candidate_passes_and_may_file_its_promotion(project: tuple[Path, Path]) -> None:
    home, root = project

    def cli(*args: str, user: str = "alice") -> str:
        result = invoke_cli(*args, home=home, cwd=root, env={"MLSHIP_USER": user})
        return " ".join(result.stdout.split())

    cli("models", "promote", "churn:1", "--to", "production")
    cli("models", "approve", "churn:1", user="bob")
    junit, markdown = root / "gate.xml", root / "gate.md"
    result = invoke_cli(
        "gate", "churn:2", "--against", "churn@production", "--json", str(root / "pass.json"),
        "--junit", str(junit), "--markdown", str(markdown), "--request-promotion",
        home=home, cwd=root, env={"MLSHIP_USER": "alice"},
    )  # fmt: skip
    said = " ".join(result.stdout.split())
    assert result.returncode == 0, said
    assert "PASS: churn:2 against churn:1" in said
    assert "Promotion of churn:2 to production requested" in said
    verdict = json.loads((root / "pass.json").read_text())
    assert verdict["passed"] is True and verdict["reasons"] == []
    metric = verdict["metric"]
    assert metric["name"] == "accuracy"  # the spec's gate block, not the run's metric
    assert metric["improvement"] > 0.1 and metric["low"] > 0
    assert verdict["test"]["name"] == "McNemar (exact)" and verdict["test"]["p_value"] < 0.001
    assert verdict["rows"] == 298 and "test rows of run" in verdict["rows_from"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0" and suite.get("tests") == "3"
    assert markdown.read_text().startswith("### Gate passed: `churn:2` against `churn:1`")
    # Approval stays with a person other than the one who asked.
    assert "churn:2: promoted (none -> production); churn:1 archived" in cli(
        "models", "approve", "churn:2", user="bob"
    )


def test_a_worse_candidate_fails_with_every_reason(project: tuple[Path, Path]) -> None:
    _, root = project
    junit = root / "fail.xml"
    code, said, verdict = _gate(project, "churn:1", "--against", "churn:2", "--junit", str(junit))
    assert code == 1
    assert "FAIL: churn:1 against churn:2 failed:" in said
    assert verdict["passed"] is False
    reasons = verdict["reasons"]
    assert isinstance(reasons, list) and len(reasons) == 3
    assert re.search(r"accuracy is 0\.\d+ against 0\.\d+ for churn:2: an improvement of -0\.", said)
    assert "improvement, [-0." in said and "lies below zero" in said
    assert "McNemar (exact): p = " in said and "not in the candidate's favour" in said
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "3"
    failures = [f.get("message") for f in suite.iter("failure")]
    assert failures == reasons


def test_a_better_point_estimate_within_noise_fails_when_significance_is_required(
    project: tuple[Path, Path],
) -> None:
    _, root = project
    code, said, verdict = _gate(project, "churn:2", "--against", "churn:3")
    metric = verdict["metric"]
    assert isinstance(metric, dict)
    # The known difference: churn:3 is wrong on purpose on a few rows, so churn:2 is better, but
    # by too few rows for the test set to tell.
    assert metric["improvement"] > 0 and metric["low"] <= 0 < metric["high"]
    assert code == 1
    assert "includes zero: the candidate is not significantly better" in said
    assert [c["name"] for c in verdict["checks"] if not c["passed"]] == [
        "significant",
        "McNemar (exact)",
    ]
    # Not worse, within a loss of 0.02: the same comparison passes.
    lenient = _file(root, "lenient.yaml", "gate:\n  metric: accuracy\n  require: not_worse\n"
                    "  max_loss: 0.02\n")  # fmt: skip
    code, said, verdict = _gate(project, "churn:2", "--against", "churn:3", "--gate", str(lenient))
    assert code == 0, said
    assert verdict["require"] == "not_worse"


def test_a_margin_with_significance_is_asked_of_the_intervals_low_end(
    project: tuple[Path, Path],
) -> None:
    """churn:2 is far better than churn:1: a min_improvement its point estimate reaches but its
    interval's low end does not fails under require: significant; one below the low end passes."""
    _, root = project
    code, _, verdict = _gate(project, "churn:2", "--against", "churn:1")
    metric = verdict["metric"]
    assert code == 0 and 0 < metric["low"] < metric["improvement"]
    between = (metric["low"] + metric["improvement"]) / 2
    tight = _file(root, "tight.yaml", f"gate:\n  metric: accuracy\n  min_improvement: {between}\n")
    code, said, verdict = _gate(project, "churn:2", "--against", "churn:1", "--gate", str(tight))
    assert code == 1
    assert [c["name"] for c in verdict["checks"] if not c["passed"]] == ["significant"]
    assert f"does not lie above the min_improvement of {between:+.4f}" in said
    below = _file(
        root, "below.yaml", f"gate:\n  metric: accuracy\n  min_improvement: {metric['low'] / 2}\n"
    )
    code, said, _ = _gate(project, "churn:2", "--against", "churn:1", "--gate", str(below))
    assert code == 0, said


def test_roc_auc_is_judged_with_delong_and_budgets_are_checks(project: tuple[Path, Path]) -> None:
    _, root = project
    gate = _file(
        root,
        "budgets.yaml",
        "gate:\n  metric: roc_auc\n  budgets: {max_size_mb: 0.001, max_latency_ms: 60000, "
        "max_cost_per_1000: 0.000000001, latency_rows: 20}\n",
    )
    code, _, verdict = _gate(project, "churn:2", "--against", "churn:1", "--gate", str(gate))
    assert code == 1
    assert verdict["test"]["name"] == "DeLong"
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["significant"]["passed"] and checks["DeLong"]["passed"]
    assert not checks["size"]["passed"]
    assert "over its budget of 0.001 MiB" in checks["size"]["reason"]
    assert "latency" in checks and "ms a row" in checks["latency"]["measured"]
    assert not checks["cost"]["passed"]
    assert re.fullmatch(r"1,000 predictions cost 0\.\d{6} USD, over the budget of 1e-09 USD",
                        checks["cost"]["reason"])  # fmt: skip
    assert verdict["reasons"] == [checks["size"]["reason"], checks["cost"]["reason"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gate:\n  metric: accuracy\n  require: maybe\n", "line 3, field gate.require"),
        (
            "gate:\n  require: not_worse\n",
            "require: not_worse needs max_loss",
        ),
        ("gate:\n  confidence: 1.5\n", "line 2, field gate.confidence"),
        ("gate:\n  metrics: accuracy\n", "field gate.metrics: unknown field; expected one of"),
        ("gate:\n  metric: rmse\n", "gate.metric: classification has no metric 'rmse'"),
        ("- just a list\n", "expected a mapping with a `gate:` block"),
    ],
)
def test_a_bad_gate_file_is_refused_naming_the_field(
    project: tuple[Path, Path], text: str, expected: str
) -> None:
    _, root = project
    path = _file(root, "bad.yaml", text)
    code, said, verdict = _gate(project, "churn:2", "--against", "churn:1", "--gate", str(path))
    assert code == 2 and not verdict
    assert expected in said
    assert "No verdict: the gate could not judge (exit 2)." in said


def test_bad_references_are_refused_without_a_verdict(project: tuple[Path, Path]) -> None:
    """Exit 2, not 1: a pipeline (and its reader) can tell a gate that never judged from a
    candidate found worse."""
    code, said, _ = _gate(project, "churn:2", "--against", "churn:2")
    assert code == 2 and "churn:2 is the baseline itself" in said
    code, said, _ = _gate(project, "churn:2", "--against", "churn@staging")
    assert code == 2 and "staging" in said
    code, said, verdict = _gate(project, "churn:9", "--against", "churn:1")
    assert code == 2 and "model 'churn' has no version 9" in said and not verdict
    assert "No verdict: the gate could not judge (exit 2)." in said


def test_fairness_slices_are_judged_group_by_group(project: tuple[Path, Path]) -> None:
    _, root = project
    gate = _file(
        root,
        "slices.yaml",
        "gate:\n  metric: accuracy\n  budgets:\n"
        "    slices: {columns: [contract], max_loss: 0.02}\n",
    )
    code, said, verdict = _gate(project, "churn:2", "--against", "churn:1", "--gate", str(gate))
    assert code == 0, said
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["slices: contract"]["passed"]
    assert checks["slices: contract"]["measured"].startswith("3 groups of contract judged")
    code, said, verdict = _gate(project, "churn:1", "--against", "churn:2", "--gate", str(gate))
    assert code == 1
    reason = next(r for r in verdict["reasons"] if r.startswith("groups of contract"))
    assert "lose more than 0.02 of accuracy against churn:2: contract=month-to-month (" in reason
    unnamed = _file(root, "unnamed.yaml", "gate:\n  budgets:\n    slices: {max_loss: 0.1}\n")
    code, said, _ = _gate(project, "churn:2", "--against", "churn:1", "--gate", str(unnamed))
    assert code == 2 and "gate.budgets.slices names no columns" in said
    unknown = _file(
        root, "unknown.yaml", "gate:\n  budgets:\n    slices: {columns: [planet], max_loss: 0.1}\n"
    )
    code, said, _ = _gate(project, "churn:2", "--against", "churn:1", "--gate", str(unknown))
    assert code == 2 and "column(s) planet are not in the 298 test rows of run " in said


def test_training_data_drift_is_a_budget(tmp_path: Path) -> None:
    """churn:2 learnt from billing figures two and a half times churn:1's: a drifted column."""
    import pandas as pd

    spec = fast_churn(tmp_path / "churn")
    home = tmp_path / "home"
    invoke_cli("run", str(spec), home=home, cwd=tmp_path)
    # A first version has nothing in production to be judged against: no verdict, exit 2.
    first = invoke_cli(
        "gate", "churn:1", "--against", "churn@production", home=home, cwd=tmp_path, check=False
    )
    assert first.returncode == 2
    assert "model 'churn' has no version in production" in first.stderr
    billing = spec.parent / "data" / "billing.parquet"
    frame = pd.read_parquet(billing)
    frame["monthly_charges_cents"] = (frame["monthly_charges_cents"] * 2.5).round()
    frame.to_parquet(billing)
    invoke_cli("run", str(spec), home=home, cwd=tmp_path)
    gate = _file(tmp_path, "drift.yaml", "gate:\n  require: not_worse\n  max_loss: 1.0\n"
                 "  min_improvement: -1.0\n  budgets: {drift: {max_share: 0.05}}\n")  # fmt: skip
    verdict_file = tmp_path / "drift.json"
    result = invoke_cli(
        "gate", "churn:2", "--against", "churn:1", "--gate", str(gate), "--json", str(verdict_file),
        home=home, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = json.loads(verdict_file.read_text())
    assert len(verdict["reasons"]) == 1
    reason = verdict["reasons"][0]
    assert "of the input columns drifted from churn:1's training data (" in reason
    assert "monthly_charges" in reason and "over the budget of 5%" in reason
    same = _file(tmp_path, "same.yaml", "gate:\n  require: not_worse\n  max_loss: 1.0\n"
                 "  min_improvement: -1.0\n  budgets: {drift: {max_share: 0.5}}\n")  # fmt: skip
    result = invoke_cli(
        "gate", "churn:2", "--against", "churn:1", "--gate", str(same),
        home=home, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


def test_declared_evaluation_rows_replace_the_test_rows(project: tuple[Path, Path]) -> None:
    from mlship.config import Settings
    from mlship.data.ingested import dataset_frame
    from mlship.workspace import Workspace

    home, root = project
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        version = workspace.catalogue.get_version("churn", 2)
        frame = dataset_frame(workspace.datasets.get_dataset(version.dataset_hash), workspace)
    finally:
        workspace.close()
    rows = root / "evaluation.csv"
    frame.tail(400).to_csv(rows, index=False)
    timed = _file(
        root, "timed.yaml", "gate:\n  budgets: {max_latency_ms: 60000, latency_rows: 10}\n"
    )
    code, said, verdict = _gate(
        project, "churn:2", "--against", "churn:1", "--data", str(rows), "--gate", str(timed)
    )
    assert code == 0, said
    assert [c["name"] for c in verdict["checks"]][-1] == "latency"
    assert verdict["rows"] == 400 and verdict["rows_from"] == f"the 400 rows of {rows}"
    assert any("each version is scored as it serves" in note for note in verdict["notes"])
    text = rows.read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ",perhaps"
    bad = _file(root, "bad.csv", "\n".join(text) + "\n")
    code, said, _ = _gate(project, "churn:2", "--against", "churn:1", "--data", str(bad))
    assert code == 2
    assert f"{bad}: row 3 (line 4), column 'churned': 'perhaps' is not one of no, yes" in said
    no_target = _file(root, "unlabelled.csv", frame.drop(columns="churned").head(50).to_csv())
    code, said, _ = _gate(project, "churn:2", "--against", "churn:1", "--data", str(no_target))
    assert code == 2 and "the target column 'churned' is missing" in said
    code, said, _ = _gate(
        project, "churn:2", "--against", "churn:1", "--data", str(root / "absent.csv")
    )
    assert code == 2 and "absent.csv" in said
