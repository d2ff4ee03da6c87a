"""Object storage through the real command line. With ``MLSHIP_ARTIFACT_ROOT`` an ``s3://``
address (and the standard ``AWS_*`` variables), ``mlship run`` registers a model whose artifact is
in the bucket, signed, ``mlship predict`` scores with it, nothing lands in the local artifact
directory, and a wrong bucket, wrong keys or an unreachable endpoint stop the command with a
message that names the bucket and what to do, not a traceback. Sources may be ``s3://`` files
too: read from the bucket, and a missing one named."""

from __future__ import annotations

import secrets
from pathlib import Path

from mlship.config import Settings
from mlship.store.s3 import make_client
from mlship.workspace import Workspace
from tests.conftest import run_cli
from tests.objectstore import ObjectStore
from tests.quick_project import fast_churn


def _said(stderr: str) -> str:
    return " ".join(stderr.split())


def test_run_and_predict_with_artifacts_in_a_bucket(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    prefix = f"e2e/{secrets.token_hex(6)}"
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/{prefix}"}

    result = run_cli("run", str(spec), home=home, env=env)
    assert "Registered churn:1" in result.stdout, result.stdout

    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        version = workspace.tracking.get_version("churn", 1)
    finally:
        workspace.close()
    sha = version.artifact_sha256
    client = make_client(object_store.settings())
    listed = client.list_objects_v2(Bucket=object_store.bucket, Prefix=f"{prefix}/")
    keys = {entry["Key"] for entry in listed.get("Contents", [])}
    assert f"{prefix}/objects/{sha[:2]}/{sha[2:]}" in keys
    head = client.head_object(
        Bucket=object_store.bucket, Key=f"{prefix}/objects/{sha[:2]}/{sha[2:]}"
    )
    assert head["Metadata"]["mlship-signature"]  # the signature travels with the object
    assert not (home / "artifacts").exists()

    inputs, out = spec.parent / "data" / "new_customers.csv", tmp_path / "scored.csv"
    scored = run_cli("predict", "churn", str(inputs), "-o", str(out), home=home, env=env)
    assert "Scored 200 rows with churn:1" in scored.stdout
    assert out.read_text().startswith("customer_id,prediction")


def _sources_in_the_bucket(object_store: ObjectStore, spec: Path) -> str:
    """Upload the project's billing and support files and point the spec at them."""
    client = make_client(object_store.settings())
    prefix = f"sources/{secrets.token_hex(6)}"
    text = spec.read_text()
    for name in ("billing.parquet", "support_events.jsonl"):
        key = f"{prefix}/{name}"
        client.put_object(
            Bucket=object_store.bucket, Key=key, Body=(spec.parent / "data" / name).read_bytes()
        )
        (spec.parent / "data" / name).unlink()  # only the bucket has it now
        text = text.replace(f"path: data/{name}", f"path: s3://{object_store.bucket}/{key}")
    spec.write_text(text)
    return prefix


def test_sources_and_artifacts_in_a_bucket(object_store: ObjectStore, tmp_path: Path) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    prefix = _sources_in_the_bucket(object_store, spec)
    env = {
        **object_store.env(),
        "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/artifacts-{secrets.token_hex(4)}",
    }
    validated = run_cli("data", "validate", str(spec), home=home, env=env)
    assert "billing" in validated.stdout and "support" in validated.stdout, validated.stdout

    gone = spec.read_text().replace(f"{prefix}/billing.parquet", f"{prefix}/gone.parquet")
    spec.write_text(gone)
    refused = run_cli("data", "validate", str(spec), home=home, env=env, check=False)
    message = _said(refused.stderr)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "billing" in message and "does not exist" in message, message


def test_a_store_that_cannot_be_used_is_named_before_training(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    cases = {
        "no bucket": (
            {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": "s3://no-such-bucket-here/p"},
            ["no bucket 'no-such-bucket-here'", "MLSHIP_ARTIFACT_ROOT"],
        ),
        "wrong secret": (
            {
                **object_store.env(),
                "AWS_SECRET_ACCESS_KEY": "not-the-secret",
                "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/p",
            },
            ["refused the credentials", "AWS_SECRET_ACCESS_KEY"],
        ),
        "no credentials": (
            {
                "AWS_ENDPOINT_URL": object_store.endpoint,
                "AWS_ACCESS_KEY_ID": "",  # empty is unset to botocore, whatever the runner has
                "AWS_SECRET_ACCESS_KEY": "",
                "AWS_SESSION_TOKEN": "",
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/p",
            },
            ["no credentials", "AWS_ACCESS_KEY_ID"],
        ),
        "no such profile": (
            {
                **object_store.env(),
                "AWS_PROFILE": "no-such-profile",
                "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/p",
            },
            ["no-such-profile", "AWS_PROFILE"],
        ),
        "unreachable": (
            {
                **object_store.env(),
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/p",
            },
            ["cannot reach", "AWS_ENDPOINT_URL"],
        ),
    }
    for case, (env, expected) in cases.items():
        result = run_cli("run", str(spec), home=home, env=env, check=False)
        message = _said(result.stderr)
        assert result.returncode == 1, (case, result.stdout, message)
        assert "Traceback" not in result.stderr, (case, result.stderr)
        for text in [*expected, "s3://"]:
            assert text in message, (case, message)
