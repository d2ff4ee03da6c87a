"""The population stability index (PSI): one index and one binning for every part of mlship.

The ingest ``distribution`` check, ``mlship data diff`` and the drift monitor (and the alert rules
built on it) all report a PSI, and a user compares their figures; so they are all computed here,
from the values themselves, the same way (docs/decisions/016-one-psi-binning.md):

- *Numbers* whose reference holds at most :data:`FEW_VALUES` distinct finite values get one bucket
  per value seen on either side (a flag, a rating, a count). Others are cut at the reference's
  deciles, with equal cut points merged: a value held by many rows (0 in a column that is mostly
  0) is then one bucket of its own instead of being spread over several buckets by position, which
  would let two samples of one distribution look different. Buckets are ``(-inf, c1]``,
  ``(c1, c2]``, ..., ``(ck, inf)``, so values outside the reference's range are counted too.
  Missing values (null, NaN) and infinities are left out.
- *Labels* (text, categories, booleans, anything else) get one bucket per value of either side;
  missing values are left out.

``sum((a - e) * ln(a / e))`` over the buckets' shares, where a share below :data:`EPSILON` (an
empty bucket) is raised to it, so that a bucket that empties or appears costs a large but finite
amount. Two samples that share no bucket at all (categories that do not overlap) have the largest
index there is, :data:`PSI_MAX`, whatever their buckets' shares. Common reading: below 0.1 stable,
0.1-0.25 a moderate shift, above 0.25 a major shift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

EPSILON = 1e-4
"""Share given to an empty bucket, so that an empty bucket costs a large but finite amount."""

PSI_MAX = 2 * (1 - EPSILON) * math.log(1 / EPSILON)
"""The index of two samples with no bucket in common (about 18.4): every share of each side
sits where the other has none. No pair of samples scores higher."""

FEW_VALUES = 20
"""Numbers whose reference has at most this many distinct values get one bucket per value."""

DECILES = np.linspace(0, 1, 11)[1:-1]
"""Cut points of the reference for other numbers: its 10th, 20th, ..., 90th percentile."""

Binning = Literal["values", "deciles", "categories"]


@dataclass(frozen=True)
class Stability:
    """A PSI and the binning that produced it (``values``, ``deciles`` or ``categories``)."""

    value: float
    binning: Binning
    buckets: int


def psi(expected_counts: Sequence[float], actual_counts: Sequence[float]) -> float:
    """Population stability index of ``actual`` against ``expected`` over the same buckets.

    Counts or shares may be passed; each side is normalised to sum to one.
    """
    if len(expected_counts) != len(actual_counts):
        raise ValueError(
            f"psi needs the same buckets on both sides, got {len(expected_counts)} "
            f"and {len(actual_counts)}"
        )
    if any(c < 0 for c in expected_counts) or any(c < 0 for c in actual_counts):
        raise ValueError("psi needs non-negative counts")
    expected_total, actual_total = float(sum(expected_counts)), float(sum(actual_counts))
    if expected_total <= 0 or actual_total <= 0:
        raise ValueError("psi needs at least one counted value on each side")
    if not any(e > 0 and a > 0 for e, a in zip(expected_counts, actual_counts, strict=True)):
        return PSI_MAX
    index = 0.0
    for expected, actual in zip(expected_counts, actual_counts, strict=True):
        e = max(expected / expected_total, EPSILON)
        a = max(actual / actual_total, EPSILON)
        index += (a - e) * math.log(a / e)
    return index


Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]


def _finite(series: pl.Series) -> Floats:
    values = series.cast(pl.Float64).to_numpy()  # nulls come out as NaN
    return np.asarray(values[np.isfinite(values)], dtype=np.float64)


def numeric_buckets(reference: Floats, current: Floats) -> tuple[Counts, Counts, Binning]:
    """Bucket counts of two samples of finite numbers (see the module docstring)."""
    distinct = np.unique(reference)
    if distinct.size <= FEW_VALUES:
        values = np.union1d(distinct, np.unique(current))
        return _per_value(reference, values), _per_value(current, values), "values"
    cuts = np.unique(np.quantile(reference, DECILES))
    width = cuts.size + 1
    # searchsorted "left" counts the cuts below a value: bucket i is (c_i, c_i+1].
    expected = np.bincount(np.searchsorted(cuts, reference, side="left"), minlength=width)
    actual = np.bincount(np.searchsorted(cuts, current, side="left"), minlength=width)
    return expected.astype(np.int64), actual.astype(np.int64), "deciles"


def _per_value(sample: Floats, values: Floats) -> Counts:
    ordered = np.sort(sample)
    high = np.searchsorted(ordered, values, side="right")
    low = np.searchsorted(ordered, values, side="left")
    return (high - low).astype(np.int64)


def label_buckets(reference: pl.Series, current: pl.Series) -> tuple[Counts, Counts]:
    """Counts of every value of either side (zero where a side lacks it), aligned."""

    def counts(series: pl.Series, name: str) -> pl.DataFrame:
        return series.cast(pl.String).rename("value").drop_nulls().value_counts(name=name)

    table = counts(reference, "reference").join(
        counts(current, "current"), on="value", how="full", coalesce=True
    )
    table = table.fill_null(0).sort("value")
    return (
        table.get_column("reference").to_numpy().astype(np.int64),
        table.get_column("current").to_numpy().astype(np.int64),
    )


def _is_number(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and dtype != pl.Boolean


def stability(reference: pl.Series, current: pl.Series) -> Stability | None:
    """The PSI of ``current`` against ``reference``; None when a side has no value to bucket."""
    if _is_number(reference.dtype) and _is_number(current.dtype):
        ref, cur = _finite(reference), _finite(current)
        if not ref.size or not cur.size:
            return None
        expected, actual, binning = numeric_buckets(ref, cur)
    else:
        expected, actual = label_buckets(reference, current)
        binning = "categories"
        if not expected.sum() or not actual.sum():
            return None
    return Stability(psi(expected.tolist(), actual.tolist()), binning, len(expected))
