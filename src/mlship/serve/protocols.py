"""Request and response shapes of the protocols other tools speak: MLflow's scoring server and
the Open Inference Protocol v2 (KServe, Triton, Seldon). Each turns its payload into records
(one dict per row, keyed by input name) for the one scoring path, or says precisely what is
wrong with the payload (:class:`~mlship.serve.app.ScoringError`, 400 or 422).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlship.serve.bodies import decode_json
from mlship.serve.errors import ScoringError
from mlship.train.signature import Signature

if TYPE_CHECKING:
    from mlship.serve.live import Served, Table

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")

# Open Inference Protocol datatypes of mlship's column types.
V2_TYPES = {
    "integer": "INT64",
    "float": "FP64",
    "boolean": "BOOL",
    "string": "BYTES",
    "category": "BYTES",
    "datetime": "BYTES",
}


def _error(status: int, message: str) -> ScoringError:
    return ScoringError(status, [message])


_VALUE: dict[str, Any] = {"type": ["string", "number", "integer", "boolean", "null"]}
_RECORD: dict[str, Any] = {"type": "object", "additionalProperties": _VALUE}

MLFLOW_BODY: dict[str, Any] = {
    "description": "One of MLflow's four request formats.",
    "oneOf": [
        {
            "type": "object",
            "required": ["dataframe_split"],
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array", "items": _VALUE}},
                    },
                }
            },
        },
        {
            "type": "object",
            "required": ["dataframe_records"],
            "properties": {"dataframe_records": {"type": "array", "items": _RECORD}},
        },
        {
            "type": "object",
            "required": ["instances"],
            "properties": {"instances": {"type": "array", "items": _RECORD}},
        },
        {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "inputs": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": _VALUE},
                }
            },
        },
    ],
}
"""The body of ``POST /invocations``, for the OpenAPI document (the body is read by hand)."""

V2_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "datatype": {"type": "string", "enum": sorted(set(V2_TYPES.values()))},
                    "data": {"type": "array", "items": _VALUE},
                    "parameters": {"type": "object"},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    },
}
"""The JSON body of ``POST /v2/models/{name}/infer`` (the binary extension adds raw tensors
after it), for the OpenAPI document."""


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body of ``schema``."""
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def mlflow_records(
    payload: Any, columns: list[str], id_columns: list[str] | None = None
) -> list[dict[str, Any]]:
    """Records from one of MLflow's four request formats (``columns``: the model's inputs, the
    order of a row given as a list; ``id_columns`` may come along in named formats)."""
    if not isinstance(payload, dict):
        raise _error(400, f"body: expected an object with one of {', '.join(MLFLOW_FORMATS)}")
    given = [key for key in MLFLOW_FORMATS if key in payload]
    if len(given) != 1:
        raise _error(
            400,
            f"body: expected exactly one of {', '.join(MLFLOW_FORMATS)}"
            + (f"; got {', '.join(given)}" if given else ""),
        )
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise _error(400, "dataframe_split: expected {columns: [...], data: [[...], ...]}")
        names = value.get("columns", columns)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _error(400, "dataframe_split.columns: expected a list of column names")
        return [
            _row(names, row, f"dataframe_split.data[{i}]") for i, row in enumerate(value["data"])
        ]
    if key == "inputs" and isinstance(value, dict):  # columns of values
        lengths = {len(v) for v in value.values() if isinstance(v, list)}
        if len(lengths) != 1 or not all(isinstance(v, list) for v in value.values()):
            raise _error(400, "inputs: expected lists of values of the same length per column")
        size = lengths.pop()
        return [{name: value[name][i] for name in value} for i in range(size)]
    if not isinstance(value, list):
        raise _error(400, f"{key}: expected a list of records")
    records = []
    for index, row in enumerate(value):
        if isinstance(row, dict):
            records.append(row)
        elif isinstance(row, list):
            records.append(_row(columns, row, f"{key}[{index}]"))
        else:
            raise _error(400, f"{key}[{index}]: expected a record (object) or a list of values")
    return records


