"""Large artifacts in object storage (a real SeaweedFS), in parts of S3's smallest size: a file
is hashed first and not uploaded again when stored already; one that changes during its upload,
or an upload whose part fails, leaves nothing visible and no upload pending; re-encryption
streams an object down and up to its own key, and an interrupted one leaves the old object
whole; a read that meets an object replaced under it starts again.

Failures are injected through botocore's own event hooks on the real client, so every request
that does happen is a real one."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from mlship.crypto.encryption import ArtifactCipher, Keyring, new_key
from mlship.errors import IntegrityError, StorageError
from mlship.security.signing import Signer
from mlship.store.s3 import S3ArtifactStore, S3Location, make_client
from tests.objectstore import ObjectStore

PART = 5 << 20
KEY = b"large-objects-signing-key-" + b"0" * 16


def _store(object_store: ObjectStore, prefix: str, cipher: ArtifactCipher | None = None) -> Any:
    """A store of its own client (hooks on one store's client do not touch another's)."""
    location = S3Location(object_store.bucket, prefix)
    return S3ArtifactStore(
        location,
        make_client(object_store.settings()),
        cipher,
        signer=Signer(hmac_key=KEY),
        multipart_threshold=PART,
    )


@pytest.fixture
def prefix() -> str:
    return f"large/{secrets.token_hex(6)}"


def _hook(store: S3ArtifactStore, event: str, handler: Callable[..., None]) -> list[str]:
    """Call ``handler`` with the parameters of every request of kind ``event`` before it is
    made; the calls seen, by kind."""
    seen: list[str] = []

    def observe(**kwargs: Any) -> None:
        seen.append(event)
        handler(**kwargs)

    store.client.meta.events.register(f"before-parameter-build.s3.{event}", observe)
    return seen


def _pending(store: S3ArtifactStore, key: str) -> list[str]:
    """The multipart uploads of ``key`` neither completed nor aborted."""
    listed = store.client.list_multipart_uploads(Bucket=store.location.bucket, Prefix=key)
    return [upload["Key"] for upload in listed.get("Uploads", [])]


def _parts_of(store: S3ArtifactStore, sha256: str) -> int:
    head = store.client.head_object(Bucket=store.location.bucket, Key=store.object_key(sha256))
    etag: str = head["ETag"].strip('"')
    return int(etag.rpartition("-")[2]) if "-" in etag else 1


def test_a_file_goes_up_in_parts_once(
    object_store: ObjectStore, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "dataset.parquet"
    data = os.urandom(3 * PART + 4321)
    path.write_bytes(data)
    store = _store(object_store, prefix)
    uploads = _hook(store, "CreateMultipartUpload", lambda **_: None)
    ref = store.put_file(path)
    assert ref.size == len(data) and _parts_of(store, ref.sha256) == 4
    assert store.get_bytes(ref.sha256) == data
    assert store.put_file(path) == ref  # stored already: hashed, not uploaded again
    assert store.put_bytes(data) == ref
    assert uploads == ["CreateMultipartUpload"]


def test_a_file_changed_while_it_goes_up_is_refused_and_nothing_is_left(
    object_store: ObjectStore, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "dataset.parquet"
    path.write_bytes(os.urandom(2 * PART + 10))
    store = _store(object_store, prefix)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    def rewrite(**_: Any) -> None:  # another process writes the file between the two passes
        with path.open("r+b") as handle:
            handle.seek(2 * PART + 3)  # in the last part, read after the upload starts
            handle.write(b"changed")

    _hook(store, "CreateMultipartUpload", rewrite)
    with pytest.raises(IntegrityError, match="changed while it was being stored") as caught:
        store.put_file(path)
    assert str(path) in str(caught.value) and "nothing was stored" in str(caught.value)
    assert not store.exists(sha256)
    assert _pending(store, store.object_key(sha256)) == []


def test_a_part_that_fails_aborts_the_upload(object_store: ObjectStore, prefix: str) -> None:
    store = _store(object_store, prefix)
    data = os.urandom(3 * PART)
    sha256 = hashlib.sha256(data).hexdigest()
    calls: list[int] = []

    def second_fails(**kwargs: Any) -> None:
        calls.append(kwargs["params"]["PartNumber"])
        if kwargs["params"]["PartNumber"] == 2:
            raise EndpointConnectionError(endpoint_url=object_store.endpoint)

    _hook(store, "UploadPart", second_fails)
    with pytest.raises(StorageError, match="cannot reach") as caught:
        store.put_bytes(data)
    assert store.url(store.object_key(sha256)) in str(caught.value)
    assert not store.exists(sha256)
    assert _pending(store, store.object_key(sha256)) == []


def test_reencryption_streams_a_large_object_and_an_interrupted_one_keeps_the_old(
    object_store: ObjectStore, prefix: str
) -> None:
    old, new = new_key(), new_key()
    store = _store(object_store, prefix, ArtifactCipher(Keyring(old)))
    data = os.urandom(3 * PART + 99)
    ref = store.put_bytes(data)
    assert store.key_id(ref.sha256) == Keyring(old).current_id
    assert _parts_of(store, ref.sha256) >= 4

    rotated = _store(object_store, prefix, ArtifactCipher(Keyring(new, (old,))))

    def third_fails(**kwargs: Any) -> None:
        if kwargs["params"]["PartNumber"] == 3:
            raise EndpointConnectionError(endpoint_url=object_store.endpoint)

    _hook(rotated, "UploadPart", third_fails)
    with pytest.raises(StorageError):
        rotated.reencrypt(ref.sha256)
    assert store.key_id(ref.sha256) == Keyring(old).current_id
    assert store.get_bytes(ref.sha256) == data  # the old key still reads it, whole
    assert _pending(store, store.object_key(ref.sha256)) == []

    moved = _store(object_store, prefix, ArtifactCipher(Keyring(new, (old,))))
    moved.reencrypt(ref.sha256)
    assert moved.key_id(ref.sha256) == Keyring(new).current_id
    assert moved.get_bytes(ref.sha256) == data
    assert _parts_of(store, ref.sha256) >= 4
    with pytest.raises(IntegrityError, match="is encrypted under key"):
        store.get_bytes(ref.sha256)  # the old key alone no longer reads it


def test_reencryption_refuses_a_corrupt_object_and_leaves_it(
    object_store: ObjectStore, prefix: str
) -> None:
    store = _store(object_store, prefix)  # plaintext, as stored before encryption
    data = os.urandom(2 * PART + 5)
    ref = store.put_bytes(data)
    key = store.object_key(ref.sha256)
    bad = bytearray(data)
    bad[PART + 3] ^= 0x01
    store.client.put_object(Bucket=store.location.bucket, Key=key, Body=bytes(bad))
    encrypting = _store(object_store, prefix, ArtifactCipher(Keyring(new_key())))
    with pytest.raises(IntegrityError, match="is corrupt") as caught:
        encrypting.reencrypt(ref.sha256)
    assert store.url(key) in str(caught.value)
    body = store.client.get_object(Bucket=store.location.bucket, Key=key)["Body"].read()
    assert body == bytes(bad)  # not laundered under the new key
    assert encrypting.key_id(ref.sha256) is None


def test_a_read_that_meets_a_replaced_object_starts_again(
    object_store: ObjectStore, prefix: str
) -> None:
    keyring = Keyring(new_key())
    reader = _store(object_store, prefix, ArtifactCipher(keyring))
    data = os.urandom(3 * PART)
    ref = reader.put_bytes(data)
    writer = _store(object_store, prefix, ArtifactCipher(keyring))
    replaced: list[str] = []
    starts: list[str] = []

    def first_part(**kwargs: Any) -> None:
        if kwargs["params"].get("Range", "").startswith("bytes=0-"):
            starts.append(kwargs["params"]["Range"])

    def after_first(**_: Any) -> None:
        if len(starts) == 1 and not replaced:
            replaced.append("rewritten")
            writer.reencrypt(ref.sha256)  # a new version: same plaintext, another ETag

    _hook(reader, "GetObject", first_part)
    reader.client.meta.events.register("after-call.s3.GetObject", after_first)
    assert reader.get_bytes(ref.sha256) == data
    assert replaced == ["rewritten"]
    assert len(starts) == 2  # the read started again, from the new version
