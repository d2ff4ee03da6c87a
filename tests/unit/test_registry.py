"""The registry's rules on one SQLite store, following one model through a longer story, and
the diff of versions.

What every backend shares, method by method, is in ``test_registry_contract.py``. Here the
registry acts as whoever :func:`_by` names, as the settings' user of a command would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mlship.errors import MlshipError, NotFoundError
from mlship.registry.diff import diff_versions
from mlship.registry.lifecycle import SqlRegistry
from mlship.registry.refs import resolve_version
from mlship.store.metadata import MetadataStore
from mlship.store.registry import Registry, ReviewError
from mlship.store.repositories import Catalogue
from mlship.workspace import Workspace
from tests.unit.test_metadata import _dataset, _finish, _new_version, _start


def _register(workspace: Workspace, dataset: int, **overrides: Any) -> int:
    store = workspace.metadata
    version = _finish(store, _start(store), dataset, register=_new_version(workspace, **overrides))
    assert version is not None
    return version.version


@pytest.fixture
def store(workspace: Workspace) -> MetadataStore:
    """A store with model ``p``, versions 1 to 3 (C = 0.1, 1, 10)."""
    store = workspace.metadata
    dataset = _dataset(workspace)
    for c in (0.1, 1.0, 10.0):
        _register(workspace, dataset, params={"C": c}, metrics={"holdout": {"f1": c / 20}})
    return store


def _by(store: MetadataStore, user: str) -> SqlRegistry:
    return SqlRegistry(store, user)


def _stages(store: MetadataStore) -> dict[int, str]:
    model = store.list_models()[0]
    return {v.version: v.stage for v in model.versions}


def test_production_takes_a_request_and_someone_elses_approval(store: MetadataStore) -> None:
    alice, bob = _by(store, "alice"), _by(store, "bob")
    with pytest.raises(ReviewError, match="needs a review to reach production"):
        alice.set_stage("p", 1, "production")
    alice.set_stage("p", 1, "staging")
    asked = alice.request_promotion("p", 1, "better recall")
    assert asked.request_id is not None
    assert _stages(store)[1] == "staging"  # nothing moves before the approval
    with pytest.raises(ReviewError, match="alice requested the promotion of p:1 and cannot"):
        alice.approve("p", 1)
    with pytest.raises(ReviewError, match="already has a pending request"):
        bob.request_promotion("p", 1)
    done = bob.approve("p", 1, "checked the diff")
    assert (done.action, done.from_stage, done.to_stage, done.replaced) == (
        "promoted",
        "staging",
        "production",
        None,
    )
    assert _stages(store) == {1: "production", 2: "none", 3: "none"}
    with pytest.raises(ReviewError, match="no pending promotion request"):
        _by(store, "carol").approve("p", 1)
    [request] = bob.requests("p")
    assert (request.status, request.requested_by, request.decided_by) == (
        "approved",
        "alice",
        "bob",
    )


def test_a_new_production_version_archives_the_old_and_rollback_restores_it(
    store: MetadataStore,
) -> None:
    alice, bob, carol = _by(store, "alice"), _by(store, "bob"), _by(store, "carol")
    for version in (1, 2):
        alice.request_promotion("p", version)
        bob.approve("p", version)
    assert _stages(store) == {1: "archived", 2: "production", 3: "none"}
    assert carol.in_stage("p", "production").version == 2

    back = carol.rollback("p", "p:2 times out")
    assert (back.version, back.replaced) == (1, 2)
    assert _stages(store) == {1: "production", 2: "archived", 3: "none"}
    assert carol.in_stage("p", "production").version == 1

    events = [(e.version, e.action, e.to_stage, e.user) for e in carol.history("p")]
    assert events[:3] == [(v, "registered", "none", "tester") for v in (1, 2, 3)]
    assert events[-2:] == [
        (2, "archived", "archived", "carol"),
        (1, "rollback", "production", "carol"),
    ]
    assert ("approved" in {a for _, a, _, _ in events}) and (
        "promoted" in {a for _, a, _, _ in events}
    )


def test_rollback_needs_an_earlier_production_version(store: MetadataStore) -> None:
    carol = _by(store, "carol")
    with pytest.raises(MlshipError, match="no version in production"):
        carol.rollback("p")
    _by(store, "alice").request_promotion("p", 3)
    _by(store, "bob").approve("p", 3)
    with pytest.raises(MlshipError, match="the first version p had in production"):
        carol.rollback("p")


def test_requests_are_rejected_by_others_and_withdrawn_by_their_author(
    store: MetadataStore,
) -> None:
    alice, bob = _by(store, "alice"), _by(store, "bob")
    alice.request_promotion("p", 2)
    assert bob.reject("p", 2, "AUC dropped").action == "rejected"
    alice.request_promotion("p", 2)
    with pytest.raises(ReviewError, match="models withdraw p:2` takes the request back"):
        alice.reject("p", 2)
    with pytest.raises(ReviewError, match=r"bob has no pending promotion request for p:2 \(#2"):
        bob.withdraw("p", 2)
    assert alice.withdraw("p", 2).action == "withdrawn"
    assert [r.status for r in alice.requests("p")] == ["rejected", "withdrawn"]
    assert _stages(store)[2] == "none"


def test_tags_and_descriptions_of_models_and_versions(store: MetadataStore) -> None:
    alice = _by(store, "alice")
    alice.tag("p", 2, {"team": "growth", "ticket": "ML-1"})
    alice.tag("p", 2, {"ticket": None})
    alice.tag("p", None, {"domain": "churn"})
    alice.describe("p", 2, "Logistic regression, C=1")
    model = store.list_models()[0]
    assert model.tags == {"domain": "churn"}
    version = store.get_version("p", 2)
    assert version.tags == {"team": "growth"}
    assert version.description == "Logistic regression, C=1"
    assert [e.action for e in alice.history("p")][-4:] == ["tagged"] * 3 + ["described"]


def test_unknown_names_versions_and_stages_are_clear_errors(store: MetadataStore) -> None:
    alice = _by(store, "alice")
    with pytest.raises(NotFoundError, match="no model named 'q'"):
        alice.request_promotion("q", 1)
    with pytest.raises(NotFoundError, match="model 'p' has no version 9"):
        alice.set_stage("p", 9, "staging")
    with pytest.raises(MlshipError, match="unknown stage 'prod'"):
        alice.set_stage("p", 1, "prod")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="no version in staging"):
        alice.in_stage("p", "staging")


def test_diff_lists_what_changed_with_numeric_deltas(store: MetadataStore) -> None:
    found = diff_versions(store, store.get_version("p", 1), store.get_version("p", 3))
    changed = {(row.section, row.name): row for row in found.changed()}
    assert changed[("params", "C")].a == 0.1 and changed[("params", "C")].b == 10.0
    assert changed[("metrics (holdout)", "f1")].delta == pytest.approx(0.5 - 0.005)
    assert ("data", "dataset sha256") not in changed  # same data
    assert ("training", "run") in changed


@dataclass(frozen=True)
class _OnlyLookups:
    """Just the two stores a reference is resolved with: nothing else of a workspace."""

    catalogue: Catalogue
    registry: Registry


def test_references_resolve_with_only_the_catalogue_and_the_registry(
    workspace: Workspace, store: MetadataStore
) -> None:
    _by(store, "alice").set_stage("p", 2, "staging")
    lookups = _OnlyLookups(workspace.catalogue, _by(store, "alice"))
    assert resolve_version(lookups, "p").version == 3
    assert resolve_version(lookups, "p:1").version == 1
    assert resolve_version(lookups, "p@staging").version == 2
    with pytest.raises(NotFoundError, match="model 'p' has no version in production"):
        resolve_version(lookups, "p@production")
    with pytest.raises(MlshipError, match="the stage must be staging, production or archived"):
        resolve_version(lookups, "p@live")
