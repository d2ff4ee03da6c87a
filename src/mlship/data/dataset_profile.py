"""A dataset's profile as typed records, and its JSON form as stored and reported.

:func:`mlship.data.profile.profile_of` computes a :class:`DatasetProfile`; code inside mlship reads
its fields. It becomes JSON only at the storage boundary (the profile artifact of a dataset, the
report's JSON file), in the shape profiles have always had, so :meth:`DatasetProfile.from_json`
reads the profiles that earlier versions stored. Which fields a column has depends on its kind:

- every column: ``name``, ``dtype``, ``kind``, ``count``, ``missing``, ``missing_share``,
  ``distinct`` (None for ``other``);
- ``numeric``: ``min``, ``max``, ``mean``, ``std``, ``zeros``, ``infinite``, ``quantiles`` and a
  ``histogram``;
- ``string``: ``top`` (value and count, most frequent first), ``min_length``, ``max_length``,
  ``mean_length``;
- ``boolean``: ``true`` and ``false`` counts;
- ``datetime``: ``min`` and ``max`` (ISO 8601) and a ``histogram`` whose edges are ISO strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

Kind = Literal["numeric", "string", "boolean", "datetime", "other"]
Number = int | float

_KINDS: tuple[Kind, ...] = ("numeric", "string", "boolean", "datetime", "other")


@dataclass(frozen=True)
class Histogram:
    """Bin counts: bin ``i`` is between ``edges[i]`` and ``edges[i + 1]`` (ISO strings for
    datetimes); two equal edges and one count when every value is the same."""

    edges: tuple[float, ...] | tuple[str, ...]
    counts: tuple[int, ...]

    def to_json(self) -> dict[str, list[Any]]:
        return {"edges": list(self.edges), "counts": list(self.counts)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Histogram:
        return cls(tuple(data.get("edges") or ()), tuple(int(c) for c in data.get("counts") or ()))


@dataclass(frozen=True)
class TopValue:
    """One of a text column's most frequent values and how often it occurs."""

    value: str
    count: int


@dataclass(frozen=True)
class ColumnProfile:
    """One column's statistics; fields that do not apply to its ``kind`` keep their defaults and
    are left out of its JSON."""

    name: str
    dtype: str
    kind: Kind
    count: int
    missing: int
    missing_share: float
    distinct: int | None
    min: Number | str | None = None
    """The smallest finite value; for datetimes its ISO 8601 text."""
    max: Number | str | None = None
    mean: Number | None = None
    std: Number | None = None
    zeros: int = 0
    infinite: int = 0
    quantiles: Mapping[str, Number | None] = field(default_factory=dict)
    top: tuple[TopValue, ...] = ()
    min_length: Number | None = None
    max_length: Number | None = None
    mean_length: Number | None = None
    true_count: int = 0
    false_count: int = 0
    histogram: Histogram | None = None

    def to_json(self) -> dict[str, Any]:
        """The column as stored: the common fields, then its kind's (see the module docstring)."""
        found: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "missing_share": self.missing_share,
            "distinct": self.distinct,
        }
        if self.kind == "numeric":
            found |= {
                "min": self.min,
                "max": self.max,
                "mean": self.mean,
                "std": self.std,
                "zeros": self.zeros,
                "infinite": self.infinite,
                "quantiles": dict(self.quantiles),
            }
        elif self.kind == "string":
            found |= {
                "top": [{"value": item.value, "count": item.count} for item in self.top],
                "min_length": self.min_length,
                "max_length": self.max_length,
                "mean_length": self.mean_length,
            }
        elif self.kind == "boolean":
            found |= {"true": self.true_count, "false": self.false_count}
        elif self.kind == "datetime":
            found |= {"min": self.min, "max": self.max}
        if self.kind in ("numeric", "datetime"):
            found["histogram"] = (self.histogram or Histogram((), ())).to_json()
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnProfile:
        """A stored column; fields an older profile lacks take their defaults."""
        kind = data.get("kind")
        histogram = data.get("histogram")
        distinct = data.get("distinct")
        return cls(
            name=str(data["name"]),
            dtype=str(data.get("dtype", "")),
            kind=cast("Kind", kind) if kind in _KINDS else "other",
            count=int(data.get("count") or 0),
            missing=int(data.get("missing") or 0),
            missing_share=float(data.get("missing_share") or 0.0),
            distinct=None if distinct is None else int(distinct),
            min=data.get("min"),
            max=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            zeros=int(data.get("zeros") or 0),
            infinite=int(data.get("infinite") or 0),
            quantiles=dict(data.get("quantiles") or {}),
            top=tuple(
                TopValue(str(item["value"]), int(item["count"])) for item in data.get("top") or ()
            ),
            min_length=data.get("min_length"),
            max_length=data.get("max_length"),
            mean_length=data.get("mean_length"),
            true_count=int(data.get("true") or 0),
            false_count=int(data.get("false") or 0),
            histogram=Histogram.from_json(histogram) if isinstance(histogram, Mapping) else None,
        )


@dataclass(frozen=True)
class DatasetProfile:
    """Every column's statistics and the number of rows they were computed on."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile | None:
        """The column called ``name``, if the profile has one."""
        return next((column for column in self.columns if column.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [column.to_json() for column in self.columns]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetProfile:
        return cls(
            int(data.get("rows") or 0),
            tuple(ColumnProfile.from_json(column) for column in data.get("columns") or ()),
        )
