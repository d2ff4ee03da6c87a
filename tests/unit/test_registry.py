"""The registry's rules: stages, four-eyes promotion, rollback, tags, history, diff."""

from __future__ import annotations

from typing import Any

import pytest

from mlship.errors import MlshipError, NotFoundError
from mlship.registry.diff import diff_versions
from mlship.registry.lifecycle import Registry, ReviewError
from mlship.workspace import Workspace
from tests.unit.test_metadata import _dataset, _finish, _new_version, _start


def _register(workspace: Workspace, dataset: int, **overrides: Any) -> int:
    store = workspace.metadata
    version = _finish(store, _start(store), dataset, register=_new_version(workspace, **overrides))
    assert version is not None
    return version.version


@pytest.fixture
def registry(workspace: Workspace) -> Registry:
    store = workspace.metadata
    dataset = _dataset(workspace)
    for c in (0.1, 1.0, 10.0):
        _register(workspace, dataset, params={"C": c}, metrics={"holdout": {"f1": c / 20}})
    return Registry(store)


def _stages(registry: Registry) -> dict[int, str]:
    model = registry.metadata.list_models()[0]
    return {v.version: v.stage for v in model.versions}


def test_production_takes_a_request_and_someone_elses_approval(registry: Registry) -> None:
    with pytest.raises(ReviewError, match="needs a review to reach production"):
        registry.set_stage("p", 1, "production", "alice")
    registry.set_stage("p", 1, "staging", "alice")
    asked = registry.request_promotion("p", 1, "alice", "better recall")
    assert asked.request_id is not None
    assert _stages(registry)[1] == "staging"  # nothing moves before the approval
    with pytest.raises(ReviewError, match="alice requested the promotion of p:1 and cannot"):
        registry.approve("p", 1, "alice")
    with pytest.raises(ReviewError, match="already has a pending request"):
        registry.request_promotion("p", 1, "bob")
    done = registry.approve("p", 1, "bob", "checked the diff")
    assert (done.action, done.from_stage, done.to_stage, done.replaced) == (
        "promoted",
        "staging",
        "production",
        None,
    )
    assert _stages(registry) == {1: "production", 2: "none", 3: "none"}
    with pytest.raises(ReviewError, match="no pending promotion request"):
        registry.approve("p", 1, "carol")
    [request] = registry.requests("p")
    assert (request.status, request.requested_by, request.decided_by) == (
        "approved",
        "alice",
        "bob",
    )


def test_a_new_production_version_archives_the_old_and_rollback_restores_it(
    registry: Registry,
) -> None:
    for version in (1, 2):
        registry.request_promotion("p", version, "alice")
        registry.approve("p", version, "bob")
    assert _stages(registry) == {1: "archived", 2: "production", 3: "none"}
    assert registry.in_stage("p", "production").version == 2

    back = registry.rollback("p", "carol", "p:2 times out")
    assert (back.version, back.replaced) == (1, 2)
    assert _stages(registry) == {1: "production", 2: "archived", 3: "none"}
    assert registry.in_stage("p", "production").version == 1

    events = [(e.version, e.action, e.to_stage, e.user) for e in registry.history("p")]
    assert events[:3] == [(v, "registered", "none", "tester") for v in (1, 2, 3)]
    assert events[-2:] == [
        (2, "archived", "archived", "carol"),
        (1, "rollback", "production", "carol"),
    ]
    assert ("approved" in {a for _, a, _, _ in events}) and (
        "promoted" in {a for _, a, _, _ in events}
    )


def test_rollback_needs_an_earlier_production_version(registry: Registry) -> None:
    with pytest.raises(MlshipError, match="no version in production"):
        registry.rollback("p", "carol")
    registry.request_promotion("p", 3, "alice")
    registry.approve("p", 3, "bob")
    with pytest.raises(MlshipError, match="the first version p had in production"):
        registry.rollback("p", "carol")


def test_requests_are_rejected_by_others_and_withdrawn_by_their_author(registry: Registry) -> None:
    registry.request_promotion("p", 2, "alice")
    assert registry.reject("p", 2, "bob", "AUC dropped").action == "rejected"
    registry.request_promotion("p", 2, "alice")
    assert registry.reject("p", 2, "alice").action == "withdrawn"
    assert [r.status for r in registry.requests("p")] == ["rejected", "withdrawn"]
    assert _stages(registry)[2] == "none"


def test_tags_and_descriptions_of_models_and_versions(registry: Registry) -> None:
    registry.tag("p", 2, {"team": "growth", "ticket": "ML-1"}, "alice")
    registry.tag("p", 2, {"ticket": None}, "alice")
    registry.tag("p", None, {"domain": "churn"}, "alice")
    registry.describe("p", 2, "Logistic regression, C=1", "alice")
    model = registry.metadata.list_models()[0]
    assert model.tags == {"domain": "churn"}
    version = registry.metadata.get_version("p", 2)
    assert version.tags == {"team": "growth"}
    assert version.description == "Logistic regression, C=1"
    assert [e.action for e in registry.history("p")][-4:] == ["tagged"] * 3 + ["described"]


def test_unknown_names_versions_and_stages_are_clear_errors(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="no model named 'q'"):
        registry.request_promotion("q", 1, "alice")
    with pytest.raises(NotFoundError, match="model 'p' has no version 9"):
        registry.set_stage("p", 9, "staging", "alice")
    with pytest.raises(MlshipError, match="unknown stage 'prod'"):
        registry.set_stage("p", 1, "prod", "alice")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="no version in staging"):
        registry.in_stage("p", "staging")


def test_diff_lists_what_changed_with_numeric_deltas(registry: Registry) -> None:
    store = registry.metadata
    found = diff_versions(store, store.get_version("p", 1), store.get_version("p", 3))
    changed = {(row.section, row.name): row for row in found.changed()}
    assert changed[("params", "C")].a == 0.1 and changed[("params", "C")].b == 10.0
    assert changed[("metrics (holdout)", "f1")].delta == pytest.approx(0.5 - 0.005)
    assert ("data", "dataset sha256") not in changed  # same data
    assert ("training", "run") in changed
