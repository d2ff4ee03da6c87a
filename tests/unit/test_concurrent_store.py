"""The metadata store and the key files under concurrent use: transactions that read then write
wait for each other instead of failing, migrations of a new database run once (SQLite and
PostgreSQL), and a key file is used as found, never half written and never replaced."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect

from mlship.errors import ConfigError
from mlship.security.keys import LOCK_FILE, create_once, load_or_create_key
from mlship.store.db import current_revision, head_revision, make_engine, upgrade
from mlship.store.metadata import MetadataStore
from tests.services import create_database

THREADS = 8


def together(work: Callable[[int], Any], n: int = THREADS) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released at once; the results, or the errors raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_racing_writers_of_one_sqlite_file_wait_instead_of_failing(tmp_path: Path) -> None:
    """Each thread has its own engine, as separate processes would: all ask for the dataset of
    one content hash (a read, then an insert) and register a version of one model."""
    url = f"sqlite:///{tmp_path / 'mlship.db'}"
    upgrade(make_engine(url))
    stores = [MetadataStore(make_engine(url)) for _ in range(THREADS)]

    def work(i: int) -> tuple[int, bool]:
        dataset, created = stores[i].get_or_add_dataset(
            data_hash="d" * 64, artifact_sha256="a" * 64, n_rows=1, columns=[], sources=[]
        )
        stores[i].remember_ingest("inputs", dataset.id)
        return dataset.id, created

    results = together(work)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({dataset_id for dataset_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    for store in stores:
        store.engine.dispose()


def _migrate_together(url: str) -> None:
    engines = [make_engine(url) for _ in range(THREADS)]
    results = together(lambda i: upgrade(engines[i]))
    assert [r for r in results if isinstance(r, Exception)] == []
    assert current_revision(engines[0]) == head_revision(engines[0])
    assert "datasets" in inspect(engines[0]).get_table_names()
    for engine in engines:
        engine.dispose()


def test_a_new_sqlite_database_is_migrated_once_by_racing_openers(tmp_path: Path) -> None:
    _migrate_together(f"sqlite:///{tmp_path / 'mlship.db'}")


def test_a_new_postgresql_database_is_migrated_once_by_racing_openers(postgres_url: str) -> None:
    _migrate_together(create_database(postgres_url, "mlship_racing_migrations"))


def test_racing_creators_of_a_key_all_get_the_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "signing.key"
    keys = together(lambda _: load_or_create_key(None, key_file, what="signing key"), n=16)
    assert [k for k in keys if isinstance(k, Exception)] == []
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert sorted(p.name for p in key_file.parent.iterdir()) == [LOCK_FILE, "signing.key"]


@settings(derandomize=True, max_examples=50, deadline=None)
@given(content=st.binary(max_size=80))
def test_a_key_file_found_is_used_as_it_is_or_refused_by_name(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    """Whatever a key file holds, it is never replaced: a long enough key is used as found, a
    short one is refused naming the file."""
    key_file = tmp_path_factory.mktemp("keys") / "pii.key"
    key_file.write_bytes(content)
    if len(content.strip()) >= 32:
        assert load_or_create_key(None, key_file) == content.strip()
    else:
        with pytest.raises(ConfigError, match=f"in {key_file} is shorter than 32 characters"):
            load_or_create_key(None, key_file)
    assert key_file.read_bytes() == content
    assert create_once(key_file, lambda: b"another key", "set MLSHIP_PII_KEY") == content