def _row(names: list[str], row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, list) or len(row) != len(names):
        shown = ", ".join(names[:20])
        raise _error(400, f"{where}: expected a list of {len(names)} values ({shown})")
    return dict(zip(names, row, strict=True))


_NUMPY_TYPES = {
    "BOOL": "?",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def v2_payload(body: bytes, header_length: str | None) -> Any:
    """The request as JSON, with tensors sent in the binary extension decoded into ``data``.

    With ``Inference-Header-Content-Length``, the body is that many bytes of JSON followed by
    the raw tensors, in input order, each ``parameters.binary_data_size`` bytes long: numbers as
    little-endian arrays, BYTES as 4-byte little-endian lengths each followed by the bytes.
    Every length is checked against what is there (400 naming the input).
    """
    if header_length is None:
        return decode_json(body)
    size = int(header_length) if header_length.strip().isdigit() else -1
    if not 0 < size <= len(body):
        raise _error(
            400,
            "Inference-Header-Content-Length: expected the length of the JSON part, a number "
            f"from 1 to the body's {len(body)} bytes",
        )
    payload = decode_json(body[:size])
    rest = memoryview(body)[size:]
    tensors = payload.get("inputs") if isinstance(payload, dict) else None
    for index, tensor in enumerate(tensors if isinstance(tensors, list) else []):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        length = parameters["binary_data_size"]
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise _error(400, f"inputs[{index}].parameters.binary_data_size: expected a byte count")
        chunk, rest = bytes(rest[:length]), rest[length:]
        if len(chunk) != length:
            raise _error(400, f"inputs[{index}]: the body ends before its {length} bytes")
        tensor["data"] = _decode(chunk, tensor.get("datatype"), index)
    if len(rest):
        raise _error(400, f"body: {len(rest)} bytes after the last binary tensor")
    return payload


def loads_json(data: bytes) -> Any:
    """The body as JSON, or a 400/422 that says why it is not (see :mod:`bodies`)."""
    return decode_json(data)


def _decode(chunk: bytes, datatype: Any, index: int) -> list[Any]:
    where = f"inputs[{index}]"
    if datatype == "BYTES":
        values: list[Any] = []
        position = 0
        while position < len(chunk):
            if position + 4 > len(chunk):
                raise _error(400, f"{where}: a BYTES element's 4-byte length is cut off")
            size = int.from_bytes(chunk[position : position + 4], "little")
            end = position + 4 + size
            if end > len(chunk):
                raise _error(
                    400, f"{where}: element {len(values)} says {size} bytes; fewer are left"
                )
            try:
                values.append(chunk[position + 4 : end].decode())
            except UnicodeDecodeError:
                raise _error(400, f"{where}: element {len(values)} is not UTF-8 text") from None
            position = end
        return values
    if not isinstance(datatype, str) or datatype not in _NUMPY_TYPES:
        shown = repr(datatype)[:40]
        raise _error(400, f"{where}.datatype: unsupported datatype {shown} for binary data")
    dtype = np.dtype(_NUMPY_TYPES[datatype])
    if len(chunk) % dtype.itemsize:
        raise _error(
            400,
            f"{where}: {len(chunk)} bytes is not a whole number of {datatype} values "
            f"({dtype.itemsize} bytes each)",
        )
    decoded: list[Any] = np.frombuffer(chunk, dtype=dtype).tolist()
    return decoded


def v2_records(payload: Any, signature: Signature) -> list[dict[str, Any]]:
    """Records from an inference request: one tensor per input (and per id column, which is
    echoed), all with the same number of rows."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise _error(400, "body: expected {inputs: [{name, shape, datatype, data}, ...]}")
    known = {column.name for column in signature.inputs} | set(signature.id_columns)
    columns: dict[str, list[Any]] = {}
    for index, tensor in enumerate(payload["inputs"]):
        if not isinstance(tensor, dict) or "name" not in tensor or "data" not in tensor:
            raise _error(400, f"inputs[{index}]: expected {{name, shape, datatype, data}}")
        name = tensor["name"]
        if not isinstance(name, str):
            raise _error(422, f"inputs[{index}].name: expected the name of an input")
        if name not in known:
            shown = repr(name)[:60]
            raise _error(422, f"inputs[{index}].name: {shown} is not an input of this model")
        if name in columns:
            raise _error(422, f"inputs[{index}].name: {name} is given twice")
        data = tensor["data"]
        if not isinstance(data, list):
            raise _error(400, f"inputs[{index}].data ({name}): expected a list")
        flat = _flatten(data)
        shape = tensor.get("shape")
        if shape is not None:
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                raise _error(400, f"inputs[{index}].shape ({name}): expected a list of sizes")
            if int(np.prod(shape, dtype=object)) != len(flat):
                raise _error(
                    400,
                    f"inputs[{index}] ({name}): shape {shape[:8]} does not hold {len(flat)} values",
                )
        columns[name] = [_plain(value) for value in flat]
    sizes = {len(values) for values in columns.values()}
    if len(sizes) > 1:
        raise _error(400, "inputs: every tensor must hold the same number of rows")
    size = sizes.pop() if sizes else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(size)]


def _flatten(data: list[Any]) -> list[Any]:
    """The values of a tensor's ``data``, flat (row-major) whether it is sent flat or nested."""
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def v2_metadata(name: str, table: Table, served: Served) -> dict[str, Any]:
    signature = served.model.signature
    versions = sorted(
        {str(s.model.version) for s in (*table.routes, *table.shadows) if s.model.name == name}
    )
    outputs = [{"name": "predict", "datatype": _output_type(signature), "shape": [-1]}]
    if signature.classes:
        outputs.append(
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(signature.classes)]}
        )
    return {
        "name": name,
        "versions": versions,
        "platform": "mlship",
        "inputs": [
            {"name": c.name, "datatype": V2_TYPES[c.type], "shape": [-1]} for c in signature.inputs
        ],
        "outputs": outputs,
    }


