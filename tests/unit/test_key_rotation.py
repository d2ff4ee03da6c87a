"""Key rotation: every artifact moves under the new key with its bytes unchanged, the old key is
retired only when no file needs it, an interrupted rotation resumes, a corrupt file keeps the old
key, and plaintext files are encrypted by ``encrypt-all``."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from mlship.config import Settings
from mlship.crypto.encryption import MAGIC, new_key
from mlship.errors import ConfigError, IntegrityError
from mlship.security.keyring import load_keyring, read_keyring_file
from mlship.security.rotation import DAMAGED, RotationObserver, census, encrypt_all, rotate
from mlship.store.artifacts import LocalArtifactStore
from mlship.workspace import Workspace
from tests.conftest import invoke_cli


class Recorder(RotationObserver):
    def __init__(self) -> None:
        self.total = -1
        self.seen: list[tuple[str, bool]] = []

    def started(self, total: int, key: str) -> None:
        self.total = total

    def advanced(self, sha256: str, moved: bool) -> None:
        self.seen.append((sha256, moved))


@pytest.fixture
def on(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws", encrypt_artifacts=True)


def _fill(settings: Settings, count: int = 5) -> dict[str, bytes]:
    workspace = Workspace.open(settings)
    stored = {}
    for i in range(count):
        data = os.urandom(1000 * i + 16) + f"artifact {i}".encode()
        stored[workspace.artifacts.put_bytes(data).sha256] = data
    return stored


def _store(settings: Settings) -> LocalArtifactStore:
    store = Workspace.open(settings).artifacts
    assert isinstance(store, LocalArtifactStore)
    return store


def test_rotation_moves_every_file_and_retires_the_old_key(on: Settings) -> None:
    stored = _fill(on)
    old = load_keyring(on)
    assert old is not None
    recorder = Recorder()
    done = rotate(on, recorder)
    assert done.new_key and done.key != old.current_id
    assert (done.moved, done.skipped, done.failed) == (5, 0, [])
    assert done.retired == (old.current_id,)
    assert recorder.total == 5 and all(moved for _, moved in recorder.seen)
    keyring = read_keyring_file(on.encryption_key_file_resolved)
    assert keyring is not None and keyring.current_id == done.key and keyring.older == ()
    store = _store(on)
    for sha256, data in stored.items():
        assert store.key_id(sha256) == done.key
        assert store.get_bytes(sha256) == data
    found = census(on)
    assert found.keyring == (done.key,)
    assert dict(found.files) == {done.key: 5}


def test_an_interrupted_rotation_resumes_without_a_third_key(
    on: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _fill(on)
    old = load_keyring(on)
    assert old is not None
    real = LocalArtifactStore.reencrypt
    calls = []

    def dies_on_the_third(self: LocalArtifactStore, sha256: str) -> None:
        calls.append(sha256)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(self, sha256)

    monkeypatch.setattr(LocalArtifactStore, "reencrypt", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        rotate(on)
    monkeypatch.undo()
    halfway = read_keyring_file(on.encryption_key_file_resolved)
    assert halfway is not None and halfway.older == (old.current,)
    new = halfway.current_id
    assert dict(census(on).files) == {new: 2, old.current_id: 3}
    # Every file still reads in between: the old key is still in the keyring.
    store = _store(on)
    assert all(store.get_bytes(sha256) == data for sha256, data in stored.items())

    recorder = Recorder()
    done = rotate(on, recorder)
    assert not done.new_key and done.key == new
    assert (done.moved, done.skipped) == (3, 2)
    assert done.retired == (old.current_id,)
    assert dict(census(on).files) == {new: 5}
    store = _store(on)
    assert all(store.get_bytes(sha256) == data for sha256, data in stored.items())


def test_a_corrupt_file_keeps_the_old_key_and_is_left_as_it_was(on: Settings) -> None:
    stored = _fill(on, 3)
    old = load_keyring(on)
    assert old is not None
    bad = sorted(stored)[1]
    path = _store(on).path_for(bad)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    done = rotate(on)
    assert done.moved == 2
    assert [sha256 for sha256, _ in done.failed] == [bad]
    assert "authentication failed at segment 0" in done.failed[0][1]
    assert done.retired == ()
    assert dict(done.remaining) == {old.current_id: 1}
    assert path.read_bytes() == bytes(data)
    keyring = read_keyring_file(on.encryption_key_file_resolved)
    assert keyring is not None and keyring.older == (old.current,)


def test_a_cut_off_header_is_reported_and_counted_not_a_crash(on: Settings) -> None:
    stored = _fill(on, 2)
    bad = sorted(stored)[0]
    path = _store(on).path_for(bad)
    path.write_bytes(path.read_bytes()[:20])
    assert census(on).files[DAMAGED] == 1
    done = rotate(on)
    assert [sha256 for sha256, _ in done.failed] == [bad]
    assert f"artifact {bad}: its encryption header is cut short" in done.failed[0][1]
    assert done.remaining == {DAMAGED: 1} and done.retired == ()


def test_encrypt_all_encrypts_plaintext_stored_before(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    stored = _fill(Settings(home=home), 3)
    on = Settings(home=home, encrypt_artifacts=True)
    stored.update(_fill(on, 2))
    found = census(on)
    assert found.files[None] == 3
    done = encrypt_all(on)
    assert (done.moved, done.skipped, done.new_key) == (3, 2, False)
    store = _store(Settings(home=home, encrypt_artifacts=True, refuse_plaintext_artifacts=True))
    for sha256, data in stored.items():
        assert store.path_for(sha256).read_bytes().startswith(MAGIC)
        assert store.get_bytes(sha256) == data
    assert dict(census(on).files) == {done.key: 5}


def test_a_running_reader_picks_up_the_rotated_key(on: Settings) -> None:
    stored = _fill(on, 2)
    reader = _store(on)  # loaded its keyring before the rotation
    rotate(on)
    for sha256, data in stored.items():
        assert reader.get_bytes(sha256) == data


def test_rotation_needs_encryption_on_and_a_key_mlship_manages(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="encryption is off"):
        rotate(Settings(home=tmp_path / "ws"))
    configured = Settings(
        home=tmp_path / "ws",
        encrypt_artifacts=True,
        encryption_key=base64.b64encode(new_key()).decode(),
    )
    with pytest.raises(ConfigError, match="MLSHIP_ENCRYPTION_KEY sets the current artifact key"):
        rotate(configured)


def test_moving_to_a_configured_key_keeps_the_keyring_file(tmp_path: Path) -> None:
    """The operator puts a new key in MLSHIP_ENCRYPTION_KEY, the old one stays in the keyring
    file for reading, and encrypt-all moves everything under the configured key."""
    home = tmp_path / "ws"
    stored = _fill(Settings(home=home, encrypt_artifacts=True), 2)
    encoded = base64.b64encode(new_key()).decode()
    configured = Settings(home=home, encrypt_artifacts=True, encryption_key=encoded)
    done = encrypt_all(configured)
    assert done.moved == 2 and done.retired == ()
    assert configured.encryption_key_file_resolved.is_file()
    # The configured key alone (no keyring file) now reads everything...
    alone = Settings(home=home, encryption_key=encoded, encryption_key_file=tmp_path / "none")
    for sha256, data in stored.items():
        assert _store(alone).get_bytes(sha256) == data
    # ...and the keyring file alone no longer does.
    keyring_only = Settings(home=home)
    with pytest.raises(IntegrityError, match="is encrypted under key"):
        _store(keyring_only).get_bytes(next(iter(stored)))


def test_the_commands_report_and_fail_without_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    stored = _fill(Settings(home=home), 2)
    off = invoke_cli("keys", "rotate", home=home, check=False)
    assert off.returncode == 1 and "Traceback" not in off.stderr
    assert "encryption is off" in off.stderr
    on = {"MLSHIP_ENCRYPT_ARTIFACTS": "true"}
    status = invoke_cli("keys", "status", home=home, env=on).stdout
    assert "Current key: none (no keyring)" in status
    assert re.search(r"plaintext\s*│\s*-\s*│\s*2\b", status), status
    encrypted = invoke_cli("keys", "encrypt-all", home=home, env=on).stdout
    assert re.search(r"Artifacts under key [0-9a-f]{16}: 2 re-encrypted, 0 already", encrypted)

    bad = sorted(stored)[0]
    path = _store(Settings(home=home)).path_for(bad)
    path.write_bytes(path.read_bytes()[:-1])
    failed = invoke_cli("keys", "rotate", home=home, env=on, check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert f"failed {bad}: artifact {bad}: authentication failed at segment 0" in " ".join(
        failed.stdout.split()
    )
    assert "not every artifact is under key" in " ".join(failed.stderr.split())
