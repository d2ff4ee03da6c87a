"""The pieces of a backup on their own: the manifest reader against malformed and hostile input,
the retention rule, backup names, the SQLite snapshot of a database in WAL mode, and the
messages for a missing tool or a missing destination."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.backup import database
from mlship.backup.manifest import (
    ArtifactEntry,
    DatabaseSnapshot,
    KeysRecord,
    LogPartEntry,
    Manifest,
    Unreadable,
)
from mlship.backup.place import LocalPlace, check_name, locate
from mlship.backup.retention import chosen
from mlship.config import Settings
from mlship.errors import ConfigError, IntegrityError

SHA = "ab" * 32

MANIFEST = Manifest(
    format=1,
    name="20261206T203846Z",
    created="2026-12-06T20:38:46Z",
    mlship_version="0",
    source="database sqlite:///x; artifacts /x",
    signing_scheme="hmac-sha256",
    encrypted=False,
    database=DatabaseSnapshot("database.sqlite", "sqlite", SHA, 10),
    artifacts=(ArtifactEntry(SHA, 3, "hmac-sha256:00"),),
    logs=(LogPartEntry("predictions/batch", "part-1-h-1-000001.parquet", "cd" * 32, 5),),
    keys=KeysRecord(False, (), "apart"),
    unreadable=(Unreadable("ef" * 32, "corrupt"),),
    left_out=("reports",),
    copied=1,
)


def test_a_manifest_reads_back_as_written() -> None:
    assert Manifest.from_json(MANIFEST.to_json(), "m") == MANIFEST
    assert MANIFEST.addresses == {SHA, "cd" * 32}


def test_a_malformed_manifest_names_the_key() -> None:
    raw = json.loads(MANIFEST.to_json())
    raw["artifacts"][0]["size"] = "big"
    with pytest.raises(IntegrityError, match=r"artifacts\.0\.size"):
        Manifest.from_json(json.dumps(raw).encode(), "/b/manifest.json")
    raw["format"] = 9
    with pytest.raises(IntegrityError, match="format 9"):
        Manifest.from_json(json.dumps(raw).encode(), "/b/manifest.json")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(key=st.sampled_from(sorted(json.loads(MANIFEST.to_json()))), value=_JSON)
def test_a_manifest_with_any_value_changed_is_read_or_refused_cleanly(key: str, value: Any) -> None:
    raw = json.loads(MANIFEST.to_json())
    raw[key] = value
    try:
        Manifest.from_json(json.dumps(raw).encode(), "m")
    except IntegrityError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("the manifest m ")


@settings(derandomize=True, max_examples=100, deadline=None)
@given(data=st.binary(max_size=64) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_as_a_manifest_are_refused_cleanly(data: bytes) -> None:
    with pytest.raises(IntegrityError, match="the manifest m"):
        Manifest.from_json(data, "m")


def test_retention_keeps_the_newest_and_one_a_day() -> None:
    names = [
        "20260101T010000Z",
        "20260101T020000Z",
        "20260102T010000Z",
        "20260102T010000Z-2",
        "20260103T010000Z",
    ]
    assert chosen(names, 2, 0) == {"20260103T010000Z", "20260102T010000Z-2"}
    assert chosen(names, 1, 3) == {"20260103T010000Z", "20260102T010000Z-2", "20260101T020000Z"}
    assert chosen(names, 10, 0) == set(names)


@pytest.mark.parametrize("name", ["..", "../etc", "2026", "20261206T203846Z/x", "latest"])
def test_only_backup_names_reach_paths(name: str) -> None:
    with pytest.raises(ConfigError, match="not a backup's name"):
        check_name(name)


def test_a_backup_needs_a_destination(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MLSHIP_BACKUP_ROOT"):
        locate("20261206T203846Z", Settings(home=tmp_path))
    place, name = locate(f"{tmp_path}/20261206T203846Z", Settings(home=tmp_path))
    assert isinstance(place, LocalPlace) and place.root == tmp_path and name == "20261206T203846Z"


def test_a_missing_tool_is_named() -> None:
    with pytest.raises(ConfigError, match=r"pg_no_such_tool is not installed.*postgresql-client"):
        database.find_tool("pg_no_such_tool")


def test_the_sqlite_snapshot_holds_what_is_still_in_the_write_ahead_log(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    writer = sqlite3.connect(source)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # committed rows stay in the -wal file
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    writer.commit()
    copied_file = tmp_path / "copied.db"
    copied_file.write_bytes(source.read_bytes())  # what a plain file copy would keep

    snapshot = tmp_path / "snapshot.sqlite"
    assert database.snapshot(f"sqlite:///{source}", snapshot) == "sqlite"
    writer.close()
    assert database.problem("sqlite", snapshot) is None
    rows = sqlite3.connect(snapshot).execute("SELECT count(*) FROM t").fetchone()[0]
    assert rows == 500
    plain = sqlite3.connect(copied_file)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        plain.execute("SELECT count(*) FROM t").fetchone()
    plain.close()


def test_a_damaged_snapshot_is_reported(tmp_path: Path) -> None:
    damaged = tmp_path / "database.sqlite"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)
    assert database.problem("sqlite", damaged) is not None


def test_snapshots_taken_while_a_writer_commits_hold_whole_transactions(tmp_path: Path) -> None:
    source = tmp_path / "busy.db"
    setup = sqlite3.connect(source)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.commit()
    setup.close()
    stop = threading.Event()

    def write() -> None:  # every transaction adds two rows: a torn copy would hold an odd count
        writer = sqlite3.connect(source, timeout=30)
        while not stop.is_set():
            writer.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
            writer.commit()
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        counts = []
        for n in range(5):
            snapshot = tmp_path / f"snapshot-{n}.sqlite"
            database.snapshot(f"sqlite:///{source}", snapshot)
            assert database.problem("sqlite", snapshot) is None
            counts.append(sqlite3.connect(snapshot).execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        stop.set()
        thread.join()
    assert all(count % 2 == 0 for count in counts), counts
