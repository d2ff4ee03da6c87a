"""``mlship data validate|list|show|diff|profile`` end to end, on files and on real databases.

A small multi-source project (a CSV export joined with JSON lines) with a few broken rows goes
through the commands a user types; what they print and the files they write are checked against
the data itself: every input row is either kept or quarantined with a reason, never lost.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from mlship import __version__
from mlship.config import Settings
from mlship.data.ingest import ingest
from mlship.spec import load_spec
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, run_cli

CUSTOMERS = 40
SPEC = """\
name: accounts
task: classification
sources:
  - name: customers
    path: data/customers.csv
  - name: usage
    path: data/usage.jsonl
combine:
  method: join
  base: customers
  joins:
    - {source: usage, on: [customer_id], how: left}
columns:
  - {name: customer_id, type: string, role: id, nullable: false}
  - {name: age, type: AGE_TYPE, checks: [{min: 18, max: 110}]}
  - {name: plan, type: category, nullable: false, checks: [{allowed: [basic, pro]}]}
  - {name: minutes, type: float, checks: [{min: 0}]}
EXTRA_COLUMNS  - {name: churned, type: category, role: target, nullable: false}
checks:
  duplicates: quarantine
  max_quarantine: 0.2
models:
  - {estimator: logistic_regression}
metric: accuracy
"""
# The broken rows of customers.csv (line = row number + 2) and the check each one fails; a value
# joined from usage.jsonl names the record of usage it came from (the 10th: K009).
BROKEN = {
    "K003": "customers line 5: age: 'forty' is not an integer (customer_id=K003)",
    "K005": "age: 150 is above the maximum 110",
    "K007": "plan: gold is not one of: basic, pro",
    "K009": "minutes: -3.0 is below the minimum 0 (from usage {} 10)",
}
DUPLICATED = "K001"


def write_project(root: Path, *, version: int = 1) -> Path:
    """The accounts project; version 2 of the exports adds ``region`` and triples usage."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    header = "customer_id,age,plan,churned" + (",region" if version == 2 else "")
    lines = [header]
    usage = []
    for i in range(CUSTOMERS):
        key = f"K{i:03d}"
        age = {"K003": "forty", "K005": "150"}.get(key, str(20 + i))
        plan = "gold" if key == "K007" else ("basic" if i % 2 else "pro")
        line = f"{key},{age},{plan},{'yes' if i % 3 == 0 else 'no'}"
        lines.append(line + (f",{'north' if i % 4 else 'south'}" if version == 2 else ""))
        minutes = -3.0 if key == "K009" else 10.0 * i * (3 if version == 2 else 1)
        usage.append(json.dumps({"customer_id": key, "minutes": minutes}))
    lines.append(lines[int(DUPLICATED[1:]) + 1])  # the same export row twice
    (data / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (data / "usage.jsonl").write_text("\n".join(usage) + "\n", encoding="utf-8")
    extra = "  - {name: region, type: category}\n" if version == 2 else ""
    age_type = "float" if version == 2 else "integer"
    spec = SPEC.replace("EXTRA_COLUMNS", extra).replace("AGE_TYPE", age_type)
    (root / "pipeline.yaml").write_text(spec, encoding="utf-8")
    return root / "pipeline.yaml"


def stored_frame(home: Path, ref: str) -> pl.DataFrame:
    """The clean table of dataset ``ref`` as the artifact store holds it."""
    workspace = Workspace.open(Settings(home=home))
    try:
        dataset = workspace.tracking.get_dataset(ref)
        return pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))
    finally:
        workspace.close()


