"""Typing with reasons, and the checks engine: every failing row gets a reason, nothing vanishes."""

from __future__ import annotations

import polars as pl
import pytest

from mlship.data.checks import validate
from mlship.data.stability import stability
from mlship.data.typing import REASONS, TypedColumn, type_columns
from mlship.spec.data import Column, TableChecks


def test_typing_keeps_values_and_explains_failures() -> None:
    raw = pl.DataFrame(
        {
            "n": ["1", " 2 ", "x", None, "2.5", "1e3"],
            "b": ["yes", "FALSE", "maybe", None, "1", "n"],
            "t": [
                "2024-01-02",
                "2024-01-02T10:00:00",
                "bad",
                None,
                "2024-01-02 10:00:00+02:00",
                "2024-03-01 08:30",
            ],
        }
    )
    typed = type_columns(
        raw,
        [
            TypedColumn("n", "integer"),
            TypedColumn("b", "boolean"),
            TypedColumn("t", "datetime", nullable=False),
        ],
    )
    assert typed["n"].to_list() == [1, 2, None, None, None, 1000]
    assert typed["b"].to_list() == [True, False, None, None, True, False]
    assert typed["t"].dt.hour().to_list() == [0, 10, None, None, 8, 8]
    reasons = typed[REASONS].to_list()
    assert reasons[0] is None and reasons[1] is None and reasons[5] is None
    assert reasons[2] == (
        "n: 'x' is not an integer; b: 'maybe' is not a boolean (true/false, yes/no, 1/0); "
        "t: 'bad' is not a date/time (ISO 8601)"
    )
    assert reasons[3] == "t: is empty, but the column is not nullable"
    assert reasons[4] == "n: '2.5' is not an integer"


def test_private_values_never_appear_in_reasons() -> None:
    raw = pl.DataFrame({"email": ["secret@example.com"], "age": ["old"]})
    typed = type_columns(raw, [TypedColumn("age", "integer", private=True)])
    assert typed[REASONS][0] == "age: (private value) is not an integer"


def _columns() -> list[Column]:
    return [
        Column.model_validate(
            {
                "name": "age",
                "type": "integer",
                "checks": [
                    {"min": 0, "max": 120},
                    {"outliers": {"method": "iqr"}, "severity": "warn"},
                ],
            }
        ),
        Column.model_validate(
            {"name": "plan", "type": "category", "checks": [{"allowed": ["a", "b"]}]}
        ),
        Column.model_validate(
            {
                "name": "code",
                "type": "string",
                "checks": [{"regex": "[A-Z]{2}[0-9]", "severity": "warn"}, {"unique": True}],
            }
        ),
    ]


def test_row_checks_quarantine_with_a_reason_per_failed_check() -> None:
    frame = pl.DataFrame(
        {
            "age": [30, 40, -1, 150, 35, 35, 33, 31],
            "plan": ["a", "b", "a", "c", "a", "a", "b", "a"],
            "code": ["AB1", "CD2", "EF3", "GH4", "xx", "xx", "KL7", "MN8"],
            "_source": ["s"] * 8,
            "_row": [f"line {i}" for i in range(2, 10)],
        }
    )
    result = validate(frame, _columns(), TableChecks(max_quarantine=0.5))
    assert result.rows_in == 8
    assert len(result.quarantine) + len(result.clean) == 8  # nothing vanishes
    assert result.quarantine["_row"].to_list() == ["line 4", "line 5", "line 7"]
    reasons = result.quarantine[REASONS].to_list()
    assert reasons[0] == "age: -1 is below the minimum 0"
    assert reasons[1] == "age: 150 is above the maximum 120; plan: c is not one of: a, b"
    assert (
        "duplicate of an earlier row" in reasons[2]
        and "code: xx repeats an earlier row's value" in reasons[2]
    )
    assert "_check:age.0.max" in result.quarantine.columns
    assert result.warned == 1  # row 6 ('xx' once) breaks only the warn regex
    assert set(result.clean.columns) == {"age", "plan", "code"}
    by_check = {(r.column, r.check): r for r in result.results}
    assert by_check[("age", "min")].failed == 1
    assert by_check[("age", "min")].examples == ["s line 4: age: -1 is below the minimum 0"]
    assert by_check[("code", "regex")].severity == "warn"
    assert result.passed


