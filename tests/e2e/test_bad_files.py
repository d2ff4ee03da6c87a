"""Broken inputs through ``mlship data validate``: one clear message, and nothing half-written.

Whatever is wrong with a source, the user gets exit code 1 and a message without a traceback that
names the source, its file or database, and the line and column where there is one. A failed
ingest records no dataset, stores no artifact and leaves no temporary file behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import CliResult, invoke_cli, run_cli

SPEC = """\
name: people
task: classification
sources:
  - name: people
    SOURCE
  - name: scores
    path: scores.csv
combine:
  method: join
  base: people
  joins:
    - {source: scores, on: [id], how: left}
columns:
  - {name: id, type: string, role: id, nullable: false}
  - {name: name, type: string}
  - {name: age, type: integer}
  - {name: score, type: float}
  - {name: churned, type: category, role: target, nullable: false}
checks:
  max_quarantine: 0.1
models:
  - {estimator: logistic_regression}
metric: accuracy
"""
HEADER = "id,name,age,churned"
ROWS = 20


def people_csv(ages: dict[int, str] | None = None) -> str:
    """``ROWS`` people; ``ages`` replaces the age of some rows (0-based) with other text."""
    lines = [HEADER]
    for i in range(ROWS):
        age = (ages or {}).get(i, str(30 + i))
        lines.append(f"{i},Person {i},{age},{'yes' if i % 2 else 'no'}")
    return "\n".join(lines) + "\n"


def write_project(root: Path, source: str, people: str | bytes | None) -> Path:
    """A spec whose ``people`` source is ``source`` (YAML), beside a good ``scores.csv``."""
    root.mkdir(parents=True, exist_ok=True)
    scores = "\n".join(["id,score", *(f"{i},{i / 10}" for i in range(ROWS))]) + "\n"
    (root / "scores.csv").write_text(scores, encoding="utf-8")
    if isinstance(people, str):
        (root / "people.csv").write_text(people, encoding="utf-8")
    elif people is not None:
        (root / "people.csv").write_bytes(people)
    spec = root / "pipeline.yaml"
    spec.write_text(SPEC.replace("SOURCE", source), encoding="utf-8")
    return spec


def assert_nothing_recorded(home: Path) -> None:
    """No dataset or ingest-cache row, no stored artifact, no temporary file."""
    workspace = Workspace.open(Settings(home=home))
    try:
        assert workspace.tracking.list_datasets() == []
        with workspace.metadata.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ingest_cache")).scalar_one() == 0
    finally:
        workspace.close()
    objects = home / "artifacts" / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))
    assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")]


def assert_clear_failure(result: CliResult, where: str, *details: str) -> str:
    """Exit code 1, one ``error:`` message on stderr that starts at the broken source."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert message.startswith(f"error: {where}: "), message
    for detail in details:
        assert detail in message, message
    assert "scores" not in message  # the good source is not blamed
    return message


@dataclass(frozen=True)
class BadFile:
    content: bytes | None
    details: tuple[str, ...]


