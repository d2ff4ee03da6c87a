"""A write is applied once, whatever retries it: on SQLite, PostgreSQL, and a server on each.

Locally, the store's side: a request's shared transaction commits its writes and its key together
or neither, the (user, key) constraint refuses a second record, keys expire, and the rate-limit
bucket is one per token for every server process. On a server, the request's side: the same key
twice is one write and the recorded answer, the same key with another body is a 422 naming it,
two copies of one request at once are still one write, and a retried upload is harmless.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from mlship.config import Settings
from mlship.store.idempotency import Attempt, SqlIdempotencyKeys
from mlship.store.rate_limits import SqlRateLimits
from mlship.store.shared_transaction import sharing
from mlship.store.tables import AuditEntry, IdempotencyKey, Run
from mlship.workspace import Workspace
from tests.backends import Backend, unique

LOCAL = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
SERVED = pytest.mark.parametrize("backend", ["http-sqlite", "http-postgresql"], indirect=True)


@pytest.fixture
def store(backend: Backend) -> Iterator[Workspace]:
    """The backend's own database, opened directly (the server's, for a served backend)."""
    workspace = Workspace.open(
        Settings(home=backend.home, database_url=backend.database_url, user="ops", n_jobs=1)
    )
    yield workspace
    workspace.close()


def _new_run(workspace: Workspace, pipeline: str) -> str:
    return workspace.metadata.start_run(
        pipeline=pipeline, task="classification", metric="accuracy", spec_path="/s.yaml",
        spec_hash="0" * 64, spec={}, git_commit=None, environment={},
    )  # fmt: skip


def _runs(workspace: Workspace, pipeline: str) -> int:
    with workspace.metadata.transaction() as session:
        return int(session.scalar(select(func.count()).where(Run.pipeline == pipeline)) or 0)


def _attempt(user: str = "alice", key: str | None = None, body: str = "x") -> Attempt:
    digest = hashlib.sha256(body.encode()).hexdigest()
    return Attempt(user, key or str(uuid.uuid4()), "POST", "/api/v1/runs", digest)


# -- the store: writes and their key in one transaction ------------------------------------------


@LOCAL
def test_a_write_and_its_key_commit_together_or_not_at_all(store: Workspace) -> None:
    keys = SqlIdempotencyKeys(store.metadata.engine)
    kept, dropped = _attempt(), _attempt()
    pipeline, lost = unique("together"), unique("lost")
    shared = store.metadata.shared_transaction()
    with sharing(shared):
        _new_run(store, pipeline)
        store.metadata.add_run_note(pipeline, "two repository calls, one transaction")
        keys.record(shared.session, kept, 200, '{"id": "r"}')
    if store.metadata.engine.dialect.name == "postgresql":  # SQLite: every reader would wait
        assert _runs(store, pipeline) == 0, "nothing is visible before the whole commits"
    shared.commit()
    assert _runs(store, pipeline) == 1
    found = keys.find("alice", kept.key)
    assert found is not None and (found.status, found.body) == (200, '{"id": "r"}')
    assert found.answers(kept) and not found.answers(_attempt(key=kept.key, body="y"))

    shared = store.metadata.shared_transaction()
    with sharing(shared):
        _new_run(store, lost)
        keys.record(shared.session, dropped, 200, "{}")
    shared.rollback()  # a crash before the commit: neither the run nor the key
    assert _runs(store, lost) == 0 and keys.find("alice", dropped.key) is None


@LOCAL
def test_a_failed_call_inside_the_request_leaves_the_others_to_the_whole(store: Workspace) -> None:
    """Each repository call is a savepoint: one that fails rolls back alone, and the request's
    transaction decides for the rest."""
    pipeline = unique("savepoint")
    shared = store.metadata.shared_transaction()
    with sharing(shared):
        run_id = _new_run(store, pipeline)
        with pytest.raises(Exception, match="needs some text"):
            store.metadata.add_run_note(run_id, "   ")
        store.metadata.tag_run(run_id, {"kept": "yes"})
    shared.commit()
    assert store.metadata.get_run(run_id).tags == {"kept": "yes"}


@LOCAL
def test_a_key_is_recorded_once_per_user(store: Workspace) -> None:
    keys = SqlIdempotencyKeys(store.metadata.engine)
    first = _attempt()
    with store.metadata.transaction() as session:
        keys.record(session, first, 200, "{}")
    with pytest.raises(DBIntegrityError), store.metadata.transaction() as session:
        keys.record(session, _attempt(key=first.key, body="y"), 200, "{}")
    with store.metadata.transaction() as session:  # another user's key is another key
        keys.record(session, _attempt(user="bob", key=first.key), 201, "{}")
    found = keys.find("bob", first.key)
    assert found is not None and found.status == 201


@LOCAL
def test_keys_expire_give_way_and_are_pruned(store: Workspace) -> None:
    expired = SqlIdempotencyKeys(store.metadata.engine, lifetime=timedelta(0))
    old = _attempt()
    with store.metadata.transaction() as session:
        expired.record(session, old, 200, '{"old": true}')
    assert expired.find("alice", old.key) is None, "an expired key is not an answer"
    with store.metadata.transaction() as session:  # the same key again: the old one gives way
        expired.record(session, _attempt(key=old.key, body="new"), 200, '{"new": true}')
    assert expired.prune() >= 1
    with store.metadata.transaction() as session:
        left = session.scalar(select(func.count()).where(IdempotencyKey.key == old.key))
    assert left == 0


@LOCAL
def test_one_bucket_per_token_for_every_server_process(store: Workspace) -> None:
    """Two limiters on one database (two server processes) share the token's three requests a
    minute; time refills the bucket, and a clock behind the bucket's refills nothing."""
    token = int(uuid.uuid4().int % 1_000_000_000)
    one, two = SqlRateLimits(store.metadata.engine), SqlRateLimits(store.metadata.engine)
    now = 1_000_000.0
    answers = [limiter.take(token, 3, now) for limiter in (one, two, one, two)]
    assert answers[:3] == [None, None, None]
    assert answers[3] is not None and 0 < answers[3] <= 20.0
    assert one.take(token + 1, 3, now) is None, "another token has its own bucket"
    assert two.take(token, 3, now - 600) is not None, "a clock behind the bucket refills nothing"
    assert one.take(token, 3, now + 20.0) is None, "20 s refill one request of three a minute"
    assert two.take(token, 3, now + 20.0) is not None
    assert one.take(token, 0, now) is None, "no limit"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_transactions_racing_for_one_key_commit_one(store: Workspace) -> None:
    keys = SqlIdempotencyKeys(store.metadata.engine)
    attempt = _attempt()
    pipeline = unique("race")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def apply() -> None:
        shared = store.metadata.shared_transaction()
        try:
            with sharing(shared):
                _new_run(store, pipeline)
                start.wait(timeout=30)
                keys.record(shared.session, attempt, 200, "{}")
            shared.commit()
            outcomes.append("committed")
        except DBIntegrityError:
            shared.rollback()
            outcomes.append("refused")

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["committed", "refused"]
    assert _runs(store, pipeline) == 1


