"""The whole lifecycle through the real command line and real HTTP on 127.0.0.1.

run -> runs list/show -> models list/show -> predict -> serve -> good and bad requests -> shutdown.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mlship.config import Settings
from mlship.monitor.predlog import read_log
from mlship.workspace import Workspace
from tests.conftest import run_cli, small_churn
from tests.serving import Server, free_port, serving


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(spec path, workspace home) after one real ``mlship run``."""
    root = tmp_path_factory.mktemp("lifecycle")
    spec = small_churn(root / "churn")
    home = root / "home"
    result = run_cli("run", str(spec), home=home, cwd=root)
    assert "Registered churn:1" in result.stdout
    assert "Leaderboard of run" in result.stdout
    return spec, home


@pytest.fixture(scope="module")
def server(project: tuple[Path, Path]) -> Iterator[Server]:
    _, home = project
    with serving("churn:1", home) as running:
        yield running


def test_runs_and_models_are_listed_and_shown(project: tuple[Path, Path]) -> None:
    spec, home = project
    listing = run_cli("runs", "list", home=home).stdout
    assert "churn" in listing and "succeeded" in listing
    run_id = listing.split("│")[1].strip() if "│" in listing else ""
    shown = run_cli("runs", "show", run_id, home=home).stdout
    for expected in ("spec sha256", "dataset sha256", "scikit-learn", "Holdout metrics", "roc_auc"):
        assert expected in shown
    assert str(spec) in shown.replace("\n", "")
    models = run_cli("models", "list", home=home).stdout
    assert "churn" in models
    version = run_cli("models", "show", "churn:1", home=home).stdout
    for expected in ("artifact sha256", "Input signature", "monthly_charges", "classes: no, yes"):
        assert expected in version


def test_predict_scores_a_file(project: tuple[Path, Path], tmp_path: Path) -> None:
    spec, home = project
    output = tmp_path / "out.csv"
    inputs = spec.parent / "data" / "new_customers.csv"
    result = run_cli(
        "predict", "churn", str(inputs), "-o", str(output), "--chunk-rows", "64", home=home
    )
    assert "Scored 200 rows with churn:1" in result.stdout
    scored = pd.read_csv(output)
    assert list(scored.columns) == ["customer_id", "prediction", "proba_no", "proba_yes"]
    assert scored["customer_id"].tolist() == pd.read_csv(inputs)["customer_id"].tolist()
    assert ((scored["proba_no"] + scored["proba_yes"]).round(9) == 1).all()
    # Scored in chunks, the same answers as in one piece; every row is in the prediction log.
    whole = tmp_path / "whole.csv"
    run_cli("predict", "churn", str(inputs), "-o", str(whole), "--no-prediction-log", home=home)
    pd.testing.assert_frame_equal(pd.read_csv(whole), scored)
    log = read_log(home / "predictions" / "batch").to_pandas()
    assert len(log) == 200 and set(log["role"]) == {"batch"} and log["request_id"].nunique() == 1
    assert sorted(log["output"].str.contains('"prediction"')) == [True] * 200
    # The log holds the inputs as the model took them (typed by its signature, not the file's
    # text), so monitoring reads batch traffic as it reads served traffic.
    first = json.loads(log["input"].iloc[0])
    assert isinstance(first["age"], int) and isinstance(first["monthly_charges"], float)
    watched = run_cli("monitor", "status", "churn", "--window", "200 rows", home=home, check=False)
    assert watched.returncode == 0, watched.stderr
    assert "Traceback" not in watched.stderr


def test_predict_refuses_a_file_off_the_signature(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    spec, home = project
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(spec.parent / "data" / "new_customers.csv", dtype=str)
    frame.loc[4, "tenure_months"] = "ten"
    frame.to_csv(bad, index=False)
    result = run_cli(
        "predict", "churn:1", str(bad), "-o", str(tmp_path / "o.csv"), home=home, check=False
    )
    assert result.returncode == 1
    assert "row 5 (line 6), column 'tenure_months': 'ten' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_unknown_model_and_version(project: tuple[Path, Path], tmp_path: Path) -> None:
    _, home = project
    result = run_cli(
        "predict", "churn:9", "x.csv", "-o", str(tmp_path / "o.csv"), home=home, check=False
    )
    assert result.returncode == 1
    assert "model 'churn' has no version 9" in result.stderr
    result = run_cli("serve", "fraud", home=home, check=False)
    assert result.returncode == 1
    assert "no model named 'fraud' (registered models: churn)" in result.stderr


def test_served_model_answers_real_http(server: Server, project: tuple[Path, Path]) -> None:
    base = server.base
    spec, _ = project
    assert httpx.get(f"{base}/health").json() == {
        "status": "ok",
        "ready": True,
        "model": "churn",
        "version": 1,
        "prediction_log": None,
        "prediction_log_dropped": 0,
    }
    new = pd.read_csv(spec.parent / "data" / "new_customers.csv").drop(columns=["customer_id"])
    records: list[dict[str, Any]] = [
        {str(k): (None if pd.isna(v) else v) for k, v in row.items()}
        for row in new.head(5).to_dict("records")
    ]
    for record in records:
        record["paperless_billing"] = record["paperless_billing"] == "yes"
    response = httpx.post(f"{base}/predict", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 5
    assert all(set(p) == {"no", "yes"} for p in body["probabilities"])

    bad = dict(records[0], monthly_charges="a lot")
    response = httpx.post(f"{base}/predict", json={"records": [bad]})
    assert response.status_code == 422
    assert any(e.startswith("records[0].monthly_charges: ") for e in response.json()["errors"])
    assert (
        httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "mlship model server: churn:1"
    )


def test_server_shuts_down_cleanly(server: Server) -> None:
    process = server.process
    process.send_signal(signal.SIGTERM)
    # uvicorn finishes in-flight work, then re-raises the signal: exit by SIGTERM is the norm.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    output = server.stop()
    assert '"event": "shutdown"' in output  # the lifespan ran: shadows done, log flushed
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base}/health", timeout=2)


def test_a_tampered_artifact_is_refused_by_predict_and_serve(tmp_path: Path) -> None:
    spec = small_churn(tmp_path / "churn")
    home = tmp_path / "home"
    run_cli("run", str(spec), home=home)
    workspace = Workspace.open(Settings(home=home))
    sha256 = workspace.tracking.get_version("churn", 1).artifact_sha256
    workspace.close()
    model_file = home / "artifacts" / "objects" / sha256[:2] / sha256[2:]
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0x01
    model_file.write_bytes(bytes(data))
    inputs = spec.parent / "data" / "new_customers.csv"
    result = run_cli(
        "predict", "churn:1", str(inputs), "-o", str(tmp_path / "o.csv"), home=home, check=False
    )
    assert result.returncode == 1
    assert "refusing to load model churn:1" in result.stderr
    served = run_cli("serve", "churn:1", "--port", str(free_port()), home=home, check=False)
    assert served.returncode == 1
    assert "refusing to load model churn:1" in served.stderr
