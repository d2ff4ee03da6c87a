"""The dataset pages of the web UI: the list in pages, a dataset, its quarantine filtered and in
pages, the diff of two versions, and odd query parameters answered with a page or a 4xx.

A messy CSV is ingested with the real ``mlship data validate`` (two versions of it), and the
pages are read from the HTML the real app serves (Starlette's test client); the browser test
opens them in headless Chromium on the ``trained`` workspace, whose churn data has quarantined
rows.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser
from sqlalchemy import event

from mlship.server.app import create_app
from mlship.store.dataset_queries import page_of_datasets, runs_of_dataset
from mlship.ui import local_app
from mlship.ui.datasets import PAGE_SIZE
from mlship.workspace import Workspace
from tests.conftest import invoke_cli
from tests.serving import Server
from tests.ui.harness import check_page, new_context, shot, watch

ROWS = 150
SPEC = """\
name: people
task: classification
sources:
  - {name: people, path: people.csv}
columns:
  - {name: person_id, type: string, role: id, nullable: false}
  - {name: email, type: string, role: pii}
  - {name: age, type: integer, checks: [{min: 0, max: 120}]}
  - {name: plan, type: category, checks: [{allowed: [basic, plus, pro]}]}
EXTRA
  - {name: churned, type: category, role: target}
checks:
  duplicates: allow
  max_quarantine: 0.9
models:
  - {estimator: logistic_regression}
metric: accuracy
"""
HOSTILE = "<script>alert(1)</script>"


def _age(i: int) -> str:
    """Every 7th person's age is not a number, every 5th (not 7th) is past the maximum."""
    return "old" if i % 7 == 0 else "200" if i % 5 == 0 else str(20 + i % 50)


def _plan(i: int) -> str:
    return HOSTILE if i % 11 == 0 else ("basic", "plus", "pro")[i % 3]


