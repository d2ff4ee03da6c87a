"""Duplicate keys inside one source, the unique checks, and the list of declared checks."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from mlship.data.checks import validate
from mlship.data.duplicates import resolve_duplicates
from mlship.data.typing import REASONS
from mlship.errors import DataError
from mlship.spec.data import Column, Source, TableChecks

COLUMNS = [
    Column(name="id", type="integer", role="id"),
    Column(name="plan", type="string"),
    Column(name="seen", type="integer"),
    Column(name="email", type="string", role="pii"),
]


def _source_frame() -> pl.DataFrame:
    """Lines 2-8 of a CSV: id 1 exactly repeated, id 4 twice with other values, null ids."""
    rows = [
        (1, "basic", 10, "h1"),
        (2, "pro", 11, "h2"),
        (1, "basic", 10, "h1"),
        (4, "basic", 12, "h4"),
        (4, "pro", 13, "h5"),
        (None, "basic", 14, "h6"),
        (None, "basic", 14, "h6"),
    ]
    frame = pl.DataFrame(rows, schema=["id", "plan", "seen", "email"], orient="row")
    return frame.with_columns(
        pl.lit("accounts").alias("_source"),
        pl.format("line {}", pl.int_range(2, pl.len() + 2)).alias("_row"),
        pl.lit(None, dtype=pl.String).alias(REASONS),
    )


def _source(policy: Any = "quarantine", key: list[str] | None = None) -> Source:
    return Source.model_validate(
        {"name": "accounts", "path": "a.csv", "key": key or ["id"], "on_duplicate": policy}
    )


def test_conflicting_copies_go_to_quarantine_with_a_reason_naming_key_lines_and_values() -> None:
    found = resolve_duplicates(_source_frame(), _source(), COLUMNS)
    assert found.frame["_row"].to_list() == ["line 2", "line 3", "line 7", "line 8"]
    assert found.quarantined["_row"].to_list() == ["line 5", "line 6"]
    reason = (
        "duplicate key (id = 4) in source 'accounts': lines 5, 6 disagree on plan ('basic' at "
        "line 5, 'pro' at line 6); seen (12 at line 5, 13 at line 6); email (private values)"
    )
    assert found.quarantined[REASONS].to_list() == [reason, reason]
    assert "h4" not in reason and "h5" not in reason  # PII values never appear
    counts = found.counts
    assert counts is not None
    assert (counts.exact_copies, counts.conflicting_keys, counts.quarantined_rows) == (1, 1, 2)
    assert counts.dropped_rows == 0 and counts.outcome == "quarantined"


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        ("keep_first", "line 5"),
        ("keep_last", "line 6"),
        ({"newest_by": "seen"}, "line 6"),
    ],
)
def test_a_policy_keeps_one_copy(policy: Any, kept: str) -> None:
    found = resolve_duplicates(_source_frame(), _source(policy), COLUMNS)
    rows = found.frame.filter(pl.col("id") == 4)["_row"].to_list()
    assert rows == [kept]
    assert found.quarantined.is_empty()
    assert found.counts is not None and found.counts.dropped_rows == 1
    # Exact copies collapse whatever the policy; rows without a key are left alone.
    assert found.frame.filter(pl.col("id") == 1).height == 1
    assert found.frame.filter(pl.col("id").is_null()).height == 2


def test_newest_by_puts_missing_timestamps_last_and_breaks_ties_by_line() -> None:
    frame = _source_frame().with_columns(
        pl.when(pl.col("_row") == "line 6").then(None).otherwise(pl.col("seen")).alias("seen")
    )
    found = resolve_duplicates(frame, _source({"newest_by": "seen"}), COLUMNS)
    assert found.frame.filter(pl.col("id") == 4)["_row"].to_list() == ["line 5"]


def test_fail_names_source_key_and_lines() -> None:
    with pytest.raises(DataError) as raised:
        resolve_duplicates(_source_frame(), _source("fail"), COLUMNS)
    assert str(raised.value) == (
        "source 'accounts' holds 1 key(s) in 2 rows whose copies disagree, and its on_duplicate "
        "is fail: duplicate key (id = 4) in source 'accounts': lines 5, 6 disagree on plan "
        "('basic' at line 5, 'pro' at line 6); seen (12 at line 5, 13 at line 6); email "
        "(private values)"
    )


def test_exact_copies_alone_pass_fail() -> None:
    frame = _source_frame().filter(pl.col("id") != 4)
    found = resolve_duplicates(frame, _source("fail"), COLUMNS)
    assert found.frame.height == frame.height - 1


def test_a_private_key_is_not_shown() -> None:
    frame = _source_frame()
    found = resolve_duplicates(frame, _source(key=["email", "plan"]), COLUMNS)
    assert found.counts is not None and found.counts.conflicting_keys == 0
    frame = frame.with_columns(pl.lit("same").alias("email"))
    found = resolve_duplicates(frame, _source(key=["email"]), COLUMNS)
    reasons = found.quarantined[REASONS].unique().to_list()
    assert reasons[0].startswith(
        "duplicate key (email = (private value)) in source 'accounts': lines 2, 3, 5, 6, 7 "
        "disagree on id (1 at line 2, 2 at line 3, 4 at lines 5, 6, null at line 7)"
    )


def test_unknown_key_or_timestamp_columns_are_named() -> None:
    with pytest.raises(DataError, match=r"source 'accounts': key column\(s\) 'ident' are not"):
        resolve_duplicates(_source_frame(), _source(key=["ident"]), COLUMNS)
    with pytest.raises(DataError, match="on_duplicate newest_by 'updated' is not a column"):
        resolve_duplicates(_source_frame(), _source({"newest_by": "updated"}), COLUMNS)


def test_a_source_without_a_key_is_left_as_it_is() -> None:
    source = Source.model_validate({"name": "accounts", "path": "a.csv"})
    found = resolve_duplicates(_source_frame(), source, COLUMNS)
    assert found.counts is None
    assert found.frame.equals(_source_frame())


def test_quarantined_copies_count_in_the_validation_and_its_declared_checks() -> None:
    found = resolve_duplicates(_source_frame(), _source(), COLUMNS)
    assert found.counts is not None
    result = validate(
        found.frame,
        COLUMNS,
        TableChecks(max_quarantine=0.5),
        duplicates=[found.counts],
        set_aside=[found.quarantined],
    )
    assert (result.rows_in, len(result.quarantine), result.rows_out) == (6, 3, 3)
    summary = result.summary()
    assert summary["duplicates"][0] | {"examples": []} == {
        "source": "accounts",
        "key": ["id"],
        "policy": "quarantine",
        "outcome": "quarantined",
        "rows": 7,
        "exact_copies": 1,
        "conflicting_keys": 1,
        "quarantined_rows": 2,
        "dropped_rows": 0,
        "examples": [],
    }
    declared = {(d["column"], d["check"]): d for d in summary["declared"]}
    assert declared[(None, "on_duplicate quarantine (id) in accounts")] == {
        "column": None,
        "check": "on_duplicate quarantine (id) in accounts",
        "severity": "error",
        "tested": 7,
        "failed": 2,
        "passed": False,
        "detail": "1 exact copies collapsed, 1 conflicting keys quarantined (2 rows)",
    }
    # The null-keyed exact copy is left to the table's duplicates check.
    assert declared[(None, "duplicate row")]["failed"] == 1
    assert declared[(None, "max_quarantine")]["detail"] == (
        "50.0% quarantined, at most 50.0% allowed"
    )
    problems = {r["check"]: r for r in summary["checks"]}
    assert problems["duplicate key (id) in accounts"]["failed"] == 2


def test_unique_checks_tell_conflicting_copies_from_exact_repeats() -> None:
    frame = pl.DataFrame(
        {
            "k": [1, 2, 1, 1, 3],
            "v": ["a", "b", "a", "c", None],
            "_source": ["s"] * 5,
            "_row": [f"line {i}" for i in range(2, 7)],
        }
    )
    columns = [
        Column.model_validate({"name": "k", "type": "integer", "checks": [{"unique": True}]})
    ]
    table = TableChecks(unique=[["k"]], duplicates="allow", max_quarantine=1.0)
    result = validate(frame, columns, table)
    reasons = dict(zip(result.quarantine["_row"], result.quarantine[REASONS], strict=True))
    assert reasons == {
        "line 4": "k: 1 repeats an earlier row's value, as an exact copy of that row; "
        "(k) repeats an earlier row's values, as an exact copy of that row",
        "line 5": "k: 1 repeats an earlier row's value, with different values in other columns; "
        "(k) repeats an earlier row's values, with different values in other columns",
    }
    declared = {(d.column, d.check): (d.tested, d.failed) for d in result.declared}
    assert declared == {
        ("k", "unique"): (5, 1),
        ("k", "unique (exact copy)"): (5, 1),
        (None, "unique (k)"): (5, 1),
        (None, "unique (k) (exact copy)"): (5, 1),
        (None, "max_quarantine"): (5, 2),
    }


def test_every_declared_check_is_listed_even_when_all_pass() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, None, 4.0], "y": [1, 2, 3, 4]})
    columns = [
        Column.model_validate(
            {"name": "x", "type": "float", "checks": [{"min": 0, "max_missing": 0.5}]}
        ),
        Column.model_validate({"name": "y", "type": "integer", "checks": [{"max": 10}]}),
    ]
    table = TableChecks.model_validate(
        {"rows": {"min": 2}, "rules": [{"name": "small", "expr": "y < 100"}]}
    )
    result = validate(frame, columns, table)
    assert result.results == []
    assert [(d.column, d.check, d.tested, d.failed, d.passed) for d in result.declared] == [
        ("x", "min", 3, 0, True),
        ("y", "max", 4, 0, True),
        (None, "rule small", 4, 0, True),
        (None, "duplicate row", 4, 0, True),
        ("x", "max_missing", 4, 1, True),
        (None, "rows", 4, 0, True),
        (None, "max_quarantine", 4, 0, True),
    ]
