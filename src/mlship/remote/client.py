"""One HTTP connection to a tracking server, with its token, and errors turned back into ours.

The server sends an error's class name with its message; the client raises that class again
(``NotFoundError``, ``ReviewError``, ...), so code that catches the local store's errors works
unchanged against a server. Failures that are the connection's own (refused, TLS, timeout, a bad
token, a missing role) become :class:`~mlship.errors.MlshipError` messages that name the server.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
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

_KINDS: dict[str, type[MlshipError]] = {
    "NotFoundError": NotFoundError,
    "IntegrityError": IntegrityError,
    "DecryptionError": DecryptionError,
    "ConfigError": ConfigError,
    "RunStateError": RunStateError,
    "ReviewError": ReviewError,
}


def _kind(name: str) -> type[MlshipError]:
    return _KINDS.get(name, MlshipError)


class Client:
    """Requests to ``url`` (``http(s)://host:port``) with ``Authorization: Bearer token``."""

    def __init__(
        self, url: str, token: str | None, *, ca_bundle: Path | None = None, timeout: float = 300
    ) -> None:
        self.url = url.rstrip("/")
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

    def put_stream(self, path: str, chunks: Iterable[bytes]) -> Any:
        return self._send("PUT", path, content=_iterate(chunks)).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise MlshipError(f"cannot reach the mlship server at {self.url}: {exc}") from None
        if response.status_code < 400:
            return response
        raise self._error(response)

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
