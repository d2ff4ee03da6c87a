"""Artifacts in S3-compatible object storage, behind the same interface as the local store.

The layout is the local store's under a key prefix: ``<prefix>/objects/ab/cdef...`` holds the
bytes of the artifact whose sha256 is ``abcdef...``. Its signature travels with it, in the
object's user metadata (``x-amz-meta-mlship-signature``): one request writes both, one reads both,
and they appear together. (Stores written before kept it in ``<prefix>/signatures/ab/cdef...``,
which is still read when an object carries none.) The guarantees are the local store's, each met
the object-storage way:

- Atomic visibility. An object's key is its address, known only once every byte has been
  hashed, so the bytes are hashed first: a file in a pass of its own (and refused before its
  upload completes if it changed in between), a stream on its way into a spool (memory, or a
  local temporary file beyond one part). A small object is one PUT, which appears whole or not
  at all; a large one goes up in parts, several at a time as they are read (and encrypted),
  which S3 assembles into an object only when the upload completes; a failed upload is aborted,
  so no reader ever sees a partial object.
- Checksum on read. The parts of a large object are fetched several at a time and decrypted and
  hashed in order as they land; the plaintext is refused unless it matches its address, with an
  error naming the bucket and key.
- Encryption and signatures through the same steps as the local store (``store/artifacts.py``):
  the signature is part of the object, so no crash leaves an unsigned object behind.
- Key maintenance (rotation, encrypt-all, sign-all, status) walks the bucket like a directory:
  an object is re-encrypted by streaming it down and up again to its own key, where the new
  version replaces the old one whole, so an interrupted rotation leaves every object readable
  under the old key or the new one.
- Request bodies are not hashed again for SigV4 (``UNSIGNED-PAYLOAD``): every object is
  checked against its sha256 address and its signature when it is read, which a body altered on
  the way fails, so a second sha256 pass over every byte sent would only cost time.
- Tiering (``mlship gc``): an object moves to a cheaper storage class by a copy onto itself
  with that class (the bytes do not move), or, where the service has no classes (SeaweedFS
  refuses such a copy), to ``<prefix>/cold/objects/ab/cdef...``: copied server-side with its
  metadata (signature, first write time), the copy checked against the original byte for
  byte, then the original deleted. Every read looks in the usual place first and under
  ``cold/`` after, so a tiered artifact reads and verifies as before.
- Transient failures (throttling, 5xx, dropped connections) are retried by botocore's standard
  retry mode; what is left becomes a :class:`~mlship.errors.StorageError` or
  :class:`~mlship.errors.ConfigError` that names the bucket, the key and what to do.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import queue
import re
import secrets
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlship.crypto.encryption import HEADER_SIZE, MAGIC, no_key_error, read_header
from mlship.errors import ConfigError, IntegrityError, MlshipError, NotFoundError, StorageError
from mlship.store.artifacts import (
    ArtifactRef,
    ArtifactStore,
    Stored,
    check_address,
    check_checksum,
    plaintext_refused,
    sealed,
    stored_signature,
    verify_stored,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mlship.config import Settings
    from mlship.crypto.encryption import ArtifactCipher
    from mlship.crypto.signatures import Signer

_WORKERS = 8
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MIN_PART = 5 << 20
"""The smallest part S3 accepts (but for the last one)."""
_SEGMENT_READ = 1 << 16
_SIGNATURE = "mlship-signature"
"""The user-metadata key of an object's signature."""
_WRITTEN = "mlship-written"
"""The user-metadata key of a tiered object's first write time (a copy has a new one)."""
_HOT_CLASSES = frozenset({"STANDARD", ""})
_COPY_LIMIT = 5 << 30
"""The largest object one CopyObject rewrites (signing a larger one stored before signing
writes a signature object instead)."""
MULTIPART_THRESHOLD = 16 << 20
"""Objects of this size or more go up (and come down) in parts of about this size, several at a
time; smaller ones in one request."""


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix`` as its parts.

    >>> S3Location.parse("s3://models/team-a/").key("objects/ab/cd")
    'team-a/objects/ab/cd'
    """

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not url.startswith("s3://"):
            raise ConfigError(f"artifact root {url!r} is not an s3://bucket/prefix address")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise ConfigError(
                f"artifact root {url!r}: {bucket!r} is not a bucket name (3 to 63 lowercase "
                "letters, digits, dots and hyphens); write s3://bucket/prefix"
            )
        return cls(bucket, prefix.strip("/"))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class S3Settings:
    """How to reach the storage: None everywhere means boto3's own defaults (the standard
    ``AWS_*`` variables, ``~/.aws``, an instance role)."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    max_attempts: int = 5
    multipart_threshold: int = MULTIPART_THRESHOLD
    connect_timeout: float = 10


