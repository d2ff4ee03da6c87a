"""Generated sources in every format, read by the real ingest: no row is lost, and every
quarantined row is named by its source and its physical line (or row).

Each case is a table of rows with unique integer ids, an ``amount`` written in many ways (plain,
with digit groups, a declared null token, an undeclared missing-value marker, text that is no
number, and in JSON also booleans, objects and arrays), a timestamp with ``Z``, an offset or none
(or broken), and a free-text note that may span lines. The table is written as CSV, JSON (objects
on one line or pretty-printed), JSON lines (with blank lines), Parquet or a SQLite table, then
ingested. An oracle computes, from what was generated, which rows must be quarantined, where each
one is in the file, and the typed values of the rest.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.data.ingest import ingest
from mlship.spec import load_spec
from mlship.workspace import Workspace

FORMATS = ("csv", "json", "jsonl", "parquet", "sql")


@dataclass(frozen=True)
class Amount:
    """How one amount is written, and what it must become (``bad``: quarantined)."""

    written: Any
    value: float | None
    bad: bool = False


@dataclass(frozen=True)
class Stamp:
    written: str | None
    value: datetime | None
    bad: bool = False


@dataclass(frozen=True)
class Row:
    id: int
    amount: Amount
    at: Stamp
    note: str

    @property
    def bad(self) -> bool:
        return self.amount.bad or self.at.bad


def _grouped(number: float) -> str:
    return f"{number:,.2f}"


numbers = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False).map(lambda x: round(x, 2))

text_amounts = st.one_of(
    numbers.map(lambda x: Amount(f"{x:.2f}", x)),
    numbers.map(lambda x: Amount(_grouped(x), x)),
    st.sampled_from(["n/a", "?", ""]).map(lambda t: Amount(t, None)),
    st.sampled_from(["NA", "null", "-"]).map(lambda t: Amount(t, None)),  # undeclared: a warning
    st.sampled_from(["abc", "12x", "1,23", "1.2.3", "true", "$5"]).map(
        lambda t: Amount(t, None, True)
    ),
)
json_amounts = st.one_of(
    text_amounts,
    numbers.map(lambda x: Amount(x, x)),
    st.integers(-1000, 1000).map(lambda x: Amount(x, float(x))),
    st.sampled_from([True, False]).map(lambda b: Amount(b, None, True)),
    st.just(Amount({"cents": 5}, None, True)),
    st.just(Amount([1, 2], None, True)),
    st.just(Amount(None, None)),
)

OFFSETS = {"Z": 0, "+02:00": 120, "+0200": 120, "-05:30": -330, "": 0}


@st.composite
def stamps(draw: st.DrawFn) -> Stamp:
    if draw(st.integers(0, 9)) == 0:
        return Stamp(draw(st.sampled_from(["yesterday", "2024-13-45T00:00:00Z"])), None, True)
    if draw(st.integers(0, 9)) == 0:
        return Stamp(None, None)
    moment = datetime(2020, 1, 1) + timedelta(seconds=draw(st.integers(0, 10**8)))
    offset = draw(st.sampled_from(sorted(OFFSETS)))
    separator = draw(st.sampled_from(["T", " "]))
    written = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + offset
    value = (moment - timedelta(minutes=OFFSETS[offset])).replace(tzinfo=UTC)
    return Stamp(written, value)


notes = st.text(alphabet="ab \n,;\"'", max_size=8)


@st.composite
def tables(draw: st.DrawFn, fmt: str) -> list[Row]:
    ids = draw(st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=12, unique=True))
    amounts = json_amounts if fmt in ("json", "jsonl", "sql") else text_amounts
    rows = [Row(i, draw(amounts), draw(stamps()), draw(notes)) for i in ids]
    if fmt == "sql":  # SQLite has no objects or arrays, and stores a boolean as 1 or 0
        rows = [
            Row(r.id, Amount(int(r.amount.written), float(r.amount.written)), r.at, r.note)
            if isinstance(r.amount.written, bool)
            else r
            for r in rows
            if not isinstance(r.amount.written, dict | list)
        ]
    return rows


SPEC = """\
name: generated
task: regression
sources:
  - name: src
    SOURCE
    values: {null_values: ["n/a", "?"], thousands: ","}
columns:
  - {name: id, type: integer, role: id, nullable: false}
  - {name: amount, type: float}
  - {name: at, type: datetime}
  - {name: note, type: string}
  - {name: y, type: float, role: target}
checks: {max_quarantine: 1.0, duplicates: allow}
models:
  - {estimator: linear_regression}
