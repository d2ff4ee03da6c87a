"""Values written the way real exports write them, end to end through the command line.

European and US number formats, null tokens, currency and percent signs, date/times with a format,
a time zone, ``Z`` or an offset; JSON, JSON lines and SQL columns whose values mix types. Every
case goes through ``mlship data validate`` (ingest) or ``mlship predict`` and checks what the user
sees: the typed values stored, and for a value that does not fit, a reason naming the source, its
line (or row), the row's id, the column and the value.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from mlship.config import Settings
from mlship.data.ingested import dataset_frame
from mlship.workspace import Workspace
from tests.conftest import CliResult, invoke_cli

MODELS = """\
models:
  - {estimator: linear_regression}
metric: rmse
"""


def _project(root: Path, spec: str, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (root / name).write_bytes(content)
        else:
            (root / name).write_text(content, encoding="utf-8", newline="")
    path = root / "pipeline.yaml"
    path.write_text(spec + MODELS, encoding="utf-8")
    return path


def _validate(spec: Path, home: Path, check: bool = True) -> CliResult:
    return invoke_cli("data", "validate", str(spec), home=home, check=check)


def _stored(home: Path) -> pd.DataFrame:
    workspace = Workspace.open(Settings(home=home))
    try:
        [dataset] = workspace.tracking.list_datasets()
        return dataset_frame(dataset, workspace)
    finally:
        workspace.close()


def _quarantine(home: Path, name: str) -> dict[str, tuple[str, str, str]]:
    """Quarantined rows by id: (source, place, reasons)."""
    frame = pl.read_parquet(home / "reports" / f"{name}-quarantine.parquet")
    return {
        str(row["id"]): (row["_source"], row["_row"], row["_reasons"])
        for row in frame.iter_rows(named=True)
    }


def _flat(text: str) -> str:
    return " ".join(text.split())


EUROPEAN = """\
name: shop
task: regression
sources:
  - name: orders
    path: orders.csv
    delimiter: ";"
    values:
      null_values: ["n/a", "?", "-", ""]
      thousands: "."
      decimal: ","
      currency: ["€", "EUR"]
      format: "%d/%m/%Y %H:%M"
      timezone: Europe/Paris
columns:
  - {name: id, type: integer, role: id}
  - {name: amount, type: float}
  - {name: rate, type: float, values: {percent: fraction}}
  - {name: at, type: datetime}
  - {name: spent, type: float, role: target}
checks: {max_quarantine: 0.5}
"""


def test_european_numbers_dates_and_null_tokens_are_read_as_declared(tmp_path: Path) -> None:
    orders = (
        "id;amount;rate;at;spent\n"
        "1;1.234,5 €;12%;02/01/2024 10:00;3\n"
        "2;n/a;5,5%;02/07/2024 10:00;4\n"
        "3;12,x;1%;03/01/2024 08:15;5\n"
        "4;EUR 7;?;01/01/2024 00:00;6\n"
        "5;1.234.567;-;15/01/2024 12:30;7\n"
        "6;3;2%;31/12/2024 25:00;8\n"
    )
    spec = _project(tmp_path / "p", EUROPEAN, {"orders.csv": orders})
    home = tmp_path / "home"
    result = _validate(spec, home)
    assert "Validation: 6 rows in, 4 kept, 2 quarantined" in result.stdout
    quarantined = _quarantine(home, "shop")
    assert quarantined == {
        "3": (
            "orders",
            "line 4",
            "orders line 4: amount: '12,x' is not a number (digit groups '.', decimal mark ',') "
            "(id=3)",
        ),
        "6": (
            "orders",
            "line 7",
            "orders line 7: at: '31/12/2024 25:00' is not a date/time in the format "
            "%d/%m/%Y %H:%M (id=6)",
        ),
    }
    stored = _stored(home).set_index("id")
    assert sorted(stored.index) == [1, 2, 4, 5]
    assert stored.loc[[1, 4, 5], "amount"].tolist() == [1234.5, 7.0, 1234567.0]
    assert stored["amount"].isna()[2]
    assert stored.loc[1, "rate"] == pytest.approx(0.12)
    assert stored.loc[2, "rate"] == pytest.approx(0.055)
    assert stored["rate"].isna()[[4, 5]].all()
    # Paris wall-clock times: UTC+1 in winter, UTC+2 in summer; stored in UTC.
    assert stored.loc[1, "at"] == pd.Timestamp(datetime(2024, 1, 2, 9, 0, tzinfo=UTC))
    assert stored.loc[2, "at"] == pd.Timestamp(datetime(2024, 7, 2, 8, 0, tzinfo=UTC))
    assert str(stored["at"].dt.tz) == "UTC"


def test_iso_timestamps_with_z_or_an_offset_are_utc_by_default(tmp_path: Path) -> None:
    spec = """\
