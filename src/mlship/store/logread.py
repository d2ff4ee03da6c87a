"""Reading the logs' parts from a log store: decrypted, and each row once despite compaction.

Compaction (``monitor/compaction.py``) writes a merged part first and deletes its inputs after,
so a crash or a failure in between leaves rows twice: in the merged part and in inputs still
there. The merged part names its inputs in its Parquet metadata (:data:`MERGED_FROM`), and
:func:`load_parts` drops every part that a part it also read names, so readers count each row
once whatever moment a compaction stopped at. A part that disappears between the listing and the
read (a compaction finished meanwhile) makes the read start over from a fresh listing, where
the merged part holding its rows is listed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import pyarrow.parquet as pq

from mlship.crypto.encryption import MAGIC
from mlship.errors import NotFoundError
from mlship.store.logstore import LogStore, PartRef
from mlship.store.parts import PLAIN, Sealing, unsealed

MERGED_FROM = b"mlship.merged_from"
"""Parquet metadata key of a merged part: the JSON list of the names of the parts it merged."""

_ATTEMPTS = 5


@dataclass(frozen=True)
class LoadedPart:
    """A part ready for a Parquet reader: its file (plaintext on this disk) or its bytes."""

    part: PartRef
    source: Path | io.BytesIO
    merged_from: frozenset[str]


def load_parts(
    store: LogStore, logs: Sequence[str], sealing: Sealing = PLAIN, since: datetime | None = None
) -> list[LoadedPart]:
    """Every part of ``logs`` written at or after ``since``, without the ones a merged part
    also holds (see the module docstring)."""
    return without_merged(load_all(store, logs, sealing, since))


def load_all(
    store: LogStore, logs: Sequence[str], sealing: Sealing = PLAIN, since: datetime | None = None
) -> list[LoadedPart]:
    """Every part of ``logs`` written at or after ``since``, merged ones' inputs included."""
    for attempt in range(_ATTEMPTS):
        refs = [part for log in logs for part in store.parts(log, since)]
        try:
            return [_load(store, part, sealing) for part in refs]
        except (FileNotFoundError, NotFoundError):
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def load_one(store: LogStore, part: PartRef, sealing: Sealing = PLAIN) -> LoadedPart:
    """One part, ready for a Parquet reader (its row count, say)."""
    return _load(store, part, sealing)


def without_merged(loaded: Sequence[LoadedPart]) -> list[LoadedPart]:
    """``loaded`` less the parts another part of the same log says it merged."""
    merged = merged_away(loaded)
    return [item for item in loaded if item.part not in merged]


def merged_away(loaded: Sequence[LoadedPart]) -> set[PartRef]:
    """The parts of ``loaded`` whose rows another part of the same log holds."""
    named = {PartRef(item.part.log, name) for item in loaded for name in item.merged_from}
    return {item.part for item in loaded if item.part in named}


def scan_sources(loaded: Sequence[LoadedPart]) -> list[Path] | list[IO[bytes]]:
    """What one Parquet scan opens: the files when all are plaintext files on this disk (so the
    scan reads only what it needs), else every part's bytes (a scan takes one kind)."""
    sources = [item.source for item in loaded]
    if all(isinstance(source, Path) for source in sources):
        return [source for source in sources if isinstance(source, Path)]
    opened: list[IO[bytes]] = [
        source if isinstance(source, io.BytesIO) else io.BytesIO(source.read_bytes())
        for source in sources
    ]
    return opened


def _load(store: LogStore, part: PartRef, sealing: Sealing) -> LoadedPart:
    path = store.local_path(part)
    source: Path | io.BytesIO
    if path is not None:
        with path.open("rb") as handle:
            plaintext = handle.read(len(MAGIC)) != MAGIC
        source = path if plaintext else unsealed(path.read_bytes(), str(path), sealing)
    else:
        source = unsealed(store.read(part), f"{store.location(part.log)}/{part.name}", sealing)
    metadata = pq.read_schema(source).metadata or {}
    if isinstance(source, io.BytesIO):
        source.seek(0)
    names = json.loads(metadata[MERGED_FROM]) if MERGED_FROM in metadata else []
    return LoadedPart(part, source, frozenset(str(name) for name in names))
