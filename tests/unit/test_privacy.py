"""Pseudonymization of PII columns: keyed, consistent, and the key stays out of the data."""

from __future__ import annotations

import stat
from pathlib import Path

import polars as pl
import pytest

from mlship.data.privacy import pseudonym, pseudonymize
from mlship.errors import ConfigError
from mlship.security.keys import load_or_create_key
from mlship.spec.data import Column

KEY = b"k" * 32
COLUMNS = [
    Column(name="email", type="string", role="pii"),
    Column(name="name", type="string", role="pii", pii="drop"),
    Column(name="age", type="integer"),
]


def test_pii_columns_are_hashed_or_dropped() -> None:
    frame = pl.DataFrame(
        {
            "email": ["a@x.com", "b@x.com", "a@x.com", None],
            "name": ["Ann", "Bob", "Ann", "Cy"],
            "age": [1, 2, 3, 4],
        }
    )
    out = pseudonymize(frame, COLUMNS, KEY)
    assert out.columns == ["email", "age"]
    hashed = out["email"].to_list()
    assert hashed[0] == hashed[2] != hashed[1]
    assert hashed[3] is None
    assert hashed[0] == pseudonym(KEY, "a@x.com")
    assert len(hashed[0]) == 32
    assert "a@x.com" not in str(out.to_dicts())


def test_another_key_gives_other_pseudonyms() -> None:
    assert pseudonym(KEY, "a@x.com") != pseudonym(b"j" * 32, "a@x.com")


def test_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pii.key"
    first = load_or_create_key(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(None, path) == first
    assert load_or_create_key("x" * 40, path) == b"x" * 40


def test_short_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pii.key"
    path.write_text("short")
    with pytest.raises(ConfigError, match="shorter than 32 characters"):
        load_or_create_key(None, path)


def test_short_configured_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_or_create_key("too-short", tmp_path / "unused.key")