name: times
task: regression
sources: [{path: times.csv}]
columns:
  - {name: id, type: integer, role: id}
  - {name: at, type: datetime}
  - {name: y, type: float, role: target}
"""
    times = (
        "id,at,y\n"
        "1,2024-01-02T03:04:05Z,1\n"
        "2,2024-01-02T03:04:05+02:00,2\n"
        "3,2024-01-02 03:04:05+0200,3\n"
        "4,2024-01-02T03:04:05.250Z,4\n"
        "5,2024-01-02T03:04:05-05:30,5\n"
        "6,2024-01-02,6\n"
    )
    home = tmp_path / "home"
    result = _validate(_project(tmp_path / "p", spec, {"times.csv": times}), home)
    assert "6 rows in, 6 kept, 0 quarantined" in result.stdout
    stored = _stored(home).set_index("id")["at"]
    expected = {
        1: datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        2: datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
        3: datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
        4: datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC),
        5: datetime(2024, 1, 2, 8, 34, 5, tzinfo=UTC),
        6: datetime(2024, 1, 2, tzinfo=UTC),
    }
    assert {key: value.to_pydatetime() for key, value in stored.items()} == expected


MIXED = """\
name: mixed
task: regression
sources:
  - {name: events, path: events.jsonl}
  - {name: extra, path: extra.json}
columns:
  - {name: id, type: integer, role: id}
  - {name: amount, type: float}
  - {name: flag, type: boolean}
  - {name: y, type: float, role: target}
checks: {max_quarantine: 0.9}
"""


def test_json_values_of_mixed_types_quarantine_their_row_at_its_line(tmp_path: Path) -> None:
    """Polars refuses these files whole (a boolean and an object among numbers); each bad value
    now costs its row only, named by the line the object is on (or starts on)."""
    events = (
        '{"id": 1, "amount": 1.5, "flag": true, "y": 1}\n'
        "\n"
        '{"id": 2, "amount": true, "flag": false, "y": 2}\n'
        '{"id": 3, "amount": {"cents": 5}, "flag": "yes", "y": 3}\n'
        '{"id": 4, "amount": "2.5", "flag": 1, "y": 4}\n'
        '{"id": 5, "amount": 7, "flag": "maybe", "y": 5}\n'
    )
    extra = (
        "[\n"
        '  {"id": 10, "amount": 1, "flag": null, "y": 1},\n'
        "  {\n"
        '    "id": 11,\n'
        '    "amount": "lots",\n'
        '    "flag": false, "y": 2\n'
        "  },\n"
        '  {"id": 12, "amount": [1, 2], "flag": true, "y": 3}\n'
        "]\n"
    )
    home = tmp_path / "home"
    spec = _project(tmp_path / "p", MIXED, {"events.jsonl": events, "extra.json": extra})
    result = _validate(spec, home)
    assert "8 rows in, 3 kept, 5 quarantined" in result.stdout
    assert _quarantine(home, "mixed") == {
        "2": ("events", "line 3", "events line 3: amount: 'true' is not a number (id=2)"),
        "3": (
            "events",
            "line 4",
            "events line 4: amount: '{\"cents\": 5}' is not a number (id=3)",
        ),
        "5": (
            "events",
            "line 6",
            "events line 6: flag: 'maybe' is not a boolean (true/false, yes/no, 1/0) (id=5)",
        ),
        "11": ("extra", "line 3", "extra line 3: amount: 'lots' is not a number (id=11)"),
        "12": ("extra", "line 8", "extra line 8: amount: '[1, 2]' is not a number (id=12)"),
    }
    stored = _stored(home).set_index("id")
    assert stored.loc[4, "amount"] == 2.5 and bool(stored.loc[4, "flag"]) is True


def test_a_sqlite_column_mixing_types_quarantines_rows_not_the_source(tmp_path: Path) -> None:
    """SQLite lets an INTEGER column hold text; the query used to fail as a whole."""
    root = tmp_path / "p"
    root.mkdir()
    with sqlite3.connect(root / "shop.db") as connection:
        connection.execute("CREATE TABLE t (id INTEGER, qty INTEGER, at TEXT, y REAL)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            [
                (1, 5, "2024-01-01T00:00:00Z", 1.0),
                (2, "n/a", "2024-01-01T00:00:00+01:00", 2.0),
                (3, "several", "2024-01-01", 3.0),
                (4, 2.0, None, 4.0),
                (5, 2.5, "2024-01-01", 5.0),
            ],
        )
    spec = """\
