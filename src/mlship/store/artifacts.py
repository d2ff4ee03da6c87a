"""Content-addressed artifact store.

An artifact is a byte string named by its sha256. Writes are atomic: bytes go to a temporary file in
the same directory tree, are fsynced, then renamed into place, and the directory is fsynced, so a
crash leaves either the whole artifact or nothing. Reads re-hash the bytes and refuse a file whose
hash differs from its name: a flipped bit on disk never reaches the unpickler.

Given a cipher, the local store encrypts what it writes (``crypto/encryption.py``) and decrypts
what it reads. The address stays the sha256 of the plaintext, so addresses, signatures and
deduplication do not depend on whether, or under which key, a file is encrypted. A file without
the encryption header is read as plaintext (it was stored before encryption was turned on) unless
the store is told to refuse plaintext.

Given a signer, the local store also signs every artifact it writes and refuses to read one whose
signature is missing or does not verify (``crypto/signatures.py``, a context of its own so that no
stored artifact carries a model's signature). A checksum proves the bytes are the ones named; the
signature proves this workspace's key stored that name, so whoever can write the directory and
the metadata but lacks the key cannot slip in a dataset, a profile or a report of their own. The
signature of ``objects/ab/cdef...`` is the text file ``signatures/ab/cdef...``, written atomically
before the object is renamed into place, so a crash never leaves an unsigned object behind.

An artifact may live in the store's cold tier (``mlship gc`` moves old ones there, to a cheaper
disk): ``cold/objects/ab/cdef...`` under the root, or a directory of its own. Every read looks in
the usual place first and in the cold tier after, so a tiered artifact reads, verifies and
signs as before; its signature never moves. A move copies the bytes into the cold tier (temp
file, fsync, rename), reads the copy back to check it, and only then deletes the original: a
crash leaves the original, perhaps beside a whole copy, and the next move finishes the job.

A store whose disk refuses a write or a read (read-only, full, over quota, permissions, I/O
errors) raises :class:`~mlship.errors.StorageError` naming the store's root and what to do, and
:meth:`LocalArtifactStore.probe` finds a store that cannot be written before a command starts work
it could not keep.

:class:`ArtifactStore` is the interface the rest of mlship uses; the local store, a tracking
server's (``remote/artifacts.py``) and object storage (``store/s3.py``) implement it, and the
object store reuses the reading, sealing and signing steps below rather than repeating them.
"""

from __future__ import annotations

import abc
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from mlship.crypto.encryption import (
    HEADER_SIZE,
    MAGIC,
    ArtifactCipher,
    no_key_error,
    read_header,
)
from mlship.crypto.signatures import STORED
from mlship.errors import IntegrityError, NotFoundError
from mlship.store.failures import Place, probe

if TYPE_CHECKING:
    from mlship.crypto.signatures import Signer

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    """What the storage holds of one artifact: the bytes it bills and when they were written."""

    size: int
    written: datetime
    cold: bool = False
    """Whether the artifact is in the store's cold tier (moved there by ``mlship gc``)."""


@dataclass(frozen=True)
class ArtifactRef:
    """What the metadata store keeps about an artifact."""

    sha256: str
    size: int


class ArtifactStore(Protocol):
    """The narrow interface every artifact backend implements: what the rest of mlship calls.

    A backend may subclass it to inherit :meth:`put_bytes` and :meth:`put_file`; anything with
    these five methods is an artifact store to the type checker.
    """

    @abc.abstractmethod
    def put_chunks(self, chunks: Iterable[bytes]) -> ArtifactRef:
        """Store a stream of bytes atomically and return its address."""

    @abc.abstractmethod
    def get_bytes(self, sha256: str) -> bytes:
        """Return the artifact's bytes after checking they still hash to ``sha256`` (and, in a
        signing store, that the workspace's key signed ``sha256``)."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether an artifact with this address is stored."""

    def put_bytes(self, data: bytes) -> ArtifactRef:
        return self.put_chunks([data])

    def put_file(self, path: Path) -> ArtifactRef:
        with path.open("rb") as handle:
            return self.put_chunks(iter(lambda: handle.read(_CHUNK), b""))