def _project(root: Path, *, shift: int = 0, extra: bool = False) -> Path:
    """``people.csv`` (line ``i + 2`` is person ``i``) and its spec; ``shift`` ages everyone,
    ``extra`` adds a ``score`` column."""
    root.mkdir(parents=True, exist_ok=True)
    header = "person_id,email,age,plan,churned" + (",score" if extra else "")
    lines = [header]
    for i in range(ROWS):
        age = _age(i) if not _age(i).isdigit() or int(_age(i)) > 120 else str(int(_age(i)) + shift)
        line = f"P{i},user{i}@example.com,{age},{_plan(i)},{'yes' if i % 2 else 'no'}"
        lines.append(line + (f",{i / 10}" if extra else ""))
    (root / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = root / "pipeline.yaml"
    column = "  - {name: score, type: float}" if extra else ""
    spec.write_text(SPEC.replace("EXTRA\n", column + "\n" if column else ""), encoding="utf-8")
    return spec


def _quarantined(check: str | None = None) -> set[str]:
    """The lines the data checks should quarantine (``check``: for that reason alone)."""
    by_check = {
        "type": {i for i in range(ROWS) if i % 7 == 0},
        "max": {i for i in range(ROWS) if i % 5 == 0 and i % 7},
        "allowed": {i for i in range(ROWS) if i % 11 == 0},
    }
    chosen = by_check[check] if check else set().union(*by_check.values())
    return {f"line {i + 2}" for i in chosen}


@pytest.fixture
def people(workspace: Workspace, tmp_path: Path) -> Iterator[TestClient]:
    """Two versions of ``people``: the second ages everyone by 30 years and adds ``score``."""
    home = workspace.settings.home_resolved
    invoke_cli("data", "validate", str(_project(tmp_path / "v1")), home=home)
    invoke_cli("data", "validate", str(_project(tmp_path / "v2", shift=30, extra=True)), home=home)
    with TestClient(local_app(workspace), base_url="http://127.0.0.1:8765") as client:
        yield client


def _lines(html: str) -> list[str]:
    return re.findall(r'<th scope="row" rowspan="\d+">people (line \d+)', html)


def test_the_quarantine_in_pages_and_filtered_by_check_and_column(people: TestClient) -> None:
    expected = _quarantined()
    assert len(expected) > PAGE_SIZE  # two pages
    first = people.get("/ui/datasets/people~1/quarantine")
    assert first.status_code == 200, first.text
    assert f"{len(expected)} of {len(expected)} quarantined rows match, page 1 of 2" in first.text
    second = people.get("/ui/datasets/people~1/quarantine", params={"page": 2})
    listed = _lines(first.text) + _lines(second.text)
    assert len(_lines(first.text)) == PAGE_SIZE and set(listed) == expected
    assert len(listed) == len(expected)  # no row on both pages
    for check in ("type", "max", "allowed"):
        page = people.get("/ui/datasets/people~1/quarantine", params={"check": check})
        assert set(_lines(page.text)) == _quarantined(check), check
    by_column = people.get(
        "/ui/datasets/people~1/quarantine", params={"check": "max", "column": "age"}
    )
    assert set(_lines(by_column.text)) == _quarantined("max")
    assert "age: 200 is above the maximum 120" in by_column.text
    nothing = people.get(
        "/ui/datasets/people~1/quarantine", params={"check": "allowed", "column": "age"}
    )
    assert nothing.status_code == 200 and "No quarantined row matches." in nothing.text
    # Links to the next page keep the filter.
    typed = people.get("/ui/datasets/people~1/quarantine", params={"check": "type"})
    assert "line 9" in typed.text and "age: &#39;old&#39; is not an integer" in typed.text


def test_quarantined_values_are_escaped_and_private_ones_hidden(people: TestClient) -> None:
    pages = [
        people.get("/ui/datasets/people~1/quarantine", params={"page": n}).text for n in (1, 2)
    ]
    text = "".join(pages)
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the value and its reason, as text
    assert "@example.com" not in text and "(private value)" in text


def test_a_filter_the_quarantine_has_not_is_refused_naming_the_choices(people: TestClient) -> None:
    answer = people.get("/ui/datasets/people~1/quarantine", params={"column": "nope"})
    assert answer.status_code == 400
    assert "column: expected one of age, plan, got &#39;nope&#39;" in answer.text
    answer = people.get("/ui/datasets/people~1/quarantine", params={"page": "0"})
    assert answer.status_code == 400 and "page: expected a page number from 1" in answer.text
    assert people.get("/ui/datasets/nosuch/quarantine").status_code == 404


def test_the_dataset_page_shows_schema_profile_checks_and_sources(people: TestClient) -> None:
    page = people.get("/ui/datasets/people")
    assert page.status_code == 200
    text = page.text
    assert "<code>score</code>" in text and "min: 0, max: 120 (error)" in text
    assert "allowed: basic, plus, pro (error)" in text
    assert '<span class="pill warn">private</span>' in text
    assert "@example.com" not in text  # the private column's top values are not charted
    assert "A private column: its values are not shown." in text
    assert re.search(r"people\.csv</code></td>\s*<td class=\"num\">150</td>", text)
    assert "No run has trained on this dataset." in text
    assert '"type": "bar"' in text  # the columns' charts, as ECharts options


def test_the_diff_of_two_versions(people: TestClient) -> None:
    answer = people.get("/ui/datasets/people/diff", params={"against": "people~1"})
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "added <code>score</code>" in text
    assert "Distribution shift by column" in text
    row = re.search(r"<td><code>age</code></td>.*?</tr>", text, re.S)
    assert row is not None
    assert '<span class="pill error">' in row.group(0)  # thirty years older: shifted
    assert "→" in row.group(0)
    same = people.get("/ui/datasets/people/diff", params={"against": "people"})
    assert same.status_code == 200 and "The same columns with the same types." in same.text
    assert people.get("/ui/datasets/people/diff").status_code == 400
    assert people.get("/ui/datasets/people/diff", params={"against": "zz"}).status_code == 404


def _dataset(workspace: Workspace, i: int, pipeline: str) -> None:
    """A dataset recorded as an older mlship did: its values stored, but no profile."""
    buffer = io.BytesIO()
    pl.DataFrame({"x": list(range(i + 1))}).write_parquet(buffer)
    artifact = workspace.artifacts.put_bytes(buffer.getvalue()).sha256
    workspace.tracking.get_or_add_dataset(
        f"{i:064x}", artifact, i, [{"name": "x"}], [], pipeline=pipeline
    )


def test_the_list_in_pages_of_fifty_newest_first_and_by_pipeline(workspace: Workspace) -> None:
    for i in range(120):
        _dataset(workspace, i, "even" if i % 2 == 0 else "odd")
    newest = [f"{i:064x}"[:12] for i in reversed(range(120))]
    with TestClient(local_app(workspace), base_url="http://127.0.0.1:8765") as client:
        first = client.get("/ui/datasets")
        listed = re.findall(r"<code>([0-9a-f]{12})</code></a></td>", first.text)
        assert listed == newest[:PAGE_SIZE]
        assert "120 datasets, page 1 of 3, newest first." in first.text
        third = client.get("/ui/datasets", params={"page": 3})
        assert re.findall(r"<code>([0-9a-f]{12})</code></a></td>", third.text) == newest[100:]
        odd = client.get("/ui/datasets", params={"pipeline": "odd", "page": 2})
        expected = [f"{i:064x}"[:12] for i in reversed(range(120)) if i % 2][PAGE_SIZE:]
        assert re.findall(r"<code>([0-9a-f]{12})</code></a></td>", odd.text) == expected
        assert 'href="/ui/datasets?pipeline=odd"' in odd.text  # the previous page keeps it
        far = client.get("/ui/datasets", params={"page": 40})  # the last page, not an empty one
        assert "page 3 of 3" in far.text


def test_the_lists_read_an_index(workspace: Workspace) -> None:
    """SQLite's plan for the list and a dataset's runs names the indexes, not a scan."""
    _dataset(workspace, 1, "p")
    statements: list[tuple[str, Any]] = []
    engine = workspace.metadata.engine

    def keep(_conn: object, _cursor: object, statement: str, params: Any, *_args: object) -> None:
        statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        page_of_datasets(workspace.metadata, pipeline=None, offset=0, limit=50)
        runs_of_dataset(workspace.metadata, 1)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    selects = [(s, p) for s, p in statements if "ORDER BY" in s]
    assert len(selects) == 2
    plans = []
    with engine.connect() as connection:
        for statement, params in selects:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            plans.append(" ".join(str(row[-1]) for row in rows))
    assert "ix_datasets_created_at" in plans[0], plans[0]
    assert "ix_runs_dataset_id" in plans[1], plans[1]


@settings(
    derandomize=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from(["check", "column", "page", "against", "pipeline"]),
        st.one_of(st.text(max_size=30), st.sampled_from(["type", "age", "2", "people~1"])),
        max_size=4,
    ),
    ref=st.sampled_from(["people", "people~1", "people~9", "0", "%2e%2e", "people~x"]),
)
def test_odd_query_parameters_get_a_page_or_a_4xx_never_a_500(
    people: TestClient, params: dict[str, str], ref: str
) -> None:
    for path in (
        "/ui/datasets",
        f"/ui/datasets/{ref}",
        f"/ui/datasets/{ref}/quarantine",
        f"/ui/datasets/{ref}/diff",
    ):
        answer = people.get(path, params=params)
        assert answer.status_code in (200, 400, 404), (path, params, answer.text[:300])