name: db
task: regression
sources:
  - {name: shop, query: "SELECT * FROM t ORDER BY id", url: "sqlite:///shop.db"}
columns:
  - {name: id, type: integer, role: id}
  - {name: qty, type: integer}
  - {name: at, type: datetime}
  - {name: y, type: float, role: target}
checks: {max_quarantine: 0.5}
"""
    home = tmp_path / "home"
    result = _validate(_project(root, spec, {}), home)
    out = _flat(result.stdout)
    assert "5 rows in, 3 kept, 2 quarantined" in out
    assert "1 with warnings" in out
    assert _quarantine(home, "db") == {
        "3": ("shop", "row 3", "shop row 3: qty: 'several' is not an integer (id=3)"),
        "5": ("shop", "row 5", "shop row 5: qty: '2.5' is not an integer (id=5)"),
    }
    # 'n/a' is not declared missing: read as missing all the same, with a warning that says so.
    assert (
        "shop row 2: qty: 'n/a' was read as missing, being a common missing-value marker "
        "(declare it in `null_values` if that is what it means) (id=2)"
    ) in out
    stored = _stored(home).set_index("id")
    assert stored["qty"].isna()[2] and stored.loc[4, "qty"] == 2


def test_declared_null_tokens_are_silent_and_undeclared_ones_warn(tmp_path: Path) -> None:
    spec = """\
name: tokens
task: regression
sources:
  - {path: rows.csv, values: {null_values: ["n/a"]}}
columns:
  - {name: id, type: integer, role: id}
  - {name: a, type: float}
  - {name: b, type: float, nullable: false}
  - {name: y, type: float, role: target}
checks: {max_quarantine: 0.5}
"""
    rows = "id,a,b,y\n1,n/a,1,1\n2,?,2,2\n3,1,n/a,3\n4,2,?,4\n5,3,3,5\n"
    home = tmp_path / "home"
    result = _validate(_project(tmp_path / "p", spec, {"rows.csv": rows}), home)
    out = _flat(result.stdout)
    assert "5 rows in, 3 kept, 2 quarantined" in out and "1 with warnings" in out
    assert _quarantine(home, "tokens") == {
        "3": ("rows", "line 4", "rows line 4: b: is empty, but the column is not nullable (id=3)"),
        "4": (
            "rows",
            "line 5",
            "rows line 5: b: '?' is a missing-value marker, but the column is not nullable (id=4)",
        ),
    }
    assert "rows line 3: a: '?' was read as missing" in out


def test_a_failed_mapping_cast_warns_instead_of_nulling_silently(tmp_path: Path) -> None:
    spec = """\
name: cast
task: regression
sources:
  - path: rows.csv
    mapping:
      cast: {cents: integer}
      derive: {amount: "cents / 100"}
columns:
  - {name: id, type: integer, role: id}
  - {name: amount, type: float}
  - {name: y, type: float, role: target}
