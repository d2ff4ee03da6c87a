"""A client of a model server's ``POST /predict``, with its bearer token: what
``mlship predict --url`` scores a file through.

A refusal becomes an :class:`~mlship.errors.MlshipError` that names the server and says what to do
(401: give a token; 403: a token of a higher role; 413: smaller chunks). A request over the
token's rate (429) or one the server cannot check now (503) is sent again after the
``Retry-After`` it gives, a bounded number of times; scoring is read-only, so a retry is safe.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from mlship.errors import MlshipError

RETRIED = (429, 503)
_RECORD = re.compile(r"records\[(\d+)\]")


class ModelServerClient:
    """Scores records at ``url`` (``http(s)://host:port``), sending ``token`` when given."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        verify: Any = True,
        timeout: float = 120,
        tries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, verify=verify
        )
        self._has_token = bool(token)
        self.tries = tries
        self.sleep = sleep

    def __enter__(self) -> ModelServerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def fields(self) -> set[str] | None:
        """The fields a record may have here (the model's inputs and id columns), read from
        the server's OpenAPI document; None when it does not say."""
        response = self._send("GET", "/openapi.json")
        if response.status_code != 200:
            raise self._error(response, None)
        schemas = response.json().get("components", {}).get("schemas", {})
        properties = schemas.get("Record", {}).get("properties")
        return set(properties) if isinstance(properties, dict) else None

    def _send(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        for attempt in range(1, self.tries + 1):
            try:
                response = self._http.request(method, path, content=content)
            except httpx.TransportError as exc:
                raise MlshipError(f"cannot reach the model server at {self.url}: {exc}") from None
            if response.status_code not in RETRIED or attempt == self.tries:
                break
            self.sleep(_retry_after(response))
        return response

    def predict(
        self, records: list[dict[str, Any]], where: Callable[[int], str] | None = None
    ) -> dict[str, Any]:
        """The server's answer for ``records``; ``where(i)`` names record ``i`` in a refusal
        (a file's line), ``records[i]`` when not given."""
        body = orjson.dumps({"records": records}, default=str)
        response = self._send("POST", "/predict", body)
        if response.status_code != 200:
            raise self._error(response, where)
        answer: dict[str, Any] = response.json()
        return answer

    def _error(self, response: httpx.Response, where: Callable[[int], str] | None) -> MlshipError:
        status = response.status_code
        problems = _problems(response)
        if where is not None:
            problems = [_RECORD.sub(lambda m: where(int(m.group(1))), p) for p in problems]
        detail = "; ".join(problems[:10]) or response.reason_phrase
        if status == 401:
            why = "the token was refused" if self._has_token else "it needs a token"
            return MlshipError(
                f"{self.url}: {why}; pass --token or set MLSHIP_TOKEN to one of its deployment "
                "keys or an API token of its workspace (`mlship tokens create USER`)"
            )
        if status == 403:
            return MlshipError(f"{self.url} refused the request: {detail}")
        if status == 429:
            return MlshipError(
                f"{self.url}: over the token's rate after {self.tries} tries: {detail}"
            )
        if status == 413:
            return MlshipError(
                f"{self.url} refused the request: {detail}; try a smaller --chunk-rows"
            )
        return MlshipError(f"{self.url} answered {status}: {detail}")


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(60.0, max(0.1, float(response.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _problems(response: httpx.Response) -> list[str]:
    """The lines of an error in any of the server's shapes (native, MLflow, v2)."""
    try:
        body = response.json()
    except ValueError:
        return [response.text[:300]] if response.text else []
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if isinstance(errors, list):
        return [str(e) for e in errors]
    text = body.get("message") or body.get("error") or body.get("detail")
    return [str(text)] if text else []


def answer_columns(answers: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The columns of a scored file from the server's answers, in order: the id columns sent,
    ``prediction``, then ``proba_LABEL`` per class (as ``mlship predict`` writes locally)."""
    columns: dict[str, list[Any]] = {}
    predictions = [p for answer in answers for p in answer["predictions"]]
    ids = [row for answer in answers for row in (answer.get("ids") or [])]
    if ids and len(ids) == len(predictions):
        for name in ids[0]:
            columns[name] = [row.get(name) for row in ids]
    columns["prediction"] = predictions
    probabilities = [row for answer in answers for row in (answer.get("probabilities") or [])]
    if probabilities and len(probabilities) == len(columns["prediction"]):
        for label in probabilities[0]:
            columns[f"proba_{label}"] = [row[label] for row in probabilities]
    return columns
