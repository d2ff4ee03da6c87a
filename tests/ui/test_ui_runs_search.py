"""The runs list over 2,000 runs written by :func:`~mlship.store.synthetic_runs.seed_runs`: each
page is the page the store's search answers for the same query (filtered, sorted and cut by
the database, in a bounded number of statements), and the page works in headless Chromium
(sorting by a heading, choosing columns, a refused filter shown in place, comparing)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from sqlalchemy import event, select

from mlship.config import Settings
from mlship.store.run_search import RunQuery
from mlship.store.synthetic_runs import seed_runs
from mlship.store.tables import Run, RunValue
from mlship.ui import local_app
from mlship.ui.runs import PAGE_SIZE, default_columns
from mlship.workspace import Workspace
from tests.conftest import mlship_env
from tests.serving import Server, free_port, start_server
from tests.ui.harness import check_page, new_context, shot, watch

RUNS = 2000
NEWEST = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A workspace of 2,000 finished runs, each with 12 params and 12 metrics (``m10``, ``p11``
    among them); read only."""
    home = tmp_path_factory.mktemp("synthetic") / "ws"
    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    seed_runs(workspace.metadata, RUNS, params=12, metrics=12, newest=NEWEST)
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def client(synthetic: Workspace) -> Iterator[TestClient]:
    with TestClient(local_app(synthetic), base_url="http://127.0.0.1:8765") as opened:
        yield opened


def _listed(html: str) -> list[str]:
    return re.findall(r'name="run" value="([0-9a-f]{32})"', html)


def _cells(html: str, run_id: str) -> list[str]:
    row = re.search(rf'<tr>\s*<td><input [^>]*value="{run_id}".*?</tr>', html, re.S)
    assert row is not None, run_id
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(), re.S)


@pytest.mark.parametrize(
    ("params", "store"),
    [
        ({}, {}),
        ({"sort": "metric.roc_auc:desc"}, {"sort": "metric.roc_auc:desc"}),
        ({"sort": "metric.f1:asc", "page": "7"}, {"sort": "metric.f1:asc", "page": 7}),
        ({"sort": "param.learning_rate"}, {"sort": "param.learning_rate:desc"}),
        ({"sort": "param.model:asc", "page": "3"}, {"sort": "param.model:asc", "page": 3}),
        ({"sort": "duration:asc"}, {"sort": "duration:asc"}),
        (
            {"filter": 'param.model = "gbm" and metric.f1 > 0.8 and tag.team = growth'},
            {"filter": 'param.model = "gbm" and metric.f1 > 0.8 and tag.team = growth'},
        ),
        (
            {"filter": "owner = alice and param.max_depth >= 6", "sort": "metric.mcc:desc"},
            {"filter": "owner = alice and param.max_depth >= 6", "sort": "metric.mcc:desc"},
        ),
        ({"q": "CAROL", "sort": "cost:asc", "page": "2"}, {"q": "CAROL", "sort": "cost:asc"}),
        # What a benchmark of the page loads, exactly so.
        ({"sort": "metric.m0:desc"}, {"sort": "metric.m0:desc"}),
        ({"filter": 'param.p0 = "5"'}, {"filter": 'param.p0 = "5"'}),
        ({"filter": 'param.p10 = "5"'}, {"filter": 'param.p10 = "5"'}),
        ({"sort": "metric.m11:desc"}, {"sort": "metric.m11:desc"}),
    ],
)
def test_a_page_is_the_page_the_store_finds(
    client: TestClient, synthetic: Workspace, params: dict[str, str], store: dict[str, Any]
) -> None:
    answer = client.get("/ui/runs", params=params)
    assert answer.status_code == 200
    query = RunQuery.of(
        store.get("filter", ""),
        sort=store.get("sort"),
        text=store.get("q"),
        page=int(params.get("page", "1")),
        page_size=PAGE_SIZE,
        columns=default_columns(synthetic),
    )
    found = synthetic.runs.search_runs(query)
    assert _listed(answer.text) == [row.id for row in found.rows]
    count = f"{found.total:,} run{'' if found.total == 1 else 's'}"
    assert count in answer.text
    if found.rows:  # each named value in its column, as the store has it
        first = found.rows[0]
        cells = _cells(answer.text, first.id)
        shown = cells[8 : 8 + len(query.shown)]
        for name, cell in zip(query.shown, shown, strict=True):
            value = first.values[name]
            expected = (
                "–" if value is None else f"{value:.4g}" if isinstance(value, float) else value
            )
            assert cell == expected, (name, cell, value)


