"""Encrypted artifact files: AES-256-GCM in authenticated segments, streamed both ways.

An artifact can be larger than memory should hold, and one AES-GCM message over a whole file would
have to be held to be checked. So a file is cut into segments (1 MiB of plaintext each), each
sealed on its own, and the associated data of every segment binds the file's header, the
segment's index and whether it is the last one: segments cannot be reordered, moved between files,
dropped or cut off, and nothing is returned from a segment before its tag has been checked.

Layout (integers big-endian)::

    header   magic "\\x89MLSENC\\n" (8) | format version (1) | segment size (4)
             | key id (8) | file nonce (16, random; makes every header unique)
    segment  nonce (12, random) | ciphertext (segment size, or fewer in the last) | tag (16)

An empty artifact is one empty last segment. The key id names the key a file needs (see
:func:`key_id`), so a reader picks the right key from its keyring, or says which one it lacks.
Random 96-bit nonces are safe for far more segments than a key will ever seal between rotations.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mlship.errors import ConfigError, DecryptionError, IntegrityError

MAGIC = b"\x89MLSENC\n"
VERSION = 1
SEGMENT_SIZE = 1 << 20
KEY_BYTES = 32
_HEADER = struct.Struct(">8sBI8s16s")
HEADER_SIZE = _HEADER.size
_NONCE = 12
_TAG = 16
_OVERHEAD = _NONCE + _TAG
_MAX_SEGMENT = 64 << 20  # a crafted header must not make a reader allocate without bound
_KEY_ID_CONTEXT = b"mlship artifact key id v1\0"


def key_id(key: bytes) -> str:
    """The public name of ``key``: 16 hex digits of a hash of it (it reveals nothing of the key,
    and two keys practically never share one)."""
    return hashlib.sha256(_KEY_ID_CONTEXT + key).digest()[:8].hex()


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def decode_key(text: str, where: str) -> bytes:
    """A key written as base64 of 32 bytes; ``where`` names its source in the error."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ConfigError(f"the artifact key in {where} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"the artifact key in {where} is {len(key)} bytes; expected {KEY_BYTES} "
            "(base64 of 32 random bytes, e.g. `openssl rand -base64 32`)"
        )
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


@dataclass(frozen=True)
class Keyring:
    """The key new files are sealed under, and every key kept to read older files."""

    current: bytes
    older: tuple[bytes, ...] = ()
    source: str = "the keyring"
    """Where the keys come from, for messages."""

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    @property
    def by_id(self) -> dict[str, bytes]:
        keys = {key_id(key): key for key in self.older}
        keys[self.current_id] = self.current
        return keys


@dataclass(frozen=True)
class Header:
    """The parsed header of an encrypted file."""

    version: int
    segment_size: int
    key_id: str
    raw: bytes


def read_header(head: bytes, what: str) -> Header | None:
    """The header at the start of a file, or None when the file is not encrypted (plaintext);
    ``what`` names the file in errors."""
    if not head.startswith(MAGIC):
        return None
    if len(head) < HEADER_SIZE:
        raise DecryptionError(f"{what}: its encryption header is cut short")
    _, version, segment_size, kid, _ = _HEADER.unpack(head[:HEADER_SIZE])
    return Header(version, segment_size, kid.hex(), head[:HEADER_SIZE])


def no_key_error(handle: BinaryIO, what: str) -> IntegrityError:
    """The error for an encrypted file (``handle``, read from its start) that a process without
    any artifact key was asked to read; names the file (``what``) and the key it needs."""
    handle.seek(0)
    header = read_header(handle.read(HEADER_SIZE), what)
    needed = f"key {header.key_id}" if header is not None else "a key"
    return IntegrityError(
        f"{what} is encrypted (under {needed}), but no artifact key is configured: set "
        "MLSHIP_ENCRYPTION_KEY or restore the keyring (MLSHIP_ENCRYPTION_KEY_FILE)"
    )


