"""Searching runs, the same on every backend: SQLite, PostgreSQL and a server's client of each.

Every test makes runs of a pipeline of its own and names it in its filter (backends are shared
by the session), so the pages and counts it sees are its runs only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.store.repositories import NewCandidate, NewMetric, Runs
from mlship.store.run_search import (
    Condition,
    FilterError,
    RunFields,
    RunPage,
    RunQuery,
    RunRow,
    SortKey,
)
from mlship.workspace import Workspace
from tests.backends import Backend, unique


@pytest.fixture
def alice(backend: Backend) -> Workspace:
    return backend.workspace_as("alice", "scientist")


def _finished(
    ws: Workspace, pipeline: str, *, auc: float, params: dict[str, Any], cv: float = 0.5
) -> str:
    """A run of ``pipeline`` finished with ``params`` on its selected candidate, a holdout
    ``roc_auc`` of ``auc`` and cross-validated ``roc_auc`` of ``cv`` and ``log_loss``."""
    artifact = ws.artifacts.put_bytes(f"table {pipeline}".encode())
    dataset, _ = ws.tracking.get_or_add_dataset(
        hashlib.sha256(pipeline.encode()).hexdigest(), artifact.sha256, 3, [], []
    )
    run_id = ws.runs.start_run(
        pipeline=pipeline, task="classification", metric="roc_auc", spec_path="s.yaml",
        spec_hash="s" * 64, spec={}, git_commit=None, environment={},
    )  # fmt: skip
    ws.runs.finish_run(
        run_id,
        dataset_id=dataset.id,
        candidates=[
            NewCandidate(
                name="best",
                estimator="e.B",
                params=params,
                cv_mean=cv,
                cv_std=0.0,
                fit_seconds=1.0,
                rank=1,
                selected=True,
            ),
            NewCandidate(
                name="other",
                estimator="e.O",
                params={"model": "other", "depth": 99},
                cv_mean=0.1,
                cv_std=0.0,
                fit_seconds=1.0,
                rank=2,
            ),
        ],
        metrics=[
            NewMetric(candidate="best", split="cv", name="roc_auc", value=cv),
            NewMetric(candidate="best", split="cv", name="log_loss", value=1 - cv),
            NewMetric(candidate="best", split="holdout", name="roc_auc", value=auc),
            NewMetric(candidate="other", split="cv", name="roc_auc", value=0.99),
        ],
        best_candidate="best",
        wall_seconds=auc * 10,
    )
    return run_id


def _search(runs: Runs, pipeline: str, extra: str = "", **options: Any) -> RunPage:
    where = f'pipeline = "{pipeline}"' + (f" and {extra}" if extra else "")
    return runs.search_runs(RunQuery.of(where, **options))


@pytest.fixture
def five(alice: Workspace) -> tuple[str, list[str]]:
    """A pipeline with five finished runs, holdout AUC 0.6 to 0.9 and one left running."""
    pipeline = unique("search")
    ids = [
        _finished(alice, pipeline, auc=0.6, params={"model": "gbm", "depth": 3}),
        _finished(alice, pipeline, auc=0.9, params={"model": "gbm", "depth": 5}),
        _finished(alice, pipeline, auc=0.7, params={"model": "rf", "depth": 5, "bootstrap": True}),
        _finished(alice, pipeline, auc=0.8, params={"model": "lr", "opt": {"c": 0.5}}),
        _finished(alice, pipeline, auc=0.75, params={"model": "gbm", "depth": 4}),
    ]
    alice.runs.start_run(
        pipeline=pipeline, task="classification", metric="roc_auc", spec_path="s.yaml",
        spec_hash="s" * 64, spec={}, git_commit=None, environment={},
    )  # fmt: skip
    return pipeline, ids


def test_a_page_is_newest_first_by_default_with_the_total(
    alice: Workspace, five: tuple[str, list[str]]
) -> None:
    pipeline, ids = five
    page = _search(alice.runs, pipeline, page_size=4)
    assert isinstance(page, RunPage) and all(isinstance(r, RunRow) for r in page.rows)
    assert (page.total, page.pages, page.next_page) == (6, 2, 2)
    assert [r.id for r in page.rows][1:] == ids[::-1][:3]
    assert page.rows[0].status == "running" and page.rows[0].best_cv is None
    second = _search(alice.runs, pipeline, page=2, page_size=4)
    assert [r.id for r in second.rows] == ids[:2][::-1]
    assert second.next_page is None
    row = second.rows[0]
    assert (row.pipeline, row.status, row.owner, row.user, row.metric) == (
        pipeline, "succeeded", "alice", "alice", "roc_auc",
    )  # fmt: skip
    assert (row.best_candidate, row.best_cv, row.wall_seconds) == ("best", 0.5, 9.0)
    assert row.started_at.utcoffset() is not None and row.values == {}


def test_metrics_filter_and_sort_in_the_database(
    alice: Workspace, five: tuple[str, list[str]]
) -> None:
    pipeline, ids = five
    best_first = _search(alice.runs, pipeline, "metric.roc_auc >= 0.7", sort="metric.roc_auc")
    assert [r.values["metric.roc_auc"] for r in best_first.rows] == [0.9, 0.8, 0.75, 0.7]
    assert best_first.total == 4
    assert [r.id for r in best_first.rows] == [ids[1], ids[3], ids[4], ids[2]]
    worst_first = _search(alice.runs, pipeline, sort="metric.roc_auc:asc", page_size=2)
    assert [r.values["metric.roc_auc"] for r in worst_first.rows] == [0.6, 0.7]
    # The running run has no score: it comes last whichever way the sort goes.
    last = _search(alice.runs, pipeline, sort="metric.roc_auc:asc", page=2, page_size=5)
    assert [r.status for r in last.rows] == ["running"]
    assert last.rows[0].values == {"metric.roc_auc": None}
    spanning = _search(alice.runs, pipeline, sort="metric.roc_auc", page=2, page_size=4)
    assert [r.values["metric.roc_auc"] for r in spanning.rows] == [0.6, None]
    assert (spanning.total, spanning.next_page) == (6, None)
    beyond = _search(alice.runs, pipeline, sort="metric.roc_auc", page=3, page_size=4)
    assert beyond.rows == () and beyond.total == 6
    nobody = _search(alice.runs, pipeline, sort="metric.unknown:asc", page_size=4)
    assert [r.id for r in nobody.rows] == [r.id for r in _search(alice.runs, pipeline).rows][:4]
    # A cross-validated score counts when there is no holdout score of that name.
    losses = _search(alice.runs, pipeline, "metric.log_loss = 0.5")
    assert losses.total == 5


def test_params_compare_as_numbers_or_text(alice: Workspace, five: tuple[str, list[str]]) -> None:
    pipeline, ids = five
    gbm = _search(alice.runs, pipeline, 'param.model = "gbm" and param.depth > 3')
    assert {r.id for r in gbm.rows} == {ids[1], ids[4]}
    assert {r.values["param.depth"] for r in gbm.rows} == {5, 4}
    assert _search(alice.runs, pipeline, 'param.depth = "5"').total == 2
    assert _search(alice.runs, pipeline, "param.model != gbm").total == 2
    assert _search(alice.runs, pipeline, "param.bootstrap = true").total == 1
    assert _search(alice.runs, pipeline, "param.bootstrap = 1").total == 1
    nested = _search(alice.runs, pipeline, "param.opt.c < 1")
    assert [r.id for r in nested.rows] == [ids[3]]
    # Only the selected candidate's params: the other candidate's depth 99 is not the run's.
    assert _search(alice.runs, pipeline, "param.depth = 99").total == 0
    by_depth = _search(alice.runs, pipeline, sort="param.depth:asc", columns=["param.model"])
    assert [r.values["param.depth"] for r in by_depth.rows][:3] == [3, 4, 5]
    assert [r.values["param.model"] for r in by_depth.rows][:2] == ["gbm", "gbm"]


def test_tags_owner_status_and_text(
    backend: Backend, alice: Workspace, five: tuple[str, list[str]]
) -> None:
    pipeline, ids = five
    alice.runs.tag_run(ids[0], {"team": "growth", "odd key": 'a "quoted" value'})
    alice.runs.tag_run(ids[1], {"team": "risk"})
    grown = _search(alice.runs, pipeline, "tag.team = growth")
    assert [r.id for r in grown.rows] == [ids[0]]
    assert grown.rows[0].tags["team"] == "growth"
    odd = _search(alice.runs, pipeline, 'tag."odd key" = "a \\"quoted\\" value"')
    assert [r.id for r in odd.rows] == [ids[0]]
    assert _search(alice.runs, pipeline, "tag.team != growth").total == 5
    assert _search(alice.runs, pipeline, "status = running").total == 1
    assert _search(alice.runs, pipeline, "owner = alice and duration > 7.5").total == 2
    assert _search(alice.runs, pipeline, "owner = nobody").total == 0
    found = alice.runs.search_runs(RunQuery(text=ids[2][:12].upper()))
    assert [r.id for r in found.rows] == [ids[2]]
    by_name = alice.runs.search_runs(RunQuery(text=pipeline.upper(), page_size=1000))
    assert by_name.total == 6
    alice.runs.add_run_note(ids[3], f"Retrained after the {pipeline} LEAK-42 fix")
    noted = alice.runs.search_runs(RunQuery(text=f"{pipeline} leak-42"))
    assert [r.id for r in noted.rows] == [ids[3]]
    odd_text = alice.runs.search_runs(RunQuery(text="%_\\'\"; drop"))
    assert odd_text.total == 0


def test_a_bad_filter_says_where_on_every_backend(alice: Workspace) -> None:
    with pytest.raises(FilterError) as raised:
        alice.runs.search_runs(RunQuery.of("metric.roc_auc > high"))
    assert str(raised.value) == (
        "filter: at character 1: metric.roc_auc is a number; expected a number, got 'high'"
    )
    with pytest.raises(FilterError, match=r"^cannot sort by 'colour'; expected one of started"):
        alice.runs.search_runs(RunQuery(sort=SortKey(field="colour")))


def test_the_fields_a_list_offers_are_the_recorded_names(
    alice: Workspace, five: tuple[str, list[str]]
) -> None:
    fields = alice.runs.run_fields()
    assert isinstance(fields, RunFields)
    assert {"roc_auc", "log_loss"} <= set(fields.metrics)
    assert {"model", "depth", "bootstrap", "opt.c"} <= set(fields.params)
    assert list(fields.metrics) == sorted(fields.metrics)
    # the newest scored run is the last of ``five``: its selection metric first
    assert fields.newest == ("roc_auc", "log_loss")
    few = alice.runs.run_fields(most=1)
    assert (len(few.metrics), len(few.params), few.newest) == (1, 1, ("roc_auc",))


def test_a_name_with_a_nul_is_refused_before_any_backend_sees_it(alice: Workspace) -> None:
    builders: list[Callable[[], RunQuery]] = [
        lambda: RunQuery(conditions=(Condition(field="param.a\x00", op="=", value="x"),)),
        lambda: RunQuery(sort=SortKey(field="metric.a\x00")),
        lambda: RunQuery(columns=("param.a\x00",)),
    ]
    for build in builders:
        with pytest.raises(FilterError, match="NUL"):
            alice.runs.search_runs(build())
    with pytest.raises(FilterError, match=r"unexpected character '\\x00' at character 9"):
        alice.runs.search_runs(RunQuery.of("metric.a\x00b > 1"))


def test_a_viewer_searches_on_a_server(backend: Backend, five: tuple[str, list[str]]) -> None:
    pipeline, _ = five
    vera = backend.workspace_as("vera", "viewer")
    assert _search(vera.runs, pipeline).total == 6


_ODD = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(key=_ODD, value=_ODD, text=_ODD, number=st.floats(allow_nan=False, allow_infinity=False))
def test_odd_names_and_values_find_nothing_or_are_refused(
    alice: Workspace, key: str, value: str, text: str, number: float
) -> None:
    """Whatever names and values a person types, a backend answers with a page or a
    FilterError, never a database's error."""
    conditions = [
        ("tag", key, "=", value), ("param", key, "!=", value), ("param", key, "<", number),
        ("metric", key, ">=", number),
    ]  # fmt: skip
    for prefix, name, op, wanted in conditions:
        try:
            query = RunQuery(
                conditions=(Condition(field=f"{prefix}.{name}", op=op, value=wanted),),  # type: ignore[arg-type]
                text=text or None,
                sort=SortKey(field=f"{'metric' if prefix == 'tag' else prefix}.{name or 'x'}"),
                page_size=5,
            )
        except FilterError:
            continue
        page = alice.runs.search_runs(query)
        assert page.total >= len(page.rows)