def client_from_settings(settings: Settings, location: S3Location) -> S3Client:
    """The client of the object storage at ``location``, with the ``s3_*`` settings (else the
    standard ``AWS_*`` ones): the artifacts and the prediction logs in it share one."""
    secret = settings.s3_secret_access_key
    return make_client(
        S3Settings(
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            region=settings.s3_region,
        ),
        f"the artifact store {location}",
    )


def make_client(settings: S3Settings, what: str = "the object storage") -> S3Client:
    """A boto3 S3 client with standard-mode retries; endpoint, keys and region from
    ``settings`` where given, else from the environment as boto3 reads it. ``what`` names the
    store in errors."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        # Every artifact is checked against its sha256 address and its signature when read: a
        # CRC of every request, or a SigV4 hash of every body, on top would only cost time (and
        # some S3-compatible stores refuse the CRC's headers). Requests stay signed.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=settings.connect_timeout,
        s3=(
            {"payload_signing_enabled": False, "addressing_style": "path"}
            if settings.endpoint_url
            else {"payload_signing_enabled": False}
        ),
        max_pool_connections=16,
    )
    region = settings.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        return boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            region_name=region or "us-east-1",
            config=config,
        )
    except (BotoCoreError, ValueError) as exc:  # a missing profile, a malformed endpoint
        raise ConfigError(
            f"cannot set up the client of {what}: {exc}; check AWS_PROFILE, the AWS_* "
            "variables, ~/.aws/config and MLSHIP_S3_ENDPOINT_URL"
        ) from None


class S3ArtifactStore(ArtifactStore):
    """Artifacts as objects under ``location``, signed by ``signer`` and encrypted when given a
    cipher, like :class:`~mlship.store.artifacts.LocalArtifactStore` (same arguments).

    Objects of ``multipart_threshold`` bytes or more travel in parts of that size, several at
    a time. Like the local store, this one also serves the key-maintenance walks (rotation,
    encrypt-all, sign-all, status), which build it with no signer."""

    def __init__(
        self,
        location: S3Location,
        client: S3Client,
        cipher: ArtifactCipher | None = None,
        *,
        signer: Signer | None,
        encrypt: bool = True,
        allow_plaintext: bool = True,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        storage_class: str | None = None,
    ) -> None:
        if multipart_threshold < _MIN_PART:
            raise ValueError(f"parts are at least {_MIN_PART} bytes (S3's smallest part)")
        self.multipart_threshold = multipart_threshold
        self.location = location
        self.client = client
        self.cipher = cipher
        self.signer = signer
        self.encrypt = encrypt and cipher is not None
        self.allow_plaintext = allow_plaintext
        self.storage_class = storage_class
        """The class tiered objects change to; None moves them under ``cold/`` instead."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        cipher: ArtifactCipher | None,
        *,
        signer: Signer | None,
        allow_plaintext: bool | None = None,
    ) -> S3ArtifactStore:
        """The store at ``settings.artifact_url``, reached with the ``s3_*`` settings (else the
        standard ``AWS_*`` ones), encrypting new artifacts when ``encrypt_artifacts`` is on and
        refusing plaintext as ``refuse_plaintext_artifacts`` says, unless ``allow_plaintext``
        says otherwise (the walk that encrypts plaintext must read it)."""
        assert settings.artifact_url is not None
        location = S3Location.parse(settings.artifact_url)
        client = client_from_settings(settings, location)
        return cls(
            location,
            client,
            cipher,
            signer=signer,
            encrypt=settings.encrypt_artifacts,
            allow_plaintext=(
                not settings.refuse_plaintext_artifacts
                if allow_plaintext is None
                else allow_plaintext
            ),
            storage_class=settings.gc.storage_class,
        )

    def object_key(self, sha256: str) -> str:
        check_address(sha256)
        return self.location.key(f"objects/{sha256[:2]}/{sha256[2:]}")

    def cold_key(self, sha256: str) -> str:
        check_address(sha256)
        return self.location.key(f"cold/objects/{sha256[:2]}/{sha256[2:]}")

    def _located(self, sha256: str) -> tuple[str, Any]:
        """The key the artifact is at (its usual one, else the cold tier's) and its HEAD
        answer; the usual key and None when it is in neither."""
        bucket = self.location.bucket
        for key in (self.object_key(sha256), self.cold_key(sha256)):
            with self._guard(key, "checking"):
                head = head_or_none(self.client, bucket, key)
            if head is not None:
                return key, head
        return self.object_key(sha256), None

    def signature_key(self, sha256: str) -> str:
        check_address(sha256)
        return self.location.key(f"signatures/{sha256[:2]}/{sha256[2:]}")

    def url(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{key}"

    def probe(self) -> None:
        """Raise StorageError or ConfigError unless a small object can be written, read back
        and deleted where new artifacts land, so a command stops before work it could not
        keep."""
        key = self.location.key(f"incoming/.mlship-probe-{os.getpid()}-{secrets.token_hex(4)}")
        bucket = self.location.bucket
        prefix = self.location.key("")
        with self._guard(prefix, "listing"):  # a GET: its answer says why (a HEAD's cannot)
            self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        with self._guard(key, "writing"):
            self.client.put_object(Bucket=bucket, Key=key, Body=b"mlship write probe\n")
            try:
                self.client.head_object(Bucket=bucket, Key=key)
            finally:
                self.client.delete_object(Bucket=bucket, Key=key)

    # Writing: hashed first, then uploaded to the address (in parts, several at a time).

    def put_bytes(self, data: bytes) -> ArtifactRef:
        sha256 = hashlib.sha256(data).hexdigest()
        if len(data) < self.multipart_threshold:
            return self._put_small(sha256, data)
        part = self.multipart_threshold
        pieces = (data[start : start + part] for start in range(0, len(data), part))
        return self._put_large(sha256, len(data), pieces)

    def put_file(self, path: Path) -> ArtifactRef:
        """Store a file: hashed in a first pass (an artifact stored already is not uploaded
        again), read again in parts that go up as they are read. A file whose size, times or
        inode differ after the second pass changed in between: the upload is aborted before
        its object appears."""
        part = self.multipart_threshold
        with path.open("rb") as handle:
            before = _identity(os.fstat(handle.fileno()))
            head = handle.read(part)
            if len(head) < part:
                return self._put_small(hashlib.sha256(head).hexdigest(), head)
            digest, size = hashlib.sha256(head), len(head)
            for chunk in iter(lambda: handle.read(part), b""):
                digest.update(chunk)
                size += len(chunk)
            sha256 = digest.hexdigest()

            def unchanged() -> None:
                if _identity(os.stat(path)) != before or handle.tell() != size:
                    raise IntegrityError(
                        f"{path} changed while it was being stored (it had {size} bytes with "
                        f"sha256 {sha256}); nothing was stored, store it again"
                    )

            handle.seek(0)
            return self._put_large(sha256, size, iter(lambda: handle.read(part), b""), unchanged)

    def put_chunks(self, chunks: Iterable[bytes]) -> ArtifactRef:
        """Store a stream: spooled (in memory up to a part, in a local temporary file beyond)
        while it is hashed, since its address, the key it goes to, is known only at its end."""
        digest, size, part = hashlib.sha256(), 0, self.multipart_threshold
        with tempfile.SpooledTemporaryFile(max_size=part) as spool:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
            spool.seek(0)
            if size < part:
                return self._put_small(digest.hexdigest(), spool.read())
            return self._put_large(digest.hexdigest(), size, iter(lambda: spool.read(part), b""))

    def _put_small(self, sha256: str, data: bytes) -> ArtifactRef:
        """One PUT of the object and its signature, atomic, on the condition that no object is
        at its key (``If-None-Match: *``): one request for a new artifact, and a stored one is
        left as it is (only its signature may be missing)."""
        ref = ArtifactRef(sha256=sha256, size=len(data))
        body = b"".join(sealed([data], self.cipher)) if self.encrypt else data
        key = self.object_key(sha256)
        with self._guard(key, "writing"):
            try:
                self.client.put_object(
                    Bucket=self.location.bucket,
                    Key=key,
                    Body=body,
                    Metadata=self._signed(sha256),
                    IfNoneMatch="*",
                )
            except Exception as exc:
                if _status(exc) not in (409, 412):  # 409: another upload of it under way
                    raise
                self._sign(sha256)
        return ref

    def _put_large(
        self,
        sha256: str,
        size: int,
        pieces: Iterable[bytes],
        ready: Callable[[], None] = lambda: None,
    ) -> ArtifactRef:
        """Upload the plaintext ``pieces`` (hashed already) to their address in parts, unless
        stored already; ``ready`` raises to abort the upload before the object appears."""
        ref = ArtifactRef(sha256=sha256, size=size)
        if self.exists(sha256):
            self._sign(sha256)  # stored already: only its signature may be missing
            return ref
        key = self.object_key(sha256)
        stream = sealed(pieces, self.cipher if self.encrypt else None)
        with self._guard(key, "writing"):
            self._upload(key, stream, ready, self._signed(sha256))
        return ref

    def _upload(
        self,
        key: str,
        stream: Iterable[bytes],
        ready: Callable[[], None],
        metadata: dict[str, str],
    ) -> None:
        """Put ``stream`` at ``key`` with the user ``metadata``: one PUT when it fits in a part,
        else a multipart upload
        whose parts go up as they fill, several at a time (at most as many held in memory as
        there are workers). ``ready`` runs once the stream is consumed and before the object
        appears: it raises to abort. S3 shows a multipart object only when the upload
        completes, and a failed one is aborted, so no reader ever sees part of it."""
        bucket, parts = self.location.bucket, _parts(stream, self.multipart_threshold)
        first = next(parts, b"")
        second = next(parts, None)
        if second is None:
            ready()
            self.client.put_object(Bucket=bucket, Key=key, Body=first, Metadata=metadata)
            return
        upload = self.client.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)[
            "UploadId"
        ]
        try:
            tags = self._upload_parts(key, upload, itertools.chain([first, second], parts))
            ready()
            self.client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                MultipartUpload={
                    "Parts": [{"ETag": tag, "PartNumber": n} for n, tag in enumerate(tags, 1)]
                },
            )
        except BaseException:
            with suppress(Exception):  # the upload's own failure is the one to report
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            raise

    def _upload_parts(self, key: str, upload: str, parts: Iterator[bytes]) -> list[str]:
        """The ETags of ``parts`` uploaded as parts 1, 2... of ``upload``, in parallel."""
        bucket = self.location.bucket
        slots = threading.BoundedSemaphore(_WORKERS + 1)
        failed = threading.Event()

        def send(number: int, body: bytes) -> str:
            try:
                answer = self.client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body
                )
            except BaseException:
                failed.set()
                raise
            finally:
                slots.release()
            return answer["ETag"]

        sent: list[Future[str]] = []
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            for number, body in enumerate(parts, 1):
                slots.acquire()
                if failed.is_set():
                    break
                sent.append(pool.submit(send, number, body))
            return [future.result() for future in sent]

    def _signed(self, sha256: str) -> dict[str, str]:
        """The user metadata of a new object at ``sha256``: its signature, when this store
        signs."""
        if self.signer is None:
            return {}
        return {_SIGNATURE: stored_signature(self.signer, sha256)}

    def _sign(self, sha256: str) -> None:
        """Give the stored object at ``sha256`` this store's signature unless it has it: the
        object is copied onto itself with the signature in its metadata (a server-side copy,
        no bytes through this machine); one too large for one copy gets a signature object."""
        if self.signer is None:
            return
        signature = stored_signature(self.signer, sha256)
        key, head = self._located(sha256)
        if head is None:  # gone (deleted or not yet there)
            return
        stored, size = self._signature_in(sha256, head), int(head["ContentLength"])
        if stored == signature:
            return
        bucket = self.location.bucket
        if size <= _COPY_LIMIT:
            kept = {k: v for k, v in head.get("Metadata", {}).items() if k == _WRITTEN}
            with self._guard(key, "signing"):
                self.client.copy_object(
                    Bucket=bucket,
                    Key=key,
                    CopySource={"Bucket": bucket, "Key": key},
                    Metadata={**kept, _SIGNATURE: signature},
                    MetadataDirective="REPLACE",
                    **_class_of(head),
                )
            return
        key = self.signature_key(sha256)
        with self._guard(key, "writing"):
            self.client.put_object(Bucket=bucket, Key=key, Body=signature.encode("ascii") + b"\n")

    def signature_of(self, sha256: str) -> str | None:
        """The stored signature of ``sha256``, or None when it has none."""
        return self._signature_and_size(sha256)[0]

    def _signature_and_size(self, sha256: str) -> tuple[str | None, int | None]:
        """The signature of ``sha256`` (its object's metadata, else the signature object a
        store written before kept) and the stored object's size (None when it is missing)."""
        _, head = self._located(sha256)
        if head is None:
            return self._signature_object(sha256), None
        return self._signature_in(sha256, head), int(head["ContentLength"])

    def _signature_in(self, sha256: str, head: Any) -> str | None:
        """The signature in the metadata of a HEAD answer, else the signature object's."""
        signature = _metadata_signature(head.get("Metadata", {}))
        return signature if signature is not None else self._signature_object(sha256)

    def _signature_object(self, sha256: str) -> str | None:
        """The signature in the separate object that stores written before kept."""
        data = self._read(self.signature_key(sha256), missing_ok=True)
        if data is None:
            return None
        try:
            return data.decode("ascii").strip() or None
        except UnicodeDecodeError:
            return None

    def check_signature(self, sha256: str) -> None:
        """Raise IntegrityError unless the workspace's key signed ``sha256``."""
        if self.signer is None:
            raise ValueError("checking signatures needs a signer")
        signature = self.signature_of(sha256)
        where = f"signature in the metadata of {self.url(self._located(sha256)[0])}"
        verify_stored(self.signer, sha256, signature, where)

    def sign_existing(self, sha256: str) -> bool:
        """Sign an artifact stored before signing, after checking its bytes against its address;
        False when it is signed already. A signature that does not verify is never replaced (a
        forged object is not signed away): it raises IntegrityError."""
        if self.signature_of(sha256) is not None:
            self.check_signature(sha256)
            return False
        key = self._located(sha256)[0]
        digest = hashlib.sha256()
        with self._guard(key, "reading"):
            for chunk in self._plaintext(key, sha256):
                digest.update(chunk)
        check_checksum(digest.hexdigest(), sha256, self.url(key))
        self._sign(sha256)
        return True

    def exists(self, sha256: str) -> bool:
        return self._located(sha256)[1] is not None

    # Reading: parts fetched in parallel, decrypted and hashed in order as they land.

    def get_bytes(self, sha256: str) -> bytes:
        key = self.object_key(sha256)
        for attempt in range(2):
            try:
                with self._guard(key, "reading"):
                    try:
                        return self._get(sha256, key)
                    except NotFoundError as missing:  # tiered: under cold/
                        try:
                            return self._get(sha256, self.cold_key(sha256))
                        except NotFoundError:
                            raise missing from None
            except _Replaced:
                if attempt:
                    raise StorageError(
                        f"artifact {self.url(key)} was replaced twice while it was being read "
                        "(a key rotation under way?); run the command again"
                    ) from None
        raise AssertionError("unreachable")

    def _get(self, sha256: str, key: str) -> bytes:
        metadata: dict[str, str] = {}
        pieces = self._stream(key, metadata)
        head = next(pieces, b"")  # a missing object is reported as missing, before its signature
        if self.signer is not None:
            signature = _metadata_signature(metadata)
            if signature is None:  # a store written before: the signature object, if any
                self.check_signature(sha256)
            else:
                verify_stored(self.signer, sha256, signature, self.url(key))
        plain, actual = _held_and_hashed(
            self._opened(itertools.chain([head], pieces), sha256, self.url(key))
        )
        check_checksum(actual, sha256, self.url(key))
        return plain[0] if len(plain) == 1 else b"".join(plain)

    def _plaintext(self, key: str, sha256: str) -> Iterator[bytes]:
        """The plaintext of the object at ``key``, streamed, not yet checked against its
        address."""
        return self._opened(self._stream(key), sha256, self.url(key))

    def _opened(self, pieces: Iterator[bytes], sha256: str, where: str) -> Iterator[bytes]:
        """The plaintext of the stored bytes ``pieces``: decrypted when they start with the
        encryption header, else passed through unless plaintext is refused."""
        what = f"artifact {sha256}"
        head = next(pieces, b"")
        if head.startswith(MAGIC):
            if self.cipher is None:
                raise no_key_error(io.BytesIO(head), what)
            reader = io.BufferedReader(_Joined(itertools.chain([head], pieces)), _SEGMENT_READ)
            yield from self.cipher.decrypt(reader, what)
            return
        if not self.allow_plaintext:
            raise plaintext_refused(what, where)
        yield head
        yield from pieces

    def _stream(self, key: str, metadata: dict[str, str] | None = None) -> Iterator[bytes]:
        """The bytes of the object at ``key`` in order: the first part in one request (all of
        most artifacts), the rest fetched several at a time, each pinned to the first part's
        ETag so that an object replaced meanwhile raises :class:`_Replaced` rather than mixing
        two versions. A missing object raises NotFoundError. The object's user metadata goes
        into ``metadata`` with the first part."""
        bucket, part = self.location.bucket, self.multipart_threshold
        try:
            first = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{part - 1}")
        except Exception as exc:
            if _status(exc) == 416:  # an empty object has no byte 0
                return
            self._missing(exc, key)
            raise
        head: bytes = first["Body"].read()
        if metadata is not None:
            metadata.update(first.get("Metadata", {}))
        yield head
        total = int(first.get("ContentRange", f"/{len(head)}").rsplit("/", 1)[1])
        if total <= len(head):
            return
        etag = first["ETag"]

        def fetch(start: int) -> bytes:
            end = min(start + part, total) - 1
            try:
                answer = self.client.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes={start}-{end}", IfMatch=etag
                )
            except Exception as exc:
                if _status(exc) == 412:
                    raise _Replaced(key) from None
                raise
            body: bytes = answer["Body"].read()
            return body

        starts = iter(range(len(head), total, part))
        pool = ThreadPoolExecutor(max_workers=_WORKERS)
        try:
            ahead = deque(pool.submit(fetch, start) for start in itertools.islice(starts, _WORKERS))
            while ahead:
                body = ahead.popleft().result()
                for start in itertools.islice(starts, 1):
                    ahead.append(pool.submit(fetch, start))
                yield body
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, key: str, *, missing_ok: bool) -> bytes | None:
        """The bytes of the (small) object at ``key``; None when it is missing and
        ``missing_ok``, else NotFoundError."""
        with self._guard(key, "reading"):
            try:
                response = self.client.get_object(Bucket=self.location.bucket, Key=key)
            except Exception as exc:
                if missing_ok and _is_missing(exc):
                    return None
                self._missing(exc, key)
                raise
            body: bytes = response["Body"].read()
            return body

    def _missing(self, exc: BaseException, key: str) -> None:
        """Raise NotFoundError naming ``key`` when ``exc`` says it does not exist."""
        if _is_missing(exc):
            raise NotFoundError(f"artifact {self.url(key)} is missing from {self.location}")

    # Key maintenance: what a rotation, an encrypt-all and a status walk over.

    def addresses(self) -> Iterator[str]:
        """The address of every stored artifact, in either tier, once."""
        hot = set(self._listed("objects/"))
        yield from sorted(hot)
        yield from (sha256 for sha256 in self._listed("cold/objects/") if sha256 not in hot)

    def signed_addresses(self) -> set[str]:
        """The addresses that carry a signature: a listing can show no metadata, so each
        object not named by a signature object of a store written before is asked for its own
        (a HEAD each, several at a time)."""
        signed = set(self._listed("signatures/"))
        rest = [sha256 for sha256 in self.addresses() if sha256 not in signed]

        def has_signature(sha256: str) -> bool:
            head = self._located(sha256)[1]
            # None: deleted since the listing
            return head is not None and _metadata_signature(head.get("Metadata", {})) is not None

        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            answers = pool.map(has_signature, rest)
            signed.update(a for a, yes in zip(rest, answers, strict=True) if yes)
        return signed

    def _listed(self, folder: str) -> Iterator[str]:
        prefix = self.location.key(folder)
        paginator = self.client.get_paginator("list_objects_v2")
        with self._guard(prefix, "listing"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(prefix) :].replace("/", "")
                    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                        yield name

    def key_id(self, sha256: str) -> str | None:
        """The id of the key the artifact is encrypted under; None when it is plaintext (its
        header alone is fetched)."""
        key = self._located(sha256)[0]
        with self._guard(key, "reading"):
            try:
                answer = self.client.get_object(
                    Bucket=self.location.bucket, Key=key, Range=f"bytes=0-{HEADER_SIZE - 1}"
                )
            except Exception as exc:
                if _status(exc) == 416:
                    return None
                self._missing(exc, key)
                raise
            head: bytes = answer["Body"].read()
        header = read_header(head, f"artifact {sha256}")
        return header.key_id if header is not None else None

    def reencrypt(self, sha256: str) -> None:
        """Rewrite one artifact under the cipher's current key: streamed down, decrypted (or
        read as plaintext), checked against its address, encrypted and streamed up to the same
        key, where the new object replaces the old one whole only once every part is up and
        the checksum matched. An object that fails any check is left as it was."""
        if self.cipher is None:
            raise ValueError("re-encrypting needs a cipher")
        key, head = self._located(sha256)
        digest = hashlib.sha256()
        signature = self.signature_of(sha256)  # carried over (from a signature object too)
        metadata = {_SIGNATURE: signature} if signature is not None else {}
        if head is not None and _WRITTEN in head.get("Metadata", {}):
            metadata[_WRITTEN] = head["Metadata"][_WRITTEN]

        def checked() -> Iterator[bytes]:
            for chunk in self._plaintext(key, sha256):
                digest.update(chunk)
                yield chunk

        def intact() -> None:  # before the object is replaced: a corrupt one is not laundered
            check_checksum(digest.hexdigest(), sha256, self.url(key))

        for attempt in range(2):
            try:
                with self._guard(key, "re-encrypting"):
                    self._upload(key, self.cipher.encrypt(checked()), intact, metadata)
                return
            except _Replaced:
                if attempt:
                    raise StorageError(
                        f"artifact {self.url(key)} was replaced twice while it was being "
                        "re-encrypted; run the command again"
                    ) from None
                digest = hashlib.sha256()

    def stored(self, sha256: str) -> Stored:
        """How many bytes the object takes in the bucket, when it was first written, and
        whether it is in the cold tier (under ``cold/`` or in a storage class of its own)."""
        key, head = self._located(sha256)
        if head is None:
            raise NotFoundError(f"artifact {self.url(key)} is missing from {self.location}")
        written = head["LastModified"]
        with suppress(KeyError, ValueError):
            written = datetime.fromisoformat(head["Metadata"][_WRITTEN])
        cold = key != self.object_key(sha256) or head.get("StorageClass", "") not in _HOT_CLASSES
        return Stored(int(head["ContentLength"]), written, cold=cold)

    def delete(self, sha256: str) -> None:
        """Remove an artifact (from both tiers) and its signature (a missing one is not an
        error)."""
        for key in (self.object_key(sha256), self.cold_key(sha256), self.signature_key(sha256)):
            with self._guard(key, "deleting"):
                self.client.delete_object(Bucket=self.location.bucket, Key=key)

    def tier(self, sha256: str) -> bool:
        """Move the artifact into the cold tier; False when it is not in its usual place (cold
        already, or gone). With :attr:`storage_class`, a copy onto itself in that class; else a
        server-side copy under ``cold/`` (signature and first write time kept in its metadata),
        checked byte for byte against the original, which is deleted only then. A crash
        leaves the original readable, and a second move finishes the first."""
        bucket, key = self.location.bucket, self.object_key(sha256)
        with self._guard(key, "checking"):
            head = head_or_none(self.client, bucket, key)
        if head is None:
            return False
        size = int(head["ContentLength"])
        if size > _COPY_LIMIT:
            raise StorageError(
                f"artifact {self.url(key)} has {size} bytes, more than one copy moves "
                f"({_COPY_LIMIT}); it stays where it is"
            )
        if self.storage_class is not None:
            if head.get("StorageClass", "STANDARD") == self.storage_class:
                return False
            self._reclassed(key)
            return True
        metadata = dict(head.get("Metadata", {}))
        metadata.setdefault(_WRITTEN, head["LastModified"].isoformat())
        cold = self.cold_key(sha256)
        with self._guard(cold, "tiering"):
            self.client.copy_object(
                Bucket=bucket,
                Key=cold,
                CopySource={"Bucket": bucket, "Key": key},
                Metadata=metadata,
                MetadataDirective="REPLACE",
            )
            original = _raw_digest(self._stream(key))
            copy = _raw_digest(self._stream(cold))
            if copy != original:
                self.client.delete_object(Bucket=bucket, Key=cold)
                raise IntegrityError(
                    f"the cold copy {self.url(cold)} of artifact {sha256} differs from the "
                    f"original; it was removed and {self.url(key)} kept"
                )
            self.client.delete_object(Bucket=bucket, Key=key)
        return True

    def _reclassed(self, key: str) -> None:
        """Copy the object at ``key`` onto itself in :attr:`storage_class`, metadata kept."""
        bucket = self.location.bucket
        try:
            self.client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                StorageClass=self.storage_class,  # type: ignore[arg-type]
                MetadataDirective="COPY",
            )
        except Exception as exc:
            if _status(exc) in (400, 501):
                raise StorageError(
                    f"the artifact store {self.location} refused to move {self.url(key)} to "
                    f"storage class {self.storage_class} ({_code(exc)}); this service may have "
                    "no storage classes: unset gc.storage_class to tier into the cold/ prefix"
                ) from None
            raise
        with self._guard(key, "checking"):
            after = head_or_none(self.client, bucket, key)
        if after is None or after.get("StorageClass") != self.storage_class:
            raise StorageError(
                f"the artifact store {self.location} accepted moving {self.url(key)} to storage "
                f"class {self.storage_class} but reports "
                f"{(after or {}).get('StorageClass', 'STANDARD')}; unset gc.storage_class to "
                "tier into the cold/ prefix"
            )

    def _guard(self, key: str, doing: str) -> AbstractContextManager[None]:
        return guarded(self.location, key, doing)


