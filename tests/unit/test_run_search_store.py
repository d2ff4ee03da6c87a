"""The SQL side of searching runs: the migration that fills ``run_values`` for runs recorded
before it, the bulk seeding path, and the query plans (indexes, not scans of every value)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, event, select, text

from mlship.store.db import _alembic_config, make_engine, upgrade
from mlship.store.metadata import MetadataStore
from mlship.store.run_search import RunQuery
from mlship.store.synthetic_runs import METRIC_NAMES, PARAM_NAMES, seed_runs
from mlship.store.tables import RunValue

_names = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of each kind, not yet migrated."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        from tests.services import create_database

        url = create_database(request.getfixturevalue("postgres_url"), f"search_{next(_names)}")
    found = make_engine(url)
    yield found
    found.dispose()


def test_the_migration_fills_the_values_of_runs_recorded_before_it(engine: Engine) -> None:
    config = _alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0014")
    run = (
        'INSERT INTO runs (id, pipeline, status, "user", owner, tags, task, metric, spec_path,'
        " spec_hash, spec, environment, started_at, attempts, best_candidate) VALUES"
        " (:id, 'p', :status, 'erin', 'erin', '{}', 'classification', 'f1', '/x', 's', '{}', '{}',"
        " :started, 1, :best)"
    )
    candidate = (
        "INSERT INTO candidates (run_id, name, estimator, params, cv_mean, cv_std, fit_seconds,"
        " rank, selected, trials) VALUES (:run, :name, 'e', :params, 0.5, 0.1, 1.0, :rank,"
        " :selected, 0)"
    )
    metric = (
        "INSERT INTO metrics (run_id, candidate, split, name, value) VALUES"
        " (:run, :candidate, :split, :name, :value)"
    )
    with engine.begin() as connection:
        connection.execute(text(run), [
            {"id": "r1", "status": "succeeded", "started": "2026-01-01", "best": "gbm"},
            {"id": "r2", "status": "failed", "started": "2026-01-02", "best": None},
        ])  # fmt: skip
        connection.execute(text(candidate), [
            {"run": "r1", "name": "gbm", "params": '{"depth": 4, "loss": "log", "on": true}',
             "rank": 1, "selected": True},
            {"run": "r1", "name": "lr", "params": '{"C": 1.0}', "rank": 2, "selected": False},
        ])  # fmt: skip
        connection.execute(text(metric), [
            {"run": "r1", "candidate": "gbm", "split": "cv", "name": "f1", "value": 0.6},
            {"run": "r1", "candidate": "gbm", "split": "holdout", "name": "f1", "value": 0.7},
            {"run": "r1", "candidate": "gbm", "split": "cv", "name": "auc", "value": 0.8},
            {"run": "r1", "candidate": "lr", "split": "cv", "name": "f1", "value": 0.9},
        ])  # fmt: skip
    upgrade(engine)
    store = MetadataStore(engine)
    with store.transaction() as session:
        stored = {
            (v.run_id, v.kind, v.key, v.number, v.text) for v in session.scalars(select(RunValue))
        }
    assert stored == {
        ("r1", "param", "depth", 4.0, "4"),
        ("r1", "param", "loss", None, "log"),
        ("r1", "param", "on", 1.0, "true"),
        ("r1", "metric", "f1", 0.7, None),
        ("r1", "metric", "auc", 0.8, None),
    }
    page = store.search_runs(RunQuery.of("metric.f1 > 0.65 and param.loss = log"))
    assert [row.id for row in page.rows] == ["r1"]
    assert store.search_runs(RunQuery()).total == 2


def test_seeded_runs_are_searched_like_finished_ones(engine: Engine) -> None:
    upgrade(engine)
    store = MetadataStore(engine)
    ids = seed_runs(store, 30, pipeline="seeded", params=12, metrics=3, batch=7)
    assert len(set(ids)) == 30
    run = store.get_run(ids[0])
    assert run.status == "succeeded" and run.best_candidate == "best"
    holdout = {m.name: m.value for m in run.metrics if m.split == "holdout"}
    assert set(holdout) == set(METRIC_NAMES[:3])
    page = store.search_runs(RunQuery.of(sort="started", columns=["param.p11", "metric.f1"]))
    assert [row.id for row in page.rows] == ids
    first = page.rows[0]
    assert first.values["metric.f1"] == holdout["f1"]
    selected = next(c for c in run.candidates if c.selected).params
    assert set(selected) == {*PARAM_NAMES, "p10", "p11"}
    assert first.values["param.p11"] == selected["p11"]
    assert seed_runs(store, 3, pipeline="again", seed=5) != seed_runs(store, 3, seed=6)


def _plans(store: MetadataStore, query: RunQuery) -> list[str]:
    """The query plans of the statements ``search_runs`` sends for ``query``."""
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        store.search_runs(query)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = []
    with store.engine.connect() as connection:
        for statement, parameters in sent:
            if statement.lstrip().upper().startswith("SELECT"):
                rows = connection.exec_driver_sql(explain + statement, parameters).all()
                plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


def test_searches_read_indexes_not_every_value(engine: Engine) -> None:
    upgrade(engine)
    store = MetadataStore(engine)
    seed_runs(store, 2000 if engine.dialect.name == "postgresql" else 300, pipeline="planned")
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    selective = _plans(store, RunQuery.of("metric.roc_auc > 0.995"))
    by_metric = _plans(store, RunQuery.of("param.model = svm", sort="metric.f1"))
    newest = _plans(store, RunQuery())
    ranked = _plans(store, RunQuery.of(sort="metric.f1"))
    everything = "\n".join(selective + by_metric + newest + ranked)
    if engine.dialect.name == "sqlite":
        assert "SCAN run_values" not in everything
        assert "USING INDEX ix_run_values_number (kind=? AND key=? AND number>?)" in selective[0]
        assert "USING INDEX ix_run_values_text (kind=? AND key=? AND text=?)" in by_metric[0]
        assert "SCAN runs USING INDEX ix_runs_started_at" in newest[1]
        # The metric's index in order: the first 50 runs are read, not all of them sorted.
        assert "USING INDEX ix_run_values_number (kind=? AND key=?)" in ranked[1]
        assert "USE TEMP B-TREE FOR ORDER BY" not in ranked[1]
    else:
        assert "Seq Scan on run_values" not in everything
        assert "ix_run_values_number" in selective[0]
        assert "ix_run_values_text" in by_metric[0]
        assert "ix_runs_started_at" in newest[1]
        assert "Index Scan Backward using ix_run_values_number" in ranked[1]
