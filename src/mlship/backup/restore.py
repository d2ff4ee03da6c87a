"""Rebuilding a workspace from a backup, in a place that holds nothing yet.

A restore never mixes a backup into a workspace in use: the home, the database, the artifact
store and the log store it would write to must all be empty, and it says which one is not. The
keys come first (from ``--keys``, the backup, or the settings), then the database snapshot,
checked against its checksum and, for SQLite, ``PRAGMA integrity_check`` before it is put in
place. Each artifact is read from the object area, which re-hashes it, its signature checked
against the key, and written through the new workspace's store, which signs it and (when the
settings say so) encrypts it under the new workspace's keys. Log parts are sealed again with the
new workspace's keys. The database is only put in place after the checks pass; artifacts that
fail are listed, and the restore fails naming them.

A restore cut off half-way (killed, a full disk) must not leave something that looks like a
workspace: before the first write, a marker file naming the backup goes into the home, and it is
removed only at the end. Commands refuse to open a workspace holding it, and running the same
restore again goes on where it stopped: the database snapshot is put in place whole or not at
all (an atomic file, or one PostgreSQL transaction), so a database present means it was loaded,
and storing an artifact or a log part again is harmless.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlship.backup import database
from mlship.backup.keys import FILES, has_signing_key
from mlship.backup.manifest import Manifest
from mlship.backup.observer import CopyObserver
from mlship.backup.place import BackupPlace, ObjectArea
from mlship.backup.verify import SETTINGS, Finding, keys_for, read_manifest, signer_and_cipher
from mlship.crypto.signatures import STORED
from mlship.errors import ConfigError, IntegrityError, MlshipError
from mlship.security.keys import write_private
from mlship.workspace import RESTORING

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.crypto.signatures import Signer
    from mlship.workspace import Workspace


@dataclass(frozen=True)
class Restored:
    """What a restore did."""

    manifest: Manifest
    home: Path
    artifacts: int
    log_parts: int
    keys: str
    failed: tuple[Finding, ...]


def restore_backup(
    place: BackupPlace,
    name: str,
    settings: Settings,
    *,
    keys: Path | None = None,
    observer: CopyObserver | None = None,
) -> Restored:
    """Rebuild the workspace ``settings`` describe (empty) from backup ``name`` in ``place``."""
    from mlship.workspace import Workspace

    observer = observer or CopyObserver()
    manifest = read_manifest(place, name)
    if settings.url:
        raise ConfigError(
            "a restore writes the database and the artifact store directly: unset MLSHIP_URL"
        )
    label = place.location(name)
    resuming = _resuming(settings, label)
    if not resuming:
        _check_empty(settings)
    _check_scheme(manifest, settings)
    database.check_target(manifest.database.kind, settings.database_url_resolved)
    with (
        keys_for(place, name, manifest, settings, keys) as (keyed, source),
        tempfile.TemporaryDirectory(prefix="mlship-restore-") as folder,
    ):
        signer, cipher, missing = signer_and_cipher(keyed)
        if signer is None:
            raise ConfigError(
                f"no key to check the backup's signatures with ({missing}); give a copy of the "
                "workspace's keys directory with --keys DIR, or set MLSHIP_SIGNING_KEY"
            )
        if manifest.encrypted and cipher is None:
            raise ConfigError(
                f"the backup's artifacts are encrypted and there is no keyring in {source}; give "
                "the workspace's keys directory with --keys DIR, or set MLSHIP_ENCRYPTION_KEY"
            )
        snapshot = _checked_snapshot(place, name, manifest, Path(folder))
        # Every check that needs nothing written has passed: only now is the target touched.
        home = settings.home_resolved
        home.mkdir(parents=True, exist_ok=True)
        marker = home / RESTORING
        if not resuming:
            write_private(marker, label.encode() + b"\n", replace=False)
        if source != SETTINGS:
            _install_keys(keyed, settings)
        if not (resuming and _has_database(settings)):
            database.restore(manifest.database.kind, snapshot, settings.database_url_resolved)
        area = place.objects(cipher, encrypt=False)
        workspace = Workspace(settings)
        try:
            failed = _artifacts(manifest, area, workspace, signer, observer)
            parts = _logs(manifest, area, workspace, observer)
        finally:
            workspace.close()
        marker.unlink()
    restored = len(manifest.artifacts) - len(failed)
    return Restored(manifest, home, restored, parts, source, tuple(failed))


def _resuming(settings: Settings, label: str) -> bool:
    """Whether the target holds a restore of this backup that was cut off (its marker); a
    marker naming another backup is refused."""
    marker = settings.home_resolved / RESTORING
    if not marker.is_file():
        return False
    started = marker.read_text(errors="replace").strip()
    if started != label:
        raise ConfigError(
            f"{settings.home_resolved} holds an unfinished restore of {started}: run that "
            "restore again to finish it, or restore into another place"
        )
    return True


def _has_database(settings: Settings) -> bool:
    """Whether the target database was loaded (a snapshot goes in whole or not at all)."""
    url = settings.database_url_resolved
    if database.kind_of(url) == "sqlite":
        return database.sqlite_path(url).exists()
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _check_empty(settings: Settings) -> None:
    """Refuse, naming it, any part of the target workspace that already holds something."""
    home = settings.home_resolved
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise ConfigError(
            f"{home} is not empty: a restore rebuilds a workspace in an empty place; give "
            "--into a new directory"
        )
    url = settings.database_url_resolved
    if database.kind_of(url) == "sqlite":
        path = database.sqlite_path(url)
        if path.exists():
            raise ConfigError(f"the database {path} exists already: restore into an empty place")
    else:
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError

        shown = make_url(url).render_as_string(hide_password=True)
        engine = create_engine(url)
        try:
            tables = inspect(engine).get_table_names()
        except SQLAlchemyError as exc:
            raise ConfigError(f"cannot open the database {shown}: {exc}") from None
        finally:
            engine.dispose()
        if tables:
            raise ConfigError(
                f"the database {shown} is not empty (it has {len(tables)} tables, such as "
                f"{sorted(tables)[0]}): restore into an empty database"
            )
    if settings.artifact_url is None:
        root = settings.artifact_root_resolved
        if root.exists() and any(root.iterdir()):
            raise ConfigError(
                f"the artifact store {root} is not empty: restore into an empty place"
            )
    else:
        from mlship.store.log_home import log_store_for
        from mlship.store.logstore import FEEDBACK, USAGE, prediction_logs
        from mlship.store.s3 import S3ArtifactStore

        store = S3ArtifactStore.from_settings(settings, None, signer=None)
        logs = log_store_for(settings)
        if next(iter(store.addresses()), None) is not None or (
            prediction_logs(logs) or logs.parts(FEEDBACK) or logs.parts(USAGE)
        ):
            raise ConfigError(
                f"the artifact store {settings.artifact_url} is not empty: restore into an "
                "empty prefix"
            )


def _check_scheme(manifest: Manifest, settings: Settings) -> None:
    if manifest.signing_scheme != settings.signing_scheme:
        raise ConfigError(
            f"the backed-up workspace signed with {manifest.signing_scheme} and these settings "
            f"sign with {settings.signing_scheme}: set MLSHIP_SIGNING_SCHEME="
            f"{manifest.signing_scheme} (or signing_scheme in mlship.toml) for the restored one"
        )


def _install_keys(source: Settings, target: Settings) -> None:
    """Copy the key files ``source`` reads to where ``target`` reads them, owner-only, never
    over a different key."""
    from mlship.security.keys import write_private

    for name, where in FILES.items():
        origin, destination = where(source), where(target)
        if not origin.is_file() or origin == destination:
            continue
        data = origin.read_bytes()
        if not write_private(destination, data, replace=False) and destination.read_bytes() != data:
            raise ConfigError(f"{destination} holds another {name} than the backup's; move it away")
    if not has_signing_key(target):
        raise ConfigError("the restored workspace has no signing key")


def _checked_snapshot(place: BackupPlace, name: str, manifest: Manifest, folder: Path) -> Path:
    snapshot = manifest.database
    local = folder / snapshot.file
    place.download(name, snapshot.file, local)
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    if digest != snapshot.sha256:
        raise IntegrityError(
            f"the database snapshot {place.location(name, snapshot.file)} is corrupt: its sha256 "
            f"is {digest}, the manifest says {snapshot.sha256}; nothing was restored"
        )
    wrong = database.problem(snapshot.kind, local)
    if wrong:
        raise IntegrityError(
            f"the database snapshot {place.location(name, snapshot.file)} does not read: "
            f"{wrong}; nothing was restored"
        )
    return local


def _artifacts(
    manifest: Manifest,
    objects: ObjectArea,
    workspace: Workspace,
    signer: Signer,
    observer: CopyObserver,
) -> list[Finding]:
    target = workspace.artifacts
    failed: list[Finding] = []
    observer.started("artifacts", len(manifest.artifacts))
    for artifact in manifest.artifacts:
        what = f"artifact {artifact.sha256}"
        try:
            signer.verify(artifact.sha256, artifact.signature, what, STORED)
            data = objects.get_bytes(artifact.sha256)  # re-hashed against its address
            stored = target.put_bytes(data)
            if stored.sha256 != artifact.sha256:
                raise IntegrityError(f"{what} was stored as {stored.sha256}")
        except MlshipError as exc:
            failed.append(Finding(what, str(exc)))
        observer.advanced(artifact.size)
    observer.finished()
    return failed


def _logs(
    manifest: Manifest, objects: ObjectArea, workspace: Workspace, observer: CopyObserver
) -> int:
    sealing = workspace.sealing
    cipher = sealing.cipher if sealing.encrypt else None
    logs = workspace.logs
    observer.started("log parts", len(manifest.logs))
    for part in manifest.logs:
        plain = objects.get_bytes(part.sha256)
        data = b"".join(cipher.encrypt([plain])) if cipher is not None else plain
        logs.put(part.log, part.name, data)
        observer.advanced(part.size)
    observer.finished()
    return len(manifest.logs)
