"""A prediction log whose disk refuses writes: serving goes on, the rows wait (up to a bound,
oldest dropped and counted first), the failure names the log's folder and what to do, and the
log writes everything that waited once the disk takes writes again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from mlship.monitor.predlog import Entry, PredictionLog, read_log
from mlship.serve.app import create_app
from mlship.workspace import Workspace
from tests.conftest import invoke_cli
from tests.serving import RECORD


def _entry(request_id: str) -> Entry:
    return Entry(request_id, "churn", 1, "route", 1.0, [{"age": 40}], [{"prediction": "no"}])


def test_a_log_that_cannot_be_written_keeps_its_rows_and_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "predictions"
    blocker.write_text("a file where the log's folder should be")
    log = PredictionLog(blocker / "churn", "churn", flush_rows=1)
    log.append(_entry("r1"))  # a flush that fails, in the caller: it must not raise
    assert log.waiting == 1 and log.written == 0
    assert log.failure is not None
    assert str(blocker) in log.failure and "is not a directory" in log.failure
    assert "move the file away" in log.failure
    blocker.unlink()
    log.append(_entry("r2"))
    log.close()
    assert log.failure is None and log.waiting == 0 and log.dropped == 0
    assert read_log(blocker / "churn")["request_id"].to_pylist() == ["r1", "r2"]


def test_rows_waiting_on_a_failing_log_are_bounded_and_the_oldest_dropped(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "predictions"
    blocker.write_text("")
    log = PredictionLog(blocker / "churn", "churn", flush_rows=1, max_waiting=3)
    for i in range(5):
        log.append(_entry(f"r{i}"))
    assert log.waiting == 3 and log.dropped == 2
    blocker.unlink()
    assert log.flush() == 3
    assert read_log(blocker / "churn")["request_id"].to_pylist() == ["r2", "r3", "r4"]


def test_a_server_whose_log_fails_answers_and_its_health_says_why(
    trained: Workspace, tmp_path: Path
) -> None:
    blocker = tmp_path / "predictions"
    blocker.write_text("")
    log = PredictionLog(blocker / "churn", "churn")
    app = create_app(
        trained.load_model(trained.tracking.get_version("churn", 1)), prediction_log=log
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/health").json()["prediction_log"] is None
        for _ in range(3):
            assert client.post("/predict", json={"records": [RECORD]}).status_code == 200
        log.flush()  # what the writer thread does every few seconds
        health = client.get("/health")
        assert health.status_code == 200
        said = health.json()
        assert said["status"] == "ok" and said["prediction_log_dropped"] == 0
        assert said["prediction_log"].startswith(f"the prediction log at {blocker / 'churn'}")
        assert "set log.directory in the deployment file to a directory" in said["prediction_log"]
        assert client.post("/predict", json={"records": [RECORD]}).status_code == 200
        blocker.unlink()
    assert log.failure is None  # the server closed the log: every row waited and is written
    assert len(read_log(blocker / "churn")) == 4


def test_batch_scoring_with_a_log_it_cannot_write_keeps_its_output_and_warns(
    trained: Workspace, tmp_path: Path
) -> None:
    home = tmp_path / "ws"
    shutil.copytree(trained.settings.home_resolved, home)
    shutil.rmtree(home / "predictions", ignore_errors=True)
    (home / "predictions").write_text("")
    rows = trained.settings.home_resolved.parent / "churn" / "data" / "new_customers.csv"
    result = invoke_cli("predict", "churn:1", str(rows), "-o", str(tmp_path / "out.csv"), home=home)
    scored = len(pd.read_csv(tmp_path / "out.csv"))
    assert scored == len(pd.read_csv(rows))
    said = " ".join(result.stderr.split())
    assert f"warning: the prediction log at {home / 'predictions' / 'batch'}" in said
    assert f"{scored} of the {scored} rows scored are not in the prediction log" in said
    assert "Traceback" not in result.stderr


def test_scoring_and_monitoring_with_a_ledger_they_cannot_write_finish_and_warn(
    trained: Workspace, tmp_path: Path
) -> None:
    home = tmp_path / "ws"
    shutil.copytree(trained.settings.home_resolved, home)
    shutil.rmtree(home / "usage", ignore_errors=True)
    (home / "usage").write_text("a file where the usage ledger's folder should be")
    rows = trained.settings.home_resolved.parent / "churn" / "data" / "new_customers.csv"
    result = invoke_cli("predict", "churn:1", str(rows), "-o", str(tmp_path / "out.csv"), home=home)
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(pd.read_csv(rows))
    said = " ".join(result.stderr.split())
    assert f"warning: the usage ledger at {home / 'usage'} cannot be written" in said, said
    assert "this run's usage is not recorded" in said and "Traceback" not in said
    watched = invoke_cli("monitor", "status", "churn", "--window", "1d", home=home)
    assert "churn: version 1 judged on" in watched.stdout
    said = " ".join(watched.stderr.split())
    assert f"warning: the usage ledger at {home / 'usage'} cannot be written" in said, said
    assert "this pass's usage is not recorded" in said and "Traceback" not in said


def test_labels_a_store_refuses_are_a_503_naming_the_folder(
    trained: Workspace, tmp_path: Path
) -> None:
    from mlship.monitor.feedback import FeedbackStore

    blocker = tmp_path / "home"
    blocker.write_text("a file where the home should be")
    model = trained.load_model(trained.metadata.get_version("churn", 1))
    app = create_app(model, feedback=FeedbackStore(blocker / "feedback"))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/feedback", json={"request_id": "r1", "label": "yes"})
        assert answer.status_code == 503, answer.text
        said = answer.text
        assert "the labels were not stored" in said and str(blocker) in said
        assert "is not a directory" in said and "Traceback" not in said
        blocker.unlink()
        again = client.post("/feedback", json={"request_id": "r1", "label": "yes"})
        assert again.status_code == 200 and again.json() == {"stored": 1}
