"""Dataset profiles: known answers on small frames, missing values, JSON safety, diffs and PSI."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest

from mlship.data.profile import QUANTILES, column_stabilities, diff_profiles, profile_frame
from mlship.data.stability import PSI_MAX, psi


def _column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


def _assert_plain_json(value: Any) -> None:
    """Only plain Python values, and only finite floats."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            _assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            _assert_plain_json(item)
    else:
        assert value is None or type(value) in (bool, int, float, str), type(value)
        if isinstance(value, float):
            assert math.isfinite(value)


# -- numeric ---------------------------------------------------------------------------------


def test_numeric_statistics_known_answers() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, None, float("nan")]})
    column = _column(profile_frame(frame, bins=3), "x")

    assert column["kind"] == "numeric"
    assert column["dtype"] == "Float64"
    assert (column["count"], column["missing"], column["distinct"]) == (4, 2, 4)
    assert column["missing_share"] == pytest.approx(2 / 6)
    assert (column["min"], column["max"]) == (1.0, 4.0)
    assert column["mean"] == pytest.approx(2.5)
    assert column["std"] == pytest.approx(math.sqrt(5 / 3))
    assert column["zeros"] == 0
    assert column["infinite"] == 0
    assert column["quantiles"]["p25"] == pytest.approx(1.75)
    assert column["quantiles"]["p50"] == pytest.approx(2.5)
    assert column["quantiles"]["p99"] == pytest.approx(3.97)
    # First bin closed on both sides, later bins open on the left.
    assert column["histogram"] == {"edges": [1.0, 2.0, 3.0, 4.0], "counts": [2, 1, 1]}


def test_quantiles_match_numpy_linear_interpolation() -> None:
    values = np.random.default_rng(3).gamma(2.0, 5.0, 999)
    column = _column(profile_frame(pl.DataFrame({"v": values})), "v")
    for label, share in QUANTILES.items():
        assert column["quantiles"][label] == pytest.approx(float(np.quantile(values, share)))
    assert column["std"] == pytest.approx(float(np.std(values, ddof=1)))
    assert sum(column["histogram"]["counts"]) == 999
    assert len(column["histogram"]["counts"]) == 20


def test_small_integer_ranges_get_one_bin_per_value() -> None:
    frame = pl.DataFrame({"calls": [0, 1, 1, 2, 2, 2, None]})
    column = _column(profile_frame(frame), "calls")
    assert column["histogram"] == {"edges": [-0.5, 0.5, 1.5, 2.5], "counts": [1, 2, 3]}
    assert (column["min"], column["max"], column["zeros"]) == (0, 2, 1)
    assert type(column["min"]) is int
    assert column["missing"] == 1


def test_infinities_are_present_but_left_out_of_the_moments() -> None:
    frame = pl.DataFrame({"x": [1.0, float("inf"), float("-inf"), 3.0, float("nan")]})
    column = _column(profile_frame(frame), "x")
    assert (column["count"], column["missing"], column["infinite"]) == (4, 1, 2)
    assert (column["min"], column["max"], column["mean"]) == (1.0, 3.0, 2.0)
    assert sum(column["histogram"]["counts"]) == 2


def test_constant_and_empty_numeric_columns() -> None:
    frame = pl.DataFrame(
        {"k": [5.0, 5.0, 5.0], "gone": pl.Series([None, None, None], dtype=pl.Float64)}
    )
    profile = profile_frame(frame)
    constant = _column(profile, "k")
    assert constant["histogram"] == {"edges": [5.0, 5.0], "counts": [3]}
    assert constant["std"] == 0.0
    gone = _column(profile, "gone")
    assert (gone["count"], gone["missing"], gone["missing_share"]) == (0, 3, 1.0)
    assert gone["min"] is None
    assert gone["mean"] is None
    assert gone["quantiles"]["p50"] is None
    assert gone["histogram"] == {"edges": [], "counts": []}


# -- other kinds -----------------------------------------------------------------------------


def test_string_top_values_and_lengths() -> None:
    frame = pl.DataFrame({"s": ["bb", "a", "bb", None, "cccc", "a", "bb"]})
    column = _column(profile_frame(frame), "s")
    assert column["kind"] == "string"
    assert column["top"] == [
        {"value": "bb", "count": 3},
        {"value": "a", "count": 2},
        {"value": "cccc", "count": 1},
    ]
    assert (column["count"], column["missing"], column["distinct"]) == (6, 1, 3)
    assert (column["min_length"], column["max_length"]) == (1, 4)
    assert column["mean_length"] == pytest.approx((2 + 1 + 2 + 4 + 1 + 2) / 6)


def test_top_values_break_ties_by_value() -> None:
    frame = pl.DataFrame({"s": ["y", "x", "z", "y", "x", "z", "w"]})
    column = _column(profile_frame(frame, top=2), "s")
    assert column["top"] == [{"value": "x", "count": 2}, {"value": "y", "count": 2}]