"""
    rows = "id,cents,y\n1,150,1\n2,abc,2\n3,200,3\n"
    home = tmp_path / "home"
    result = _validate(_project(tmp_path / "p", spec, {"rows.csv": rows}), home)
    out = _flat(result.stdout)
    assert "3 rows in, 3 kept, 0 quarantined" in out and "1 with warnings" in out
    assert (
        "rows line 3: cents: 'abc' is not an integer, so `mapping.cast` made it null (id=2)" in out
    )


def test_private_values_are_never_repeated(tmp_path: Path) -> None:
    """A PII column is pseudonymized or dropped before typing, so whatever it holds is never
    quoted; a bad value elsewhere in the row is, with the row's id but not its PII."""
    spec = """\
name: private
task: regression
sources: [{path: rows.csv}]
columns:
  - {name: id, type: integer, role: id}
  - {name: salary, type: float, role: pii, pii: drop}
  - {name: email, type: string, role: pii}
  - {name: a, type: float}
  - {name: y, type: float, role: target}
checks: {max_quarantine: 0.5}
"""
    rows = (
        "id,salary,email,a,y\n1,52000,ann@example.com,1,1\n"
        "2,SECRET-71234,bob@example.com,x,2\n3,61000,cy@example.com,3,3\n"
    )
    home = tmp_path / "home"
    result = _validate(_project(tmp_path / "p", spec, {"rows.csv": rows}), home)
    [(_, _, reason)] = _quarantine(home, "private").values()
    assert reason == "rows line 3: a: 'x' is not a number (id=2)"
    shown = result.stdout + (home / "reports" / "private-data.html").read_text(encoding="utf-8")
    assert "SECRET" not in shown and "bob@" not in shown


def test_a_quoted_value_spanning_lines_keeps_later_rows_on_their_lines(tmp_path: Path) -> None:
    spec = """\
name: notes
task: regression
sources: [{path: rows.csv}]
columns:
  - {name: id, type: integer, role: id}
  - {name: note, type: string}
  - {name: n, type: integer}
  - {name: y, type: float, role: target}
checks: {max_quarantine: 0.5}
"""
    rows = 'id,note,n,y\n1,"two\nlines",1,1\n2,plain,x,2\n3,"a\nb\nc",3,3\n4,ok,4.5,4\n'
    home = tmp_path / "home"
    _validate(_project(tmp_path / "p", spec, {"rows.csv": rows}), home)
    assert _quarantine(home, "notes") == {
        "2": ("rows", "line 4", "rows line 4: n: 'x' is not an integer (id=2)"),
        "4": ("rows", "line 8", "rows line 8: n: '4.5' is not an integer (id=4)"),
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            '{thousands: ".", decimal: "."}',
            "`thousands` and `decimal` are both '.'; a number could not be read unambiguously",
        ),
        ('{thousands: "."}', "(`decimal` defaults to '.'; set it, e.g. ',')"),
        ("{timezone: Mars/Olympus}", "unknown time zone 'Mars/Olympus'"),
        ('{null_values: ["n/a", "n/a"]}', "lists each value more than once"),
        ("{percent: yes}", "percent"),
    ],
)
def test_invalid_value_formats_are_refused_when_the_spec_loads(
    tmp_path: Path, values: str, message: str
) -> None:
    spec = f"""\
name: bad
task: regression
sources:
  - path: rows.csv
    values: {values}
columns:
  - {{name: a, type: float}}
  - {{name: y, type: float, role: target}}
"""
    home = tmp_path / "home"
    result = _validate(_project(tmp_path / "p", spec, {"rows.csv": "a,y\n1,2\n"}), home, False)
    assert result.returncode != 0
    error = _flat(result.stderr)
    assert "Traceback" not in result.stderr
    assert "sources" in error and "values" in error, error
    assert message in error, error


# -- mlship predict ----------------------------------------------------------------------------

HOMES = """\
name: homes
task: regression
sources:
  - path: homes.csv
    values: {thousands: ",", null_values: ["n/a"], currency: ["$"]}
columns:
  - {name: id, type: integer, role: id}
  - {name: size, type: float, transform: {impute: median}}
  - {name: plan, type: category}
  - {name: price, type: float, role: target}
"""


