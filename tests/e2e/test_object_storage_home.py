"""A bucket as the whole artifact home: the quickstart and a team's tracking server keep every
artifact (datasets, quarantined rows, profiles, reports, models) in S3-compatible storage and
nothing in a local ``artifacts/`` directory, and serve predictions from a model read back from
the bucket, signed and (on the server) encrypted."""

from __future__ import annotations

import secrets
import shlex
from pathlib import Path

import httpx

from mlship.config import Settings
from mlship.crypto.encryption import MAGIC
from mlship.security.signing import STORED, signer
from mlship.store.s3 import make_client
from mlship.workspace import Workspace
from tests.conftest import run_cli
from tests.objectstore import ObjectStore
from tests.quick_project import fast_churn
from tests.services import create_database
from tests.serving import RECORD, serving
from tests.tracking import team_server


def _stored(store: ObjectStore, prefix: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """The objects (address -> bytes) and signatures (address -> text, from each object's
    metadata or, as stores wrote before, an object of its own) under ``prefix``."""
    client = make_client(store.settings())
    found: tuple[dict[str, bytes], dict[str, str]] = ({}, {})
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=f"{prefix}/"):
        for entry in page.get("Contents", []):
            folder, _, rest = entry["Key"].removeprefix(f"{prefix}/").partition("/")
            answer = client.get_object(Bucket=store.bucket, Key=entry["Key"])
            body = answer["Body"].read()
            if folder == "objects":
                found[0][rest.replace("/", "")] = body
                if "mlship-signature" in answer["Metadata"]:
                    found[1][rest.replace("/", "")] = answer["Metadata"]["mlship-signature"]
            elif folder == "signatures":
                found[1][rest.replace("/", "")] = body.decode().strip()
    return found


def _recorded(workspace: Workspace) -> dict[str, str]:
    """What the metadata says each artifact of the churn run is (name -> address)."""
    dataset = workspace.datasets.get_dataset("churn")
    run = workspace.runs.get_run("churn")
    version = workspace.catalogue.get_version("churn", 1)
    found = {
        "dataset": dataset.artifact_sha256,
        "profile": dataset.profile_sha256,
        "model": version.artifact_sha256,
        "report": run.report_sha256,
    }
    if dataset.n_quarantined:
        found["quarantine"] = dataset.quarantine_sha256
    missing = [name for name, sha in found.items() if sha is None]
    assert not missing, missing
    return {name: sha for name, sha in found.items() if sha is not None}


def test_the_quickstart_keeps_its_artifacts_in_a_bucket(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    home, prefix = tmp_path / ".mlship", f"quickstart/{secrets.token_hex(6)}"
    root = f"s3://{object_store.bucket}/{prefix}"
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": root}
    out = run_cli("quickstart", "--dir", "demo", home=home, cwd=tmp_path, env=env).stdout
    assert "Registered churn:1" in out and "quarantined" in out
    assert f"artifacts in {root}" in " ".join(out.split())

    objects, signatures = _stored(object_store, prefix)
    workspace = Workspace.open(Settings(home=home, artifact_root=root))
    try:
        recorded = _recorded(workspace)
    finally:
        workspace.close()
    assert {"dataset", "quarantine", "profile", "model", "report"} <= recorded.keys()
    assert set(recorded.values()) <= objects.keys()
    assert signatures.keys() == objects.keys()
    assert not (home / "artifacts").exists()
    assert (home / "reports" / "churn-data.html").is_file()  # readable copies stay local

    # The printed commands work as pasted: a file scored, a server started, a request answered.
    lines = [line.strip() for line in out.splitlines()]
    predict = next(line for line in lines if " predict churn:1 " in line)
    scored = run_cli(*shlex.split(predict)[-5:], home=home, cwd=tmp_path, env=env)
    assert "Scored" in scored.stdout and (tmp_path / "predictions.csv").is_file()
    curl = shlex.split(next(line for line in lines if line.startswith("curl -s -X POST")))
    body = curl[curl.index("-d") + 1]
    with serving("churn:1", home, cwd=tmp_path, env=env) as server:
        answer = httpx.post(
            f"{server.base}/predict",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1 and len(answer.json()["predictions"]) == 1
    assert not (home / "artifacts").exists()


def test_a_tracking_server_keeps_its_artifacts_in_a_bucket(
    object_store: ObjectStore, postgres_url: str, tmp_path: Path
) -> None:
    database = create_database(postgres_url, f"mlship_bucket_{secrets.token_hex(4)}")
    prefix = f"server/{secrets.token_hex(6)}"
    root = f"s3://{object_store.bucket}/{prefix}"
    server_env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": root}
    with team_server(tmp_path / "team", database, env=server_env) as team:
        spec = fast_churn(tmp_path / "churn")
        alice = tmp_path / "alice"
        ran = run_cli("run", str(spec), home=alice, cwd=tmp_path, env=team.env("alice"))
        assert "Registered churn:1" in ran.stdout, ran.stdout

        # Served by a viewer's process from the model the server reads back from the bucket.
        with serving("churn:1", tmp_path / "victor", env=team.env("victor")) as server:
            answer = httpx.post(f"{server.base}/predict", json={"records": [RECORD]}, timeout=30)
        assert answer.status_code == 200 and answer.json()["version"] == 1, answer.text

        remote = Workspace.open(Settings(home=alice, url=team.url, token=team.tokens["alice"]))
        try:
            recorded = _recorded(remote)
        finally:
            remote.close()
        server_home = team.home

    objects, signatures = _stored(object_store, prefix)
    assert set(recorded.values()) <= objects.keys()
    assert signatures.keys() == objects.keys()
    # Encrypted at rest under the server's key, and signed with the server's signing key.
    assert all(data.startswith(MAGIC) for data in objects.values())
    assert not any(data.startswith((b"PAR1", b"\x80")) for data in objects.values())
    server_signer = signer(Settings(home=server_home), create=False)
    for sha256, signature in signatures.items():
        server_signer.verify(sha256, signature, f"artifact {sha256}", STORED)
    assert not (server_home / "artifacts").exists()
    assert (server_home / "keys" / "artifacts.keyring").is_file()
    for client in (alice, tmp_path / "victor"):
        assert not (client / "artifacts").exists()
        assert not (client / "keys" / "artifacts.keyring").exists()
