"""The spec loader's transform rules: each option only where it means something, named by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlship.errors import SpecError
from mlship.spec import parse_spec
from mlship.spec.loader import LoadedSpec

SPEC = """\
name: orders
task: classification
sources:
  - path: data/orders.csv
columns:
  - {name: id, type: string, role: id}
  - {name: amount, type: float}
  - {name: plan, type: category}
  - {name: placed_at, type: datetime}
  - {name: note, type: string}
  - {name: returned, type: category, role: target}
models:
  - {name: logistic, estimator: logistic_regression}
metric: roc_auc
"""

AMOUNT = "{name: amount, type: float}"
PLAN = "{name: plan, type: category}"
PLACED_AT = "{name: placed_at, type: datetime}"
NOTE = "{name: note, type: string}"


def _with(column: str, transform: str, text: str = SPEC) -> str:
    """``text`` with ``column``'s entry given ``transform: {...}``."""
    return text.replace(column, column[:-1] + f", transform: {{{transform}}}}}")


def _load(text: str) -> LoadedSpec:
    return parse_spec(text, Path("/project/pipeline.yaml"))


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        _load(text)
    return str(info.value)


def test_datetime_and_text_features_load() -> None:
    text = _with(PLACED_AT, "parts: [year, hour]")
    text = _with(NOTE, "text: [length, tokens], max_tokens: 20", text)
    text = _with(PLAN, "encode: target", text)
    spec = _load(text).spec
    assert [c.name for c in spec.features] == ["amount", "plan", "placed_at", "note"]
    placed_at = spec.features[2].transform
    assert placed_at is not None and placed_at.parts == ["year", "hour"]


def test_a_datetime_feature_without_a_transform_loads() -> None:
    assert _load(SPEC).spec.features[2].type == "datetime"


def test_numeric_options_on_a_number_load() -> None:
    text = _with(AMOUNT, "impute: mean, cap: {method: zscore, threshold: 3}, scale: robust")
    transform = _load(text).spec.features[0].transform
    assert transform is not None and transform.cap is not None
    assert transform.cap.method == "zscore"


def test_parts_only_on_datetime_columns() -> None:
    message = _error(_with(AMOUNT, "parts: [year]"))
    assert message.startswith("/project/pipeline.yaml, line 7, field columns[1].transform.parts:")
    assert "`parts` applies to datetime columns only; this column is of type float" in message


def test_text_only_on_string_columns() -> None:
    message = _error(_with(PLAN, "text: [words]"))
    assert "line 8, field columns[2].transform.text:" in message
    assert "`text` applies to string columns only; this column is of type category" in message


def test_encode_only_on_category_and_string_columns() -> None:
    message = _error(_with(PLACED_AT, "encode: onehot"))
    assert "field columns[3].transform.encode: `encode` applies to category and string" in message


def test_a_string_column_is_encoded_or_read_as_text_not_both() -> None:
    message = _error(_with(NOTE, "text: [words], encode: ordinal"))
    assert "field columns[4].transform.encode:" in message
    assert "either encoded (`encode`) or read as text (`text`)" in message


@pytest.mark.parametrize(
    ("column", "transform", "field", "expected"),
    [
        (PLAN, "cap: {method: iqr}", "cap", "`cap` applies to integer and float columns only"),
        (PLAN, "scale: minmax", "scale", "`scale` applies to numeric columns and datetime parts"),
        (NOTE, "impute: median", "impute", "impute: median needs numbers; a string column takes"),
        (PLAN, "impute: mean", "impute", "impute: mean needs numbers; a category column takes"),
        (PLACED_AT, "cap: {method: zscore}", "cap", "`cap` applies to integer and float"),
    ],
)
def test_numeric_options_only_on_numeric_columns(
    column: str, transform: str, field: str, expected: str
) -> None:
    message = _error(_with(column, transform))
    assert f".transform.{field}: {expected}" in message


def test_cap_is_refused_on_a_boolean() -> None:
    text = SPEC.replace(AMOUNT, "{name: amount, type: boolean, transform: {cap: {method: iqr}}}")
    assert "`cap` applies to integer and float columns only; this column is of type boolean" in (
        _error(text)
    )