metric: rmse
"""


def _record(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "amount": row.amount.written,
        "at": row.at.written,
        "note": row.note,
        "y": 1.0,
    }


def _write(root: Path, fmt: str, rows: list[Row], layout: list[int]) -> tuple[str, list[str]]:
    """Write ``rows``; the source's YAML and each row's expected place (``line 7``, ``row 3``).

    ``layout`` varies the file: blank lines before a JSON line, pretty-printing of a JSON object.
    """
    if fmt == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", "amount", "at", "note", "y"])
        places, line = [], 2
        for row in rows:
            values = _record(row)
            writer.writerow(["" if v is None else v for v in values.values()])
            places.append(f"line {line}")
            line += 1 + row.note.count("\n")
        (root / "src.csv").write_text(buffer.getvalue(), encoding="utf-8", newline="")
        return "path: src.csv", places
    if fmt == "jsonl":
        parts, places, line = [], [], 1
        for row, blanks in zip(rows, layout, strict=True):
            parts.extend([""] * blanks)
            line += blanks
            parts.append(json.dumps(_record(row)))
            places.append(f"line {line}")
            line += 1
        (root / "src.jsonl").write_text("\n".join(parts) + "\n", encoding="utf-8")
        return "path: src.jsonl", places
    if fmt == "json":
        text, places = "[\n", []
        for index, (row, pretty) in enumerate(zip(rows, layout, strict=True)):
            places.append(f"line {text.count(chr(10)) + 1}")
            text += json.dumps(_record(row), indent=2 if pretty % 2 else None)
            text += ",\n" if index < len(rows) - 1 else "\n"
        (root / "src.json").write_text(text + "]\n", encoding="utf-8")
        return "path: src.json", places
    if fmt == "parquet":
        frame = pl.DataFrame(
            [
                {k: (v if k in ("id", "y") or v is None else str(v)) for k, v in _record(r).items()}
                for r in rows
            ],
            schema={
                "id": pl.Int64,
                "amount": pl.String,
                "at": pl.String,
                "note": pl.String,
                "y": pl.Float64,
            },
            orient="row",
        )
        frame.write_parquet(root / "src.parquet")
        return "path: src.parquet", [f"row {i + 1}" for i in range(len(rows))]
    with sqlite3.connect(root / "src.db") as connection:
        connection.execute("CREATE TABLE t (id INTEGER, amount, at TEXT, note TEXT, y REAL)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)", [tuple(_record(r).values()) for r in rows]
        )
    connection.close()
    source = 'query: "SELECT * FROM t ORDER BY rowid"\n    url: "sqlite:///src.db"'
    return source, [f"row {i + 1}" for i in range(len(rows))]


def _check(tmp: Path, fmt: str, rows: list[Row], layout: list[int]) -> None:
    root = tmp / "project"
    root.mkdir(parents=True)
    source, places = _write(root, fmt, rows, layout)
    (root / "pipeline.yaml").write_text(SPEC.replace("SOURCE", source), encoding="utf-8")
    workspace = Workspace.open(Settings(home=tmp / "home"))
    try:
        done = ingest(load_spec(root / "pipeline.yaml"), workspace)
    finally:
        workspace.close()
    clean = pl.from_pandas(done.frame)
    path = done.validation["quarantine_path"]
    quarantine = pl.read_parquet(path) if path else pl.DataFrame({"id": [], "_row": []})

    expected_bad = {r.id for r in rows if r.bad}
    assert set(clean["id"].to_list()) == {r.id for r in rows if not r.bad}
    assert set(quarantine["id"].to_list()) == expected_bad
    assert clean.height + quarantine.height == len(rows)

    place = {r.id: p for r, p in zip(rows, places, strict=True)}
    for found in quarantine.iter_rows(named=True):
        assert found["_source"] == "src"
        assert found["_row"] == place[found["id"]]
        for reason in found["_reasons"].split("; "):
            assert reason.startswith(f"src {place[found['id']]}: "), reason
            assert reason.endswith(f"(id={found['id']})"), reason

    by_id = {r.id: r for r in rows}
    for found in clean.iter_rows(named=True):
        row = by_id[found["id"]]
        if row.amount.value is None:
            assert found["amount"] is None
        else:
            assert found["amount"] == pytest.approx(row.amount.value)
        assert found["at"] == row.at.value
        assert found["note"] == (
            row.note if row.note or fmt in ("json", "jsonl", "parquet", "sql") else None
        )


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_row_is_kept_or_quarantined_at_its_place(
    fmt: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    @settings(
        derandomize=True,
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        rows = data.draw(tables(fmt))
        if not rows:
            return
        layout = data.draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows)))
        _check(tmp_path_factory.mktemp(fmt), fmt, rows, layout)

    case()
