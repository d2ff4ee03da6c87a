"""Drift statistics: verdicts on known shifts, agreement with scipy, nulls, overrides, errors."""

from __future__ import annotations

import json
import math
from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats
from scipy.spatial import distance

from mlship.data.stability import DECILES, psi
from mlship.errors import DataError
from mlship.monitor import ColumnDrift, Method, column_drift, dataset_drift
from mlship.monitor.drift import wasserstein_sorted

SMALL = 400  # both samples at most 1000 values: tests (KS, chi-square)
LARGE = 5000  # both samples over 1000 values: distances (Wasserstein, Jensen-Shannon)
CATEGORIES = np.array(["a", "b", "c", "d"])

# scipy's exact KS p-value gives up on heavily tied samples (the integer column) and says so
# before using the asymptotic one, which is the p-value these tests compare against.
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")


def _frame(
    rows: int,
    seed: int,
    *,
    shift: float = 0.0,
    mix: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1),
) -> pl.DataFrame:
    """Two normal columns (``x`` shifted by ``shift``), one integer, one string, one boolean."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "x": rng.normal(shift, 1.0, rows),
            "y": rng.normal(10.0, 2.0, rows),
            "n": rng.poisson(5.0, rows),
            "city": rng.choice(CATEGORIES, rows, p=mix),
            "flag": rng.random(rows) < 0.3,
        }
    )


def _by_column(result: list[ColumnDrift] | tuple[ColumnDrift, ...]) -> dict[str, ColumnDrift]:
    return {item.column: item for item in result}


# -- verdicts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "numeric", "categorical"),
    [(SMALL, "ks", "chisquare"), (LARGE, "wasserstein", "jensenshannon")],
)
def test_same_distribution_does_not_drift(rows: int, numeric: str, categorical: str) -> None:
    result = dataset_drift(_frame(rows, 1), _frame(rows, 2))
    columns = _by_column(result.columns)
    assert [c for c in columns.values() if c.drifted] == []
    assert result.share == 0.0
    assert not result.drifted
    assert {columns[name].method for name in ("x", "y", "n")} == {numeric}
    assert {columns[name].method for name in ("city", "flag")} == {categorical}
    assert columns["x"].kind == "numeric"
    assert columns["city"].kind == "categorical"
    assert columns["flag"].kind == "categorical"


def test_identical_frames_have_zero_distance() -> None:
    frame = _frame(LARGE, 3)
    for item in dataset_drift(frame, frame).columns:
        assert item.statistic == pytest.approx(0.0, abs=1e-12)
        assert not item.drifted


@pytest.mark.parametrize(("rows", "method"), [(SMALL, "ks"), (LARGE, "wasserstein")])
def test_shifted_mean_flags_only_that_column(rows: int, method: str) -> None:
    result = dataset_drift(_frame(rows, 1), _frame(rows, 2, shift=0.5))
    assert result.drifted_columns == ["x"]
    assert _by_column(result.columns)["x"].method == method


@pytest.mark.parametrize(("rows", "method"), [(SMALL, "chisquare"), (LARGE, "jensenshannon")])
def test_changed_category_mix_is_flagged(rows: int, method: str) -> None:
    reference = _frame(rows, 1)
    current = _frame(rows, 2, mix=(0.1, 0.2, 0.3, 0.4))
    result = dataset_drift(reference, current)
    assert result.drifted_columns == ["city"]
    assert _by_column(result.columns)["city"].method == method


@pytest.mark.parametrize("rows", [SMALL, LARGE])
def test_category_unseen_in_reference_counts(rows: int) -> None:
    rng = np.random.default_rng(4)
    reference = pl.DataFrame({"city": rng.choice(["a", "b", "c"], rows)})
    current = pl.DataFrame({"city": rng.choice(["a", "b", "c", "new"], rows)})
    result = column_drift(reference, current, "city")
    assert result.drifted
    # The new category is a bucket of its own: zero in the reference, a quarter of the current.
    ref_counts = [int((reference["city"] == v).sum()) for v in ("a", "b", "c", "new")]
    cur_counts = [int((current["city"] == v).sum()) for v in ("a", "b", "c", "new")]
    if result.method == "chisquare":
        expected = stats.chi2_contingency([ref_counts, cur_counts], correction=False)
        assert result.p_value == pytest.approx(expected.pvalue)
    else:
        assert result.statistic == pytest.approx(distance.jensenshannon(ref_counts, cur_counts))


# -- choosing the method (Evidently's data-drift preset) -------------------------------------


@pytest.mark.parametrize(
    ("ref_rows", "cur_rows", "numeric", "categorical"),
    [
        (LARGE, SMALL, "wasserstein", "jensenshannon"),
        (1001, 50, "wasserstein", "jensenshannon"),
        (SMALL, LARGE, "ks", "chisquare"),
        (1000, LARGE, "ks", "chisquare"),
    ],
)
def test_reference_size_alone_chooses_test_or_distance(
    ref_rows: int, cur_rows: int, numeric: str, categorical: str
) -> None:
    result = _by_column(dataset_drift(_frame(ref_rows, 1), _frame(cur_rows, 2)).columns)
    assert (result["x"].method, result["city"].method) == (numeric, categorical)


def test_reference_size_counts_values_not_rows() -> None:
    # 1200 rows of which 300 are missing: 900 values, so a test, not a distance.
    values = np.random.default_rng(6).normal(size=3000)
    reference = pl.DataFrame({"x": [*values[:900].tolist(), *[None] * 300]})
    current = pl.DataFrame({"x": values[900:]})
    assert column_drift(reference, current, "x").method == "ks"


def _two_proportion_z_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Textbook pooled two-proportion z-test, two-sided: the peer's test for two values."""
    first = np.unique(np.concatenate([reference, current]))[0]
    n1, n2 = reference.size, current.size
    p1, p2 = np.mean(reference == first), np.mean(current == first)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z)))


