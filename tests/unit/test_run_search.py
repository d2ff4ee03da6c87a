"""The filter language of run searches, and what a finished run is searched by."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.store.run_search import (
    ATTRIBUTES,
    OPERATORS,
    Condition,
    FilterError,
    NamedValue,
    RunPage,
    RunQuery,
    SortKey,
    parse_filter,
    parse_sort,
    render_filter,
    run_values,
)


def test_a_filter_reads_as_people_write_it() -> None:
    found = parse_filter(
        'metric.roc_auc > 0.8 and param.model = "gbm" AND tag.team = growth and '
        "status=succeeded and param.max_depth <= 5 and param.'a key' != -1e-3 and owner = 42"
    )
    assert found == (
        Condition(field="metric.roc_auc", op=">", value=0.8),
        Condition(field="param.model", op="=", value="gbm"),
        Condition(field="tag.team", op="=", value="growth"),
        Condition(field="status", op="=", value="succeeded"),
        Condition(field="param.max_depth", op="<=", value=5.0),
        Condition(field="param.a key", op="!=", value=-0.001),
        Condition(field="owner", op="=", value="42"),  # an owner is text, whatever it looks like
    )
    assert parse_filter("") == () == parse_filter("   ")
    assert parse_filter('tag.n = "5"')[0].value == "5"
    assert parse_filter("tag.n = 5")[0].value == "5"
    assert parse_filter('param.n = "5"')[0].value == "5"  # quoted: compared as text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metric.auc >", "filter: expected a value after metric.auc > at character 13, got the "
         "end of the filter"),
        ("metric.auc 0.8", "filter: expected a comparison (=, <, >, !=, <=, >=) after "
         "'metric.auc' at character 12, got '0.8'"),
        ("colour = red", "filter: unknown field 'colour' at character 1; expected a field "
         "(metric.NAME, param.NAME, tag.KEY, status, owner, user, pipeline, duration, cost)"),
        ("metric.auc = high", "filter: at character 1: metric.auc is a number; expected a "
         "number, got 'high'"),
        ("status > a", "filter: at character 1: status is compared with = or != only, not >"),
        ("tag.a = b or tag.c = d", "filter: expected 'and' or the end of the filter at "
         "character 11, got 'or' (only 'and' joins conditions)"),
        ("(metric.a > 1)", "filter: unexpected character '(' at character 1; names and values "
         'are letters, digits and _ - . : / @ +, or quoted "like this"'),
        ('param.m = "gbm', "filter: the string that opens at character 11 is never closed"),
        ('param.m = "\\q"', "filter: the string at character 11 has a bad escape; inside double "
         'quotes write \\" for a quote and \\\\ for a backslash'),
        ("tag. = x", "filter: expected a name after 'tag.' at character 6, got '='"),
        ("= 3", "filter: expected a field (metric.NAME, param.NAME, tag.KEY, status, owner, "
         "user, pipeline, duration, cost) at character 1, got '='"),
        ("and", "filter: unknown field 'and' at character 1; expected a field (metric.NAME, "
         "param.NAME, tag.KEY, status, owner, user, pipeline, duration, cost)"),
    ],
)  # fmt: skip
def test_a_bad_filter_names_the_character_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_filter(text)
    assert str(raised.value) == message


def test_sort_keys_pages_and_columns_are_checked() -> None:
    assert parse_sort("metric.roc_auc") == SortKey(field="metric.roc_auc", descending=True)
    assert parse_sort("duration:asc") == SortKey(field="duration", descending=False)
    assert parse_sort("param.a:b:DESC") == SortKey(field="param.a:b", descending=True)
    assert str(parse_sort("started:asc")) == "started:asc"
    with pytest.raises(FilterError, match=r"^cannot sort by 'metric.'; expected one of started"):
        parse_sort("metric.")
    with pytest.raises(FilterError, match=r"^page 0: pages are numbered from 1$"):
        RunQuery(page=0)
    with pytest.raises(FilterError, match=r"^page size 1001: expected between 1 and 1000$"):
        RunQuery(page_size=1001)
    with pytest.raises(FilterError, match=r"^column 'tag.team': expected metric.NAME or param"):
        RunQuery(columns=("tag.team",))
    query = RunQuery.of(
        "metric.auc > 0.5 and param.depth = 3", sort="metric.loss", columns=["param.model"]
    )
    assert query.shown == ("param.model", "metric.loss", "metric.auc", "param.depth")


def test_a_page_counts_its_pages() -> None:
    page = RunPage(rows=(), total=101, page=2, page_size=50)
    assert (page.pages, page.next_page) == (3, 3)
    assert RunPage(rows=(), total=0, page=1, page_size=50).next_page is None


_KEYS = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1)
_FIELDS = st.one_of(
    st.builds(lambda k: f"metric.{k}", _KEYS.filter(str.strip)),
    st.builds(lambda k: f"param.{k}", _KEYS.filter(str.strip)),
    st.builds(lambda k: f"tag.{k}", _KEYS.filter(str.strip)),
    st.sampled_from(sorted(ATTRIBUTES)),
)


@st.composite
def _conditions(draw: st.DrawFn) -> Condition:
    name = draw(_FIELDS)
    number = name.startswith("metric.") or ATTRIBUTES.get(name) == "number"
    text = name.startswith("tag.") or ATTRIBUTES.get(name) == "text"
    op = draw(st.sampled_from(("=", "!=") if text else OPERATORS))
    finite = st.floats(allow_nan=False, allow_infinity=False)
    value = draw(finite if number else _KEYS if text else st.one_of(finite, _KEYS))
    return Condition(field=name, op=op, value=value)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(_conditions(), max_size=5))
def test_a_rendered_filter_reads_back_to_the_same_conditions(found: list[Condition]) -> None:
    assert parse_filter(render_filter(found)) == tuple(found)


_FILTERISH = st.lists(
    st.one_of(
        st.sampled_from(["metric.a", "param.b", "tag.c", "status", "and", "or", "=", "!=", "<",
                         ">=", '"', "'", "\\", "tag.", "1e5", "-", ".", "x", " ", "\"q\\\"\""]),
        st.text(max_size=5),
    ),
    max_size=12,
).map("".join)  # fmt: skip


@settings(derandomize=True, max_examples=500, deadline=None)
@given(st.one_of(st.text(), _FILTERISH))
def test_any_text_is_read_or_refused_with_a_filter_error(text: str) -> None:
    try:
        found = parse_filter(text)
    except FilterError as exc:
        refused = str(exc)
    else:
        assert parse_filter(render_filter(found)) == found
        return
    assert refused.startswith("filter: ")


def test_a_run_is_searched_by_its_selected_params_and_its_scores() -> None:
    found = run_values(
        {"depth": 5, "rate": 0.1, "model": "gbm", "on": True, "none": None, "grid": [1, 2],
         "inner": {"c": 2, "empty": {}}, "huge": float("inf")},
        [("cv", "auc", 0.7), ("holdout", "auc", 0.8), ("cv", "auc", 0.75), ("cv", "loss", 0.3),
         ("holdout", "nan", float("nan"))],
    )  # fmt: skip
    assert set(found) == {
        NamedValue("param", "depth", 5.0, "5"),
        NamedValue("param", "rate", 0.1, "0.1"),
        NamedValue("param", "model", None, "gbm"),
        NamedValue("param", "on", 1.0, "true"),
        NamedValue("param", "none", None, "null"),
        NamedValue("param", "grid", None, "[1, 2]"),
        NamedValue("param", "inner.c", 2.0, "2"),
        NamedValue("param", "inner.empty", None, "{}"),
        NamedValue("param", "huge", None, "inf"),
        NamedValue("metric", "auc", 0.8, None),
        NamedValue("metric", "loss", 0.3, None),
    }
    long = run_values({"k" * 300: "v" * 900}, [])
    assert [(v.key, v.text) for v in long] == [("k" * 200, "v" * 500)]
    nul = run_values({"a\x00b": "c\x00d", "e": ["\x00"]}, [("holdout", "f\x00", 1.0)])
    assert set(nul) == {
        NamedValue("param", "ab", None, "cd"),
        NamedValue("param", "e", None, '["\\u0000"]'),
        NamedValue("metric", "f", 1.0, None),
    }
