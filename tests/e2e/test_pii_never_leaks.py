"""Raw PII never leaves ingest: not in a file of the workspace, not on the terminal.

The churn example is run with its PII columns (``email``, pseudonymized by keyed hash, and
``full_name``, dropped) filled with made-up names and addresses that occur nowhere else, so any
copy of one, whatever file it lands in, is found by a plain byte search: in the metadata database
and its WAL, the artifact store, the reports and the captured output. Parquet may compress a
string out of sight, so every Parquet file is also decoded and its text read.
"""

from __future__ import annotations

import io
import sqlite3
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlship.config import Settings
from mlship.data.privacy import pseudonym
from mlship.examples.churn import write_project
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, run_cli

ROWS = 1000
KEY_A = "a-test-key-for-pseudonyms-0001-aaaaaaaa"
KEY_B = "a-test-key-for-pseudonyms-0002-bbbbbbbb"
MARK = "Qxzwarden"  # in every planted value; found in no word, file or library


@dataclass(frozen=True)
class Run:
    spec: Path
    home: Path
    output: str
    people: dict[str, tuple[str, str]]
    """customer_id -> (full name, email) as the CRM holds them."""

    @property
    def raw_values(self) -> list[str]:
        return sorted({value for pair in self.people.values() for value in pair})


def plant_people(database: Path) -> dict[str, tuple[str, str]]:
    """Give every CRM customer a name and e-mail address made for this test (repeated rows of
    the same customer keep theirs, so they stay duplicates)."""
    with sqlite3.connect(database) as connection:
        connection.execute(
            f"UPDATE customers SET full_name = 'Odalys {MARK} ' || customer_id, "
            f"email = 'odalys.{MARK.lower()}+' || lower(customer_id) || '@pii-canary.example'"
        )
        rows = connection.execute("SELECT customer_id, full_name, email FROM customers")
        people = {cid: (name, email) for cid, name, email in rows}
    connection.close()
    return people


def quick_models(spec: Path) -> None:
    """One candidate and two folds: the data path is the subject here, not model selection."""
    text = spec.read_text(encoding="utf-8")
    models = text[text.index("\nmodels:") : text.index("\nsplit:")]
    text = text.replace(models, "\nmodels:\n  - {name: logistic, estimator: logistic_regression}\n")
    spec.write_text(text.replace("folds: 5", "folds: 2"), encoding="utf-8")


