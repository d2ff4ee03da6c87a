"""Parquet parts of the logs (predictions and labels): written atomically, sealed at rest.

The prediction log and the stored labels hold what live callers sent, so they are as sensitive
as the datasets in the artifact store. With ``encrypt_artifacts`` on, every part is encrypted with
the artifact cipher (the same file format and keyring, so ``mlship keys rotate`` moves them too);
readers decrypt parts that carry the encryption header and read older plaintext parts as they
are. A part is written to a temporary file, synced and renamed, so a reader never sees half of
one. Encrypted parts are decrypted into memory before Parquet reads them: a part is one flush of
the log (about a thousand rows), never a whole dataset.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from mlship.crypto.encryption import (
    HEADER_SIZE,
    MAGIC,
    ArtifactCipher,
    no_key_error,
    read_header,
)
from mlship.store.artifacts import atomic_write
from mlship.store.logstore import FEEDBACK, USAGE, LogStore, PartRef, prediction_logs

PART_GLOB = "part-*.parquet"


@dataclass(frozen=True)
class Sealing:
    """How a process writes and reads sealed files: the cipher it decrypts with (None: no key)
    and whether it encrypts what it writes."""

    cipher: ArtifactCipher | None = None
    encrypt: bool = False


PLAIN = Sealing()
"""Neither encrypts nor decrypts (an encrypted part is then refused with a clear error)."""


def sealed_part(table: pa.Table, sealing: Sealing = PLAIN) -> bytes:
    """``table`` as the bytes of a Parquet part, encrypted when ``sealing`` says so."""
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    data = buffer.getvalue().to_pybytes()
    cipher = sealing.cipher if sealing.encrypt else None
    return b"".join(cipher.encrypt([data])) if cipher is not None else data


def write_part(path: Path, table: pa.Table, sealing: Sealing = PLAIN) -> None:
    """Write ``table`` as the Parquet file ``path``, encrypted when ``sealing`` says so."""
    atomic_write(path, [sealed_part(table, sealing)])


def unsealed(data: bytes, where: str, sealing: Sealing = PLAIN) -> io.BytesIO:
    """The Parquet bytes of a stored part (``data``, kept at ``where``): decrypted when it
    carries the encryption header."""
    if not data.startswith(MAGIC):
        return io.BytesIO(data)
    handle = io.BytesIO(data)
    if sealing.cipher is None:
        raise no_key_error(handle, where)
    return io.BytesIO(b"".join(sealing.cipher.decrypt(handle, where)))


def part_source(path: Path, sealing: Sealing = PLAIN) -> Path | io.BytesIO:
    """What a Parquet reader opens for ``path``: the file itself when it is plaintext, its
    decrypted bytes when it is encrypted."""
    with path.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            return path
        if sealing.cipher is None:
            raise no_key_error(handle, str(path))
        handle.seek(0)
        return io.BytesIO(b"".join(sealing.cipher.decrypt(handle, str(path))))


def part_sources(parts: Sequence[Path], sealing: Sealing = PLAIN) -> list[Path] | list[IO[bytes]]:
    """What a Parquet scan opens for ``parts``: the files themselves when all are plaintext (so
    the scan reads only what it needs), else every part's bytes (a scan takes one kind)."""
    sources = [part_source(part, sealing) for part in parts]
    if all(isinstance(source, Path) for source in sources):
        return list(parts)
    opened: list[IO[bytes]] = [
        source if isinstance(source, io.BytesIO) else io.BytesIO(source.read_bytes())
        for source in sources
    ]
    return opened


def read_part(path: Path, sealing: Sealing = PLAIN) -> pa.Table:
    return pq.read_table(part_source(path, sealing))


def stored_parts(home: Path) -> list[Path]:
    """Every log part of the workspace at ``home``: the prediction logs of every deployment
    and of batch scoring, the stored labels and the usage ledger."""
    return sorted(
        [
            *(home / "predictions").glob(f"*/{PART_GLOB}"),
            *(home / FEEDBACK).glob(PART_GLOB),
            *(home / USAGE).glob(PART_GLOB),
        ]
    )


def part_key_id(path: Path) -> str | None:
    """The id of the key a part is encrypted under; None when it is plaintext."""
    with path.open("rb") as handle:
        header = read_header(handle.read(HEADER_SIZE), str(path))
    return header.key_id if header is not None else None


class LogParts:
    """The log parts of a log store as key maintenance walks them: the artifact store's
    ``addresses``, ``key_id`` and ``reencrypt``, with a part named ``<log>/<part>``, so a
    rotation treats both alike, on local disk and in a bucket. Every prediction log (one per
    deployment, and batch scoring's), the stored labels and the usage ledger are walked."""

    def __init__(self, store: LogStore, cipher: ArtifactCipher | None) -> None:
        self.store = store
        self.cipher = cipher

    def addresses(self) -> Iterator[str]:
        for log in [*prediction_logs(self.store), FEEDBACK, USAGE]:
            for part in self.store.parts(log):
                yield f"{part.log}/{part.name}"

    def key_id(self, name: str) -> str | None:
        part = _part_ref(name)
        data = self.store.read(part)
        header = read_header(data[:HEADER_SIZE], self.store.location(name))
        return header.key_id if header is not None else None

    def reencrypt(self, name: str) -> None:
        """Rewrite one part under the cipher's current key, whole (decrypted and checked first
        when it was encrypted; a store's put is visible all at once or not at all)."""
        if self.cipher is None:
            raise ValueError("re-encrypting needs a cipher")
        part = _part_ref(name)
        plain = unsealed(self.store.read(part), self.store.location(name), Sealing(self.cipher))
        self.store.put(part.log, part.name, b"".join(self.cipher.encrypt([plain.getvalue()])))


def _part_ref(name: str) -> PartRef:
    log, _, part = name.rpartition("/")
    return PartRef(log, part)