def test_a_viewer_reads_the_dataset_pages_on_the_server(workspace: Workspace) -> None:
    _dataset(workspace, 7, "p")
    workspace.users.add("vic", "viewer")
    token = workspace.users.create_token("vic", "browser").secret
    with TestClient(create_app(workspace), follow_redirects=False) as client:
        assert client.get("/ui/datasets").status_code == 303  # sign in first
        form = client.get("/ui/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        client.post("/ui/signin", data={"csrf": csrf.group(1), "token": token})
        listed = client.get("/ui/datasets")
        assert listed.status_code == 200 and f"{7:064x}"[:12] in listed.text
        assert client.get(f"/ui/datasets/{7:064x}").status_code == 200
        assert token not in listed.text


def test_the_dataset_pages_in_a_browser(
    browser: Browser, local_ui: Server, trained: Workspace
) -> None:
    dataset = trained.datasets.list_datasets(1)[0]
    run = trained.runs.list_runs()[0]
    assert dataset.n_quarantined > 0
    base, ref = local_ui.base, dataset.data_hash
    context = new_context(browser)
    try:
        listed = check_page(context, f"{base}/ui/datasets", "datasets")
        assert listed.locator("tbody tr").count() == 1
        assert listed.locator("nav[aria-label=Sections] a[aria-current=page]").inner_text() == (
            "Datasets"
        )
        page = check_page(context, f"{base}/ui/datasets/{ref}", "dataset")
        charts = page.locator("[data-chart]")
        assert charts.count() >= 5
        for index in range(charts.count()):
            assert charts.nth(index).locator("svg").count() == 1  # drawn by ECharts
        assert run.id[:8] in page.inner_text("#main")  # the run trained on it
        quarantine = check_page(context, f"{base}/ui/datasets/{ref}/quarantine", "quarantine")
        rows = quarantine.locator("tbody th[scope=row]")
        assert rows.count() == dataset.n_quarantined
        check_page(context, f"{base}/ui/datasets/{ref}/quarantine?check=max", "quarantine-max")
        diff = check_page(context, f"{base}/ui/datasets/{ref}/diff?against={ref}", "dataset-diff")
        assert diff.locator("[data-chart] svg").count() == 1
    finally:
        context.close()


def test_filtering_the_quarantine_works_with_scripts_off(
    browser: Browser, local_ui: Server, trained: Workspace
) -> None:
    dataset = trained.datasets.list_datasets(1)[0]
    context = new_context(browser, javascript=False)
    try:
        page = context.new_page()
        visit = watch(page)
        page.goto(f"{local_ui.base}/ui/datasets")
        page.click(f"a[href$='/datasets/{dataset.data_hash}/quarantine']")
        page.wait_for_url("**/quarantine")
        page.select_option("select[name=check]", "duplicate row")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**check=duplicate+row*")
        rows = page.locator("tbody th[scope=row]")
        assert rows.count() >= 1
        assert all("duplicate of an earlier row" in text for text in [page.inner_text("tbody")])
        shot(page, "quarantine-no-script")
        assert visit.failed == []
    finally:
        context.close()
