"""Content-addressed artifact store.

An artifact is a byte string named by its sha256. Writes are atomic: bytes go to a temporary file in
the same directory tree, are fsynced, then renamed into place, and the directory is fsynced, so a
crash leaves either the whole artifact or nothing. Reads re-hash the bytes and refuse a file whose
hash differs from its name: a flipped bit on disk never reaches the unpickler.
"""

from __future__ import annotations

import abc
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mlship.errors import IntegrityError, NotFoundError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactRef:
    """What the metadata store keeps about an artifact."""

    sha256: str
    size: int


class ArtifactStore(abc.ABC):
    """The narrow interface every artifact backend implements."""

    @abc.abstractmethod
    def put_chunks(self, chunks: Iterable[bytes]) -> ArtifactRef:
        """Store a stream of bytes atomically and return its address."""

    @abc.abstractmethod
    def get_bytes(self, sha256: str) -> bytes:
        """Return the artifact's bytes after checking they still hash to ``sha256``."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether an artifact with this address is stored."""

    def put_bytes(self, data: bytes) -> ArtifactRef:
        return self.put_chunks([data])

    def put_file(self, path: Path) -> ArtifactRef:
        with path.open("rb") as handle:
            return self.put_chunks(iter(lambda: handle.read(_CHUNK), b""))


def _check_address(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 address: {sha256!r}")
    return sha256


def fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(handle: BinaryIO, chunks: Iterable[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        handle.write(chunk)
    handle.flush()
    os.fsync(handle.fileno())
    return digest.hexdigest(), size


def atomic_write(path: Path, chunks: Iterable[bytes]) -> str:
    """Write ``chunks`` to ``path`` via temp file + fsync + rename; return the sha256 written.

    On any failure the temporary file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            sha256, _ = _write_synced(handle, chunks)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return sha256


class LocalArtifactStore(ArtifactStore):
    """Artifacts as files under ``root/objects/ab/cdef...``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._incoming = root / "incoming"

    def path_for(self, sha256: str) -> Path:
        _check_address(sha256)
        return self._objects / sha256[:2] / sha256[2:]

    def put_chunks(self, chunks: Iterable[bytes]) -> ArtifactRef:
        # The address is only known once every byte has been hashed, so the bytes land in an
        # incoming file first and are renamed to their address afterwards (same filesystem).
        self._incoming.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix="artifact.", suffix=".tmp", dir=self._incoming)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                sha256, size = _write_synced(handle, chunks)
            final = self.path_for(sha256)
            if final.is_file():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
                fsync_directory(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ArtifactRef(sha256=sha256, size=size)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def get_bytes(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"artifact {sha256} is missing from {self._objects}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"artifact {path} is corrupt: its sha256 is {actual}, expected {sha256}; "
                "refusing to use it"
            )
        return data