# -- a server: the same request twice is one write -----------------------------------------------


def _http(backend: Backend) -> httpx.Client:
    assert backend.server is not None
    headers = {"Authorization": f"Bearer {backend.admin_token}"}
    return httpx.Client(base_url=f"{backend.server.base}/api/v1", headers=headers, timeout=60)


def _run_body(pipeline: str) -> dict[str, Any]:
    return {
        "pipeline": pipeline, "task": "classification", "metric": "accuracy",
        "spec_path": "/s.yaml", "spec_hash": "0" * 64, "spec": {}, "git_commit": None,
        "environment": {},
    }  # fmt: skip


def _audited(store: Workspace, run_id: str) -> int:
    with store.metadata.transaction() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.user == "admin"))
        return sum(run_id in entry.changes.get("runs", {}).get("insert", []) for entry in entries)


@SERVED
def test_the_same_key_twice_is_one_write_and_the_recorded_answer(
    backend: Backend, store: Workspace
) -> None:
    pipeline, key = unique("retried"), str(uuid.uuid4())
    with _http(backend) as http:
        first = http.post("/runs", json=_run_body(pipeline), headers={"Idempotency-Key": key})
        again = http.post("/runs", json=_run_body(pipeline), headers={"Idempotency-Key": key})
        fresh = http.post("/runs", json=_run_body(pipeline), headers={"Idempotency-Key": "k2"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert fresh.json() != first.json(), "a new key is a new write"
    assert _runs(store, pipeline) == 2
    assert _audited(store, first.json()["id"]) == 1, "one audit entry for the applied write"


@SERVED
def test_the_same_key_with_another_request_is_refused_naming_it(backend: Backend) -> None:
    pipeline, key = unique("reused"), str(uuid.uuid4())
    with _http(backend) as http:
        http.post("/runs", json=_run_body(pipeline), headers={"Idempotency-Key": key})
        other = http.post("/runs", json=_run_body(pipeline + "x"), headers={"Idempotency-Key": key})
        elsewhere = http.post("/users", json={"name": "z", "role": "viewer"},
                              headers={"Idempotency-Key": key})  # fmt: skip
    assert other.status_code == elsewhere.status_code == 422
    detail = other.json()["detail"]
    assert f"Idempotency-Key {key} was already used for a different request" in detail
    assert "POST /api/v1/runs" in detail


@SERVED
def test_a_refused_write_records_nothing_and_its_retry_is_judged_again(backend: Backend) -> None:
    key = str(uuid.uuid4())
    name = unique("later")
    with _http(backend) as http:
        missing = http.post(f"/runs/{'f' * 32}/notes", json={"body": "n"},
                            headers={"Idempotency-Key": key})  # fmt: skip
        assert missing.status_code == 404
        run_id = http.post("/runs", json=_run_body(name)).json()["id"]  # no key: still applied
        note = http.post(f"/runs/{run_id}/notes", json={"body": "n"},
                         headers={"Idempotency-Key": key})  # fmt: skip
    assert note.status_code == 200, "the key of a refused write is free"


@SERVED
def test_copies_of_one_request_at_once_are_one_write(backend: Backend, store: Workspace) -> None:
    pipeline, key = unique("copies"), str(uuid.uuid4())
    answers: list[httpx.Response] = []
    start = threading.Barrier(4)

    def send() -> None:
        with _http(backend) as http:
            start.wait(timeout=30)
            answers.append(
                http.post("/runs", json=_run_body(pipeline), headers={"Idempotency-Key": key})
            )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert _runs(store, pipeline) == 1


@SERVED
def test_a_retried_upload_stores_the_same_bytes_once(backend: Backend) -> None:
    data = f"artifact {uuid.uuid4()}".encode() * 100
    address = hashlib.sha256(data).hexdigest()
    with _http(backend) as http:
        answers = [
            http.put(f"/artifacts/{address}", content=data, headers={"Idempotency-Key": "u"})
            for _ in range(2)
        ]
        stored = http.get(f"/artifacts/{address}").content
    assert [a.json() for a in answers] == [{"sha256": address, "size": len(data)}] * 2
    assert stored == data


_KEYS = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300
)


@SERVED
@settings(derandomize=True, max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(key=_KEYS)
def test_any_key_header_is_an_answer_never_a_server_error(backend: Backend, key: str) -> None:
    with _http(backend) as http:
        answer = http.post(
            "/runs",
            json=_run_body("fuzzed-keys"),
            headers={b"Idempotency-Key": key.encode("latin-1")},
        )
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        assert "Idempotency-Key" in answer.json()["detail"]
