"""The server answers the real clients of the protocols it speaks: Triton's Open Inference
Protocol client (``tritonclient[http]``, JSON and binary tensors) and MLflow's scoring client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from mlflow.models import convert_input_example_to_serving_input
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from tests.conftest import run_cli, small_churn
from tests.serving import Server, serving

ROWS = pd.DataFrame(
    {
        "age": [45, 30, 61],
        "tenure_months": [16, 2, 70],
        "monthly_charges": [87.33, 99.5, 20.0],
        "total_charges": [1390.73, 199.0, 1400.0],
        "contract": ["month-to-month", "month-to-month", "two-year"],
        "internet_service": ["fiber", "dsl", "none"],
        "payment_method": ["mailed-check", "electronic-check", "credit-card"],
        "support_calls": [0, 5, 1],
        "paperless_billing": [True, False, True],
    }
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("clients")
    spec = small_churn(root / "churn")
    home = root / "home"
    run_cli("run", str(spec), home=home, cwd=root)
    with serving("churn:1", home, "--no-prediction-log") as server:
        expected = httpx.post(
            f"{server.base}/predict", json={"records": ROWS.to_dict("records")}
        ).json()
        yield server, expected


def _tensor(name: str, values: pd.Series, binary: bool) -> triton.InferInput:
    if values.dtype == bool:
        array, kind = values.to_numpy(dtype=bool), "BOOL"
    elif values.dtype.kind == "i":
        array, kind = values.to_numpy(dtype=np.int64), "INT64"
    elif values.dtype.kind == "f":
        array, kind = values.to_numpy(dtype=np.float64), "FP64"
    else:
        array, kind = values.to_numpy(dtype=object), "BYTES"
    tensor = triton.InferInput(name, [len(array)], kind)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [False, True], ids=["json-tensors", "binary-tensors"])
def test_triton_client_infers(served: tuple[Server, dict[str, Any]], binary: bool) -> None:
    server, expected = served
    client = triton.InferenceServerClient(url=server.base.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn")
    metadata = client.get_model_metadata("churn")
    assert {i["name"] for i in metadata["inputs"]} == set(ROWS.columns)
    inputs = [_tensor(name, ROWS[name], binary) for name in ROWS.columns]
    result = client.infer(
        "churn",
        inputs,
        outputs=[triton.InferRequestedOutput("predict", binary_data=False)],
        request_id="q1",
    )
    labels = [v.decode() if isinstance(v, bytes) else str(v) for v in result.as_numpy("predict")]
    assert labels == expected["predictions"]
    assert result.get_response()["id"] == "q1"
    client.close()


def test_mlflow_scoring_client_invokes(served: tuple[Server, dict[str, Any]]) -> None:
    server, expected = served
    host, port = server.base.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=30)
    predictions = client.invoke(ROWS).get_predictions()
    assert predictions.iloc[:, 0].tolist() == expected["predictions"]
    # The payload MLflow writes for a model's input example is accepted as it is.
    payload = convert_input_example_to_serving_input(ROWS)
    answer = httpx.post(
        f"{server.base}/invocations", content=payload, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200 and answer.json()["predictions"] == expected["predictions"]
