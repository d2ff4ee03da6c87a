"""One behaviour for every artifact store: on local disk, behind a tracking server (HTTP) and in
S3-compatible object storage (a real SeaweedFS).

Each backend is exercised through the interface the rest of mlship uses (``ArtifactStore``); only
tampering reaches past it, to the bytes at rest, because a store is judged by what it does when
they are not what it wrote.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.errors import IntegrityError, NotFoundError
from mlship.remote.artifacts import RemoteArtifactStore
from mlship.remote.client import Client
from mlship.security.encryption import MAGIC, ArtifactCipher, Keyring, new_key
from mlship.security.signing import Signer
from mlship.store.artifacts import ArtifactStore, LocalArtifactStore
from mlship.store.s3 import S3ArtifactStore, S3Location, make_client
from tests.objectstore import ObjectStore

KEY = b"contract-signing-key-" + b"0" * 16
MULTIPART = 5 << 20
"""The smallest part size S3 allows: the store's multipart threshold in these tests."""


@dataclass
class Backend:
    """A store under test and how to reach the bytes it keeps at rest."""

    name: str
    store: ArtifactStore
    at_rest: Callable[[str], bytes]
    tamper: Callable[[str, bytes], object]
    """Replace the stored bytes of an artifact behind the store's back."""
    names_place: Callable[[str], str]
    """What an error about an artifact must name, beside its address."""
    encrypted: bool = False


def _local(root: Path, cipher: ArtifactCipher | None) -> Backend:
    store = LocalArtifactStore(root, cipher, signer=Signer(hmac_key=KEY))
    return Backend(
        "local",
        store,
        at_rest=lambda sha: store.path_for(sha).read_bytes(),
        tamper=lambda sha, data: store.path_for(sha).write_bytes(data),
        names_place=lambda sha: str(store.path_for(sha)),
        encrypted=cipher is not None,
    )


def _s3(object_store: ObjectStore, cipher: ArtifactCipher | None) -> Backend:
    client = make_client(object_store.settings())
    location = S3Location(object_store.bucket, f"contract/{secrets.token_hex(6)}")
    store = S3ArtifactStore(
        location, client, cipher, signer=Signer(hmac_key=KEY), multipart_threshold=MULTIPART
    )

    def at_rest(sha: str) -> bytes:
        body: bytes = client.get_object(Bucket=location.bucket, Key=store.object_key(sha))[
            "Body"
        ].read()
        return body

    def tamper(sha: str, data: bytes) -> None:
        client.put_object(Bucket=location.bucket, Key=store.object_key(sha), Body=data)

    return Backend(
        "s3",
        store,
        at_rest,
        tamper,
        names_place=lambda sha: store.url(store.object_key(sha)),
        encrypted=cipher is not None,
    )


def _http(team: Any) -> Backend:
    client = Client(team.url, team.tokens["alice"])
    objects = team.home / "artifacts" / "objects"

    def path(sha: str) -> Path:
        return Path(objects / sha[:2] / sha[2:])

    return Backend(
        "http",
        RemoteArtifactStore(client),
        at_rest=lambda sha: path(sha).read_bytes(),
        tamper=lambda sha, data: path(sha).write_bytes(data),
        names_place=lambda sha: sha,
        encrypted=True,  # the test team's server encrypts at rest
    )


