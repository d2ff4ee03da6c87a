"""Data drift: does a current sample still look like the reference sample, column by column?

Each column is compared with one method, chosen by its kind, by the number of values in the
reference sample and, for numeric columns, by the number of distinct values in both samples
together. The defaults follow Evidently's data-drift preset, so its reports and ours choose the
same method and flag the same columns, but for one deliberate difference in the chi-square test
(small references, more than two categories; see ``chisquare`` below):

==========================  ==========================  ========================================
column                      reference > 1000 values     reference <= 1000 values
==========================  ==========================  ========================================
numeric, > 5 distinct       ``wasserstein`` (>= 0.1)    ``ks``: Kolmogorov-Smirnov, p <= 0.05
numeric, <= 5 distinct      ``jensenshannon`` (>= 0.1)  ``chisquare``: chi-square, p < 0.05
categorical                 ``jensenshannon`` (>= 0.1)  ``chisquare``: chi-square, p < 0.05
==========================  ==========================  ========================================

Only the reference's size decides (its values, missing ones left out): the reference is the
sample the monitor is configured on, so a column keeps its method whatever the size of each
current window. Small references get a test, because a distance between two small samples is
mostly noise; large ones get a distance, because with enough rows a test finds every shift
significant, however small. A numeric column with at most 5 distinct values over both samples (a
flag, a rating) is compared value by value, like a category. ``psi`` and ``jensenshannon`` are
available for both kinds, ``chisquare`` for numeric columns too (on the buckets below), and any
method's threshold can be set per column.

Where the verdict falls on the threshold follows the peer as well: a distance equal to the
threshold is drift, ``ks`` drifts when the p-value is at most the threshold and ``chisquare``
when it is below it.

- ``ks``: :func:`scipy.stats.ks_2samp`; the statistic is the largest gap between the two
  empirical distribution functions.
- ``wasserstein``: the first Wasserstein distance (:func:`scipy.stats.wasserstein_distance`, the
  area between the two distribution functions) divided by the reference's standard deviation
  (ddof=0, at least 0.001), so it reads as "shifted by this many standard deviations".
- ``chisquare``: Pearson's chi-square test of homogeneity on the 2 x k table of bucket counts
  (:func:`scipy.stats.chi2_contingency` without continuity correction). A category seen on one
  side only is a column of that table. Evidently tests goodness of fit instead: the current counts
  against the reference's counts scaled to the current size, which treats the reference shares as
  exact and gives p = 0 as soon as the current sample has a category the reference lacks. By
  ignoring the reference's own sampling noise its statistic is about twice ours for samples of
  equal size, so its p-values are smaller and on a small reference it flags columns that this
  test does not. For two categories the test of homogeneity is exactly the pooled two-proportion
  z-test that Evidently uses there (the statistic is z squared, the p-values are equal), and a
  column with one and the same value on both sides has p = 1.
- ``jensenshannon``: :func:`scipy.spatial.distance.jensenshannon` (natural logarithm, so between
  0 and sqrt(ln 2) ~ 0.83) of the two samples' bucket shares.
- ``psi``: :func:`mlship.data.stability.psi`, over the buckets every PSI of mlship uses (one
  per value for few values, else the reference's deciles; see :mod:`mlship.data.stability`), so
  the index a monitor reports equals the one ``mlship data diff`` and the ingest
  ``distribution`` check report for the same data.

Buckets (``chisquare``, ``jensenshannon``; ``psi`` of categories): categories are buckets, every
category of either side included. For ``chisquare`` and ``jensenshannon``, numeric columns with at
most 20 distinct reference values are bucketed per value (every value of either side), others
into Sturges' number of equal-width bins over the range of both samples together
(:func:`numpy.histogram_bin_edges` with ``bins="sturges"``), as Evidently does.

Missing values (null, and NaN in float columns) are left out of every test: how much is missing is
a data-quality question, reported per column as the reference and current null shares. Infinite
values are left out of the tests as well (they would make every distance infinite), without being
counted as missing.

The dataset drifts when the share of drifted columns reaches ``drift_share`` (default 0.5).

Everything here is computation on frames already in memory: Polars or pandas frames are accepted
(pandas ones are converted once, at the edge) and nothing is read or written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats
from scipy.spatial import distance

from mlship.data.profile import column_kind
from mlship.data.stability import numeric_buckets, psi
from mlship.errors import DataError

Kind = Literal["numeric", "categorical"]
Method = Literal["ks", "wasserstein", "psi", "jensenshannon", "chisquare"]
Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

METHODS: tuple[Method, ...] = get_args(Method)

DEFAULT_THRESHOLDS: dict[Method, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "jensenshannon": 0.1,
}
"""Threshold of each method: a p-value at most it (``ks``) or below it (``chisquare``), or a
distance at least it (the others) is drift."""

P_VALUE_METHODS: frozenset[Method] = frozenset({"ks", "chisquare"})

APPLICABLE: dict[Kind, tuple[Method, ...]] = {
    "numeric": ("ks", "wasserstein", "chisquare", "psi", "jensenshannon"),
    "categorical": ("chisquare", "jensenshannon", "psi"),
}

LARGE_SAMPLE = 1000
"""Columns whose reference has more values than this are compared by a distance, not a test."""

FEW_DISTINCT = 5
"""Numeric columns with at most this many distinct values (both samples together) are compared
value by value, like categories."""

DATASET_DRIFT_SHARE = 0.5

STD_FLOOR = 0.001
"""Smallest reference standard deviation the Wasserstein distance is divided by, so that a constant
reference column gives a large finite distance instead of a division by zero."""

FEW_VALUES = 20
"""Numeric columns with at most this many distinct reference values are bucketed per value (for
``chisquare`` and ``jensenshannon``; ``psi`` follows :data:`mlship.data.stability.FEW_VALUES`,
the same number)."""


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    """How one column moved. ``statistic`` is the method's statistic (the distance itself for the
    distance methods), ``p_value`` is set for the tests only, and ``reference_nulls`` and
    ``current_nulls`` are shares of missing values (0 to 1), which the test leaves out."""

    column: str
    kind: Kind
    method: Method
    statistic: float
    threshold: float
    p_value: float | None
    drifted: bool
    reference_nulls: float
    current_nulls: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetDrift:
    """The columns' results and the verdict: drift when ``share`` (of drifted columns) reaches
    ``threshold``."""

    columns: tuple[ColumnDrift, ...]
    share: float
    threshold: float
    drifted: bool

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [column.to_dict() for column in self.columns],
            "share": self.share,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


# -- frames and columns ----------------------------------------------------------------------


def _as_polars(frame: Any, side: str) -> pl.DataFrame:
    """Polars as is, pandas converted (pandas is imported only when a pandas frame is passed)."""
    if isinstance(frame, pl.DataFrame):
        return frame
    if type(frame).__module__.startswith("pandas"):
        import pandas as pd

        if isinstance(frame, pd.DataFrame):
            return pl.from_pandas(frame)
    raise TypeError(f"the {side} data must be a Polars or pandas DataFrame, got {type(frame)}")


def _kind(frame: pl.DataFrame, column: str, side: str) -> Kind:
    if column not in frame.schema:
        raise DataError(f"column {column!r} is not in the {side} data")
    profile_kind = column_kind(frame.schema[column])
    if profile_kind == "numeric":
        return "numeric"
    if profile_kind in ("string", "boolean"):
        return "categorical"
    raise DataError(
        f"column {column!r} is {profile_kind} ({frame.schema[column]}) in the {side} data; "
        "drift is computed for numeric, string, categorical and boolean columns"
    )


def _shared_kind(reference: pl.DataFrame, current: pl.DataFrame, column: str) -> Kind:
    kind = _kind(reference, column, "reference")
    current_kind = _kind(current, column, "current")
    if kind != current_kind:
        raise DataError(
            f"column {column!r} is {kind} in the reference data but {current_kind} in the "
            "current data"
        )
    return kind


def _null_share(missing: int, rows: int) -> float:
    return missing / rows if rows else 0.0


def _numeric_sample(series: pl.Series) -> tuple[Floats, float]:
    """The finite values, sorted (every numeric method reads sorted values), and the null share."""
    values = series.cast(pl.Float64).to_numpy()  # nulls come out as NaN
    missing = int(np.count_nonzero(np.isnan(values)))
    finite = values[np.isfinite(values)]
    finite.sort()
    return finite, _null_share(missing, series.len())


def _category_counts(reference: pl.Series, current: pl.Series) -> tuple[Counts, Counts]:
    """Counts of every category of either side (zero where a side lacks it), aligned."""

    def counts(series: pl.Series, name: str) -> pl.DataFrame:
        return series.cast(pl.String).rename("value").drop_nulls().value_counts(name=name)

    table = counts(reference, "reference").join(
        counts(current, "current"), on="value", how="full", coalesce=True
    )
    table = table.fill_null(0)
    return (
        table.get_column("reference").to_numpy().astype(np.int64),
        table.get_column("current").to_numpy().astype(np.int64),
    )


def _check_not_empty(column: str, reference_size: int, current_size: int) -> None:
    for side, size in (("reference", reference_size), ("current", current_size)):
        if size == 0:
            raise DataError(f"column {column!r} has no values to compare in the {side} data")


# -- methods ---------------------------------------------------------------------------------


def _ks(reference: Floats, current: Floats) -> tuple[float, float | None]:
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def wasserstein_sorted(u: Floats, v: Floats) -> float:
    """First Wasserstein distance of two sorted samples: scipy's formula, without its sorts.

    The area between the two empirical distribution functions, summed over the merged values:
    ``sum(|F_u(x_k) - F_v(x_k)| * (x_k+1 - x_k))``. Merging two sorted runs with a stable sort is
    linear, and the distribution functions are running counts of where each merged value came
    from (within a run of equal values the width is zero, so their order does not matter). The
    gap is kept as the whole number ``n * m * |F_u - F_v|`` (exact in a float64 below 2**53), so
    only the final sum rounds. Samples of equal size reduce to the mean gap between their order
    statistics.
    """
    n, m = u.size, v.size
    if n == m:
        return float(np.mean(np.abs(u - v)))
    merged = np.concatenate([u, v])
    order = np.argsort(merged, kind="stable")
    merged = merged[order]
    # After the k-th merged value, c of them came from u: n*m*(F_u - F_v) = c*(n + m) - k*n.
    gaps = np.cumsum(order[:-1] < n, dtype=np.float64)
    gaps *= n + m
    gaps -= np.arange(n, (n + m) * n, n, dtype=np.float64)
    np.abs(gaps, out=gaps)
    return float(gaps @ np.diff(merged)) / n / m


def _wasserstein(reference: Floats, current: Floats) -> tuple[float, float | None]:
    scale = max(float(np.std(reference)), STD_FLOOR)
    return wasserstein_sorted(reference, current) / scale, None


def _distinct_sorted(values: Floats) -> Floats:
    """The distinct values of a sorted, non-empty sample (linear, where np.unique sorts again)."""
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _distinct_count(reference: Floats, current: Floats, limit: int) -> int:
    """Distinct values of two sorted samples together, exact up to ``limit`` (above it, a number
    above ``limit``): the reference alone tells when it has more."""
    reference_distinct = int(np.count_nonzero(np.diff(reference))) + 1
    if reference_distinct > limit:
        return reference_distinct
    return int(np.union1d(_distinct_sorted(reference), _distinct_sorted(current)).size)


def _numeric_buckets(reference: Floats, current: Floats) -> tuple[Counts, Counts]:
    """Bucket counts of two sorted samples: per value for few values, else Sturges' bins."""
    reference_distinct = np.count_nonzero(np.diff(reference)) + 1
    if reference_distinct <= FEW_VALUES:
        values = np.union1d(_distinct_sorted(reference), _distinct_sorted(current))
        return _value_counts(reference, values), _value_counts(current, values)
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    return np.histogram(reference, edges)[0], np.histogram(current, edges)[0]


