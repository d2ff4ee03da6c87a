"""Inference of a first spec from hand-made frames: types as ingest reads them, roles, checks,
missing-value tokens, the task and join keys; and, on generated CSVs, a spec that always loads."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.data.draft import build_draft, render
from mlship.data.infer import infer_source, infer_task, join_candidates
from mlship.data.sources import read_source
from mlship.data.typing import REASONS, WARNINGS, TypedColumn, type_columns
from mlship.spec.data import Source, ValueFormats
from mlship.spec.loader import parse_spec


def _frame() -> pl.DataFrame:
    rows = 60
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(rows)],
            "email": [f"p{i}@example.com" for i in range(rows)],
            "first_name": [f"N{i % 7}" for i in range(rows)],
            "age": [" n/a" if i % 10 == 0 else str(20 + i) for i in range(rows)],
            "score": ["?" if i == 3 else f"{i / 3:.2f}" for i in range(rows)],
            "joined": [
                ["2024-01-02T03:04:05Z", "2024-01-02 03:04:05+02:00", "2024-01-02"][i % 3]
                for i in range(rows)
            ],
            "active": ["yes" if i % 2 else "no" for i in range(rows)],
            "plan": [["basic", "pro", "team"][i % 3] for i in range(rows)],
            "note": [f"free text number {i} " * 4 for i in range(rows)],
            "label": [str(i % 3) for i in range(rows)],
        }
    )


def test_types_roles_and_checks_of_hand_made_columns() -> None:
    inferred = infer_source("t", _frame(), target="label")
    columns = {c.name: c for c in inferred.columns}
    assert inferred.null_values == ("?", "n/a")
    assert {n: c.type for n, c in columns.items()} == {
        "customer_id": "string",
        "email": "string",
        "first_name": "string",
        "age": "integer",
        "score": "float",
        "joined": "datetime",
        "active": "boolean",
        "plan": "category",
        "note": "string",
        "label": "category",  # a class label written as numbers
    }
    assert columns["customer_id"].role == "id"
    assert columns["email"].role == "pii" and "e-mail" in (columns["email"].pii_reason or "")
    assert columns["first_name"].role == "pii"
    assert columns["label"].role == "target" and columns["label"].allowed == ("0", "1", "2")
    assert columns["age"].nullable and not columns["plan"].nullable
    assert (columns["age"].minimum, columns["age"].maximum) == (21.0, 79.0)
    assert columns["plan"].allowed == ("basic", "pro", "team")
    assert columns["note"].free_text
    assert infer_task(columns["label"]) == "classification"


def test_what_init_infers_is_what_ingest_accepts() -> None:
    frame = _frame()
    inferred = infer_source("t", frame, target="label")
    formats = inferred.formats or ValueFormats()
    columns = [TypedColumn(c.name, c.type, c.nullable, formats=formats) for c in inferred.columns]
    typed = type_columns(frame, columns)
    assert typed[REASONS].null_count() == frame.height  # no row fails typing
    if WARNINGS in typed.columns:
        assert typed[WARNINGS].null_count() == frame.height  # and no value is nulled unsaid
    assert typed.schema["joined"] == pl.Datetime("us", "UTC")
    assert typed["age"].null_count() == 6 and typed["score"].null_count() == 1


def test_an_id_with_a_duplicate_or_a_gap_is_a_feature() -> None:
    frame = pl.DataFrame({"order_id": ["1", "2", "2", "4"], "y": ["1.5", "2", "3", "4"]})
    columns = infer_source("t", frame, target="y").columns
    assert columns[0].role == "feature" and columns[0].type == "integer"
    assert columns[1].type == "float" and infer_task(columns[1]) == "regression"


def test_numbers_that_are_not_all_numbers_stay_text() -> None:
    frame = pl.DataFrame({"code": ["1", "2", "x7"] * 10, "y": ["a", "b", "a"] * 10})
    source = infer_source("t", frame)
    assert source.null_values == ()
    assert source.columns[0].type == "category"


def test_join_keys_are_shared_columns_whose_values_overlap() -> None:
    base = pl.DataFrame({"customer_id": ["a", "b", "c"], "city": ["x", "y", "z"]})
    other = pl.DataFrame({"customer_id": ["a", "b", "q", "r"], "city": ["n", "m", "o", "p"]})
    keys = join_candidates(base, other, "billing")
    assert [(k.column, k.overlap) for k in keys] == [("customer_id", 0.5)]


def test_a_draft_of_two_sources_joins_them_and_renames_shared_columns(tmp_path: Path) -> None:
    base = pl.DataFrame({"customer_id": ["a", "b", "c", "d"], "v": ["1.5", "2", "3", "4"]})
    other = pl.DataFrame({"customer_id": ["a", "b", "c"], "v": ["x", "y", "z"]})
    draft = build_draft(
        "crm", [(Source(path="crm.csv"), base), (Source(path="bill.csv"), other)], "v"
    )
    text = render(draft, "mlship init crm.csv bill.csv")
    spec = parse_spec(text, tmp_path / "pipeline.yaml").spec
    assert spec.combine.method == "join" and spec.combine.joins[0].on == ["customer_id"]
    assert spec.sources[1].mapping.rename == {"v": "v_bill"}
    assert [c.name for c in spec.columns] == ["customer_id", "v", "v_bill"]
    assert spec.task == "regression" and spec.target.name == "v"


_cell = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.sampled_from(["", "n/a", "?", "-", "NA", "yes", "no", "2024-05-01T10:00:00Z"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda width: st.lists(
            st.lists(_cell, min_size=width, max_size=width), min_size=2, max_size=25
        )
    )
)
def test_init_on_generated_csvs_always_writes_a_spec_that_loads(rows: list[list[str]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        header = [f"c{i}" for i in range(len(rows[0]))]
        with (directory / "data.csv").open("w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows([header, *rows])
        source = Source(path="data.csv")
        frame = read_source(source, directory).frame
        draft = build_draft("data", [(source, frame)], None)
        loaded = parse_spec(render(draft, "mlship init data.csv"), directory / "pipeline.yaml")
        assert loaded.spec.target.name == header[-1]
        assert [c.name for c in loaded.spec.columns] == header


def test_a_source_joins_onto_whichever_earlier_source_shares_its_key(tmp_path: Path) -> None:
    orders = pl.DataFrame(
        {"order_id": ["o1", "o2", "o3", "o4"], "customer_id": ["a", "b", "a", "c"],
         "total": ["1.5", "2", "3", "4"]}
    )  # fmt: skip
    customers = pl.DataFrame({"customer_id": ["a", "b", "c"], "region_id": ["r1", "r2", "r1"]})
    regions = pl.DataFrame({"region_id": ["r1", "r2"], "size": ["10", "20"]})
    draft = build_draft(
        "orders",
        [
            (Source(path="orders.csv"), orders),
            (Source(path="regions.csv"), regions),
            (Source(path="customers.csv"), customers),
        ],
        "total",
    )
    text = render(draft, "mlship init orders.csv regions.csv customers.csv")
    spec = parse_spec(text, tmp_path / "pipeline.yaml").spec
    # regions shares nothing with orders, but customers does, and regions shares with customers:
    # customers is joined first so that regions finds its key in the table built so far.
    assert [(j.source, j.on) for j in spec.combine.joins] == [
        ("customers", ["customer_id"]),
        ("regions", ["region_id"]),
    ]
    assert "100% of its region_id values are in customers" in text


def test_renamed_shared_columns_never_clash_with_existing_names(tmp_path: Path) -> None:
    base = pl.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "v": ["1.5", "2", "3", "4"], "v_bill": ["p", "q",
         "r", "s"]}
    )  # fmt: skip
    other = pl.DataFrame({"customer_id": ["a", "b", "c"], "v": ["x", "y", "z"]})
    draft = build_draft(
        "crm", [(Source(path="crm.csv"), base), (Source(path="bill.csv"), other)], "v"
    )
    spec = parse_spec(render(draft, "mlship init"), tmp_path / "pipeline.yaml").spec
    renamed = spec.sources[1].mapping.rename
    assert renamed == {"v": "v_bill_2"}
    assert [c.name for c in spec.columns] == ["customer_id", "v", "v_bill", "v_bill_2"]


def test_init_names_classes_too_small_for_a_stratified_split(tmp_path: Path) -> None:
    labels = ["a"] * 30 + ["b"] * 30 + ["c"] + ["d"] * 2
    frame = pl.DataFrame({"x": [str(i) for i in range(len(labels))], "y": labels})
    draft = build_draft("small", [(Source(path="small.csv"), frame)], "y")
    text = render(draft, "mlship init small.csv")
    spec = parse_spec(text, tmp_path / "pipeline.yaml").spec
    assert spec.split.folds == 2
    assert (
        "# class 'c' has 1 row and class 'd' has 2 rows: a stratified split needs at least 3 "
        "(one in the test set and one in each of 2 folds);"
    ) in text
