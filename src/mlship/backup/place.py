"""Where backups are kept: a local directory or an ``s3://bucket/prefix``, one layout for both.

::

    <destination>/objects/ab/cdef...        artifacts and log parts, by the sha256 of their
                                            plaintext, shared by every backup kept here
    <destination>/20261206T203846Z/         one backup, named by the UTC time it was started
        database.sqlite | database.pgdump   the metadata snapshot
        keys/...                            the workspace's keys, only when asked for
        manifest.json                       written last: a backup without it is incomplete

The object area is an artifact store (:class:`~mlship.store.artifacts.LocalArtifactStore` or
:class:`~mlship.store.s3.S3ArtifactStore`), so a backup's copy of an artifact is written, and
checked when read, exactly as the workspace's own: atomically, under its address, encrypted when
the workspace encrypts. It carries no signatures of its own: the manifest records each
artifact's, and checking them needs the workspace's keys, which the place never requires. Every
other file of a backup is written whole or not at all (a temporary file, fsync, rename; on S3 one
PUT, or a multipart upload, which S3 shows only once it is complete).
"""

from __future__ import annotations

import abc
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlship.errors import ConfigError, NotFoundError
from mlship.store.artifacts import LocalArtifactStore, atomic_write, fsync_directory
from mlship.store.failures import Place
from mlship.store.locks import file_lock

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mlship.config import Settings
    from mlship.crypto.encryption import ArtifactCipher
    from mlship.store.s3 import S3ArtifactStore, S3Location

NAME = re.compile(r"[0-9]{8}T[0-9]{6}Z(-[0-9]{1,3})?")
"""A backup's name: the UTC time it was started (``-2``, ``-3``... when two start in one second)."""

_CHUNK = 1 << 20


def check_name(name: str) -> str:
    """``name`` when it is a backup's name, else a ConfigError saying what one looks like."""
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a backup's name (a UTC time such as 20261206T203846Z; "
            "`mlship backup list` shows them)"
        )
    return name


class BackupPlace(Protocol):
    """A destination of backups (see the module docstring)."""

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The destination as the user gave it."""

    @abc.abstractmethod
    def objects(self, cipher: ArtifactCipher | None, *, encrypt: bool) -> ObjectArea:
        """The shared object area, decrypting with ``cipher`` and encrypting what it writes
        when ``encrypt``."""

    @abc.abstractmethod
    def backups(self) -> list[str]:
        """The names of the backups kept here, complete or not, oldest first."""

    @abc.abstractmethod
    def has(self, name: str, file: str) -> bool:
        """Whether backup ``name`` holds ``file``."""

    @abc.abstractmethod
    def write(self, name: str, file: str, source: Path) -> None:
        """Copy the local file ``source`` to ``file`` of backup ``name``, whole or not at all."""

    @abc.abstractmethod
    def read(self, name: str, file: str) -> bytes:
        """The bytes of ``file`` of backup ``name`` (NotFoundError naming it when missing)."""

    @abc.abstractmethod
    def download(self, name: str, file: str, target: Path) -> None:
        """Copy ``file`` of backup ``name`` to the local path ``target``."""

    @abc.abstractmethod
    def remove(self, name: str) -> None:
        """Delete backup ``name``: its manifest first, so it is never half there and complete."""

    @abc.abstractmethod
    def locked(self) -> AbstractContextManager[None]:
        """Held while a backup is taken or pruned, where the place can be locked."""

    def staging(self) -> AbstractContextManager[str]:
        """A local folder for the files of a backup before they go up, removed afterwards."""
        return tempfile.TemporaryDirectory(prefix="mlship-backup-")

    def tidy(self) -> int:
        """Remove what interrupted backups left behind outside any backup (a prune does this
        while it holds the lock); how many files went."""
        return 0

    def location(self, name: str, file: str = "") -> str:
        """Where ``file`` of backup ``name`` is, for messages."""
        return f"{self.where.rstrip('/')}/{name}" + (f"/{file}" if file else "")


class ObjectArea(Protocol):
    """The shared object area: an artifact store that can also list and delete."""

    def addresses(self) -> Iterator[str]: ...

    def exists(self, sha256: str) -> bool: ...

    def get_bytes(self, sha256: str) -> bytes: ...

    def put_bytes(self, data: bytes) -> object: ...

    def delete(self, sha256: str) -> None: ...


class LocalObjects(LocalArtifactStore):
    """A backup directory's object area: a local artifact store that can also delete."""

    def delete(self, sha256: str) -> None:
        for path in (self.path_for(sha256), self.signature_path(sha256)):
            path.unlink(missing_ok=True)