def _output_type(signature: Signature) -> str:
    if signature.task == "regression":
        return "FP64"
    classes = signature.classes or []
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    return "BYTES"


def v2_response(
    name: str,
    served: Served,
    payload: dict[str, Any],
    predictions: np.ndarray[Any, Any],
    proba: np.ndarray[Any, Any] | None,
) -> dict[str, Any]:
    signature = served.model.signature
    values = [_plain(v) for v in predictions]
    if _output_type(signature) == "BYTES":
        values = [str(v) for v in values]
    outputs: list[dict[str, Any]] = [
        {
            "name": "predict",
            "datatype": _output_type(signature),
            "shape": [len(values)],
            "data": values,
        }
    ]
    if proba is not None and signature.classes:
        outputs.append(
            {
                "name": "probabilities",
                "datatype": "FP64",
                "shape": [len(values), len(signature.classes)],
                "data": [float(x) for x in np.asarray(proba, dtype=float).reshape(-1)],
                "parameters": {"classes": ",".join(str(c) for c in signature.classes)},
            }
        )
    response: dict[str, Any] = {
        "model_name": name,
        "model_version": str(served.model.version),
        "outputs": outputs,
    }
    if "id" in payload:
        response["id"] = payload["id"]
    requested = payload.get("outputs")
    if isinstance(requested, list) and requested:
        wanted = {o.get("name") for o in requested if isinstance(o, dict)}
        response["outputs"] = [o for o in outputs if o["name"] in wanted]
    return response


def v2_extras(
    response: dict[str, Any],
    records: list[dict[str, Any]],
    ids: list[dict[str, Any]] | None,
    warnings: list[list[dict[str, Any]]],
) -> dict[str, Any]:
    """``response`` with each id column sent echoed as a BYTES output tensor, and, when any
    record has warnings, ``parameters.warnings``: per record, its warnings, as JSON text (a
    parameter's value is a string in the protocol)."""
    import orjson

    if ids:
        sent = [name for name in ids[0] if records and name in records[0]]
        for name in sent:
            values = ["" if row[name] is None else str(row[name]) for row in ids]
            response["outputs"].append(
                {"name": name, "datatype": "BYTES", "shape": [len(values)], "data": values}
            )
    if any(warnings):
        response["parameters"] = {"warnings": orjson.dumps(warnings).decode()}
    return response
