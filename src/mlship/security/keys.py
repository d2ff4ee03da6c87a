"""Secret keys of a workspace: from settings, else from a file created on first use.

A key given in settings (an environment variable, typically a mounted secret) wins. Otherwise the
key lives in a file under ``<home>/keys/``, created once with 32 random bytes (hex) and readable by
its owner only. Keys are at least 32 characters: shorter ones are refused rather than padded.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from mlship.errors import ConfigError

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
        data = key_file.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                f"no {what}: {key_file} does not exist; set {variable} to the key that was used"
            ) from None
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_hex(32).encode())
                handle.flush()
                os.fsync(handle.fileno())
        data = key_file.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {key_file}: {exc}") from None
    if len(data) < MIN_CHARS:
        raise ConfigError(f"the {what} in {key_file} is shorter than {MIN_CHARS} characters")
    return data


def write_private(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write a file only its owner can read (mode 0600 from the first byte), atomically.

    With ``replace`` the file is replaced; without, it is created only if it does not exist yet,
    and False says another process created it first (its content is then the one to use).
    """
    from mlship.store.artifacts import fsync_directory

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
