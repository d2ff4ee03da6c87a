"""Cost items add up by group, cut at window edges in proportion, and forecast the month."""

from datetime import UTC, datetime, timedelta

import pytest

from mlship.costs.items import CostItem, allocate, forecast_month, window

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def item(cost: float, start: datetime, hours: float = 0.0, **kw: object) -> CostItem:
    return CostItem(
        kind=str(kw.pop("kind", "serving")),
        started_at=start,
        ended_at=start + timedelta(hours=hours),
        cost=cost,
        source="s",
        **kw,  # type: ignore[arg-type]
    )


def test_items_add_up_per_group_dearest_first_then_by_name_and_unnamed_ones_together() -> None:
    items = [
        item(1.0, T0, team="a", predictions=1000),
        item(3.0, T0, team="b", predictions=500),
        item(2.0, T0, team="a"),
        item(0.5, T0),
    ]
    groups = allocate(items, "team")
    assert [(g.group, g.cost, g.items) for g in groups] == [
        ("a", 3.0, 2),
        ("b", 3.0, 1),
        ("(none)", 0.5, 1),
    ]
    a = next(g for g in groups if g.group == "a")
    assert a.per_thousand_predictions == pytest.approx(3.0)
    with pytest.raises(ValueError, match="cannot allocate by 'colour'"):
        allocate(items, "colour")


def test_a_window_counts_the_share_of_an_item_inside_it() -> None:
    ten_hours = item(10.0, T0, hours=10, cpu_seconds=100.0, predictions=1000)
    inside = window([ten_hours], T0 + timedelta(hours=8), T0 + timedelta(days=1))
    assert len(inside) == 1
    assert inside[0].cost == pytest.approx(2.0)
    assert inside[0].cpu_seconds == pytest.approx(20.0)
    assert inside[0].predictions == 200
    assert window([ten_hours], T0 + timedelta(hours=11), T0 + timedelta(days=1)) == []
    instant = item(1.0, T0 + timedelta(hours=1))
    assert window([instant], T0, T0 + timedelta(hours=2)) == [instant]
    assert window([instant], T0 + timedelta(hours=2), T0 + timedelta(hours=3)) == []


def test_the_month_is_forecast_at_the_rate_of_the_recent_days() -> None:
    # One unit a day, every day of June so far (ten days): 30 by the end of the month.
    items = [item(1.0, T0 + timedelta(days=d), hours=24) for d in range(10)]
    now = T0 + timedelta(days=10)
    forecast = forecast_month(items, now)
    assert forecast.month_to_date == pytest.approx(10.0)
    assert forecast.rate_per_day == pytest.approx(1.0)
    assert forecast.forecast == pytest.approx(30.0)
    assert forecast_month([], now).forecast == 0.0
