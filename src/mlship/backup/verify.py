"""Checking a backup without restoring it: is everything a restore needs there, and sound?

The manifest must be there and well formed; the database snapshot must match its checksum and
read (SQLite's ``PRAGMA integrity_check``, or ``pg_restore --list`` of a PostgreSQL archive);
every artifact and log part must be in the object area and hash to its address (the object
area's store re-hashes what it reads, decrypting with the workspace's keyring first when the
backup is encrypted); and every artifact's signature must verify under the signing key given.
Each problem is a :class:`Finding` naming the object; none means the backup restores.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlship.backup import database
from mlship.backup.keys import FILES, settings_with_keys
from mlship.backup.manifest import FILE, Manifest
from mlship.backup.observer import CopyObserver
from mlship.backup.place import BackupPlace
from mlship.crypto.signatures import STORED
from mlship.errors import ConfigError, MlshipError

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.crypto.encryption import ArtifactCipher
    from mlship.crypto.signatures import Signer


SETTINGS = "the settings (MLSHIP_* variables)"
"""Where keys come from when neither ``--keys`` nor the backup gives them."""


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a backup: what (``artifact <sha256>``, ``database``...) and why."""

    what: str
    problem: str


def read_manifest(place: BackupPlace, name: str) -> Manifest:
    """The manifest of backup ``name``; an error saying the backup is incomplete when it has
    none."""
    if name not in place.backups():
        raise ConfigError(
            f"there is no backup {place.location(name)}; `mlship backup list` shows them"
        )
    if not place.has(name, FILE):
        raise MlshipError(
            f"the backup {place.location(name)} is incomplete: it has no {FILE} (it was "
            "interrupted, or is still being written); restore an earlier backup"
        )
    return Manifest.from_json(place.read(name, FILE), place.location(name, FILE))


@contextmanager
def keys_for(
    place: BackupPlace, name: str, manifest: Manifest, settings: Settings, keys: Path | None
) -> Iterator[tuple[Settings, str]]:
    """Settings that read the keys of the backed-up workspace, and where they come from:
    ``keys`` (a copy of ``<home>/keys``), else the backup's own ``keys/``, else ``settings``."""
    if keys is not None:
        if not keys.is_dir():
            raise ConfigError(f"--keys {keys}: not a directory (give a copy of <home>/keys)")
        yield settings_with_keys(settings, keys.resolve(), manifest.signing_scheme), str(keys)
        return
    if not manifest.keys.included:
        yield settings, SETTINGS
        return
    with tempfile.TemporaryDirectory(prefix="mlship-keys-") as folder:
        directory = Path(folder)
        directory.chmod(0o700)
        for file in manifest.keys.files:
            if file in FILES:
                place.download(name, f"keys/{file}", directory / file)
        yield (
            settings_with_keys(settings, directory, manifest.signing_scheme),
            f"the backup's keys/ ({place.location(name, 'keys')})",
        )


def signer_and_cipher(settings: Settings) -> tuple[Signer | None, ArtifactCipher | None, str]:
    """The signer and artifact cipher ``settings`` give, without creating any key, and what is
    missing (empty when nothing is)."""
    from mlship.crypto.encryption import ArtifactCipher
    from mlship.security.keyring import load_keyring
    from mlship.security.signing import signer

    missing = []
    try:
        found: Signer | None = signer(settings, create=False)
    except ConfigError as exc:
        found, missing = None, [str(exc)]
    try:
        keyring = load_keyring(settings)
    except ConfigError as exc:
        keyring, missing = None, [*missing, str(exc)]
    cipher = ArtifactCipher(keyring) if keyring is not None else None
    return found, cipher, "; ".join(missing)


def verify_backup(
    place: BackupPlace,
    name: str,
    settings: Settings,
    *,
    keys: Path | None = None,
    observer: CopyObserver | None = None,
) -> tuple[Manifest | None, list[Finding]]:
    """The manifest of backup ``name`` (None when it cannot be read) and what is wrong with
    the backup (see the module docstring)."""
    observer = observer or CopyObserver()
    try:
        manifest = read_manifest(place, name)
    except MlshipError as exc:
        return None, [Finding("manifest", str(exc))]
    findings = [
        Finding(f"artifact {item.sha256}", f"not backed up: {item.reason}")
        for item in manifest.unreadable
    ]
    findings.extend(_database(place, name, manifest))
    try:
        with keys_for(place, name, manifest, settings, keys) as (keyed, _source):
            signer, cipher, missing = signer_and_cipher(keyed)
            if missing:
                findings.append(Finding("keys", missing))
            findings.extend(_objects(place, manifest, signer, cipher, observer))
    except MlshipError as exc:
        findings.append(Finding("keys", str(exc)))
    return manifest, findings


def _database(place: BackupPlace, name: str, manifest: Manifest) -> list[Finding]:
    snapshot = manifest.database
    what = f"database {snapshot.file}"
    with tempfile.TemporaryDirectory(prefix="mlship-verify-") as folder:
        local = Path(folder) / snapshot.file
        try:
            place.download(name, snapshot.file, local)
        except MlshipError as exc:
            return [Finding(what, str(exc))]
        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        if digest != snapshot.sha256:
            return [Finding(what, f"its sha256 is {digest}, the manifest says {snapshot.sha256}")]
        wrong = database.problem(snapshot.kind, local)
    return [Finding(what, wrong)] if wrong else []


def _objects(
    place: BackupPlace,
    manifest: Manifest,
    signer: Signer | None,
    cipher: ArtifactCipher | None,
    observer: CopyObserver,
) -> list[Finding]:
    area = place.objects(cipher, encrypt=False)
    findings: list[Finding] = []
    observer.started("artifacts", len(manifest.artifacts))
    for artifact in manifest.artifacts:
        what = f"artifact {artifact.sha256}"
        try:
            data = area.get_bytes(artifact.sha256)
            if len(data) != artifact.size:
                said = f"{len(data)} bytes, the manifest says {artifact.size}"
                findings.append(Finding(what, said))
            if signer is not None:
                if artifact.signature is None:
                    findings.append(Finding(what, "the manifest has no signature for it"))
                else:
                    signer.verify(artifact.sha256, artifact.signature, what, STORED)
        except MlshipError as exc:
            findings.append(Finding(what, str(exc)))
        observer.advanced(artifact.size)
    observer.finished()
    observer.started("log parts", len(manifest.logs))
    for part in manifest.logs:
        what = f"log part {part.log}/{part.name}"
        try:
            area.get_bytes(part.sha256)
        except MlshipError as exc:
            findings.append(Finding(what, str(exc)))
        observer.advanced(part.size)
    observer.finished()
    return findings