@pytest.fixture(scope="module")
def churn_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``mlship run`` of the churn example with planted PII, in its own process."""
    root = tmp_path_factory.mktemp("pii")
    spec = write_project(root / "churn", n=ROWS)
    people = plant_people(spec.parent / "data" / "crm.sqlite")
    quick_models(spec)
    home = root / "home"
    result = run_cli("run", str(spec), home=home, env={"MLSHIP_PII_KEY": KEY_A})
    assert "Registered churn:1" in result.stdout
    return Run(spec, home, result.stdout + result.stderr, people)


def files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def leaks(data: bytes, values: Iterable[str]) -> list[str]:
    """The values found in ``data``, byte for byte or ignoring case."""
    folded = data.lower()
    return [value for value in values if value.encode() in data or value.lower().encode() in folded]


def stored_emails(home: Path) -> dict[str, str]:
    """customer_id -> email of the newest dataset in the workspace at ``home``."""
    workspace = Workspace.open(Settings(home=home))
    try:
        dataset = workspace.tracking.list_datasets(1)[0]
        frame = pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))
    finally:
        workspace.close()
    assert "full_name" not in frame.columns
    return dict(zip(frame["customer_id"], frame["email"], strict=True))


def test_the_search_finds_planted_values_where_they_are(churn_run: Run) -> None:
    """The search is able to fail: it finds every planted value in the CRM database itself."""
    database = (churn_run.spec.parent / "data" / "crm.sqlite").read_bytes()
    assert leaks(database, churn_run.raw_values) == churn_run.raw_values
    assert len(churn_run.raw_values) == 2 * ROWS


def test_no_raw_value_in_any_workspace_file_or_in_the_output(churn_run: Run) -> None:
    """Metadata, artifacts, reports and what the run printed: no name or address, in any case."""
    files = files_under(churn_run.home)
    names = {path.relative_to(churn_run.home).parts[0] for path in files}
    assert {"mlship.db", "artifacts", "reports"} <= names
    found = {
        str(path): hits
        for path in files
        if (hits := leaks(path.read_bytes(), churn_run.raw_values))
    }
    assert found == {}
    assert leaks(churn_run.output.encode(), churn_run.raw_values) == []
    assert MARK.lower() not in churn_run.output.lower()


def _strings(table: pa.Table) -> Iterable[str]:
    """Every text in a Parquet table: column names, schema metadata and string values."""
    yield from table.column_names
    for key, value in (table.schema.metadata or {}).items():
        yield key.decode(errors="replace")
        yield value.decode(errors="replace")
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            yield from (value for value in column.to_pylist() if value is not None)


def test_parquet_files_decoded_hold_no_raw_value(churn_run: Run) -> None:
    """Dataset, quarantine and exported quarantine, read as tables: pseudonyms only."""
    parquet = [path for path in files_under(churn_run.home) if path.read_bytes()[:4] == b"PAR1"]
    assert len(parquet) >= 3  # the dataset, the quarantine artifact and its readable copy
    marks = [MARK.lower(), "pii-canary"]
    for path in parquet:
        table = pq.read_table(path)
        assert "full_name" not in table.column_names, path
        texts = "\n".join(_strings(table)).lower()
        assert not [mark for mark in marks if mark in texts], path
        assert leaks(texts.encode(), churn_run.raw_values) == [], path


def test_pseudonyms_are_keyed_hashes_stable_per_key(churn_run: Run, tmp_path: Path) -> None:
    """The same key gives the same pseudonyms in any workspace; another key gives other ones."""
    emails = {cid: email for cid, (_, email) in churn_run.people.items()}
    first = stored_emails(churn_run.home)
    assert first == {cid: pseudonym(KEY_A.encode(), emails[cid]) for cid in first}
    assert len(set(first.values())) == len(first)

    spec = str(churn_run.spec)
    invoke_cli("data", "validate", spec, home=tmp_path / "a", env={"MLSHIP_PII_KEY": KEY_A})
    assert stored_emails(tmp_path / "a") == first
    invoke_cli("data", "validate", spec, home=tmp_path / "b", env={"MLSHIP_PII_KEY": KEY_B})
    second = stored_emails(tmp_path / "b")
    assert second.keys() == first.keys()
    assert not set(second.values()) & set(first.values())
    assert second == {cid: pseudonym(KEY_B.encode(), emails[cid]) for cid in second}


def test_the_key_is_kept_apart_from_the_data(churn_run: Run, tmp_path: Path) -> None:
    """A configured key is written nowhere; a generated one lives in its own owner-only file,
    outside the artifact store, and in no other file of the workspace."""
    assert not (churn_run.home / "keys" / "pii.key").exists()  # (the signing key lives there)
    for path in files_under(churn_run.home):
        assert KEY_A.encode() not in path.read_bytes(), path
    assert KEY_A not in churn_run.output

    home = tmp_path / "home"
    result = invoke_cli("data", "validate", str(churn_run.spec), home=home)
    settings = Settings(home=home)
    key_file = settings.pii_key_file_resolved
    assert key_file == home.resolve() / "keys" / "pii.key"
    assert not key_file.is_relative_to(settings.artifact_root_resolved)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes().strip()
    assert len(key) >= 32
    others = [path for path in files_under(home) if path.resolve() != key_file]
    assert others and not [path for path in others if key in path.read_bytes()]
    assert key.decode() not in result.stdout + result.stderr
    emails = stored_emails(home)
    assert emails == {cid: pseudonym(key, churn_run.people[cid][1]) for cid in emails}
