"""Dataset profiles: per-column statistics, and the difference of two profiles.

A profile is what a run keeps about its data once the data itself is gone: enough to show the data
to a person (the HTML report) and to compare it with another dataset (drift) without re-reading
either. It is a typed record (:mod:`mlship.data.dataset_profile`) whose stored JSON form holds
only plain Python values, every float finite, so it survives ``json.dumps(..., allow_nan=False)``.

How values are counted:

- *missing* is null, and for float columns also NaN: both mean "no value" to a model.
- *count* is the number of values that are present; *distinct* counts present values only.
- Float statistics (min, max, mean, std, quantiles, histogram) use finite values; infinities are
  present values, counted under ``infinite``, but would make every moment meaningless.
- ``std`` is the sample standard deviation (ddof=1), ``None`` for fewer than two values.
- Quantiles interpolate linearly between the two nearest values (as numpy's default does).
- Histogram bins follow Polars: the first bin is ``[e0, e1]``, every later one ``(e_i, e_i+1]``.
  Integer columns whose range fits in ``bins`` get one bin per integer (edges at half-integers),
  so a count-like column never shows empty bins between its values. Datetime histograms bin the
  underlying integer timestamps (dates as milliseconds) with edges rounded to whole units, so
  the ISO strings reported as edges are exactly the edges counted.

The frame is read in two passes: one query computes every scalar statistic and the top values of
every column; a second bins the numeric and datetime columns, whose edges need the first pass's
min and max. Each pass is one lazy query, so Polars evaluates the columns' expressions in
parallel and reads each column once per pass instead of once per statistic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import polars as pl

from mlship.data.dataset_profile import ColumnProfile, DatasetProfile, Histogram, Kind, TopValue
from mlship.data.stability import Stability, stability

QUANTILES: dict[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}

# -- kinds -----------------------------------------------------------------------------------


def column_kind(dtype: pl.DataType) -> Kind:
    """Which family of statistics a dtype gets; anything unusual is ``other`` (counts only)."""
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return "string"
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return "datetime"
    return "other"


def _is_float(dtype: pl.DataType) -> bool:
    # Decimals are read as floats: the profile is a summary, not an accounting record.
    return dtype.is_float() or isinstance(dtype, pl.Decimal)


def _values(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column with every kind of "no value" turned into null."""
    column = pl.col(name)
    if isinstance(dtype, pl.Decimal):
        return column.cast(pl.Float64).fill_nan(None)
    if dtype.is_float():
        return column.fill_nan(None)
    return column


def _finite(name: str, dtype: pl.DataType) -> pl.Expr:
    values = _values(name, dtype)
    return values.filter(values.is_finite()) if _is_float(dtype) else values.drop_nulls()


# -- pass 1: scalar statistics ---------------------------------------------------------------


def _common_exprs(name: str, dtype: pl.DataType, kind: Kind) -> dict[str, pl.Expr]:
    values = _values(name, dtype)
    exprs = {"missing": values.null_count()}
    if kind != "other":
        exprs["distinct"] = values.drop_nulls().n_unique()
    return exprs


def _numeric_exprs(name: str, dtype: pl.DataType) -> dict[str, pl.Expr]:
    values = _values(name, dtype)
    finite = _finite(name, dtype)
    infinite = values.is_infinite().sum() if _is_float(dtype) else pl.lit(0)
    return {
        "min": finite.min(),
        "max": finite.max(),
        "mean": finite.mean(),
        "std": finite.std(),
        "zeros": (values == 0).sum(),
        "infinite": infinite,
        "quantiles": finite.cast(pl.Float64).quantile(list(QUANTILES.values()), "linear"),
    }


def _string_exprs(name: str, top: int) -> dict[str, pl.Expr]:
    text = pl.col(name).cast(pl.String)
    lengths = text.str.len_chars()
    counts = text.drop_nulls().alias("value").value_counts(name="count")
    # Ranked inside one list so that both sort keys come from the same evaluation; ties are
    # broken by value, so the same data always gives the same top values.
    item = pl.element()
    ranked = item.sort_by(
        [item.struct.field("count"), item.struct.field("value")], descending=[True, False]
    )
    return {
        "min_length": lengths.min(),
        "max_length": lengths.max(),
        "mean_length": lengths.mean(),
        "top": counts.implode().list.eval(ranked.head(top)),
    }


def _boolean_exprs(name: str) -> dict[str, pl.Expr]:
    column = pl.col(name)
    return {"true": column.sum(), "false": column.not_().sum()}


def _time_axis(dtype: pl.DataType) -> pl.DataType:
    """The datetime type a temporal column is binned in: dates as milliseconds, so that bins
    narrower than a day can be drawn for short date ranges."""
    return pl.Datetime("ms") if dtype == pl.Date else dtype