def test_categoricals_are_profiled_like_strings() -> None:
    frame = pl.DataFrame({"c": pl.Series(["x", "y", "x", None]).cast(pl.Categorical)})
    column = _column(profile_frame(frame), "c")
    assert column["kind"] == "string"
    assert column["top"] == [{"value": "x", "count": 2}, {"value": "y", "count": 1}]
    assert column["missing"] == 1


def test_boolean_counts() -> None:
    column = _column(profile_frame(pl.DataFrame({"b": [True, False, True, None]})), "b")
    assert column["kind"] == "boolean"
    assert (column["true"], column["false"], column["missing"], column["distinct"]) == (2, 1, 1, 2)


def test_datetimes_give_iso_strings_and_a_histogram_over_time() -> None:
    moments = [datetime(2024, 1, day, tzinfo=UTC) for day in range(1, 11)]
    frame = pl.DataFrame(
        {"at": [*moments, None], "day": [m.date() for m in moments] + [date(2024, 1, 1)]}
    )
    profile = profile_frame(frame, bins=3)
    at = _column(profile, "at")
    assert at["kind"] == "datetime"
    assert (at["min"], at["max"]) == ("2024-01-01T00:00:00+00:00", "2024-01-10T00:00:00+00:00")
    assert at["histogram"]["edges"] == [
        "2024-01-01T00:00:00+00:00",
        "2024-01-04T00:00:00+00:00",
        "2024-01-07T00:00:00+00:00",
        "2024-01-10T00:00:00+00:00",
    ]
    assert at["histogram"]["counts"] == [4, 3, 3]
    assert at["missing"] == 1
    day = _column(profile, "day")
    assert (day["min"], day["max"]) == ("2024-01-01", "2024-01-10")
    assert sum(day["histogram"]["counts"]) == 11


def test_unsupported_types_get_counts_only() -> None:
    column = _column(profile_frame(pl.DataFrame({"l": [[1], None, [2, 3]]})), "l")
    assert column["kind"] == "other"
    assert (column["count"], column["missing"], column["distinct"]) == (2, 1, None)


def test_profile_is_plain_finite_json() -> None:
    frame = pl.DataFrame(
        {
            "f": [float("nan"), float("inf"), 1.5],
            "nan_only": [float("nan")] * 3,
            "i": [1, None, 3],
            "s": ["a", None, "b"],
            "b": [True, None, False],
            "d": [datetime(2024, 5, 1), None, datetime(2024, 5, 2)],
        }
    )
    for profile in (profile_frame(frame), profile_frame(frame.clear())):
        _assert_plain_json(profile)
        json.dumps(profile, allow_nan=False)
    nan_only = _column(profile_frame(frame), "nan_only")
    assert (nan_only["count"], nan_only["missing"]) == (0, 3)


def test_empty_frame() -> None:
    profile = profile_frame(pl.DataFrame({"x": pl.Series([], dtype=pl.Int64)}))
    assert profile["rows"] == 0
    column = _column(profile, "x")
    assert (column["count"], column["missing"], column["missing_share"]) == (0, 0, 0.0)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="bins"):
        profile_frame(pl.DataFrame({"x": [1]}), bins=0)
    with pytest.raises(ValueError, match="top"):
        profile_frame(pl.DataFrame({"x": [1]}), top=-1)


# -- diff ------------------------------------------------------------------------------------