def head_or_none(client: S3Client, bucket: str, key: str) -> Any:
    """The HEAD answer of the object at ``key`` (its size, metadata...), or None when there is
    no such object; any other failure is raised."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _status(exc) == 404:
            return None
        raise


@contextmanager
def guarded(location: S3Location, key: str, doing: str) -> Iterator[None]:
    """Turn a failure of the storage service at ``location`` into an error naming bucket, key
    and remedy; mlship's own errors pass through."""
    try:
        yield
    except MlshipError:
        raise
    except Exception as exc:
        error = describe_failure(exc, location, key, doing)
        if error is None:
            raise
        raise error from None


def _raw_digest(pieces: Iterator[bytes]) -> str:
    """The sha256 of an object's bytes as stored (sealed or not)."""
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest()


def _class_of(head: Any) -> dict[str, Any]:
    """The StorageClass argument that keeps an object's class through a copy onto itself."""
    found = head.get("StorageClass", "")
    return {} if found in _HOT_CLASSES else {"StorageClass": found}


def _metadata_signature(metadata: dict[str, str]) -> str | None:
    """The signature in an object's user metadata (boto3 gives its keys in lower case)."""
    return metadata.get(_SIGNATURE) or None


def _held_and_hashed(chunks: Iterator[bytes]) -> tuple[list[bytes], str]:
    """The chunks, and the sha256 of them all. From the second chunk on, the hashing runs on a
    thread of its own (hashlib lets go of the GIL), beside the decryption and the download
    that produce the next chunks, instead of after them."""
    held = list(itertools.islice(chunks, 1))
    digest = hashlib.sha256(held[0] if held else b"")
    second = next(chunks, None)
    if second is None:
        return held, digest.hexdigest()
    waiting: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def hash_all() -> None:
        while (chunk := waiting.get()) is not None:
            digest.update(chunk)

    hasher = threading.Thread(target=hash_all, name="mlship-s3-hash", daemon=True)
    hasher.start()
    try:
        for chunk in itertools.chain([second], chunks):
            waiting.put(chunk)
            held.append(chunk)
    finally:
        waiting.put(None)
        hasher.join()
    return held, digest.hexdigest()


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is written to or replaced: its inode, size and times."""
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class _Replaced(Exception):
    """The object changed between the requests of one read (replaced by a rotation, or by a
    put of the same bytes under another encryption); the read starts again."""


def _parts(stream: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``stream`` regrouped in parts of at least ``size`` bytes (the last one shorter): S3 wants
    every part but the last to be 5 MiB or more, not all the same size, so a chunk of ``size``
    passes through uncopied and smaller ones are joined once."""
    held: list[bytes] = []
    count = 0
    for chunk in stream:
        if not held and len(chunk) >= size:
            yield chunk
            continue
        held.append(chunk)
        count += len(chunk)
        if count >= size:
            yield b"".join(held)
            held, count = [], 0
    if held:
        yield b"".join(held)


