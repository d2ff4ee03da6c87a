"""One PSI: the same index, binned the same way, from ingest checks, data diff and drift."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from mlship.data.checks import validate
from mlship.data.profile import column_stabilities, diff_profiles, profile_frame
from mlship.data.stability import EPSILON, PSI_MAX, psi, stability
from mlship.monitor.drift import column_drift
from mlship.spec.data import Column, ColumnCheck, Distribution, TableChecks


def test_psi_known_answers() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0
    assert psi([1, 2, 3], [10, 20, 30]) == pytest.approx(0.0)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected)


def test_psi_smooths_empty_buckets() -> None:
    value = psi([10, 0], [5, 5])
    assert math.isfinite(value)
    assert value == pytest.approx(
        (0.5 - 1.0) * math.log(0.5) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    )


def test_psi_refuses_mismatched_or_empty_inputs() -> None:
    with pytest.raises(ValueError, match="same buckets"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        psi([0, 0], [1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        psi([1, -1], [1, 1])


def test_samples_without_a_shared_bucket_have_the_largest_index() -> None:
    assert psi([10, 0], [0, 10]) == PSI_MAX
    assert psi([3, 7, 0, 0], [0, 0, 5, 5]) == PSI_MAX
    # Nothing scores higher than no overlap at all.
    assert psi([1000, 1], [1, 1000]) < PSI_MAX


def _mostly_zero(seed: int, n: int = 2000) -> pl.DataFrame:
    """90% zeros, the rest spread over a wide range: a column of ties."""
    rng = np.random.default_rng(seed)
    values = rng.normal(50, 10, n)
    values[rng.random(n) < 0.9] = 0.0
    return pl.DataFrame({"x": values})


def _every_psi(reference: pl.DataFrame, current: pl.DataFrame, column: str) -> list[float]:
    """The index of ``column`` as the distribution check, data diff and the monitor see it."""
    diff = diff_profiles(
        profile_frame(reference),
        profile_frame(current),
        column_stabilities(reference, current),
    )
    from_diff = next(c["psi"] for c in diff["columns"] if c["name"] == column)
    from_drift = column_drift(reference, current, column, method="psi").statistic
    check = ColumnCheck(distribution=Distribution(reference="ref.parquet", max_psi=1e-9))
    result = validate(
        current,
        [Column(name=column, type="float", checks=[check])],
        TableChecks(duplicates="allow"),
        {column: reference[column]},
    )
    message = result.table_errors[0] if result.table_errors else "(PSI 0.000 > 0)"
    from_check = float(message.split("(PSI ")[1].split(" ")[0])
    return [from_diff, from_drift, from_check]


def test_a_column_of_ties_gets_one_small_psi_everywhere() -> None:
    reference, current = _mostly_zero(1), _mostly_zero(2)
    diff_value, drift_value, check_value = _every_psi(reference, current, "x")
    # Two samples of one distribution: a small index, and the same one from every path.
    assert diff_value < 0.05
    assert drift_value == pytest.approx(diff_value)
    assert check_value == pytest.approx(diff_value, abs=5e-4)
    found = stability(reference["x"], current["x"])
    assert found is not None and found.binning == "deciles"
    # The zeros are one bucket, not nine positions' worth of buckets.
    assert found.buckets == 3


def test_a_real_shift_of_the_ties_is_seen_everywhere() -> None:
    reference = _mostly_zero(3)
    current = pl.DataFrame({"x": np.where(np.arange(2000) % 2 == 0, 0.0, 50.0)})
    values = _every_psi(reference, current, "x")
    assert min(values) > 0.25
    assert values[1] == pytest.approx(values[0])


def test_categories_that_do_not_overlap_are_maximum_drift_everywhere() -> None:
    reference = pl.DataFrame({"c": [f"old-{i % 40}" for i in range(400)]})
    current = pl.DataFrame({"c": [f"new-{i % 40}" for i in range(400)]})
    diff = diff_profiles(
        profile_frame(reference), profile_frame(current), column_stabilities(reference, current)
    )
    assert diff["columns"][0]["psi"] == PSI_MAX
    assert column_drift(reference, current, "c", method="psi").statistic == PSI_MAX
    check = ColumnCheck(distribution=Distribution(reference="ref.parquet", max_psi=0.2))
    result = validate(
        current,
        [Column(name="c", type="category", checks=[check])],
        TableChecks(duplicates="allow"),
        {"c": reference["c"]},
    )
    assert result.table_errors == [
        f"c: distribution shifted from the reference (PSI {PSI_MAX:.3f} > 0.2, categories)"
    ]


def test_missing_and_infinite_values_are_left_out() -> None:
    reference = pl.Series([1.0, 2.0, None, float("nan"), float("inf")] * 10)
    current = pl.Series([1.0, 2.0] * 10)
    found = stability(reference, current)
    assert found is not None and found.value == pytest.approx(0.0, abs=1e-12)
    assert found.binning == "values"
    assert stability(pl.Series([None, None], dtype=pl.Float64), current) is None