@pytest.mark.parametrize("values", [(0, 1), (1, 2, 3), (1, 2, 3, 4, 5)])
def test_numeric_column_with_few_values_is_compared_like_a_category(
    values: tuple[int, ...],
) -> None:
    rng = np.random.default_rng(len(values))
    ref_small, cur_small = rng.choice(values, SMALL), rng.choice(values, SMALL + 50)
    small = column_drift(pl.DataFrame({"n": ref_small}), pl.DataFrame({"n": cur_small}), "n")
    ref_counts = [int(np.sum(ref_small == v)) for v in values]
    cur_counts = [int(np.sum(cur_small == v)) for v in values]
    expected = stats.chi2_contingency([ref_counts, cur_counts], correction=False)
    assert (small.kind, small.method) == ("numeric", "chisquare")
    assert small.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    if len(values) == 2:  # the chi-square of a 2 x 2 table is the two-proportion z-test
        assert small.p_value == pytest.approx(_two_proportion_z_p_value(ref_small, cur_small))
    ref_large, cur_large = rng.choice(values, LARGE), rng.choice(values, 700)
    large = column_drift(pl.DataFrame({"n": ref_large}), pl.DataFrame({"n": cur_large}), "n")
    ref_counts = [int(np.sum(ref_large == v)) for v in values]
    cur_counts = [int(np.sum(cur_large == v)) for v in values]
    assert large.method == "jensenshannon"
    assert large.statistic == pytest.approx(distance.jensenshannon(ref_counts, cur_counts))


def test_few_values_are_counted_over_both_samples() -> None:
    # Three values on each side, six together: a numeric column again.
    reference = pl.DataFrame({"n": [1, 2, 3] * 100})
    current = pl.DataFrame({"n": [4, 5, 6] * 100})
    assert column_drift(reference, current, "n").method == "ks"
    big_reference = pl.DataFrame({"n": [1, 2, 3] * 1000})
    assert column_drift(big_reference, current, "n").method == "wasserstein"
    # Five values together (floats too): compared like a category.
    floats = pl.DataFrame({"n": [0.5, 1.5, 2.5] * 100})
    assert column_drift(floats, pl.DataFrame({"n": [0.5, 3.5, 4.5] * 100}), "n").method == (
        "chisquare"
    )


def test_constant_column_equal_on_both_sides_does_not_drift() -> None:
    reference, current = pl.DataFrame({"n": [7] * 300}), pl.DataFrame({"n": [7] * 200})
    result = column_drift(reference, current, "n")
    assert (result.method, result.p_value, result.drifted) == ("chisquare", 1.0, False)


