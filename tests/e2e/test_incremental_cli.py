"""Incremental ingest through the command line: a CSV file and SQL tables that grow between two
``mlship data validate`` calls.

The second ingest reads only the new rows: the record says how many were read, and an old row
changed in the database after the first ingest (which a full read would take in) is still as it
was. The dataset it makes is the one a full ingest of the final data makes, hash for hash.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.conftest import invoke_cli

CSV_SPEC = """\
name: NAME
task: classification
sources:
  - name: visits
    path: visits.csv
INCREMENTAL
columns:
  - {name: visit_id, type: integer, role: id, nullable: false}
  - {name: minutes, type: float, checks: [{min: 0}]}
  - {name: plan, type: category, nullable: false}
  - {name: churned, type: category, role: target, nullable: false}
checks:
  max_quarantine: 0.2
models:
  - {estimator: logistic_regression}
metric: accuracy
"""

SQL_SPEC = """\
name: NAME
task: classification
sources:
  - name: orders
    url: URL
    query: SELECT id, amount, plan, churned, changed FROM orders
    key: [order_id]
    mapping: {rename: {id: order_id}}
    incremental: GROWTH
columns:
  - {name: order_id, type: integer, role: id, nullable: false}
  - {name: amount, type: float, checks: [{min: 0}]}
  - {name: plan, type: category, nullable: false}
  - {name: churned, type: category, role: target, nullable: false}
  - {name: changed, type: datetime}
checks:
  max_quarantine: 0.2
models:
  - {estimator: logistic_regression}
