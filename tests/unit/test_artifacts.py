"""The artifact store: content addressing, atomic writes, checksums verified on read."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlship.errors import IntegrityError, NotFoundError
from mlship.store.artifacts import LocalArtifactStore, atomic_write


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_and_get_round_trip_by_sha256(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = store.put_bytes(b"model bytes")
    assert ref.sha256 == hashlib.sha256(b"model bytes").hexdigest()
    assert ref.size == 11
    assert store.exists(ref.sha256)
    assert store.get_bytes(ref.sha256) == b"model bytes"


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    first = store.put_bytes(b"x" * 1000)
    second = store.put_chunks([b"x" * 500, b"x" * 500])
    assert first == second
    assert len(_files(tmp_path)) == 1


def test_put_file_streams_a_file(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 7))
    store = LocalArtifactStore(tmp_path / "store")
    ref = store.put_file(source)
    assert store.get_bytes(ref.sha256) == source.read_bytes()


def test_failure_mid_write_leaves_no_artifact(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)

    def chunks() -> Iterator[bytes]:
        yield b"first half"
        raise RuntimeError("disk unplugged")

    with pytest.raises(RuntimeError, match="disk unplugged"):
        store.put_chunks(chunks())
    assert _files(tmp_path) == []


def test_failed_fsync_leaves_no_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalArtifactStore(tmp_path)

    def broken_fsync(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        store.put_bytes(b"payload")
    assert _files(tmp_path) == []


def test_atomic_write_keeps_the_old_file_when_the_new_write_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    atomic_write(target, [b"old,content\n"])

    def chunks() -> Iterator[bytes]:
        yield b"new"
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write(target, chunks())
    assert target.read_bytes() == b"old,content\n"
    assert _files(tmp_path) == [target]


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = store.put_bytes(b"trustworthy")
    path = store.path_for(ref.sha256)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"is corrupt: its sha256 is [0-9a-f]{64}, expected"):
        store.get_bytes(ref.sha256)


def test_missing_artifact_and_bad_address(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(NotFoundError, match="is missing"):
        store.get_bytes("0" * 64)
    with pytest.raises(ValueError, match="not a sha256 address"):
        store.get_bytes("../../etc/passwd")