def test_chisquare_applies_to_numeric_columns_on_their_buckets() -> None:
    reference, current = _frame(LARGE, 1), _frame(3000, 2, shift=0.3)
    ref, cur = reference["x"].to_numpy(), current["x"].to_numpy()
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    table = [np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]]
    result = column_drift(reference, current, "x", method="chisquare")
    assert result.p_value == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9, abs=1e-300
    )
    assert result.drifted


# -- where the threshold falls ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["wasserstein", "jensenshannon", "psi"])
def test_distance_equal_to_threshold_is_drift(method: Method) -> None:
    reference, current = _frame(LARGE, 1), _frame(LARGE, 2, shift=0.2)
    value = column_drift(reference, current, "x", method=method).statistic
    assert column_drift(reference, current, "x", method=method, threshold=value).drifted
    above = math.nextafter(value, math.inf)
    assert not column_drift(reference, current, "x", method=method, threshold=above).drifted


def test_ks_p_value_equal_to_threshold_is_drift_but_chisquare_is_not() -> None:
    reference, current = _frame(SMALL, 1), _frame(SMALL, 2, shift=0.1, mix=(0.35, 0.3, 0.2, 0.15))
    ks = column_drift(reference, current, "x")
    assert ks.method == "ks" and ks.p_value is not None
    assert column_drift(reference, current, "x", threshold=ks.p_value).drifted
    assert not column_drift(
        reference, current, "x", threshold=math.nextafter(ks.p_value, 0.0)
    ).drifted
    chi = column_drift(reference, current, "city")
    assert chi.method == "chisquare" and chi.p_value is not None
    assert not column_drift(reference, current, "city", threshold=chi.p_value).drifted
    assert column_drift(
        reference, current, "city", threshold=math.nextafter(chi.p_value, 1.0)
    ).drifted


def test_boolean_share_change_is_flagged() -> None:
    reference = pl.DataFrame({"flag": [True] * 300 + [False] * 700})
    current = pl.DataFrame({"flag": [True] * 500 + [False] * 500})
    result = column_drift(reference, current, "flag")
    assert result.method == "chisquare"
    assert result.drifted


# -- overrides -------------------------------------------------------------------------------


def test_per_column_method_and_threshold_are_honoured() -> None:
    reference, current = _frame(LARGE, 1), _frame(LARGE, 2, shift=0.5)
    default = _by_column(dataset_drift(reference, current).columns)
    result = dataset_drift(
        reference,
        current,
        methods={"x": "psi", "y": "ks", "city": "psi"},
        thresholds={"x": 10.0, "city": 0.001},
    )
    columns = _by_column(result.columns)
    assert (columns["x"].method, columns["x"].threshold) == ("psi", 10.0)
    assert not columns["x"].drifted  # shifted, but far below the raised threshold
    assert default["x"].drifted
    assert (columns["y"].method, columns["y"].threshold, columns["y"].p_value is not None) == (
        "ks",
        0.05,
        True,
    )
    assert (columns["city"].method, columns["city"].threshold) == ("psi", 0.001)
    assert columns["n"].method == "wasserstein"  # not overridden


def test_method_that_does_not_fit_the_kind_names_the_column() -> None:
    frame = _frame(SMALL, 1)
    with pytest.raises(ValueError, match=r"'ks'.*categorical column 'city'"):
        dataset_drift(frame, frame, methods={"city": "ks"})
    with pytest.raises(ValueError, match=r"unknown drift method 'tvd' for column 'x'"):
        column_drift(frame, frame, "x", method="tvd")  # type: ignore[arg-type]


def test_override_for_a_column_not_compared_is_an_error() -> None:
    frame = _frame(SMALL, 1)
    with pytest.raises(ValueError, match="'typo'"):
        dataset_drift(frame, frame, thresholds={"typo": 0.2})


def test_threshold_must_fit_the_method() -> None:
    frame = _frame(SMALL, 1)
    with pytest.raises(ValueError, match="column 'x'"):
        column_drift(frame, frame, "x", method="ks", threshold=1.5)
    with pytest.raises(ValueError, match="column 'x'"):
        column_drift(frame, frame, "x", threshold=0.0)


# -- nulls -----------------------------------------------------------------------------------