def test_text_columns_take_no_imputation_or_scaling() -> None:
    message = _error(_with(NOTE, "text: [length], impute: most_frequent, scale: standard"))
    assert "columns[4].transform.impute: text features take no imputation" in message
    assert "columns[4].transform.scale: `scale` applies to numeric columns" in message
    assert "this column is a string column read as text" in message


def test_fill_value_needs_impute_constant_and_a_fitting_value() -> None:
    assert "transform.fill_value: `fill_value` is only used with `impute: constant`" in _error(
        _with(AMOUNT, "fill_value: 0")
    )
    assert "fill_value for a float column must be a number, got 'zero'" in _error(
        _with(AMOUNT, "impute: constant, fill_value: zero")
    )
    assert "fill_value for a category column must be a single label" in _error(
        _with(PLAN, "impute: constant, fill_value: [a, b]")
    )
    _load(_with(PLAN, "impute: constant, fill_value: unknown"))
    _load(_with(AMOUNT, "impute: constant, fill_value: -1"))


def test_empty_parts_and_text_lists_are_refused() -> None:
    assert "transform.parts: `parts` needs at least one of: year, month, day" in _error(
        _with(PLACED_AT, "parts: []")
    )
    assert "transform.text: `text` needs at least one of: length, words, tokens" in _error(
        _with(NOTE, "text: []")
    )


def test_max_tokens_without_tokens_is_refused() -> None:
    message = _error(_with(NOTE, "text: [length], max_tokens: 5"))
    assert "transform.max_tokens: `max_tokens` is only used with `text: [tokens]`" in message


def test_unknown_choices_list_the_allowed_values() -> None:
    message = _error(_with(PLACED_AT, "parts: [week]"))
    assert "columns[3].transform.parts[0]:" in message
    assert "'dayofweek'" in message


def test_a_transform_on_a_non_feature_column_is_refused() -> None:
    message = _error(SPEC.replace("role: target}", "role: target, transform: {encode: target}}"))
    assert "columns[5].transform: a transform applies to feature columns only" in message
    assert "this column's role is target" in message


def test_impute_none_needs_estimators_that_take_missing_values() -> None:
    message = _error(_with(AMOUNT, "impute: none"))
    assert "columns[1].transform.impute: impute: none leaves missing values" in message
    assert "'logistic' cannot take" in message


def test_impute_none_is_fine_for_estimators_that_take_missing_values() -> None:
    text = _with(AMOUNT, "impute: none").replace(
        "{name: logistic, estimator: logistic_regression}",
        "{name: boosting, estimator: hist_gradient_boosting}",
    )
    assert _load(text).spec.models[0].label == "boosting"


def test_impute_none_is_fine_when_the_column_cannot_be_missing() -> None:
    text = SPEC.replace(AMOUNT, "{name: amount, type: float, nullable: false}")
    _load(_with("{name: amount, type: float, nullable: false}", "impute: none", text))


def test_labels_may_keep_missing_values_for_any_estimator() -> None:
    _load(_with(PLAN, "impute: none, encode: ordinal"))


def test_every_transform_problem_is_reported_at_once() -> None:
    text = _with(AMOUNT, "parts: [year]")
    text = _with(PLAN, "text: [words]", text)
    text = _with(PLACED_AT, "encode: target", text)
    lines = _error(text).splitlines()
    assert [line.split("field ")[1].split(":")[0] for line in lines] == [
        "columns[1].transform.parts",
        "columns[2].transform.text",
        "columns[3].transform.encode",
    ]


def test_block_style_transform_points_at_the_option_line() -> None:
    text = SPEC.replace(
        f"  - {PLAN}\n",
        "  - name: plan\n"
        "    type: category\n"
        "    transform:\n"
        "      encode: ordinal\n"
        "      scale: standard\n",
    )
    message = _error(text)
    assert message.startswith("/project/pipeline.yaml, line 12, field columns[2].transform.scale:")