def _value_counts(sorted_values: Floats, values: Floats) -> Counts:
    high = np.searchsorted(sorted_values, values, side="right")
    low = np.searchsorted(sorted_values, values, side="left")
    return (high - low).astype(np.int64)


def _psi(reference: Counts, current: Counts) -> tuple[float, float | None]:
    return psi(reference.tolist(), current.tolist()), None


def _jensenshannon(reference: Counts, current: Counts) -> tuple[float, float | None]:
    # scipy normalises each side to shares; the natural logarithm keeps Evidently's scale.
    return float(distance.jensenshannon(reference, current)), None


def _chisquare(reference: Counts, current: Counts) -> tuple[float, float | None]:
    # A bucket empty on both sides (a Sturges bin between outliers) carries no information and
    # would make an expected count zero.
    seen = (reference + current) > 0
    table = np.vstack([reference[seen], current[seen]])
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _numeric_statistic(
    method: Method, reference: Floats, current: Floats
) -> tuple[float, float | None]:
    if method == "ks":
        return _ks(reference, current)
    if method == "wasserstein":
        return _wasserstein(reference, current)
    if method == "psi":
        expected, actual, _ = numeric_buckets(reference, current)
        return _psi(expected, actual)
    buckets = _numeric_buckets(reference, current)
    if method == "chisquare":
        return _chisquare(*buckets)
    return _jensenshannon(*buckets)


