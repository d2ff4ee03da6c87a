"""Pseudonymize PII at ingest, before any value can reach a log, a report or an artifact.

Columns with role ``pii`` are replaced by a keyed HMAC-SHA256 of their value (the same input and key
always give the same pseudonym, so the column still joins and counts distinct people) or dropped.
The key comes from settings and is never written next to the data: without it, pseudonyms cannot
be recomputed from guessed values.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import polars as pl

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