metric: accuracy
"""


def _visits(first: int, last: int) -> str:
    return "".join(
        f"{i},{i % 17 * 1.5},{'pro' if i % 3 else 'basic'},{'yes' if i % 4 == 0 else 'no'}\n"
        for i in range(first, last)
    )


def _csv_spec(root: Path, name: str, incremental: bool) -> Path:
    growth = "    incremental: {mode: append}" if incremental else ""
    spec = root / f"{name}.yaml"
    spec.write_text(CSV_SPEC.replace("NAME", name).replace("INCREMENTAL\n", growth + "\n"))
    return spec


def _shown(home: Path, ref: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(invoke_cli("data", "show", ref, "--json", home=home).stdout)
    return found


def test_a_growing_csv_is_read_from_its_mark_and_equals_a_full_ingest(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    csv = tmp_path / "visits.csv"
    csv.write_text("visit_id,minutes,plan,churned\n" + _visits(0, 40))
    spec = _csv_spec(tmp_path, "visits", incremental=True)
    first = invoke_cli("data", "validate", str(spec), home=home)
    assert "40 rows" in first.stdout
    one = _shown(home, "visits")
    assert one["validation"]["increment"]["previous"] is None
    assert one["validation"]["increment"]["rows_added"] == 40

    # 25 rows appended, then half a line still being written: it waits for the next ingest.
    with csv.open("a") as handle:
        handle.write(_visits(40, 65) + "65,1.0,pro")
    grown = invoke_cli("data", "validate", str(spec), home=home)
    assert "visits: its last line has no newline yet (10 bytes)" in grown.stdout
    two = _shown(home, "visits")
    increment = two["validation"]["increment"]
    assert two["n_rows"] == 65 and increment["previous"] == one["data_hash"]
    assert increment["rows_read"] == 25 and increment["rows_added"] == 25
    assert increment["deletions"] == "unsupported"
    read = increment["sources"]["visits"]
    assert read["from"] == {
        "byte": len("visit_id,minutes,plan,churned\n" + _visits(0, 40)),
        "line": 42,
    }
    assert read["to"]["line"] == 66 and read["waiting_bytes"] == len("65,1.0,pro")
    assert two["sources"][0]["rows"] == 25
    shown = invoke_cli("data", "show", "visits", home=home).stdout
    assert f"dataset {one['data_hash'][:12]} + the new rows; 25 rows read, 25 added" in shown
    assert "deletions: unsupported" in shown

    # The same rows read whole by a plain (not incremental) ingest: the same dataset.
    full_copy = tmp_path / "full"
    full_copy.mkdir()
    (full_copy / "visits.csv").write_text("visit_id,minutes,plan,churned\n" + _visits(0, 65))
    whole = invoke_cli("data", "validate", str(_csv_spec(full_copy, "whole", False)), home=home)
    assert f"Dataset {two['data_hash'][:12]}: 65 rows" in whole.stdout

    # Nothing complete added: no new version.
    again = invoke_cli("data", "validate", str(spec), home=home)
    assert "reused" in again.stdout and _shown(home, "visits")["data_hash"] == two["data_hash"]

    # A rewritten file (an old row changed) is noticed and read again from its start.
    csv.write_text("visit_id,minutes,plan,churned\n" + _visits(0, 66).replace("3,4.5", "3,9.5"))
    redone = invoke_cli("data", "validate", str(spec), home=home)
    assert "Reading every source from its start" in redone.stdout
    assert "no longer starts with the" in redone.stdout
    three = _shown(home, "visits")["validation"]["increment"]
    assert three["restarted"] and three["rows_read"] == 66 and three["previous"] is None


def _orders(db: Path, rows: list[tuple[int, float, str, str, str]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, amount REAL, plan TEXT, "
            "churned TEXT, changed TEXT)"
        )
        conn.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?)", rows)


def _order(i: int, changed: str, amount: float | None = None) -> tuple[int, float, str, str, str]:
    value = float(i % 13) if amount is None else amount
    return (i, value, "pro" if i % 2 else "basic", "yes" if i % 5 == 0 else "no", changed)


def _sql_spec(root: Path, name: str, url: str, growth: str) -> Path:
    spec = root / f"{name}.yaml"
    spec.write_text(SQL_SPEC.replace("NAME", name).replace("URL", url).replace("GROWTH", growth))
    return spec


def test_a_table_with_an_increasing_key_is_read_past_its_mark(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    db = tmp_path / "shop.db"
    _orders(db, [_order(i, "2026-01-01 00:00:00") for i in range(1, 51)])
    spec = _sql_spec(tmp_path, "orders", f"sqlite:///{db}", "{key: id}")
    invoke_cli("data", "validate", str(spec), home=home)
    one = _shown(home, "orders")
    assert one["n_rows"] == 50

    _orders(db, [_order(i, "2026-01-02 00:00:00") for i in range(51, 81)])
    # The final data as a full ingest sees it, copied before an old row is changed below.
    full = tmp_path / "full.db"
    with sqlite3.connect(db) as src, sqlite3.connect(full) as dst:
        src.backup(dst)
    # Changed after the first ingest; below the mark, so never read again.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE orders SET amount = -5 WHERE id = 7")
    invoke_cli("data", "validate", str(spec), home=home)
    two = _shown(home, "orders")
    increment = two["validation"]["increment"]
    assert two["n_rows"] == 80 and increment["rows_read"] == 30
    assert increment["sources"]["orders"]["from"] == "50"
    assert increment["sources"]["orders"]["to"] == "80"
    assert two["n_quarantined"] == 0  # the changed row (amount -5 fails its check) was not read
    whole = _sql_spec(tmp_path, "whole", f"sqlite:///{full}", "{key: id}")
    invoke_cli("data", "validate", str(whole), home=tmp_path / "other")
    assert _shown(tmp_path / "other", "whole")["data_hash"] == two["data_hash"]


def test_a_table_with_change_times_replaces_changed_rows_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    home = tmp_path / "ws"
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)

    def write(rows: list[tuple[int, float, str, str, str]]) -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, amount REAL, "
                    "plan TEXT, churned TEXT, changed TIMESTAMPTZ)"
                )
            )
            for row in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO orders VALUES (:i, :a, :p, :c, :t) ON CONFLICT (id) DO "
                        "UPDATE SET amount = :a, changed = :t"
                    ),
                    dict(zip("iapct", row, strict=True)),
                )

    try:
        write([_order(i, f"2026-01-01T10:{i:02d}:00+00:00") for i in range(1, 41)])
        spec = _sql_spec(tmp_path, "changes", postgres_url, "{updated_at: changed, overlap: 5m}")
        invoke_cli("data", "validate", str(spec), home=home)
        assert _shown(home, "changes")["n_rows"] == 40
        # Two old rows change, five new ones arrive.
        write(
            [
                _order(3, "2026-01-01T11:00:00+00:00", 99.0),
                _order(8, "2026-01-01T11:01:00+00:00", 98.0),
            ]
            + [_order(i, f"2026-01-01T11:{i:02d}:00+00:00") for i in range(41, 46)]
        )
        invoke_cli("data", "validate", str(spec), home=home)
        two = _shown(home, "changes")
        increment = two["validation"]["increment"]
        # Read: the rows changed since 10:40 minus 5 minutes (35..40 again), the 2 changed, 5 new.
        assert increment["rows_read"] == 6 + 2 + 5
        assert (increment["rows_added"], increment["rows_replaced"]) == (5, 2)
        assert increment["rows_unchanged"] == 6 and two["n_rows"] == 45
        # The final table read whole, in a workspace of its own.
        invoke_cli("data", "validate", str(spec), home=tmp_path / "fresh")
        assert _shown(tmp_path / "fresh", "changes")["data_hash"] == two["data_hash"]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS orders"))
        engine.dispose()


def test_a_folder_where_files_appear_adds_the_new_files_rows(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "day1.csv").write_text(
        "visit_id,minutes,plan,churned\n" + _visits(0, 30)
    )
    spec = tmp_path / "days.yaml"
    spec.write_text(
        CSV_SPEC.replace("NAME", "days")
        .replace("path: visits.csv", "path: exports/*.csv")
        .replace("INCREMENTAL", "    incremental: {mode: append}")
    )
    invoke_cli("data", "validate", str(spec), home=home)
    (tmp_path / "exports" / "day2.csv").write_text(
        "visit_id,minutes,plan,churned\n" + _visits(30, 42)
    )
    invoke_cli("data", "validate", str(spec), home=home)
    days = _shown(home, "days")
    increment = days["validation"]["increment"]
    assert days["n_rows"] == 42 and increment["rows_read"] == 12
    assert [Path(name).name for name in increment["sources"]["visits"]["files"]] == ["day2.csv"]
    shown = invoke_cli("data", "show", "days", home=home).stdout
    assert "1 file(s)" in shown and "2 file(s)" in shown
