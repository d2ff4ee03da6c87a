"""The key material a restored workspace needs, and where a backup or a check finds it.

A restore needs the signing key (every stored artifact and every model version is refused
without a signature that verifies under it), the keyring when artifacts or log parts are
encrypted (the backup's copies are encrypted too), and the PII key, so that the pseudonyms of
new rows match those already stored. These are the workspace's key files (``<home>/keys/``, or
wherever ``*_file`` settings move them); a key given in an ``MLSHIP_*`` variable is a secret kept
elsewhere, never a file mlship copies.

Keys go into a backup only with ``--include-keys`` (docs/decisions: backups and the keys they
need): whoever can read the backup can then sign a model. Otherwise a restore or a check reads
them from ``--keys DIR`` (a copy of ``<home>/keys``, kept apart from the backups) or from the
settings of the process (the ``MLSHIP_*`` variables).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlship.config import Settings

FILES: dict[str, Callable[[Settings], Path]] = {
    "signing.key": lambda s: s.signing_key_file_resolved,
    "signing.ed25519": lambda s: s.signing_private_key_file_resolved,
    "artifacts.keyring": lambda s: s.encryption_key_file_resolved,
    "pii.key": lambda s: s.pii_key_file_resolved,
}
"""Each key file by its name in ``<home>/keys/`` (and in a backup's ``keys/``)."""


def present(settings: Settings) -> dict[str, Path]:
    """The workspace's key files that exist, by name."""
    found = {name: where(settings) for name, where in FILES.items()}
    return {name: path for name, path in found.items() if path.is_file()}


def settings_with_keys(base: Settings, directory: Path, scheme: str) -> Settings:
    """``base`` with every key file read from ``directory`` (a copy of ``<home>/keys``), signing
    by ``scheme`` as the backed-up workspace did."""
    return base.model_copy(
        update={
            "signing_key_file": directory / "signing.key",
            "signing_private_key_file": directory / "signing.ed25519",
            "encryption_key_file": directory / "artifacts.keyring",
            "pii_key_file": directory / "pii.key",
            "signing_scheme": scheme,
        }
    )


def has_signing_key(settings: Settings) -> bool:
    """Whether ``settings`` give a key that verifies stored signatures."""
    return bool(
        settings.signing_key
        or settings.signing_private_key
        or settings.verify_key
        or settings.signing_key_file_resolved.is_file()
        or settings.signing_private_key_file_resolved.is_file()
    )
