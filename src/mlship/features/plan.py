"""A feature column's transform with every decision made, and what is wrong with a transform.

A spec may leave any transform option out; a plan is the complete answer (defaults filled in), so
compiling, grouping columns that are prepared alike, and the spec loader's checks all read from one
place. Nothing here imports scikit-learn: the loader uses this module, and loading a spec stays
quick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlship.spec.data import Column, Transform

Kind = Literal["numeric", "categorical", "datetime", "text"]
Problem = tuple[tuple[str, ...], str]

NUMERIC_TYPES = ("integer", "float", "boolean")
CATEGORICAL_TYPES = ("category", "string")
CAPPABLE_TYPES = ("integer", "float")
MISSING_LEVEL = "(missing)"
DEFAULT_PARTS = ("year", "month", "dayofweek")
ALL_PARTS = ("year", "month", "day", "dayofweek", "hour", "minute")
ALL_TEXT = ("length", "words", "tokens")
DEFAULT_MAX_TOKENS: int = Transform.model_fields["max_tokens"].default


@dataclass(frozen=True)
class NumericPlan:
    """Integer, float and boolean columns: cap, impute, scale (in that order)."""

    impute: str = "median"
    fill_value: float | None = None
    cap: tuple[str, float] | None = None
    scale: str = "standard"


@dataclass(frozen=True)
class CategoricalPlan:
    """Category and string columns read as labels: impute, then encode."""

    impute: str = "constant"
    fill_value: str | None = MISSING_LEVEL
    encode: str = "onehot"


@dataclass(frozen=True)
class DatetimePlan:
    """Datetime columns: their parts as numbers, then imputed and scaled like numbers."""

    parts: tuple[str, ...] = DEFAULT_PARTS
    impute: str = "median"
    fill_value: float | None = None
    scale: str = "standard"


@dataclass(frozen=True)
class TextPlan:
    """String columns read as text: counts (scaled) and/or a bag of ``max_tokens`` words."""

    stats: tuple[str, ...] = ()
    max_tokens: int | None = None


Plan = NumericPlan | CategoricalPlan | DatetimePlan | TextPlan


def column_kind(column: Column) -> Kind:
    """How a column is prepared: by its type, and for strings by whether ``text`` is asked for."""
    if column.type == "datetime":
        return "datetime"
    if column.type in NUMERIC_TYPES:
        return "numeric"
    if (
        column.type == "string"
        and column.transform is not None
        and column.transform.text is not None
    ):
        return "text"
    return "categorical"


def plan_for(column: Column) -> Plan:
    """The complete plan of a feature column (assumes :func:`transform_problems` found none)."""
    transform = column.transform or Transform()
    kind = column_kind(column)
    if kind == "numeric":
        return _numeric_plan(transform)
    if kind == "datetime":
        return _datetime_plan(transform)
    if kind == "text":
        return _text_plan(transform)
    return _categorical_plan(transform)


def _numeric_plan(transform: Transform) -> NumericPlan:
    impute = transform.impute or "median"
    return NumericPlan(
        impute=impute,
        fill_value=_number_fill(transform) if impute == "constant" else None,
        cap=(transform.cap.method, transform.cap.threshold) if transform.cap else None,
        scale=transform.scale or "standard",
    )


def _datetime_plan(transform: Transform) -> DatetimePlan:
    impute = transform.impute or "median"
    return DatetimePlan(
        parts=_unique(transform.parts) if transform.parts is not None else DEFAULT_PARTS,
        impute=impute,
        fill_value=_number_fill(transform) if impute == "constant" else None,
        scale=transform.scale or "standard",
    )


def _text_plan(transform: Transform) -> TextPlan:
    wanted = _unique(transform.text or [])
    return TextPlan(
        stats=tuple(part for part in wanted if part != "tokens"),
        max_tokens=transform.max_tokens if "tokens" in wanted else None,
    )


def _categorical_plan(transform: Transform) -> CategoricalPlan:
    impute = transform.impute or "constant"
    fill = MISSING_LEVEL if transform.fill_value is None else str(transform.fill_value)
    return CategoricalPlan(
        impute=impute,
        fill_value=fill if impute == "constant" else None,
        encode=transform.encode or "onehot",
    )


def _number_fill(transform: Transform) -> float:
    return 0.0 if transform.fill_value is None else float(transform.fill_value)


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def transform_problems(column: Column) -> list[Problem]:
    """Every option of the column's transform that does not fit the column, with what would.

    Locations are relative to the column (``("transform", "cap")``), so the loader can prefix the
    column's own place in the spec and report each problem on its line.
    """
    transform = column.transform
    if transform is None:
        return []
    if column.role != "feature":
        message = (
            f"a transform applies to feature columns only; this column's role is {column.role}"
        )
        return [(("transform",), message)]
    kind = column_kind(column)
    return [
        *_misplaced_options(column, transform, kind),
        *_impute_problems(column, transform, kind),
        *_empty_lists(transform, kind),
    ]


def _describe(column: Column, kind: Kind) -> str:
    return "a string column read as text" if kind == "text" else f"of type {column.type}"


def _misplaced_options(column: Column, transform: Transform, kind: Kind) -> list[Problem]:
    problems: list[Problem] = []
    this = f"this column is {_describe(column, kind)}"

    def add(option: str, message: str) -> None:
        problems.append((("transform", option), message))

    if transform.parts is not None and kind != "datetime":
        add("parts", f"`parts` applies to datetime columns only; {this}")
    if transform.text is not None and column.type != "string":
        add("text", f"`text` applies to string columns only; {this}")
    if transform.encode is not None and column.type not in CATEGORICAL_TYPES:
        add("encode", f"`encode` applies to category and string columns only; {this}")
    elif transform.encode is not None and kind == "text":
        add("encode", "a string column is either encoded (`encode`) or read as text (`text`)")
    if transform.cap is not None and column.type not in CAPPABLE_TYPES:
        add("cap", f"`cap` applies to integer and float columns only; {this}")
    if transform.scale is not None and kind not in ("numeric", "datetime"):
        add("scale", f"`scale` applies to numeric columns and datetime parts only; {this}")
    if transform.max_tokens != DEFAULT_MAX_TOKENS and "tokens" not in (transform.text or []):
        add("max_tokens", "`max_tokens` is only used with `text: [tokens]`")
    return problems


def _impute_problems(column: Column, transform: Transform, kind: Kind) -> list[Problem]:
    impute, fill = transform.impute, transform.fill_value
    if kind == "text" and (impute is not None or fill is not None):
        option = "impute" if impute is not None else "fill_value"
        message = "text features take no imputation: missing text is read as empty text"
        return [(("transform", option), message)]
    if kind == "categorical" and impute in ("median", "mean"):
        message = (
            f"impute: {impute} needs numbers; a {column.type} column takes "
            "most_frequent, constant or none"
        )
        return [(("transform", "impute"), message)]
    problem = _fill_value_problem(column, impute, fill, kind)
    return [(("transform", "fill_value"), problem)] if problem else []


def _fill_value_problem(column: Column, impute: str | None, fill: Any, kind: Kind) -> str | None:
    if fill is None:
        return None
    if impute != "constant":
        return "`fill_value` is only used with `impute: constant`"
    if kind == "categorical" and not _is_scalar(fill):
        return f"fill_value for a {column.type} column must be a single label, got {fill!r}"
    if kind in ("numeric", "datetime") and not isinstance(fill, int | float):
        return f"fill_value for a {column.type} column must be a number, got {fill!r}"
    return None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _empty_lists(transform: Transform, kind: Kind) -> list[Problem]:
    problems: list[Problem] = []
    if transform.parts == [] and kind == "datetime":
        message = f"`parts` needs at least one of: {', '.join(ALL_PARTS)}"
        problems.append((("transform", "parts"), message))
    if transform.text == [] and kind == "text":
        message = f"`text` needs at least one of: {', '.join(ALL_TEXT)}"
        problems.append((("transform", "text"), message))
    return problems


def leaves_missing_values(column: Column) -> bool:
    """Whether missing values of this column reach the estimator as NaN (``impute: none``).

    Encoders give a missing label its own code and text counts read it as empty, so only numbers
    and date parts can carry NaN through; a column declared non-nullable never has any.
    """
    if not column.nullable or column.transform is None or column.transform.impute != "none":
        return False
    return column_kind(column) in ("numeric", "datetime")
