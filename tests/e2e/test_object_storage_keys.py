"""Key maintenance on an artifact store in a bucket, through the real command line: ``mlship
keys status`` counts the objects under each key and the unsigned ones, ``mlship keys rotate``
re-encrypts every object under a new key and resumes after a process killed half-way (every
object readable in between, under the old key or the new one), and unsigned or forged
signatures are refused and reported, and ``mlship keys sign-all`` signs the rest."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

from mlship.crypto.encryption import MAGIC, read_header
from mlship.security.signing import STORED, Signer
from mlship.store.s3 import make_client
from tests.conftest import mlship_env, run_cli
from tests.objectstore import ObjectStore
from tests.quick_project import fast_churn

_DIES_ON_THE_THIRD = textwrap.dedent(
    """
    import os, sys
    from mlship.cli.main import main
    from mlship.store.s3 import S3ArtifactStore

    real, calls = S3ArtifactStore.reencrypt, []

    def dies_on_the_third(self, sha256):
        calls.append(sha256)
        if len(calls) == 3:
            os._exit(137)  # no cleanup at all, like a kill -9
        real(self, sha256)

    S3ArtifactStore.reencrypt = dies_on_the_third
    sys.argv = ["mlship", "keys", "rotate"]
    main()
    """
)


def _text(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


class Bucket:
    """The objects of one artifact root, read behind mlship's back."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.client = make_client(store.settings())
        self.bucket, self.prefix = store.bucket, prefix

    def keys(self, folder: str) -> dict[str, str]:
        """Address -> object key under ``prefix/folder/``."""
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/{folder}/")
        found = {}
        for entry in listed.get("Contents", []):
            key = entry["Key"]
            found[key.removeprefix(f"{self.prefix}/{folder}/").replace("/", "")] = key
        return found

    def signatures(self) -> dict[str, str]:
        """Address -> the signature in each object's metadata (objects without one left out)."""
        found = {}
        for sha256, key in self.keys("objects").items():
            metadata = self.client.head_object(Bucket=self.bucket, Key=key)["Metadata"]
            if "mlship-signature" in metadata:
                found[sha256] = metadata["mlship-signature"]
        return found

    def set_signature(self, key: str, signature: str | None) -> None:
        """Rewrite the object at ``key`` in place with ``signature`` (None: with none)."""
        metadata = {} if signature is None else {"mlship-signature": signature}
        self.client.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            Metadata=metadata,
            MetadataDirective="REPLACE",
        )

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def key_ids(self) -> dict[str, str]:
        """Address -> id of the key each object is encrypted under (every one must be)."""
        ids = {}
        for sha256, key in self.keys("objects").items():
            data = self.read(key)
            assert data.startswith(MAGIC), f"{key} is not encrypted"
            header = read_header(data, key)
            assert header is not None
            ids[sha256] = header.key_id
        return ids


def _predicts(spec: Path, home: Path, env: dict[str, str], out: Path) -> None:
    inputs = spec.parent / "data" / "new_customers.csv"
    scored = run_cli("predict", "churn", str(inputs), "-o", str(out), home=home, env=env)
    assert "Scored 200 rows with churn:1" in scored.stdout, scored.stdout
    profiled = run_cli("data", "profile", "churn", home=home, env=env)
    assert "profiled" in profiled.stdout.lower(), profiled.stdout