def test_nulls_are_left_out_of_the_test_and_reported() -> None:
    rng = np.random.default_rng(5)
    ref_values = rng.normal(0, 1, 200)
    cur_values = rng.normal(0, 1, 150)
    reference = pl.DataFrame({"x": [*ref_values.tolist(), None] + [None] * 49})
    # NaN is missing too; both kinds together make 30 % of the current column.
    current = pl.DataFrame({"x": [*cur_values.tolist(), *[None] * 30, *[float("nan")] * 34]})
    result = column_drift(reference, current, "x")
    expected = stats.ks_2samp(ref_values, cur_values)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.reference_nulls == pytest.approx(50 / 250)
    assert result.current_nulls == pytest.approx(64 / 214)


def test_nulls_in_categories_are_not_a_category() -> None:
    reference = pl.DataFrame({"city": ["a", "b"] * 100 + [None] * 50})
    current = pl.DataFrame({"city": ["a", "b"] * 100})
    result = column_drift(reference, current, "city")
    assert result.statistic == pytest.approx(0.0)
    assert not result.drifted
    assert (result.reference_nulls, result.current_nulls) == (0.2, 0.0)


def test_column_with_no_values_is_an_error() -> None:
    reference = pl.DataFrame({"x": [1.0, 2.0, 3.0]})
    current = pl.DataFrame({"x": [None, float("nan")]})
    with pytest.raises(DataError, match=r"column 'x' has no values to compare in the current"):
        column_drift(reference, current, "x")


# -- dataset verdict -------------------------------------------------------------------------


def test_dataset_verdict_is_the_share_of_drifted_columns() -> None:
    reference = _frame(LARGE, 1)
    current = _frame(LARGE, 2, shift=0.5, mix=(0.1, 0.2, 0.3, 0.4))
    result = dataset_drift(reference, current)
    assert sorted(result.drifted_columns) == ["city", "x"]
    assert result.share == pytest.approx(2 / 5)
    assert (result.threshold, result.drifted) == (0.5, False)
    assert dataset_drift(reference, current, drift_share=0.4).drifted
    subset = dataset_drift(reference, current, columns=["x", "y"])
    assert ([c.column for c in subset.columns], subset.share, subset.drifted) == (
        ["x", "y"],
        0.5,
        True,
    )


def test_datetime_columns_are_left_out_by_default() -> None:
    frame = _frame(SMALL, 1).with_columns(pl.lit(datetime(2026, 1, 1)).alias("at"))
    assert "at" not in [c.column for c in dataset_drift(frame, frame).columns]
    with pytest.raises(DataError, match=r"column 'at' is datetime"):
        dataset_drift(frame, frame, columns=["at"])


def test_result_is_plain_json() -> None:
    result = dataset_drift(_frame(SMALL, 1), _frame(SMALL, 2, shift=0.5))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["share"] == result.share
    assert data["columns"][0] == {
        "column": "x",
        "kind": "numeric",
        "method": "ks",
        "statistic": result.columns[0].statistic,
        "threshold": 0.05,
        "p_value": result.columns[0].p_value,
        "drifted": True,
        "reference_nulls": 0.0,
        "current_nulls": 0.0,
    }


# -- errors ----------------------------------------------------------------------------------


def test_column_missing_from_current_names_the_column() -> None:
    reference = _frame(SMALL, 1)
    current = reference.drop("city")
    with pytest.raises(DataError, match=r"column 'city' is not in the current data"):
        dataset_drift(reference, current)
    with pytest.raises(DataError, match=r"column 'nope' is not in the reference data"):
        column_drift(reference, reference, "nope")


def test_kind_change_names_the_column() -> None:
    reference = pl.DataFrame({"zip": [1, 2, 3]})
    current = pl.DataFrame({"zip": ["1", "2", "3"]})
    with pytest.raises(DataError, match=r"column 'zip' is numeric in the reference data but "):
        column_drift(reference, current, "zip")


def test_other_inputs_than_frames_are_refused() -> None:
    with pytest.raises(TypeError, match="reference data must be a Polars or pandas DataFrame"):
        column_drift({"x": [1.0]}, pl.DataFrame({"x": [1.0]}), "x")


# -- agreement with scipy --------------------------------------------------------------------