class MaintainedStore(Protocol):
    """A store the key-maintenance walks (rotation, encrypt-all, sign-all, status) go through:
    its artifacts listed, their key ids read, each re-encrypted or signed in place, atomically.
    The local store and object storage implement it; a tracking server's store is maintained on
    the server's host."""

    cipher: ArtifactCipher | None

    def addresses(self) -> Iterator[str]:
        """The address of every stored artifact."""
        ...

    def signed_addresses(self) -> set[str]:
        """The addresses that have a signature (valid or not)."""
        ...

    def key_id(self, sha256: str) -> str | None:
        """The id of the key the artifact is encrypted under; None when it is plaintext."""
        ...

    def reencrypt(self, sha256: str) -> None:
        """Rewrite the artifact under the cipher's current key, checked, atomically."""
        ...

    def sign_existing(self, sha256: str) -> bool:
        """Sign an unsigned artifact after checking its checksum; False when it is signed."""
        ...


def check_address(sha256: str) -> str:
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


class _Digest:
    """Passes chunks through, hashing and counting them on the way."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._hash = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _write_synced(handle: BinaryIO, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        handle.write(chunk)
    handle.flush()
    os.fsync(handle.fileno())


def atomic_write(path: Path, chunks: Iterable[bytes]) -> str:
    """Write ``chunks`` to ``path`` via temp file + fsync + rename; return the sha256 written.

    On any failure the temporary file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    written = _Digest(chunks)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_synced(handle, written)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return written.hexdigest()


