"""Per-source mapping: renames, SQL-derived columns and unit conversions, each error naming the
source and the column so the user knows which file and which field to fix."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from mlship.data.mapping import check_expression, convert_units, derive_columns, rename_columns
from mlship.data.units import UnitError, conversion
from mlship.errors import DataError
from mlship.spec.data import Mapping, UnitConversion


def _units(**pairs: tuple[str, str]) -> Mapping:
    return Mapping(units={c: UnitConversion(from_unit=a, to_unit=b) for c, (a, b) in pairs.items()})


def _convert(values: list[Any], from_unit: str, to_unit: str) -> list[Any]:
    frame = pl.DataFrame({"v": values})
    return convert_units(frame, _units(v=(from_unit, to_unit)), "src")["v"].to_list()


# -- rename ----------------------------------------------------------------------------------


def test_rename_gives_dataset_names_and_keeps_other_columns() -> None:
    frame = pl.DataFrame({"cust": ["a"], "amt": [1], "other": [True]})
    out = rename_columns(frame, Mapping(rename={"cust": "customer_id", "amt": "amount"}), "crm")
    assert out.columns == ["customer_id", "amount", "other"]
    assert out.row(0) == ("a", 1, True)


def test_rename_can_swap_two_names() -> None:
    frame = pl.DataFrame({"a": [1], "b": [2]})
    out = rename_columns(frame, Mapping(rename={"a": "b", "b": "a"}), "src")
    assert out.to_dicts() == [{"b": 1, "a": 2}]


def test_rename_without_mapping_returns_the_frame_unchanged() -> None:
    frame = pl.DataFrame({"a": [1]})
    assert rename_columns(frame, Mapping(), "src").equals(frame)


def test_rename_of_a_missing_column_names_source_column_and_what_exists() -> None:
    frame = pl.DataFrame({"id": [1], "amt": [2]})
    with pytest.raises(DataError) as info:
        rename_columns(frame, Mapping(rename={"amount_cents": "amount"}), "billing")
    message = str(info.value)
    assert "source 'billing'" in message
    assert "'amount_cents'" in message
    assert "the source has: id, amt" in message


def test_rename_onto_an_existing_column_is_refused() -> None:
    frame = pl.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(DataError, match=r"source 'src': renaming 'a' to 'b' clashes"):
        rename_columns(frame, Mapping(rename={"a": "b"}), "src")


def test_two_columns_renamed_to_one_name_are_refused() -> None:
    frame = pl.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(DataError, match=r"columns 'a' and 'b' are both renamed to 'x'"):
        rename_columns(frame, Mapping(rename={"a": "x", "b": "x"}), "src")


# -- derive ----------------------------------------------------------------------------------


def test_derive_adds_columns_from_sql_expressions() -> None:
    frame = pl.DataFrame({"cents": [1250, 99], "plan": ["gold", "basic"]})
    mapping = Mapping(
        derive={
            "price": "cents / 100",
            "premium": "CASE WHEN plan = 'gold' THEN 1 ELSE 0 END",
            "label": "upper(plan)",
        }
    )
    out = derive_columns(frame, mapping, "src")
    assert out["price"].to_list() == [12.5, 0.99]
    assert out["premium"].to_list() == [1, 0]
    assert out["label"].to_list() == ["GOLD", "BASIC"]
    assert out.columns[:2] == ["cents", "plan"]


def test_derive_replaces_an_existing_column() -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    out = derive_columns(frame, Mapping(derive={"a": "a * 10"}), "src")
    assert out.columns == ["a"]
    assert out["a"].to_list() == [10, 20]


def test_derive_may_use_a_column_derived_before_it() -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    out = derive_columns(frame, Mapping(derive={"b": "a + 1", "c": "b * 2"}), "src")
    assert out["c"].to_list() == [4, 6]


def test_derive_never_evaluates_python() -> None:
    frame = pl.DataFrame({"a": [1]})
    with pytest.raises(DataError, match="not a valid SQL expression"):
        derive_columns(frame, Mapping(derive={"b": "__import__('os').getcwd()"}), "src")


def test_derive_parse_error_names_source_column_and_expression() -> None:
    frame = pl.DataFrame({"a": [1]})
    with pytest.raises(DataError) as info:
        derive_columns(frame, Mapping(derive={"b": "a +"}), "crm")
    message = str(info.value)
    assert "source 'crm', derived column 'b' = 'a +'" in message
    assert "not a valid SQL expression" in message


def test_derive_with_an_unknown_column_names_it_and_the_columns_that_exist() -> None:
    frame = pl.DataFrame({"amount": [1], "id": [2]})
    with pytest.raises(DataError) as info:
        derive_columns(frame, Mapping(derive={"dollars": "amout / 100"}), "billing")
    message = str(info.value)
    assert "source 'billing', derived column 'dollars' = 'amout / 100'" in message
    assert "unknown column(s) 'amout'" in message
    assert "the source has: amount, id" in message


def test_derive_that_cannot_be_evaluated_is_a_data_error() -> None:
    frame = pl.DataFrame({"name": ["x"]})
    with pytest.raises(DataError, match=r"derived column 'half' = 'name / 2': cannot be evaluated"):
        derive_columns(frame, Mapping(derive={"half": "name / 2"}), "src")


def test_check_expression_accepts_valid_sql() -> None:
    assert check_expression("a / 100") is None
    assert check_expression("CASE WHEN a > 1 THEN 'x' ELSE 'y' END") is None
    assert check_expression("coalesce(a, b, 0)") is None


@pytest.mark.parametrize("expr", ["a +", "SELECT a FROM t", "a; DROP TABLE t", "no_such_fn(a)", ""])
def test_check_expression_explains_why_an_expression_is_invalid(expr: str) -> None:
    reason = check_expression(expr)
    assert isinstance(reason, str)
    assert reason
    assert "\n" not in reason


# -- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "from_unit", "to_unit", "expected"),
    [
        ([150, 2], "cm", "m", [1.5, 0.02]),
        ([1, 10], "in", "cm", [2.54, 25.4]),
        ([3], "km", "m", [3000.0]),
        ([1], "mi", "ft", [5280.0]),
        ([1], "lb", "kg", [0.45359237]),
        ([16], "oz", "lb", [1.0]),
        ([2500], "g", "kg", [2.5]),
        ([90], "min", "h", [1.5]),
        ([1], "d", "s", [86400.0]),
        ([1500], "ms", "s", [1.5]),
        ([1234, 5], "cents", "units", [12.34, 0.05]),
        ([12.34], "units", "cents", [1234.0]),
        ([2], "KB", "B", [2000.0]),
        ([1], "GiB", "MiB", [1024.0]),
        ([1], "MiB", "MB", [1.048576]),
        ([100, -40, 0], "C", "F", [212.0, -40.0, 32.0]),
        ([212.0, 32.0, 98.6], "F", "C", [100.0, 0.0, 37.0]),
        ([273.15, 0], "K", "C", [0.0, -273.15]),
        ([0], "C", "K", [273.15]),
        ([32], "F", "K", [273.15]),
    ],
)
def test_unit_conversions(
    values: list[float], from_unit: str, to_unit: str, expected: list[float]
) -> None:
    assert _convert(values, from_unit, to_unit) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_simple_conversions_come_out_exact() -> None:
    assert _convert([212], "F", "C") == [100.0]
    assert _convert([100], "C", "F") == [212.0]
    assert _convert([1234], "cents", "units") == [12.34]
    assert _convert([1], "in", "cm") == [2.54]


def test_converted_columns_are_float_and_keep_nulls() -> None:
    frame = pl.DataFrame({"km": [1, None], "other": ["x", "y"]})
    out = convert_units(frame, _units(km=("km", "m")), "src")
    assert out.schema["km"] == pl.Float64
    assert out["km"].to_list() == [1000.0, None]
    assert out["other"].to_list() == ["x", "y"]


def test_several_columns_convert_at_once() -> None:
    frame = pl.DataFrame({"a": [1.0], "b": [0.0]})
    out = convert_units(frame, _units(a=("m", "cm"), b=("C", "F")), "src")
    assert out.row(0) == (100.0, 32.0)


def test_converting_between_dimensions_names_source_column_and_units() -> None:
    frame = pl.DataFrame({"weight": [1.0]})
    with pytest.raises(DataError) as info:
        convert_units(frame, _units(weight=("cm", "kg")), "scale")
    message = str(info.value)
    assert "source 'scale', column 'weight' (cm -> kg)" in message
    assert "'cm' (length)" in message
    assert "'kg' (mass)" in message


def test_unknown_unit_lists_the_known_ones() -> None:
    frame = pl.DataFrame({"price": [1.0]})
    with pytest.raises(DataError) as info:
        convert_units(frame, _units(price=("cents", "dollars")), "shop")
    message = str(info.value)
    assert "source 'shop', column 'price' (cents -> dollars)" in message
    assert "unknown unit 'dollars'" in message
    assert "money: cents, units" in message


def test_non_numeric_column_cannot_be_converted() -> None:
    frame = pl.DataFrame({"height": ["180"]})
    with pytest.raises(DataError, match=r"source 'src', column 'height' \(cm -> m\).*String"):
        convert_units(frame, _units(height=("cm", "m")), "src")


def test_converting_a_missing_column_names_what_exists() -> None:
    frame = pl.DataFrame({"a": [1.0]})
    with pytest.raises(DataError, match=r"column 'b' \(cm -> m\): no such column.*has: a"):
        convert_units(frame, _units(b=("cm", "m")), "src")


def test_unit_table_refuses_mixed_dimensions_and_unknown_names() -> None:
    with pytest.raises(UnitError):
        conversion("s", "m")
    with pytest.raises(UnitError):
        conversion("mb", "MB")
    assert conversion("B", "B").integers() == (1, 0, 1)
