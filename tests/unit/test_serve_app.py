"""The served app's contract: predictions for valid records, 422 naming the field otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlship.serve.app import create_app
from mlship.workspace import Workspace
from tests.serving import RECORD


@pytest.fixture(scope="module")
def client(trained: Workspace) -> Iterator[TestClient]:
    model = trained.load_model(trained.tracking.get_version("churn", 1))
    with TestClient(create_app(model)) as test_client:
        yield test_client


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "ready": True,
        "model": "churn",
        "version": 1,
        "prediction_log": None,
        "prediction_log_dropped": 0,
    }


def test_predict_returns_labels_and_probabilities(client: TestClient) -> None:
    second = {**RECORD, "contract": "two-year", "tenure_months": 70, "age": None}
    response = client.post("/predict", json={"records": [RECORD, second]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "churn" and body["version"] == 1
    assert len(body["predictions"]) == 2
    assert set(body["predictions"]) <= {"no", "yes"}
    for probabilities in body["probabilities"]:
        assert set(probabilities) == {"no", "yes"}
        assert sum(probabilities.values()) == pytest.approx(1.0)
    # A long-standing two-year customer is less likely to leave than a new monthly one.
    assert body["probabilities"][1]["yes"] < body["probabilities"][0]["yes"]


def test_nullable_inputs_may_be_omitted(client: TestClient) -> None:
    record = {k: v for k, v in RECORD.items() if k not in ("age", "payment_method")}
    assert client.post("/predict", json={"records": [record]}).status_code == 200


def test_unseen_category_still_gets_a_prediction(client: TestClient) -> None:
    response = client.post(
        "/predict", json={"records": [{**RECORD, "internet_service": "satellite"}]}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("change", "field", "expectation"),
    [
        ({"age": "old"}, "records[0].age", "valid integer"),
        ({"monthly_charges": None}, "records[0].monthly_charges", "valid number"),
        ({"paperless_billing": "sometimes"}, "records[0].paperless_billing", "valid boolean"),
        ({"colour": "red"}, "records[0].colour", "unknown field"),
    ],
)
def test_a_record_off_the_signature_gets_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str, expectation: str
) -> None:
    response = client.post("/predict", json={"records": [{**RECORD, **change}]})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e.startswith(f"{field}: ") and expectation in e for e in errors), errors


def test_a_missing_required_field_is_named(client: TestClient) -> None:
    record = {k: v for k, v in RECORD.items() if k != "contract"}
    response = client.post("/predict", json={"records": [record]})
    assert response.status_code == 422
    assert "records[0].contract: Field required" in response.json()["errors"]


def test_empty_and_malformed_bodies(client: TestClient) -> None:
    assert client.post("/predict", json={"records": []}).status_code == 422
    assert client.post("/predict", json=[RECORD]).status_code == 422
    assert (
        client.post(
            "/predict", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )


def test_openapi_documents_every_input(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    assert set(record["properties"]) == {*RECORD, "customer_id"}  # the id column is echoed
    assert set(record["required"]) == {"tenure_months", "monthly_charges", "contract"}
    assert client.get("/docs").status_code == 200
