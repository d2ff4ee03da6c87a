"""The model pages: the list, a model, a version (lineage graph, diff, card), and the forms that
move versions, on ``mlship ui`` and on a real ``mlship server`` with users of several roles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser

from mlship.config import Settings
from mlship.server.app import create_app
from mlship.workspace import Workspace
from tests.conftest import copy_workspace
from tests.serving import Server
from tests.ui.harness import (
    check_page,
    new_context,
    shot,
    sign_in,
    team_server,
    watch,
)

USERS = {"vic": "viewer", "sci": "scientist", "rev": "reviewer"}


# -- mlship ui: every page renders, in the browser -------------------------------------------------


def test_the_model_pages_render_cleanly_and_pass_axe(browser: Browser, local_ui: Server) -> None:
    base = f"{local_ui.base}/ui"
    context = new_context(browser)
    try:
        listed = check_page(context, f"{base}/models", "models")
        assert listed.locator("nav a[aria-current=page]").inner_text() == "Models"
        row = listed.locator("tbody tr").first
        assert "churn" in row.inner_text() and "tester" in row.inner_text()
        model = check_page(context, f"{base}/models/churn", "model")
        assert model.locator("#versions-table tbody tr").count() == 1
        assert "verified" in model.inner_text("#versions-table tbody")
        history = model.inner_text("#history-table tbody")
        assert "registered" in history and "tester" in history
        version = check_page(context, f"{base}/models/churn/versions/1", "model-version")
        assert "stored bytes match" in version.inner_text("dl.facts")
        assert version.locator("[data-chart] svg").count() == 1  # the lineage, drawn by ECharts
        lineage = version.inner_text("ol.lineage")
        assert "source" in lineage and "dataset" in lineage and "churn:1" in lineage
        run = version.locator("ol.lineage a", has_text="run ").get_attribute("href")
        assert run is not None and run.startswith("/ui/runs/")
        assert (
            version.locator("iframe.card-frame").get_attribute("title") == "Model card of churn:1"
        )
        assert version.locator("button", has_text="Move to staging").count() == 1  # local: admin
        diff = check_page(
            context, f"{base}/models/churn/versions/1?against=1&all=1#diff", "model-diff"
        )
        assert "churn:1 → churn:1: 0 of" in diff.inner_text("main")
        assert diff.locator("#diff-table tbody tr").count() > 5  # every field, all the same
        card = check_page(context, f"{base}/models/churn/versions/1/card", "model-card")
        assert "Model card: churn:1" in card.inner_text("h1")
    finally:
        context.close()


def test_the_lineage_and_the_diff_work_with_scripts_off(browser: Browser, local_ui: Server) -> None:
    context = new_context(browser, javascript=False)
    try:
        page = context.new_page()
        visit = watch(page)
        page.goto(f"{local_ui.base}/ui/models/churn/versions/1")
        assert page.locator("ol.lineage li").count() >= 4  # a source, the dataset, run, version
        page.fill("input[name=against]", "1")
        page.click("#diff-form button[type=submit]")
        page.wait_for_url("**against=1*")
        assert "The two versions are the same in every compared field." in page.inner_text("main")
        page.fill("input[name=against]", "x")
        page.click("#diff-form button[type=submit]")
        page.wait_for_url("**against=x*")
        assert "against: expected a version number from 1, got 'x'" in page.inner_text("main")
        shot(page, "model-version-no-script")
        failed = [line for line in visit.failed if not line.endswith(" 400")]
        assert failed == []
    finally:
        context.close()


# -- a real mlship server: roles, CSRF, a stage move that lands in the history -------------


@pytest.fixture(scope="module")
def team(
    trained: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    """``mlship server`` on a copy of the trained workspace, with a viewer, a scientist and a
    reviewer."""
    home = copy_workspace(trained, tmp_path_factory.mktemp("models-team"))
    with team_server(home, USERS) as started:
        yield started


def _stage(server: Server, token: str) -> str:
    with server.client(token) as client:
        answer = client.get("/api/v1/models/churn/versions/1")
        answer.raise_for_status()
        return str(answer.json()["stage"])


def test_a_viewer_sees_no_action_and_a_forged_move_is_refused(
    browser: Browser, team: tuple[Server, dict[str, str]]
) -> None:
    server, tokens = team
    context = new_context(browser)
    try:
        page = context.new_page()
        sign_in(page, server.base, tokens["vic"], "/ui/models/churn/versions/1")
        check_page(context, f"{server.base}/ui/models/churn/versions/1", "model-version-viewer")
        page.reload()
        assert page.locator("main form[method=post]").count() == 0  # no move, request, note
        page.goto(f"{server.base}/ui/models/churn")
        assert page.locator("main form[method=post]").count() == 0
        csrf = page.get_attribute("form[action='/ui/signout'] input[name=csrf]", "value")
        assert csrf
        before = _stage(server, tokens["vic"])
        forged = context.request.post(
            f"{server.base}/ui/models/churn/versions/1/stage",
            form={"stage": "archived", "csrf": csrf},
        )
        assert forged.status == 403 and "vic is a viewer; this needs the scientist role" in (
            forged.text()
        )
        assert _stage(server, tokens["vic"]) == before
        no_token = context.request.post(
            f"{server.base}/ui/models/churn/versions/1/stage", form={"stage": "archived"}
        )
        assert no_token.status == 403 and "CSRF token is missing or wrong" in no_token.text()
    finally:
        context.close()


def test_a_stage_move_and_a_request_through_the_forms_land_in_the_history(
    browser: Browser, team: tuple[Server, dict[str, str]]
) -> None:
    server, tokens = team
    context = new_context(browser)
    try:
        page = context.new_page()
        visit = watch(page)
        sign_in(page, server.base, tokens["sci"], "/ui/models/churn/versions/1")
        page.fill("#reason-staging", "ready for shadow traffic")
        page.click("button:has-text('Move to staging')")
        page.wait_for_url("**/ui/models/churn#history")
        first = page.locator("#history-table tbody tr").first.inner_text()
        assert "stage" in first and "none → staging" in first and "sci" in first
        assert "ready for shadow traffic" in first
        assert "v1" in page.inner_text("dl.facts")  # staging: 1
        with server.client(tokens["sci"]) as client:
            events = client.get("/api/v1/models/churn/history").json()
        assert (events[-1]["action"], events[-1]["user"], events[-1]["to_stage"]) == (
            "stage",
            "sci",
            "staging",
        )
        assert events[-1]["details"]["reason"] == "ready for shadow traffic"

        page.goto(f"{server.base}/ui/models/churn/versions/1")
        page.fill("#reason-promotion", "better recall")
        page.click("button:has-text('Request promotion to production')")
        page.wait_for_url("**/ui/models/churn/versions/1#promotion")
        link = page.locator("#pending a")
        href = link.get_attribute("href")
        assert href is not None and re.fullmatch(r"/ui/models/churn/requests/\d+", href)
        page.goto(f"{server.base}/ui/models/churn")
        assert page.locator(f"#requests ~ ul a[href='{href}']").count() == 1
        assert (
            page.locator("button", has_text="Roll back").count() == 0
        )  # no version in production yet
        shot(page, "model-with-request")
        # A second request for the same version: the registry's refusal, as a 409 page.
        csrf = page.get_attribute("form[action='/ui/signout'] input[name=csrf]", "value")
        assert csrf
        again = context.request.post(
            f"{server.base}/ui/models/churn/versions/1/promotion", form={"csrf": csrf}
        )
        assert again.status == 409 and "already has a pending request" in again.text()

        with server.client(tokens["rev"]) as client:  # the reviewer approves, through the API
            client.post("/api/v1/models/churn/versions/1/approve", json={}).raise_for_status()
        page.goto(f"{server.base}/ui/models/churn")
        assert (
            page.locator("button", has_text="Roll back").count() == 0
        )  # a scientist may not roll back
        forged = context.request.post(
            f"{server.base}/ui/models/churn/rollback", form={"csrf": csrf, "reason": "x"}
        )
        assert forged.status == 403 and "needs the reviewer role" in forged.text()
        assert visit.errors == []
    finally:
        context.close()

    context = new_context(browser)
    try:
        page = context.new_page()
        sign_in(page, server.base, tokens["rev"], "/ui/models/churn")
        assert "v1 in production" in page.inner_text("main").lower()  # the badge is in capitals
        page.fill("#rollback-reason", "latency doubled")
        page.click("button:has-text('Roll back')")
        # Allowed to the reviewer, refused by the registry: the first production version.
        assert "nothing to roll back to" in page.inner_text("main")
        assert _stage(server, tokens["rev"]) == "production"
    finally:
        context.close()


# -- odd input: a page or a 4xx, never a 500 -----------------------------------------------


@pytest.fixture(scope="module")
def app_client(
    trained: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The server's app over a copy of the trained workspace, signed in as a viewer."""
    home = copy_workspace(trained, tmp_path_factory.mktemp("models-app"))
    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    workspace.users.add("vic", "viewer")
    token = workspace.users.create_token("vic", "browser").secret
    with TestClient(create_app(workspace), follow_redirects=False) as client:
        form = client.get("/ui/signin")
        found = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert found
        answer = client.post("/ui/signin", data={"csrf": found.group(1), "token": token})
        assert answer.status_code == 303
        yield client
    workspace.close()


