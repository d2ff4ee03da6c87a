"""The manifest of a backup: what it holds, enough to check and restore it without the workspace.

It is the last file a backup writes, so its presence is what makes a backup complete. It lists
the database snapshot with its checksum, every artifact (address, size and the signature the
workspace's store kept beside it), every prediction-log and label part (by the sha256 of its
plaintext Parquet bytes, which is where it sits in the object area), and says what was left out:
whether the keys are in the backup, what else of the workspace is not (``left_out``), and the
artifacts that could not be read when it was taken.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import TypeAdapter, ValidationError

from mlship.errors import IntegrityError

FORMAT = 1
FILE = "manifest.json"


@dataclass(frozen=True)
class DatabaseSnapshot:
    """The metadata snapshot: a SQLite file made with SQLite's online backup, or a
    ``pg_dump --format=custom`` archive."""

    file: str
    kind: Literal["sqlite", "postgresql"]
    sha256: str
    size: int


@dataclass(frozen=True)
class ArtifactEntry:
    """One artifact: its address, its size (plaintext bytes) and its stored signature (None
    when the workspace had not signed it)."""

    sha256: str
    size: int
    signature: str | None


@dataclass(frozen=True)
class LogPartEntry:
    """One part of a prediction log or of the stored labels, and the object holding its
    plaintext."""

    log: str
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class KeysRecord:
    """Whether the workspace's key files are in the backup (``keys/``), and which."""

    included: bool
    files: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Unreadable:
    """An artifact of the workspace that could not be copied, and why."""

    sha256: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    format: int
    name: str
    created: str
    mlship_version: str
    source: str
    signing_scheme: str
    encrypted: bool
    database: DatabaseSnapshot
    artifacts: tuple[ArtifactEntry, ...]
    logs: tuple[LogPartEntry, ...]
    keys: KeysRecord
    unreadable: tuple[Unreadable, ...]
    left_out: tuple[str, ...]
    copied: int

    @property
    def addresses(self) -> set[str]:
        """Every object of the object area this backup needs."""
        return {a.sha256 for a in self.artifacts} | {p.sha256 for p in self.logs}

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """The manifest in ``data`` (read from ``where``), or an IntegrityError naming the key
        that is wrong and what was expected."""
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"the manifest {where} is not JSON: {exc}") from None
        if isinstance(raw, dict) and raw.get("format") != FORMAT:
            raise IntegrityError(
                f"the manifest {where} is in format {raw.get('format')!r}; this mlship reads "
                f"format {FORMAT}"
            )
        try:
            return _ADAPTER.validate_python(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'top level'}: {err['msg']}"
                for err in exc.errors()[:5]
            )
            raise IntegrityError(f"the manifest {where} is malformed: {problems}") from None


_ADAPTER = TypeAdapter(Manifest)
