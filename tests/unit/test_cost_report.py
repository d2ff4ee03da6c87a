"""The cost report's arithmetic: groups add up to the total, days add up to the total, storage
adds up per class, the forecast is the month's, and the page draws it all without a script."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.costs.items import CostItem, forecast_month
from mlship.costs.report import build_report, gathered_from
from mlship.costs.report_page import forecast_text, render, write_page
from mlship.prices import GB

T0 = datetime(2026, 6, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=20)


def item(kind: str, cost: float, start: datetime, hours: float, **kw: object) -> CostItem:
    return CostItem(
        kind=kind,
        started_at=start,
        ended_at=start + timedelta(hours=hours),
        cost=cost,
        source="s",
        **kw,  # type: ignore[arg-type]
    )


ITEMS = [
    item("training", 2.0, NOW - timedelta(days=3), 2, team="fraud", cpu_seconds=7200.0),
    item("serving", 4.0, NOW - timedelta(days=2), 48, team="fraud", predictions=8000),
    item("batch", 1.0, NOW - timedelta(days=1), 1, team="growth", predictions=1000),
    item(
        "storage",
        3.0,
        NOW - timedelta(days=30),
        30 * 24,
        stored_bytes=3 * GB,
        storage_class="standard",
    ),
    item(
        "storage",
        0.5,
        NOW - timedelta(days=10),
        10 * 24,
        team="growth",
        stored_bytes=GB,
        storage_class="s3-standard-ia",
    ),
]


def test_groups_and_days_add_up_to_the_total_and_the_forecast_is_the_month_s() -> None:
    start = NOW - timedelta(days=7)
    report = build_report(ITEMS, by="team", start=start, end=NOW, currency="USD")
    # Storage started before the window counts its last 7 days only: 3 * 7/30 and 0.5 * 7/10.
    storage = 3.0 * 7 / 30 + 0.5 * 7 / 10
    assert report.total.cost == pytest.approx(2.0 + 4.0 + 1.0 + storage)
    assert sum(g.cost for g in report.groups) == pytest.approx(report.total.cost)
    fraud = next(g for g in report.groups if g.group == "fraud")
    assert fraud.cost == pytest.approx(6.0)
    assert fraud.per_thousand_predictions == pytest.approx(6.0 / 8)
    assert report.share(fraud) == pytest.approx(6.0 / report.total.cost)
    assert report.groups[0].group == "fraud"
    assert sum(d.cost for d in report.daily) == pytest.approx(report.total.cost)
    assert {d.kind for d in report.daily} == {"training", "serving", "batch", "storage"}
    classes = {s.storage_class: s for s in report.storage}
    assert classes["standard"].stored_bytes == 3 * GB
    assert classes["standard"].cost == pytest.approx(3.0 * 7 / 30)
    assert classes["s3-standard-ia"].cost == pytest.approx(0.5 * 7 / 10)
    assert report.forecast == forecast_month(ITEMS, NOW)
    assert report.total.stored_bytes == 4 * GB
    assert report.total.cpu_seconds == pytest.approx(7200.0)
    by_kind = build_report(ITEMS, by="kind", start=start, end=NOW, currency="USD")
    assert {g.group for g in by_kind.groups} == {"training", "serving", "batch", "storage"}
    with pytest.raises(ValueError, match="cannot allocate by 'colour'"):
        build_report(ITEMS, by="colour", start=start, end=NOW, currency="USD")


def test_items_are_read_from_the_month_s_start_when_the_window_starts_later() -> None:
    assert gathered_from(NOW - timedelta(days=7), NOW) == T0
    assert gathered_from(NOW - timedelta(days=30), NOW) == NOW - timedelta(days=30)


def test_the_json_is_plain_and_the_page_has_its_charts_and_forecast(tmp_path: Path) -> None:
    hostile = item("serving", 1.0, NOW - timedelta(hours=5), 1, team="<script>x</script>")
    report = build_report(
        [*ITEMS, hostile], by="team", start=NOW - timedelta(days=7), end=NOW, currency="EUR",
        notes=["only the newest 1000 runs were read"],
    )  # fmt: skip
    document = json.loads(json.dumps(report.as_json(), allow_nan=False))
    assert document["total"]["cost"] == pytest.approx(report.total.cost)
    assert sum(g["cost"] for g in document["groups"]) == pytest.approx(document["total"]["cost"])
    assert document["forecast"]["forecast"] == pytest.approx(report.forecast.forecast)
    assert document["forecast"]["month_end"] == "2026-07-01T00:00:00+00:00"
    page = write_page(report, tmp_path / "out" / "costs.html").read_text()
    assert page.count("<svg") == 3
    assert 'aria-label="cost per team"' in page and 'aria-label="cost per day by kind"' in page
    assert 'aria-label="storage by class"' in page
    assert forecast_text(report).replace("'", "&#x27;") in page
    assert "by 2026-06-30" in forecast_text(report)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "only the newest 1000 runs were read" in page
    assert not list((tmp_path / "out").glob(".*.tmp"))  # written whole, nothing left beside it


def test_an_empty_window_says_so_instead_of_drawing_nothing() -> None:
    report = build_report([], by="owner", start=NOW - timedelta(days=1), end=NOW, currency="USD")
    assert report.total.cost == 0 and report.groups == () and report.share(report.total) is None
    page = render(report)
    assert "nothing cost anything in this window" in page
    assert "nothing measured in storage" in page


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["training", "serving", "batch", "stream", "monitoring", "storage"]),
            st.floats(0, 1e6, allow_nan=False),
            st.integers(0, 40 * 24),  # start, hours before now
            st.integers(0, 60 * 24),  # duration, hours
            st.sampled_from([None, "a", "b"]),
        ),
        max_size=25,
    ),
    st.integers(1, 45),
    st.sampled_from(["team", "kind", "owner"]),
)
def test_whatever_the_items_the_parts_add_up_to_the_total(
    rows: list[tuple[str, float, int, int, str | None]], days: int, by: str
) -> None:
    items = [
        item(kind, cost, NOW - timedelta(hours=before), hours, team=team, owner=team)
        for kind, cost, before, hours, team in rows
    ]
    report = build_report(items, by=by, start=NOW - timedelta(days=days), end=NOW, currency="USD")
    total = report.total.cost
    assert total >= 0
    assert sum(g.cost for g in report.groups) == pytest.approx(total, rel=1e-9, abs=1e-9)
    assert sum(d.cost for d in report.daily) == pytest.approx(total, rel=1e-9, abs=1e-6)
    shares = [report.share(g) for g in report.groups]
    if total > 0:
        assert sum(s or 0.0 for s in shares) == pytest.approx(1.0)
    assert re.search(r"by \d{4}-\d{2}-\d{2}\.$", forecast_text(report))
    json.dumps(report.as_json(), allow_nan=False)


def test_amounts_below_a_cent_keep_three_significant_digits() -> None:
    from mlship.costs.report_page import amount

    assert amount(0.0000533) == "0.0000533"
    assert amount(0.00123456) == "0.00123"
    assert amount(0.0) == "0.0000"
    assert amount(12345.678) == "12,345.6780"
    assert amount(-0.0042) == "-0.00420"
    assert amount(0.00000000427) == "4.27e-09"


def test_the_forecast_says_which_days_its_rate_is_taken_over() -> None:
    week = [item("training", 1.0, NOW - timedelta(days=d + 1), 24) for d in range(7)]
    settled = build_report(week, by="kind", start=NOW - timedelta(days=7), end=NOW, currency="USD")
    assert "at the last 7 days' rate (1.0000 USD a day)" in forecast_text(settled)
    # A workspace two hours old: its rate is over those two hours, and the sentence says so.
    young = [item("serving", 0.5, NOW - timedelta(hours=2), 2)]
    fresh = build_report(young, by="kind", start=NOW - timedelta(days=1), end=NOW, currency="USD")
    text = forecast_text(fresh)
    assert "at the rate since the first cost at 2026-06-20 22:00 UTC" in text, text
    assert "(6.0000 USD a day)" in text, text