def test_too_many_quarantined_rows_fail_the_table() -> None:
    frame = pl.DataFrame(
        {"age": [1, -2, -3, 4], "plan": ["a"] * 4, "code": ["AA1", "AA2", "AA3", "AA4"]}
    )
    result = validate(frame, _columns(), TableChecks(max_quarantine=0.25))
    assert result.quarantined_share == 0.5
    assert not result.passed


def test_cross_column_rules_unique_keys_and_row_counts() -> None:
    frame = pl.DataFrame({"a": [1, 5, 3, 3], "b": [2, 1, None, 4], "k": [1, 2, 3, 3]})
    table = TableChecks.model_validate(
        {
            "rules": [{"name": "a_below_b", "expr": "a < b"}],
            "unique": [["k"]],
            "duplicates": "allow",
            "rows": {"min": 10},
            "max_quarantine": 1.0,
        }
    )
    result = validate(frame, [], table)
    reasons = result.quarantine[REASONS].to_list()
    assert reasons == [
        "rule a_below_b (a < b) is false",
        "(k) repeats an earlier row's values, with different values in other columns",
    ]
    assert result.table_errors == ["the dataset has 2 rows, fewer than the minimum 10"]
    assert not result.passed


def test_missing_share_and_distribution_checks() -> None:
    frame = pl.DataFrame({"x": [1.0, None, None, 4.0] * 25, "y": list(range(100))})
    columns = [
        Column.model_validate({"name": "x", "type": "float", "checks": [{"max_missing": 0.1}]}),
        Column.model_validate(
            {
                "name": "y",
                "type": "float",
                "checks": [
                    {
                        "distribution": {"reference": "ref.parquet", "max_psi": 0.2},
                        "severity": "warn",
                    }
                ],
            }
        ),
    ]
    reference = pl.Series("y", [float(v) for v in range(1000, 1100)])
    result = validate(frame, columns, TableChecks(), {"y": reference})
    assert result.table_errors == ["x: 50.0% missing, more than 10.0%"]
    warned = [r for r in result.results if r.check == "distribution"]
    assert warned and warned[0].severity == "warn"


def _psi(reference: pl.Series, current: pl.Series) -> float:
    found = stability(reference, current)
    assert found is not None
    return found.value


def test_population_stability() -> None:
    same = pl.Series([float(v % 50) for v in range(1000)])
    assert _psi(same, same) == pytest.approx(0.0, abs=1e-9)
    shifted = pl.Series([float(v % 50) + 30 for v in range(1000)])
    assert _psi(same, shifted) > 1.0
    labels = pl.Series(["a"] * 90 + ["b"] * 10)
    assert _psi(labels, pl.Series(["a"] * 50 + ["b"] * 50)) > 0.2


# -- value formats -------------------------------------------------------------------------------


def _typed(values: list[str | None], kind: str, **formats: object) -> pl.DataFrame:
    from mlship.spec.data import ValueFormats

    column = TypedColumn("v", kind, formats=ValueFormats.model_validate(formats))  # type: ignore[arg-type]
    return type_columns(pl.DataFrame({"v": values}, schema={"v": pl.String}), [column])


def test_number_formats_read_groups_marks_currency_and_percent() -> None:
    typed = _typed(
        ["1.234,5", "€ 12", "7,25 €", "3%", "1.23", "12,3,4", "1.234.567", "?", ""],
        "float",
        thousands=".",
        decimal=",",
        currency=["€"],
        percent="fraction",
        null_values=["?"],
    )
    assert typed["v"].to_list()[:5] == [1234.5, 12.0, 7.25, 0.03, None]
    assert typed["v"].to_list()[5:] == [None, 1234567.0, None, None]
    reasons = typed[REASONS].to_list()
    assert reasons[4] == "v: '1.23' is not a number (digit groups '.', decimal mark ',')"
    assert reasons[5] == "v: '12,3,4' is not a number (digit groups '.', decimal mark ',')"
    assert reasons[:4] + reasons[6:] == [None] * 7
    assert typed["_warnings"].null_count() == typed.height


def test_percent_as_number_and_integers_with_digit_groups() -> None:
    assert _typed(["12%", "12", "5.5%"], "float", percent="number")["v"].to_list() == [
        12.0,
        12.0,
        5.5,
    ]
    assert _typed(["12%"], "float")[REASONS][0] == "v: '12%' is not a number"
    typed = _typed(["1,234", "12,34", "1,234.5"], "integer", thousands=",")
    assert typed["v"].to_list() == [1234, None, None]