def table_rows(output: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the printed table whose first column is ``first_header``, cells by header."""
    lines = output.splitlines()
    start = next(
        i for i, line in enumerate(lines) if re.match(rf"┃ {re.escape(first_header)}\s+┃", line)
    )
    headers = [cell.strip() for cell in lines[start].strip().strip("┃").split("┃")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("│"):
            break
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        rows.append(dict(zip(headers, cells, strict=True)))
    return rows


ARROW = "(?:->|→)"


def change(cell: str) -> tuple[str, str]:
    """(before, after) of a diff cell; an unchanged value may be shown once."""
    parts = re.split(rf"\s+{ARROW}\s+", cell)
    return parts[0], parts[-1]


def dataset_hash(stdout: str) -> str:
    """The 12-character dataset hash ``data validate`` announces."""
    match = re.search(r"^Dataset ([0-9a-f]{12}): ", stdout, re.M)
    assert match, stdout
    return match.group(1)


@dataclass(frozen=True)
class Validated:
    spec: Path
    home: Path
    stdout: str
    data_hash: str


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Validated:
    """The project validated once by the real command line, in a process of its own."""
    root = tmp_path_factory.mktemp("accounts")
    spec = write_project(root / "project")
    home = root / "home"
    result = run_cli("data", "validate", str(spec), home=home)
    assert "Traceback" not in result.stderr
    workspace = Workspace.open(Settings(home=home))
    try:
        data_hash = workspace.tracking.get_dataset(dataset_hash(result.stdout)).data_hash
    finally:
        workspace.close()
    return Validated(spec, home, result.stdout, data_hash)


def test_validate_quarantines_with_reasons_and_loses_no_row(validated: Validated) -> None:
    """Every input row ends up in the dataset or in the quarantine file, with one reason per
    failed check, and the printed counts and report agree with the files."""
    rows_in = CUSTOMERS + 1
    quarantined = len(BROKEN) + 1
    out = validated.stdout
    assert f"Dataset {validated.data_hash[:12]}: {rows_in - quarantined} rows\n" in out
    assert (
        f"Validation: {rows_in} rows in, {rows_in - quarantined} kept, {quarantined} quarantined"
        in out
    )
    reports = validated.home / "reports"
    quarantine_file = reports / "accounts-quarantine.parquet"
    assert f"with a reason per failed check: {quarantine_file}" in out
    assert f"Data report: {reports / 'accounts-data.html'}" in out
    assert "customers line 5: age: 'forty' is not an integer" in out

    report = json.loads((reports / "accounts-data.json").read_text(encoding="utf-8"))
    assert report["validation"]["rows"] == {
        "in": rows_in,
        "quarantined": quarantined,
        "warned": 0,
        "out": rows_in - quarantined,
    }
    html = (reports / "accounts-data.html").read_text(encoding="utf-8")
    assert html.lower().startswith("<!doctype html>") and "accounts-data" in html

    quarantine = pl.read_parquet(quarantine_file)
    assert quarantine.height == quarantined
    assert quarantine["_reasons"].null_count() == 0
    per_check = sorted(c for c in quarantine.columns if c.startswith("_check:"))
    assert per_check == [
        "_check:age.0.max",
        "_check:duplicates",
        "_check:minutes.0.min",
        "_check:plan.0.allowed",
    ]
    for column in per_check:  # one broken row per check, and its reason is in its row
        assert quarantine[column].null_count() == quarantined - 1
    reasons = dict(zip(quarantine["customer_id"], quarantine["_reasons"], strict=True))
    usage_unit = quarantine.filter(pl.col("customer_id") == "K009")["_row:usage"][0].split()[0]
    assert {key: reasons[key] for key in BROKEN} == {
        key: reason.format(usage_unit) for key, reason in BROKEN.items()
    }
    assert reasons[DUPLICATED] == "duplicate of an earlier row"
    typed = quarantine.filter(pl.col("customer_id") == "K003").row(0, named=True)
    assert (typed["_source"], typed["_row"], typed["age"]) == ("customers", "line 5", None)

    clean = stored_frame(validated.home, validated.data_hash)
    assert clean.height + quarantine.height == rows_in
    exported = pl.read_csv(validated.spec.parent / "data" / "customers.csv", infer_schema=False)
    assert sorted([*clean["customer_id"], *quarantine["customer_id"]]) == sorted(
        exported["customer_id"]
    )
    assert not set(BROKEN) & set(clean["customer_id"])


def test_rerun_reuses_the_stored_dataset(validated: Validated) -> None:
    """Unchanged inputs are not ingested again: the same dataset is reused and nothing is added."""
    again = invoke_cli("data", "validate", str(validated.spec), home=validated.home)
    assert (
        f"Dataset {validated.data_hash[:12]}: {CUSTOMERS - len(BROKEN)} rows "
        "(inputs unchanged: stored dataset reused)" in again.stdout
    )
    workspace = Workspace.open(Settings(home=validated.home))
    try:
        assert len(workspace.tracking.list_datasets()) == 1
    finally:
        workspace.close()


def test_list_shows_the_dataset(validated: Validated) -> None:
    """The listing is how users find a hash to show or diff: it must name the new dataset."""
    listing = invoke_cli("data", "list", home=validated.home).stdout
    [row] = table_rows(listing, "dataset")
    assert row["dataset"] == validated.data_hash[:12]
    assert (row["pipeline"], row["rows"], row["columns"], row["quarantined"]) == (
        "accounts",
        "36",
        "5",
        "5",
    )


def test_show_gives_lineage_spec_hash_and_code_version(validated: Validated) -> None:
    """Enough to reproduce the dataset: each source's content hash and rows, spec, code."""
    shown = invoke_cli("data", "show", validated.data_hash[:8], home=validated.home).stdout
    assert f"Dataset {validated.data_hash}" in shown
    assert re.search(rf"spec sha256\s+│ {load_spec(validated.spec).spec_hash}", shown)
    code = re.search(r"code version\s+│ (.+?)\s+│", shown)
    assert code and __version__ in code.group(1)
    workspace = Workspace.open(Settings(home=validated.home))
    try:
        assert workspace.tracking.get_dataset(validated.data_hash).code_version == code.group(1)
    finally:
        workspace.close()
    data = validated.spec.parent / "data"
    assert table_rows(shown, "source") == [
        {
            "source": name,
            "kind": "file",
            "location": str(file),
            "rows": str(rows),
            "sha256": hashlib.sha256(file.read_bytes()).hexdigest()[:12],
        }
        for name, file, rows in (
            ("customers", data / "customers.csv", CUSTOMERS + 1),
            ("usage", data / "usage.jsonl", CUSTOMERS),
        )
    ]
    assert "Validation: 41 rows in, 36 kept, 5 quarantined" in shown


def test_diff_after_a_new_export_shows_schema_and_statistics(tmp_path: Path) -> None:
    """A new export with an extra column, a retyped one and tripled usage: all three show up."""
    home = tmp_path / "home"
    spec = write_project(tmp_path / "project")
    first = dataset_hash(invoke_cli("data", "validate", str(spec), home=home).stdout)
    write_project(tmp_path / "project", version=2)
    second = dataset_hash(invoke_cli("data", "validate", str(spec), home=home).stdout)
    assert first != second

    diff = invoke_cli("data", "diff", first, second, home=home).stdout
    assert re.search(rf"Dataset {first} \(36 rows\) {ARROW} {second} \(36 rows\)", diff)
    assert "Columns added: region" in diff
    assert re.search(rf"Column age: type Int64 {ARROW} Float64", diff)
    columns = {row["column"]: row for row in table_rows(diff, "column")}
    assert set(columns) == {"customer_id", "age", "plan", "minutes", "churned"}
    before, after = (float(value) for value in change(columns["minutes"]["mean"]))
    assert after == pytest.approx(3 * before, rel=1e-3)
    assert float(columns["minutes"]["PSI"]) > 0.2  # a significant shift
    assert float(columns["plan"]["PSI"]) == 0  # an unchanged column


def test_profile_of_a_dataset_and_of_a_file(validated: Validated, tmp_path: Path) -> None:
    """Both targets give the same pair of files: JSON for machines, HTML for people."""
    result = invoke_cli("data", "profile", validated.data_hash[:12], home=validated.home)
    stem = validated.home / "reports" / f"dataset-{validated.data_hash[:12]}-profile"
    assert f"HTML: {stem}.html" in result.stdout and f"JSON: {stem}.json" in result.stdout
    profile = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))["profile"]
    assert profile["rows"] == 36
    assert [c["name"] for c in profile["columns"]] == [
        "customer_id",
        "age",
        "plan",
        "minutes",
        "churned",
    ]
    assert Path(f"{stem}.html").read_text(encoding="utf-8").lower().startswith("<!doctype html>")

    file = validated.spec.parent / "data" / "customers.csv"
    out_dir = tmp_path / "profiles"
    result = invoke_cli("data", "profile", str(file), "-o", str(out_dir), home=validated.home)
    assert "Profiled 41 rows × 4 columns" in result.stdout
    profile = json.loads((out_dir / "customers-profile.json").read_text(encoding="utf-8"))
    assert profile["profile"]["rows"] == 41
    html = (out_dir / "customers-profile.html").read_text(encoding="utf-8")
    assert "customer_id" in html and "<script" not in html