def test_rotation_on_a_bucket_resumes_after_a_kill(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    prefix = f"keys/{secrets.token_hex(6)}"
    env = {
        **object_store.env(),
        "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/{prefix}",
        "MLSHIP_ENCRYPT_ARTIFACTS": "true",
    }
    assert "Registered churn:1" in run_cli("run", str(spec), home=home, env=env).stdout
    bucket = Bucket(object_store, prefix)
    before = bucket.key_ids()
    (old,) = set(before.values())
    count = len(before)
    assert count >= 5 and not (home / "artifacts").exists()
    status = run_cli("keys", "status", home=home, env=env).stdout
    assert f"Current key: {old}" in status
    assert re.search(rf"{old}\s*│\s*current\s*│\s*{count}\b", status), status
    assert f"Signed artifacts: {count} of {count}" in status

    # Killed after two objects moved: each object is whole under one key or the other.
    killed = subprocess.run(
        [sys.executable, "-c", _DIES_ON_THE_THIRD],
        env=mlship_env(home, env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == 137, killed.stderr
    halfway = bucket.key_ids()
    assert halfway.keys() == before.keys()
    new = next(kid for kid in halfway.values() if kid != old)
    assert sorted(halfway.values()).count(new) == 2 and set(halfway.values()) == {old, new}
    status = run_cli("keys", "status", home=home, env=env).stdout
    assert re.search(rf"{new}\s*│\s*current\s*│\s*2\b", status), status
    assert re.search(rf"{old}\s*│\s*kept for reading\s*│\s*{count - 2}\b", status), status
    _predicts(spec, home, env, tmp_path / "halfway.csv")

    resumed = run_cli("keys", "rotate", home=home, env=env)
    said = _text(resumed)
    # The prediction log parts and the usage ledger's written meanwhile (in the bucket, beside
    # the artifacts) are under the new key already, and walked with the artifacts.
    parts = len(bucket.keys("predictions")) + len(bucket.keys("usage"))
    assert parts >= 2 and not (home / "predictions").exists() and not (home / "usage").exists()
    moved = f"{count - 2} re-encrypted, {2 + parts} already under it"
    assert f"Artifacts under key {new}: {moved}" in said, said
    assert f"Retired from the keyring: {old}" in said
    assert set(bucket.key_ids().values()) == {new}
    status = run_cli("keys", "status", home=home, env=env).stdout
    assert re.search(rf"{new}\s*│\s*current\s*│\s*{count + parts}\b", status), status
    assert old not in status
    _predicts(spec, home, env, tmp_path / "after.csv")
    assert not (home / "artifacts").exists()


def test_signatures_on_a_bucket_are_checked_counted_and_signed(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    prefix = f"signed/{secrets.token_hex(6)}"
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/{prefix}"}
    assert "Registered churn:1" in run_cli("run", str(spec), home=home, env=env).stdout
    bucket = Bucket(object_store, prefix)
    objects, signatures = bucket.keys("objects"), bucket.signatures()
    count = len(objects)
    assert count >= 5 and signatures.keys() == objects.keys()
    assert bucket.keys("signatures") == {}  # each signature travels in its object's metadata

    # Objects stored before signing: refused until signed, and counted.
    for key in objects.values():
        bucket.set_signature(key, None)
    refused = run_cli("data", "profile", "churn", home=home, env=env, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "not signed" in _text(refused) and "mlship keys sign-all" in _text(refused)
    assert f"s3://{object_store.bucket}/{prefix}/objects/" in _text(refused)
    status = run_cli("keys", "status", home=home, env=env)
    assert f"Unsigned artifacts: {count} of {count}" in _text(status)

    # A signature made with another key is reported and left in place.
    forged_sha = sorted(objects)[0]
    forged = Signer(hmac_key=b"x" * 32).sign(forged_sha, STORED)
    bucket.set_signature(objects[forged_sha], forged)
    signed = run_cli("keys", "sign-all", home=home, env=env, check=False)
    said = _text(signed)
    assert signed.returncode == 1 and "Traceback" not in signed.stderr, said
    assert f"Artifacts signed: {count - 1}; already signed: 0" in said
    assert forged_sha in said and "signature does not verify" in said
    assert bucket.signatures() == {forged_sha: forged} | {
        sha: signatures[sha] for sha in objects if sha != forged_sha
    }

    bucket.set_signature(objects[forged_sha], None)
    assert "Artifacts signed: 1; already signed:" in _text(
        run_cli("keys", "sign-all", home=home, env=env)
    )
    status = run_cli("keys", "status", home=home, env=env)
    assert f"Signed artifacts: {count} of {count}" in _text(status)
    _predicts(spec, home, env, tmp_path / "scored.csv")
