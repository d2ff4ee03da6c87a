"""The ``rollout:`` block of a deployment file: every block is loaded as a plan that rises to 100,
or refused with an error that names the file and the field, never anything else."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.errors import SpecError
from mlship.spec.deployment import load_deployment

NUMBERS = st.one_of(
    st.integers(-10, 120),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.none(),
    st.booleans(),
)
BLOCKS = st.fixed_dictionaries(
    {"model": st.one_of(st.just("churn"), st.text(max_size=8))},
    optional={
        "candidate": st.one_of(st.integers(-2, 9), st.text(max_size=3)),
        "steps": st.one_of(st.lists(NUMBERS, max_size=6), NUMBERS),
        "hold": st.one_of(st.sampled_from(["30m", "1h", "0", "0s", "5", "2d", " 45s "]), NUMBERS),
        "alpha": NUMBERS,
        "effect": NUMBERS,
        "checks": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "max_error_rate": NUMBERS,
                    "max_p99_ms": NUMBERS,
                    "min_requests": NUMBERS,
                    "other": NUMBERS,
                },
            ),
            NUMBERS,
        ),
    },
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(block=BLOCKS, routes=st.booleans())
def test_a_rollout_block_is_a_plan_rising_to_100_or_a_named_error(
    tmp_path_factory: pytest.TempPathFactory, block: dict[str, object], routes: bool
) -> None:
    path = tmp_path_factory.mktemp("rollout") / "deployment.yaml"
    document: dict[str, object] = {"name": "r", "rollout": block}
    if routes:
        document["routes"] = [{"model": "churn:1"}]
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    try:
        deployment = load_deployment(path)
    except SpecError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert message.startswith(f"{path}"), message
        assert "rollout" in message or "routes" in message, message
        return
    assert not routes
    rollout = deployment.rollout
    assert rollout is not None
    steps = rollout.steps
    assert steps[-1] == 100 and all(0 < a < b for a, b in itertools.pairwise(steps))
    assert rollout.hold_seconds > 0 and 0 < rollout.alpha < 1
    for weight in (0.0, *steps):
        shares = [route.weight for route in rollout.routes(weight)]
        assert sum(shares) == 100 and shares[1] == weight
    expected = [f"{rollout.model}@production", f"{rollout.model}:{rollout.candidate}"]
    assert [r.model for r in deployment.routes] == expected


def test_the_block_s_defaults_and_its_routes_before_any_start(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("name: r\nrollout: {model: churn, candidate: 4}\n", encoding="utf-8")
    deployment = load_deployment(path)
    rollout = deployment.rollout
    assert rollout is not None
    assert rollout.steps == [5, 25, 50, 100] and rollout.hold_seconds == 1800
    assert rollout.alpha == 0.05 and rollout.effect is None
    assert rollout.checks.max_error_rate is None and rollout.checks.min_requests == 20
    assert [(r.model, r.weight) for r in deployment.routes] == [
        ("churn@production", 100.0),
        ("churn:4", 0.0),
    ]