class _Joined(io.RawIOBase):
    """A stream over chunks of bytes as they come, for the decryption, which reads a file."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._view = memoryview(chunk)
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._view))
        target[:count] = self._view[:count]
        self._view = self._view[count:]
        return count


def _is_missing(exc: BaseException) -> bool:
    return _status(exc) == 404 and _code(exc) in ("404", "NoSuchKey", "NotFound")


def describe_failure(  # noqa: PLR0911 - one answer per kind of failure
    exc: BaseException, location: S3Location, key: str, doing: str
) -> MlshipError | None:
    """The error a user sees for a failure of S3 (None: not a storage failure)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from s3transfer.exceptions import S3UploadFailedError

    bucket = location.bucket
    where = f"s3://{bucket}/{key}"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigError(
            f"no credentials for the artifact store {location} ({doing} {where}): set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or MLSHIP_S3_ACCESS_KEY_ID and "
            "MLSHIP_S3_SECRET_ACCESS_KEY)"
        )
    if isinstance(exc, EndpointConnectionError):
        return StorageError(
            f"cannot reach the object storage of the artifact store {location} ({doing} "
            f"{where}): {exc}; check MLSHIP_S3_ENDPOINT_URL or AWS_ENDPOINT_URL and that the "
            "service is up"
        )
    if isinstance(exc, S3UploadFailedError):
        # s3transfer wraps the service's answer in its message only
        text = str(exc)
        for code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            if code in text:
                return _for_code(code, location, where, doing, text)
        return StorageError(
            f"the artifact store {location} refused {doing} {where}: {text}; nothing was "
            "stored, run the command again"
        )
    if isinstance(exc, ClientError):
        return _for_code(_code(exc), location, where, doing, str(exc), _status(exc))
    if isinstance(exc, BotoCoreError):
        return StorageError(
            f"the artifact store {location} failed {doing} {where}: {exc}; check the endpoint "
            "and the network, then run the command again"
        )
    return None


def _for_code(
    code: str, location: S3Location, where: str, doing: str, text: str, status: int | None = None
) -> MlshipError:
    if code == "NoSuchBucket" or (status == 404 and code in ("404", "NotFound")):
        return ConfigError(
            f"the artifact store {location}: there is no bucket {location.bucket!r} ({doing} "
            f"{where}); create it, or set MLSHIP_ARTIFACT_ROOT to s3://an-existing-bucket/prefix"
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return ConfigError(
            f"the artifact store {location} refused the credentials ({doing} {where}: {code}); "
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or MLSHIP_S3_ACCESS_KEY_ID and "
            "MLSHIP_S3_SECRET_ACCESS_KEY)"
        )
    if code in ("AccessDenied", "403", "Forbidden") or status == 403:
        return StorageError(
            f"the artifact store {location} denied access ({doing} {where}); grant these "
            f"credentials read and write on s3://{location.bucket}/{location.prefix}*, or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to credentials that have it"
        )
    return StorageError(
        f"the artifact store {location} failed {doing} {where}: {text}; run the command again, "
        "and check the service if it keeps failing"
    )


def _status(exc: BaseException) -> int | None:
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))
