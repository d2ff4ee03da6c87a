"""The web UI under ``/ui`` on a real ``mlship server``, in headless Chromium: signing in with a
token, what a viewer is and is not shown, a forged form refused, signing out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

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

USERS = {"vic": "viewer", "sci": "scientist"}


@pytest.fixture(scope="module")
def team_ui(
    trained: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    """``mlship server`` on a copy of the trained workspace, with a viewer and a scientist."""
    home = copy_workspace(trained, tmp_path_factory.mktemp("team"))
    with team_server(home, USERS) as started:
        yield started


def test_a_viewer_signs_in_sees_no_form_for_writers_and_signs_out(
    browser: Browser, team_ui: tuple[Server, dict[str, str]], trained: Workspace
) -> None:
    server, tokens = team_ui
    run_id = trained.runs.list_runs()[0].id
    context = new_context(browser)
    try:
        check_page(context, f"{server.base}/ui/signin", "signin")
        page = context.new_page()
        visit = watch(page)
        sign_in(page, server.base, tokens["vic"], "/ui/runs")
        header = page.inner_text("header")
        assert "Signed in as vic" in header and "viewer" in header
        assert tokens["vic"] not in page.content()
        cookie = next(c for c in context.cookies() if c["name"] == "mlship_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
        check_page(context, f"{server.base}/ui/runs/{run_id}", "run-as-viewer")
        page.goto(f"{server.base}/ui/runs/{run_id}")
        assert page.locator("textarea[name=body]").count() == 0
        csrf = page.get_attribute("form[action='/ui/signout'] input[name=csrf]", "value")
        assert csrf
        forged = context.request.post(
            f"{server.base}/ui/runs/{run_id}/notes", form={"body": "sneaky", "csrf": csrf}
        )
        assert forged.status == 403 and "needs the scientist role" in forged.text()
        page.click("button:has-text('Sign out')")
        page.wait_for_url("**/ui/signin")
        assert not [c for c in context.cookies() if c["name"] == "mlship_session"]
        page.goto(f"{server.base}/ui/runs")
        page.wait_for_url("**/ui/signin?next=*")
        shot(page, "signed-out")
        assert visit.errors == []
    finally:
        context.close()


def test_a_scientist_adds_a_note_and_a_cross_site_form_is_refused(
    browser: Browser, team_ui: tuple[Server, dict[str, str]], trained: Workspace, tmp_path: Path
) -> None:
    server, tokens = team_ui
    run_id = trained.runs.list_runs()[0].id
    context = new_context(browser)
    try:
        page = context.new_page()
        sign_in(page, server.base, tokens["sci"], "/ui/runs")
        page.goto(f"{server.base}/ui/runs/{run_id}")
        page.fill("textarea[name=body]", "Holdout looks **fine**; ship it to staging.")
        page.click("button:has-text('Add note')")
        page.wait_for_url(f"**/ui/runs/{run_id}#notes")
        assert "Holdout looks **fine**" in page.inner_text("#main")
        shot(page, "run-with-note")
        # A form on another site, posting to the server with the browser's cookie but without
        # the page's CSRF token, is refused.
        attack = tmp_path / "attack.html"
        attack.write_text(
            f'<form method="post" action="{server.base}/ui/runs/{run_id}/notes">'
            '<input name="body" value="forged"><button>go</button></form>'
        )
        evil = context.new_page()
        evil.goto(attack.as_uri())
        with evil.expect_navigation():
            evil.click("button")
        notes = _notes(server, tokens["sci"], run_id)
        assert ("sci", "Holdout looks **fine**; ship it to staging.") in notes
        assert "forged" not in [body for _author, body in notes]
    finally:
        context.close()


def _notes(server: Server, token: str, run_id: str) -> list[tuple[str, str]]:
    """The run's notes, read through the API: (author, body)."""
    with server.client(token) as client:
        answer = client.get("/api/v1/notes", params={"kind": "run", "target": run_id})
        answer.raise_for_status()
        return [(note["author"], note["body"]) for note in answer.json()]
