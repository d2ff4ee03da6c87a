"""Every page of ``mlship ui`` in headless Chromium: it renders, with no console error, no
failed request and no serious accessibility violation, and works with scripts off."""

from __future__ import annotations

from playwright.sync_api import Browser

from mlship.workspace import Workspace
from tests.serving import Server
from tests.ui.harness import check_page, new_context, shot, watch


def test_every_page_renders_cleanly_and_passes_axe(
    browser: Browser, local_ui: Server, trained: Workspace
) -> None:
    run = trained.runs.list_runs()[0]
    base = local_ui.base
    context = new_context(browser)
    try:
        runs = check_page(context, f"{base}/ui/runs", "runs")
        assert runs.locator("tbody tr").count() == 1
        assert "local workspace, no sign-in on localhost" in runs.inner_text("header")
        assert runs.locator("form[action='/ui/signout']").count() == 0
        page = check_page(context, f"{base}/ui/runs/{run.id}", "run")
        assert page.locator("h2#leaderboard").is_visible()
        assert page.locator("text=Add note").count() == 1  # the local user may do everything
        check_page(context, f"{base}/ui/runs/{run.id}/report", "run-report")
        compare = check_page(context, f"{base}/ui/compare?run={run.id}", "compare")
        charts = compare.locator("[data-chart]")
        assert charts.count() >= 2  # the metrics and at least one tuning search's trials
        for index in range(charts.count()):
            assert charts.nth(index).locator("svg").count() == 1  # drawn by ECharts
        assert "Tuning trials of" in compare.inner_text("main")
        check_page(context, f"{base}/ui/runs?q=nothing-matches-this", "runs-empty")
    finally:
        context.close()


def test_filtering_and_comparing_work_with_scripts_off(
    browser: Browser, local_ui: Server, trained: Workspace
) -> None:
    run = trained.runs.list_runs()[0]
    context = new_context(browser, javascript=False)
    try:
        page = context.new_page()
        visit = watch(page)
        page.goto(f"{local_ui.base}/ui/runs")
        page.fill("input[name=q]", run.pipeline)
        page.select_option("select[name=status]", run.status)
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/ui/runs?*")
        assert f"status={run.status}" in page.url
        assert page.locator("tbody tr").count() == 1
        page.fill("input[name=q]", "no-such-run-anywhere")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**q=no-such-run-anywhere*")
        assert "No run matches." in page.inner_text("main")
        page.goto(f"{local_ui.base}/ui/runs")
        page.check(f"#pick-{run.id}")
        page.click("text=Compare the ticked runs")
        page.wait_for_url("**/ui/compare?run=*")
        assert "Compare 1 run" in page.inner_text("h1")
        shot(page, "compare-no-script")
        assert visit.failed == []
    finally:
        context.close()


def test_a_filter_swaps_the_table_in_place_with_htmx(
    browser: Browser, local_ui: Server, trained: Workspace
) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        visit = watch(page)
        page.goto(f"{local_ui.base}/ui/runs", wait_until="networkidle")
        page.evaluate("window.__kept = true")  # gone if the page were loaded again
        page.select_option("select[name=status]", "failed")
        page.wait_for_url("**status=failed*")
        page.wait_for_selector("text=No run matches.")
        assert page.evaluate("window.__kept") is True
        assert page.locator("h1").count() == 1  # the table, not a whole page inside the page
        assert visit.errors == [] and visit.failed == []
        page.fill("input[name=filter]", "tag.team")  # the server's message takes the table's place
        page.press("input[name=filter]", "Enter")
        page.wait_for_selector("#runs [role=alert]")
        assert "filter: expected a comparison" in page.inner_text("#runs")
        assert "after 'tag.team' at character 9" in page.inner_text("#runs")
        assert page.locator("header").count() == 1 and page.evaluate("window.__kept") is True
    finally:
        context.close()


def test_a_page_asked_for_under_another_name_is_refused(local_ui: Server) -> None:
    import httpx

    answer = httpx.get(f"{local_ui.base}/ui/runs", headers={"Host": "attacker.example"})
    assert answer.status_code == 421
    assert "served on localhost only" in answer.text
