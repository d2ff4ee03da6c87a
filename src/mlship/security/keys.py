"""Secret keys of a workspace: from settings, else from a file created on first use.

A key given in settings (an environment variable, typically a mounted secret) wins. Otherwise the
key lives in a file under ``<home>/keys/``, created once with 32 random bytes (hex) and readable by
its owner only. Keys are at least 32 characters: shorter ones are refused rather than padded.

Several processes may start on a new workspace at once, so a key file is never visible half
written: it is written to a temporary file (mode 0600 from the first byte), synced and linked
into place, under a lock on the keys directory, and a process that finds the file reads the key
another process created instead of making its own.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlship.errors import ConfigError
from mlship.store.artifacts import fsync_directory
from mlship.store.failures import Place
from mlship.store.locks import file_lock

MIN_CHARS = 32


def load_or_create_key(
    configured: str | None,
    key_file: Path,
    *,
    what: str = "PII key",
    variable: str = "MLSHIP_PII_KEY",
    create: bool = True,
) -> bytes:
    """The key: ``configured`` (from ``variable``), else ``key_file``, created when missing unless
    ``create`` is False (a verifier must not invent the key it checks against)."""
    if configured:
        if len(configured) < MIN_CHARS:
            raise ConfigError(f"the {what} ({variable}) must be at least {MIN_CHARS} characters")
        return configured.encode("utf-8")
    try:
        if create:
            move = f"set {variable}, or point {variable}_FILE into"
            data = create_once(key_file, lambda: secrets.token_hex(32).encode(), move).strip()
        else:
            data = key_file.read_bytes().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no {what}: {key_file} does not exist; set {variable} to the key that was used"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {key_file}: {exc}") from None
    if len(data) < MIN_CHARS:
        raise ConfigError(f"the {what} in {key_file} is shorter than {MIN_CHARS} characters")
    return data


LOCK_FILE = ".keys.lock"
"""The lock file that serialises key creation in a keys directory."""


def create_once(path: Path, make: Callable[[], bytes], move: str) -> bytes:
    """The content of the key file ``path``, created with ``make()`` when it does not exist.

    The file is read first, without a lock, the usual case. Otherwise the keys directory is
    locked, the file looked for again (another process may have just created it), and only then
    written, atomically. A directory that cannot be written is reported with ``move``, how to
    put the key elsewhere ("set MLSHIP_PII_KEY, or point MLSHIP_PII_KEY_FILE into")."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    place = Place("the keys directory", path.parent, move=move)
    with file_lock(path.parent / LOCK_FILE, place):
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = make()
        with place.guard():
            if write_private(path, data, replace=False):
                return data
        return path.read_bytes()  # created by a process that did not take the lock


def write_private(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write a file only its owner can read (mode 0600 from the first byte), atomically.

    With ``replace`` the file is replaced; without, it is created only if it does not exist yet,
    and False says another process created it first (its content is then the one to use).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails, unlike a rename, when the file exists
            except FileExistsError:
                return False
            finally:
                tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return True
