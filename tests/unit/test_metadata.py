"""The metadata store: schema from migrations, WAL, and all-or-nothing transactions."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from mlship.errors import MlshipError, NotFoundError
from mlship.store.db import VERSION_TABLE, current_revision, head_revision, upgrade
from mlship.store.entities import ModelVersion
from mlship.store.metadata import MetadataStore
from mlship.store.repositories import NewCandidate, NewMetric, NewVersion
from mlship.store.tables import Base, Candidate, Metric, Run
from mlship.store.tables import ModelVersion as VersionRow
from mlship.workspace import Workspace


def _start(store: MetadataStore) -> str:
    return store.start_run(
        pipeline="p",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={},
        git_commit=None,
        environment={},
    )


def _stored(workspace: Workspace, data: bytes) -> str:
    """The sha256 of ``data``, put in the workspace's artifact store (what a dataset or version
    refers to must be there)."""
    return workspace.artifacts.put_bytes(data).sha256


def _new_version(workspace: Workspace, **overrides: Any) -> NewVersion:
    values: dict[str, Any] = {
        "name": "p",
        "dataset_hash": "d" * 64,
        "estimator": "sklearn.dummy.DummyClassifier",
        "params": {},
        "artifact_sha256": _stored(workspace, b"a model"),
        "artifact_size": 7,
        "artifact_signature": "hmac-sha256:" + "0" * 64,
        "signature": {},
        "metrics": {},
    }
    values.update(overrides)
    return NewVersion(**values)


def _finish(
    store: MetadataStore, run_id: str, dataset_id: int, **kwargs: Any
) -> ModelVersion | None:
    return store.finish_run(
        run_id,
        dataset_id=dataset_id,
        candidates=[
            NewCandidate(
                name="c",
                estimator="e",
                params={},
                cv_mean=0.5,
                cv_std=0.1,
                fit_seconds=1.0,
                rank=1,
                selected=True,
            )
        ],
        metrics=[NewMetric(candidate="c", split="holdout", name="accuracy", value=0.5)],
        best_candidate="c",
        wall_seconds=1.0,
        **kwargs,
    )


def _dataset(workspace: Workspace) -> int:
    artifact = _stored(workspace, b"a dataset")
    dataset, _ = workspace.tracking.get_or_add_dataset("h" * 64, artifact, 10, [{"name": "x"}], [])
    return dataset.id


def test_schema_comes_from_migrations_and_matches_the_models(workspace: Workspace) -> None:
    engine = workspace.metadata.engine
    tables = set(inspect(engine).get_table_names())
    assert {
        "runs",
        "datasets",
        "candidates",
        "metrics",
        "registered_models",
        "model_versions",
    } <= tables
    assert VERSION_TABLE in tables
    assert "alembic_version" not in tables  # left free for Optuna's studies in the same database
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(workspace: Workspace) -> None:
    with workspace.metadata.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert workspace.settings.database_url_resolved.endswith("/ws/mlship.db")


def test_reopening_does_not_migrate_again(workspace: Workspace) -> None:
    _start(workspace.metadata)
    again = Workspace.open(workspace.settings)
    assert len(again.tracking.list_runs()) == 1
    again.close()


def test_versions_are_numbered_per_model(workspace: Workspace) -> None:
    store = workspace.metadata
    dataset_id = _dataset(workspace)
    first = _finish(store, _start(store), dataset_id, register=_new_version(workspace))
    second = _finish(store, _start(store), dataset_id, register=_new_version(workspace))
    other = _finish(store, _start(store), dataset_id, register=_new_version(workspace, name="q"))
    assert first is not None and second is not None and other is not None
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert store.get_version("p").version == 2
    assert store.get_version("p", 1).id == first.id
    with pytest.raises(NotFoundError, match="model 'p' has no version 7"):
        store.get_version("p", 7)
    with pytest.raises(NotFoundError, match=r"no model named 'zz' \(registered models: p, q\)"):
        store.get_version("zz")


def test_a_failure_while_recording_results_leaves_no_row(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = workspace.metadata
    dataset_id = _dataset(workspace)
    run_id = _start(store)

    def crash(*args: Any, **kwargs: Any) -> VersionRow:
        raise RuntimeError("power cut while registering")

    monkeypatch.setattr(store, "_add_version", crash)
    with pytest.raises(RuntimeError):
        _finish(store, run_id, dataset_id, register=_new_version(workspace))
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Candidate)) == 0
        assert session.scalar(select(func.count()).select_from(Metric)) == 0
        assert session.scalar(select(func.count()).select_from(VersionRow)) == 0
        assert session.get_one(Run, run_id).status == "running"


def test_dataset_rows_are_shared_by_content_hash(workspace: Workspace) -> None:
    store = workspace.metadata
    artifact = _stored(workspace, b"a dataset")
    first, created = store.get_or_add_dataset("h" * 64, artifact, 10, [], [])
    again, created_again = store.get_or_add_dataset("h" * 64, artifact, 10, [], [])
    assert created and not created_again
    assert first.id == again.id


def test_runs_are_found_by_unique_prefix(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store)
    assert store.get_run(run_id[:6]).id == run_id
    with pytest.raises(NotFoundError):
        store.get_run("nope")
    other = _start(store)
    common = ""
    for a, b in zip(run_id, other, strict=True):
        if a != b:
            break
        common += a
    with pytest.raises(MlshipError, match="ambiguous"):
        store.get_run(common)


def test_datasets_are_found_by_pipeline_name_newest_first(workspace: Workspace) -> None:
    """``churn`` is the newest dataset of that pipeline and ``churn~1`` the one before it."""
    store = workspace.metadata
    first, second = _stored(workspace, b"older"), _stored(workspace, b"newer")
    older, _ = store.get_or_add_dataset("a" * 64, first, 10, [], [], pipeline="churn")
    newer, _ = store.get_or_add_dataset("b" * 64, second, 12, [], [], pipeline="churn")
    assert store.get_dataset("churn").id == newer.id
    assert store.get_dataset("churn~0").id == newer.id
    assert store.get_dataset("churn~1").id == older.id
    assert store.get_dataset("aaaa").id == older.id
    with pytest.raises(NotFoundError, match="churn~2"):
        store.get_dataset("churn~2")


def test_a_workspace_with_the_default_version_table_is_adopted(workspace: Workspace) -> None:
    """Workspaces made before the version table was renamed keep working, and free the name."""
    engine = workspace.metadata.engine
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version"))
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert VERSION_TABLE in tables and "alembic_version" not in tables
    assert current_revision(engine) == head_revision(engine)