def _categorical_statistic(
    method: Method, reference: Counts, current: Counts
) -> tuple[float, float | None]:
    if method == "chisquare":
        return _chisquare(reference, current)
    return _psi(reference, current) if method == "psi" else _jensenshannon(reference, current)


# -- choosing the method ---------------------------------------------------------------------


def default_method(kind: Kind, reference_size: int, distinct: int) -> Method:
    """The test while the reference has at most 1000 values, a distance above that; numeric
    columns with at most 5 ``distinct`` values (over both samples) are compared like categories.
    ``distinct`` is not read for categorical columns."""
    large = reference_size > LARGE_SAMPLE
    if kind == "numeric" and distinct > FEW_DISTINCT:
        return "wasserstein" if large else "ks"
    return "jensenshannon" if large else "chisquare"


def _check_method(column: str, kind: Kind, method: str) -> Method:
    if method not in METHODS:
        raise ValueError(
            f"unknown drift method {method!r} for column {column!r}; known: {', '.join(METHODS)}"
        )
    if method not in APPLICABLE[kind]:
        raise ValueError(
            f"method {method!r} does not apply to {kind} column {column!r}; "
            f"use one of {', '.join(APPLICABLE[kind])}"
        )
    return method


def _check_threshold(column: str, method: Method, threshold: float) -> float:
    if not math.isfinite(threshold) or threshold <= 0:
        raise ValueError(
            f"threshold of column {column!r} must be a positive number, got {threshold}"
        )
    if method in P_VALUE_METHODS and threshold >= 1:
        raise ValueError(
            f"threshold of column {column!r} is a p-value for {method!r} and must be below 1, "
            f"got {threshold}"
        )
    return float(threshold)


