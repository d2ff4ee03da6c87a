"""Taking a backup: the database snapshot first, then every artifact and log part, the manifest
last.

The order makes a backup consistent without stopping the workspace. Artifacts are stored before
the metadata that names them is committed, so every artifact the database snapshot refers to is
stored by the time the artifacts are listed, after the snapshot; an artifact stored later is
copied too, and is only unreferenced. Log parts are never changed once written (compaction writes
a merged part and deletes its inputs), so a part is copied whole or missed.

The object area is shared by every backup in the destination, by address, so an artifact backed
up once is not copied again: a backup of an unchanged workspace copies nothing but its database
snapshot. Each artifact is read through the workspace's store, which checks its signature and
checksum on the way out: a damaged artifact is listed in the manifest as unreadable, never copied
as if it were sound. The manifest is written last, so a backup that is interrupted has none and
is shown as incomplete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlship import __version__
from mlship.backup import database
from mlship.backup.keys import present
from mlship.backup.manifest import (
    FILE,
    FORMAT,
    ArtifactEntry,
    DatabaseSnapshot,
    KeysRecord,
    LogPartEntry,
    Manifest,
    Unreadable,
)
from mlship.backup.observer import CopyObserver
from mlship.backup.place import BackupPlace, ObjectArea
from mlship.errors import IntegrityError, MlshipError, NotFoundError

if TYPE_CHECKING:
    from mlship.store.artifacts import LocalArtifactStore
    from mlship.store.s3 import S3ArtifactStore
    from mlship.workspace import Workspace

KEYS_LEFT_OUT = (
    "the keys are not in this backup: keep a copy of the workspace's keys directory apart from "
    "it, and give it to `mlship restore --keys DIR` (or set the MLSHIP_* key variables)"
)
LEFT_OUT = (
    "the reports folder (<home>/reports): readable HTML, JSON and CSV copies of what the database "
    "and the artifacts hold",
    "the prediction logs of deployments that keep theirs in a log.directory of their own",
)
KEYS_INCLUDED = (
    "the key files are in keys/: whoever can read this backup can sign models as this workspace"
)


@dataclass(frozen=True)
class Taken:
    """What a backup did: its manifest, where it is, and what it copied."""

    manifest: Manifest
    where: str
    copied_bytes: int
    parts_copied: int


def take_backup(
    workspace: Workspace,
    place: BackupPlace,
    *,
    include_keys: bool = False,
    observer: CopyObserver | None = None,
) -> Taken:
    """Back ``workspace`` up into ``place`` (see the module docstring)."""
    observer = observer or CopyObserver()
    store = _source_store(workspace)
    settings = workspace.settings
    with place.locked(), place.staging() as staging:
        previous = _previous(place)
        name = _new_name(place)
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        snapshot = _database(settings.database_url_resolved, place, name, Path(staging))
        keys = _keys(workspace, place, name, include_keys)
        cipher = workspace.sealing.cipher
        area = place.objects(cipher, encrypt=settings.encrypt_artifacts)
        held = set(area.addresses())
        known = {a.sha256: a.size for m in previous for a in m.artifacts}
        artifacts, unreadable, copied, copied_bytes = _artifacts(store, area, held, known, observer)
        logs, parts_copied = _logs(workspace, area, held, previous, observer)
        manifest = Manifest(
            format=FORMAT,
            name=name,
            created=created,
            mlship_version=__version__,
            source=_describe(workspace),
            signing_scheme=settings.signing_scheme,
            encrypted=bool(settings.encrypt_artifacts and cipher is not None),
            database=snapshot,
            artifacts=tuple(artifacts),
            logs=tuple(logs),
            keys=keys,
            unreadable=tuple(unreadable),
            left_out=LEFT_OUT,
            copied=copied,
        )
        written = Path(staging) / FILE
        written.write_bytes(manifest.to_json())
        place.write(name, FILE, written)  # last: only now is the backup complete
    return Taken(manifest, place.location(name), copied_bytes, parts_copied)


def _source_store(workspace: Workspace) -> LocalArtifactStore | S3ArtifactStore:
    if workspace.remote is not None:
        raise MlshipError(
            f"a backup reads the database and the artifact store directly, which a client of "
            f"{workspace.remote.url} cannot; run `mlship backup` on the tracking server's host "
            "(without MLSHIP_URL)"
        )
    from mlship.store.artifacts import LocalArtifactStore
    from mlship.store.s3 import S3ArtifactStore

    store = workspace.artifacts
    assert isinstance(store, LocalArtifactStore | S3ArtifactStore)
    return store


def _previous(place: BackupPlace) -> list[Manifest]:
    """The manifests of the complete backups already in ``place``, newest first."""
    found = []
    for name in reversed(place.backups()):
        if place.has(name, FILE):
            try:
                found.append(Manifest.from_json(place.read(name, FILE), place.location(name, FILE)))
            except MlshipError:
                continue  # a damaged manifest: `backup verify` reports it; its objects are re-read
    return found


def _new_name(place: BackupPlace) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    taken = set(place.backups())
    name, count = stamp, 1
    while name in taken:
        count += 1
        name = f"{stamp}-{count}"
    return name


def _database(url: str, place: BackupPlace, name: str, staging: Path) -> DatabaseSnapshot:
    kind = database.kind_of(url)
    file = database.FILES[kind]
    local = staging / file
    database.snapshot(url, local)
    digest = hashlib.sha256()
    with local.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    place.write(name, file, local)
    return DatabaseSnapshot(file, kind, digest.hexdigest(), local.stat().st_size)


def _keys(workspace: Workspace, place: BackupPlace, name: str, include: bool) -> KeysRecord:
    files = present(workspace.settings)
    if not include:
        return KeysRecord(False, (), KEYS_LEFT_OUT)
    for file, path in sorted(files.items()):
        place.write(name, f"keys/{file}", path)
    return KeysRecord(True, tuple(sorted(files)), KEYS_INCLUDED)


def _artifacts(
    store: LocalArtifactStore | S3ArtifactStore,
    area: ObjectArea,
    held: set[str],
    known: dict[str, int],
    observer: CopyObserver,
) -> tuple[list[ArtifactEntry], list[Unreadable], int, int]:
    addresses = list(store.addresses())
    observer.started("artifacts", len(addresses))
    entries: list[ArtifactEntry] = []
    unreadable: list[Unreadable] = []
    copied = copied_bytes = 0
    for sha256 in addresses:
        size = 0
        try:
            if sha256 in held and sha256 in known:
                size = known[sha256]
                copied_now = 0
            else:
                data = store.get_bytes(sha256)  # checks the signature and the checksum
                size = copied_now = len(data)
                if sha256 not in held:
                    area.put_bytes(data)
                    held.add(sha256)
                    copied += 1
                    copied_bytes += size
                else:
                    copied_now = 0
        except (IntegrityError, NotFoundError) as exc:
            unreadable.append(Unreadable(sha256, str(exc)))
            observer.advanced(0)
            continue
        entries.append(ArtifactEntry(sha256, size, store.signature_of(sha256)))
        observer.advanced(copied_now)
    observer.finished()
    return entries, unreadable, copied, copied_bytes


def _logs(
    workspace: Workspace,
    area: ObjectArea,
    held: set[str],
    previous: list[Manifest],
    observer: CopyObserver,
) -> tuple[list[LogPartEntry], int]:
    """Every part of the prediction logs, the stored labels and the usage ledger, by the sha256
    of its plaintext (a part is decrypted with the workspace's keys, and re-sealed with the
    restored workspace's when restored). A part is never rewritten once written, so one backed up
    already, by log and name, is not read again."""
    from mlship.store.logstore import FEEDBACK, USAGE, prediction_logs
    from mlship.store.parts import unsealed

    logs = workspace.logs
    known = {(p.log, p.name): p for m in previous for p in m.logs if p.sha256 in held}
    parts = [part for log in [*prediction_logs(logs), FEEDBACK, USAGE] for part in logs.parts(log)]
    observer.started("log parts", len(parts))
    entries: list[LogPartEntry] = []
    copied = 0
    for part in parts:
        before = known.get((part.log, part.name))
        if before is not None:
            entries.append(before)
            observer.advanced(0)
            continue
        where = f"{logs.location(part.log)}/{part.name}"
        plain = unsealed(logs.read(part), where, workspace.sealing).getvalue()
        sha256 = hashlib.sha256(plain).hexdigest()
        if sha256 not in held:
            area.put_bytes(plain)
            held.add(sha256)
            copied += 1
        entries.append(LogPartEntry(part.log, part.name, sha256, len(plain)))
        observer.advanced(len(plain))
    observer.finished()
    return entries, copied


def _describe(workspace: Workspace) -> str:
    settings = workspace.settings
    from sqlalchemy.engine import make_url

    db = make_url(settings.database_url_resolved).render_as_string(hide_password=True)
    artifacts = settings.artifact_url or str(settings.artifact_root_resolved)
    return f"database {db}; artifacts {artifacts}"