def test_iso_date_times_with_z_or_offsets_are_utc() -> None:
    from datetime import UTC, datetime

    typed = _typed(
        ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05+02:00", "2024-01-02 03:04:05+0200",
         "2024-01-02T03:04:05.5z", "2024-01-02T03:04"],
        "datetime",
    )  # fmt: skip
    assert typed["v"].to_list() == [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
    ]


def test_a_declared_format_and_zone_and_the_hours_a_zone_skips() -> None:
    from datetime import UTC, datetime

    typed = _typed(
        ["02/07/2024 10:00", "31/03/2024 02:30", "2024-07-02 10:00"],
        "datetime",
        format="%d/%m/%Y %H:%M",
        timezone="Europe/Paris",
    )
    assert typed["v"].to_list() == [datetime(2024, 7, 2, 8, 0, tzinfo=UTC), None, None]
    assert typed[REASONS].to_list()[1:] == [
        "v: '31/03/2024 02:30' does not name one instant in Europe/Paris (a daylight-saving "
        "change skips or repeats that hour)",
        "v: '2024-07-02 10:00' is not a date/time in the format %d/%m/%Y %H:%M",
    ]


def test_undeclared_markers_warn_in_nullable_columns_and_fail_in_required_ones() -> None:
    raw = pl.DataFrame({"a": ["N/A", "1", "-"], "b": ["2", "null", "3"]})
    typed = type_columns(raw, [TypedColumn("a", "float"), TypedColumn("b", "float", False)])
    assert typed["a"].to_list() == [None, 1.0, None]
    assert typed[REASONS].to_list() == [
        None,
        "b: 'null' is a missing-value marker, but the column is not nullable",
        None,
    ]
    warnings = typed["_warnings"].to_list()
    assert warnings[0] == (
        "a: 'N/A' was read as missing, being a common missing-value marker (declare it in "
        "`null_values` if that is what it means)"
    )
    assert warnings[1] is None and warnings[2] is not None


def test_a_lenient_cast_warns_and_keeps_the_row() -> None:
    raw = pl.DataFrame({"cents": ["150", "abc"]})
    typed = type_columns(raw, [TypedColumn("cents", "integer", lenient=True)])
    assert typed["cents"].to_list() == [150, None]
    assert typed[REASONS].to_list() == [None, None]
    assert typed["_warnings"][1] == (
        "cents: 'abc' is not an integer, so `mapping.cast` made it null"
    )


def test_reasons_say_where_the_row_is_and_its_key() -> None:
    from mlship.data.typing import Location

    raw = pl.DataFrame({"id": ["7", "8"], "where": ["orders line 2", "orders line 5"],
                        "n": ["1", "x"]})  # fmt: skip
    location = Location(pl.col("where"), pl.format("id={}", pl.col("id")))
    typed = type_columns(raw, [TypedColumn("n", "integer")], location)
    assert typed[REASONS].to_list() == [None, "orders line 5: n: 'x' is not an integer (id=8)"]


@pytest.mark.parametrize(
    ("formats", "message"),
    [
        ({"thousands": ",", "decimal": ","}, "`thousands` and `decimal` are both ','"),
        ({"thousands": "."}, "`decimal` defaults to '.'"),
        ({"decimal": "5"}, "cannot separate digits"),
        ({"currency": ["1$"]}, "is not a currency sign"),
        ({"timezone": "Nowhere/Land"}, "unknown time zone 'Nowhere/Land'"),
        ({"null_values": ["?", "?"]}, "lists each value more than once"),
    ],
)
def test_value_formats_refuse_what_cannot_be_read(formats: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    from mlship.spec.data import ValueFormats

    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("$", r"\$")):
        ValueFormats.model_validate(formats)


def test_a_column_overrides_its_source_and_number_marks_go_together() -> None:
    from mlship.spec.data import ValueFormats

    source = ValueFormats(thousands=",", null_values=["n/a"], timezone="Europe/Paris")
    column = ValueFormats(decimal=",", null_values=["?"])
    merged = column.over(source)
    assert (merged.thousands, merged.decimal) == (None, ",")
    assert merged.null_values == ["?"] and merged.timezone == "Europe/Paris"


def test_large_integers_keep_every_digit_with_formats_declared() -> None:
    typed = _typed(["9007199254740993", "1,000,000,000,000,000,001", "2.0"], "integer",
                   thousands=",", null_values=["?"])  # fmt: skip
    assert typed["v"].to_list() == [9007199254740993, 1000000000000000001, 2]