BAD_FILES = {
    "truncated inside a quoted value": BadFile(
        (people_csv() + '20,"Person').encode(),
        ("line 22, column 'name':", "never closed", "truncated"),
    ),
    "truncated last row": BadFile(
        (people_csv() + "20,Person 20").encode(),
        (
            "line 22 has 2 field(s), but the header has 4",
            "no value for column(s) 'age', 'churned'",
            "truncated",
        ),
    ),
    "latin-1 bytes in a UTF-8 file": BadFile(
        people_csv().replace("Person 4,", "Müller,").encode("cp1252"),
        ("line 6, column 'name' is not valid UTF-8 (byte 0xfc", "encoding: cp1252"),
    ),
    "empty file": BadFile(b"", ("the file is empty (0 bytes), so it has no rows",)),
    "header only": BadFile(f"{HEADER}\n".encode(), ("the file has a header but no data rows",)),
    "missing file": BadFile(None, ("the file does not exist",)),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_file_is_refused_with_its_location(case: str, tmp_path: Path) -> None:
    """A broken export must be pointed at precisely enough to fix it without a debugger."""
    bad = BAD_FILES[case]
    spec = write_project(tmp_path / "project", "path: people.csv", bad.content)
    home = tmp_path / "home"
    result = invoke_cli("data", "validate", str(spec), home=home, check=False)
    assert_clear_failure(result, f"people ({spec.parent / 'people.csv'})", *bad.details)
    assert_nothing_recorded(home)


def test_unknown_url_scheme_with_credentials(tmp_path: Path) -> None:
    """A location fsspec has no filesystem for is refused like a missing file, password masked."""
    url = "nosuch://reader:s3cret-pw@host/people.csv"
    spec = write_project(tmp_path / "project", f"path: {url}", None)
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", check=False)
    message = assert_clear_failure(
        result, "people (nosuch://reader:***@host/people.csv)", "cannot open this location"
    )
    assert "s3cret-pw" not in message
    assert_nothing_recorded(tmp_path / "home")


def test_sources_that_join_on_nothing(tmp_path: Path) -> None:
    """Both files have rows but no key in common: an empty dataset is refused, not stored."""
    spec = write_project(tmp_path / "project", "path: people.csv", people_csv())
    spec.write_text(spec.read_text().replace("how: left", "how: inner"), encoding="utf-8")
    scores = "\n".join(["id,score", *(f"x{i},{i / 10}" for i in range(ROWS))]) + "\n"
    (spec.parent / "scores.csv").write_text(scores, encoding="utf-8")
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert message == (
        "error: the sources have rows (people 20, scores 20), but combining them (join) leaves "
        "none; check the keys the sources are joined on"
    )
    assert_nothing_recorded(tmp_path / "home")


def test_a_process_of_its_own_prints_the_same_message(tmp_path: Path) -> None:
    """The command in a fresh interpreter, not just its entry point: same words, exit code 1."""
    spec = write_project(tmp_path / "project", "path: people.csv", people_csv() + "20,Person 20")
    home = tmp_path / "home"
    result = run_cli("data", "validate", str(spec), home=home, check=False)
    expected = invoke_cli("data", "validate", str(spec), home=tmp_path / "other", check=False)
    assert result.returncode == expected.returncode == 1
    assert "Traceback" not in result.stderr
    assert " ".join(result.stderr.split()) == " ".join(expected.stderr.split())
    assert_nothing_recorded(home)


# -- a column of the wrong type ----------------------------------------------------------------


def test_text_in_an_integer_column_is_quarantined_with_row_and_column(tmp_path: Path) -> None:
    """One bad value in twenty rows is within max_quarantine (10%): the run succeeds, the row is
    set aside with a reason that names its line and column, and the rest is stored."""
    spec = write_project(tmp_path / "project", "path: people.csv", people_csv({3: "forty"}))
    home = tmp_path / "home"
    result = invoke_cli("data", "validate", str(spec), home=home)
    assert "Validation: 20 rows in, 19 kept, 1 quarantined (5.0%, allowed 10.0%)" in result.stdout
    assert "people line 5: age: 'forty' is not an integer" in result.stdout
    quarantine = pl.read_parquet(home / "reports" / "people-quarantine.parquet")
    assert quarantine.select("id", "_source", "_row", "_reasons").rows() == [
        ("3", "people", "line 5", "people line 5: age: 'forty' is not an integer (id=3)")
    ]
    workspace = Workspace.open(Settings(home=home))
    try:
        [dataset] = workspace.tracking.list_datasets()
    finally:
        workspace.close()
    assert (dataset.n_rows, dataset.n_quarantined) == (19, 1)


def test_too_many_values_of_the_wrong_type_fail_the_run(tmp_path: Path) -> None:
    """Three bad ages in twenty rows (15%) exceed max_quarantine: exit 1, the examples name line
    and column, the source's file is named, and no dataset is recorded; the report and the
    quarantined rows stay for diagnosis. ``n/a`` and ``?`` in the nullable age column are common
    missing-value markers: they are read as missing with a warning, not quarantined."""
    ages = {3: "forty", 6: "n/a", 9: "?", 12: "thirty-one", 15: "1e400"}
    spec = write_project(tmp_path / "project", "path: people.csv", people_csv(ages))
    home = tmp_path / "home"
    result = invoke_cli("data", "validate", str(spec), home=home, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert message.startswith("error: data validation failed: ")
    assert "3 of 20 rows (15.0%) failed error checks, more than the allowed 10.0%" in message
    assert "people line 5: age: 'forty' is not an integer" in message
    assert f"people ({spec.parent / 'people.csv'})" in message
    reports = home / "reports"
    assert f"report: {reports / 'people-data.html'}" in message
    quarantine = pl.read_parquet(reports / "people-quarantine.parquet")
    assert sorted(quarantine["_row"]) == sorted(f"line {i + 2}" for i in (3, 12, 15))
    assert_nothing_recorded(home)


# -- SQL sources -------------------------------------------------------------------------------


def _sqlite_with_other_table(path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id TEXT)"))
    engine.dispose()


def _sql_source(url: str, query: str = "SELECT * FROM people") -> str:
    return f'url: "{url}"\n    query: {query}'


def test_sqlite_table_that_does_not_exist(tmp_path: Path) -> None:
    """The database's own words, after the source and the file it reads."""
    root = tmp_path / "project"
    root.mkdir()
    _sqlite_with_other_table(root / "crm.sqlite")
    spec = write_project(root, _sql_source("sqlite:///crm.sqlite"), None)
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", check=False)
    assert_clear_failure(
        result,
        f"people (sqlite:///{root / 'crm.sqlite'})",
        "the query failed: no such table: people",
    )
    assert_nothing_recorded(tmp_path / "home")


def test_sqlite_file_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    """Reading never writes: a mistyped database path must not leave an empty database behind."""
    root = tmp_path / "project"
    spec = write_project(root, _sql_source("sqlite:///crm.sqlite"), None)
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", check=False)
    missing = root / "crm.sqlite"
    assert_clear_failure(
        result, f"people (sqlite:///{missing})", "the database file does not exist"
    )
    assert not missing.exists()
    assert_nothing_recorded(tmp_path / "home")


def test_database_url_that_is_not_a_url(tmp_path: Path) -> None:
    """A typo in the URL is reported as such, with an example of the expected form."""
    spec = write_project(tmp_path / "project", _sql_source("postgres//localhost/crm"), None)
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", check=False)
    assert_clear_failure(
        result, "people (postgres//localhost/crm)", "is not a valid SQLAlchemy URL"
    )
    assert_nothing_recorded(tmp_path / "home")


def test_database_that_does_not_answer(tmp_path: Path) -> None:
    """Nothing listens on port 1; the message says so and keeps the password out."""
    url = "postgresql+psycopg://crm:s3cret-pw@127.0.0.1:1/crm"
    spec = write_project(tmp_path / "project", _sql_source(url), None)
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", check=False)
    message = assert_clear_failure(
        result,
        "people (postgresql+psycopg://crm:***@127.0.0.1:1/crm)",
        "cannot connect to the database",
    )
    assert "s3cret-pw" not in message
    assert_nothing_recorded(tmp_path / "home")


def test_postgresql_table_that_does_not_exist(postgres_url: str, tmp_path: Path) -> None:
    """A real server's error, located in the query, with the password from the environment
    masked in the URL the message names."""
    spec = write_project(
        tmp_path / "project",
        _sql_source("${PG_TEST_URL}", "SELECT id, name FROM no_such_table"),
        None,
    )
    env = {"PG_TEST_URL": postgres_url}
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", env=env, check=False)
    shown = sa.make_url(postgres_url).render_as_string(hide_password=True)
    message = assert_clear_failure(
        result, f"people ({shown})", 'the query failed: relation "no_such_table" does not exist'
    )
    assert re.search(r"\(line 1 of the query\)", message)
    assert str(sa.make_url(postgres_url).password) not in message
    assert_nothing_recorded(tmp_path / "home")