class LocalArtifactStore(ArtifactStore):
    """Artifacts as files under ``root/objects/ab/cdef...``, signed by ``signer`` and encrypted
    when given a cipher.

    ``signer`` signs what is written and checks what is read; every store that hands artifacts
    to the rest of mlship has one, and only the key-maintenance walks, which read nothing out,
    pass None. ``cipher`` decrypts what was encrypted, and encrypts new artifacts unless
    ``encrypt`` is False (encryption turned off again: older encrypted files still read).
    ``allow_plaintext`` False refuses files that are not encrypted.
    """

    def __init__(
        self,
        root: Path,
        cipher: ArtifactCipher | None = None,
        *,
        signer: Signer | None,
        encrypt: bool = True,
        allow_plaintext: bool = True,
        cold: Path | None = None,
    ) -> None:
        self.root = root
        self.cold_root = cold if cold is not None else root / "cold"
        self._cold = self.cold_root / "objects"
        self.cipher = cipher
        self.signer = signer
        self.encrypt = encrypt and cipher is not None
        self.allow_plaintext = allow_plaintext
        self._objects = root / "objects"
        self._signatures = root / "signatures"
        self._incoming = root / "incoming"
        self.place = Place("the artifact store", root, "MLSHIP_ARTIFACT_ROOT")

    def probe(self) -> None:
        """Raise StorageError unless a small object can be written, synced, renamed and
        deleted where new artifacts land."""
        probe(self.place, self._incoming)

    def path_for(self, sha256: str) -> Path:
        check_address(sha256)
        return self._objects / sha256[:2] / sha256[2:]

    def cold_path_for(self, sha256: str) -> Path:
        check_address(sha256)
        return self._cold / sha256[:2] / sha256[2:]

    def located(self, sha256: str) -> Path:
        """Where the artifact is: its usual place, else the cold tier (the usual place when it
        is in neither)."""
        path = self.path_for(sha256)
        if path.is_file():
            return path
        cold = self.cold_path_for(sha256)
        return cold if cold.is_file() else path

    def signature_path(self, sha256: str) -> Path:
        check_address(sha256)
        return self._signatures / sha256[:2] / sha256[2:]

    def signature_of(self, sha256: str) -> str | None:
        """The stored signature of ``sha256``, or None when it has none."""
        try:
            return self.signature_path(sha256).read_text(encoding="ascii").strip() or None
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    def check_signature(self, sha256: str) -> None:
        """Raise IntegrityError unless the workspace's key signed ``sha256``."""
        if self.signer is None:
            raise ValueError("checking signatures needs a signer")
        verify_stored(self.signer, sha256, self.signature_of(sha256), self.signature_path(sha256))

    def _sign(self, sha256: str) -> None:
        """Write the signature of ``sha256`` unless a valid one is already there."""
        if self.signer is None:
            return
        signature = stored_signature(self.signer, sha256)
        if self.signature_of(sha256) != signature:
            atomic_write(self.signature_path(sha256), [signature.encode("ascii") + b"\n"])

    def sign_existing(self, sha256: str) -> bool:
        """Sign an artifact stored before signing, after checking its bytes against its address;
        False when it is signed already. A signature that does not verify is never replaced (a
        forged file is not signed away): it raises IntegrityError."""
        if self.signature_of(sha256) is not None:
            self.check_signature(sha256)
            return False
        plain = _Digest(self._plaintext(sha256))
        for _ in plain:
            pass
        _verify(plain, sha256, self.located(sha256))
        with self.place.guard():
            self._sign(sha256)
        return True

    def _sealed(self, chunks: Iterable[bytes]) -> Iterable[bytes]:
        return sealed(chunks, self.cipher if self.encrypt else None)

    def put_chunks(self, chunks: Iterable[bytes]) -> ArtifactRef:
        with self.place.guard():
            return self._put(chunks)

    def _put(self, chunks: Iterable[bytes]) -> ArtifactRef:
        # The address is only known once every byte has been hashed, so the bytes land in an
        # incoming file first and are renamed to their address afterwards (same filesystem).
        self._incoming.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix="artifact.", suffix=".tmp", dir=self._incoming)
        tmp = Path(tmp_name)
        plain = _Digest(chunks)
        try:
            with os.fdopen(fd, "wb") as handle:
                _write_synced(handle, self._sealed(plain))
            sha256 = plain.hexdigest()
            self._sign(sha256)  # before the object appears: no crash leaves it unsigned
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
        return ArtifactRef(sha256=sha256, size=plain.size)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file() or self.cold_path_for(sha256).is_file()

    def get_bytes(self, sha256: str) -> bytes:
        with self.place.guard("reading"):
            return self._get(sha256)

    def _get(self, sha256: str) -> bytes:
        path = self.located(sha256)
        if self.signer is not None and path.is_file():
            self.check_signature(sha256)  # a missing file is reported as missing, below
        digest = _Digest(self._plaintext(sha256, whole=True))
        data = b"".join(digest)  # one piece for a plaintext file: no second copy
        _verify(digest, sha256, path)
        return data

    def _plaintext(self, sha256: str, *, whole: bool = False) -> Iterator[bytes]:
        """The plaintext of the stored file, streamed (not yet checked against its address);
        ``whole`` reads a plaintext file in one piece, for a caller that holds it all anyway."""
        path = self.located(sha256)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"artifact {sha256} is missing from {self._objects}") from None
        with handle:
            yield from read_plaintext(
                handle,
                self.cipher,
                what=f"artifact {sha256}",
                where=str(path),
                allow_plaintext=self.allow_plaintext,
                whole=whole,
            )

    def stored(self, sha256: str) -> Stored:
        """How many bytes the artifact takes on disk and when it was written."""
        path = self.located(sha256)
        with self.place.guard("reading"):
            try:
                found = path.stat()
            except FileNotFoundError:
                raise NotFoundError(f"artifact {sha256} is missing from {self._objects}") from None
        written = datetime.fromtimestamp(found.st_mtime, UTC)
        return Stored(found.st_size, written, cold=path != self.path_for(sha256))

    def delete(self, sha256: str) -> None:
        """Remove an artifact (from both tiers) and its signature (a missing one is not an
        error); the objects go first, so a crash between leaves a signature of nothing, never
        an unsigned object."""
        with self.place.guard("deleting"):
            for path in (self.path_for(sha256), self.cold_path_for(sha256)):
                path.unlink(missing_ok=True)
                fsync_directory(path.parent)
            self.signature_path(sha256).unlink(missing_ok=True)

    def tier(self, sha256: str) -> bool:
        """Move the artifact into the cold tier: copied (temp file, fsync, rename, its write
        time kept), the copy read back and compared with the original, then the original
        deleted. False when it is not in its usual place (cold already, or gone). A crash at
        any point leaves the original readable; a second move finishes the first."""
        source, target = self.path_for(sha256), self.cold_path_for(sha256)
        with self.place.guard("tiering"):
            try:
                handle = source.open("rb")
            except FileNotFoundError:
                return False
            with handle:
                before = os.fstat(handle.fileno())
                copied = atomic_write(target, iter(lambda: handle.read(_CHUNK), b""))
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
            with target.open("rb") as written:
                again = _Digest(iter(lambda: written.read(_CHUNK), b""))
                for _ in again:
                    pass
            if again.hexdigest() != copied or again.size != before.st_size:
                target.unlink(missing_ok=True)
                raise IntegrityError(
                    f"the cold copy {target} of artifact {sha256} does not read back as "
                    f"written; it was removed and the original {source} kept"
                )
            source.unlink()
            fsync_directory(source.parent)
        return True

    def addresses(self) -> Iterator[str]:
        """The address of every stored artifact, in either tier, once (temporary files left by
        a crash are skipped)."""
        hot = set(_listed(self._objects))
        yield from sorted(hot)
        yield from (name for name in _listed(self._cold) if name not in hot)

    def signed_addresses(self) -> set[str]:
        """The addresses that have a signature."""
        return {sha256 for sha256 in self.addresses() if self.signature_of(sha256) is not None}

    def key_id(self, sha256: str) -> str | None:
        """The id of the key the artifact is encrypted under; None when it is plaintext."""
        with self.located(sha256).open("rb") as handle:
            header = read_header(handle.read(HEADER_SIZE), f"artifact {sha256}")
        return header.key_id if header is not None else None

    def reencrypt(self, sha256: str) -> None:
        """Rewrite one artifact under the cipher's current key, atomically: decrypted (or read
        as plaintext), checked against its address, encrypted, then renamed over the old file. A
        file that fails any check is left as it was."""
        if self.cipher is None:
            raise ValueError("re-encrypting needs a cipher")
        path = self.located(sha256)
        plain = _Digest(self._plaintext(sha256))

        def checked() -> Iterator[bytes]:
            yield from plain
            _verify(plain, sha256, path)  # before the rename: a corrupt file is not laundered

        with self.place.guard():
            atomic_write(path, self.cipher.encrypt(checked()))