def test_bad_references_get_a_clear_4xx(app_client: TestClient) -> None:
    answer = app_client.get("/ui/models/nope")
    assert answer.status_code == 404 and "no model named &#39;nope&#39;" in answer.text
    answer = app_client.get("/ui/models/churn/versions/7")
    assert answer.status_code == 404 and "model &#39;churn&#39; has no version 7" in answer.text
    answer = app_client.get("/ui/models/churn/versions/0")
    assert answer.status_code == 400 and "version: expected a version number from 1" in answer.text
    answer = app_client.get("/ui/models/churn/versions/1?against=9")
    assert answer.status_code == 404 and "has no version 9" in answer.text
    answer = app_client.get("/ui/models?page=0")
    assert answer.status_code == 400 and "page: expected a page number from 1, got &#39;0&#39;" in (
        answer.text
    )
    listed = app_client.get("/ui/models?page=99")  # past the end: the last page
    assert listed.status_code == 200 and "churn" in listed.text


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from(["q", "owner", "page", "history", "against", "all"]),
        st.text(max_size=20),
        max_size=4,
    ),
    name=st.text(max_size=12),
    number=st.text(max_size=6),
)
def test_odd_query_parameters_and_paths_get_a_page_or_a_4xx(
    app_client: TestClient, params: dict[str, str], name: str, number: str
) -> None:
    assume(name not in (".", "..") and number not in (".", ".."))  # the client resolves those
    name_path, number_path = quote(name or "churn", safe=""), quote(number or "1", safe="")
    for path in (
        "/ui/models",
        "/ui/models/churn",
        "/ui/models/churn/versions/1",
        f"/ui/models/{name_path}",
        f"/ui/models/churn/versions/{number_path}",
        f"/ui/models/{name_path}/versions/{number_path}/card",
    ):
        answer = app_client.get(path, params=params)
        assert answer.status_code in (200, 400, 404), (path, params, answer.text[:300])


