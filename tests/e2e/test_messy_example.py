"""The messy-sources example end to end: what mlship does with each defect class it ships with.

The example's four sources (orders CSV, a SQLite CRM, a JSON lines price history, a Windows-1252
delivery export) carry every defect on purpose, at lines its README names. One real ``mlship run``
ingests, trains and registers; the assertions read what a user reads: the quarantine Parquet,
the validation summary in the data report, the run's output, ``mlship predict`` on the example's
files to score, and ``mlship serve`` answering bad records.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import polars as pl
import pytest

from mlship.config import Settings
from mlship.data.ingested import dataset_frame
from mlship.examples.messy import write_project
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, run_cli
from tests.serving import serving


@dataclass(frozen=True)
class Ran:
    """The example written to ``root`` and run once into ``home``; what ``mlship run`` printed."""

    root: Path
    home: Path
    stdout: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    def quarantine(self) -> pl.DataFrame:
        return pl.read_parquet(self.home / "reports" / "returns-quarantine.parquet")

    def report(self) -> dict[str, Any]:
        path = self.home / "reports" / "returns-data.json"
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return report

    def stored(self) -> pd.DataFrame:
        workspace = Workspace.open(Settings(home=self.home))
        try:
            [dataset] = workspace.tracking.list_datasets()
            return dataset_frame(dataset, workspace).set_index("order_id")
        finally:
            workspace.close()


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    root = tmp_path_factory.mktemp("messy")
    spec = write_project(root / "shop")
    home = root / "home"
    result = run_cli("run", str(spec), home=home, cwd=root)
    return Ran(root / "shop", home, result.stdout)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _reasons(ran: Ran) -> dict[tuple[int, str], str]:
    """Quarantined rows by (order id, line in orders.csv): their reasons."""
    frame = ran.quarantine()
    assert set(frame["_source"]) == {"orders"}
    return {
        (int(row["order_id"]), row["_row"]): row["_reasons"] for row in frame.iter_rows(named=True)
    }


def test_the_shipped_files_carry_the_defects_the_readme_names(ran: Ran) -> None:
    orders = (ran.data / "orders.csv").read_text(encoding="utf-8").splitlines()
    assert orders[4].split(",")[4] == "n/a" and orders[7].split(",")[4] == "two"
    assert orders[10] == orders[31]  # order 1010 exported twice, byte for byte
    assert '"$1,' in orders[27] and "+0530" in orders[1] and orders[2].split(",")[3].endswith("Z")
    raw = (ran.data / "deliveries.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    deliveries = raw.decode("cp1252").splitlines()
    assert "Grün Kurier" in raw.decode("cp1252") and "1.250,5" in deliveries[25]
    assert deliveries[16].split(";")[2] == "31.02.2026 10:00"
    prices = (ran.data / "prices.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(prices[77])["price"] is True and json.loads(prices[8])["price"] == "n/a"


def test_every_defect_class_is_quarantined_with_its_source_line_column_value_and_id(
    ran: Ran,
) -> None:
    out = _flat(ran.stdout)
    assert "Validation: 1501 rows in, 1489 kept, 12 quarantined (0.8%, allowed 3.0%)" in out
    assert "5 with warnings" in out
    assert "Registered returns:1" in out
    forty = "customers row 6: age: 'forty' is not an integer (customer_id=K10006)"
    conflict = (
        "duplicate key (order_id = 1020) in source 'orders': lines 21, 42 disagree on amount "
        "(27.11 at line 21, 37.11 at line 42)"
    )
    assert _reasons(ran) == {
        # CSV, a string in an integer column
        (1007, "line 8"): "orders line 8: quantity: 'two' is not an integer (order_id=1007)",
        # range and allowed-values checks
        (1008, "line 9"): "quantity: 0 is below the minimum 1",
        (1009, "line 10"): "quantity: 40 is above the maximum 20",
        (1012, "line 13"): "country: XX is not one of: DE, FR, NL, AT, BE",
        # the Berlin export's date format, a day that does not exist
        (1016, "line 17"): "deliveries line 17: shipped_at: '31.02.2026 10:00' is not a "
        "date/time in the format %d.%m.%Y %H:%M (order_id=1016)",
        # a joined source's bad value names that source's line
        (1051, "line 54"): "price: -20.38 is below the minimum 0 (from prices line 79)",
        # JSON lines: a boolean among numbers
        (1061, "line 64"): "prices line 78: price: 'true' is not a number (sku=P139)",
        # SQLite: text in an INTEGER column, on every order of that customer
        (1686, "line 689"): forty,
        (2070, "line 1073"): forty,
        (2304, "line 1307"): forty,
        # a key whose copies disagree: both copies, both values
        (1020, "line 21"): conflict,
        (1020, "line 42"): conflict,
    }
    quarantine = ran.quarantine()
    by_id = {row["order_id"]: row for row in quarantine.iter_rows(named=True)}
    assert by_id[1051]["_row:prices"] == "line 79"
    assert by_id[1061]["_row:prices"] == "line 78"
    assert by_id[1016]["_row:deliveries"] == "line 17"
    assert by_id[1686]["_row:customers"] == "row 6"


def test_duplicates_warnings_and_declared_checks_are_listed(ran: Ran) -> None:
    out = _flat(ran.stdout)
    for line in (
        "Duplicate keys in orders (order_id): 1 exact copies collapsed, 1 conflicting keys, "
        "quarantined",
        "Duplicate keys in customers (customer_id): 1 exact copies collapsed, 0 conflicting keys",
        "Duplicate keys in prices (sku): 0 exact copies collapsed, 40 conflicting keys, kept "
        "newest",
        "Duplicate keys in deliveries (order_id): 0 exact copies collapsed, 1 conflicting keys, "
        "kept last",
    ):
        assert line in out
    validation = ran.report()["validation"]
    assert validation["rows"] == {"in": 1501, "quarantined": 12, "warned": 5, "out": 1489}
    duplicates = {d["source"]: d for d in validation["duplicates"]}
    counts = {
        name: (d["rows"], d["exact_copies"], d["conflicting_keys"], d["quarantined_rows"])
        for name, d in duplicates.items()
    }
    assert counts == {
        "orders": (1502, 1, 1, 2),
        "customers": (501, 1, 0, 0),
        "prices": (80, 0, 40, 0),
        "deliveries": (1501, 0, 1, 0),
    }
    assert (duplicates["prices"]["outcome"], duplicates["prices"]["dropped_rows"]) == (
        "kept newest",
        40,
    )
    declared = {
        (d["column"], d["check"]): (d["severity"], d["tested"], d["failed"], d["passed"])
        for d in validation["declared"]
    }
    assert declared == {
        (None, "on_duplicate quarantine (order_id) in orders"): ("error", 1502, 2, False),
        (None, "on_duplicate quarantine (customer_id) in customers"): ("error", 501, 0, True),
        (None, "on_duplicate newest_by price_updated_at (sku) in prices"): ("warn", 80, 0, False),
        (None, "on_duplicate keep_last (order_id) in deliveries"): ("warn", 1501, 0, False),
        ("quantity", "min"): ("error", 1495, 1, False),
        ("quantity", "max"): ("error", 1495, 1, False),
        ("discount", "max"): ("warn", 1499, 2, False),
        ("country", "allowed"): ("error", 1499, 1, False),
        ("age", "min"): ("error", 1489, 0, True),
        ("age", "max"): ("error", 1489, 0, True),
        ("price", "min"): ("error", 1498, 1, False),
        ("weight_kg", "outliers"): ("warn", 1499, 1, False),
        (None, "duplicate row"): ("error", 1499, 0, True),
        (None, "max_quarantine"): ("error", 1501, 12, True),
    }
    warnings = {
        (c["column"], c["check"]): (c["failed"], c["examples"][0])
        for c in validation["checks"]
        if c["severity"] == "warn"
    }
    assert warnings == {
        ("age", "type"): (
            2,
            "customers row 3: age: 'n/a' was read as missing, being a common missing-value "
            "marker (declare it in `null_values` if that is what it means) (customer_id=K10003)",
        ),
        ("discount", "max"): (2, "orders line 14: discount: 0.6 is above the maximum 0.5"),
        ("weight_kg", "outliers"): (
            1,
            "orders line 26: weight_kg: 1250.5 is an outlier (iqr, threshold 10) "
            "(from deliveries line 26)",
        ),
    }
    shown = _flat(invoke_cli("data", "show", "returns", home=ran.home).stdout)
    assert "on_duplicate newest_by price_updated_at (sku) in prices" in shown
    assert "Duplicate keys in orders (order_id): 1 exact copies collapsed" in shown


def test_rows_in_are_the_clean_rows_and_the_quarantined_ones_id_by_id(ran: Ran) -> None:
    with (ran.data / "orders.csv").open(encoding="utf-8", newline="") as handle:
        lines = [tuple(row) for row in csv.reader(handle)][1:]
    distinct = list(dict.fromkeys(lines))  # the exact copy collapses into its first line
    assert len(lines) - len(distinct) == 1
    read = sorted(int(row[0]) for row in distinct)
    clean = list(ran.stored().index)
    quarantined = ran.quarantine()["order_id"].to_list()
    assert len(clean) == 1489 and len(quarantined) == 12
    assert sorted(clean + quarantined) == read


def test_values_are_stored_as_the_spec_declares_them_written(ran: Ran) -> None:
    stored = ran.stored()
    # "n/a", "?" and "" are declared missing: kept rows with no quantity.
    assert stored.loc[[1004, 1005, 1006], "quantity"].isna().all()
    assert stored.loc[1027, "amount"] == pytest.approx(1171.16)  # "$1,171.16"
    assert stored.loc[1001, "discount"] == pytest.approx(0.10)  # "10%"
    # Z, +01:00 and +0530 all stored in UTC.
    assert stored.loc[1001, "ordered_at"] == pd.Timestamp(datetime(2026, 3, 2, 8, 35, tzinfo=UTC))
    assert stored.loc[1002, "ordered_at"] == pd.Timestamp(datetime(2026, 3, 2, 9, 52, tzinfo=UTC))
    assert stored.loc[1003, "ordered_at"] == pd.Timestamp(datetime(2026, 3, 2, 11, 42, tzinfo=UTC))
    # Berlin wall-clock times, "1.250,5" and "6,77 €" from the Windows-1252 export.
    assert stored.loc[1001, "shipped_at"] == pd.Timestamp(datetime(2026, 3, 3, 4, 35, tzinfo=UTC))
    assert stored.loc[1025, "weight_kg"] == pytest.approx(1250.5)
    assert stored.loc[1001, "shipping_cost"] == pytest.approx(6.77)
    assert "Grün Kurier" in set(stored["carrier"].astype(str))
    # keep_last: order 1003's second delivery record (re-weighed at 9,9 kg) is the one kept.
    assert stored.loc[1003, "weight_kg"] == pytest.approx(9.9)
    # newest_by: each product's price of 20 February, not January's.
    prices = [json.loads(line) for line in (ran.data / "prices.jsonl").open(encoding="utf-8")]
    newest = {p["sku"]: p["price"] for p in prices if p["updated_at"].startswith("2026-02")}
    assert stored.loc[1001, "price"] == pytest.approx(newest[stored.loc[1001, "sku"]])
    # 'n/a' in the CRM, undeclared: read as missing with a warning, the orders kept.
    assert stored.loc[stored["customer_id"] == "K10003", "age"].isna().all()


def test_predict_reads_the_scoring_files_as_training_did(ran: Ran) -> None:
    output = ran.root / "scored.csv"
    new = ran.data / "new_orders.csv"
    result = invoke_cli(
        "predict", "returns", str(new), "-o", str(output), "--no-prediction-log", home=ran.home
    )
    assert "Scored 200 rows with returns:1" in _flat(result.stdout)
    written = pd.read_csv(new, dtype=str, keep_default_na=False)
    assert (written["quantity"] == "n/a").sum() > 0 and written["amount"].str.startswith("$").all()
    scored = pd.read_csv(output)
    assert scored["order_id"].tolist() == [int(v) for v in written["order_id"]]
    assert scored["proba_yes"].between(0, 1).all()

    late = ran.data / "late_orders.csv"
    refused = invoke_cli(
        "predict", "returns", str(late), "-o", str(output), "--no-prediction-log",
        home=ran.home, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert _flat(refused.stderr) == (
        f"error: {late}: 1 problem(s) row 3 (line 4), column 'amount': 'about $40' is not a number"
    )


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "order_id": 9001,
        "sku": "P113",
        "quantity": 2,
        "amount": 41.64,
        "discount": 0.1,
        "country": "DE",
        "age": 45,
        "tier": "basic",
        "price": 20.82,
        "carrier": "DHL",
        "weight_kg": 4.5,
        "shipping_cost": 6.69,
    }
    return record | changes


def _raw(record: dict[str, Any], field: str, literal: str) -> str:
    """A /predict body whose ``field`` is ``literal`` as written, e.g. NaN, which JSON lacks."""
    text = json.dumps({"records": [record | {field: 0}]})
    return text.replace(f'"{field}": 0', f'"{field}": {literal}')


def test_serve_answers_bad_values_naming_the_field_and_flags_unusual_ones(ran: Ran) -> None:
    with serving("returns", ran.home) as server:
        url = f"{server.base}/predict"
        headers = {"Content-Type": "application/json"}
        refused = {
            "NaN": _raw(_record(), "quantity", "NaN"),
            "1e309": _raw(_record(), "amount", "1e309"),
            "text": json.dumps({"records": [_record(amount="$1,234.50")]}),
            "empty": json.dumps({"records": []}),
        }
        answers = {
            name: httpx.post(url, content=body, headers=headers, timeout=30)
            for name, body in refused.items()
        }
        assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(refused, 422)
        assert answers["NaN"].json() == {
            "errors": ["records[0].quantity: NaN is not a number a model can take (not finite)"]
        }
        assert answers["1e309"].json() == {
            "errors": ["records[0].amount: 1e309 overflows a 64-bit float"]
        }
        # JSON carries numbers as numbers: the source's "$1,234.50" format is not a JSON one.
        assert answers["text"].json() == {
            "errors": [
                "records[0].amount: Input should be a valid number, unable to parse string as "
                "a number"
            ]
        }
        assert answers["empty"].json() == {
            "errors": ["records: none given; send at least one record"]
        }

        records = [_record(), _record(order_id=9002, carrier="Pigeon Post"), _record(
            order_id=9003, weight_kg=90000.0
        )]  # fmt: skip
        answer = httpx.post(url, json={"records": records}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["ids"] == [{"order_id": 9001}, {"order_id": 9002}, {"order_id": 9003}]
        assert body["warnings"] == [
            [],
            [{"column": "carrier", "kind": "unseen_category", "value": "Pigeon Post"}],
            [{"column": "weight_kg", "kind": "above_training_range", "value": 90000.0}],
        ]
        assert len(body["predictions"]) == 3
        assert "Traceback" not in server.output_text()


def test_the_readme_quotes_the_messages_users_see(ran: Ran) -> None:
    """The README's walk-through quotes the run's own words: every reason it names is real."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text(encoding="utf-8")
    section = _flat(text[text.index("## What mlship does with messy sources") :])
    section = section[: section.index("## What a run does")]
    reasons = set(ran.quarantine()["_reasons"])
    assert len(reasons) == 9
    assert {reason for reason in reasons if f"`{reason}`" not in section} == set()
    validation = re.search(r"Validation: [^\n]*? with warnings", ran.stdout)
    assert validation is not None and f"`{validation.group(0)}`" in section
    duplicates = re.findall(r"Duplicate keys in (?:orders|prices) [^\n]*", ran.stdout)
    assert len(duplicates) == 2 and all(f"`{line.strip()}`" in section for line in duplicates)


def test_the_example_is_what_write_project_writes(tmp_path: Path) -> None:
    """Same seed, same bytes: the README's line numbers hold on every machine."""
    first, second = write_project(tmp_path / "a"), write_project(tmp_path / "b")
    for name in ("orders.csv", "prices.jsonl", "deliveries.csv", "new_orders.csv"):
        a = (first.parent / "data" / name).read_bytes()
        assert a == (second.parent / "data" / name).read_bytes(), name
    assert first.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")
