"""Artifacts encrypted at rest: the file format round-trips every size, streams, and refuses a
flipped byte, reordered or dropped segments, a cut-off end and a key it does not hold; files stored
before encryption was turned on still read; the keyring is private and checked."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlship.config import Settings
from mlship.crypto.encryption import (
    HEADER_SIZE,
    MAGIC,
    SEGMENT_SIZE,
    ArtifactCipher,
    Keyring,
    key_id,
    new_key,
)
from mlship.errors import ConfigError, DecryptionError, IntegrityError
from mlship.security.keyring import artifact_cipher, load_keyring
from mlship.security.signing import Signer
from mlship.store.artifacts import LocalArtifactStore
from mlship.workspace import Workspace

SMALL = 64
"""A segment size that makes multi-segment files of a few hundred bytes."""
RECORD = SMALL + 28
"""Bytes of one full segment on disk: nonce, ciphertext, tag."""


def _cipher(key: bytes | None = None, segment_size: int = SMALL) -> ArtifactCipher:
    return ArtifactCipher(Keyring(key or new_key()), segment_size=segment_size)


def _store(
    root: Path, cipher: ArtifactCipher | None, *, encrypt: bool = True, allow_plaintext: bool = True
) -> LocalArtifactStore:
    return LocalArtifactStore(
        root,
        cipher,
        signer=Signer(hmac_key=b"k" * 32),
        encrypt=encrypt,
        allow_plaintext=allow_plaintext,
    )


@pytest.mark.parametrize(
    ("size", "segment_size"),
    [
        (0, SEGMENT_SIZE),
        (1, SEGMENT_SIZE),
        (SEGMENT_SIZE, SEGMENT_SIZE),
        (3 * SEGMENT_SIZE + 5, SEGMENT_SIZE),
        (SMALL - 1, SMALL),
        (SMALL, SMALL),
        (SMALL + 1, SMALL),
        (5 * SMALL, SMALL),
    ],
)
def test_every_size_round_trips_under_its_plaintext_address(
    tmp_path: Path, size: int, segment_size: int
) -> None:
    data = os.urandom(size)
    cipher = _cipher(segment_size=segment_size)
    store = _store(tmp_path, cipher)
    ref = store.put_bytes(data)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == size
    assert store.exists(ref.sha256)
    raw = store.path_for(ref.sha256).read_bytes()
    assert raw.startswith(MAGIC)
    segments = max(1, -(-size // segment_size))
    assert len(raw) == HEADER_SIZE + size + 28 * segments
    assert store.key_id(ref.sha256) == cipher.current_id
    assert store.get_bytes(ref.sha256) == data


def test_the_ciphertext_shows_nothing_of_the_plaintext_and_dedup_still_holds(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path, _cipher())
    data = b"PAR1" + b"customer_id,monthly_charges\n" * 50
    first = store.put_bytes(data)
    second = store.put_chunks([data[:100], data[100:]])
    assert first == second
    raw = store.path_for(first.sha256).read_bytes()
    assert b"PAR1" not in raw
    assert b"customer_id" not in raw
    files = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert files == [store.path_for(first.sha256)]


def test_encryption_streams_one_segment_at_a_time() -> None:
    """The first segment is sealed after the input passed it, not after the whole input."""
    consumed: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(100):
            consumed.append(i)
            yield b"x" * 10

    sealed = _cipher().encrypt(chunks())
    next(sealed)  # the header
    next(sealed)  # the first segment
    assert len(consumed) < 10
    rest = b"".join(sealed)
    assert len(consumed) == 100
    assert len(rest) > 0


def _stored(
    tmp_path: Path, cipher: ArtifactCipher | None = None
) -> tuple[LocalArtifactStore, str, Path]:
    """An artifact of five segments, the last one short."""
    store = _store(tmp_path, cipher or _cipher())
    ref = store.put_bytes(os.urandom(4 * SMALL + 10))
    return store, ref.sha256, store.path_for(ref.sha256)


def _segments(raw: bytes) -> tuple[bytes, list[bytes]]:
    body = raw[HEADER_SIZE:]
    return raw[:HEADER_SIZE], [body[i : i + RECORD] for i in range(0, len(body), RECORD)]


def test_a_flipped_byte_anywhere_is_refused_naming_the_segment(tmp_path: Path) -> None:
    store, sha256, path = _stored(tmp_path)
    original = path.read_bytes()
    for offset, segment in ((HEADER_SIZE + RECORD + 20, 1), (len(original) - 1, 4)):
        data = bytearray(original)
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(
            DecryptionError, match=rf"artifact {sha256}: authentication failed at segment {segment}"
        ):
            store.get_bytes(sha256)
    header = bytearray(original)
    header[HEADER_SIZE - 1] ^= 0x01  # the file nonce is bound into every segment
    path.write_bytes(bytes(header))
    with pytest.raises(DecryptionError, match="authentication failed at segment 0"):
        store.get_bytes(sha256)


def test_swapped_dropped_cut_and_appended_segments_are_refused(tmp_path: Path) -> None:
    store, sha256, path = _stored(tmp_path)
    header, segments = _segments(path.read_bytes())
    assert len(segments) == 5
    other = _stored(tmp_path / "other", store.cipher)[2].read_bytes()  # same key
    tampered = {
        "swapped": header + b"".join([segments[1], segments[0], *segments[2:]]),
        "middle dropped": header + b"".join([segments[0], *segments[2:]]),
        "last dropped": header + b"".join(segments[:-1]),
        "last cut short": header + b"".join(segments)[:-5],
        "appended": header + b"".join([*segments, segments[1]]),
        "from another file": header + b"".join([*segments[:-1], _segments(other)[1][-1]]),
    }
    refused = []
    for name, data in tampered.items():
        path.write_bytes(data)
        try:
            store.get_bytes(sha256)
        except DecryptionError as exc:
            if "authentication failed at segment" in str(exc):
                refused.append(name)
    assert refused == list(tampered)
    path.write_bytes(header)
    with pytest.raises(DecryptionError, match="segment 0 is cut short"):
        store.get_bytes(sha256)
    path.write_bytes(header[:10])
    with pytest.raises(DecryptionError, match="header is cut short"):
        store.get_bytes(sha256)


def test_a_key_the_keyring_lacks_is_named(tmp_path: Path) -> None:
    store, sha256, _ = _stored(tmp_path)
    writer = store.cipher
    assert writer is not None
    other = _store(tmp_path, _cipher())
    with pytest.raises(
        DecryptionError, match=rf"artifact {sha256} is encrypted under key {writer.current_id}"
    ):
        other.get_bytes(sha256)
    keyless = _store(tmp_path, None)
    with pytest.raises(IntegrityError, match=rf"encrypted \(under key {writer.current_id}\)"):
        keyless.get_bytes(sha256)
    # A keyring holding the writer's key among older ones reads it.
    both = ArtifactCipher(Keyring(new_key(), (writer.keyring.current,)), segment_size=SMALL)
    assert len(_store(tmp_path, both).get_bytes(sha256)) == 4 * SMALL + 10


def test_plaintext_files_read_after_encryption_is_turned_on(tmp_path: Path) -> None:
    before = _store(tmp_path, None).put_bytes(b"stored in plaintext")
    store = _store(tmp_path, _cipher())
    assert store.get_bytes(before.sha256) == b"stored in plaintext"
    assert store.key_id(before.sha256) is None
    after = store.put_bytes(b"stored encrypted")
    assert store.path_for(after.sha256).read_bytes().startswith(MAGIC)
    strict = _store(tmp_path, store.cipher, allow_plaintext=False)
    assert strict.get_bytes(after.sha256) == b"stored encrypted"
    with pytest.raises(
        IntegrityError, match="is not encrypted and plaintext artifacts are refused"
    ):
        strict.get_bytes(before.sha256)
    # Encryption turned off again: new files are plaintext, encrypted ones still read.
    off = _store(tmp_path, store.cipher, encrypt=False)
    assert off.get_bytes(after.sha256) == b"stored encrypted"
    plain = off.put_bytes(b"plaintext again")
    assert off.path_for(plain.sha256).read_bytes() == b"plaintext again"


def test_a_plaintext_mismatch_after_decryption_is_still_caught(tmp_path: Path) -> None:
    """A file renamed to another address decrypts fine but does not hash to its name."""
    store = _store(tmp_path, _cipher())
    real = store.put_bytes(b"the real thing")
    fake = store.put_bytes(b"something else")
    store.path_for(fake.sha256).write_bytes(store.path_for(real.sha256).read_bytes())
    with pytest.raises(IntegrityError, match="is corrupt: its sha256 is"):
        store.get_bytes(fake.sha256)


def test_the_keyring_is_created_once_private_and_never_by_a_reader(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    assert load_keyring(settings) is None
    assert artifact_cipher(settings) is None
    on = Settings(home=tmp_path / "ws", encrypt_artifacts=True)
    cipher = artifact_cipher(on)
    assert cipher is not None
    path = on.encryption_key_file_resolved
    assert path == (tmp_path / "ws" / "keys" / "artifacts.keyring").resolve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_keyring(on, create=True)
    assert again is not None and again.current == cipher.keyring.current


def test_a_configured_key_wins_and_is_checked(tmp_path: Path) -> None:
    key = new_key()
    encoded = base64.b64encode(key).decode()
    settings = Settings(home=tmp_path / "ws", encrypt_artifacts=True, encryption_key=encoded)
    keyring = load_keyring(settings, create=True)
    assert keyring is not None and keyring.current == key
    assert keyring.current_id == key_id(key) and len(keyring.current_id) == 16
    assert not settings.encryption_key_file_resolved.exists()  # no file for a configured key
    short = Settings(home=tmp_path, encryption_key=base64.b64encode(b"k" * 16).decode())
    with pytest.raises(ConfigError, match=r"MLSHIP_ENCRYPTION_KEY is 16 bytes; expected 32"):
        load_keyring(short)
    with pytest.raises(ConfigError, match="not valid base64"):
        load_keyring(Settings(home=tmp_path, encryption_key="not base64!"))


def test_a_malformed_keyring_names_its_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    path = settings.encryption_key_file_resolved
    path.parent.mkdir(parents=True)
    path.write_text('{"format": 1, "current": "00", "keys": []}')
    with pytest.raises(ConfigError, match=rf"the keyring {path} is malformed"):
        load_keyring(settings)


def test_plaintext_refused_needs_encryption_on(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refuse_plaintext_artifacts needs encrypt_artifacts"):
        Settings(home=tmp_path, refuse_plaintext_artifacts=True)


def test_the_workspace_store_encrypts_when_on_and_reads_when_off(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    plain = Workspace.open(Settings(home=home))
    old = plain.artifacts.put_bytes(b"before")
    assert isinstance(plain.artifacts, LocalArtifactStore) and plain.artifacts.cipher is None
    on = Workspace.open(Settings(home=home, encrypt_artifacts=True))
    new = on.artifacts.put_bytes(b"after")
    assert on.artifacts.get_bytes(old.sha256) == b"before"
    off = Workspace.open(Settings(home=home))  # the keyring exists: encrypted files still read
    assert off.artifacts.get_bytes(new.sha256) == b"after"
    assert isinstance(off.artifacts, LocalArtifactStore) and not off.artifacts.encrypt
    assert io.BytesIO(off.artifacts.get_bytes(old.sha256)).read() == b"before"