def _associated(header: bytes, index: int, last: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


@dataclass
class ArtifactCipher:
    """Seals and opens artifact files under a keyring.

    ``reload`` re-reads the keyring when a file names a key this one lacks: a long-running server
    then reads files that a rotation moved to a new key after the server started.
    """

    keyring: Keyring
    reload: Callable[[], Keyring | None] | None = None
    segment_size: int = SEGMENT_SIZE
    _aeads: dict[str, AESGCM] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.segment_size <= _MAX_SEGMENT:
            raise ValueError(f"segment size must be in 1..{_MAX_SEGMENT}")

    @property
    def current_id(self) -> str:
        return self.keyring.current_id

    def encrypt(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The encrypted file of the plaintext ``chunks``, streamed: at most one segment (plus
        the chunk being consumed) is held at a time."""
        size = self.segment_size
        header = _HEADER.pack(MAGIC, VERSION, size, bytes.fromhex(self.current_id), os.urandom(16))
        aead = AESGCM(self.keyring.current)
        yield header
        index = 0
        buffer = bytearray()
        for chunk in chunks:
            buffer += chunk
            if len(buffer) <= size:
                continue
            # Seal only segments known not to be last: at least one byte must follow them.
            start = 0
            with memoryview(buffer) as view:
                while len(buffer) - start > size:
                    nonce = os.urandom(_NONCE)
                    sealed = aead.encrypt(
                        nonce, view[start : start + size], _associated(header, index, False)
                    )
                    yield nonce + sealed
                    start += size
                    index += 1
            del buffer[:start]
        nonce = os.urandom(_NONCE)
        yield nonce + aead.encrypt(nonce, bytes(buffer), _associated(header, index, True))

    def decrypt(self, handle: BinaryIO, what: str) -> Iterator[bytes]:
        """The plaintext of the encrypted file open in ``handle``, segment by segment, each
        returned only after its tag verifies; ``what`` names the file in errors."""
        header = read_header(handle.read(HEADER_SIZE), what)
        if header is None:
            raise DecryptionError(f"{what} is not an encrypted file")
        if header.version != VERSION:
            raise DecryptionError(
                f"{what} is in encryption format {header.version}; this mlship reads "
                f"format {VERSION} (a newer mlship wrote it?)"
            )
        if not 0 < header.segment_size <= _MAX_SEGMENT:
            raise DecryptionError(f"{what}: its header is corrupt (segment size)")
        aead = self._aead(header.key_id, what)
        record = header.segment_size + _OVERHEAD
        current = handle.read(record)
        index = 0
        while True:
            following = handle.read(record) if len(current) == record else b""
            last = not following
            if len(current) < _OVERHEAD:
                raise DecryptionError(
                    f"{what}: segment {index} is cut short (the file was truncated)"
                )
            try:
                plain = aead.decrypt(
                    current[:_NONCE], current[_NONCE:], _associated(header.raw, index, last)
                )
            except InvalidTag:
                raise DecryptionError(
                    f"{what}: authentication failed at segment {index} (key {header.key_id}): "
                    "the file was altered, truncated or its segments reordered"
                ) from None
            yield plain
            if last:
                return
            current = following
            index += 1

    def _aead(self, kid: str, what: str) -> AESGCM:
        if kid not in self._aeads:
            key = self.keyring.by_id.get(kid)
            if key is None and self.reload is not None:
                fresh = self.reload()
                if fresh is not None:
                    self.keyring = fresh
                    key = fresh.by_id.get(kid)
            if key is None:
                held = ", ".join(sorted(self.keyring.by_id))
                raise DecryptionError(
                    f"{what} is encrypted under key {kid}, which {self.keyring.source} does not "
                    f"hold (it holds {held}); restore the keyring that wrote it, or set "
                    "MLSHIP_ENCRYPTION_KEY to that key"
                )
            self._aeads[kid] = AESGCM(key)
        return self._aeads[kid]