@pytest.fixture(scope="module")
def homes_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on sizes written ``"1,234.5"`` (some ``n/a``): its workspace home."""
    root = tmp_path_factory.mktemp("homes")
    lines = ["id,size,plan,price"]
    for i in range(60):
        size = 500 + 37.5 * i
        plan = "ab"[i % 2]
        written = "n/a" if i % 7 == 0 else f'"${size:,.1f}"'
        lines.append(f"{i},{written},{plan},{2 * size + (100 if plan == 'a' else 0):.1f}")
    spec = _project(root, HOMES, {"homes.csv": "\n".join(lines) + "\n"})
    home = root / "home"
    invoke_cli("run", str(spec), home=home)
    return home


def _predict(home: Path, path: Path, *options: str, check: bool = True) -> CliResult:
    output = path.with_name(path.stem + "-out.csv")
    return invoke_cli(
        "predict", "homes", str(path), "-o", str(output), "--no-prediction-log", *options,
        home=home, check=check,
    )  # fmt: skip


def test_predict_reads_values_as_the_model_was_trained_to(
    homes_model: Path, tmp_path: Path
) -> None:
    """The signature carries the source's formats: "$1,234.5" is 1234.5 and "n/a" is missing,
    in CSV, JSON lines and JSON input alike; ids are echoed."""
    csv = tmp_path / "in.csv"
    csv.write_text('id,size,plan\n7,"$1,234.5",a\n8,n/a,b\n9,1234.5,a\n', encoding="utf-8")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(
        '{"id": 7, "size": "$1,234.5", "plan": "a"}\n\n{"id": 8, "size": "n/a", "plan": "b"}\n'
        '{"id": 9, "size": 1234.5, "plan": "a"}\n',
        encoding="utf-8",
    )
    json_array = tmp_path / "in.json"
    json_array.write_text(
        '[{"id": 7, "size": "$1,234.5", "plan": "a"},\n {"id": 8, "size": null, "plan": "b"},\n'
        ' {"id": 9, "size": 1234.5, "plan": "a"}]\n',
        encoding="utf-8",
    )
    scored = []
    for path in (csv, jsonl, json_array):
        result = _predict(homes_model, path)
        assert "Scored 3 rows with homes:1" in _flat(result.stdout)
        scored.append(pd.read_csv(path.with_name(path.stem + "-out.csv")))
    for frame in scored:
        assert frame["id"].tolist() == [7, 8, 9]
        assert frame["prediction"].iloc[0] == pytest.approx(frame["prediction"].iloc[2])
        assert frame["prediction"].tolist() == pytest.approx(scored[0]["prediction"].tolist())


def test_predict_names_the_row_and_line_of_a_bad_value(homes_model: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text(
        '{"id": 1, "size": 900, "plan": "a"}\n\n{"id": 2, "size": "huge", "plan": "b"}\n',
        encoding="utf-8",
    )
    result = _predict(homes_model, jsonl, check=False)
    assert result.returncode == 1
    assert _flat(result.stderr) == (
        f"error: {jsonl}: 1 problem(s) row 2 (line 3), column 'size': 'huge' is not a number"
    )


def test_predict_reports_an_encoding_error_with_line_column_and_offset(
    homes_model: Path, tmp_path: Path
) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,size,plan\n1,900,a\n2,950,caf\xe9\n".encode("latin-1"))
    result = _predict(homes_model, path, check=False)
    assert result.returncode == 1
    assert _flat(result.stderr) == (
        f"error: {path}: line 3, column 'plan' is not valid UTF-8 (byte 0xe9 at offset 30); "
        "if the file uses another encoding, pass it, e.g. `--encoding latin-1` or "
        "`--encoding cp1252`"
    )
    assert "Scored 2 rows" in _flat(_predict(homes_model, path, "--encoding", "latin-1").stdout)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "id,size,plan\n", "the file has a header but no data rows"),
        ("empty.json", "[]", "the file has no data rows"),
    ],
)
def test_predict_refuses_a_file_without_rows(
    homes_model: Path, tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = _predict(homes_model, path, check=False)
    assert result.returncode == 1
    assert _flat(result.stderr) == f"error: {path}: {message}; there is nothing to score"
