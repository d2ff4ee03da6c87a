"""The artifact store: content addressing, atomic writes, checksums verified on read."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlship.errors import IntegrityError, NotFoundError
from mlship.security.signing import MODEL, STORED, Signer
from mlship.store.artifacts import LocalArtifactStore, atomic_write

KEY = b"k" * 32


def _store(root: Path, key: bytes = KEY) -> LocalArtifactStore:
    return LocalArtifactStore(root, signer=Signer(hmac_key=key))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_and_get_round_trip_by_sha256(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ref = store.put_bytes(b"model bytes")
    assert ref.sha256 == hashlib.sha256(b"model bytes").hexdigest()
    assert ref.size == 11
    assert store.exists(ref.sha256)
    assert store.get_bytes(ref.sha256) == b"model bytes"


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.put_bytes(b"x" * 1000)
    second = store.put_chunks([b"x" * 500, b"x" * 500])
    assert first == second
    assert len(_files(tmp_path / "objects")) == 1
    assert len(_files(tmp_path / "signatures")) == 1


def test_put_file_streams_a_file(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 7))
    store = _store(tmp_path / "store")
    ref = store.put_file(source)
    assert store.get_bytes(ref.sha256) == source.read_bytes()


def test_failure_mid_write_leaves_no_artifact(tmp_path: Path) -> None:
    store = _store(tmp_path)

    def chunks() -> Iterator[bytes]:
        yield b"first half"
        raise RuntimeError("disk unplugged")

    with pytest.raises(RuntimeError, match="disk unplugged"):
        store.put_chunks(chunks())
    assert _files(tmp_path) == []


def test_failed_fsync_leaves_no_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)

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
    store = _store(tmp_path)
    ref = store.put_bytes(b"trustworthy")
    path = store.path_for(ref.sha256)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"is corrupt: its sha256 is [0-9a-f]{64}, expected"):
        store.get_bytes(ref.sha256)


def test_missing_artifact_and_bad_address(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(NotFoundError, match="is missing"):
        store.get_bytes("0" * 64)
    with pytest.raises(ValueError, match="not a sha256 address"):
        store.get_bytes("../../etc/passwd")


def test_every_artifact_is_signed_when_written_and_checked_when_read(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ref = store.put_bytes(b"a dataset")
    signature = store.signature_path(ref.sha256).read_text().strip()
    assert signature == Signer(hmac_key=KEY).sign(ref.sha256, STORED)
    # A store's signature never doubles as a model's: the two sign different contexts.
    assert signature != Signer(hmac_key=KEY).sign(ref.sha256, MODEL)
    store.signature_path(ref.sha256).unlink()
    with pytest.raises(IntegrityError, match=r"is not signed .*`mlship keys sign-all`"):
        store.get_bytes(ref.sha256)


def test_an_artifact_slipped_in_without_the_key_is_refused(tmp_path: Path) -> None:
    """Whoever can write the directory but lacks the key can store bytes, not vouch for them."""
    store = _store(tmp_path)
    planted = _store(tmp_path, key=b"o" * 32).put_bytes(b"someone else's rows")
    with pytest.raises(IntegrityError, match="signature does not verify"):
        store.get_bytes(planted.sha256)
    # Storing the same content through the workspace signs it with the workspace's key.
    store.put_bytes(b"someone else's rows")
    assert store.get_bytes(planted.sha256) == b"someone else's rows"


def test_sign_existing_checks_the_bytes_first_and_never_replaces_a_signature(
    tmp_path: Path,
) -> None:
    unsigned = LocalArtifactStore(tmp_path, signer=None)
    good = unsigned.put_bytes(b"stored before signing")
    bad = unsigned.put_bytes(b"flipped later")
    path = unsigned.path_for(bad.sha256)
    path.write_bytes(b"F" + path.read_bytes()[1:])
    assert _files(tmp_path / "signatures") == []

    store = _store(tmp_path)
    assert store.sign_existing(good.sha256) is True
    assert store.sign_existing(good.sha256) is False
    assert store.get_bytes(good.sha256) == b"stored before signing"
    with pytest.raises(IntegrityError, match="is corrupt"):
        store.sign_existing(bad.sha256)
    assert store.signature_of(bad.sha256) is None

    forged = _store(tmp_path, key=b"o" * 32).put_bytes(b"forged")
    with pytest.raises(IntegrityError, match="signature does not verify"):
        store.sign_existing(forged.sha256)
    assert store.signature_of(forged.sha256) == Signer(hmac_key=b"o" * 32).sign(
        forged.sha256, STORED
    )


def test_a_crash_before_the_rename_leaves_no_unsigned_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    real_replace = os.replace

    def replace(src: str, dst: str | Path) -> None:
        if "objects" in str(dst):
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="power cut"):
        store.put_bytes(b"half done")
    assert _files(tmp_path / "objects") == []
    assert not list((tmp_path / "incoming").iterdir())
