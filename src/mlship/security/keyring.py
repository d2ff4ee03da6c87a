"""The keyring of artifact keys: the current key, and older keys kept until no file needs them.

A key given in settings (``MLSHIP_ENCRYPTION_KEY``, base64 of 32 bytes, typically a mounted
secret) is the current key; the keyring file, when there is one, still supplies older keys for
reading. Otherwise the keys live in the keyring file (``<home>/keys/artifacts.keyring`` unless
``encryption_key_file`` moves it), created with one random key the first time encryption is used,
readable by its owner only, replaced atomically. A reader never creates a keyring: a key that
does not exist cannot decrypt anything.

The file is JSON: ``{"format": 1, "current": "<key id>", "keys": [{"id": ..., "key": <base64>}]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlship.crypto.encryption import (
    ArtifactCipher,
    Keyring,
    decode_key,
    encode_key,
    key_id,
    new_key,
)
from mlship.errors import ConfigError
from mlship.security.keys import create_once, write_private

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.store.parts import Sealing

FORMAT = 1
VARIABLE = "MLSHIP_ENCRYPTION_KEY"


def read_keyring_file(path: Path) -> Keyring | None:
    """The keyring stored in ``path``, or None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the keyring {path}: {exc}") from None
    try:
        data: Any = json.loads(text)
        if data.get("format") != FORMAT:
            raise ConfigError(f"the keyring {path} is in format {data.get('format')!r}")
        keys = {}
        for entry in data["keys"]:
            key = decode_key(entry["key"], f"{path} (key {entry['id']})")
            if key_id(key) != entry["id"]:
                raise ConfigError(f"the keyring {path}: key {entry['id']} does not match its id")
            keys[entry["id"]] = key
        current = keys[data["current"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"the keyring {path} is malformed: {exc!r}") from None
    older = tuple(key for kid, key in keys.items() if kid != data["current"])
    return Keyring(current, older, source=f"the keyring {path}")


def _dump(keyring: Keyring) -> bytes:
    keys = [keyring.current, *keyring.older]
    body = {
        "format": FORMAT,
        "current": keyring.current_id,
        "keys": [{"id": key_id(key), "key": encode_key(key)} for key in keys],
    }
    return (json.dumps(body, indent=2) + "\n").encode("utf-8")


def load_keyring(settings: Settings, *, create: bool = False) -> Keyring | None:
    """The workspace's keyring (see the module docstring); None when there is no key at all and
    ``create`` is False."""
    path = settings.encryption_key_file_resolved
    stored = read_keyring_file(path)
    if settings.encryption_key is not None:
        current = decode_key(settings.encryption_key.get_secret_value(), VARIABLE)
        kept = (stored.current, *stored.older) if stored is not None else ()
        older = tuple(key for key in kept if key != current)
        where = f"{VARIABLE} and {path}" if stored is not None else VARIABLE
        return Keyring(current, older, source=where)
    if stored is not None or not create:
        return stored
    # Created once under the keys directory's lock; a process that finds it made reads it.
    create_once(
        path, lambda: _dump(Keyring(new_key())), f"set {VARIABLE}, or point {VARIABLE}_FILE into"
    )
    return read_keyring_file(path)


def artifact_cipher(settings: Settings) -> ArtifactCipher | None:
    """The cipher of the workspace's artifacts: a keyring created when encryption is on, read
    when it exists, re-read when a file names a key added since (a rotation in another process).
    None when encryption is off and there is no key."""
    keyring = load_keyring(settings, create=settings.encrypt_artifacts)
    if keyring is None:
        return None
    return ArtifactCipher(keyring, reload=lambda: load_keyring(settings))


def _managed(settings: Settings) -> Path:
    """The keyring file, refusing when the current key is given in settings (mlship cannot
    change what a secret outside it holds)."""
    if settings.encryption_key is not None:
        raise ConfigError(
            f"{VARIABLE} sets the current artifact key, so mlship cannot replace it: put the new "
            f"key in {VARIABLE}, keep the old one in {settings.encryption_key_file_resolved} "
            "for reading, and run `mlship keys encrypt-all`"
        )
    return settings.encryption_key_file_resolved


def add_current_key(settings: Settings) -> Keyring:
    """Make a new random key current, keeping every older key for reading, and save the keyring
    before any file is sealed under the new key."""
    path = _managed(settings)
    stored = read_keyring_file(path)
    if stored is None:
        raise ConfigError(f"there is no keyring at {path} to rotate")
    rotated = Keyring(new_key(), (stored.current, *stored.older), source=f"the keyring {path}")
    write_private(path, _dump(rotated), replace=True)
    return rotated


def retire_older_keys(settings: Settings) -> tuple[str, ...]:
    """Drop every key but the current one from the keyring file; the ids of the dropped keys.

    Call only when no artifact is under an older key any more. A keyring beside a key given in
    settings is left alone: mlship did not write the key that replaced it, so it does not delete
    the file.
    """
    if settings.encryption_key is not None:
        return ()
    path = settings.encryption_key_file_resolved
    stored = read_keyring_file(path)
    if stored is None or not stored.older:
        return ()
    write_private(path, _dump(Keyring(stored.current, source=stored.source)), replace=True)
    return tuple(key_id(key) for key in stored.older)


def sealing(settings: Settings) -> Sealing:
    """How the workspace's log parts are written and read: a cipher whenever there is a key
    (encryption may have been on before), encrypting when ``encrypt_artifacts`` is on."""
    from mlship.store.parts import Sealing  # pyarrow, which reading a key should not load

    if not (
        settings.encrypt_artifacts
        or settings.encryption_key is not None
        or settings.encryption_key_file_resolved.is_file()
    ):
        return Sealing()
    return Sealing(artifact_cipher(settings), settings.encrypt_artifacts)
