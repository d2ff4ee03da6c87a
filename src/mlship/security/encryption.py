"""Encrypted artifact files, now at home in :mod:`mlship.crypto.encryption` (a leaf the stores
import); the names stay importable from here for code written against this module."""

from mlship.crypto.encryption import (
    HEADER_SIZE,
    KEY_BYTES,
    MAGIC,
    SEGMENT_SIZE,
    VERSION,
    ArtifactCipher,
    Header,
    Keyring,
    decode_key,
    encode_key,
    key_id,
    new_key,
    no_key_error,
    read_header,
)

__all__ = [
    "HEADER_SIZE",
    "KEY_BYTES",
    "MAGIC",
    "SEGMENT_SIZE",
    "VERSION",
    "ArtifactCipher",
    "Header",
    "Keyring",
    "decode_key",
    "encode_key",
    "key_id",
    "new_key",
    "no_key_error",
    "read_header",
]