def test_ks_equals_scipy() -> None:
    reference, current = _frame(SMALL, 1), _frame(SMALL + 37, 2, shift=0.2)
    result = column_drift(reference, current, "y", method="ks")
    expected = stats.ks_2samp(reference["y"].to_numpy(), current["y"].to_numpy())
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("ref_rows", "cur_rows"), [(LARGE, LARGE), (LARGE, 3001), (1200, 4321)])
def test_wasserstein_equals_scipy_over_reference_std(ref_rows: int, cur_rows: int) -> None:
    reference, current = _frame(ref_rows, 1), _frame(cur_rows, 2, shift=0.1)
    for name in ("x", "n"):  # continuous, and integers full of ties
        result = column_drift(reference, current, name)
        ref, cur = reference[name].to_numpy(), current[name].to_numpy()
        expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
        assert result.method == "wasserstein"
        assert result.statistic == pytest.approx(expected, rel=1e-9)
        assert result.p_value is None


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 2), (3, 5), (10, 4), (7, 7), (1000, 333)])
def test_wasserstein_of_sorted_samples_equals_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 1000 + m)
    u = np.sort(rng.normal(size=n))
    v = np.sort(rng.integers(-2, 3, size=m).astype(np.float64))
    assert wasserstein_sorted(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12)
    assert wasserstein_sorted(v, u) == pytest.approx(stats.wasserstein_distance(v, u), rel=1e-12)


def test_categorical_statistics_equal_scipy_and_profile_psi() -> None:
    reference = pl.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 20})
    current = pl.DataFrame({"c": ["a"] * 30 + ["b"] * 30 + ["c"] * 30 + ["d"] * 10})
    ref_counts, cur_counts = [50, 30, 20, 0], [30, 30, 30, 10]
    chi = column_drift(reference, current, "c", method="chisquare")
    expected = stats.chi2_contingency([ref_counts, cur_counts], correction=False)
    assert chi.statistic == pytest.approx(expected.statistic)
    assert chi.p_value == pytest.approx(expected.pvalue)
    js = column_drift(reference, current, "c", method="jensenshannon")
    assert js.statistic == pytest.approx(distance.jensenshannon(ref_counts, cur_counts))
    index = column_drift(reference, current, "c", method="psi")
    assert index.statistic == pytest.approx(psi(ref_counts, cur_counts))


def test_numeric_buckets_for_psi_and_jensenshannon() -> None:
    # Few distinct values: one bucket per value, values of either side included.
    reference = pl.DataFrame({"n": [1, 2, 3] * 40})
    current = pl.DataFrame({"n": [1, 2, 3, 4] * 30})
    result = column_drift(reference, current, "n", method="jensenshannon")
    assert result.statistic == pytest.approx(distance.jensenshannon([40, 40, 40, 0], [1, 1, 1, 1]))
    # Many distinct values: Sturges' bins over both samples together for jensenshannon...
    big_ref, big_cur = _frame(LARGE, 1), _frame(3000, 2, shift=0.3)
    ref, cur = big_ref["x"].to_numpy(), big_cur["x"].to_numpy()
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    ref_counts, cur_counts = np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
    result = column_drift(big_ref, big_cur, "x", method="jensenshannon")
    assert result.statistic == pytest.approx(distance.jensenshannon(ref_counts, cur_counts))
    # ... and the reference's deciles for psi, as everywhere a PSI is computed.
    cuts = np.quantile(ref, DECILES)
    ref_counts = np.bincount(np.searchsorted(cuts, ref, side="left"), minlength=10)
    cur_counts = np.bincount(np.searchsorted(cuts, cur, side="left"), minlength=10)
    index = column_drift(big_ref, big_cur, "x", method="psi")
    assert index.statistic == pytest.approx(psi(ref_counts.tolist(), cur_counts.tolist()))


def test_pandas_frames_give_the_same_result_as_polars() -> None:
    reference, current = _frame(SMALL, 1), _frame(SMALL, 2, shift=0.5)
    missing = pl.when(pl.col("y") > 11).then(None).otherwise(pl.col("y")).alias("y")
    with_nan = current.with_columns(missing)
    from_polars = dataset_drift(reference, with_nan)
    from_pandas = dataset_drift(reference.to_pandas(), with_nan.to_pandas())
    assert from_pandas == from_polars
    assert isinstance(with_nan.to_pandas(), pd.DataFrame)
    assert _by_column(from_pandas.columns)["y"].current_nulls > 0
