"""SQL sources against real databases: a SQLite file and a throwaway PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from mlship.data import sources
from mlship.data.sources import read_source
from mlship.errors import DataError
from mlship.spec.data import Source

ROWS = 3500
START = datetime(2024, 1, 1, tzinfo=UTC)


def _customers() -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"customer {i}",
            "score": i / 8,
            "amount": Decimal(i) / 100,
            "joined": START + timedelta(hours=i),
            "active": i % 3 == 0,
            "note": None if i % 10 else f"100% loyal #{i}",
        }
        for i in range(ROWS)
    ]


def _fill(url: str) -> None:
    """Create and fill ``customers``; values travel as bound parameters."""
    metadata = sa.MetaData()
    table = sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("joined", sa.DateTime(timezone=True)),
        sa.Column("active", sa.Boolean),
        sa.Column("note", sa.Text),
    )
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(sa.insert(table), _customers())
    finally:
        engine.dispose()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "BATCH_ROWS", 1000)


@pytest.fixture(scope="module")
def pg_customers(postgres_url: str) -> Iterator[str]:
    _fill(postgres_url)
    yield postgres_url
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE customers"))
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> Path:
    _fill(f"sqlite:///{tmp_path / 'shop.db'}")
    return tmp_path


QUERY = "SELECT id, name, score, amount, joined, active, note FROM customers ORDER BY id"


def _password(url: str) -> str:
    password = sa.make_url(url).password
    assert password
    return str(password)


def _progress() -> tuple[list[tuple[int, int | None]], sources.ProgressHook]:
    calls: list[tuple[int, int | None]] = []
    return calls, lambda done, total: calls.append((done, total))


# -- SQLite ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_batches")
def test_sqlite_file_is_read_in_batches(sqlite_dir: Path) -> None:
    calls, hook = _progress()
    source = Source(name="shop", query=QUERY, url="sqlite:///shop.db")  # relative to the spec
    data = read_source(source, sqlite_dir, hook)
    frame = data.frame
    assert frame.height == ROWS
    assert frame["id"].to_list() == list(range(ROWS))
    assert frame["name"][7] == "customer 7"
    assert frame.schema["id"] == pl.Int64
    assert frame.schema["score"] == pl.Float64
    assert frame["note"].null_count() == ROWS - ROWS // 10
    assert calls == [(1000, None), (2000, None), (3000, None), (ROWS, None)]
    assert data.line_offset is None
    assert data.lineage == {
        "name": "shop",
        "kind": "query",
        "url": f"sqlite:///{sqlite_dir / 'shop.db'}",
        "query": QUERY,
        "format": "sql",
        "rows": ROWS,
    }


def test_sqlite_reading_never_writes(sqlite_dir: Path) -> None:
    url = f"sqlite:///{sqlite_dir / 'shop.db'}"
    with pytest.raises(DataError, match=r"the query returns no rows; expected a SELECT"):
        read_source(Source(query="DELETE FROM customers", url=url), sqlite_dir)
    count = read_source(Source(query="SELECT count(*) AS n FROM customers", url=url), sqlite_dir)
    assert count.frame["n"].to_list() == [ROWS]


def test_sqlite_syntax_error(sqlite_dir: Path) -> None:
    with pytest.raises(DataError) as info:
        read_source(
            Source(name="shop", query="SELEC id FROM customers", url="sqlite:///shop.db"),
            sqlite_dir,
        )
    message = str(info.value)
    assert message.startswith(f"shop (sqlite:///{sqlite_dir / 'shop.db'}): the query failed: ")
    assert 'near "SELEC": syntax error' in message


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_batches")
def test_postgres_rows_types_lineage_and_progress(pg_customers: str) -> None:
    calls, hook = _progress()
    data = read_source(Source(name="crm", query=QUERY, url=pg_customers), Path("/unused"), hook)
    frame = data.frame
    assert frame.height == ROWS
    assert frame.schema["id"] == pl.Int64
    assert frame.schema["name"] == pl.String
    assert frame.schema["score"] == pl.Float64
    assert isinstance(frame.schema["amount"], pl.Decimal)
    joined = frame.schema["joined"]
    assert isinstance(joined, pl.Datetime)
    assert joined.time_zone is not None  # the session's zone; the instants are compared below
    assert frame.schema["active"] == pl.Boolean
    assert frame.row(1234, named=True) == {
        "id": 1234,
        "name": "customer 1234",
        "score": 1234 / 8,
        "amount": Decimal("12.34"),
        "joined": START + timedelta(hours=1234),
        "active": False,
        "note": None,
    }
    assert frame["note"][1230] == "100% loyal #1230"
    assert calls == [(1000, None), (2000, None), (3000, None), (ROWS, None)]

    password = _password(pg_customers)
    assert password not in str(data.lineage)
    assert data.lineage["url"] == sa.make_url(pg_customers).render_as_string(hide_password=True)
    assert ":***@127.0.0.1:" in data.lineage["url"]
    assert data.lineage["kind"] == "query"
    assert data.lineage["rows"] == ROWS


def test_postgres_percent_signs_and_colons_reach_the_server_untouched(pg_customers: str) -> None:
    query = "SELECT id, note, '12:30'::text AS at FROM customers WHERE note LIKE '100%' ORDER BY id"
    data = read_source(Source(query=query, url=pg_customers), Path("/unused"))
    assert data.frame.height == ROWS // 10
    assert data.frame["at"].unique().to_list() == ["12:30"]


def test_postgres_empty_result_keeps_its_columns(pg_customers: str) -> None:
    data = read_source(
        Source(query="SELECT id, name FROM customers WHERE id < 0", url=pg_customers), Path("/")
    )
    assert data.frame.columns == ["id", "name"]
    assert data.frame.height == 0


def test_postgres_values_without_a_polars_type_become_text(pg_customers: str) -> None:
    query = "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS key, NULL::uuid AS none"
    data = read_source(Source(query=query, url=pg_customers), Path("/unused"))
    assert data.frame.schema == pl.Schema({"key": pl.String, "none": pl.Null})
    assert data.frame["key"].to_list() == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]


def test_postgres_syntax_error_is_the_servers_message_with_the_password_masked(
    pg_customers: str,
) -> None:
    with pytest.raises(DataError) as info:
        read_source(
            Source(name="crm", query="SELECT id\nFROM customers\nWHER id = 1", url=pg_customers),
            Path("/unused"),
        )
    message = str(info.value)
    shown = sa.make_url(pg_customers).render_as_string(hide_password=True)
    assert message.startswith(f"crm ({shown}): the query failed: ")
    assert 'syntax error at or near "id"' in message
    assert "(line 3 of the query)" in message
    assert _password(pg_customers) not in message


def test_postgres_unknown_table(pg_customers: str) -> None:
    with pytest.raises(DataError, match=r'relation "nope" does not exist'):
        read_source(Source(query="SELECT * FROM nope", url=pg_customers), Path("/unused"))


def test_postgres_password_from_the_environment(
    pg_customers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = _password(pg_customers)
    monkeypatch.setenv("MLSHIP_TEST_PG_PASSWORD", password)
    url = pg_customers.replace(f":{password}@", ":${MLSHIP_TEST_PG_PASSWORD}@")
    assert password not in url
    data = read_source(Source(query="SELECT count(*) AS n FROM customers", url=url), Path("/"))
    assert data.frame["n"].to_list() == [ROWS]
    assert password not in str(data.lineage)


def test_postgres_wrong_password(pg_customers: str) -> None:
    wrong = pg_customers.replace(f":{_password(pg_customers)}@", ":not-the-password@")
    with pytest.raises(DataError) as info:
        read_source(Source(name="crm", query="SELECT 1", url=wrong), Path("/unused"))
    message = str(info.value)
    assert "cannot connect to the database" in message
    assert "password authentication failed" in message
    assert "not-the-password" not in message


def test_postgres_unreachable_port(pg_customers: str) -> None:
    url = sa.make_url(pg_customers).set(port=1).render_as_string(hide_password=False)
    with pytest.raises(DataError) as info:
        read_source(Source(name="crm", query="SELECT 1", url=url), Path("/unused"))
    message = str(info.value)
    assert message.startswith("crm (postgresql+psycopg://mlship:***@127.0.0.1:1/mlship_test): ")
    assert "cannot connect to the database" in message
    assert _password(pg_customers) not in message
