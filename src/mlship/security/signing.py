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

The primitives (:class:`Signer`, :func:`sign`, :func:`verify`, the contexts) live in the leaf
:mod:`mlship.crypto.signatures` and are importable from here too.

Signatures read ``hmac-sha256:<hex>``. A workspace may sign with an Ed25519 key pair instead
(``signing_scheme = "ed25519"``; signatures read ``ed25519:<hex>``): the private key signs where
versions are registered, and anything that only loads models (a bundle's server, a client of a
tracking server) verifies with the public key alone (``MLSHIP_VERIFY_KEY``), so the secret never
leaves the machine that registers. A :class:`Signer` holds whichever keys a process has and
verifies each signature by the scheme it names, so versions signed before a switch still load.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mlship.crypto.signatures import ED25519, MODEL, SCHEME, STORED, Signer, sign, verify
from mlship.errors import ConfigError
from mlship.security.keys import load_or_create_key, write_private

if TYPE_CHECKING:
    from mlship.config import Settings

__all__ = [
    "ED25519",
    "MODEL",
    "SCHEME",
    "STORED",
    "Signer",
    "sign",
    "signer",
    "signing_key",
    "verify",
]


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
