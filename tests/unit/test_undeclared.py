"""Columns the spec does not declare: the spec's two shapes of ``columns``, inference of the rest
with ingest's own reading of values, and the sentence that lists the ones left out."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.data.typing import REASONS, TypedColumn, type_columns
from mlship.data.undeclared import infer_undeclared, left_out, left_out_message, with_columns
from mlship.errors import DataError, SpecError
from mlship.spec.data import Column, ValueFormats
from mlship.spec.loader import LoadedSpec, parse_spec

_HEAD = """name: t
task: {task}
sources: [{{path: t.csv}}]
models: [{{estimator: logistic_regression}}]
metric: {metric}
"""


def _spec(body: str, tmp_path: Path, task: str = "classification") -> LoadedSpec:
    metric = "accuracy" if task == "classification" else "r2"
    text = _HEAD.format(task=task, metric=metric) + body
    if task == "regression":
        text = text.replace("logistic_regression", "ridge")
    return parse_spec(text, tmp_path / "pipeline.yaml")


def test_columns_infer_with_a_target_named_apart_loads(tmp_path: Path) -> None:
    spec = _spec("target: y\ncolumns: {infer: true}\n", tmp_path).spec
    assert spec.infer_columns and spec.columns == [] and spec.target_column == "y"
    with pytest.raises(LookupError, match="inferred from the data"):
        _ = spec.target


def test_the_list_form_and_a_target_key_naming_a_declared_column(tmp_path: Path) -> None:
    spec = _spec(
        "target: y\ncolumns:\n  - {name: x, type: float}\n  - {name: y, type: category}\n", tmp_path
    ).spec
    assert not spec.infer_columns and spec.target.name == "y" and spec.features[0].name == "x"
    mapped = _spec(
        "columns:\n  infer: true\n  declared:\n    - {name: y, type: category, role: target}\n",
        tmp_path,
    ).spec
    assert mapped.infer_columns and mapped.target.name == "y"
    # A spec dumped (as a run stores it) loads again as the same spec.
    assert type(mapped).model_validate(mapped.model_dump(mode="json")) == mapped


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("columns: {infer: true}\n", "line 6, field columns: expected exactly one column with "
         "role target, found 0; name the column to predict with `target: COLUMN`"),
        ("target: y\ncolumns: [{name: x, type: float}, {name: z, type: float}]\n",
         "line 6, field target: no declared column is called 'y'; declare it, or take the "
         "columns the spec does not declare from the data with `columns: {infer: true}`"),
        ("target: y\ncolumns:\n  infer: true\n  declared:\n    - {name: y, type: float, "
         "role: id}\n", "line 10, field columns.declared[0].role: column 'y' is the target "
         "(target: y) but is declared with role id"),
        ("target: y\ncolumns:\n  infer: true\n  declared:\n    - {name: x, type: colour}\n",
         "line 10, field columns.declared[0].type:"),
        ("target: y\ncolumns: {infer: maybe}\n", "field columns.infer:"),
        ("target: y\ncolumns: {infer: true, guess: true}\n",
         "columns: unknown key(s) guess; as a mapping, columns takes `infer: true` and "
         "`declared:`"),
        ("target: y\ncolumns:\n  - {name: x, type: float}\n  - {name: z, type: float, role: "
         "target}\n", "field target: names 'y', but column 'z' has role target"),
    ],
)  # fmt: skip
def test_spec_errors_of_the_columns_shapes_name_the_line_and_field(
    tmp_path: Path, body: str, expected: str
) -> None:
    with pytest.raises(SpecError) as raised:
        _spec(body, tmp_path)
    assert expected in str(raised.value)


def _sources() -> dict[str, pl.DataFrame]:
    rows = 60
    return {
        "t": pl.DataFrame(
            {
                "customer_id": [f"C{i:03d}" for i in range(rows)],
                "email": [f"p{i}@example.com" for i in range(rows)],
                "age": ["n/a" if i % 10 == 0 else str(20 + i) for i in range(rows)],
                "note": [
                    f"a long free text about the customer number {i} " * 2 for i in range(rows)
                ],
                "plan": [["basic", "pro"][i % 2] for i in range(rows)],
                "y": [str(i % 3) for i in range(rows)],
            }
        )
    }


def test_undeclared_columns_are_inferred_as_init_would_and_ingest_reads_them(
    tmp_path: Path,
) -> None:
    loaded = _spec(
        "target: y\ncolumns:\n  infer: true\n  declared:\n    - {name: plan, type: string}\n",
        tmp_path,
    )
    frames = _sources()
    inferred = infer_undeclared(loaded.spec, frames)
    assert [(c.name, c.type, c.role) for c in inferred] == [
        ("customer_id", "string", "id"),
        ("email", "string", "pii"),
        ("age", "integer", "feature"),
        ("note", "string", "feature"),
        ("y", "category", "target"),  # class labels written as numbers
    ]
    by_name = {c.name: c for c in inferred}
    assert by_name["age"].values is not None and by_name["age"].values.null_values == ["n/a"]
    assert by_name["note"].transform is not None and by_name["note"].transform.text
    assert infer_undeclared(loaded.spec, _sources()) == inferred  # the same data, the same columns
    typed = type_columns(
        frames["t"],
        [
            TypedColumn(c.name, c.type, c.nullable, formats=c.values or ValueFormats())
            for c in inferred
            if c.role != "pii"
        ],
    )
    assert typed[REASONS].null_count() == frames["t"].height  # ingest accepts every value
    assert typed["age"].null_count() == 6
    resolved = with_columns(loaded, [*loaded.spec.columns, *inferred]).spec
    assert resolved.target.name == "y" and not resolved.infer_columns
    assert [c.name for c in resolved.features] == ["plan", "age", "note"]


def test_an_inferred_target_that_is_not_a_number_cannot_be_regressed(tmp_path: Path) -> None:
    loaded = _spec("target: plan\ncolumns: {infer: true}\n", tmp_path, task="regression")
    inferred = infer_undeclared(loaded.spec, _sources())
    with pytest.raises(DataError, match="column 'plan': a regression target must be of type"):
        with_columns(loaded, list(inferred))
    missing = _spec("target: churn\ncolumns: {infer: true}\n", tmp_path)
    with pytest.raises(DataError, match="target 'churn': no source has this column"):
        infer_undeclared(missing.spec, _sources())


def test_stacked_sources_are_inferred_from_all_their_rows(tmp_path: Path) -> None:
    text = (
        "name: t\ntask: regression\nsources: [{path: a.csv}, {path: b.csv}]\n"
        "models: [{estimator: ridge}]\nmetric: r2\ntarget: y\ncolumns: {infer: true}\n"
    )
    loaded = parse_spec(text, tmp_path / "pipeline.yaml")
    frames = {
        "a": pl.DataFrame({"x": ["1", "2", "3"], "y": ["1.5", "2", "3"]}),
        "b": pl.DataFrame({"x": [4.5, 5.0, 6.0], "y": ["4", "5", "6"]}),
    }
    inferred = {c.name: c.type for c in infer_undeclared(loaded.spec, frames)}
    assert inferred == {"x": "float", "y": "float"}


def test_left_out_columns_are_listed_in_table_order_without_bookkeeping() -> None:
    declared = [Column(name="a", type="float"), Column(name="y", type="float", role="target")]
    found = left_out(["a", "c", "_source", "b", "y", "_row:prices"], declared)
    assert found == ("c", "b")
    assert left_out_message(["a", "b", "c"]) == (
        "3 columns in the sources are not in the spec and were left out: a, b, c — declare "
        "them, or add `infer: true` under columns"
    )
    assert left_out_message(["a"]).startswith("1 column in the sources is not in the spec and was")


_cell = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.sampled_from(["", "n/a", "?", "-", "NA", "yes", "no", "2024-05-01T10:00:00Z", "a@b.io"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda width: st.lists(
            st.lists(_cell, min_size=width, max_size=width), min_size=1, max_size=25
        )
    )
)
def test_whatever_the_values_ingest_reads_every_inferred_column_without_a_reason(
    rows: list[list[str | None]],
) -> None:
    names = [f"c{i}" for i in range(len(rows[0]))]
    frame = pl.DataFrame(
        {name: [row[i] for row in rows] for i, name in enumerate(names)},
        schema=dict.fromkeys(names, pl.String),
    )
    text = (
        _HEAD.format(task="classification", metric="accuracy")
        + "target: y\ncolumns: {infer: true}\n"
    )
    spec = parse_spec(text, Path("pipeline.yaml")).spec
    inferred = infer_undeclared(spec, {"t": frame.with_columns(pl.lit("a").alias("y"))})
    assert infer_undeclared(spec, {"t": frame.with_columns(pl.lit("a").alias("y"))}) == inferred
    typed = type_columns(
        frame,
        [
            TypedColumn(c.name, c.type, c.nullable, formats=c.values or ValueFormats())
            for c in inferred
            if c.role != "pii" and c.name != "y"
        ],
    )
    assert typed[REASONS].null_count() == frame.height
