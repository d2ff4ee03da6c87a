"""``mlship serve`` over real HTTP: id columns echoed on every protocol, inputs outside what
training saw answered with warnings and counted in /metrics (or refused with ``strict: true``),
and the body and record limits, from the command line and from a deployment file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mlship.train.signature import Signature
from mlship.workspace import Workspace
from tests.serving import RECORD, Server, serving


@pytest.fixture(scope="module")
def home(trained: Workspace) -> Path:
    return trained.settings.home


@pytest.fixture(scope="module")
def signature(trained: Workspace) -> Signature:
    return trained.load_model(trained.tracking.get_version("churn", 1)).signature


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    with serving("churn:1", home, "--no-prediction-log") as found:
        yield found


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.split()[-1])
    return 0.0


def test_id_columns_pass_through_every_protocol(server: Server) -> None:
    first, second = {**RECORD, "customer_id": "C-1"}, {**RECORD, "customer_id": "C-2"}
    with httpx.Client(base_url=server.base) as client:
        native = client.post("/predict", json={"records": [first, second]})
        assert native.status_code == 200, native.text
        assert native.json()["ids"] == [{"customer_id": "C-1"}, {"customer_id": "C-2"}]
        mlflow = client.post("/invocations", json={"dataframe_records": [first, second]})
        assert mlflow.status_code == 200, mlflow.text
        assert mlflow.json()["ids"] == [{"customer_id": "C-1"}, {"customer_id": "C-2"}]
        assert mlflow.json()["predictions"] == native.json()["predictions"]
        split = {"columns": list(first), "data": [list(first.values()), list(second.values())]}
        assert client.post("/invocations", json={"dataframe_split": split}).json()["ids"][1] == {
            "customer_id": "C-2"
        }
        tensors = [
            {"name": name, "shape": [2], "datatype": "BYTES", "data": [first[name], second[name]]}
            for name in first
        ]
        v2 = client.post("/v2/models/churn/infer", json={"inputs": tensors})
        assert v2.status_code == 200, v2.text
        outputs = {o["name"]: o for o in v2.json()["outputs"]}
        assert outputs["customer_id"]["data"] == ["C-1", "C-2"]
        assert outputs["predict"]["data"] == native.json()["predictions"]
        # Without ids, nothing changes for callers that never sent them.
        plain = client.post("/predict", json={"records": [RECORD]}).json()
        assert plain["ids"] is None
        wrong = client.post("/predict", json={"records": [{**RECORD, "customer_id": [1]}]})
        assert wrong.status_code == 422 and "records[0].customer_id" in wrong.text


def test_inputs_outside_training_are_answered_with_warnings_and_counted(
    server: Server, signature: Signature
) -> None:
    low, high = signature.ranges["monthly_charges"]
    assert low < high and "contract" in signature.categories
    above = {**RECORD, "monthly_charges": high * 10}
    unseen = {**RECORD, "internet_service": "satellite", "age": int(signature.ranges["age"][0]) - 5}
    with httpx.Client(base_url=server.base) as client:
        before = client.get("/metrics").text
        answer = client.post("/predict", json={"records": [RECORD, above, unseen]})
        assert answer.status_code == 200, answer.text
        warnings = answer.json()["warnings"]
        assert warnings[0] == []
        assert warnings[1] == [
            {"column": "monthly_charges", "kind": "above_training_range", "value": high * 10}
        ]
        assert {(w["column"], w["kind"]) for w in warnings[2]} == {
            ("age", "below_training_range"),
            ("internet_service", "unseen_category"),
        }
        mlflow = client.post("/invocations", json={"dataframe_records": [above]}).json()
        assert mlflow["warnings"][0][0]["kind"] == "above_training_range"
        plain = client.post("/invocations", json={"dataframe_records": [RECORD]}).json()
        assert "warnings" not in plain  # MLflow's answer is unchanged when all is known
        tensors = [
            {"name": name, "shape": [1], "datatype": "BYTES", "data": [value]}
            for name, value in unseen.items()
        ]
        v2 = client.post("/v2/models/churn/infer", json={"inputs": tensors}).json()
        flagged = orjson.loads(v2["parameters"]["warnings"])
        assert {w["kind"] for w in flagged[0]} == {"below_training_range", "unseen_category"}
        after = client.get("/metrics").text
    labels = {"model": "churn", "version": "1"}
    name = "mlship_input_warnings_total"
    grew = _metric(after, name, column="monthly_charges", kind="above_training_range", **labels)
    assert (
        grew
        - _metric(before, name, column="monthly_charges", kind="above_training_range", **labels)
        == 2
    )
    assert _metric(after, name, column="internet_service", kind="unseen_category", **labels) == 2
    assert _metric(after, name, column="age", kind="below_training_range", **labels) == 2


def test_strict_deployment_refuses_inputs_outside_training(
    home: Path, tmp_path: Path, signature: Signature
) -> None:
    spec = tmp_path / "strict.yaml"
    spec.write_text('name: strict\nroutes: [{model: "churn:1"}]\nstrict: true\n')
    high = signature.ranges["tenure_months"][1]
    records = [RECORD, {**RECORD, "tenure_months": int(high) + 100, "contract": "lifetime"}]
    with (
        serving(str(spec), home, "--no-prediction-log") as strict,
        httpx.Client(base_url=strict.base) as client,
    ):
        refused = client.post("/predict", json={"records": records})
        assert refused.status_code == 422
        assert refused.json()["errors"] == [
            f"records[1].tenure_months: {int(high) + 100} is above the range seen in training",
            "records[1].contract: 'lifetime' is a category not seen in training",
        ]
        assert client.post("/predict", json={"records": [RECORD]}).status_code == 200
        metrics = client.get("/metrics").text
    assert 'mlship_errors_total{reason="outside training",route="/predict"} 1.0' in metrics


def test_body_and_record_limits(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "limits.yaml"
    spec.write_text(
        'name: limited\nroutes: [{model: "churn:1"}]\n'
        "limits: {max_body_mib: 0.01, max_records: 5}\n"
    )
    body = orjson.dumps({"records": [RECORD] * 60})  # about 12 KiB
    assert len(body) > 0.01 * 2**20
    with (
        serving(str(spec), home, "--no-prediction-log") as limited,
        httpx.Client(base_url=limited.base) as client,
    ):
        _assert_too_large(client, body)
        many = client.post("/predict", json={"records": [RECORD] * 6})
        assert many.status_code == 413
        assert "records: 6 in one request; this server takes at most 5" in many.text
        assert client.post("/predict", json={"records": [RECORD] * 5}).status_code == 200
        over = client.post("/invocations", json={"instances": [RECORD] * 6})
        assert over.status_code == 413 and "at most 5" in over.json()["message"]
    # The command line wins over the deployment file.
    with serving(str(spec), home, "--no-prediction-log", "--max-records", "100",
                 "--max-body-mib", "1") as relaxed:  # fmt: skip
        assert httpx.post(f"{relaxed.base}/predict", content=body, headers=_JSON).status_code == 200


_JSON = {"content-type": "application/json"}


def _assert_too_large(client: httpx.Client, body: bytes) -> None:
    declared = client.post("/predict", content=body, headers=_JSON)
    assert declared.status_code == 413, declared.text
    assert "body: larger than 10485 bytes (0.01 MiB)" in declared.json()["errors"][0]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    streamed = client.post("/v2/models/churn/infer", content=chunks(), headers=_JSON)
    assert streamed.status_code == 413, streamed.text
    assert "larger than" in streamed.json()["error"]
    assert client.get("/health").status_code == 200


def test_a_version_without_training_ranges_serves_without_number_flags(
    trained: Workspace,
) -> None:
    from fastapi.testclient import TestClient

    from mlship.serve.app import create_app

    model = trained.load_model(trained.tracking.get_version("churn", 1))
    older: dict[str, Any] = model.signature.to_dict()
    del older["ranges"]  # what versions registered before ranges were recorded hold
    model.signature = Signature.from_dict(older)
    with TestClient(create_app(model)) as client:
        answer = client.post(
            "/predict", json={"records": [{**RECORD, "monthly_charges": 1e6, "contract": "x"}]}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["warnings"] == [
        [{"column": "contract", "kind": "unseen_category", "value": "x"}]
    ]
