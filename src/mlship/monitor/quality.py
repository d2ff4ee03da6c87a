"""Quality of live inputs, held against what the model saw in training.

Per input column of the signature:

- **missing**: the share of live records without a value, next to the training share (from the
  dataset's profile); a column is flagged when live is more than ``missing_tolerance`` (absolute,
  default 0.05) above training;
- **out of range** (numbers): the share of live values below the training minimum or above the
  training maximum; flagged above ``range_tolerance`` (default 0.01);
- **unseen categories** (category columns): the share of live values that no training row had,
  with the most frequent of them; flagged above ``unseen_tolerance`` (default 0.01).

And for the traffic as a whole, **schema violations**: the share of requests the server refused
because a record did not match the signature (the 422 answers in the prediction log). Those
records never reached the model, so they are counted, not checked column by column.

Training figures come from the dataset's stored profile (computed on every row at ingest); a
dataset without one falls back to the reference frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from mlship.monitor.reference import Reference

MISSING_TOLERANCE = 0.05
RANGE_TOLERANCE = 0.01
UNSEEN_TOLERANCE = 0.01
EXAMPLES = 5


@dataclass(frozen=True)
class ColumnQuality:
    column: str
    type: str
    rows: int
    missing: float
    training_missing: float
    out_of_range: float | None = None
    training_min: float | None = None
    training_max: float | None = None
    unseen: float | None = None
    unseen_examples: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Quality:
    rows: int
    requests: int
    refused: int
    columns: tuple[ColumnQuality, ...]

    @property
    def schema_violation_rate(self) -> float | None:
        total = self.requests + self.refused
        return self.refused / total if total else None

    def metrics(self) -> dict[str, float | None]:
        """The figures alert rules read (``quality.*``); None where there is nothing to judge."""
        if not self.rows:
            return {
                "quality.missing_rate": None,
                "quality.max_missing_increase": None,
                "quality.out_of_range_rate": None,
                "quality.unseen_category_rate": None,
                "quality.columns_with_issues": None,
                "quality.schema_violation_rate": self.schema_violation_rate,
            }
        numeric = [c for c in self.columns if c.out_of_range is not None]
        categorical = [c for c in self.columns if c.unseen is not None]
        return {
            "quality.missing_rate": _mean([c.missing for c in self.columns]),
            "quality.max_missing_increase": max(
                (max(c.missing - c.training_missing, 0.0) for c in self.columns), default=0.0
            ),
            "quality.out_of_range_rate": _mean([c.out_of_range or 0.0 for c in numeric]),
            "quality.unseen_category_rate": _mean([c.unseen or 0.0 for c in categorical]),
            "quality.columns_with_issues": float(sum(bool(c.issues) for c in self.columns)),
            "quality.schema_violation_rate": self.schema_violation_rate,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "requests": self.requests,
            "refused": self.refused,
            "schema_violation_rate": self.schema_violation_rate,
            "columns": [c.to_dict() for c in self.columns],
        }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _training_range(reference: Reference, name: str) -> tuple[float | None, float | None]:
    profile = reference.profile_column(name)
    if profile is not None and profile.get("min") is not None:
        return float(profile["min"]), float(profile["max"])
    values = reference.frame.get_column(name).cast(pl.Float64).drop_nulls().drop_nans()
    if values.is_empty():
        return None, None
    return float(values.min()), float(values.max())  # type: ignore[arg-type]


def _training_missing(reference: Reference, name: str) -> float:
    profile = reference.profile_column(name)
    if profile is not None:
        return float(profile["missing_share"])
    column = reference.frame.get_column(name)
    return column.null_count() / column.len() if column.len() else 0.0


def _column(
    live: pl.DataFrame,
    reference: Reference,
    name: str,
    kind: str,
    tolerances: tuple[float, float, float],
) -> ColumnQuality:
    missing_tolerance, range_tolerance, unseen_tolerance = tolerances
    series = live.get_column(name)
    rows = series.len()
    missing_count = series.null_count()
    if series.dtype == pl.Float64:
        missing_count += int(series.is_nan().sum())
    missing = missing_count / rows if rows else 0.0
    trained_missing = _training_missing(reference, name)
    issues = []
    if missing > trained_missing + missing_tolerance:
        issues.append(f"{missing:.1%} missing (training {trained_missing:.1%})")
    extra: dict[str, Any] = {}
    present = rows - missing_count
    if kind in ("integer", "float"):
        low, high = _training_range(reference, name)
        outside = 0
        if low is not None and high is not None and present:
            values = series.cast(pl.Float64)
            outside = int(((values < low) | (values > high)).sum())
        share = outside / present if present else 0.0
        extra = {"out_of_range": share, "training_min": low, "training_max": high}
        if share > range_tolerance:
            issues.append(f"{share:.1%} outside the training range [{low:g}, {high:g}]")
    elif kind == "category":
        known = set(reference.signature.categories.get(name, []))
        values = series.drop_nulls().cast(pl.String)
        unseen = values.filter(~values.is_in(list(known)))
        share = unseen.len() / present if present else 0.0
        examples = (
            unseen.value_counts(sort=True).get_column(name).head(EXAMPLES).to_list()
            if unseen.len()
            else []
        )
        extra = {"unseen": share, "unseen_examples": examples}
        if share > unseen_tolerance:
            issues.append(f"{share:.1%} unseen categories ({', '.join(map(str, examples))})")
    return ColumnQuality(
        column=name,
        type=kind,
        rows=rows,
        missing=missing,
        training_missing=trained_missing,
        issues=issues,
        **extra,
    )


def live_quality(
    live: pl.DataFrame,
    reference: Reference,
    *,
    requests: int,
    refused: int = 0,
    missing_tolerance: float = MISSING_TOLERANCE,
    range_tolerance: float = RANGE_TOLERANCE,
    unseen_tolerance: float = UNSEEN_TOLERANCE,
) -> Quality:
    """Check the input columns of ``live`` (answered records) against ``reference``.

    ``requests`` is the number of answered requests and ``refused`` the number refused for
    invalid input in the same window.
    """
    tolerances = (missing_tolerance, range_tolerance, unseen_tolerance)
    columns = tuple(
        _column(live, reference, column.name, column.type, tolerances)
        for column in reference.signature.inputs
        if column.name in live.columns
    )
    return Quality(rows=live.height, requests=requests, refused=refused, columns=columns)