def test_the_first_page_sorted_by_a_metric_holds_the_best_scores(
    client: TestClient, synthetic: Workspace
) -> None:
    page = client.get("/ui/runs", params={"sort": "metric.roc_auc:desc", "columns": ""}).text
    ids = _listed(page)
    assert len(ids) == PAGE_SIZE
    # Read straight from the tables: every run's score, the best first, the newer on a tie.
    with synthetic.metadata.transaction() as session:
        scored = session.execute(
            select(Run.id, RunValue.number, Run.started_at)
            .join(RunValue, RunValue.run_id == Run.id)
            .where(RunValue.kind == "metric", RunValue.key == "roc_auc")
        ).all()
    assert len(scored) == RUNS
    best = sorted(scored, key=lambda r: (-r.number, -r.started_at.timestamp()))
    assert [r.id for r in best[:PAGE_SIZE]] == ids
    assert "2,000 runs, page 1 of 40" in page


def test_a_page_costs_the_same_few_statements_whatever_it_asks(
    client: TestClient, synthetic: Workspace
) -> None:
    """The list never reads the runs into Python to filter or sort them: each page is a few
    statements (the names offered as columns, the default columns, the count, the page's ids,
    their rows by primary key and their values; a page sorted by a metric counts the runs that
    have it), however many runs match."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.split(maxsplit=1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            sent.append(statement)

    engine = synthetic.metadata.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for params in (
            {},
            {"sort": "metric.roc_auc:desc", "page": "30"},
            {"filter": "param.model = gbm", "sort": "param.n_estimators:asc"},
        ):
            sent.clear()
            assert client.get("/ui/runs", params=params).status_code == 200
            assert len(sent) <= 10, (params, sent)
            unbounded = [
                s
                for s in sent
                if "FROM runs" in s
                and "LIMIT" not in s
                and "count(" not in s
                # the page's rows, read by their ids: as many as the page holds
                and "WHERE runs.id IN (" not in s
            ]
            assert unbounded == []
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture(scope="module")
def synthetic_ui(synthetic: Workspace) -> Iterator[Server]:
    """``mlship ui`` on the synthetic workspace, on a free port of 127.0.0.1."""
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "mlship", "ui", "--port", str(port)],
        mlship_env(synthetic.settings.home_resolved),
        f"http://127.0.0.1:{port}",
        ready="/ui/runs",
    )
    try:
        yield server
    finally:
        server.stop()


def test_the_list_sorts_filters_and_compares_in_the_browser(
    browser: Browser, synthetic_ui: Server, synthetic: Workspace
) -> None:
    base = synthetic_ui.base
    context = new_context(browser)
    try:
        page = check_page(context, f"{base}/ui/runs?sort=metric.roc_auc:desc", "runs-search")
        visit = watch(page)
        page.evaluate("window.__kept = true")  # gone if the page were loaded again
        heading = page.locator("th[title='metric.accuracy'] a")
        heading.click()  # sorts by it, in place
        page.wait_for_url("**sort=metric.accuracy%3Adesc*")
        page.wait_for_selector("th[title='metric.accuracy'][aria-sort='descending']")
        expected = synthetic.runs.search_runs(
            RunQuery.of(sort="metric.accuracy:desc", columns=default_columns(synthetic))
        )
        assert _listed(page.content()) == [row.id for row in expected.rows]
        assert page.evaluate("window.__kept") is True
        # The filter keeps the sort the heading chose; a refused one is shown in place.
        page.fill("input[name=filter]", "metric.f1 > 0.8 and param.model = gbm or x")
        page.press("input[name=filter]", "Enter")
        page.wait_for_selector("#runs-error")
        assert "only 'and' joins conditions" in page.inner_text("#runs-error")
        page.fill("input[name=filter]", "metric.f1 > 0.8 and param.model = gbm")
        page.press("input[name=filter]", "Enter")
        page.wait_for_selector("table.runs")
        assert "sort=metric.accuracy%3Adesc" in page.url and "filter=metric.f1" in page.url
        expected = synthetic.runs.search_runs(
            RunQuery.of(
                "metric.f1 > 0.8 and param.model = gbm",
                sort="metric.accuracy:desc",
                columns=default_columns(synthetic),
            )
        )
        assert _listed(page.content()) == [row.id for row in expected.rows]
        assert f"{expected.total:,} runs" in page.inner_text("#runs")
        # Another column, chosen in the list of the params recorded.
        page.click("details.columns summary")
        page.check("input[name=columns][value='param.model']")
        page.click("form.filters button[type=submit]")
        page.wait_for_selector("th[title='param.model']")
        assert page.evaluate("window.__kept") is True
        shot(page, "runs-search-columns")
        # Nothing failed but the refused filter's answer (a 400, which the browser logs).
        assert [f for f in visit.failed if not f.endswith(" 400")] == []
        assert len(visit.failed) == 1 and "filter=" in visit.failed[0]
        assert [e for e in visit.errors if "status of 400" not in e] == []
        first, second = _listed(page.content())[:2]
        page.check(f"#pick-{first}")
        page.check(f"#pick-{second}")
        page.click("text=Compare the ticked runs")
        page.wait_for_url("**/ui/compare?run=*")
        assert "Compare 2 runs" in page.inner_text("h1")
        compare = check_page(context, page.url, "compare-synthetic")
        assert compare.locator("[data-chart] svg").count() == 1  # the metrics of both
    finally:
        context.close()


@pytest.fixture(scope="module")
def on_postgres(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """300 synthetic runs in a workspace whose metadata is on PostgreSQL (a team's server)."""
    from tests.services import create_database

    url = create_database(postgres_url, "ui_runs_search")
    home = tmp_path_factory.mktemp("on_postgres") / "ws"
    workspace = Workspace.open(Settings(home=home, database_url=url, n_jobs=1, user="tester"))
    seed_runs(workspace.metadata, 300, params=12, metrics=12, newest=NEWEST)
    yield workspace
    workspace.close()


def test_the_list_reads_postgresql_the_same_way(on_postgres: Workspace) -> None:
    with on_postgres.metadata.transaction() as session:
        names = {
            kind: [
                str(key)
                for key in session.scalars(
                    select(RunValue.key).where(RunValue.kind == kind).distinct().order_by("key")
                )
            ]
            for kind in ("metric", "param")
        }
    with TestClient(local_app(on_postgres), base_url="http://127.0.0.1:8765") as client:
        for params, filter_, sort in (
            ({"sort": "metric.m0:desc"}, "", "metric.m0:desc"),
            ({"filter": 'param.p0 = "5"'}, 'param.p0 = "5"', None),
            ({"sort": "metric.f1:asc", "page": "3"}, "", "metric.f1:asc"),
            (
                {"filter": "param.max_depth > 5 and tag.team = risk", "sort": "param.model:asc"},
                "param.max_depth > 5 and tag.team = risk",
                "param.model:asc",
            ),
        ):
            answer = client.get("/ui/runs", params=params)
            assert answer.status_code == 200, (params, answer.text[:300])
            query = RunQuery.of(
                filter_,
                sort=sort,
                page=int(params.get("page", "1")),
                columns=default_columns(on_postgres),
            )
            assert _listed(answer.text) == [r.id for r in on_postgres.runs.search_runs(query).rows]
        page = client.get("/ui/runs").text
        offered = re.findall(r'name="columns" value="(metric|param)\.([^"]+)"', page)
        assert [key for kind, key in offered if kind == "metric"] == names["metric"]
        assert [key for kind, key in offered if kind == "param"] == names["param"]
        for params in ({"q": "a\x00"}, {"sort": "metric.\x00"}, {"tag": "\x00=x"}):
            assert client.get("/ui/runs", params=params).status_code == 400, params
