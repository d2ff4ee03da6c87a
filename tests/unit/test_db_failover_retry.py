"""Which database errors are worth another attempt, decided on errors a real server raised.

The errors come from a replicated PostgreSQL (a write on the standby, a connection an
administrator terminated, a port nothing listens on, a wrong password, ...), because the
decision reads the driver's SQLSTATEs and messages, which a hand-made exception would only
imitate. Also: database URLs that list several servers, and the watcher's refusals.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DBAPIError

from mlship.config import load_settings
from mlship.dburl import sqlalchemy_url
from mlship.errors import ConfigError
from mlship.store.db import make_engine
from mlship.store.failover import FailoverError, Watcher, check, promote
from mlship.store.metadata import MetadataStore
from mlship.store.retry import (
    CommitInDoubt,
    DatabaseUnavailable,
    RetryPolicy,
    is_transient,
    run_retrying,
)
from tests.conftest import invoke_cli
from tests.postgres_replica import ReplicatedPostgres, replicated_postgres
from tests.serving import free_port

QUICK = RetryPolicy(seconds=30, attempts=4, first_delay=0.001, max_delay=0.002)


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicatedPostgres]:
    with replicated_postgres() as servers:
        engine = sa.create_engine(servers.primary_url, poolclass=sa.NullPool)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE things (id int PRIMARY KEY)"))
        engine.dispose()
        yield servers


def _raised(url: str, work: Callable[[sa.Connection], object]) -> DBAPIError:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            work(connection)
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the work did not fail")


def _run(sql: str) -> Callable[[sa.Connection], object]:
    return lambda connection: connection.execute(sa.text(sql))


def _terminated(pair: ReplicatedPostgres) -> DBAPIError:
    """Our connection ended by ``pg_terminate_backend``, as a fast shutdown ends them all."""
    admin = sa.create_engine(pair.primary_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def work(connection: sa.Connection) -> None:
        pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.execute(sa.text("SELECT 1"))

    try:
        return _raised(pair.primary_url, work)
    finally:
        admin.dispose()


def test_errors_that_say_the_server_went_away_are_transient(pair: ReplicatedPostgres) -> None:
    dead = free_port()
    read_only = _raised(pair.standby_url, _run("INSERT INTO things VALUES (1)"))
    assert getattr(read_only.orig, "sqlstate", None) == "25006"
    refused = _raised(pair.url(dead), _run("SELECT 1"))
    no_primary_yet = _raised(
        f"postgresql+psycopg://mlship:{pair.password}@127.0.0.1:{dead},127.0.0.1:"
        f"{pair.standby_port}/mlship_test?target_session_attrs=read-write",
        _run("SELECT 1"),
    )
    assert "read-only" in str(no_primary_yet.orig) and "refused" in str(no_primary_yet.orig)
    for exc in (read_only, _terminated(pair), refused, no_primary_yet):
        assert is_transient(exc), exc


def test_errors_that_will_repeat_are_not_transient(pair: ReplicatedPostgres) -> None:
    wrong_password = pair.primary_url.replace(pair.password, "not-the-password")
    sqlite_error = _raised(f"sqlite:///{pair.primary.base}/x.db", _run("SELECT * FROM missing"))
    assert isinstance(sqlite_error.orig, sqlite3.OperationalError)
    errors = [
        _raised(wrong_password, _run("SELECT 1")),
        _raised(pair.url(pair.primary_port, "no_such_db"), _run("SELECT 1")),
        _raised(
            pair.primary_url, _run("INSERT INTO things VALUES (7); INSERT INTO things VALUES (7)")
        ),
        _raised(pair.primary_url, _run("SELEC 1")),
        _raised(pair.primary_url, _run("SELECT 1/0")),
        sqlite_error,
    ]
    for exc in errors:
        assert not is_transient(exc), exc
    assert "password authentication failed" in str(errors[0].orig)


def test_work_runs_again_after_transient_errors_and_not_after_others(
    pair: ReplicatedPostgres,
) -> None:
    read_only = _raised(pair.standby_url, _run("INSERT INTO things VALUES (1)"))
    typo = _raised(pair.primary_url, _run("SELEC 1"))
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise read_only
        return "done"

    assert run_retrying(flaky, policy=QUICK, database="db", idempotent=False) == "done"
    assert len(calls) == 3

    calls.clear()

    def broken() -> str:
        calls.append(1)
        raise typo

    with pytest.raises(DBAPIError):
        run_retrying(broken, policy=QUICK, database="db", idempotent=True)
    assert len(calls) == 1


def test_retries_are_bounded_and_end_with_a_message_naming_the_database(
    pair: ReplicatedPostgres,
) -> None:
    refused = _raised(pair.url(free_port()), _run("SELECT 1"))
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise refused

    with pytest.raises(DatabaseUnavailable) as caught:
        run_retrying(down, policy=QUICK, database="postgresql://u:***@h1", idempotent=True)
    assert len(calls) == QUICK.attempts
    message = str(caught.value)
    assert "postgresql://u:***@h1" in message and "4 attempt(s)" in message
    assert "Connection refused" in message and "MLSHIP_DATABASE_RETRY_SECONDS" in message

    calls.clear()
    with pytest.raises(DatabaseUnavailable):
        run_retrying(down, policy=RetryPolicy(seconds=0), database="db", idempotent=True)
    assert len(calls) == 1


def test_a_commit_whose_connection_broke_is_in_doubt(pair: ReplicatedPostgres) -> None:
    """The server ends the connection just before the commit: the store cannot know whether the
    change was kept, says so, and only idempotent work runs again."""
    engine = make_engine(pair.primary_url)
    admin = sa.create_engine(pair.primary_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    store = MetadataStore(engine)
    try:

        def write_and_lose_the_connection() -> None:
            with store.transaction() as session:
                session.execute(sa.text("INSERT INTO things VALUES (100)"))
                pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                with admin.connect() as other:
                    other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        with pytest.raises(CommitInDoubt) as caught:
            write_and_lose_the_connection()
        assert "may or may not have been saved" in str(caught.value)
        assert "***" in str(caught.value) and pair.password not in str(caught.value)

        calls: list[int] = []

        def in_doubt() -> None:
            calls.append(1)
            raise caught.value

        with pytest.raises(CommitInDoubt):
            run_retrying(in_doubt, policy=QUICK, database="db", idempotent=False)
        assert len(calls) == 1
        with pytest.raises(DatabaseUnavailable):
            run_retrying(in_doubt, policy=QUICK, database="db", idempotent=True)
        assert len(calls) == 1 + QUICK.attempts
        with engine.connect() as connection:  # the pool was refreshed: the next one works
            assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        admin.dispose()


def test_work_no_retry_covers_says_that_nothing_was_saved(pair: ReplicatedPostgres) -> None:
    """A repository that calls ``transaction()`` itself (the registry, users, alerts) gets a
    sentence, not the driver's error, when the connection goes before the commit."""
    engine = make_engine(pair.primary_url)
    admin = sa.create_engine(pair.primary_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    store = MetadataStore(engine)

    def lose_the_connection_then_write() -> None:
        with store.transaction() as session:
            pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            session.execute(sa.text("INSERT INTO things VALUES (200)"))

    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            lose_the_connection_then_write()
        message = str(caught.value)
        assert "was lost before the change was committed" in message
        assert "terminating connection due to administrator command" in message
        assert "nothing was saved" in message and pair.password not in message
        with engine.connect() as connection:
            found = connection.execute(sa.text("SELECT count(*) FROM things WHERE id = 200"))
            assert found.scalar_one() == 0
    finally:
        engine.dispose()
        admin.dispose()


def test_the_watcher_checks_and_refuses_to_promote_a_primary(
    pair: ReplicatedPostgres, tmp_path: Path
) -> None:
    assert check(pair.primary_url, 2).writable
    standby = check(pair.standby_url, 2)
    assert not standby.writable and "in recovery" in standby.detail
    gone = check(pair.url(free_port()), 2)
    assert not gone.writable and "Connection refused" in gone.detail
    with pytest.raises(FailoverError, match="not in recovery: it is a primary already"):
        promote(pair.primary_url, 2)

    lines: list[str] = []
    healthy = Watcher(pair.primary_url, pair.standby_url, interval=0.01, log=lines.append)
    assert healthy.run(rounds=3) is False
    assert len(lines) == 1 and "watching the primary" in lines[0]
    assert pair.password not in lines[0]

    # Roles swapped by an earlier failover, the old arguments kept: the watcher stops.
    result = invoke_cli(
        "db", "failover-watch", "--primary", pair.url(free_port()), "--standby",
        pair.primary_url, "--failures", "2", "--interval", "0.05",
        home=tmp_path / "home", check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "check 2/2 of the primary failed" in result.stderr
    assert "error: the standby" in result.stderr and "is not in recovery" in result.stderr
    assert pair.password not in result.stderr
    assert check(pair.standby_url, 2).detail.endswith("it takes no writes")


def test_urls_listing_servers_become_sqlalchemy_urls() -> None:
    url = (
        "postgresql+psycopg://u:p%40ss@db1:5432,db2,db3:6543/mlship?target_session_attrs=read-write"
    )
    converted = sqlalchemy_url(url)
    assert converted == (
        "postgresql+psycopg://u:p%40ss@/mlship?host=db1:5432&host=db2&host=db3:6543"
        "&target_session_attrs=read-write"
    )
    engine = make_engine(url)
    _, params = engine.dialect.create_connect_args(engine.url)
    assert params["host"] == "db1,db2,db3" and params["port"] == "5432,,6543"
    assert params["password"] == "p@ss" and params["target_session_attrs"] == "read-write"
    engine.dispose()
    single = "postgresql+psycopg://u@db1:5432/mlship"
    assert sqlalchemy_url(single) == single


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://u@db1:5432,db2:x/m",
            "server 2 of 'db1:5432,db2:x' has the port 'x'",
        ),
        ("postgresql+psycopg://u@db1:5432,,db2/m", "server 2 of 'db1:5432,,db2' is empty"),
        ("postgresql+psycopg://u@db1,db2:0/m", "has the port '0'; expected a number"),
        ("postgresql+psycopg://u@db1,[::1]:5432/m", "is an IPv6 address"),
        ("postgresql+psycopg://u@db1,db2/m?host=db3", "lists its servers twice"),
        ("postgresql+psycopg://u@db 1,db2/m", "has the host name 'db 1'"),
    ],
)
def test_a_server_list_that_cannot_work_is_refused_in_the_settings(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(database_url=url)
    assert "database_url" in str(caught.value) and expected in str(caught.value)


_hosts = st.lists(
    st.tuples(
        st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
        st.none() | st.integers(min_value=1, max_value=65535),
    ),
    min_size=2,
    max_size=4,
)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(hosts=_hosts, query=st.sampled_from(["", "?target_session_attrs=read-write"]))
def test_every_listed_server_reaches_the_driver_in_order(
    hosts: list[tuple[str, int | None]], query: str
) -> None:
    listed = ",".join(host if port is None else f"{host}:{port}" for host, port in hosts)
    engine = make_engine(f"postgresql+psycopg://u:pw@{listed}/mlship{query}")
    _, params = engine.dialect.create_connect_args(engine.url)
    engine.dispose()
    assert params["host"].split(",") == [host for host, _ in hosts]
    ports = params.get("port", ",".join("" for _ in hosts)).split(",")
    assert ports == ["" if port is None else str(port) for _, port in hosts]
    assert params["dbname"] == "mlship"


@settings(derandomize=True, max_examples=200, deadline=None)
@given(url=st.text(max_size=60) | st.builds("postgresql://{}".format, st.text(max_size=40)))
def test_any_text_is_converted_or_refused_with_a_reason(url: str) -> None:
    reason = ""
    try:
        converted = sqlalchemy_url(url)
    except ValueError as exc:
        converted, reason = None, str(exc)
    if converted is None:
        assert reason.startswith(("server ", "the URL lists"))
    else:
        assert converted == url or "?host=" in converted
