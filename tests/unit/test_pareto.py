"""The Pareto fronts of score against cost, the serving cost, and selection by each cost."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.evaluation.cost_quality import cost_quality_section, scale, staircase
from mlship.prices import GB, Prices
from mlship.train.pareto import Costs, Point, dominates, front, fronts, serving_cost
from mlship.train.selection import LeaderboardRow, choose, rank

scores = st.one_of(
    st.floats(min_value=-5, max_value=5, allow_nan=False), st.sampled_from([0.5, 0.7, math.nan])
)
costs = st.one_of(
    st.none(), st.floats(min_value=0, max_value=10, allow_nan=False), st.sampled_from([1.0, 2.0])
)
points = st.lists(st.tuples(scores, costs), max_size=12).map(
    lambda pairs: [Point(f"c{i}", s, c) for i, (s, c) in enumerate(pairs)]
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(points, st.booleans())
def test_front_members_are_never_dominated_and_every_other_point_is(
    found: list[Point], bigger: bool
) -> None:
    members = set(front(found, bigger))
    for point in found:
        beaten = any(dominates(q, point, bigger) for q in found if q is not point)
        if point.name in members:
            assert not beaten
            assert point.cost is not None and not math.isnan(point.score)
        else:
            assert beaten or point.cost is None or math.isnan(point.score)
    complete = [p for p in found if p.cost is not None and not math.isnan(p.score)]
    if complete:  # a set of measured points always has a front
        assert members


def test_the_front_of_a_trade_off() -> None:
    found = [
        Point("big", 0.95, 9.0),
        Point("mid", 0.93, 3.0),
        Point("worse", 0.90, 4.0),  # mid is better and cheaper
        Point("small", 0.80, 1.0),
        Point("twin", 0.80, 1.0),  # equal to small: neither is better
        Point("unmeasured", 0.99, None),
    ]
    assert front(found, bigger=True) == ["big", "mid", "small", "twin"]
    # For an error metric (smaller is better) the order of quality flips.
    assert front(found, bigger=False) == ["small", "twin"]


def test_fronts_flag_each_pair() -> None:
    candidates = [
        Costs("forest", 0.95, training=5.0, serving=0.4, latency=9.0),
        Costs("tree", 0.90, training=1.0, serving=0.1, latency=1.0),
        Costs("slow", 0.85, training=0.5, serving=0.5, latency=20.0),
    ]
    assert fronts(candidates, bigger=True) == {
        "forest": ["training", "serving", "latency"],
        "tree": ["training", "serving", "latency"],
        "slow": ["training"],
    }


def test_serving_cost_prices_one_cpu_for_the_latency_and_the_model_in_memory() -> None:
    prices = Prices(cpu_hour=3.6, gb_hour=0.36)
    # 2 ms a row: 1,000 rows hold one CPU for 2 s (0.002 of 3.6) and 1 GB for 2 s (0.0002).
    assert serving_cost(2.0, GB, prices) == pytest.approx(0.002 + 0.0002)
    assert serving_cost(2.0, None, prices) == pytest.approx(0.002)
    assert serving_cost(None, GB, prices) is None


def _row(name: str, score: float, fit: float, serve: float | None, ms: float) -> LeaderboardRow:
    return LeaderboardRow(
        name=name,
        estimator="x",
        params={},
        cv_mean=score,
        cv_std=0.0,
        train_mean=score,
        fit_seconds=1.0,
        cv_metrics={},
        fit_cost=fit,
        serve_cost=serve,
        predict_ms=ms,
    )


ROWS = [
    _row("forest", 0.950, fit=0.9, serve=0.30, ms=8.0),
    _row("boost", 0.945, fit=0.2, serve=0.20, ms=9.0),
    _row("tree", 0.942, fit=0.5, serve=0.01, ms=2.0),
    _row("linear", 0.941, fit=0.6, serve=0.05, ms=0.5),
    _row("stump", 0.700, fit=0.01, serve=0.001, ms=0.1),  # cheapest, but far off the best
]


@pytest.mark.parametrize(
    ("cost", "expected"), [("training", "boost"), ("serving", "tree"), ("latency", "linear")]
)
def test_cheapest_within_picks_by_the_cost_named(cost: str, expected: str) -> None:
    ranked = rank(ROWS, bigger=True)
    chosen = choose(ranked, "cheapest_within", 0.01, True, cost, "USD")  # type: ignore[arg-type]
    assert chosen.name == expected
    assert f"by {cost} cost" in chosen.reason and expected in chosen.reason
    assert choose(ranked, "best", 0.01, True, cost).name == "forest"  # type: ignore[arg-type]


def test_a_candidate_whose_cost_was_not_measured_is_never_the_cheapest() -> None:
    rows = rank([_row("a", 0.9, 1.0, None, 1.0), _row("b", 0.89, 1.0, 0.5, 1.0)], bigger=True)
    chosen = choose(rows, "cheapest_within", 0.05, True, "serving", "EUR")
    assert chosen.name == "b"
    assert "0.5 EUR per 1,000 predictions" in chosen.reason


def test_the_front_is_drawn_as_steps_cheapest_first() -> None:
    xs, ys = staircase([(3.0, 0.93), (1.0, 0.80), (9.0, 0.95)], bigger=True)
    assert list(zip(xs, ys, strict=True)) == [
        (1.0, 0.80),
        (3.0, 0.80),
        (3.0, 0.93),
        (9.0, 0.93),
        (9.0, 0.95),
    ]
    assert staircase([], bigger=True) == ([], [])
    assert scale([0.000003, 0.0000011]) == -6 and scale([2.0, 0.1]) == 0 and scale([]) == 0


def test_the_report_section_names_the_front_and_the_distilled_student() -> None:
    facts = {
        "metric": "accuracy",
        "bigger": True,
        "currency": "EUR",
        "selected": "<tree>",
        "selection": "cheapest_within 0.01 by serving cost: <tree> scores 0.9",
        "candidates": [
            {
                "name": "forest",
                "score": 0.95,
                "training": 2e-6,
                "serving": 3e-4,
                "latency": 9.0,
                "model_bytes": 900000,
                "fronts": ["training", "serving", "latency"],
            },
            {
                "name": "<tree>",
                "score": 0.94,
                "training": 3e-6,
                "serving": 1e-4,
                "latency": 2.0,
                "model_bytes": 7000,
                "distilled_from": "forest",
                "fronts": ["serving", "latency"],
            },
        ],
    }
    html = cost_quality_section({"cost_quality": facts})
    assert html.count("<svg") == 3
    assert "Selected by cheapest_within 0.01 by serving cost: &lt;tree&gt;" in html
    assert "On the front: forest, &lt;tree&gt;." in html and "On the front: forest." in html
    assert "&lt;tree&gt;, distilled from forest" in html and "EUR / 1k predictions" in html
    assert "<tree>" not in html
    assert cost_quality_section({}) == ""
