"""Key rotation: every artifact moved under the current key, older keys retired only after.

A rotation first saves the keyring with a new current key (the old ones kept for reading), then
re-encrypts the artifacts one file at a time, each atomically (temp file, fsync, rename; in a
bucket, a new version of the object that replaces the old one whole when its upload completes),
so an interrupted rotation leaves every file readable under one of the keyring's keys. Running it
again resumes: a keyring that still holds older keys means the last rotation did not finish, so
no new key is made, and files already under the current key are skipped. Only when a final count
finds no file under any other key are the older keys dropped from the keyring.

The walk covers the log parts (prediction logs and labels, ``store/parts.py``) wherever the
workspace keeps them, under ``home`` or in the bucket beside the artifacts, as well as the
artifacts: a retired key must not leave a part nobody can read. Moving plaintext files (stored
before encryption was turned on) is the same walk without a new key (:func:`encrypt_all`). Both
hold a lock beside the keyring, so two never interleave. Writers that loaded the keyring before a
rotation may still add files under the old key; the final count sees them and keeps the old key,
so run a rotation when nothing else writes to the workspace.
"""

from __future__ import annotations

import fcntl
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlship.errors import ConfigError, DecryptionError, MlshipError
from mlship.security.keyring import (
    add_current_key,
    artifact_cipher,
    load_keyring,
    read_keyring_file,
    retire_older_keys,
)
from mlship.security.progress import RotationObserver
from mlship.security.store_signing import unsigned_count
from mlship.store.artifacts import LocalArtifactStore, MaintainedStore
from mlship.store.log_home import log_store_for
from mlship.store.parts import LogParts

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.crypto.encryption import ArtifactCipher

__all__ = [
    "DAMAGED",
    "Census",
    "Moved",
    "RotationObserver",
    "census",
    "encrypt_all",
    "maintained_store",
    "rotate",
]


DAMAGED = "damaged header"
"""Where files whose encryption header cannot be read are counted."""


@dataclass(frozen=True)
class Census:
    """How many artifacts are under each key id (None: plaintext), and the keyring's ids."""

    current: str | None
    keyring: tuple[str, ...]
    files: Counter[str | None]
    source: str
    unsigned: int = 0
    """Artifacts without a signature (see :mod:`mlship.security.store_signing`)."""
    artifacts: int = 0
    """Artifacts in the store (``files`` also counts the log parts)."""


@dataclass
class Moved:
    """What a rotation or an encrypt-all did."""

    key: str
    new_key: bool
    moved: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    retired: tuple[str, ...] = ()
    remaining: Counter[str | None] = field(default_factory=Counter)


def census(settings: Settings) -> Census:
    """The keys of the workspace and the artifacts under each (read-only: no key is created)."""
    keyring = load_keyring(settings)
    cipher = artifact_cipher(settings) if keyring is not None else None
    store = maintained_store(settings, cipher)
    files = _count(store, settings)
    unsigned, artifacts = unsigned_count(store)
    if keyring is None:
        return Census(None, (), files, "no keyring", unsigned, artifacts)
    ids = (keyring.current_id, *sorted(set(keyring.by_id) - {keyring.current_id}))
    return Census(keyring.current_id, ids, files, keyring.source, unsigned, artifacts)


def maintained_store(settings: Settings, cipher: ArtifactCipher | None) -> MaintainedStore:
    """The workspace's artifact store as the maintenance walks see it: with no signer (they
    hand no artifact out) and reading plaintext (encrypt-all must), in a directory or a
    bucket."""
    if settings.artifact_url is not None:
        from mlship.store.s3 import S3ArtifactStore

        return S3ArtifactStore.from_settings(settings, cipher, signer=None, allow_plaintext=True)
    return LocalArtifactStore(
        settings.artifact_root_resolved, cipher, signer=None, cold=settings.cold_root_resolved
    )


def _sealed(store: MaintainedStore, settings: Settings) -> tuple[MaintainedStore | LogParts, ...]:
    """What key maintenance walks: the artifact store and the log parts beside it."""
    return (store, LogParts(log_store_for(settings), store.cipher))


def _count(store: MaintainedStore, settings: Settings) -> Counter[str | None]:
    """Artifacts and log parts by the id of their key; None counts plaintext, DAMAGED
    unreadable headers."""
    files: Counter[str | None] = Counter()
    for holder in _sealed(store, settings):
        for name in holder.addresses():
            try:
                files[holder.key_id(name)] += 1
            except DecryptionError:
                files[DAMAGED] += 1
    return files


@contextmanager
def _exclusive(settings: Settings) -> Iterator[None]:
    keyring = settings.encryption_key_file_resolved
    lock = keyring.with_name(keyring.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MlshipError(f"another key rotation holds {lock}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require_encryption(settings: Settings, command: str) -> None:
    if not settings.encrypt_artifacts:
        raise ConfigError(
            f"`mlship keys {command}` moves artifacts under the current key, but encryption is "
            "off: set MLSHIP_ENCRYPT_ARTIFACTS=true (or encrypt_artifacts = true in mlship.toml)"
        )


def rotate(settings: Settings, observer: RotationObserver | None = None) -> Moved:
    """Make a new key current (unless the last rotation is unfinished: then resume it),
    re-encrypt every artifact under it, and retire the older keys once none is needed."""
    _require_encryption(settings, "rotate")
    with _exclusive(settings):
        stored = read_keyring_file(settings.encryption_key_file_resolved)
        resume = settings.encryption_key is None and stored is not None and bool(stored.older)
        if stored is None and settings.encryption_key is None:
            load_keyring(settings, create=True)  # the first key: nothing to rotate from yet
        elif not resume:
            add_current_key(settings)
        return _move_all(settings, observer or RotationObserver(), new_key=not resume)


def encrypt_all(settings: Settings, observer: RotationObserver | None = None) -> Moved:
    """Re-encrypt under the current key every artifact that is not under it: plaintext files
    stored before encryption was turned on, and files under older keys."""
    _require_encryption(settings, "encrypt-all")
    with _exclusive(settings):
        return _move_all(settings, observer or RotationObserver(), new_key=False)


def _move_all(settings: Settings, observer: RotationObserver, *, new_key: bool) -> Moved:
    cipher = artifact_cipher(settings)
    assert cipher is not None  # encryption is on, so the keyring exists
    store = maintained_store(settings, cipher)
    current = cipher.current_id
    done = Moved(key=current, new_key=new_key)
    files = [(holder, name) for holder in _sealed(store, settings) for name in holder.addresses()]
    observer.started(len(files), current)
    for holder, name in files:
        moved = False
        try:
            if holder.key_id(name) == current:
                done.skipped += 1
            else:
                holder.reencrypt(name)
                moved = True
                done.moved += 1
        except MlshipError as exc:
            done.failed.append((name, str(exc)))
        observer.advanced(name, moved)
    # Count again: a file another process added meanwhile under an older key keeps that key.
    left = _count(store, settings)
    del left[current]
    done.remaining = left
    if not left:
        done.retired = retire_older_keys(settings)
    return done
