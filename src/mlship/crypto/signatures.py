"""Signatures of content hashes: HMAC-SHA256 under a secret key, or Ed25519 under a key pair.

The primitives only: which key a workspace signs with, and where that key is kept, is
:mod:`mlship.security.signing`'s business. The artifact stores sign and verify with these, so they
import nothing above the leaf utilities.

Signatures read ``hmac-sha256:<hex>`` or ``ed25519:<hex>``, and every signature covers a context
as well as the hash, so that a signature made for one purpose never passes for another's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mlship.errors import ConfigError, IntegrityError

SCHEME = "hmac-sha256"
ED25519 = "ed25519"
MODEL = b"mlship model artifact v1\0"
"""What a model version's signature vouches for: the model file the registry recorded."""
STORED = b"mlship stored artifact v1\0"
"""What an artifact store's signature vouches for: content this workspace stored. A different
context, so that bytes anyone may store (a dataset, an upload) never carry a model signature."""


def sign(key: bytes, sha256: str, context: bytes = MODEL) -> str:
    """The signature of the artifact whose content hashes to ``sha256``, for ``context``."""
    digest = hmac.new(key, context + sha256.encode("ascii"), hashlib.sha256).hexdigest()
    return f"{SCHEME}:{digest}"


def verify(
    key: bytes, sha256: str, signature: str | None, what: str, context: bytes = MODEL
) -> None:
    """Raise IntegrityError unless ``signature`` is ``key``'s signature of ``sha256``."""
    if not signature:
        raise IntegrityError(
            f"refusing to load {what}: it is not signed (`mlship models sign` signs versions "
            "registered before signing, after checking their checksum)"
        )
    if not hmac.compare_digest(signature, sign(key, sha256, context)):
        raise IntegrityError(
            f"refusing to load {what}: its signature does not verify (it was signed with another "
            "key, or the artifact's record was altered)"
        )


@dataclass(frozen=True)
class Signer:
    """The signing keys a process has: an HMAC key, an Ed25519 private key, or only a public key
    (which verifies but cannot sign)."""

    hmac_key: bytes | None = None
    private: Ed25519PrivateKey | None = None
    public: Ed25519PublicKey | None = None

    @property
    def scheme(self) -> str:
        return ED25519 if self.private is not None or self.hmac_key is None else SCHEME

    def sign(self, sha256: str, context: bytes = MODEL) -> str:
        if self.private is not None:
            return f"{ED25519}:{self.private.sign(context + sha256.encode('ascii')).hex()}"
        if self.hmac_key is not None:
            return sign(self.hmac_key, sha256, context)
        raise ConfigError("this process has only the public verify key; it cannot sign")

    def verify(self, sha256: str, signature: str | None, what: str, context: bytes = MODEL) -> None:
        """Raise IntegrityError unless ``signature`` vouches for ``sha256`` under the keys here."""
        scheme = (signature or "").partition(":")[0]
        if signature and scheme == ED25519:
            self._verify_ed25519(sha256, signature, what, context)
            return
        if signature and scheme == SCHEME and self.hmac_key is None:
            raise IntegrityError(
                f"refusing to load {what}: it is signed with an HMAC key, which this process does "
                "not have (set MLSHIP_SIGNING_KEY)"
            )
        verify(self.hmac_key or b"", sha256, signature, what, context)

    def _verify_ed25519(self, sha256: str, signature: str, what: str, context: bytes) -> None:
        if self.public is None:
            raise IntegrityError(
                f"refusing to load {what}: it is signed with an Ed25519 key, and this process has "
                "no public key to check it (set MLSHIP_VERIFY_KEY)"
            )
        try:
            raw = bytes.fromhex(signature.partition(":")[2])
            self.public.verify(raw, context + sha256.encode("ascii"))
        except (ValueError, InvalidSignature):
            raise IntegrityError(
                f"refusing to load {what}: its signature does not verify (it was signed with "
                "another key, or the artifact's record was altered)"
            ) from None

    def public_text(self) -> str | None:
        """The public key as ``MLSHIP_VERIFY_KEY`` takes it (base64 of its 32 bytes)."""
        if self.public is None:
            return None
        return base64.b64encode(self.public.public_bytes_raw()).decode("ascii")
