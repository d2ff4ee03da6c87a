"""Rollouts behave the same on every backend: SQLite, PostgreSQL, and a server on each.

Starting (once, however often asked), moving only from where the judge saw the rollout, the
history of every move by the acting user, and a rollback turning down the candidate's pending
promotion request. Judging (which reads traffic) is tested through the command line in
``tests/e2e/test_rollout_cli.py``; here the moves are given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlship.errors import MlshipError
from mlship.store.entities import Rollout
from mlship.store.rollouts import Move, RolloutConflict, RolloutPlan
from tests.backends import Backend
from tests.contract import People, is_utc, register_model

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "postgresql", "http-sqlite", "http-postgresql"], indirect=True
)

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def people(backend: Backend) -> People:
    return People.of(backend)


def _with_production(people: People, versions: int = 3) -> str:
    """A model whose version 1 is in production."""
    name = register_model(people.alice, versions=versions)
    people.alice.registry.request_promotion(name, 1)
    people.bob.registry.approve(name, 1)
    return name


def _plan(name: str, candidate: int = 2) -> RolloutPlan:
    return RolloutPlan(
        model=name,
        candidate=candidate,
        deployment="canary",
        steps=(10.0, 50.0, 100.0),
        hold_seconds=3600.0,
        alpha=0.05,
        effect=None,
        checks={"max_error_rate": 0.02, "min_requests": 20},
    )


def test_a_rollout_starts_once_at_its_first_step_against_production(people: People) -> None:
    name = _with_production(people)
    rollout, started = people.alice.rollouts.start(_plan(name), AT)
    assert started and isinstance(rollout, Rollout)
    assert (rollout.model, rollout.candidate, rollout.control) == (name, 2, 1)
    assert (rollout.step, rollout.weight, rollout.status) == (0, 10.0, "running")
    assert rollout.steps == [10.0, 50.0, 100.0] and rollout.checks["max_error_rate"] == 0.02
    assert rollout.started_by == "alice" and rollout.since == AT and is_utc(rollout.since)
    again, started_again = people.alice.rollouts.start(_plan(name), AT + timedelta(hours=1))
    assert not started_again and again == rollout
    assert people.vera.rollouts.current(name) == rollout
    [*_, event] = people.vera.registry.history(name)
    assert (event.action, event.version, event.user) == ("rollout started", 2, "alice")
    assert event.details["weight"] == 10.0 and event.details["against"] == 1


def test_starting_is_refused_with_the_same_messages_everywhere(people: People) -> None:
    name = _with_production(people)
    rollouts = people.alice.rollouts
    with pytest.raises(MlshipError, match=f"^{name}:1 is already in production: there is nothing"):
        rollouts.start(_plan(name, 1), AT)
    rollouts.start(_plan(name, 2), AT)
    with pytest.raises(
        RolloutConflict,
        match=rf"^{name} already has a rollout of {name}:2 \(running, step 1 of 3 \(10%\)\)",
    ):
        rollouts.start(_plan(name, 3), AT)
    without = register_model(people.alice, versions=2)
    with pytest.raises(MlshipError, match=f"^{without} has no version in production to roll"):
        rollouts.start(_plan(without), AT)
    assert rollouts.current(without) is None


def test_a_move_applies_only_from_where_it_was_judged(people: People) -> None:
    name = _with_production(people)
    rollout, _ = people.alice.rollouts.start(_plan(name), AT)
    later = AT + timedelta(hours=1)
    moved = people.alice.rollouts.move(
        rollout,
        Move("advanced", 1, 50.0, "running", ("checks held",), {"p": 0.8, "labelled": "40 vs 41"}),
        later,
    )
    assert (moved.step, moved.weight, moved.status, moved.since) == (1, 50.0, "running", later)
    assert moved.reasons == ["checks held"]
    # A second judge that read the rollout before the move does not move it again.
    with pytest.raises(RolloutConflict, match="moved while it was judged"):
        people.alice.rollouts.move(rollout, Move("advanced", 1, 50.0, "running", ()), later)
    [*_, event] = people.vera.registry.history(name)
    assert event.action == "rollout advanced" and event.user == "alice"
    assert event.details == {
        "step": "2 of 3",
        "weight": 50.0,
        "reason": "checks held",
        "p": 0.8,
        "labelled": "40 vs 41",
    }


def test_a_rollback_turns_down_the_pending_promotion_request(people: People) -> None:
    name = _with_production(people)
    rollout, _ = people.alice.rollouts.start(_plan(name), AT)
    people.alice.registry.request_promotion(name, 2, "looks good")
    back = people.alice.rollouts.move(
        rollout,
        Move("rolled back", 0, 0.0, "rolled back", (f"{name}:2 is significantly worse",)),
        AT + timedelta(minutes=5),
    )
    assert (back.weight, back.status, back.active) == (0.0, "rolled back", False)
    request = people.vera.registry.requests(name)[-1]
    assert (request.version, request.status) == (2, "rejected")
    assert request.note == f"rolled back by its rollout: {name}:2 is significantly worse"
    actions = [e.action for e in people.vera.registry.history(name)][-2:]
    assert actions == ["rollout rolled back", "rejected"]
    # Over: another candidate may start, and the same one again.
    again, started = people.alice.rollouts.start(_plan(name, 3), AT + timedelta(hours=1))
    assert started and again.id != rollout.id and again.candidate == 3
