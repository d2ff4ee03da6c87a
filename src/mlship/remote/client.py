"""One HTTP connection to a tracking server, with its token, and errors turned back into ours.

The server sends an error's class name with its message; the client raises that class again
(``NotFoundError``, ``ReviewError``, ...), so code that catches the local store's errors works
unchanged against a server. Failures that are the connection's own (refused, TLS, timeout, a bad
token, a missing role) become :class:`~mlship.errors.MlshipError` messages that name the server.

Every call is safe to repeat, so every call is retried when the server may not have answered it:
a connection refused or cut, a timeout, or a 502, 503 or 504 (a proxy whose server is gone, a
server whose store is unavailable). Reads are repeatable as they are; every write carries an
``Idempotency-Key``, made once per call and sent again with each of its retries, and the server
applies a key once (:mod:`mlship.server.idempotency`), so a write whose answer was lost is not
applied twice. Retries wait exponentially longer with jitter, within :class:`RetryPolicy`'s
attempts and seconds (``MLSHIP_RETRY_ATTEMPTS``, ``MLSHIP_RETRY_SECONDS``), and the error after
the last one says what failed, how often and for how long.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlship.errors import (
    ConfigError,
    DecryptionError,
    IntegrityError,
    MlshipError,
    NotFoundError,
    StorageError,
)
from mlship.store.liveness import RunStateError
from mlship.store.registry import ReviewError
from mlship.store.repositories import MarksMoved
from mlship.store.rollouts import RolloutConflict
from mlship.store.run_search import FilterError

_KINDS: dict[str, type[MlshipError]] = {
    "NotFoundError": NotFoundError,
    "IntegrityError": IntegrityError,
    "DecryptionError": DecryptionError,
    "ConfigError": ConfigError,
    "RunStateError": RunStateError,
    "ReviewError": ReviewError,
    "RolloutConflict": RolloutConflict,
    "MarksMoved": MarksMoved,
    "FilterError": FilterError,
}


logger = logging.getLogger("mlship.remote")

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RETRIED_STATUSES = frozenset({502, 503, 504})


def _kind(name: str) -> type[MlshipError]:
    return _KINDS.get(name, MlshipError)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a call tries: at most ``attempts`` tries within ``seconds`` (the waits between
    them included), waiting ``first_wait`` after the first failure, twice as long after each next
    one up to ``longest_wait``, each wait shortened by a random part of up to a half (jitter), so
    clients that failed together do not all come back at once."""

    attempts: int = 5
    seconds: float = 30.0
    first_wait: float = 0.25
    longest_wait: float = 5.0

    def wait(self, failures: int) -> float:
        """The pause after the ``failures``-th failure in a row."""
        full = min(self.longest_wait, self.first_wait * 2.0 ** (failures - 1))
        return full * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


Body = Callable[[], Iterable[bytes]]
"""A request body that can be sent again: each call gives its chunks from the start."""


class _Retryable(Exception):
    """A failure the call may try again after (raised to its retry loop only)."""

    def __init__(self, why: str, response: httpx.Response | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.response = response


def _retryable(exc: httpx.TransportError) -> bool:
    """Whether the failure may pass: not a certificate refused, an unusable URL or a proxy."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.ProxyError):
        return False
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


class Client:
    """Requests to ``url`` (``http(s)://host:port``) with ``Authorization: Bearer token``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        ca_bundle: Path | None = None,
        timeout: float = 300,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.sent = 0
        """Requests sent, retries included (for diagnostics)."""
        self.retried = 0
        """Of those, the retries."""
        self.replayed = 0
        """Writes the server answered from an earlier attempt's record (applied once)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: Any = True
        if ca_bundle is not None:
            if not ca_bundle.is_file():
                raise ConfigError(f"MLSHIP_CA_BUNDLE {ca_bundle}: no such file")
            verify = ssl.create_default_context(cafile=str(ca_bundle))
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout, verify=verify
        )
        self._has_token = bool(token)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return self._send("GET", path, params=query).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self._send("POST", path, json=body if body is not None else {}).json()

    def put(self, path: str, body: Any) -> Any:
        return self._send("PUT", path, json=body).json()

    def get_bytes(self, path: str) -> bytes:
        return self._send("GET", path).content

    def put_stream(self, path: str, chunks: Body) -> Any:
        """PUT the chunks ``chunks()`` gives, called again for each retry."""
        return self._send("PUT", path, content=chunks).json()

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: Body | None = None,
    ) -> httpx.Response:
        """One call: its request, and its retries with the same idempotency key (see above)."""
        headers = {} if method == "GET" else {KEY_HEADER: str(uuid.uuid4())}
        started = time.monotonic()
        failures = 0
        while True:
            try:
                return self._attempt(method, path, headers, params, json, content)
            except _Retryable as failed:
                failures += 1
                spent = time.monotonic() - started
                wait = self.retry.wait(failures)
                if failures >= self.retry.attempts or spent + wait > self.retry.seconds:
                    raise self._gave_up(method, path, failed, failures, spent) from None
                logger.warning(
                    "%s %s at %s: %s; trying again in %.1f s (attempt %d of %d)",
                    method, path, self.url, failed.why, wait, failures + 1, self.retry.attempts,
                )  # fmt: skip
                self.retried += 1
                time.sleep(wait)

    def _attempt(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        params: dict[str, Any] | None,
        json: Any,
        content: Body | None,
    ) -> httpx.Response:
        self.sent += 1
        try:
            response = self._http.request(
                method,
                path,
                params=params,
                json=json,
                content=None if content is None else _iterate(content()),
                headers=headers,
            )
        except httpx.TransportError as exc:
            if not _retryable(exc):
                raise MlshipError(f"cannot reach the mlship server at {self.url}: {exc}") from None
            raise _Retryable(f"{type(exc).__name__}: {str(exc) or 'no answer'}") from None
        if response.status_code in RETRIED_STATUSES:
            raise _Retryable(f"answered {response.status_code}", response)
        if response.status_code < 400:
            self.replayed += REPLAYED_HEADER in response.headers
            return response
        raise self._error(response)

    def _gave_up(
        self, method: str, path: str, failed: _Retryable, tries: int, spent: float
    ) -> MlshipError:
        times = "once" if tries == 1 else f"{tries} times over {spent:.1f} s"
        if failed.response is None:
            return MlshipError(
                f"cannot reach the mlship server at {self.url}: {method} {path} failed {times}; "
                f"the last error: {failed.why}"
            )
        error = self._error(failed.response)
        return type(error)(f"{error} ({method} {path} tried {times})")

    def _error(self, response: httpx.Response) -> MlshipError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str):
            detail = str(detail or response.reason_phrase)
        if response.status_code == 401:
            why = "the token was refused" if self._has_token else "no token was given"
            return MlshipError(
                f"{self.url}: {why}; set MLSHIP_TOKEN to a valid token "
                "(an admin creates one with `mlship tokens create USER`)"
            )
        if response.status_code in (403, 413, 429):
            return MlshipError(f"{self.url} refused the request: {detail}")
        kind = body.get("error") if isinstance(body, dict) else None
        if kind == "StorageError":  # the server's disk, which only its operator can fix
            return StorageError(f"the server at {self.url} cannot store it: {detail}")
        if isinstance(kind, str):
            return _kind(kind)(detail)
        return MlshipError(f"{self.url} answered {response.status_code}: {detail}")


def _iterate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    yield from chunks
