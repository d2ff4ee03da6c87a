"""Combining sources: unions, joins, point-in-time joins and conflict rules, with hand-made frames
whose right answers are known, and the report that says what happened."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest

from mlship.data.combine import CombineResult, combine_sources
from mlship.errors import DataError
from mlship.spec.data import Combine, Conflicts, Join


def _union(frames: dict[str, pl.DataFrame], conflicts: Conflicts | None = None) -> CombineResult:
    return combine_sources(frames, Combine(method="union", conflicts=conflicts), list(frames))


def _join(
    frames: dict[str, pl.DataFrame],
    *joins: Join,
    conflicts: Conflicts | None = None,
    base: str | None = None,
) -> CombineResult:
    combine = Combine(method="join", base=base, joins=list(joins), conflicts=conflicts)
    return combine_sources(frames, combine, list(frames))


def _no_helpers(result: CombineResult) -> None:
    assert not [c for c in result.frame.columns if c.startswith("__mlship_")]
    json.dumps(result.report)


# -- union -----------------------------------------------------------------------------------


def test_union_stacks_in_spec_order_and_fills_missing_columns_with_null() -> None:
    a = pl.DataFrame({"id": [1, 2], "x": [1.0, 2.0]})
    b = pl.DataFrame({"id": [3], "y": ["q"]})
    result = _union({"a": a, "b": b})
    assert result.frame.columns == ["id", "x", "y"]
    assert result.frame.rows() == [(1, 1.0, None), (2, 2.0, None), (3, None, "q")]
    assert result.report == {
        "method": "union",
        "rows_in": {"a": 2, "b": 1},
        "rows_out": 3,
        "conflicts": None,
    }
    _no_helpers(result)


def test_union_keeps_duplicate_keys_without_a_conflicts_rule() -> None:
    a = pl.DataFrame({"id": [1], "x": [1]})
    b = pl.DataFrame({"id": [1], "x": [2]})
    assert _union({"a": a, "b": b}).frame.rows() == [(1, 1), (1, 2)]


def test_union_refuses_a_column_with_different_types() -> None:
    a = pl.DataFrame({"id": [1], "amount": [1.5]})
    b = pl.DataFrame({"id": [2], "amount": ["1.5"]})
    with pytest.raises(DataError) as info:
        _union({"crm": a, "billing": b})
    message = str(info.value)
    assert "column 'amount' has different types in sources 'crm', 'billing'" in message
    assert "crm: Float64" in message
    assert "billing: String" in message


def test_union_accepts_an_all_null_column_next_to_a_typed_one() -> None:
    a = pl.DataFrame({"id": [1], "x": [None]})
    b = pl.DataFrame({"id": [2], "x": [5]})
    result = _union({"a": a, "b": b})
    assert result.frame.schema["x"] == pl.Int64
    assert result.frame["x"].to_list() == [None, 5]


def test_sources_must_match_the_spec_order() -> None:
    frame = pl.DataFrame({"id": [1]})
    with pytest.raises(DataError, match="do not match the sources of the spec"):
        combine_sources({"a": frame}, Combine(), ["a", "b"])


def test_reserved_helper_column_names_are_refused() -> None:
    frame = pl.DataFrame({"__mlship_row": [1]})
    with pytest.raises(
        DataError, match=r"source 'a': column name\(s\) '__mlship_row' are reserved"
    ):
        _union({"a": frame})


# -- union with conflicts --------------------------------------------------------------------


def _three_sources() -> dict[str, pl.DataFrame]:
    return {
        "crm": pl.DataFrame(
            {"id": [1, 2, 3], "plan": ["gold", "basic", "gold"], "age": [30, 40, 50]}
        ),
        "web": pl.DataFrame({"id": [2, 4], "plan": ["gold", "basic"], "age": [40, 20]}),
        "shop": pl.DataFrame({"id": [1, 2], "plan": ["gold", "pro"], "age": [31, 41]}),
    }


def test_prefer_keeps_the_row_of_the_most_trusted_source() -> None:
    conflicts = Conflicts(key=["id"], rule="prefer", prefer=["shop", "web"])
    result = _union(_three_sources(), conflicts)
    rows = {row["id"]: row for row in result.frame.to_dicts()}
    assert rows[1] == {"id": 1, "plan": "gold", "age": 31}  # shop over crm
    assert rows[2] == {"id": 2, "plan": "pro", "age": 41}  # shop over web over crm
    assert rows[3]["age"] == 50
    assert rows[4]["age"] == 20
    assert result.frame.height == 4
    assert result.report["rows_out"] == 4
    assert result.report["conflicts"] == {
        "keys": 2,
        # id 1: age differs (plan agrees); id 2: plan and age differ
        "values": 3,
        "rule": "prefer",
        "resolved_from": {"crm": 0, "web": 0, "shop": 2},
    }
    _no_helpers(result)


def test_sources_not_listed_in_prefer_rank_after_the_listed_ones_in_spec_order() -> None:
    conflicts = Conflicts(key=["id"], rule="prefer", prefer=["web"])
    result = _union(_three_sources(), conflicts)
    rows = {row["id"]: row for row in result.frame.to_dicts()}
    assert rows[1]["age"] == 30  # crm (spec order) over shop, neither listed
    assert rows[2]["plan"] == "gold"  # web is listed
    assert result.report["conflicts"]["resolved_from"] == {"crm": 1, "web": 1, "shop": 0}


def test_prefer_naming_an_unknown_source_is_refused() -> None:
    with pytest.raises(DataError, match=r"conflicts.prefer names unknown source\(s\) 'wbe'"):
        _union(_three_sources(), Conflicts(key=["id"], rule="prefer", prefer=["wbe"]))


def test_newest_keeps_the_row_with_the_latest_timestamp() -> None:
    frames = {
        "a": pl.DataFrame(
            {
                "id": [1, 2, 3],
                "updated": [date(2024, 1, 5), date(2024, 1, 1), None],
                "v": [10, 20, 30],
            }
        ),
        "b": pl.DataFrame(
            {
                "id": [1, 2, 3],
                "updated": [date(2024, 1, 3), date(2024, 1, 1), date(2023, 6, 1)],
                "v": [11, 21, 31],
            }
        ),
        "c": pl.DataFrame({"id": [2], "updated": [date(2024, 1, 2)], "v": [22]}),
    }
    result = _union(frames, Conflicts(key=["id"], rule="newest", timestamp="updated"))
    assert result.frame.sort("id")["v"].to_list() == [10, 22, 31]
    assert result.report["conflicts"] == {
        "keys": 3,
        # id 1: updated, v; id 2: updated, v; id 3: updated, v
        "values": 6,
        "rule": "newest",
        "resolved_from": {"a": 1, "b": 1, "c": 1},
    }


def test_newest_ties_go_to_the_source_earlier_in_spec_order() -> None:
    day = date(2024, 1, 1)
    frames = {
        "a": pl.DataFrame({"id": [1], "updated": [day], "v": ["first"]}),
        "b": pl.DataFrame({"id": [1], "updated": [day], "v": ["second"]}),
    }
    result = _union(frames, Conflicts(key=["id"], rule="newest", timestamp="updated"))
    assert result.frame["v"].to_list() == ["first"]


def test_duplicates_within_one_source_are_reduced_too() -> None:
    frames = {"a": pl.DataFrame({"id": [1, 1, 2], "v": [1, 2, 3]})}
    result = _union(frames, Conflicts(key=["id"], rule="prefer", prefer=["a"]))
    assert result.frame.rows() == [(1, 1), (2, 3)]
    assert result.report["conflicts"]["keys"] == 1
    assert result.report["conflicts"]["values"] == 1


def test_rows_with_a_null_key_are_kept_and_not_merged() -> None:
    frames = {
        "a": pl.DataFrame({"id": [None, 1], "v": [1, 2]}),
        "b": pl.DataFrame({"id": [None], "v": [3]}),
    }
    result = _union(frames, Conflicts(key=["id"], rule="prefer", prefer=["b"]))
    assert result.frame.rows() == [(None, 1), (1, 2), (None, 3)]
    assert result.report["conflicts"]["keys"] == 0


def test_identical_rows_from_two_sources_are_a_duplicate_key_without_differing_values() -> None:
    frames = {
        "a": pl.DataFrame({"id": [1], "v": [5]}),
        "b": pl.DataFrame({"id": [1], "v": [5]}),
    }
    result = _union(frames, Conflicts(key=["id"], rule="prefer", prefer=["b"]))
    assert result.frame.rows() == [(1, 5)]
    assert result.report["conflicts"]["keys"] == 1
    assert result.report["conflicts"]["values"] == 0


def test_bookkeeping_columns_are_not_counted_as_conflicting_values() -> None:
    frames = {
        "a": pl.DataFrame({"id": [1], "v": [5], "_source": ["a"]}),
        "b": pl.DataFrame({"id": [1], "v": [5], "_source": ["b"]}),
    }
    result = _union(frames, Conflicts(key=["id"], rule="prefer", prefer=["b"]))
    assert result.frame["_source"].to_list() == ["b"]
    assert result.report["conflicts"]["values"] == 0


def test_key_column_missing_in_a_source_is_refused() -> None:
    frames = {"a": pl.DataFrame({"id": [1]}), "b": pl.DataFrame({"customer": [1]})}
    with pytest.raises(DataError) as info:
        _union(frames, Conflicts(key=["id"], rule="prefer", prefer=["a"]))
    message = str(info.value)
    assert "source 'b' lacks column(s) 'id'" in message
    assert "it has: customer" in message


def test_newest_needs_the_timestamp_in_every_source() -> None:
    frames = {"a": pl.DataFrame({"id": [1], "ts": [1]}), "b": pl.DataFrame({"id": [1]})}
    with pytest.raises(DataError, match=r"source 'b' lacks column\(s\) 'ts'.*rule newest"):
        _union(frames, Conflicts(key=["id"], rule="newest", timestamp="ts"))


# -- join ------------------------------------------------------------------------------------


def _customers() -> pl.DataFrame:
    return pl.DataFrame({"id": [1, 2, 3], "age": [30, 40, 50]})


def test_left_join_keeps_every_row_in_order_and_counts_matches() -> None:
    plans = pl.DataFrame({"id": [3, 1, 9], "plan": ["gold", "basic", "pro"]})
    result = _join({"customers": _customers(), "plans": plans}, Join(source="plans", on=["id"]))
    assert result.frame.rows() == [(1, 30, "basic"), (2, 40, None), (3, 50, "gold")]
    assert result.report["method"] == "join"
    assert result.report["base"] == "customers"
    assert result.report["rows_in"] == {"customers": 3, "plans": 3}
    assert result.report["rows_out"] == 3
    [entry] = result.report["joins"]
    assert entry["source"] == "plans"
    assert (entry["rows_left"], entry["rows_right"]) == (3, 3)
    assert (entry["matched"], entry["unmatched"], entry["dropped"]) == (2, 1, 0)
    assert result.report["conflicts"] is None
    _no_helpers(result)


def test_inner_join_drops_unmatched_rows_and_reports_them() -> None:
    plans = pl.DataFrame({"id": [3, 1], "plan": ["gold", "basic"]})
    result = _join(
        {"customers": _customers(), "plans": plans},
        Join(source="plans", on=["id"], how="inner"),
    )
    assert result.frame.rows() == [(1, 30, "basic"), (3, 50, "gold")]
    [entry] = result.report["joins"]
    assert (entry["matched"], entry["unmatched"], entry["dropped"]) == (2, 1, 1)
    assert entry["rows_out"] == 2
    assert result.report["rows_out"] == 2


def test_joins_apply_in_order_from_an_explicit_base() -> None:
    frames = {
        "plans": pl.DataFrame({"id": [1, 2], "plan": ["gold", "basic"]}),
        "customers": _customers(),
        "regions": pl.DataFrame({"plan": ["gold", "basic"], "tier": [1, 2]}),
    }
    result = _join(
        frames,
        Join(source="plans", on=["id"]),
        Join(source="regions", on=["plan"]),
        base="customers",
    )
    assert result.frame.rows() == [(1, 30, "gold", 1), (2, 40, "basic", 2), (3, 50, None, None)]
    assert [e["source"] for e in result.report["joins"]] == ["plans", "regions"]


def test_null_keys_do_not_match() -> None:
    left = pl.DataFrame({"id": [None, 1], "a": [1, 2]})
    right = pl.DataFrame({"id": [None, 1], "b": ["x", "y"]})
    result = _join({"l": left, "r": right}, Join(source="r", on=["id"]))
    assert result.frame.rows() == [(None, 1, None), (1, 2, "y")]
    assert result.report["joins"][0]["matched"] == 1


def test_overlapping_columns_without_a_rule_name_both_sources_and_columns() -> None:
    plans = pl.DataFrame({"id": [1], "age": [31], "plan": ["gold"]})
    with pytest.raises(DataError) as info:
        _join({"customers": _customers(), "plans": plans}, Join(source="plans", on=["id"]))
    message = str(info.value)
    assert "join of 'plans' onto 'customers'" in message
    assert "column(s) 'age' exist on both sides" in message


def test_join_key_missing_on_either_side_is_refused() -> None:
    plans = pl.DataFrame({"customer": [1], "plan": ["gold"]})
    with pytest.raises(
        DataError, match=r"key column\(s\) 'id' missing in 'plans'; it has: customer"
    ):
        _join({"customers": _customers(), "plans": plans}, Join(source="plans", on=["id"]))
    with pytest.raises(DataError, match=r"key column\(s\) 'customer' missing in the table"):
        _join({"customers": _customers(), "plans": plans}, Join(source="plans", on=["customer"]))


def test_join_keys_of_different_types_are_refused() -> None:
    plans = pl.DataFrame({"id": ["1"], "plan": ["gold"]})
    with pytest.raises(DataError, match=r"key column 'id' is Int64 in the table but String"):
        _join({"customers": _customers(), "plans": plans}, Join(source="plans", on=["id"]))


def test_a_join_that_would_repeat_rows_is_refused() -> None:
    plans = pl.DataFrame({"id": [1, 1, 2], "plan": ["gold", "pro", "basic"]})
    with pytest.raises(
        DataError, match=r"'plans' has 1 key\(s\) on 'id' held by more than one row"
    ):
        _join({"customers": _customers(), "plans": plans}, Join(source="plans", on=["id"]))


def test_every_source_must_be_the_base_or_joined() -> None:
    frames = {"a": _customers(), "b": _customers().select("id"), "c": _customers()}
    with pytest.raises(DataError, match=r"source\(s\) 'c' are neither combine.base nor joined"):
        _join(frames, Join(source="b", on=["id"]))


def test_join_of_an_unknown_source_or_the_base_itself_is_refused() -> None:
    frames = {"a": _customers()}
    with pytest.raises(DataError, match=r"join of 'zz': no such source"):
        _join(frames, Join(source="zz", on=["id"]))
    with pytest.raises(DataError, match=r"join of 'a': the source is already in the table"):
        _join(frames, Join(source="a", on=["id"]))
    with pytest.raises(DataError, match=r"combine.base 'zz' is not a source"):
        _join(frames, base="zz")


# -- join with conflicts ---------------------------------------------------------------------


def _crm_and_billing() -> dict[str, pl.DataFrame]:
    return {
        "crm": pl.DataFrame(
            {
                "id": [1, 2, 3, 4],
                "email": ["a@x", None, "c@x", "d@x"],
                "seen": [date(2024, 1, 1), date(2024, 1, 9), date(2024, 1, 5), date(2024, 1, 1)],
            }
        ),
        "billing": pl.DataFrame(
            {
                "id": [1, 2, 3],
                "email": ["a@y", "b@y", "c@x"],
                "seen": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)],
            }
        ),
    }


def test_join_prefer_takes_the_preferred_side_and_fills_its_nulls_from_the_other() -> None:
    result = _join(
        _crm_and_billing(),
        Join(source="billing", on=["id"]),
        conflicts=Conflicts(key=["id"], rule="prefer", prefer=["billing"]),
    )
    assert result.frame["email"].to_list() == ["a@y", "b@y", "c@x", "d@x"]
    assert result.frame.columns == ["id", "email", "seen"]
    conflicts = result.report["conflicts"]
    # id 1: email and seen differ; id 3: seen differs; id 2's crm email is null (a fill)
    assert conflicts == {
        "keys": 3,
        "values": 4,
        "rule": "prefer",
        "resolved_from": {"crm": 0, "billing": 4},
    }
    assert result.report["joins"][0]["conflicts"]["columns"] == ["email", "seen"]
    _no_helpers(result)


def test_join_prefer_keeps_the_base_when_it_is_more_trusted() -> None:
    result = _join(
        _crm_and_billing(),
        Join(source="billing", on=["id"]),
        conflicts=Conflicts(key=["id"], rule="prefer", prefer=["crm"]),
    )
    assert result.frame["email"].to_list() == ["a@x", "b@y", "c@x", "d@x"]
    assert result.report["conflicts"]["resolved_from"] == {"crm": 4, "billing": 0}


def test_join_newest_takes_the_values_of_the_row_with_the_later_timestamp() -> None:
    result = _join(
        _crm_and_billing(),
        Join(source="billing", on=["id"]),
        conflicts=Conflicts(key=["id"], rule="newest", timestamp="seen"),
    )
    # id 1: billing is newer; id 2: crm is newer but its email is null; id 3: crm is newer
    assert result.frame["email"].to_list() == ["a@y", "b@y", "c@x", "d@x"]
    assert result.frame["seen"].to_list() == [
        date(2024, 1, 2),
        date(2024, 1, 9),
        date(2024, 1, 5),
        date(2024, 1, 1),
    ]
    # conflicts: id 1 email and seen (billing newer), id 2 seen and id 3 seen (crm newer)
    assert result.report["conflicts"]["keys"] == 3
    assert result.report["conflicts"]["values"] == 4
    assert result.report["conflicts"]["resolved_from"] == {"crm": 2, "billing": 2}


def test_join_newest_needs_the_timestamp_on_both_sides() -> None:
    frames = _crm_and_billing()
    frames["billing"] = frames["billing"].drop("seen")
    with pytest.raises(DataError, match=r"rule newest needs the timestamp column 'seen' on both"):
        _join(
            frames,
            Join(source="billing", on=["id"]),
            conflicts=Conflicts(key=["id"], rule="newest", timestamp="seen"),
        )


def test_overlapping_columns_of_different_types_are_refused_even_with_a_rule() -> None:
    frames = {
        "a": pl.DataFrame({"id": [1], "v": [1]}),
        "b": pl.DataFrame({"id": [1], "v": ["1"]}),
    }
    with pytest.raises(DataError, match=r"overlapping column 'v' is Int64 in the table but String"):
        _join(
            frames,
            Join(source="b", on=["id"]),
            conflicts=Conflicts(key=["id"], rule="prefer", prefer=["b"]),
        )


# -- as-of join ------------------------------------------------------------------------------


def _orders() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer": ["a", "a", "b", "a"],
            "ts": [date(2024, 1, 4), date(2024, 1, 10), date(2024, 1, 4), date(2024, 1, 2)],
            "amount": [10, 20, 30, 40],
        }
    )


def _balances() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer": ["a", "a", "a", "b", "a"],
            "ts": [
                date(2024, 1, 1),
                date(2024, 1, 3),
                date(2024, 1, 5),
                date(2024, 1, 3),
                date(2024, 1, 9),
            ],
            "balance": [100, 300, 500, 3000, 900],
        }
    )


def _asof(tolerance: str | None = None, how: str = "left") -> Join:
    return Join.model_validate(
        {"source": "balances", "on": ["customer"], "asof": "ts", "tolerance": tolerance, "how": how}
    )


def test_asof_join_takes_the_latest_earlier_row_never_a_later_one() -> None:
    result = _join({"orders": _orders(), "balances": _balances()}, _asof())
    frame = result.frame
    assert frame.columns == ["customer", "ts", "amount", "ts_balances", "balance"]
    # order on 2024-01-04 gets the 2024-01-03 balance, not the later 2024-01-05 one
    assert frame.row(0) == ("a", date(2024, 1, 4), 10, date(2024, 1, 3), 300)
    assert frame.row(1) == ("a", date(2024, 1, 10), 20, date(2024, 1, 9), 900)
    # customer b's balance, not a's nearer one
    assert frame.row(2) == ("b", date(2024, 1, 4), 30, date(2024, 1, 3), 3000)
    assert frame.row(3) == ("a", date(2024, 1, 2), 40, date(2024, 1, 1), 100)
    assert (frame["ts_balances"] <= frame["ts"]).all()
    entry = result.report["joins"][0]
    assert (entry["asof"], entry["matched"], entry["unmatched"]) == ("ts", 4, 0)
    _no_helpers(result)


def test_asof_join_matches_an_equal_timestamp() -> None:
    orders = pl.DataFrame({"customer": ["a"], "ts": [date(2024, 1, 3)], "amount": [1]})
    result = _join({"orders": orders, "balances": _balances()}, _asof())
    assert result.frame["balance"].to_list() == [300]


def test_asof_join_with_nothing_earlier_leaves_the_row_unmatched() -> None:
    orders = pl.DataFrame({"customer": ["a", "c"], "ts": [date(2023, 12, 1)] * 2, "amount": [1, 2]})
    result = _join({"orders": orders, "balances": _balances()}, _asof())
    assert result.frame["balance"].to_list() == [None, None]
    assert result.report["joins"][0]["unmatched"] == 2


def test_asof_tolerance_rejects_matches_that_are_too_old() -> None:
    result = _join({"orders": _orders(), "balances": _balances()}, _asof(tolerance="1d"))
    # 01-04 <- 01-03 (1 day), 01-10 <- 01-09 (1 day), b 01-04 <- 01-03, 01-02 <- 01-01
    assert result.frame["balance"].to_list() == [300, 900, 3000, 100]
    orders = pl.DataFrame({"customer": ["a"], "ts": [date(2024, 2, 1)], "amount": [1]})
    result = _join({"orders": orders, "balances": _balances()}, _asof(tolerance="12h"))
    assert result.frame["balance"].to_list() == [None]
    result = _join({"orders": orders, "balances": _balances()}, _asof(tolerance="30d"))
    assert result.frame["balance"].to_list() == [900]


def test_inner_asof_join_drops_and_counts_unmatched_rows() -> None:
    orders = pl.DataFrame(
        {"customer": ["a", "a"], "ts": [date(2023, 1, 1), date(2024, 1, 4)], "amount": [1, 2]}
    )
    result = _join({"orders": orders, "balances": _balances()}, _asof(how="inner"))
    assert result.frame["amount"].to_list() == [2]
    entry = result.report["joins"][0]
    assert (entry["matched"], entry["unmatched"], entry["dropped"]) == (1, 1, 1)


def test_asof_rows_without_a_timestamp_never_match() -> None:
    orders = pl.DataFrame(
        {"customer": ["a", "a"], "ts": [None, date(2024, 1, 4)], "amount": [1, 2]}
    )
    balances = pl.DataFrame(
        {"customer": ["a", "a"], "ts": [None, date(2024, 1, 3)], "balance": [7, 300]}
    )
    result = _join({"orders": orders, "balances": balances}, _asof())
    assert result.frame["amount"].to_list() == [1, 2]
    assert result.frame["balance"].to_list() == [None, 300]


def test_asof_join_on_a_numeric_time_column() -> None:
    left = pl.DataFrame({"k": [1, 1], "step": [10, 20], "x": [0, 0]})
    right = pl.DataFrame({"k": [1, 1], "step": [5, 12], "y": [50, 120]})
    join = Join(source="r", on=["k"], asof="step", tolerance="5")
    result = _join({"l": left, "r": right}, join)
    assert result.frame["y"].to_list() == [50, None]
    assert result.frame["step_r"].to_list() == [5, None]


def test_asof_with_an_invalid_tolerance_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"join of 'balances' onto 'orders': as-of join on 'ts'"):
        _join({"orders": _orders(), "balances": _balances()}, _asof(tolerance="30 days"))
    left = pl.DataFrame({"k": [1], "step": [10]})
    right = pl.DataFrame({"k": [1], "step": [5], "y": [50]})
    with pytest.raises(DataError, match=r"tolerance must be a number, not '30d'"):
        _join({"l": left, "r": right}, Join(source="r", on=["k"], asof="step", tolerance="30d"))


def test_asof_column_missing_on_the_right_is_refused() -> None:
    balances = _balances().rename({"ts": "when"})
    with pytest.raises(DataError, match=r"key column\(s\) 'ts' missing in 'balances'"):
        _join({"orders": _orders(), "balances": balances}, _asof())


def test_asof_timestamp_name_must_not_clash() -> None:
    orders = _orders().with_columns(pl.lit(1).alias("ts_balances"))
    with pytest.raises(DataError, match=r"would be named 'ts_balances'"):
        _join({"orders": orders, "balances": _balances()}, _asof())


def test_asof_with_newest_rule_keeps_the_later_left_values() -> None:
    orders = pl.DataFrame({"customer": ["a"], "ts": [date(2024, 1, 4)], "status": ["open"]})
    balances = pl.DataFrame(
        {"customer": ["a"], "ts": [date(2024, 1, 3)], "status": ["closed"], "balance": [1]}
    )
    result = _join(
        {"orders": orders, "balances": balances},
        _asof(),
        conflicts=Conflicts(key=["customer"], rule="newest", timestamp="ts"),
    )
    assert result.frame.rows() == [("a", date(2024, 1, 4), "open", date(2024, 1, 3), 1)]
    assert result.report["conflicts"]["resolved_from"] == {"orders": 1, "balances": 0}
