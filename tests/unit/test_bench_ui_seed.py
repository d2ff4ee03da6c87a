"""The runs page benchmark compares like with like: both tools get the same runs, and the run it
waits for at the top of each page is the one mlship's search puts there.

The MLflow side is checked on the rows its seeding script writes (the script imports MLflow only
to create the store's schema, and the project has no full MLflow to run it here).
"""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlship.store.run_search import RunQuery
from mlship.workspace import Workspace

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RUNS = 300


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _module("bench_ui")


@pytest.fixture(scope="module")
def seeder() -> ModuleType:
    return _module("_mlflow_ui_seed")


def test_the_runs_are_the_same_at_every_call(bench: ModuleType) -> None:
    assert bench.make_runs(50) == bench.make_runs(50)
    assert bench.make_runs(50) != bench.make_runs(50, seed=1)


def test_mlflow_gets_the_runs_names_times_params_and_metrics(
    bench: ModuleType, seeder: ModuleType
) -> None:
    runs = bench.make_runs(RUNS)
    rows = seeder.mlflow_rows([run.as_json() for run in runs], 1)
    columns = seeder.COLUMNS
    params: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows["params"]:
        named = dict(zip(columns["params"], row, strict=True))
        params[named["run_uuid"]][named["key"]] = named["value"]
    latest: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows["latest_metrics"]:
        named = dict(zip(columns["latest_metrics"], row, strict=True))
        latest[named["run_uuid"]][named["key"]] = named["value"]
    history = sorted((r[3], r[0], r[1]) for r in rows["metrics"])
    starts = {r[0]: r[columns["runs"].index("start_time")] for r in rows["runs"]}
    names = {r[2]: r[1] for r in rows["tags"] if r[0] == "mlflow.runName"}
    assert [r[0] for r in rows["runs"]] == [run.id for run in runs]
    for run in runs:
        assert params[run.id] == {key: str(value) for key, value in run.params.items()}
        assert latest[run.id] == run.metrics
        assert starts[run.id] == int(run.started.timestamp() * 1000)
        assert names[run.id] == run.name
    assert history == sorted((run.id, k, v) for run in runs for k, v in run.metrics.items())


def test_mlship_gets_the_same_runs(bench: ModuleType, workspace: Workspace) -> None:
    runs = bench.make_runs(RUNS)
    bench.write_mlship(workspace.metadata, runs, batch=128)
    shown = tuple(f"param.{p}" for p in bench.PARAMS) + tuple(f"metric.{m}" for m in bench.METRICS)
    page = workspace.runs.search_runs(RunQuery(page_size=1000, columns=shown))
    assert page.total == RUNS
    assert [row.id for row in page.rows] == [run.id for run in runs]  # newest first
    for row, run in zip(page.rows, runs, strict=True):
        expected: dict[str, Any] = {f"param.{k}": float(v) for k, v in run.params.items()}
        expected |= {f"metric.{k}": v for k, v in run.metrics.items()}
        assert row.values == expected
        assert row.started_at.replace(tzinfo=None) == run.started.replace(tzinfo=None)


def test_each_page_starts_with_the_run_the_bench_waits_for(
    bench: ModuleType, workspace: Workspace
) -> None:
    runs = bench.make_runs(RUNS)
    bench.write_mlship(workspace.metadata, runs)
    firsts = []
    for question in (q for q in bench.QUESTIONS if q.page == "runs"):
        query = RunQuery.of(question.mlship.get("filter", ""), sort=question.mlship.get("sort"))
        first = workspace.runs.search_runs(query).rows[0]
        assert first.id == question.first(runs).id, question.name
        firsts.append(first.id)
    assert len(set(firsts)) == len(firsts)  # no page could pass for another


def test_both_tools_get_the_same_versions_and_the_newest_comes_first(
    bench: ModuleType, seeder: ModuleType, workspace: Workspace
) -> None:
    runs = bench.make_runs(RUNS)
    made = bench.versioned(runs, 40)
    assert [run.started for run in made] == sorted(run.started for run in runs)[:40]
    bench.write_mlship(workspace.metadata, runs)
    bench.write_mlship_versions(workspace.metadata, made)
    (model_row,) = [m for m in workspace.tracking.list_models() if m.name == bench.MODEL]
    assert sorted((v.version, v.run_id) for v in model_row.versions) == [
        (number, run.id) for number, run in enumerate(made, start=1)
    ]
    ids, seeded = [run.id for run in made], [run.as_json() for run in runs]
    model, rows = seeder.version_rows(bench.MODEL, ids, seeded)
    named = [dict(zip(seeder.VERSION_COLUMNS, row, strict=True)) for row in rows]
    assert [(r["version"], r["run_id"]) for r in named] == [
        (number, run.id) for number, run in enumerate(made, start=1)
    ]
    assert model[0] == bench.MODEL
    (question,) = [q for q in bench.QUESTIONS if q.page == "versions"]
    assert question.first(runs) == bench.versioned(runs, bench.VERSIONS)[-1]