def _is_drift(method: Method, statistic: float, p_value: float | None, threshold: float) -> bool:
    if method in P_VALUE_METHODS:
        if p_value is None:
            return False
        # As in Evidently's preset: the KS p-value drifts at the threshold, chi-square below it.
        return p_value <= threshold if method == "ks" else p_value < threshold
    return statistic >= threshold


# -- public API ------------------------------------------------------------------------------


def _column_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    column: str,
    method: str | None,
    threshold: float | None,
) -> ColumnDrift:
    kind = _shared_kind(reference, current, column)
    statistic: tuple[float, float | None]
    if kind == "numeric":
        ref_values, ref_nulls = _numeric_sample(reference.get_column(column))
        cur_values, cur_nulls = _numeric_sample(current.get_column(column))
        _check_not_empty(column, ref_values.size, cur_values.size)
        if method is None:
            distinct = _distinct_count(ref_values, cur_values, FEW_DISTINCT)
            method = default_method(kind, ref_values.size, distinct)
        chosen = _check_method(column, kind, method)
        statistic = _numeric_statistic(chosen, ref_values, cur_values)
    else:
        ref_series, cur_series = reference.get_column(column), current.get_column(column)
        ref_nulls = _null_share(ref_series.null_count(), ref_series.len())
        cur_nulls = _null_share(cur_series.null_count(), cur_series.len())
        ref_counts, cur_counts = _category_counts(ref_series, cur_series)
        reference_size = int(ref_counts.sum())
        _check_not_empty(column, reference_size, int(cur_counts.sum()))
        chosen = _check_method(
            column, kind, method or default_method(kind, reference_size, ref_counts.size)
        )
        statistic = _categorical_statistic(chosen, ref_counts, cur_counts)
    limit = _check_threshold(
        column, chosen, DEFAULT_THRESHOLDS[chosen] if threshold is None else threshold
    )
    value, p_value = statistic
    return ColumnDrift(
        column=column,
        kind=kind,
        method=chosen,
        statistic=value,
        threshold=limit,
        p_value=p_value,
        drifted=_is_drift(chosen, value, p_value, limit),
        reference_nulls=ref_nulls,
        current_nulls=cur_nulls,
    )


