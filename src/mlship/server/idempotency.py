"""A retried write is applied once: idempotency keys, and one transaction per write request.

A client sends ``Idempotency-Key: <uuid4>`` with every write and the same key with every retry of
it (:mod:`mlship.remote.client`). Each write request to a :class:`RecordedRoute` runs in one
:class:`~mlship.store.shared_transaction.SharedTransaction`: whatever its route writes through the
repositories, its audit entries and the record of its key with the answer
(:mod:`mlship.store.idempotency`) commit together or not at all. So after a server dies between
its commit and its answer, the client's retry (to this server or another one on the same
database) finds the key and gets the recorded answer, marked ``Idempotent-Replayed: true``,
without writing again. The same key with a different request is a 422 naming the key. Two servers
applying one key at once (a client that gave up on a slow one) are settled by the key's unique
constraint: the second one's writes roll back, and it answers with the first one's record.

Only successful answers are recorded: a refused write changed nothing, so its retry is simply
judged again. Uploads (artifacts, log parts) stream their bodies and are not recorded: they are
stored under their content's address or their writer's part name, whole or not at all, so a retry
stores the same bytes under the same name again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from starlette.concurrency import run_in_threadpool

from mlship.store.idempotency import KEY_CHARS, Applied, Attempt, SqlIdempotencyKeys, request_hash
from mlship.store.shared_transaction import SHARED, SharedTransaction

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PRUNE_EVERY_SECONDS = 3600.0
_KEY = re.compile(rf"[\x21-\x7e]{{1,{KEY_CHARS}}}")


@dataclass
class _Pending:
    """A write request under way: its shared transaction, and its key's attempt (if it has one)."""

    shared: SharedTransaction
    attempt: Attempt | None

    def commit(self, keys: SqlIdempotencyKeys, status: int, body: str) -> None:
        try:
            if self.attempt is not None:
                keys.record(self.shared.session, self.attempt, status, body)
            self.shared.commit()
        finally:
            self.shared.rollback()  # a no-op after the commit

    def winner(self, keys: SqlIdempotencyKeys) -> Applied | None:
        """After a rollback: the same key applied by another request in the meantime."""
        if self.attempt is None:
            return None
        return keys.find(self.attempt.user, self.attempt.key)


class _Replayed(Exception):
    """An answer from a key's record, raised past the route to :class:`RecordedRoute`."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _answer(applied: Applied, attempt: Attempt) -> Response:
    if not applied.answers(attempt):
        raise HTTPException(
            422,
            f"{KEY_HEADER} {attempt.key} was already used for a different request "
            f"({applied.method} {applied.path}, at {applied.created_at:%Y-%m-%d %H:%M:%S} UTC); "
            "a retry repeats its request exactly, and a new request needs a new key",
        )
    headers = {REPLAYED_HEADER: "true", KEY_HEADER: applied.key}
    return Response(
        applied.body, status_code=applied.status, media_type="application/json", headers=headers
    )


async def _prune(request: Request, keys: SqlIdempotencyKeys) -> None:
    """Delete expired keys now and then (each server does; deleting twice is harmless)."""
    now = time.monotonic()
    last: float | None = getattr(request.app.state, "keys_pruned_at", None)
    if last is not None and now - last < PRUNE_EVERY_SECONDS:
        return
    request.app.state.keys_pruned_at = now
    await run_in_threadpool(keys.prune)


async def recorded(request: Request) -> None:
    """A dependency, after the role check: answer a known key from its record, else open the
    request's shared transaction. Reads and routes that are not :class:`RecordedRoute`\\ s pass."""
    if request.method not in WRITES or not isinstance(request.scope.get("route"), RecordedRoute):
        return
    keys: SqlIdempotencyKeys = request.app.state.idempotency_keys
    await _prune(request, keys)
    attempt = None
    key = request.headers.get(KEY_HEADER)
    if key is not None:
        if not _KEY.fullmatch(key):
            raise HTTPException(
                422,
                f"{KEY_HEADER} {key[:80]!r}: expected 1 to {KEY_CHARS} visible ASCII characters "
                "(a uuid4, say)",
            )
        body = await request.body()
        path, query = request.url.path, request.url.query
        attempt = Attempt(
            user=request.state.identity.user,
            key=key,
            method=request.method,
            path=path,
            request_sha256=request_hash(request.method, path, query, body),
        )
        found = await run_in_threadpool(keys.find, attempt.user, key)
        if found is not None:
            raise _Replayed(_answer(found, attempt))
    shared = request.app.state.workspace.metadata.shared_transaction()
    SHARED.set(shared)  # the route's worker thread inherits the request's context
    request.state.pending = _Pending(shared, attempt)


def _take(request: Request) -> _Pending | None:
    pending: _Pending | None = getattr(request.state, "pending", None)
    request.state.pending = None
    SHARED.set(None)
    return pending


class RecordedRoute(APIRoute):
    """A route whose writes commit in one transaction with their idempotency key (see above)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def recording(request: Request) -> Response:
            keys: SqlIdempotencyKeys = request.app.state.idempotency_keys
            try:
                response = await handle(request)
            except _Replayed as replayed:
                return replayed.response
            except Exception:
                pending = _take(request)
                if pending is None:
                    raise
                await run_in_threadpool(pending.shared.rollback)
                winner = await run_in_threadpool(pending.winner, keys)
                if winner is None or pending.attempt is None:
                    raise
                return _answer(winner, pending.attempt)  # it lost to the same key: see above
            except BaseException:  # cancelled: end the transaction without awaiting anything
                pending = _take(request)
                if pending is not None:
                    pending.shared.rollback()
                raise
            pending = _take(request)
            if pending is None:
                return response
            if response.status_code >= 400:
                await run_in_threadpool(pending.shared.rollback)
                return response
            body = bytes(response.body).decode("utf-8")
            try:
                await run_in_threadpool(pending.commit, keys, response.status_code, body)
            except DBIntegrityError:
                winner = await run_in_threadpool(pending.winner, keys)
                if winner is None or pending.attempt is None:
                    raise
                return _answer(winner, pending.attempt)
            return response

        return recording