# -- many models and versions: cut into pages by the database --------------------------------------


def _many(workspace: Workspace, versions: int, models: int) -> None:
    """``versions`` versions of churn in all, and ``models`` more models of one version each,
    written as registration writes them (a version row and its history entry)."""
    from sqlalchemy import select

    from mlship.store.tables import ModelEvent, ModelVersion, RegisteredModel

    columns = [c.key for c in ModelVersion.__table__.columns if c.key not in ("id", "model_id")]
    with workspace.metadata.transaction() as session:
        first = session.scalars(select(ModelVersion)).one()
        copied = {key: getattr(first, key) for key in columns if key != "version"}

        def add(model_id: int, number: int) -> None:
            session.add(ModelVersion(model_id=model_id, version=number, **copied))
            session.add(
                ModelEvent(
                    model_id=model_id,
                    version=number,
                    action="registered",
                    to_stage="none",
                    user="bulk",
                    details={},
                )
            )

        for number in range(2, versions + 1):
            add(first.model_id, number)
        for index in range(models):
            model = RegisteredModel(name=f"m{index:03d}", owner="bulk", tags={})
            session.add(model)
            session.flush()
            add(model.id, 1)


def test_long_lists_are_cut_into_pages(
    trained: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = copy_workspace(trained, tmp_path_factory.mktemp("models-many"))
    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    try:
        _many(workspace, versions=130, models=60)
        with TestClient(create_app(workspace), follow_redirects=False) as client:
            workspace.users.add("vic", "viewer")
            token = workspace.users.create_token("vic", "browser").secret
            form = client.get("/ui/signin")
            found = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert found
            client.post("/ui/signin", data={"csrf": found.group(1), "token": token})
            first = client.get("/ui/models").text
            assert "61 models, page 1 of 2." in first and 'rel="next"' in first
            second = client.get("/ui/models?page=2").text
            assert second.count("<tr>") == 1 + 11  # the header and the 11 models left
            only = client.get("/ui/models?owner=bulk&q=M05").text
            assert "10 models." in only and ">m059<" in only and ">churn<" not in only
            model = client.get("/ui/models/churn").text
            assert "130 versions, newest first; page 1 of 3." in model
            assert ">v130<" in model and ">v81<" in model and ">v80<" not in model
            assert "page 1 of 3" in model  # the history: 130 registrations
            last = client.get("/ui/models/churn?page=3&history=3").text
            versions = last.split('id="history"')[0]
            assert ">v1<" in versions and ">v30<" in versions and ">v31<" not in versions
            assert "page 3 of 3" in last and "Newer changes" in last
    finally:
        workspace.close()
