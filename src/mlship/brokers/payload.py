"""An event's payload as bytes on the wire: one JSON object, read without ever raising.

Both brokers carry an event as a JSON object (a Redis entry's ``data`` field, a JetStream
message's body). What producers put there is input like any other: a payload that is not UTF-8,
not JSON or not an object must not stop a consumer, so :func:`read_object` turns it into a
reason (``Event.problem``) that sends the event to a dead-letter stream, and reads everything
else into the fields. NaN and infinities are refused on both sides: they are not JSON, and a
consumer in another language would not read them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlship.errors import DataError


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_object(data: bytes, where: str) -> tuple[dict[str, Any], str | None]:
    """The members of the JSON object in ``data`` and no problem, or no fields and why not;
    ``where`` names the place in the message (``data``, ``body``) for the reason."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        return {}, f"{where}: not UTF-8 text (byte 0x{bad:02x} at offset {exc.start})"
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return {}, f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except (ValueError, RecursionError) as exc:
        return {}, f"{where}: not valid JSON ({exc})"
    if not isinstance(value, dict):
        kind = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean"}.get(
            type(value), "JSON null" if value is None else "a JSON number"
        )
        return {}, f"{where}: {kind}, expected an object"
    return value, None


def write_object(fields: Mapping[str, Any], stream: str) -> bytes:
    """``fields`` as one compact JSON object; a value JSON cannot carry is a ``DataError``
    naming the stream and the field."""
    try:
        return _dumps(dict(fields))
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError too: a lone surrogate
        where = next((f"field {key!r}" for key in fields if not _encodes(key, fields[key])), "")
        raise DataError(
            f"stream {stream!r}: a message that is not JSON: {where or 'a key'}: {_why(exc)}"
        ) from None


def _dumps(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def _encodes(key: Any, value: Any) -> bool:
    try:
        _dumps({key: value})
    except (TypeError, ValueError):
        return False
    return True


def _why(exc: Exception) -> str:
    if "Out of range float" in str(exc):
        return "NaN and infinities are not JSON numbers"
    return str(exc)