def test_python_api_gives_the_same_dataset(validated: Validated, tmp_path: Path) -> None:
    """The library call behind the command: same inputs, same content hash, same quarantine."""
    workspace = Workspace.open(Settings(home=tmp_path / "home"))
    try:
        result = ingest(load_spec(validated.spec), workspace)
        assert not result.reused
        assert result.dataset.data_hash == validated.data_hash
        assert result.dataset.n_quarantined == len(BROKEN) + 1
        assert len(result.frame) == CUSTOMERS - len(BROKEN)
        assert result.validation["rows"]["in"] == CUSTOMERS + 1
        assert ingest(load_spec(validated.spec), workspace).reused
    finally:
        workspace.close()


# -- SQLite and PostgreSQL ---------------------------------------------------------------------

SQL_SPEC = """\
name: crm
task: classification
sources:
  - name: people
    url: sqlite:///crm.sqlite
    query: SELECT customer_id, age, plan, churned FROM people ORDER BY customer_id
  - name: usage
    url: postgresql+psycopg://{user}:${{PG_TEST_PASSWORD}}@{host}:{port}/{database}
    query: SELECT customer_id, minutes FROM {table}
combine:
  method: join
  base: people
  joins:
    - {{source: usage, on: [customer_id], how: left}}
columns:
  - {{name: customer_id, type: string, role: id, nullable: false}}
  - {{name: age, type: integer, checks: [{{min: 18}}]}}
  - {{name: plan, type: category, nullable: false}}
  - {{name: minutes, type: float, checks: [{{min: 0}}]}}
  - {{name: churned, type: category, role: target, nullable: false}}
checks:
  max_quarantine: 0.2
models:
  - {{estimator: logistic_regression}}
metric: accuracy
"""


