"""Where a file source is and how its bytes arrive: a local path, http(s) or s3:// (via fsspec).

Files are read once, in blocks that are hashed and counted as they arrive (the hash is the file's
lineage; the count drives the progress hook), then parsed from memory by the format's reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec  # type: ignore[import-untyped, unused-ignore]

from mlship.data.readers.masking import mask_text
from mlship.errors import DataError

BLOCK_BYTES = 1 << 20
"""Files are read (and hashed, and reported) in blocks of this many bytes."""

ProgressHook = Callable[[int, int | None], None]
"""Called as ``(done, total)``: bytes for files, rows for queries (whose total is unknown)."""


@dataclass(frozen=True)
class FileBytes:
    """A file's whole content and the sha256 computed while it was read."""

    data: bytes
    sha256: str


def resolve(path: str, base_dir: Path) -> str:
    """A URL as given; a local path made absolute against the spec's folder."""
    if "://" in path:
        return path
    local = Path(path).expanduser()
    return str(local if local.is_absolute() else base_dir / local)


def open_file(location: str, prefix: str) -> tuple[Any, int | None]:
    """An open binary handle on the file at ``location`` and its size, if known."""
    try:
        fs, fs_path = fsspec.core.url_to_fs(location)
    except (ValueError, ImportError) as exc:
        raise DataError(f"{prefix}: cannot open this location: {mask_text(str(exc))}") from None
    try:
        if fs.isdir(fs_path):
            raise DataError(f"{prefix}: is a directory; expected a file")
        total: int | None = fs.size(fs_path)
        handle = fs.open(fs_path, "rb")
    except FileNotFoundError:
        raise DataError(f"{prefix}: the file does not exist") from None
    except OSError as exc:
        raise DataError(f"{prefix}: the file cannot be read: {mask_text(str(exc))}") from None
    return handle, total


def blocks(handle: Any, prefix: str, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The handle's bytes in blocks of ``block_bytes``; a failing read names the source."""
    try:
        while block := handle.read(block_bytes):
            yield block
    except OSError as exc:
        raise DataError(
            f"{prefix}: reading the file failed part way: {mask_text(str(exc))}"
        ) from None


def sha256_of(location: str, prefix: str, block_bytes: int = BLOCK_BYTES) -> str:
    """The sha256 of the file's bytes, refused with the same messages as reading it."""
    handle, _ = open_file(location, prefix)
    digest = hashlib.sha256()
    with handle:
        for block in blocks(handle, prefix, block_bytes):
            digest.update(block)
    return digest.hexdigest()


def read_bytes(
    location: str, prefix: str, hook: ProgressHook | None, block_bytes: int = BLOCK_BYTES
) -> FileBytes:
    """The file's bytes and their sha256, read once in blocks that also drive the progress."""
    handle, total = open_file(location, prefix)
    digest = hashlib.sha256()
    parts: list[bytes] = []
    done = 0
    if hook:
        hook(0, total)
    with handle:
        for block in blocks(handle, prefix, block_bytes):
            digest.update(block)
            parts.append(block)
            done += len(block)
            if hook:
                hook(done, total)
    return FileBytes(b"".join(parts), digest.hexdigest())
