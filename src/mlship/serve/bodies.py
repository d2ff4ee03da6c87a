"""Reading a request body as JSON the way every endpoint of the model server must: strictly.

JSON as clients really send it holds values no model input can take: ``NaN`` and ``Infinity``
(not JSON, but written by Python's and JavaScript's encoders), numbers that overflow a double
(``1e309``), integers wider than 64 bits, and lone UTF-16 surrogates (``"\\ud800"``), which are
valid JSON escapes but no text. orjson refuses most of them and silently turns a wide integer
into a float, and its message gives a character offset, not the field. So a body orjson cannot
read, or one with a run of 19 or more digits, is read again by the standard library with hooks
that keep each such value as a :class:`Unusable` marker; a walk then names every one by its
path (``records[3].monthly_charges``) in a 422. Bodies without them, nearly all, take orjson's
fast path only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from mlship.serve.errors import ScoringError
from mlship.text import shorten

INT64 = (-(2**63), 2**64 - 1)
"""Integers a model input can hold: int64, and uint64 for the v2 protocol's UINT64 tensors."""

_LONG_DIGITS = re.compile(rb"\d{19,}")
TOO_DEEP = "body: nested too deeply (a request holds at most about 1000 levels)"

JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class Unusable:
    """A JSON value that parses but no input can take, and why."""

    text: str
    reason: str


def _constant(text: str) -> Unusable:
    return Unusable(text, f"{text} is not a number a model can take (not finite)")


NUMBER_CHARS = 24
"""Most characters of a refused number repeated in an answer."""


def _unusable(text: str, why: str) -> Unusable:
    short = shorten(text, NUMBER_CHARS)
    return Unusable(short, f"{short} {why}")


def _float(text: str) -> Any:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _unusable(text, "overflows a 64-bit float")
    return value


def _int(text: str) -> Any:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts
        return _unusable(text, "is wider than 64 bits")
    if not INT64[0] <= value <= INT64[1]:
        return _unusable(text, "is wider than 64 bits")
    return value


def decode_json(body: bytes) -> Any:
    """The body as JSON; a 400 if it is not JSON, a 422 naming each unusable value."""
    if not body.strip():
        raise ScoringError(400, ["body: empty; expected a JSON document"])
    if not _LONG_DIGITS.search(body):
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "depth" in str(exc):
                raise ScoringError(400, [TOO_DEEP]) from None
        else:
            return payload
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScoringError(400, [f"body: not UTF-8 (byte {exc.start})"]) from None
    try:
        payload = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise ScoringError(
            400, [f"body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
        ) from None
    except RecursionError:
        raise ScoringError(400, [TOO_DEEP]) from None
    problems = unusable_values(payload)
    if problems:
        raise ScoringError(422, problems)
    return payload


def path_text(parts: tuple[Any, ...]) -> str:
    """``("records", 0, "age")`` as ``records[0].age``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_PROBLEMS = 20
"""Most problems listed in one answer; a large batch can have one in every row."""


def unusable_values(payload: Any) -> list[str]:
    """One line per unusable value (or key) in ``payload``, by path, in document order; inside
    an object with a ``name`` (a v2 tensor), the line names it too: ``inputs[2].data[0] (age)``."""
    problems: list[str] = []
    stack: list[tuple[Any, tuple[Any, ...], str]] = [(payload, (), "")]
    while stack and len(problems) < MAX_PROBLEMS:
        value, path, name = stack.pop()
        where = path_text(path) + (f" ({name})" if name else "")
        if isinstance(value, Unusable):
            problems.append(f"{where}: {value.reason}")
        elif isinstance(value, str) and not _is_text(value):
            problems.append(f"{where}: holds a lone UTF-16 surrogate, which is no text")
        elif isinstance(value, dict):
            own = value.get("name")
            if isinstance(own, str) and _is_text(own):
                name = own[:60]
            for key in reversed(list(value)):
                if not _is_text(key):
                    problems.append(f"{where}: a key holds a lone UTF-16 surrogate")
                    continue
                stack.append((value[key], (*path, key), name))
        elif isinstance(value, list):
            stack.extend((item, (*path, i), name) for i, item in reversed(list(enumerate(value))))
    return problems


def check_content_type(content_type: str | None, *, missing_is_json: bool = False) -> None:
    """415 unless the request says it is JSON (``application/json``, or any ``+json`` type);
    ``missing_is_json`` takes a request that says nothing as JSON (the v2 protocol's clients
    send no Content-Type)."""
    if not content_type:
        if missing_is_json:
            return
        raise ScoringError(415, ["Content-Type: missing; expected application/json"])
    media = content_type.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or media.endswith("+json"):
        return
    raise ScoringError(
        415, [f"Content-Type: {shorten(media, 60)!r} is not JSON; expected application/json"]
    )