@pytest.fixture(params=["local", "local-encrypted", "http", "s3", "s3-encrypted"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind: str = request.param
    cipher = ArtifactCipher(Keyring(new_key())) if kind.endswith("-encrypted") else None
    if kind.startswith("local"):
        yield _local(tmp_path / "store", cipher)
    elif kind.startswith("s3"):
        yield _s3(request.getfixturevalue("object_store"), cipher)
    else:
        found = _http(request.getfixturevalue("team"))
        yield found
        assert isinstance(found.store, RemoteArtifactStore)
        found.store.client.close()


@pytest.fixture
def artifact_store(backend: Backend) -> ArtifactStore:
    return backend.store


def _unique(size: int) -> bytes:
    """Bytes no other test stores (stores may be shared by a session)."""
    head = secrets.token_bytes(32)
    return (head * (size // 32 + 1))[:size] if size >= 32 else head[:size]


def test_bytes_round_trip_under_their_sha256(artifact_store: ArtifactStore) -> None:
    data = _unique(1000)
    ref = artifact_store.put_bytes(data)
    assert ref.size == 1000
    assert artifact_store.exists(ref.sha256)
    assert artifact_store.get_bytes(ref.sha256) == data


def test_nothing_at_all_is_an_artifact_too(artifact_store: ArtifactStore) -> None:
    ref = artifact_store.put_bytes(b"")
    assert ref.size == 0
    assert artifact_store.get_bytes(ref.sha256) == b""


def test_the_same_bytes_get_the_same_address_once(backend: Backend) -> None:
    data = _unique(4096)
    first = backend.store.put_bytes(data)
    at_rest = backend.at_rest(first.sha256)
    again = backend.store.put_chunks([data[:100], data[100:]])
    assert again == first
    assert backend.at_rest(first.sha256) == at_rest  # not rewritten
    assert backend.store.get_bytes(first.sha256) == data


def test_a_missing_artifact_is_not_found_and_named(artifact_store: ArtifactStore) -> None:
    sha = secrets.token_hex(32)
    assert not artifact_store.exists(sha)
    with pytest.raises(NotFoundError, match=sha[:2]) as caught:
        artifact_store.get_bytes(sha)
    assert sha[2:] in str(caught.value)


def test_a_tampered_artifact_is_refused_naming_it(backend: Backend) -> None:
    data = _unique(3000)
    ref = backend.store.put_bytes(data)
    stored = bytearray(backend.at_rest(ref.sha256))
    stored[-10] ^= 0x01
    backend.tamper(ref.sha256, bytes(stored))
    with pytest.raises(IntegrityError) as caught:
        backend.store.get_bytes(ref.sha256)
    message = str(caught.value)
    assert ref.sha256 in message or backend.names_place(ref.sha256) in message, message
    if not backend.encrypted:  # a checksum failure names where the bad bytes are
        assert backend.names_place(ref.sha256) in message, message


def test_bytes_substituted_whole_are_refused(backend: Backend) -> None:
    """Someone who can write the storage files other bytes under an address: the checksum (or
    the encryption's authentication) refuses them."""
    ref = backend.store.put_bytes(_unique(500))
    other = backend.store.put_bytes(_unique(500))
    backend.tamper(ref.sha256, backend.at_rest(other.sha256))
    with pytest.raises(IntegrityError):
        backend.store.get_bytes(ref.sha256)


def test_a_large_artifact_round_trips(backend: Backend) -> None:
    size = 2 * MULTIPART + 12345  # three parts in object storage
    data = _unique(size)
    ref = backend.store.put_chunks(data[i : i + (1 << 20)] for i in range(0, size, 1 << 20))
    assert ref.size == size
    assert backend.store.get_bytes(ref.sha256) == data
    if isinstance(backend.store, S3ArtifactStore):  # it went up in parts
        s3 = backend.store
        head = s3.client.head_object(Bucket=s3.location.bucket, Key=s3.object_key(ref.sha256))
        assert head["ETag"].strip('"').endswith("-3"), head["ETag"]


def test_encryption_keeps_the_plaintext_off_the_storage(backend: Backend) -> None:
    data = b"a secret row, " + _unique(2000)
    ref = backend.store.put_bytes(data)
    at_rest = backend.at_rest(ref.sha256)
    if backend.encrypted:
        assert at_rest.startswith(MAGIC)
        assert data[:64] not in at_rest
    else:
        assert at_rest == data
    assert backend.store.get_bytes(ref.sha256) == data


def test_concurrent_puts_of_the_same_bytes_agree(backend: Backend) -> None:
    data = _unique(200_000)
    with ThreadPoolExecutor(max_workers=6) as pool:
        refs = list(pool.map(lambda _: backend.store.put_bytes(data), range(6)))
    assert len(set(refs)) == 1
    assert backend.store.get_bytes(refs[0].sha256) == data


@settings(
    derandomize=True,
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=3000))
def test_any_bytes_round_trip(artifact_store: ArtifactStore, data: bytes) -> None:
    ref = artifact_store.put_bytes(data)
    assert artifact_store.get_bytes(ref.sha256) == data


def test_an_unsigned_or_forged_artifact_is_refused_locally(tmp_path: Path) -> None:
    """The stores that sign what they write refuse an artifact their key did not sign."""
    store = LocalArtifactStore(tmp_path, signer=Signer(hmac_key=KEY))
    forger = LocalArtifactStore(tmp_path, signer=Signer(hmac_key=b"f" * 32))
    _refuses_unsigned_and_forged(store, forger, lambda sha: store.signature_path(sha).unlink())


def test_an_unsigned_or_forged_artifact_is_refused_in_object_storage(
    object_store: ObjectStore,
) -> None:
    client = make_client(object_store.settings())
    location = S3Location(object_store.bucket, f"contract/{secrets.token_hex(6)}")
    store = S3ArtifactStore(location, client, signer=Signer(hmac_key=KEY))
    forger = S3ArtifactStore(location, client, signer=Signer(hmac_key=b"f" * 32))

    def unsign(sha: str) -> None:  # the object rewritten without its metadata
        key = store.object_key(sha)
        client.copy_object(
            Bucket=location.bucket,
            Key=key,
            CopySource={"Bucket": location.bucket, "Key": key},
            MetadataDirective="REPLACE",
        )

    _refuses_unsigned_and_forged(store, forger, unsign)


def test_object_storage_keeps_the_signature_in_the_object_and_reads_the_older_layout(
    object_store: ObjectStore,
) -> None:
    """One request writes an object and its signature; an object a store wrote before, with its
    signature in an object of its own, still reads and keeps that signature when stored again
    or re-encrypted; signing it puts the signature in its metadata."""
    client = make_client(object_store.settings())
    location = S3Location(object_store.bucket, f"contract/{secrets.token_hex(6)}")
    store = S3ArtifactStore(location, client, signer=Signer(hmac_key=KEY))
    data = _unique(300)
    ref = store.put_bytes(data)
    head = client.head_object(Bucket=location.bucket, Key=store.object_key(ref.sha256))
    assert head["Metadata"]["mlship-signature"] == store.signature_of(ref.sha256)
    listed = client.list_objects_v2(Bucket=location.bucket, Prefix=location.key("signatures/"))
    assert listed.get("KeyCount", 0) == 0
    assert store.signed_addresses() == {ref.sha256}

    # The older layout: the object bare, its signature beside it.
    signature = store.signature_of(ref.sha256)
    assert signature is not None
    key, bucket = store.object_key(ref.sha256), location.bucket
    client.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key},
        MetadataDirective="REPLACE",
    )
    client.put_object(Bucket=bucket, Key=store.signature_key(ref.sha256), Body=signature.encode())
    assert store.get_bytes(ref.sha256) == data
    assert store.signed_addresses() == {ref.sha256}
    cipher = ArtifactCipher(Keyring(new_key()))
    maintenance = S3ArtifactStore(location, client, cipher, signer=None)
    maintenance.reencrypt(ref.sha256)  # the walks have no signer: the signature is carried over
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"]["mlship-signature"] == signature
    reader = S3ArtifactStore(location, client, cipher, signer=Signer(hmac_key=KEY))
    assert reader.get_bytes(ref.sha256) == data

    # Unsigned: signing copies the object onto itself with its signature.
    client.delete_object(Bucket=bucket, Key=store.signature_key(ref.sha256))
    client.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key},
        MetadataDirective="REPLACE",
    )
    assert store.signed_addresses() == set()
    assert reader.sign_existing(ref.sha256)
    assert client.head_object(Bucket=bucket, Key=key)["Metadata"]["mlship-signature"] == signature