def column_drift(
    reference: Any,
    current: Any,
    column: str,
    *,
    method: Method | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Drift of one column from ``reference`` to ``current`` (Polars or pandas frames).

    ``method`` defaults by kind and sample size (see the module docstring), ``threshold`` to the
    method's entry in :data:`DEFAULT_THRESHOLDS`.
    """
    return _column_drift(
        _as_polars(reference, "reference"),
        _as_polars(current, "current"),
        column,
        method,
        threshold,
    )


def _default_columns(reference: pl.DataFrame) -> list[str]:
    """Columns of the kinds compared. Datetimes are left out: a monitoring window's timestamps
    always differ from the reference's, which says nothing about the data."""
    return [
        name
        for name, dtype in reference.schema.items()
        if column_kind(dtype) in ("numeric", "string", "boolean")
    ]


def _check_overrides(columns: Sequence[str], overrides: Mapping[str, Any], what: str) -> None:
    """Overrides for columns that are not compared are typos; say so instead of ignoring them."""
    unknown = [name for name in overrides if name not in columns]
    if unknown:
        raise ValueError(f"{what} given for columns that are not compared: {unknown}")


def dataset_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, Method] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = DATASET_DRIFT_SHARE,
) -> DatasetDrift:
    """Drift of every column (or of ``columns``) and the dataset's verdict.

    ``methods`` and ``thresholds`` override the defaults per column name. The dataset drifts when
    the share of drifted columns is at least ``drift_share``.
    """
    if not 0 < drift_share <= 1:
        raise ValueError(f"drift_share must be in (0, 1], got {drift_share}")
    ref = _as_polars(reference, "reference")
    cur = _as_polars(current, "current")
    names = list(columns) if columns is not None else _default_columns(ref)
    if not names:
        raise DataError(
            "no columns to compare: the reference data has no numeric, string or boolean column"
        )
    methods, thresholds = methods or {}, thresholds or {}
    _check_overrides(names, methods, "methods")
    _check_overrides(names, thresholds, "thresholds")
    # Columns are independent and numpy, scipy and Polars release the GIL in their loops, so
    # threads compare several columns at once.
    with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1)) as pool:
        results = tuple(
            pool.map(
                lambda name: _column_drift(ref, cur, name, methods.get(name), thresholds.get(name)),
                names,
            )
        )
    share = sum(result.drifted for result in results) / len(results)
    return DatasetDrift(
        columns=results, share=share, threshold=drift_share, drifted=share >= drift_share
    )
