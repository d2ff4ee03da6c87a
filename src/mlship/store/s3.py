"""Artifacts in S3-compatible object storage, behind the same interface as the local store.

The layout is the local store's under a key prefix: ``<prefix>/objects/ab/cdef...`` holds the
bytes of the artifact whose sha256 is ``abcdef...`` and ``<prefix>/signatures/ab/cdef...`` its
signature. The guarantees are the local store's, each met the object-storage way:

- Atomic visibility. The address is only known once every byte has been hashed, so the (sealed)
  bytes are spooled (in memory, or in a local temporary file beyond the multipart threshold)
  and uploaded to their final key afterwards. A PUT appears whole or not at all; a large file goes
  up in parts, which S3 only assembles into an object when the upload completes, and a failed
  upload is aborted, so no reader ever sees a partial object.
- Checksum on read. The plaintext is re-hashed and refused unless it matches its address, with
  an error naming the bucket and key.
- Encryption and signatures through the same steps as the local store (``store/artifacts.py``):
  the signature is written before the object, so no crash leaves an unsigned object behind.
- Transient failures (throttling, 5xx, dropped connections) are retried by botocore's standard
  retry mode; what is left becomes a :class:`~mlship.errors.StorageError` or
  :class:`~mlship.errors.ConfigError` that names the bucket, the key and what to do.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from mlship.errors import ConfigError, MlshipError, NotFoundError, StorageError
from mlship.store.artifacts import (
    ArtifactRef,
    ArtifactStore,
    check_address,
    check_checksum,
    read_plaintext,
    sealed,
    stored_signature,
    verify_stored,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mlship.crypto.encryption import ArtifactCipher
    from mlship.crypto.signatures import Signer

_WORKERS = 8
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_READ_PART = 16 << 20
"""Reads ask for this much first (all of most artifacts), then for the rest in parts this size."""
MULTIPART_THRESHOLD = 64 << 20
"""Files above this size go up (and come down) in parts of this size, several at a time."""


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


def make_client(settings: S3Settings, what: str = "the object storage") -> S3Client:
    """A boto3 S3 client with standard-mode retries; endpoint, keys and region from
    ``settings`` where given, else from the environment as boto3 reads it. ``what`` names the
    store in errors."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
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
    cipher, like :class:`~mlship.store.artifacts.LocalArtifactStore` (same arguments)."""

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
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.multipart_threshold = multipart_threshold
        self.location = location
        self.client = client
        self.cipher = cipher
        self.signer = signer
        self.encrypt = encrypt and cipher is not None
        self.allow_plaintext = allow_plaintext
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_threshold,
            max_concurrency=_WORKERS,
        )

    def object_key(self, sha256: str) -> str:
        check_address(sha256)
        return self.location.key(f"objects/{sha256[:2]}/{sha256[2:]}")

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

    def put_chunks(self, chunks: Iterable[bytes]) -> ArtifactRef:
        digest, size = hashlib.sha256(), 0

        def plain() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        # In memory up to the multipart threshold, in a temporary file beyond it.
        with tempfile.SpooledTemporaryFile(max_size=self.multipart_threshold) as spool:
            for piece in sealed(plain(), self.cipher if self.encrypt else None):
                spool.write(piece)
            length = spool.tell()
            sha256 = digest.hexdigest()
            if self.exists(sha256):  # stored already: only its signature may be missing
                self._sign(sha256)
            else:
                self._sign(sha256, check=False)  # before the object: no crash leaves it unsigned
                spool.seek(0)
                self._upload(self.object_key(sha256), spool, length)
        return ArtifactRef(sha256=sha256, size=size)

    def _upload(self, key: str, spool: IO[bytes], length: int) -> None:
        bucket = self.location.bucket
        with self._guard(key, "writing"):
            if length < self.multipart_threshold:  # one PUT: atomic
                self.client.put_object(Bucket=bucket, Key=key, Body=spool.read())
            else:  # in parts, which S3 shows only once the upload completes; aborted on failure
                self.client.upload_fileobj(spool, bucket, key, Config=self.transfer)

    def _sign(self, sha256: str, *, check: bool = True) -> None:
        """Store the signature of ``sha256``; ``check`` first reads the one stored, to leave a
        valid one alone (a new artifact skips that request: signing is deterministic)."""
        if self.signer is None:
            return
        signature = stored_signature(self.signer, sha256)
        if not check or self._signature_of(sha256) != signature:
            key = self.signature_key(sha256)
            with self._guard(key, "writing"):
                self.client.put_object(
                    Bucket=self.location.bucket, Key=key, Body=signature.encode("ascii") + b"\n"
                )

    def _signature_of(self, sha256: str) -> str | None:
        key = self.signature_key(sha256)
        data = self._read(key, missing_ok=True)
        if data is None:
            return None
        try:
            return data.decode("ascii").strip() or None
        except UnicodeDecodeError:
            return None

    def exists(self, sha256: str) -> bool:
        key = self.object_key(sha256)
        with self._guard(key, "checking"):
            try:
                self.client.head_object(Bucket=self.location.bucket, Key=key)
            except Exception as exc:
                if _status(exc) == 404:
                    return False
                raise
        return True

    def get_bytes(self, sha256: str) -> bytes:
        key = self.object_key(sha256)
        stored = self._read(key, missing_ok=False, transfer=True)
        assert stored is not None
        if self.signer is not None:
            signature = self._signature_of(sha256)
            verify_stored(self.signer, sha256, signature, self.url(self.signature_key(sha256)))
        where = self.url(key)
        digest = hashlib.sha256()
        parts = []
        for chunk in read_plaintext(
            io.BytesIO(stored),
            self.cipher,
            what=f"artifact {sha256}",
            where=where,
            allow_plaintext=self.allow_plaintext,
            whole=True,
        ):
            digest.update(chunk)
            parts.append(chunk)
        check_checksum(digest.hexdigest(), sha256, where)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read(self, key: str, *, missing_ok: bool, transfer: bool = False) -> bytes | None:
        """The bytes of the object at ``key`` (None when it is missing and ``missing_ok``);
        ``transfer`` fetches a large object in parts, several at a time."""
        with self._guard(key, "reading"):
            try:
                if transfer:
                    return self._fetch(key)
                response = self.client.get_object(Bucket=self.location.bucket, Key=key)
                body: bytes = response["Body"].read()
                return body
            except Exception as exc:
                if _status(exc) == 404 and _code(exc) in ("404", "NoSuchKey", "NotFound"):
                    if missing_ok:
                        return None
                    raise NotFoundError(
                        f"artifact {self.url(key)} is missing from {self.location}"
                    ) from None
                raise

    def _fetch(self, key: str) -> bytes:
        """The object at ``key``: a small one in a single request (its first part), a large one
        in parts fetched in parallel, each pinned to the first part's ETag so that an object
        replaced meanwhile fails the read rather than mixing two versions."""
        bucket, part = self.location.bucket, min(_READ_PART, self.multipart_threshold)
        try:
            first = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{part - 1}")
        except Exception as exc:
            if _status(exc) == 416:  # an empty object has no byte 0
                return b""
            raise
        head: bytes = first["Body"].read()
        total = int(first.get("ContentRange", f"/{len(head)}").rsplit("/", 1)[1])
        if total <= len(head):
            return head
        etag = first["ETag"]
        buffer = bytearray(total)
        buffer[: len(head)] = head

        def fetch(start: int) -> None:
            end = min(start + part, total) - 1
            response = self.client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={start}-{end}", IfMatch=etag
            )
            buffer[start : end + 1] = response["Body"].read()

        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            list(pool.map(fetch, range(len(head), total, part)))
        return bytes(buffer)

    def addresses(self) -> Iterator[str]:
        """The address of every stored artifact."""
        prefix = self.location.key("objects/")
        paginator = self.client.get_paginator("list_objects_v2")
        with self._guard(prefix, "listing"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(prefix) :].replace("/", "")
                    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                        yield name

    def delete(self, sha256: str) -> None:
        """Remove an artifact and its signature (a missing one is not an error)."""
        for key in (self.object_key(sha256), self.signature_key(sha256)):
            with self._guard(key, "deleting"):
                self.client.delete_object(Bucket=self.location.bucket, Key=key)

    @contextmanager
    def _guard(self, key: str, doing: str) -> Iterator[None]:
        """Turn a failure of the storage service into an error naming bucket, key and remedy;
        mlship's own errors pass through."""
        try:
            yield
        except MlshipError:
            raise
        except Exception as exc:
            error = describe_failure(exc, self.location, key, doing)
            if error is None:
                raise
            raise error from None


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