def _listed(objects: Path) -> Iterator[str]:
    """The addresses of the files in an ``objects/ab/cdef...`` tree, sorted."""
    if not objects.is_dir():
        return
    for folder in sorted(objects.iterdir()):
        if len(folder.name) != 2 or not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            name = folder.name + path.name
            if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                yield name


def _verify(digest: _Digest, sha256: str, path: Path | str) -> None:
    check_checksum(digest.hexdigest(), sha256, path)


def check_checksum(actual: str, sha256: str, where: object) -> None:
    """Raise IntegrityError naming the object at ``where`` unless its bytes hash to ``sha256``."""
    if actual != sha256:
        raise IntegrityError(
            f"artifact {where} is corrupt: its sha256 is {actual}, expected {sha256}; "
            "refusing to use it"
        )


def sealed(chunks: Iterable[bytes], cipher: ArtifactCipher | None) -> Iterable[bytes]:
    """What a store writes for the plaintext ``chunks``: encrypted under ``cipher``'s current
    key, or the chunks themselves when it is None (encryption off)."""
    return cipher.encrypt(chunks) if cipher is not None else chunks


def stored_signature(signer: Signer, sha256: str) -> str:
    """The signature a store keeps beside artifact ``sha256``."""
    return signer.sign(sha256, STORED)


def verify_stored(signer: Signer, sha256: str, signature: str | None, where: object) -> None:
    """Raise IntegrityError unless ``signature`` (kept at ``where``; None when there is none)
    proves that ``signer``'s key stored ``sha256``."""
    if signature is None:
        raise IntegrityError(
            f"refusing to read artifact {sha256}: it is not signed (no {where}); "
            "`mlship keys sign-all` signs artifacts stored before signing, after checking "
            "their checksum"
        )
    signer.verify(sha256, signature, f"artifact {sha256}", STORED)


def read_plaintext(
    handle: BinaryIO,
    cipher: ArtifactCipher | None,
    *,
    what: str,
    where: str,
    allow_plaintext: bool,
    whole: bool = False,
) -> Iterator[bytes]:
    """The plaintext of the stored object open in ``handle`` (seekable, at its start), streamed
    and not yet checked against its address: decrypted when it carries the encryption header,
    else read as it is unless plaintext is refused. ``what`` names the artifact and ``where``
    the object in errors; ``whole`` reads a plaintext object in one piece."""
    head = handle.read(len(MAGIC))
    if head == MAGIC:
        if cipher is None:
            raise no_key_error(handle, what)
        handle.seek(0)
        yield from cipher.decrypt(handle, what)
        return
    if not allow_plaintext:
        raise plaintext_refused(what, where)
    if whole:  # a fresh read sizes its buffer from what is left: one allocation, no copy
        handle.seek(0)
        yield handle.read()
        return
    yield head
    yield from iter(lambda: handle.read(_CHUNK), b"")


def plaintext_refused(what: str, where: str) -> IntegrityError:
    """The error for a stored object that is not encrypted, read by a store that refuses
    plaintext; ``what`` names the artifact and ``where`` the object."""
    return IntegrityError(
        f"{what} ({where}) is not encrypted and plaintext artifacts are "
        "refused (refuse_plaintext_artifacts); `mlship keys encrypt-all` encrypts "
        "files stored before encryption was turned on"
    )
