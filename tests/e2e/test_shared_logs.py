"""Replicas monitored as one. Two ``mlship serve`` processes of one deployment, each with a home
of its own but the same metadata database, signing key and ``MLSHIP_ARTIFACT_ROOT=s3://...``
(a real SeaweedFS), answer requests and take labels; ``mlship monitor status`` from a third home
that shares only those settings reports the sum of both replicas' traffic and labels, nothing is
kept in the replicas' own homes, and ``mlship monitor compact`` leaves the same figures."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import httpx

from mlship.store.s3 import make_client
from tests.conftest import run_cli
from tests.objectstore import ObjectStore
from tests.quick_project import fast_churn
from tests.serving import RECORD, serving

FIRST, SECOND = 7, 5
"""Requests each replica answers (two records each on the first, three on the second)."""


def _status(home: Path, env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("monitor", "status", "churn", "--window", "1h", "--json", home=home, env=env)
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def _answer(base: str, request_id: str, records: int) -> None:
    body = {"records": [RECORD] * records}
    answer = httpx.post(f"{base}/predict", json=body, headers={"x-request-id": request_id})
    assert answer.status_code == 200, answer.text


def test_two_replicas_on_shared_storage_are_monitored_as_one(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    spec = fast_churn(tmp_path / "churn")
    root = f"s3://{object_store.bucket}/replicas-{secrets.token_hex(6)}"
    env = {
        **object_store.env(),
        "MLSHIP_ARTIFACT_ROOT": root,
        "MLSHIP_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "MLSHIP_SIGNING_KEY": secrets.token_hex(32),
    }
    run_cli("run", str(spec), home=tmp_path / "trainer", env=env)

    with (
        serving("churn:1", tmp_path / "replica-a", env=env) as first,
        serving("churn:1", tmp_path / "replica-b", env=env) as second,
    ):
        for i in range(FIRST):
            _answer(first.base, f"a-{i}", 2)
        for i in range(SECOND):
            _answer(second.base, f"b-{i}", 3)
        labels: list[dict[str, Any]] = [{"request_id": f"a-{i}", "label": "no"} for i in range(3)]
        labels.append({"request_id": "b-0", "row": 2, "label": "yes"})
        stored = httpx.post(f"{second.base}/feedback", json={"feedback": labels})
        assert stored.status_code == 200 and stored.json() == {"stored": 4}, stored.text
    said = first.output_text()
    assert f"Prediction log: {root}/predictions/churn-1" in said, said

    for replica in ("replica-a", "replica-b"):  # nothing stayed on a replica's disk
        assert not (tmp_path / replica / "predictions").exists()
        assert not (tmp_path / replica / "feedback").exists()
    client = make_client(object_store.settings())
    bucket, prefix = root.removeprefix("s3://").split("/", 1)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/predictions/churn-1/")
    assert len(listed.get("Contents", [])) == 2  # one part per replica, flushed on shutdown

    monitor = tmp_path / "monitor"
    before = _status(monitor, env)
    assert before["rows"] == FIRST * 2 + SECOND * 3
    assert before["requests"] == FIRST + SECOND
    assert before["metrics"]["health.requests"] == FIRST + SECOND
    assert before["metrics"]["performance.labelled"] == 4

    compacted = run_cli("monitor", "compact", home=monitor, env=env)
    # The prediction log, the labels and the usage ledger (whose parts the servers' flushes
    # and the monitoring passes wrote, as many as their timing made)
    assert re.search(r"Merged \d+ parts into \d+ in 3 logs", compacted.stdout), compacted.stdout
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/predictions/churn-1/")
    assert len(listed.get("Contents", [])) == 1
    after = _status(monitor, env)
    for key in ("rows", "requests", "metrics"):
        assert after[key] == before[key], key