def _timestamps(name: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(name).cast(_time_axis(dtype)).to_physical()


def _datetime_exprs(name: str, dtype: pl.DataType) -> dict[str, pl.Expr]:
    column = pl.col(name)
    physical = _timestamps(name, dtype)
    # The integer timestamps' range gives the histogram edges in the second pass.
    return {
        "min": column.min(),
        "max": column.max(),
        "physical_min": physical.min(),
        "physical_max": physical.max(),
    }


def _stat_exprs(name: str, dtype: pl.DataType, kind: Kind, top: int) -> dict[str, pl.Expr]:
    exprs = _common_exprs(name, dtype, kind)
    if kind == "numeric":
        exprs |= _numeric_exprs(name, dtype)
    elif kind == "string":
        exprs |= _string_exprs(name, top)
    elif kind == "boolean":
        exprs |= _boolean_exprs(name)
    elif kind == "datetime":
        exprs |= _datetime_exprs(name, dtype)
    return exprs


def _collect(frame: pl.DataFrame, exprs: dict[str, pl.Expr]) -> dict[str, Any]:
    """Evaluate named one-row expressions in one lazy query, so the columns run in parallel."""
    if not exprs:
        return {}
    query = frame.lazy().select([expr.alias(key) for key, expr in exprs.items()])
    return query.collect().row(0, named=True)


def _key(index: int, stat: str) -> str:
    # Keys are built from the column's position, so no user column name can collide with them.
    return f"{index}.{stat}"


# -- pass 2: histograms ----------------------------------------------------------------------


def _uniform_edges(low: float, high: float, bins: int) -> list[float]:
    if low == high:
        return [low, high]
    width = (high - low) / bins
    # The last edge is the maximum itself, so rounding never leaves the largest value outside.
    return [low + i * width for i in range(bins)] + [high]


def _integer_edges(low: int, high: int, bins: int) -> list[float]:
    """Uniform edges rounded to whole units, so that the edges reported are the edges counted."""
    bins = max(1, min(bins, high - low))
    return [float(round(edge)) for edge in _uniform_edges(low, high, bins)]


def _numeric_edges(low: float, high: float, bins: int, integer: bool) -> list[float]:
    if integer and high - low + 1 <= bins:
        return [low - 0.5 + i for i in range(int(high - low) + 2)]
    return _uniform_edges(float(low), float(high), bins)


def _hist_expr(values: pl.Expr, edges: list[float]) -> pl.Expr:
    return values.cast(pl.Float64).hist(bins=edges).implode()


def _histogram_plan(
    frame: pl.DataFrame, kinds: dict[str, Kind], stats: dict[str, Any], bins: int
) -> tuple[dict[str, list[float]], dict[str, pl.Expr]]:
    """Edges for every column that has values to bin, and the expressions that count them."""
    edges: dict[str, list[float]] = {}
    exprs: dict[str, pl.Expr] = {}
    for index, (name, dtype) in enumerate(frame.schema.items()):
        kind = kinds[name]
        key = _key(index, "histogram")
        if kind == "numeric" and stats[_key(index, "min")] is not None:
            low, high = float(stats[_key(index, "min")]), float(stats[_key(index, "max")])
            edges[key] = _numeric_edges(low, high, bins, dtype.is_integer())
            values = _finite(name, dtype)
        elif kind == "datetime" and stats[_key(index, "min")] is not None:
            low, high = stats[_key(index, "physical_min")], stats[_key(index, "physical_max")]
            edges[key] = _integer_edges(low, high, bins)
            values = _timestamps(name, dtype).drop_nulls()
        else:
            continue
        if len(edges[key]) > 2 or edges[key][0] != edges[key][1]:
            exprs[key] = _hist_expr(values, edges[key])
        else:
            exprs[key] = values.len()
    return edges, exprs


def _histograms(
    frame: pl.DataFrame, kinds: dict[str, Kind], stats: dict[str, Any], bins: int
) -> dict[str, dict[str, list[Any]]]:
    edges, exprs = _histogram_plan(frame, kinds, stats, bins)
    counts = _collect(frame, exprs)
    result: dict[str, dict[str, list[Any]]] = {}
    for key, bin_edges in edges.items():
        found = counts[key]
        result[key] = {
            "edges": bin_edges,
            "counts": [int(c) for c in found] if isinstance(found, list) else [int(found)],
        }
    return result


# -- assembling the JSON ---------------------------------------------------------------------


def _number(value: Any) -> int | float | None:
    """A plain, finite Python number or ``None``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = float(value)
    return number if math.isfinite(number) else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, date | datetime) else None


def _datetime_edges(edges: list[float], dtype: pl.DataType) -> list[str]:
    physical = pl.Series([round(edge) for edge in edges], dtype=pl.Int64)
    return [_iso(value) or "" for value in physical.cast(_time_axis(dtype)).to_list()]


def _numeric_fields(stats: dict[str, Any]) -> dict[str, Any]:
    quantiles = stats["quantiles"] or [None] * len(QUANTILES)
    return {
        "min": _number(stats["min"]),
        "max": _number(stats["max"]),
        "mean": _number(stats["mean"]),
        "std": _number(stats["std"]),
        "zeros": int(stats["zeros"] or 0),
        "infinite": int(stats["infinite"] or 0),
        "quantiles": {
            label: _number(value) for label, value in zip(QUANTILES, quantiles, strict=True)
        },
    }


def _string_fields(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "top": tuple(TopValue(item["value"], int(item["count"])) for item in stats["top"]),
        "min_length": _number(stats["min_length"]),
        "max_length": _number(stats["max_length"]),
        "mean_length": _number(stats["mean_length"]),
    }


def _kind_fields(kind: Kind, stats: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :class:`ColumnProfile` that ``kind`` fills in."""
    if kind == "numeric":
        return _numeric_fields(stats)
    if kind == "string":
        return _string_fields(stats)
    if kind == "boolean":
        return {"true_count": int(stats["true"] or 0), "false_count": int(stats["false"] or 0)}
    if kind == "datetime":
        return {"min": _iso(stats["min"]), "max": _iso(stats["max"])}
    return {}


def _column_profile(
    name: str,
    dtype: pl.DataType,
    kind: Kind,
    rows: int,
    stats: dict[str, Any],
    histogram: dict[str, list[Any]] | None,
) -> ColumnProfile:
    missing = int(stats["missing"])
    bins: Histogram | None = None
    if kind in ("numeric", "datetime"):
        bins = Histogram((), ())
        if histogram:
            edges = histogram["edges"]
            shown = _datetime_edges(edges, dtype) if kind == "datetime" else edges
            bins = Histogram(tuple(shown), tuple(histogram["counts"]))
    return ColumnProfile(
        name=name,
        dtype=str(dtype),
        kind=kind,
        count=rows - missing,
        missing=missing,
        missing_share=missing / rows if rows else 0.0,
        distinct=int(stats["distinct"]) if "distinct" in stats else None,
        histogram=bins,
        **_kind_fields(kind, stats),
    )


def profile_frame(frame: pl.DataFrame, *, bins: int = 20, top: int = 10) -> dict[str, Any]:
    """:func:`profile_of` as the JSON that is stored (see :mod:`mlship.data.dataset_profile`)."""
    return profile_of(frame, bins=bins, top=top).to_json()


def profile_of(frame: pl.DataFrame, *, bins: int = 20, top: int = 10) -> DatasetProfile:
    """Profile every column of ``frame`` (see the module docstring for what is counted how).

    ``bins`` is the number of histogram bins of numeric and datetime columns, ``top`` the number of
    most frequent values kept for string and categorical columns (ties broken by value, so the same
    data always gives the same profile).
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if top < 0:
        raise ValueError(f"top must not be negative, got {top}")
    schema = frame.schema
    kinds = {name: column_kind(dtype) for name, dtype in schema.items()}
    exprs: dict[str, pl.Expr] = {}
    for index, (name, dtype) in enumerate(schema.items()):
        for stat, expr in _stat_exprs(name, dtype, kinds[name], top).items():
            exprs[_key(index, stat)] = expr
    flat = _collect(frame, exprs)
    histograms = _histograms(frame, kinds, flat, bins)
    columns = []
    for index, (name, dtype) in enumerate(schema.items()):
        prefix = f"{index}."
        stats = {key[len(prefix) :]: value for key, value in flat.items() if key.startswith(prefix)}
        histogram = histograms.get(_key(index, "histogram"))
        columns.append(_column_profile(name, dtype, kinds[name], frame.height, stats, histogram))
    return DatasetProfile(frame.height, tuple(columns))


# -- diff ------------------------------------------------------------------------------------


def _change(a: Any, b: Any) -> dict[str, Any]:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return {"a": a, "b": b, "change": b - a if numbers else None}


def _share(count: int | None, total: int) -> float | None:
    if count is None:
        return None
    return count / total if total else 0.0


def _known_counts(column: dict[str, Any]) -> tuple[dict[str, int], bool]:
    """A column's listed top counts, and whether the list holds every distinct value."""
    counts = {item["value"]: item["count"] for item in column.get("top", [])}
    return counts, column.get("distinct") is not None and column["distinct"] <= len(counts)


def _count_of(value: str, counts: dict[str, int], complete: bool) -> int | None:
    if value in counts:
        return counts[value]
    return 0 if complete else None


def _top_value_changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Share of present values for each top value of either side; ``None`` where unknown."""
    counts_a, complete_a = _known_counts(a)
    counts_b, complete_b = _known_counts(b)
    changes = []
    for value in {**counts_a, **counts_b}:
        share_a = _share(_count_of(value, counts_a, complete_a), a["count"])
        share_b = _share(_count_of(value, counts_b, complete_b), b["count"])
        changes.append({"value": value, **_change(share_a, share_b)})
    return changes


def _kind_diff(kind: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if kind == "numeric":
        return {
            "mean": _change(a["mean"], b["mean"]),
            "std": _change(a["std"], b["std"]),
            "min": _change(a["min"], b["min"]),
            "max": _change(a["max"], b["max"]),
            "quantiles": {q: _change(a["quantiles"][q], b["quantiles"][q]) for q in QUANTILES},
        }
    if kind == "string":
        return {"top_values": _top_value_changes(a, b)}
    if kind == "boolean":
        return {"true_share": _change(_share(a["true"], a["count"]), _share(b["true"], b["count"]))}
    if kind == "datetime":
        return {"min": _change(a["min"], b["min"]), "max": _change(a["max"], b["max"])}
    return {}


def _column_diff(a: dict[str, Any], b: dict[str, Any], index: Stability | None) -> dict[str, Any]:
    same_kind = a["kind"] == b["kind"]
    column: dict[str, Any] = {
        "name": a["name"],
        "kind": a["kind"] if same_kind else None,
        "dtype": _change(a["dtype"], b["dtype"]),
        "count": _change(a["count"], b["count"]),
        "missing_share": _change(a["missing_share"], b["missing_share"]),
        "distinct": _change(a["distinct"], b["distinct"]),
    }
    column |= _kind_diff(a["kind"], a, b) if same_kind else {}
    # Numbers turned into text (say) are a schema change, not a distribution to compare.
    compared = index if same_kind else None
    column["psi"] = compared.value if compared is not None else None
    column["psi_method"] = compared.binning if compared is not None else None
    return column


def _by_name(columns: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in columns}


def diff_profiles(
    a: dict[str, Any],
    b: dict[str, Any],
    stabilities: Mapping[str, Stability | None] | None = None,
) -> dict[str, Any]:
    """What changed from profile ``a`` (the reference) to profile ``b`` (the new data).

    Schema: columns ``added`` (in b only), ``removed`` (in a only) and ``dtype_changed``. For each
    shared column, ``{"a", "b", "change"}`` triples of count, missing share, distinct and the
    kind's statistics, and ``psi`` with the ``psi_method`` (binning) that produced it.

    A profile keeps too little to bin a column the way :mod:`mlship.data.stability` does (its
    deciles, every distinct label), so the index is computed from the data by the caller
    (:func:`column_stabilities`) and passed as ``stabilities``; a column missing there gets
    ``psi: None``.

    Strings and categoricals also get ``top_values``: every value listed on either side with its
    share of the present values on each side (``None`` where a profile cannot tell, because the
    value fell below its top-N cut); booleans get ``true_share``.
    """
    columns_a, columns_b = _by_name(a["columns"]), _by_name(b["columns"])
    shared = [name for name in columns_a if name in columns_b]
    found = stabilities or {}
    return {
        "rows": _change(a["rows"], b["rows"]),
        "added": [name for name in columns_b if name not in columns_a],
        "removed": [name for name in columns_a if name not in columns_b],
        "dtype_changed": [
            {"column": name, "a": columns_a[name]["dtype"], "b": columns_b[name]["dtype"]}
            for name in shared
            if columns_a[name]["dtype"] != columns_b[name]["dtype"]
        ],
        "columns": [
            _column_diff(columns_a[name], columns_b[name], found.get(name)) for name in shared
        ],
    }


def column_stabilities(
    reference: pl.DataFrame, current: pl.DataFrame
) -> dict[str, Stability | None]:
    """The PSI of every column the two frames share, binned as everywhere else in mlship.

    Datetimes are compared as timestamps; other columns by :func:`mlship.data.stability.stability`.
    """
    found: dict[str, Stability | None] = {}
    for name in reference.columns:
        if name not in current.columns:
            continue
        ref, cur = reference[name], current[name]
        if ref.dtype.is_temporal() and cur.dtype.is_temporal():
            ref, cur = _as_epoch(ref), _as_epoch(cur)
        found[name] = stability(ref, cur)
    return found


def _as_epoch(series: pl.Series) -> pl.Series:
    if series.dtype == pl.Date:
        series = series.cast(pl.Datetime("ms"))
    if isinstance(series.dtype, pl.Datetime):
        return series.dt.epoch("ms")
    return series.to_physical()
