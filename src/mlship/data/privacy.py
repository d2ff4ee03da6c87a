"""Pseudonymize PII at ingest, before any value can reach a log, a report or an artifact.

Columns with role ``pii`` are replaced by a keyed HMAC-SHA256 of their value (the same input and key
always give the same pseudonym, so the column still joins and counts distinct people) or dropped.
The key comes from settings and is never written next to the data: without it, pseudonyms cannot
be recomputed from guessed values.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from mlship.errors import ConfigError
from mlship.spec.data import Column

PSEUDONYM_CHARS = 32


def pseudonym(key: bytes, value: str) -> str:
    """The pseudonym of one value (hex of a truncated HMAC-SHA256, 128 bits)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def pseudonymize(frame: pl.DataFrame, columns: Sequence[Column], key: bytes) -> pl.DataFrame:
    """Hash or drop every ``pii`` column of ``frame``; other columns are untouched.

    Each distinct value is hashed once, so a column of a million rows with many repeats costs as
    many HMACs as it has distinct values.
    """
    pii = [c for c in columns if c.role == "pii" and c.name in frame.columns]
    drop = [c.name for c in pii if c.pii == "drop"]
    frame = frame.drop(drop)
    for column in (c for c in pii if c.pii == "hash"):
        text = frame[column.name].cast(pl.String)
        distinct = text.drop_nulls().unique()
        mapping = {value: pseudonym(key, value) for value in distinct.to_list()}
        hashed = text.replace_strict(
            list(mapping), list(mapping.values()), default=None, return_dtype=pl.String
        )
        frame = frame.with_columns(hashed.alias(column.name))
    return frame


def load_or_create_key(configured: str | None, key_file: Path) -> bytes:
    """The pseudonymization key: from settings, else from ``key_file`` (created on first use).

    A created key file is readable by its owner only. Losing it changes every pseudonym, so the
    message that announces it says to back it up.
    """
    if configured:
        if len(configured) < 32:
            raise ConfigError("the PII key (MLSHIP_PII_KEY) must be at least 32 characters")
        return configured.encode("utf-8")
    try:
        data = key_file.read_bytes().strip()
    except FileNotFoundError:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(32).encode())
        data = key_file.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the PII key file {key_file}: {exc}") from None
    if len(data) < 32:
        raise ConfigError(f"the PII key in {key_file} is shorter than 32 characters")
    return data
