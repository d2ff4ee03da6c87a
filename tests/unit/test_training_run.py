"""A run end to end in-process: recorded, registered, reproducible, and honest about failures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mlship.config import Settings
from mlship.errors import DataError, IntegrityError
from mlship.spec import load_spec
from mlship.train.run import RunResult, execute
from mlship.workspace import Workspace
from tests.conftest import copy_workspace, small_churn


@dataclass(frozen=True)
class TwoRuns:
    """The small churn example run twice, unchanged, in one workspace."""

    spec: Path
    workspace: Workspace
    first: RunResult
    second: RunResult


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    root = tmp_path_factory.mktemp("two-runs")
    spec = small_churn(root / "churn")
    workspace = Workspace.open(Settings(home=root / "ws", n_jobs=1, user="tester"))
    first = execute(load_spec(spec), workspace)
    second = execute(load_spec(spec), workspace)
    yield TwoRuns(spec, workspace, first, second)
    workspace.close()


def test_run_records_everything_and_registers_the_best(two_runs: TwoRuns) -> None:
    churn_spec, workspace, result = two_runs.spec, two_runs.workspace, two_runs.first
    run = workspace.tracking.get_run(result.run_id)
    assert run.status == "succeeded"
    assert run.spec_hash == load_spec(churn_spec).spec_hash
    assert run.dataset is not None
    # 1500 customers + 5 duplicated rows, less the deliberately broken ones in quarantine. Of the
    # broken ages, "n/a" and "-" are common missing-value markers in a nullable column: they are
    # read as missing with a warning, and their rows are kept.
    assert run.dataset.n_quarantined == 15
    assert run.dataset.n_rows == 1500 + 5 - 15
    warned = [
        c for c in result.validation["checks"] if c["severity"] == "warn" and c["check"] == "type"
    ]
    assert [(c["column"], c["failed"]) for c in warned] == [("age", 2)]
    assert result.validation["passed"]
    assert run.environment["packages"]["scikit-learn"]
    assert run.wall_seconds is not None and run.wall_seconds > 0
    assert [c.rank for c in run.candidates] == [1, 2, 3]
    scores = [c.cv_mean for c in run.candidates]
    assert scores == sorted(scores, reverse=True)
    assert run.candidates[0].selected and run.best_candidate == run.candidates[0].name
    holdout = {m.name: m.value for m in run.metrics if m.split == "holdout"}
    assert 0.6 < holdout["roc_auc"] <= 1.0
    assert {m.candidate for m in run.metrics if m.split == "cv"} == {
        "logistic",
        "forest",
        "boosting",
    }

    version = result.version
    assert version.version == 1
    assert version.run_id == run.id
    assert version.dataset_hash == run.dataset.data_hash
    assert version.signature["classes"] == ["no", "yes"]
    assert [c["name"] for c in version.signature["inputs"]][:2] == ["age", "tenure_months"]
    assert version.metrics["holdout"] == pytest.approx(holdout)


def test_unchanged_data_is_stored_once(two_runs: TwoRuns) -> None:
    first, second = two_runs.first, two_runs.second
    assert not first.dataset_reused and second.dataset_reused
    assert first.dataset_hash == second.dataset_hash
    assert second.version.version == 2
    # Same seeds, same data: the same model bytes.
    assert first.version.artifact_sha256 == second.version.artifact_sha256


def test_broken_data_stops_the_run_and_records_why(churn_spec: Path, workspace: Workspace) -> None:
    billing = churn_spec.parent / "data" / "billing.parquet"
    frame = pd.read_parquet(billing)
    frame.loc[: len(frame) // 10, "monthly_charges_cents"] = -100
    frame.to_parquet(billing)
    with pytest.raises(DataError) as info:
        execute(load_spec(churn_spec), workspace)
    message = str(info.value)
    assert message.startswith("data validation failed:")
    assert "failed error checks, more than the allowed 2.0%" in message
    assert "monthly_charges: -1.0 is below the minimum 0" in message
    assert "churn-quarantine.parquet" in message
    run = workspace.tracking.list_runs()[0]
    assert run.status == "failed"
    assert run.error is not None and "below the minimum" in run.error
    assert workspace.tracking.list_models() == []


def test_a_missing_column_stops_the_run(churn_spec: Path, workspace: Workspace) -> None:
    billing = churn_spec.parent / "data" / "billing.parquet"
    pd.read_parquet(billing).drop(columns=["tenure_months"]).to_parquet(billing)
    with pytest.raises(DataError, match=r"column\(s\) 'tenure_months' are missing"):
        execute(load_spec(churn_spec), workspace)


def test_loaded_model_predicts_like_the_trained_one(two_runs: TwoRuns) -> None:
    churn_spec, workspace, result = two_runs.spec, two_runs.workspace, two_runs.second
    model = workspace.load_model(workspace.tracking.get_version("churn"))
    raw = pd.read_csv(churn_spec.parent / "data" / "new_customers.csv", dtype=str)
    predictions, proba = model.predict(model.prepare(raw, "new_customers.csv"))
    assert len(predictions) == len(raw) == 200
    assert proba is not None and proba.shape == (200, 2)
    assert set(predictions) <= {"no", "yes"}
    assert model.ref == f"churn:{result.version.version}"


def test_a_tampered_model_is_never_unpickled(two_runs: TwoRuns, tmp_path: Path) -> None:
    home = copy_workspace(two_runs.workspace, tmp_path)
    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    try:
        version = workspace.tracking.get_version("churn", 1)
        path = (
            workspace.settings.artifact_root_resolved
            / "objects"
            / version.artifact_sha256[:2]
            / version.artifact_sha256[2:]
        )
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(IntegrityError, match=r"refusing to load model churn:1: .*is corrupt"):
            workspace.load_model(version)
    finally:
        workspace.close()


def test_the_declared_positive_class_is_what_binary_metrics_describe(
    churn_spec: Path, workspace: Workspace
) -> None:
    import json

    text = churn_spec.read_text()
    assert 'positive: "yes"' in text
    churn_spec.write_text(text.replace('positive: "yes"', 'positive: "no"'))
    result = execute(load_spec(churn_spec), workspace)
    # "no" is about 95% of the rows: its F1 is high where the churners' is far lower.
    assert result.holdout["f1"] > 0.9
    run = workspace.tracking.get_run(result.run_id)
    stored = json.loads(workspace.artifacts.get_bytes(run.report_sha256 or ""))
    assert stored["evaluation"]["metrics"]["positive_label"] == "no"

    churn_spec.write_text(text.replace('positive: "yes"', 'positive: "maybe"'))
    with pytest.raises(
        DataError, match="positive class 'maybe' never occurs; the classes are no, yes"
    ):
        execute(load_spec(churn_spec), workspace)