class LocalPlace(BackupPlace):
    """Backups in a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.place = Place("the backup directory", root, "--to")

    @property
    def where(self) -> str:
        return str(self.root)

    def objects(self, cipher: ArtifactCipher | None, *, encrypt: bool) -> LocalObjects:
        store = LocalObjects(self.root, cipher, signer=None, encrypt=encrypt)
        store.place = self.place
        return store

    def backups(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and NAME.fullmatch(p.name))

    def _path(self, name: str, file: str) -> Path:
        return self.root / check_name(name) / file

    def has(self, name: str, file: str) -> bool:
        return self._path(name, file).is_file()

    def write(self, name: str, file: str, source: Path) -> None:
        with self.place.guard(), source.open("rb") as handle:
            atomic_write(self._path(name, file), iter(lambda: handle.read(_CHUNK), b""))

    def read(self, name: str, file: str) -> bytes:
        try:
            return self._path(name, file).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{self.location(name, file)} does not exist") from None

    def download(self, name: str, file: str, target: Path) -> None:
        try:
            shutil.copyfile(self._path(name, file), target)
        except FileNotFoundError:
            raise NotFoundError(f"{self.location(name, file)} does not exist") from None

    def remove(self, name: str) -> None:
        directory = self.root / check_name(name)
        with self.place.guard():
            (directory / "manifest.json").unlink(missing_ok=True)
            fsync_directory(directory)
            shutil.rmtree(directory, ignore_errors=True)

    def locked(self) -> AbstractContextManager[None]:
        return self._locked()

    def staging(self) -> AbstractContextManager[str]:
        """In the destination's ``incoming/`` (on the backup's disk, not a possibly small
        /tmp), where a prune tidies what a killed backup left."""
        incoming = self.root / "incoming"
        with self.place.guard():
            incoming.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix="backup.", dir=incoming)

    def tidy(self) -> int:
        incoming = self.root / "incoming"
        if not incoming.is_dir():
            return 0
        count = 0
        with self.place.guard():
            for path in incoming.iterdir():
                if path.is_dir():
                    count += sum(1 for p in path.rglob("*") if p.is_file())
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    count += 1
                    path.unlink(missing_ok=True)
        return count

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self.place.guard():
            self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".lock", self.place):
            yield


class S3Place(BackupPlace):
    """Backups under an ``s3://bucket/prefix``. Object storage has no locks: run one backup or
    prune at a time against a bucket (a prune never deletes a backup still being written, as it
    keeps the newest ones, but it may delete objects such a backup has copied and not yet
    listed in its manifest)."""

    def __init__(self, location: S3Location, client: S3Client) -> None:
        self.location_ = location
        self.client = client

    @property
    def where(self) -> str:
        return str(self.location_)

    def objects(self, cipher: ArtifactCipher | None, *, encrypt: bool) -> S3ArtifactStore:
        from mlship.store.s3 import S3ArtifactStore

        return S3ArtifactStore(self.location_, self.client, cipher, signer=None, encrypt=encrypt)

    def _key(self, name: str, file: str) -> str:
        return self.location_.key(f"{check_name(name)}/{file}")

    def backups(self) -> list[str]:
        prefix = self.location_.key("")
        names: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        with self._guard(prefix, "listing"):
            pages = paginator.paginate(Bucket=self.location_.bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(prefix) :].strip("/")
                    if NAME.fullmatch(name):
                        names.add(name)
        return sorted(names)

    def has(self, name: str, file: str) -> bool:
        from mlship.store.s3 import head_or_none

        key = self._key(name, file)
        with self._guard(key, "checking"):
            return head_or_none(self.client, self.location_.bucket, key) is not None

    def write(self, name: str, file: str, source: Path) -> None:
        key = self._key(name, file)
        with self._guard(key, "writing"):
            # upload_file goes up in parts beyond its threshold; S3 shows the object only when
            # every part is in, so a reader never sees part of it.
            self.client.upload_file(str(source), self.location_.bucket, key)

    def read(self, name: str, file: str) -> bytes:
        key = self._key(name, file)
        with self._guard(key, "reading"):
            try:
                answer = self.client.get_object(Bucket=self.location_.bucket, Key=key)
            except Exception as exc:
                if _status(exc) == 404:
                    raise NotFoundError(f"{self.location(name, file)} does not exist") from None
                raise
            data: bytes = answer["Body"].read()
        return data

    def download(self, name: str, file: str, target: Path) -> None:
        if not self.has(name, file):
            raise NotFoundError(f"{self.location(name, file)} does not exist")
        key = self._key(name, file)
        with self._guard(key, "reading"):
            self.client.download_file(self.location_.bucket, key, str(target))

    def _listed(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._guard(prefix, "listing"):
            for page in paginator.paginate(Bucket=self.location_.bucket, Prefix=prefix):
                keys.extend(entry["Key"] for entry in page.get("Contents", []))
        return keys

    def remove(self, name: str) -> None:
        manifest = self._key(name, "manifest.json")
        bucket = self.location_.bucket
        with self._guard(manifest, "deleting"):
            self.client.delete_object(Bucket=bucket, Key=manifest)
            for key in self._listed(self._key(name, "")):
                self.client.delete_object(Bucket=bucket, Key=key)

    def locked(self) -> AbstractContextManager[None]:
        return nullcontext()

    def _guard(self, key: str, doing: str) -> AbstractContextManager[None]:
        """A failure of the storage service as an error naming the bucket, key and remedy."""
        from mlship.store.s3 import guarded

        return guarded(self.location_, key, doing)


def open_place(target: str, settings: Settings) -> BackupPlace:
    """The place ``target`` names: ``s3://bucket/prefix`` (reached with the workspace's ``s3_*``
    settings, else the standard ``AWS_*`` variables) or a local directory."""
    if target.startswith("s3://"):
        from mlship.store.s3 import S3Location, client_from_settings

        location = S3Location.parse(target)
        return S3Place(location, client_from_settings(settings, location))
    if "://" in target:
        raise ConfigError(
            f"backup destination {target!r}: expected a directory or s3://bucket/prefix"
        )
    return LocalPlace(Path(target).expanduser().resolve())


def _status(exc: BaseException) -> int | None:
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def locate(backup: str, settings: Settings) -> tuple[BackupPlace, str]:
    """The place and name of ``backup``: ``DIR/NAME``, ``s3://bucket/prefix/NAME``, or a bare
    ``NAME`` in ``backup_root``."""
    parent, _, name = backup.rstrip("/").rpartition("/")
    check_name(name)
    if parent:
        return open_place(parent, settings), name
    return open_place(default_root(settings), settings), name


def default_root(settings: Settings, given: str | None = None) -> str:
    """``given``, else the ``backup_root`` setting; a ConfigError saying how to set one."""
    root = given or settings.backup_root
    if not root:
        raise ConfigError(
            "where should backups go? give --to DIR or s3://bucket/prefix, or set "
            "MLSHIP_BACKUP_ROOT (backup_root in mlship.toml); keep them on another disk or "
            "bucket than the workspace"
        )
    return root
