"""Signed model artifacts: a model file is unpickled only if the workspace's key vouches for it.

A checksum alone proves that the bytes are the ones recorded, not who recorded them: anyone who
can write the artifact store and the registry can swap a model and its checksum together, and a
pickle runs code when it is loaded. So every model artifact is signed when it is registered: an
HMAC-SHA256, under the workspace's signing key, of the artifact's sha256 (the hash covers the
bytes, the HMAC covers the hash). Loading checks, in order: the signature against the recorded
sha256 (a wrong or missing signature is refused), then the bytes against that sha256, and only
then unpickles. The key is kept out of the stores: ``MLSHIP_SIGNING_KEY`` (a secret mounted in
production), else ``<home>/keys/signing.key``, created with the workspace.
The same keys sign every file the artifact store writes (``store/artifacts.py``), under a context
of their own (:data:`STORED`), so a stored file's signature never passes for a model's.

Signatures read ``hmac-sha256:<hex>``. A workspace may sign with an Ed25519 key pair instead
(``signing_scheme = "ed25519"``; signatures read ``ed25519:<hex>``): the private key signs where
versions are registered, and anything that only loads models (a bundle's server, a client of a
tracking server) verifies with the public key alone (``MLSHIP_VERIFY_KEY``), so the secret never
leaves the machine that registers. A :class:`Signer` holds whichever keys a process has and
verifies each signature by the scheme it names, so versions signed before a switch still load.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mlship.errors import ConfigError, IntegrityError
from mlship.security.keys import load_or_create_key, write_private

if TYPE_CHECKING:
    from mlship.config import Settings

SCHEME = "hmac-sha256"
ED25519 = "ed25519"
MODEL = b"mlship model artifact v1\0"
"""What a model version's signature vouches for: the model file the registry recorded."""
STORED = b"mlship stored artifact v1\0"
"""What an artifact store's signature vouches for: content this workspace stored. A different
context, so that bytes anyone may store (a dataset, an upload) never carry a model signature."""


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


def signer(settings: Settings, *, create: bool = True) -> Signer:
    """The keys of ``settings``: with the ``ed25519`` scheme, the private key (created with the
    workspace unless ``create`` is False) or only ``verify_key``; with ``hmac-sha256``, the HMAC
    key. An HMAC key that already exists is kept beside an Ed25519 pair, to check versions
    signed before the switch, and a ``verify_key`` beside an HMAC key, to check Ed25519 ones."""
    hmac_key = None
    has_hmac = settings.signing_key is not None or settings.signing_key_file_resolved.is_file()
    hmac_needed = settings.signing_scheme == SCHEME and (create or not settings.verify_key)
    if has_hmac or hmac_needed:  # a verifier without any key says which one it lacks
        create_hmac = create and settings.signing_scheme == SCHEME
        hmac_key = signing_key(settings, create=create_hmac)
    public = _public_key(settings.verify_key) if settings.verify_key else None
    if settings.signing_scheme != ED25519:
        return Signer(hmac_key=hmac_key, public=public)
    private = _private_key(settings, create=create)
    if private is None and public is None:
        raise ConfigError(
            f"no Ed25519 signing key: {settings.signing_private_key_file_resolved} does not "
            "exist; set MLSHIP_SIGNING_PRIVATE_KEY, or MLSHIP_VERIFY_KEY to only verify"
        )
    if private is not None:
        derived = private.public_key()
        if public is not None and public.public_bytes_raw() != derived.public_bytes_raw():
            raise ConfigError("MLSHIP_VERIFY_KEY is not the public key of the signing key")
        public = derived
    return Signer(hmac_key=hmac_key, private=private, public=public)


def _public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError:
        raise ConfigError(
            "MLSHIP_VERIFY_KEY: expected the base64 of a 32-byte Ed25519 public key "
            "(`mlship keys public` prints it)"
        ) from None


def _private_key(settings: Settings, *, create: bool) -> Ed25519PrivateKey | None:
    configured = settings.signing_private_key
    path = settings.signing_private_key_file_resolved
    if configured is not None:
        text, origin = configured.get_secret_value(), "MLSHIP_SIGNING_PRIVATE_KEY"
    elif path.is_file():
        text, origin = path.read_text().strip(), str(path)
    elif create:
        fresh = Ed25519PrivateKey.generate().private_bytes_raw()
        write_private(path, base64.b64encode(fresh) + b"\n", replace=False)
        text, origin = path.read_text().strip(), str(path)  # another process may have won
    else:
        return None
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except ValueError:
        raise ConfigError(
            f"{origin}: expected the base64 of a 32-byte Ed25519 private key"
        ) from None
