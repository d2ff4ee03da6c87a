"""Every kind of bad input, against every protocol of the model server: a 4xx naming the field
(and the record), never a 5xx.

The table pairs each value (NaN, ±Infinity, 1e309, an integer wider than 64 bits, a lone UTF-16
surrogate, ``true`` for a number, ...) with each protocol's way of sending it: the native
``/predict``, MLflow's ``/invocations``, the v2 protocol's JSON and binary tensors, and
``/feedback``; then the body-level cases (content type, empty batch, nesting, shapes, binary
lengths). Each row says the status and a piece of text the answer must contain: the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.monitor.feedback import FeedbackStore
from mlship.serve.app import create_app
from mlship.serve.bodies import decode_json
from mlship.serve.errors import ScoringError
from mlship.workspace import Workspace
from tests.serving import RECORD

JSON = {"content-type": "application/json"}
COLUMNS = list(RECORD)

VALUES: list[tuple[str, str, str, str]] = [
    # (case, column, JSON text of the value, what the answer says)
    ("nan", "monthly_charges", "NaN", "not finite"),
    ("infinity", "monthly_charges", "Infinity", "not finite"),
    ("minus infinity", "total_charges", "-Infinity", "not finite"),
    ("1e309", "monthly_charges", "1e309", "overflows a 64-bit float"),
    ("integer past 64 bits", "age", "123456789012345678901234567890", "wider than 64 bits"),
    ("integer just past 64 bits", "tenure_months", str(2**64), "wider than 64 bits"),
    ("integer past int64", "tenure_months", str(2**63), "less than or equal to"),
    ("lone surrogate", "internet_service", '"\\ud800"', "lone UTF-16 surrogate"),
    ("true as an integer", "age", "true", "true and false are not numbers"),
    ("true as a float", "monthly_charges", "true", "true and false are not numbers"),
    ("text as a number", "support_calls", '"many"', "valid integer"),
    ("an object as a value", "contract", '{"a": 1}', "valid string"),
]


def _record_text(column: str, value: str) -> str:
    text = json.dumps({**RECORD, column: "__VALUE__"})
    return text.replace('"__VALUE__"', value)


def _predict(column: str, value: str) -> tuple[str, bytes, dict[str, str]]:
    return "/predict", f'{{"records": [{_record_text(column, value)}]}}'.encode(), JSON


def _invocations(column: str, value: str) -> tuple[str, bytes, dict[str, str]]:
    body = f'{{"dataframe_records": [{_record_text(column, value)}]}}'
    return "/invocations", body.encode(), JSON


def _v2_json(column: str, value: str) -> tuple[str, bytes, dict[str, str]]:
    tensors = []
    for name, sent in RECORD.items():
        data = value if name == column else json.dumps(sent)
        tensors.append(f'{{"name": "{name}", "shape": [1], "datatype": "BYTES", "data": [{data}]}}')
    return "/v2/models/churn/infer", f'{{"inputs": [{", ".join(tensors)}]}}'.encode(), JSON


PROTOCOLS = {"predict": _predict, "invocations": _invocations, "v2 json": _v2_json}


@pytest.fixture(scope="module")
def client(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    model = trained.load_model(trained.tracking.get_version("churn", 1))
    feedback = FeedbackStore(tmp_path_factory.mktemp("feedback"))
    app = create_app(model, feedback=feedback)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize(("case", "column", "value", "says"), VALUES, ids=[v[0] for v in VALUES])
def test_a_bad_value_gets_a_4xx_naming_its_field(
    client: TestClient, protocol: str, case: str, column: str, value: str, says: str
) -> None:
    path, body, headers = PROTOCOLS[protocol](column, value)
    response = client.post(path, content=body, headers=headers)
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    assert response.status_code == 422, response.text
    text = response.text
    assert says in text, text
    assert column in text and ("[0]" in text), text  # the column and the record


def _binary(
    tensors: list[tuple[str, str, bytes]], *, json_extra: str = "", trim: int = 0
) -> tuple[bytes, dict[str, str]]:
    """A v2 binary request: (name, datatype, raw bytes) per tensor."""
    header = {
        "inputs": [
            {"name": n, "shape": [1], "datatype": d, "parameters": {"binary_data_size": len(raw)}}
            for n, d, raw in tensors
        ]
    }
    head = json.dumps(header).encode() + json_extra.encode()
    body = head + b"".join(raw for _, _, raw in tensors)
    if trim:
        body = body[:-trim]
    headers = {
        "inference-header-content-length": str(len(head)),
        "content-type": "application/octet-stream",
    }
    return body, headers


def _bytes_element(text: bytes) -> bytes:
    return len(text).to_bytes(4, "little") + text


def _tensors(**overrides: tuple[str, bytes]) -> list[tuple[str, str, bytes]]:
    result = []
    for name, value in RECORD.items():
        if name in overrides:
            result.append((name, *overrides[name]))
        elif isinstance(value, bool):
            result.append((name, "BOOL", np.array([value], "?").tobytes()))
        elif isinstance(value, int):
            result.append((name, "INT64", np.array([value], "<i8").tobytes()))
        elif isinstance(value, float):
            result.append((name, "FP64", np.array([value], "<f8").tobytes()))
        else:
            result.append((name, "BYTES", _bytes_element(value.encode())))
    return result


BINARY: list[tuple[str, dict[str, tuple[str, bytes]], int, int, str]] = [
    # (case, tensors replaced, bytes cut off the end, status, what the answer says)
    ("valid", {}, 0, 200, "outputs"),
    ("nan", {"monthly_charges": ("FP64", np.array([np.nan], "<f8").tobytes())}, 0, 422,
     "records[0].monthly_charges: Input should be a finite number"),
    ("infinity", {"total_charges": ("FP64", np.array([np.inf], "<f8").tobytes())}, 0, 422,
     "records[0].total_charges: Input should be a finite number"),
    ("uint64 past int64", {"age": ("UINT64", np.array([2**64 - 1], "<u8").tobytes())}, 0, 422,
     "records[0].age: Input should be less than or equal to"),
    ("lone surrogate", {"contract": ("BYTES", _bytes_element(b"\xed\xa0\x80"))}, 0, 400,
     "element 0 is not UTF-8"),
    ("ragged FP64", {"monthly_charges": ("FP64", b"\x00" * 7)}, 0, 400,
     "7 bytes is not a whole number of FP64 values"),
    ("BYTES length past the end", {"contract": ("BYTES", (99).to_bytes(4, "little") + b"ab")},
     0, 400, "element 0 says 99 bytes"),
    ("BYTES length cut", {"contract": ("BYTES", b"\x01\x00")}, 0, 400, "4-byte length is cut off"),
    ("body shorter than declared", {}, 3, 400, "the body ends before its"),
    ("unknown binary datatype", {"age": ("INT128", b"\x00" * 16)}, 0, 400,
     "unsupported datatype 'INT128'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "overrides", "trim", "status", "says"), BINARY, ids=[b[0] for b in BINARY]
)
def test_binary_tensors_are_checked_to_the_byte(
    client: TestClient,
    case: str,
    overrides: dict[str, tuple[str, bytes]],
    trim: int,
    status: int,
    says: str,
) -> None:
    body, headers = _binary(_tensors(**overrides), trim=trim)
    response = client.post("/v2/models/churn/infer", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert says in response.text


def test_binary_bytes_after_the_last_tensor_and_bad_header_lengths(client: TestClient) -> None:
    body, headers = _binary(_tensors())
    response = client.post("/v2/models/churn/infer", content=body + b"xx", headers=headers)
    assert response.status_code == 400 and "2 bytes after the last binary tensor" in response.text
    for length in ("-1", "abc", str(len(body) + 1), "0"):
        wrong = {**headers, "inference-header-content-length": length}
        response = client.post("/v2/models/churn/infer", content=body, headers=wrong)
        assert response.status_code == 400, (length, response.text)
        assert "Inference-Header-Content-Length" in response.text


ENDPOINTS = ["/predict", "/invocations", "/v2/models/churn/infer", "/feedback"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_body_level_problems_get_4xx_on_every_endpoint(client: TestClient, path: str) -> None:
    valid = {
        "/predict": {"records": [RECORD]},
        "/invocations": {"dataframe_records": [RECORD]},
        "/v2/models/churn/infer": {
            "inputs": [
                {"name": k, "shape": [1], "datatype": "BYTES", "data": [v]}
                for k, v in RECORD.items()
            ]
        },
        "/feedback": {"request_id": "r1", "label": "yes"},
    }[path]
    body = json.dumps(valid).encode()
    wrong_type = client.post(path, content=body, headers={"content-type": "text/csv"})
    assert wrong_type.status_code == 415 and "Content-Type" in wrong_type.text
    missing = client.post(path, content=body, headers={"content-type": ""})
    if path.startswith("/v2/"):  # the protocol's clients send no Content-Type: JSON it is
        assert missing.status_code == 200, missing.text
    else:
        assert missing.status_code == 415 and "Content-Type: missing" in missing.text
    deep = client.post(path, content=b"[" * 5000 + b"]" * 5000, headers=JSON)
    assert deep.status_code == 400 and "nested too deeply" in deep.text
    deep_inside = b'{"records": ' + b"[" * 900 + b"]" * 900 + b"}"
    inside = client.post(path, content=deep_inside, headers=JSON)
    assert 400 <= inside.status_code < 500, inside.text
    for broken in (b"", b"{not json", b'{"records": [', b"\xff\xfe{}"):
        answer = client.post(path, content=broken, headers=JSON)
        assert answer.status_code == 400 and "body" in answer.text, (broken, answer.text)
    for shape in (b"[]", b"42", b'"text"', b"null", b"{}"):
        answer = client.post(path, content=shape, headers=JSON)
        assert 400 <= answer.status_code < 500, (shape, answer.text)


V2 = "/v2/models/churn/infer"


def _t(name: Any, shape: Any, data: Any, datatype: str = "INT64") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


EMPTY = [
    ("/predict", {"records": []}),
    ("/invocations", {"dataframe_records": []}),
    ("/invocations", {"dataframe_split": {"columns": COLUMNS, "data": []}}),
    ("/invocations", {"inputs": {name: [] for name in COLUMNS}}),
    ("/v2/models/churn/infer", {"inputs": []}),
    (V2, {"inputs": [_t("age", [0], [])]}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), EMPTY)
def test_an_empty_batch_is_a_422(client: TestClient, path: str, body: Any) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422 and "records: none given" in response.text


SHAPES = [
    ("/predict", {"records": [[1, 2, 3]]}, 422, "records[0]: expected an object"),
    ("/predict", {"records": RECORD}, 422, "records: expected a list"),
    ("/predict", {"records": [RECORD], "colour": 1}, 422, "colour: unknown field"),
    ("/predict", {"records": [RECORD], "key": 5}, 422, "key: expected a string"),
    ("/invocations", {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}}, 400,
     "dataframe_split.data[0]: expected a list of 9 values"),
    ("/invocations", {"dataframe_split": {"columns": [1, 2], "data": [[1, 2]]}}, 400,
     "dataframe_split.columns"),
    ("/invocations", {"inputs": {"age": [1, 2], "contract": ["a"]}}, 400, "inputs: expected lists"),
    ("/invocations", {"instances": [7]}, 400, "instances[0]: expected a record"),
    ("/invocations", {"instances": [RECORD], "inputs": [RECORD]}, 400, "exactly one of"),
    (V2, {"inputs": [_t("age", [3], [1, 2])]}, 400,
     "inputs[0] (age): shape [3] does not hold 2 values"),
    (V2, {"inputs": [_t("age", ["x"], [1])]}, 400, "inputs[0].shape (age)"),
    (V2, {"inputs": [_t(["age"], [1], [1])]}, 422, "inputs[0].name"),
    (V2, {"inputs": [_t("colour", [1], [1])]}, 422, "'colour' is not an input"),
    (V2, {"inputs": [_t("age", [1], [1]), _t("age", [1], [1])]}, 422, "age is given twice"),
    (V2, {"inputs": [_t("age", [2], [1, 2]), _t("contract", [1], ["two-year"], "BYTES")]}, 400,
     "the same number of rows"),
    (V2, {"inputs": [_t("age", [1, 1], [[[1]]])]}, 422, "records[0].tenure_months: Field required"),
    ("/feedback", {"request_id": "r", "label": "yes", "row": True}, 422, "feedback[0].row"),
    ("/feedback", {"feedback": [{"request_id": "r", "label": "yes"}, {"request_id": "r"}]}, 422,
     "feedback[1].label"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "says"), SHAPES)
def test_wrong_shapes_are_named(
    client: TestClient, path: str, body: Any, status: int, says: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert says in response.text, response.text


def test_feedback_values_no_model_can_take_are_named(client: TestClient) -> None:
    for text, says in (
        (b'{"request_id": "r", "label": NaN}', "label: NaN"),
        (b'{"request_id": "r", "label": 1e309}', "label: 1e309"),
        (b'{"request_id": "r", "row": 123456789012345678901, "label": "yes"}', "row: 1234"),
        (b'{"request_id": "\\udfff", "label": "yes"}', "request_id: holds a lone UTF-16"),
    ):
        response = client.post("/feedback", content=text, headers=JSON)
        assert response.status_code == 422 and says in response.text, response.text


def test_a_422_never_echoes_the_request(client: TestClient) -> None:
    secret = "s3cr3t-" + "x" * 5000
    body = {"records": [{**RECORD, "age": secret}], "colour": secret}
    for path, payload in (
        ("/predict", body),
        ("/invocations", {"dataframe_records": body["records"]}),
    ):
        response = client.post(path, json=payload)
        assert response.status_code == 422
        assert "s3cr3t" not in response.text and len(response.text) < 2000, response.text
    many = {"records": [{**RECORD, "age": "old"} for _ in range(500)]}
    response = client.post("/predict", json=many)
    assert response.status_code == 422 and len(response.text) < 4000
    assert "more problems" in response.text


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None), max_size=8)
)
_JSON_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(value=_JSON_VALUES)
def test_the_reader_takes_clean_json_and_names_every_unusable_value(value: Any) -> None:
    text = json.dumps(value).encode()  # writes NaN, Infinity, wide integers and \\ud800 as is
    try:
        decoded = decode_json(text)
    except ScoringError as exc:
        refused = exc
    else:
        assert decoded == value  # what is read is what was sent
        return
    assert refused.status == 422 and refused.errors, refused.errors
    assert all(": " in line for line in refused.errors)
    assert _unusable(value), (value, refused.errors)  # nothing clean is refused


def _unusable(value: Any) -> bool:
    if isinstance(value, float):
        return not np.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return not -(2**63) <= value < 2**64
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_unusable(v) for v in value)
    if isinstance(value, dict):
        return any(_unusable(k) or _unusable(v) for k, v in value.items())
    return False


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    changes=st.dictionaries(st.sampled_from([*COLUMNS, "customer_id", "x"]), _LEAVES, max_size=4)
)
def test_generated_records_never_get_a_5xx(client: TestClient, changes: dict[str, Any]) -> None:
    record = {**RECORD, **changes}
    body = json.dumps({"records": [record]}).encode()
    for path, payload in (
        ("/predict", body),
        ("/invocations", json.dumps({"dataframe_records": [record]}).encode()),
    ):
        response = client.post(path, content=payload, headers=JSON)
        assert response.status_code < 500, (path, record, response.text)


def test_strict_refusals_and_warnings_quote_an_excerpt_only(trained: Workspace) -> None:
    model = trained.load_model(trained.tracking.get_version("churn", 1))
    long = "satellite-" + "z" * 5000
    with TestClient(create_app(model, strict=True)) as strict:
        refused = strict.post("/predict", json={"records": [{**RECORD, "contract": long}]})
    assert refused.status_code == 422 and len(refused.text) < 300, refused.text
    assert "records[0].contract: 'satellite-zzz" in refused.text
    with TestClient(create_app(model)) as lenient:
        answered = lenient.post("/predict", json={"records": [{**RECORD, "contract": long}]})
    assert answered.status_code == 200
    (warning,) = answered.json()["warnings"][0]
    assert warning["kind"] == "unseen_category" and len(warning["value"]) == 40
