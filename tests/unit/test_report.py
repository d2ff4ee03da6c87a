"""The HTML data report: well-formed, self-contained, escaped; written atomically with its JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mlship.data.checks import validate
from mlship.data.profile import profile_of
from mlship.data.report import fmt_number, fmt_share, render_html, write_report
from mlship.html import svg
from mlship.spec.data import Column, TableChecks
from tests.html_structure import parse_page

HOSTILE = "<script>alert(1)</script>"


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "age": [31, 45, None, 28, 60, 45],
            "income": [1200.5, float("nan"), 3400.0, 2100.25, 999.0, 5000.0],
            "plan": ["gold", "<img src=x onerror=alert(1)>", "gold", None, "basic", "basic"],
            "active": [True, False, True, True, None, False],
            "joined": [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 5, 9, 13, 17, 21)],
            HOSTILE: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "tags": [["a"], ["b"], None, ["c"], ["d"], ["e"]],
            "empty": pl.Series([None] * 6, dtype=pl.Float64),
        }
    )


def _validation(passed: bool = True) -> dict[str, Any]:
    return {
        "rows": {"in": 1000, "quarantined": 12, "warned": 30, "out": 988},
        "max_quarantine": 0.05,
        "passed": passed,
        "checks": [
            {
                "column": "age",
                "check": "min",
                "severity": "error",
                "failed": 7,
                "examples": [f"row {i}: -1 < 0" for i in range(7)],
            },
            {
                "column": "plan",
                "check": "allowed",
                "severity": "warn",
                "failed": 30,
                "examples": ["row 4: '<b>x</b>' is not allowed"],
            },
            {
                "column": None,
                "check": "duplicates",
                "severity": "error",
                "failed": 5,
                "examples": [],
            },
            {"column": "income", "check": "max", "severity": "error", "failed": 0, "examples": []},
        ],
        "sources": [
            {"name": "customers", "kind": "file", "path": 'data/"quoted" & <odd>.csv', "rows": 500},
            {"name": "crm", "kind": "query", "path": None, "rows": 500},
        ],
        "combine": {"method": "union", "note": "<i>stacked</i>"},
        "quarantine_path": "out/quarantine.parquet",
    }


def test_the_page_is_well_formed_with_one_chart_per_column() -> None:
    profile = profile_of(_frame())
    parsed = parse_page(render_html("customers", profile, _validation()))
    charts = [tag for tag, _ in parsed.starts if tag == "svg"]
    assert len(charts) == len(profile.columns) == 8
    cards = [attrs for tag, attrs in parsed.starts if tag == "article"]
    assert [card["id"] for card in cards] == [f"col-{i}" for i in range(8)]


def test_the_page_references_nothing_outside_itself() -> None:
    page = render_html("customers", profile_of(_frame()), _validation())
    lowered = page.lower()
    for needle in ('src="http', 'href="http', "<script", "<link", "@import", "url("):
        assert needle not in lowered
    for tag, attrs in parse_page(page).starts:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)


def test_user_values_are_escaped() -> None:
    page = render_html(f"report {HOSTILE}", profile_of(_frame()), _validation())
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert "<b>x</b>" not in page
    assert "<i>stacked</i>" not in page
    assert "&lt;odd&gt;" in page
    text = "".join(parse_page(page).text)
    assert HOSTILE in text  # shown to the reader as text
    assert "<img src=x onerror=alert(1)>" in text


def test_summary_checks_and_sources() -> None:
    page = render_html("customers", profile_of(_frame()), _validation(passed=False))
    text = " ".join(parse_page(page).text)
    assert 'class="badge fail"' in page
    assert "1.2% of rows" in text
    assert "limit 5.0%" in text
    assert "out/quarantine.parquet" in text
    assert re.search(r'<span class="pill error">error</span>', page)
    assert re.search(r'<span class="pill warn">warn</span>', page)
    assert re.search(r'<tr class="clean">.*?<code>income</code>', page)
    assert "and 2 more" in text  # seven examples, five shown
    assert "customers" in text
    assert "crm" in text
    assert '<section id="checks">' in page
    assert '<section id="sources">' in page


def test_passing_validation_gets_a_pass_badge() -> None:
    page = render_html("customers", profile_of(_frame()), _validation(passed=True))
    assert 'class="badge pass"' in page


def test_a_profile_alone_renders_without_validation_sections() -> None:
    profile = profile_of(_frame())
    page = render_html("customers", profile)
    parsed = parse_page(page)
    assert 'id="checks"' not in page
    assert 'id="sources"' not in page
    assert sum(1 for tag, _ in parsed.starts if tag == "svg") == len(profile.columns)


def test_an_empty_frame_still_renders() -> None:
    profile = profile_of(_frame().clear())
    parsed = parse_page(render_html("nothing", profile, _validation()))
    assert sum(1 for tag, _ in parsed.starts if tag == "svg") == len(profile.columns)


def test_write_report_writes_both_files_and_no_temporary_file(tmp_path: Path) -> None:
    profile = profile_of(_frame())
    validation = _validation()
    json_path, html_path = write_report(tmp_path / "reports", "customers", profile, validation)
    assert (json_path, html_path) == (
        tmp_path / "reports" / "customers.json",
        tmp_path / "reports" / "customers.html",
    )
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "customers.html",
        "customers.json",
    ]
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document == {"name": "customers", "profile": profile.to_json(), "validation": validation}
    assert html_path.read_text(encoding="utf-8") == render_html("customers", profile, validation)
    write_report(tmp_path / "reports", "customers", profile)
    assert len(list((tmp_path / "reports").iterdir())) == 2
    assert json.loads(json_path.read_text(encoding="utf-8"))["validation"] is None


@pytest.mark.parametrize("name", ["", "..", "a/b", "a\\b"])
def test_write_report_refuses_names_that_are_not_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        write_report(tmp_path, name, profile_of(_frame()))
    assert list(tmp_path.iterdir()) == []


# -- the chart helpers and formatting --------------------------------------------------------


def test_histogram_draws_one_bar_per_non_empty_bin() -> None:
    chart = svg.histogram([3, 0, 5], first_label="<0", last_label="9", tooltips=["a", "b", "c"])
    parsed = parse_page(chart)
    bars = [attrs for tag, attrs in parsed.starts if tag == "rect"]
    assert len(bars) == 2
    assert "&lt;0" in chart
    tallest = max(float(bar["height"] or 0) for bar in bars)
    assert float(bars[1]["height"] or 0) == tallest


def test_bar_chart_shortens_long_labels_and_keeps_them_in_tooltips() -> None:
    label = "a-very-long-category-label-that-cannot-fit"
    chart = svg.bar_chart([svg.Bar(label=label, value=2, note="2"), svg.Bar("b", 1, "1")])
    parsed = parse_page(chart)
    assert sum(1 for tag, _ in parsed.starts if tag == "rect") == 2
    assert label in "".join(parsed.text)  # in the tooltip
    assert "\u2026" in chart


def test_empty_charts_are_placeholders() -> None:
    assert "no values" in svg.histogram([], first_label="", last_label="")
    assert "no values" in svg.bar_chart([])


def test_number_formatting() -> None:
    assert fmt_number(None) == "\u2014"
    assert fmt_number(1234567) == "1,234,567"
    assert fmt_number(87.33) == "87.33"
    assert fmt_number(1234.5678) == "1,234.6"
    assert fmt_number(0.0001234) == "0.000123"
    assert fmt_number(2.0) == "2"
    assert fmt_share(0.0004) == "<0.1%"
    assert fmt_share(0.25) == "25.0%"


def test_every_declared_check_is_listed_with_rows_tested_and_failed() -> None:
    """A validation whose checks all passed lists them, not "No checks were declared"."""
    frame = pl.DataFrame({"age": [30, 40, None]})
    columns = [Column.model_validate({"name": "age", "type": "integer", "checks": [{"min": 0}]})]
    summary = validate(frame, columns, TableChecks(unique=[["age"]])).summary()
    summary["duplicates"] = [
        {
            "source": "crm",
            "key": ["customer_id"],
            "policy": "keep_last",
            "outcome": "kept last",
            "rows": 5,
            "exact_copies": 1,
            "conflicting_keys": 1,
            "quarantined_rows": 0,
            "dropped_rows": 1,
            "examples": [],
        }
    ]
    page = render_html("customers", profile_of(frame), summary)
    text = " ".join(parse_page(page).text)
    assert "No checks were declared" not in text
    for check in ("min", "unique (age)", "unique (age) (exact copy)", "duplicate row"):
        assert re.search(rf"<td>{re.escape(check)}</td>", page.replace("&#x27;", "'")), check
    row = re.search(r"<tr[^>]*><td><code>age</code></td><td>min</td>(.*?)</tr>", page)
    assert row is not None
    assert re.findall(r'<td class="num">([^<]*)</td>', row.group(1)) == ["2", "0"]
    assert '<span class="pill ok">passed</span>' in row.group(1)
    assert "Duplicate keys" in text and "kept last" in text
    assert "0.0% quarantined, at most 5.0% allowed" in text


def test_a_validation_without_checks_says_so() -> None:
    page = render_html(
        "customers",
        profile_of(_frame()),
        {"rows": {"in": 1, "quarantined": 0, "warned": 0, "out": 1}, "max_quarantine": 0.05},
    )
    assert "No checks were declared." in " ".join(parse_page(page).text)
