"""Signed model artifacts: a model file is unpickled only if the workspace's key vouches for it.

A checksum alone proves that the bytes are the ones recorded, not who recorded them: anyone who
can write the artifact store and the registry can swap a model and its checksum together, and a
pickle runs code when it is loaded. So every model artifact is signed when it is registered: an
HMAC-SHA256, under the workspace's signing key, of the artifact's sha256 (the hash covers the
bytes, the HMAC covers the hash). Loading checks, in order: the signature against the recorded
sha256 (a wrong or missing signature is refused), then the bytes against that sha256, and only
then unpickles. The key is kept out of the stores: ``MLSHIP_SIGNING_KEY`` (a secret mounted in
production), else ``<home>/keys/signing.key``, created with the workspace.

Signatures read ``hmac-sha256:<hex>``; the prefix leaves room for other schemes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from mlship.errors import IntegrityError
from mlship.security.keys import load_or_create_key

if TYPE_CHECKING:
    from mlship.config import Settings

SCHEME = "hmac-sha256"
_CONTEXT = b"mlship model artifact v1\0"


def signing_key(settings: Settings, *, create: bool = True) -> bytes:
    """The workspace's signing key (see the module docstring)."""
    configured = settings.signing_key.get_secret_value() if settings.signing_key else None
    return load_or_create_key(
        configured,
        settings.signing_key_file_resolved,
        what="signing key",
        variable="MLSHIP_SIGNING_KEY",
        create=create,
    )


def sign(key: bytes, sha256: str) -> str:
    """The signature of the artifact whose content hashes to ``sha256``."""
    digest = hmac.new(key, _CONTEXT + sha256.encode("ascii"), hashlib.sha256).hexdigest()
    return f"{SCHEME}:{digest}"


def verify(key: bytes, sha256: str, signature: str | None, what: str) -> None:
    """Raise IntegrityError unless ``signature`` is ``key``'s signature of ``sha256``."""
    if not signature:
        raise IntegrityError(
            f"refusing to load {what}: it is not signed (`mlship models sign` signs versions "
            "registered before signing, after checking their checksum)"
        )
    if not hmac.compare_digest(signature, sign(key, sha256)):
        raise IntegrityError(
            f"refusing to load {what}: its signature does not verify (it was signed with another "
            "key, or the artifact's record was altered)"
        )