def _profiles(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    frame_a, frame_b = pl.DataFrame(a), pl.DataFrame(b)
    return diff_profiles(
        profile_frame(frame_a), profile_frame(frame_b), column_stabilities(frame_a, frame_b)
    )


def _diff_column(diff: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in diff["columns"] if c["name"] == name)


def test_diff_reports_schema_changes() -> None:
    diff = _profiles(
        {"kept": [1, 2, 3], "retyped": [1, 2, 3], "dropped": ["a", "b", "c"]},
        {"kept": [1, 2, 3, 4], "retyped": [1.0, 2.0, 3.0, 4.0], "new": [True] * 4},
    )
    assert diff["rows"] == {"a": 3, "b": 4, "change": 1}
    assert diff["added"] == ["new"]
    assert diff["removed"] == ["dropped"]
    assert diff["dtype_changed"] == [{"column": "retyped", "a": "Int64", "b": "Float64"}]
    assert [c["name"] for c in diff["columns"]] == ["kept", "retyped"]
    assert _diff_column(diff, "kept")["count"] == {"a": 3, "b": 4, "change": 1}


def test_identical_data_has_zero_psi_and_no_change() -> None:
    rng = np.random.default_rng(0)
    data = {
        "x": rng.normal(0, 1, 2000),
        "n": rng.integers(0, 5, 2000),
        "s": rng.choice(["a", "b", "c"], 2000),
        "b": rng.random(2000) < 0.3,
    }
    diff = _profiles(data, data)
    for column in diff["columns"]:
        assert column["psi"] == 0.0, column["name"]
        assert column["missing_share"]["change"] == 0.0
    x = _diff_column(diff, "x")
    assert x["psi_method"] == "deciles"
    assert x["mean"]["change"] == 0.0
    assert all(q["change"] == 0.0 for q in x["quantiles"].values())
    assert all(t["change"] == 0.0 for t in _diff_column(diff, "s")["top_values"])


def test_shifted_numeric_data_has_a_large_psi() -> None:
    rng = np.random.default_rng(1)
    diff = _profiles({"x": rng.normal(0, 1, 5000)}, {"x": rng.normal(3, 1, 5000)})
    x = _diff_column(diff, "x")
    assert x["psi_method"] == "deciles"
    assert x["psi"] > 2
    assert x["mean"]["change"] == pytest.approx(3, abs=0.1)


def test_resampled_numeric_data_has_a_small_psi_over_decile_buckets() -> None:
    rng = np.random.default_rng(2)
    diff = _profiles({"x": rng.normal(0, 1, 5000)}, {"x": rng.normal(0, 1, 5000)})
    x = _diff_column(diff, "x")
    assert x["psi_method"] == "deciles"
    assert x["psi"] < 0.05


def test_few_values_get_one_bucket_each() -> None:
    diff = _profiles({"n": [0, 1, 1, 2, 2, 2]}, {"n": [0, 0, 0, 1, 2, 2]})
    n = _diff_column(diff, "n")
    assert n["psi_method"] == "values"
    assert n["psi"] == pytest.approx(psi([1, 2, 3], [3, 1, 2]))


def test_categorical_share_changes_and_psi() -> None:
    diff = _profiles(
        {"s": ["a"] * 6 + ["b"] * 3 + ["c"] * 1},
        {"s": ["a"] * 2 + ["b"] * 3 + ["d"] * 5},
    )
    s = _diff_column(diff, "s")
    changes = {item["value"]: item for item in s["top_values"]}
    assert changes["a"]["change"] == pytest.approx(-0.4)
    assert changes["b"]["change"] == pytest.approx(0.0)
    assert changes["c"] == {"value": "c", "a": 0.1, "b": 0.0, "change": pytest.approx(-0.1)}
    assert changes["d"]["a"] == 0.0
    assert s["psi_method"] == "categories"
    assert s["psi"] == pytest.approx(psi([6, 3, 1, 0], [2, 3, 0, 5]))
    assert s["psi"] > 1


def test_categorical_psi_counts_every_value_even_beyond_the_top_list() -> None:
    a = pl.DataFrame({"s": ["a"] * 5 + ["b"] * 3 + ["c", "d"]})
    b = pl.DataFrame({"s": ["a"] * 5 + ["b"] * 3 + ["e", "f"]})
    s = _diff_column(
        diff_profiles(profile_frame(a, top=2), profile_frame(b, top=2), column_stabilities(a, b)),
        "s",
    )
    assert s["psi"] == pytest.approx(psi([5, 3, 1, 1, 0, 0], [5, 3, 0, 0, 1, 1]))
    unknown = {t["value"]: t for t in s["top_values"]}
    assert set(unknown) == {"a", "b"}


def test_categories_that_do_not_overlap_have_the_largest_psi() -> None:
    diff = _profiles({"s": [f"old{i}" for i in range(30)]}, {"s": [f"new{i}" for i in range(30)]})
    assert _diff_column(diff, "s")["psi"] == PSI_MAX
    assert 18 < PSI_MAX < 19


def test_boolean_and_datetime_diffs() -> None:
    days = [datetime(2024, 1, d) for d in range(1, 29)]
    diff = _profiles(
        {"flag": [True] * 14 + [False] * 14, "at": days},
        {"flag": [True] * 7 + [False] * 21, "at": [d.replace(month=3) for d in days]},
    )
    flag = _diff_column(diff, "flag")
    assert flag["true_share"]["change"] == pytest.approx(-0.25)
    assert flag["psi"] == pytest.approx(psi([14, 14], [7, 21]))
    at = _diff_column(diff, "at")
    assert at["psi_method"] == "deciles"
    assert at["psi"] > 2
    assert at["max"]["b"] == "2024-03-28T00:00:00"


def test_a_kind_change_keeps_the_generic_fields_only() -> None:
    diff = _profiles({"v": [1, 2, 3]}, {"v": ["1", "2", "3"]})
    v = _diff_column(diff, "v")
    assert v["kind"] is None
    assert v["psi"] is None
    assert v["distinct"]["change"] == 0
    assert "mean" not in v