def _refuses_unsigned_and_forged(
    store: ArtifactStore, forger: ArtifactStore, unsign: Callable[[str], None]
) -> None:
    forged = forger.put_bytes(_unique(100))  # stored under another key's signature
    with pytest.raises(IntegrityError, match=forged.sha256):
        store.get_bytes(forged.sha256)
    ref = store.put_bytes(_unique(100))
    unsign(ref.sha256)
    with pytest.raises(IntegrityError, match="not signed"):
        store.get_bytes(ref.sha256)


@pytest.fixture(params=["local", "local-encrypted", "s3", "s3-encrypted"])
def tiered_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The stores that hold a cold tier (a tracking server's is tiered on the server's host)."""
    kind: str = request.param
    cipher = ArtifactCipher(Keyring(new_key())) if kind.endswith("-encrypted") else None
    if kind.startswith("local"):
        return _local(tmp_path / "store", cipher)
    return _s3(request.getfixturevalue("object_store"), cipher)


@pytest.mark.parametrize("size", [0, 1000, MULTIPART + 10])
def test_a_tiered_artifact_reads_verified_from_the_cold_tier(
    tiered_backend: Backend, size: int
) -> None:
    store = tiered_backend.store
    assert isinstance(store, LocalArtifactStore | S3ArtifactStore)
    data = _unique(size)
    ref = store.put_bytes(data)
    written = store.stored(ref.sha256)
    assert not written.cold

    assert store.tier(ref.sha256)
    assert not store.tier(ref.sha256)  # moved once
    moved = store.stored(ref.sha256)
    assert moved.cold and moved.size == written.size
    assert abs((moved.written - written.written).total_seconds()) < 1  # its first write time
    assert store.exists(ref.sha256) and list(store.addresses()).count(ref.sha256) == 1
    assert store.get_bytes(ref.sha256) == data
    assert store.signed_addresses() >= {ref.sha256}
    store.check_signature(ref.sha256)
    with pytest.raises((FileNotFoundError, ClientError)):  # gone from the usual place
        tiered_backend.at_rest(ref.sha256)
    if tiered_backend.encrypted:  # a key rotation rewrites it where it is
        assert store.cipher is not None
        old = store.cipher.keyring
        store.cipher = ArtifactCipher(Keyring(new_key(), (old.current, *old.older)))
        store.reencrypt(ref.sha256)
        assert store.key_id(ref.sha256) == store.cipher.keyring.current_id
        assert store.stored(ref.sha256).cold and store.get_bytes(ref.sha256) == data

    store.delete(ref.sha256)
    assert not store.exists(ref.sha256)
    with pytest.raises(NotFoundError, match=ref.sha256[2:]):  # its usual place, named
        store.get_bytes(ref.sha256)


def test_a_tiered_artifact_with_forged_bytes_is_refused(tiered_backend: Backend) -> None:
    store = tiered_backend.store
    assert isinstance(store, LocalArtifactStore | S3ArtifactStore)
    ref = store.put_bytes(_unique(500))
    store.tier(ref.sha256)
    forged = _unique(500)
    if isinstance(store, LocalArtifactStore):
        store.cold_path_for(ref.sha256).write_bytes(forged)
    else:
        store.client.put_object(
            Bucket=store.location.bucket, Key=store.cold_key(ref.sha256), Body=forged
        )
    with pytest.raises(IntegrityError):
        store.get_bytes(ref.sha256)
