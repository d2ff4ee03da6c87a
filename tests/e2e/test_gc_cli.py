"""``mlship gc`` through the real command line: a dry run lists what nothing refers to and the
storage it would save without touching anything; ``--apply`` deletes those artifacts and the old
dataset versions nothing uses, and afterwards the model still predicts, every artifact the
metadata names is still stored and signed, and a second collection finds nothing."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mlship.config import Settings
from mlship.store.artifacts import LocalArtifactStore
from mlship.store.references import named, referenced
from mlship.store.s3 import make_client
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, run_cli
from tests.objectstore import ObjectStore
from tests.quick_project import fast_churn


def _stored(home: Path) -> set[str]:
    return set(LocalArtifactStore(home / "artifacts", signer=None).addresses())


def _references(home: Path) -> frozenset[str]:
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        with workspace.metadata.transaction() as session:
            return referenced(session)
    finally:
        workspace.close()


def _unused_versions(home: Path, count: int) -> tuple[list[str], list[int]]:
    """Store ``count`` dataset versions of the churn pipeline that no run uses (each with a
    data artifact and a profile); their artifact addresses and dataset ids."""
    workspace = Workspace.open(Settings(home=home, user="tester"))
    addresses, ids = [], []
    try:
        for i in range(count):
            data = workspace.artifacts.put_bytes(os.urandom(5000) + f"version {i}".encode())
            profile = workspace.artifacts.put_bytes(f'{{"profile": {i}}}'.encode())
            dataset, _ = workspace.metadata.get_or_add_dataset(
                data.sha256.replace("a", "b"),  # a content hash of its own
                data.sha256,
                10,
                [{"name": "x", "dtype": "int64"}],
                [],
                pipeline="churn",
                profile_sha256=profile.sha256,
            )
            addresses += [data.sha256, profile.sha256]
            ids.append(dataset.id)
    finally:
        workspace.close()
    return addresses, ids


def test_gc_dry_run_then_apply_keeps_everything_referenced(tmp_path: Path) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    assert "Registered churn:1" in invoke_cli("run", str(spec), home=home).stdout
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        orphan = workspace.artifacts.put_bytes(b"written, never recorded" * 100).sha256
        run_id = workspace.tracking.get_version("churn", 1).run_id
    finally:
        workspace.close()
    (older_data, older_profile, newest_data, newest_profile), _ = _unused_versions(home, 2)
    before = _stored(home)
    assert orphan in before and orphan not in _references(home)
    assert len(_references(home) & before) == len(before) - 1  # the orphan alone is unnamed

    young = invoke_cli("gc", home=home).stdout
    assert "To delete: 0 artifact(s)" in young, young
    assert "unreferenced but younger than --older-than" in young

    dry = invoke_cli("gc", "--older-than", "0", "--keep-versions", "1", home=home).stdout
    assert orphan[:16] in dry and older_data[:16] in dry and older_profile[:16] in dry, dry
    assert newest_data[:16] not in dry and newest_profile[:16] not in dry
    assert "Dry run: nothing was deleted" in dry
    assert "To delete: 3 artifact(s)" in dry and "per GB-month" in dry, dry
    assert "no run or model version uses it" in dry
    assert _stored(home) == before

    applied = invoke_cli(
        "gc", "--older-than", "0", "--keep-versions", "1", "--apply", home=home
    ).stdout
    assert "Deleted 3 artifact(s) and 1 dataset version(s)." in applied, applied
    after = _stored(home)
    assert after == before - {orphan, older_data, older_profile}
    assert _references(home) & before <= after  # nothing still named was deleted

    again = invoke_cli("gc", "--older-than", "0", "--keep-versions", "1", home=home).stdout
    assert "To delete: 0 artifact(s)" in again, again
    status = invoke_cli("keys", "status", home=home).stdout
    assert f"Signed artifacts: {len(after)} of {len(after)}" in status, status
    assert "Missing artifacts: 0 of" in status, status

    rows, scored = spec.parent / "data" / "new_customers.csv", tmp_path / "scored.csv"
    predicted = invoke_cli("predict", "churn", str(rows), "-o", str(scored), home=home)
    assert "Scored 200 rows with churn:1" in predicted.stdout
    report = invoke_cli("runs", "report", run_id, home=home, check=False)
    assert report.returncode == 0, report.stderr  # rendered again from the stored evaluation

    model = _model_address(home)
    LocalArtifactStore(home / "artifacts", signer=None).delete(model)  # what gc must never do
    status = invoke_cli("keys", "status", home=home).stdout
    assert f"Missing artifacts: 1 of {len(_named(home))}" in " ".join(status.split())
    assert model in status


def _model_address(home: Path) -> str:
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        return workspace.tracking.get_version("churn", 1).artifact_sha256
    finally:
        workspace.close()


def _named(home: Path) -> frozenset[str]:
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        with workspace.metadata.transaction() as session:
            return named(session)
    finally:
        workspace.close()


def test_gc_refuses_a_bad_age_with_what_it_expects(tmp_path: Path) -> None:
    result = invoke_cli("gc", "--older-than", "ninety days", home=tmp_path / "home", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "--older-than 'ninety days'" in message and "like 90d, 12h, 30m or 0" in message


def test_gc_in_a_bucket(object_store: ObjectStore, tmp_path: Path) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    prefix = f"gc/{secrets.token_hex(6)}"
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/{prefix}"}
    assert "Registered churn:1" in run_cli("run", str(spec), home=home, env=env).stdout
    client = make_client(object_store.settings())
    orphan = "0" * 63 + "1"  # an object under the store's layout that no row names
    client.put_object(
        Bucket=object_store.bucket, Key=f"{prefix}/objects/00/{orphan[2:]}", Body=b"x" * 2048
    )

    dry = run_cli("gc", "--older-than", "0", home=home, env=env).stdout
    assert orphan[:16] in dry and "2.0 KiB" in dry and "To delete: 1 artifact(s)" in dry, dry
    applied = run_cli("gc", "--older-than", "0", "--apply", home=home, env=env).stdout
    assert "Deleted 1 artifact(s)" in applied, applied

    listed = client.list_objects_v2(Bucket=object_store.bucket, Prefix=f"{prefix}/objects/")
    keys = {entry["Key"] for entry in listed.get("Contents", [])}
    assert f"{prefix}/objects/00/{orphan[2:]}" not in keys and keys
    inputs, out = spec.parent / "data" / "new_customers.csv", tmp_path / "scored.csv"
    scored = run_cli("predict", "churn", str(inputs), "-o", str(out), home=home, env=env)
    assert "Scored 200 rows with churn:1" in scored.stdout
