"""Owners and tags of runs and models, and notes on runs and versions: defaults, filters, the
registry's history, and the migration that gives existing rows an owner."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from mlship.errors import MlshipError, NotFoundError
from mlship.registry.lifecycle import SqlRegistry
from mlship.store.db import _alembic_config, make_engine, upgrade
from mlship.store.metadata import MetadataStore
from mlship.workspace import Workspace
from tests.unit.test_metadata import _dataset, _finish, _new_version, _start


def test_a_run_is_owned_by_its_user_and_can_be_handed_over(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store)
    run = store.get_run(run_id)
    assert (run.user, run.owner, run.tags) == ("tester", "tester", {})  # the acting user
    handed = store.set_run_owner(run_id[:8], "dana")
    assert handed.owner == "dana"
    assert store.get_run(run_id).user == "tester"  # who started it does not change
    with pytest.raises(MlshipError, match="an owner needs a name"):
        store.set_run_owner(run_id, "  ")
    with pytest.raises(NotFoundError, match="no run with id 'nope'"):
        store.set_run_owner("nope", "dana")


def test_run_tags_are_set_and_removed(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store)
    assert store.tag_run(run_id, {"team": "growth", "ticket": "ML-7"}).tags == {
        "team": "growth",
        "ticket": "ML-7",
    }
    assert store.tag_run(run_id, {"ticket": None, "stage": "exp"}).tags == {
        "team": "growth",
        "stage": "exp",
    }
    assert store.get_run(run_id).tags == {"team": "growth", "stage": "exp"}


def test_runs_are_filtered_by_owner_and_tags(workspace: Workspace) -> None:
    store = workspace.metadata
    first, second, third = _start(store), _start(store), _start(store)
    store.set_run_owner(second, "dana")
    store.tag_run(first, {"team": "growth", "kind": "baseline"})
    store.tag_run(second, {"team": "growth"})
    store.tag_run(third, {"team": "risk"})
    assert {r.id for r in store.list_runs(owner="dana")} == {second}
    assert {r.id for r in store.list_runs(tags={"team": "growth"})} == {first, second}
    assert {r.id for r in store.list_runs(tags={"team": "growth", "kind": "baseline"})} == {first}
    assert store.list_runs(owner="tester", tags={"team": "risk"})[0].id == third
    assert store.list_runs(tags={"team": "nobody"}) == []


def test_notes_on_a_run_are_appended_in_order(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store)
    store.add_run_note(run_id[:6], "## Why\n\nBaseline for **Q3**.\n\n")
    store.add_run_note(run_id, "Second thought.")
    notes = store.notes("run", run_id)
    assert [(n.author, n.body) for n in notes] == [
        ("tester", "## Why\n\nBaseline for **Q3**."),
        ("tester", "Second thought."),
    ]
    assert notes[0].created_at <= notes[1].created_at
    with pytest.raises(MlshipError, match="a note needs some text"):
        store.add_run_note(run_id, " \n ")
    with pytest.raises(MlshipError, match="unknown note target 'dataset'"):
        store.notes("dataset", run_id)


@pytest.fixture
def registry(workspace: Workspace) -> SqlRegistry:
    store = workspace.metadata
    dataset = _dataset(workspace)
    for name in ("p", "p", "q"):
        _finish(store, _start(store), dataset, register=_new_version(workspace, name=name))
    return SqlRegistry(store, "tester")


def _by(registry: SqlRegistry, user: str) -> SqlRegistry:
    """The same registry acting as ``user``."""
    return SqlRegistry(registry.metadata, user)


def test_a_model_is_owned_by_who_registered_it_and_handing_over_is_recorded(
    registry: SqlRegistry,
) -> None:
    store = registry.metadata
    assert {m.name: m.owner for m in store.list_models()} == {"p": "tester", "q": "tester"}
    change = _by(registry, "alice").set_owner("p", "dana")
    assert (change.model, change.version, change.action) == ("p", None, "owner")
    assert [m.name for m in store.list_models(owner="dana")] == ["p"]
    last = registry.history("p")[-1]
    assert (last.action, last.user, last.details) == (
        "owner",
        "alice",
        {"previous": "tester", "owner": "dana"},
    )
    with pytest.raises(MlshipError, match="p is already owned by dana"):
        _by(registry, "alice").set_owner("p", "dana")
    with pytest.raises(NotFoundError, match="no model named 'zz'"):
        _by(registry, "alice").set_owner("zz", "dana")


def test_models_are_filtered_by_model_tags(registry: SqlRegistry) -> None:
    _by(registry, "alice").tag("q", None, {"team": "risk"})
    _by(registry, "alice").tag("p", 1, {"team": "risk"})  # a version's tag is not the model's
    assert [m.name for m in registry.metadata.list_models(tags={"team": "risk"})] == ["q"]


def test_notes_on_a_version_are_kept_per_version_and_recorded(registry: SqlRegistry) -> None:
    _by(registry, "alice").add_note("p", 2, "Looks **good** on the March data.")
    _by(registry, "bob").add_note("p", 1, "Superseded.")
    assert [n.body for n in registry.version_notes("p", 2)] == ["Looks **good** on the March data."]
    assert [n.author for n in registry.version_notes("p", 1)] == ["bob"]
    assert registry.version_notes("q", 1) == []
    noted = [e for e in registry.history("p") if e.action == "noted"]
    assert [(e.version, e.user) for e in noted] == [(2, "alice"), (1, "bob")]
    with pytest.raises(NotFoundError, match="model 'p' has no version 9"):
        _by(registry, "alice").add_note("p", 9, "text")
    with pytest.raises(MlshipError, match="a note needs some text"):
        _by(registry, "alice").add_note("p", 1, "")


def test_the_migration_gives_existing_runs_and_models_an_owner(tmp_path: Path) -> None:
    """Rows written before owners existed are owned by whoever made them."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = _alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO datasets (id, data_hash, artifact_sha256, n_rows, n_columns, columns,"
                " sources, created_at, n_quarantined) VALUES (1, 'h', 'a', 1, 1, '[]', '[]',"
                " '2026-01-01', 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO runs (id, pipeline, status, user, task, metric, spec_path, spec_hash,"
                " spec, environment, started_at, attempts) VALUES ('r1', 'p', 'succeeded', 'erin',"
                " 'classification', 'f1', '/x', 's', '{}', '{}', '2026-01-01', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO registered_models (id, name, created_at, tags) VALUES"
                " (1, 'p', '2026-01-01', '{}'), (2, 'empty', '2026-01-01', '{}')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO model_versions (model_id, version, run_id, dataset_hash, estimator,"
                " params, artifact_sha256, artifact_size, signature, metrics, created_by,"
                " created_at, stage, tags) VALUES (1, 1, 'r1', 'h', 'e', '{}', 'a', 1, '{}', '{}',"
                " 'frank', '2026-01-01', 'none', '{}'), (1, 2, 'r1', 'h', 'e', '{}', 'a', 1, '{}',"
                " '{}', 'gina', '2026-01-02', 'none', '{}')"
            )
        )
    upgrade(engine)
    store = MetadataStore(engine)
    run = store.get_run("r1")
    assert (run.owner, run.tags) == ("erin", {})
    assert {m.name: m.owner for m in store.list_models()} == {"empty": "unknown", "p": "frank"}
    engine.dispose()