@pytest.fixture
def sql_project(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(spec, PostgreSQL password): people in a SQLite file, their usage in PostgreSQL."""
    table = f"usage_{uuid.uuid4().hex[:8]}"
    people = sa.Table(
        "people",
        sa.MetaData(),
        sa.Column("customer_id", sa.String(10), primary_key=True),
        sa.Column("age", sa.Text),  # free text, as CRMs keep it
        sa.Column("plan", sa.String(10)),
        sa.Column("churned", sa.String(3)),
    )
    usage = sa.Table(
        table,
        sa.MetaData(),
        sa.Column("customer_id", sa.String(10), primary_key=True),
        sa.Column("minutes", sa.Numeric(8, 2)),
    )
    keys = [f"K{i:03d}" for i in range(CUSTOMERS)]
    sqlite = sa.create_engine(f"sqlite:///{tmp_path / 'crm.sqlite'}", poolclass=sa.NullPool)
    with sqlite.begin() as conn:
        people.create(conn)
        conn.execute(
            sa.insert(people),
            [
                {
                    "customer_id": key,
                    "age": "forty" if i == 3 else str(20 + i),
                    "plan": "basic" if i % 2 else "pro",
                    "churned": "yes" if i % 3 == 0 else "no",
                }
                for i, key in enumerate(keys)
            ],
        )
    sqlite.dispose()
    pg = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with pg.begin() as conn:
        usage.create(conn)
        conn.execute(
            sa.insert(usage),
            [
                {"customer_id": key, "minutes": -1 if i == 9 else i + 0.25}
                for i, key in enumerate(keys)
                if i != 11  # no usage recorded yet: the left join keeps the customer
            ],
        )
    url = sa.make_url(postgres_url)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        SQL_SPEC.format(
            user=url.username, host=url.host, port=url.port, database=url.database, table=table
        ),
        encoding="utf-8",
    )
    yield spec, str(url.password)
    with pg.begin() as conn:
        usage.drop(conn)
    pg.dispose()


def test_sqlite_joined_with_postgresql(sql_project: tuple[Path, str], tmp_path: Path) -> None:
    """Two real databases joined by key through the command line, the password only ever read
    from the environment; the library call stores the same dataset."""
    spec, password = sql_project
    home = tmp_path / "home"
    env = {"PG_TEST_PASSWORD": password}
    result = invoke_cli("data", "validate", str(spec), home=home, env=env)
    assert "Validation: 40 rows in, 38 kept, 2 quarantined" in result.stdout
    assert "people row 4: age: 'forty' is not an integer" in result.stdout
    assert "people row 10: minutes: -1.0 is below the minimum 0" in result.stdout
    data_hash = dataset_hash(result.stdout)

    frame = stored_frame(home, data_hash)
    minutes = dict(zip(frame["customer_id"], frame["minutes"], strict=True))
    assert minutes["K020"] == 20.25 and minutes["K011"] is None
    assert frame.schema["age"] == pl.Int64 and frame.schema["minutes"] == pl.Float64

    shown = invoke_cli("data", "show", data_hash, home=home, env=env).stdout
    assert f"sqlite:///{tmp_path / 'crm.sqlite'}" in shown
    assert re.search(r"│ usage\s+│ query\s+│ postgresql\+psycopg://mlship:\*\*\*@", shown)
    workspace = Workspace.open(Settings(home=home))
    try:
        sources: list[dict[str, Any]] = workspace.tracking.get_dataset(data_hash).sources
    finally:
        workspace.close()
    assert [(s["name"], s["kind"], s["rows"]) for s in sources] == [
        ("people", "query", 40),
        ("usage", "query", 39),
    ]
    assert password not in result.stdout + result.stderr + shown + json.dumps(sources)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PG_TEST_PASSWORD", password)
        workspace = Workspace.open(Settings(home=tmp_path / "api-home"))
        try:
            api = ingest(load_spec(spec), workspace)
        finally:
            workspace.close()
    assert api.dataset.data_hash.startswith(data_hash)
    assert api.dataset.n_quarantined == 2
