"""The monitoring and admin pages over a workspace with served traffic, labels and alerts
(:mod:`tests.ui.monitored`): under ``/ui`` of the tracking server's real app through Starlette's
test client (what they show, who may see them, their forms, odd parameters answered with a page or
a 4xx), then in headless Chromium on ``mlship ui`` and on a real ``mlship server``."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser

from mlship.config import Settings
from mlship.server.app import create_app
from mlship.workspace import Workspace
from tests.browser import chromium
from tests.serving import Server
from tests.ui.harness import (
    check_page,
    client_sign_in,
    form_token,
    mlship_ui,
    new_context,
    shot,
    sign_in,
    watch,
)
from tests.ui.harness import team_server as team_server_at
from tests.ui.monitored import DRIFTED, NORMAL, REFUSED, Monitored, serve_traffic

ROLES = {"ada": "admin", "sci": "scientist", "vic": "viewer"}
Team = tuple[TestClient, Workspace, dict[str, str]]


@pytest.fixture(scope="module")
def monitored(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    return serve_traffic(trained, tmp_path_factory.mktemp("monitored"))


@pytest.fixture
def team(monitored: Monitored, tmp_path: Path) -> Iterator[Team]:
    """The server's app over a copy of the monitored workspace, a token per user of ROLES."""
    home = tmp_path / "ws"
    shutil.copytree(monitored.home, home)
    workspace = Workspace.open(Settings(home=home, user="tester"))
    tokens = {}
    for name, role in ROLES.items():
        workspace.users.add(name, role)
        tokens[name] = workspace.users.create_token(name, "browser").secret
    try:
        with TestClient(create_app(workspace), follow_redirects=False) as client:
            yield client, workspace, tokens
    finally:
        workspace.close()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_overview_lists_the_served_model_with_its_health_and_open_alerts(
    team: Team, monitored: Monitored
) -> None:
    client, _workspace, tokens = team
    client_sign_in(client, tokens["vic"])
    page = client.get("/ui/monitoring")
    assert page.status_code == 200
    text = _text(page.text)
    assert "1 model served requests in the last day" in text
    row = re.search(r"<tr>\s*<td><a href=\"/ui/monitoring/churn\?window=1d\">churn</a>.*?</tr>",
                    page.text, re.S)  # fmt: skip
    assert row, page.text
    cells = _text(row.group(0))
    assert f" {monitored.requests + REFUSED} " in cells  # answered and refused requests
    error_rate = REFUSED / (monitored.requests + REFUSED)
    assert f"{error_rate * 100:.2f}%" in cells
    assert "traffic-seen: suppressed" in cells and "drifted-features: suppressed" in cells
    assert 'href="/ui/admin/users"' not in page.text  # a viewer is not shown the admin pages
    hour = client.get("/ui/monitoring?window=1h")
    assert hour.status_code == 200 and "churn" in hour.text


def test_a_model_page_shows_drift_quality_performance_health_and_alerts(
    team: Team, monitored: Monitored
) -> None:
    client, _workspace, tokens = team
    client_sign_in(client, tokens["vic"])
    page = client.get("/ui/monitoring/churn?window=7d")
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "Monitoring: churn:1" in text
    judged = f"judged on {NORMAL + DRIFTED} rows ({monitored.requests} requests) of the last 7 days"
    assert judged in text
    drift = page.text[page.text.index('id="drift"') : page.text.index('id="quality"')]
    for column in ("age", "monthly_charges"):
        line = re.search(rf"<td>{column}</td>.*?</tr>", drift, re.S)
        assert line and "drift</span>" in line.group(0), column
    assert "wasserstein" in drift or "ks" in drift
    assert "Drift statistic per feature" in drift  # the bar chart's box
    quality = page.text[page.text.index('id="quality"') : page.text.index('id="performance"')]
    assert f"{REFUSED} requests refused for invalid input" in _text(quality)
    performance = _text(
        page.text[page.text.index('id="performance"') : page.text.index('id="health"')]
    )
    share = monitored.labelled / (NORMAL + DRIFTED)
    assert f"churn:1 route {NORMAL + DRIFTED} {monitored.labelled} {share * 100:.2f}%" in (
        performance
    )
    assert "on labelled traffic over time" in performance
    health = _text(page.text[page.text.index('id="health"') : page.text.index('id="alerts"')])
    assert f"{monitored.requests + REFUSED} requests" in health
    assert "Latency p50 and p99 (ms)" in health and "Requests and error rate" in health
    alerts = _text(page.text[page.text.index('id="alerts"') : page.text.index('id="canary"')])
    assert alerts.count("traffic-seen") == 2 and alerts.count("drifted-features") == 2
    assert "fired, delivered" in alerts and "suppressed" in alerts
    assert "Only one version answered in this window" in text
    assert "churn has no rollout." in text
    charts = re.search(r'<script type="application/json" id="charts">(.*?)</script>', page.text)
    assert charts and '"type": "bar"' in charts.group(1) and '"type": "time"' in charts.group(1)


def test_bad_windows_and_unknown_models_get_a_clear_4xx(team: Team) -> None:
    client, _workspace, tokens = team
    client_sign_in(client, tokens["vic"])
    answer = client.get("/ui/monitoring/churn?window=2y")
    assert answer.status_code == 400
    assert "window: expected one of 1h, 1d, 7d, got &#39;2y&#39;" in answer.text
    missing = client.get("/ui/monitoring/nosuchmodel")
    assert missing.status_code == 404 and "nosuchmodel" in missing.text
    assert client.get("/ui/monitoring?page=0").status_code == 400


def test_admin_pages_are_refused_to_a_scientist_and_a_viewer(team: Team) -> None:
    client, workspace, tokens = team
    for user in ("sci", "vic"):
        csrf = client_sign_in(client, tokens[user])
        for path in ("/ui/audit", "/ui/admin/users"):
            answer = client.get(path)
            assert answer.status_code == 403, (user, path)
            assert f"{user} is a {ROLES[user]}; this page is for admins only" in answer.text
        token_id = workspace.users.tokens("ada")[0].id
        forged = client.post(f"/ui/admin/tokens/{token_id}/revoke", data={"csrf": csrf})
        assert forged.status_code == 403 and "needs the admin role" in forged.text
        disable = {"csrf": csrf, "disabled": "true"}
        assert client.post("/ui/admin/users/ada/disabled", data=disable).status_code == 403
    assert all(t.revoked_at is None for t in workspace.users.tokens("ada"))
    assert not next(u for u in workspace.users.all() if u.name == "ada").disabled
    denied = workspace.audit.list(user="sci", outcome="denied")
    assert {e.action for e in denied} >= {"POST /ui/admin/users/ada/disabled"}


def test_an_admin_revokes_a_token_and_disables_a_user_through_the_pages(team: Team) -> None:
    client, workspace, tokens = team
    csrf = client_sign_in(client, tokens["ada"])
    page = client.get("/ui/admin/users")
    assert page.status_code == 200
    for secret in tokens.values():
        assert secret not in page.text and secret[12:] not in page.text
    sci_token = workspace.users.tokens("sci")[0]
    assert f"<code>{sci_token.prefix}…</code>" in page.text
    assert client.post(f"/ui/admin/tokens/{sci_token.id}/revoke", data={}).status_code == 403
    answer = client.post(f"/ui/admin/tokens/{sci_token.id}/revoke", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/admin/users#user-sci"
    assert workspace.users.tokens("sci")[0].revoked_at is not None
    row = re.search(rf'<tr id="token-{sci_token.id}">.*?</tr>', client.get("/ui/admin/users").text,
                    re.S)  # fmt: skip
    assert row and "revoked" in row.group(0) and "Revoke" not in row.group(0)
    answer = client.post("/ui/admin/users/vic/disabled", data={"csrf": csrf, "disabled": "true"})
    assert answer.status_code == 303
    assert next(u for u in workspace.users.all() if u.name == "vic").disabled
    own = client.post("/ui/admin/users/ada/disabled", data={"csrf": csrf, "disabled": "true"})
    assert own.status_code == 400 and "you cannot disable the user you are signed in as" in own.text
    odd = client.post("/ui/admin/users/vic/disabled", data={"csrf": csrf, "disabled": "maybe"})
    assert odd.status_code == 400
    assert client.post("/ui/admin/tokens/999/revoke", data={"csrf": csrf}).status_code == 404
    assert client.post("/ui/admin/tokens/x1/revoke", data={"csrf": csrf}).status_code == 400
    assert client.post("/ui/admin/users/nobody/disabled",
                       data={"csrf": csrf, "disabled": "true"}).status_code == 404  # fmt: skip
    entries = workspace.audit.list(user="ada", table="tokens")
    assert [(e.action, e.role) for e in entries] == [
        (f"POST /ui/admin/tokens/{sci_token.id}/revoke", "admin")
    ]
    assert workspace.audit.list(user="ada", table="users")[0].action == (
        "POST /ui/admin/users/vic/disabled"
    )
    # The signed-out scientist's and the disabled viewer's tokens no longer sign in.
    for user in ("sci", "vic"):
        client.cookies.clear()
        form = client.get("/ui/signin")
        refused = client.post(
            "/ui/signin", data={"csrf": form_token(form.text), "token": tokens[user]}
        )
        assert refused.status_code == 401


def test_the_audit_log_is_filtered_and_paged_on_the_server(team: Team) -> None:
    client, _workspace, tokens = team
    csrf = client_sign_in(client, tokens["ada"])
    for _ in range(3):  # 3 x (enable + disable) = 6 entries on the users table, by ada
        for state in ("true", "false"):
            client.post("/ui/admin/users/vic/disabled", data={"csrf": csrf, "disabled": state})
    everything = client.get("/ui/audit")
    assert everything.status_code == 200
    for secret in tokens.values():
        assert secret not in everything.text
    page = client.get("/ui/audit", params={"user": "ada", "table": "users"})
    ids = [int(i) for i in re.findall(r'<td class="num">(\d+)</td><td>', page.text)]
    assert len(ids) == 6 and ids == sorted(ids, reverse=True)
    assert "Older entries" not in page.text
    denied = client.get("/ui/audit", params={"outcome": "denied"})
    assert "No entry matches." in denied.text
    # Fifty a page: the next page starts below the last entry shown.
    for _ in range(26):
        for state in ("true", "false"):
            client.post("/ui/admin/users/vic/disabled", data={"csrf": csrf, "disabled": state})
    first = client.get("/ui/audit", params={"user": "ada", "action": "/disabled"})
    shown = [int(i) for i in re.findall(r'<td class="num">(\d+)</td><td>', first.text)]
    assert len(shown) == 50
    older = re.search(r'href="(/ui/audit\?[^"]+)" rel="next"', first.text)
    assert older and f"before={shown[-1]}" in older.group(1)
    second = client.get(older.group(1).replace("&amp;", "&"))
    rest = [int(i) for i in re.findall(r'<td class="num">(\d+)</td><td>', second.text)]
    assert len(rest) == 6 + 52 - 50 and max(rest) < min(shown)
    assert 'rel="next"' not in second.text
    later = client.get("/ui/audit", params={"since": "2999-01-01"})
    assert "No entry matches." in later.text
    bad = client.get("/ui/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since: expected a date or time" in bad.text
    reversed_span = client.get("/ui/audit", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert reversed_span.status_code == 400


@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["window", "page", "user", "action", "table", "outcome", "since", "until", "before"]
        ),
        st.one_of(st.sampled_from(["1h", "1d", "7d", "2", "0", "ok"]), st.text(max_size=30)),
        max_size=4,
    ),
    model=st.one_of(st.just("churn"), st.text(max_size=20)),
)
def test_odd_query_parameters_get_a_page_or_a_4xx_never_a_500(
    team: Team, params: dict[str, str], model: str
) -> None:
    client, _workspace, tokens = team
    if "mlship_session" not in client.cookies:
        client_sign_in(client, tokens["ada"])
    paths = ["/ui/monitoring", "/ui/audit", "/ui/admin/users"]
    named = quote(model, safe="")
    if named.strip(".") and (model != "churn" or params.get("window") in ("1h", None)):
        paths.append(f"/ui/monitoring/{named}")  # a monitoring pass over churn now and then
    for path in paths:
        answer = client.get(path, params=params)
        assert answer.status_code in (200, 400, 404), (path, params, answer.text[:300])


# -- in the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def local_monitoring(monitored: Monitored) -> Iterator[Server]:
    """``mlship ui`` on the monitored workspace."""
    with mlship_ui(monitored.home, ready="/ui/monitoring") as server:
        yield server


def test_the_monitoring_and_admin_pages_render_cleanly_with_their_charts(
    browser: Browser, local_monitoring: Server
) -> None:
    base = local_monitoring.base
    context = new_context(browser)
    try:
        listing = check_page(context, f"{base}/ui/monitoring", "monitoring")
        listing.click("a:has-text('churn')")
        listing.wait_for_url("**/ui/monitoring/churn?window=1d")
        page = check_page(context, f"{base}/ui/monitoring/churn?window=7d", "monitoring-model")
        charts = page.locator("[data-chart]")
        assert charts.count() == 4  # drift, performance, latency, requests and errors
        for index in range(charts.count()):
            assert charts.nth(index).locator("svg").count() == 1  # drawn by ECharts
        assert page.locator("header nav a[aria-current=page]").inner_text() == "Monitoring"
        audit = check_page(context, f"{base}/ui/audit?outcome=ok", "audit")
        assert audit.locator("tbody tr").count() >= 1
        users = check_page(context, f"{base}/ui/admin/users", "admin-users")
        assert "No user yet" in users.inner_text("main")  # the local workspace has none
        check_page(context, f"{base}/ui/monitoring?window=1h", "monitoring-hour")
    finally:
        context.close()


def test_the_window_is_chosen_with_scripts_off(browser: Browser, local_monitoring: Server) -> None:
    context = new_context(browser, javascript=False)
    try:
        page = context.new_page()
        visit = watch(page)
        page.goto(f"{local_monitoring.base}/ui/monitoring/churn")
        page.select_option("select[name=window]", "1h")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/ui/monitoring/churn?window=1h")
        assert "of the last hour" in page.inner_text("main")
        assert visit.failed == []
    finally:
        context.close()


@pytest.fixture(scope="module")
def team_server(
    monitored: Monitored, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    """``mlship server`` on a copy of the monitored workspace, with an admin and a scientist."""
    home = tmp_path_factory.mktemp("team-monitoring") / "ws"
    shutil.copytree(monitored.home, home)
    with team_server_at(home, {"ada": "admin", "sci": "scientist"}) as started:
        yield started


def test_on_a_server_a_scientist_is_refused_the_admin_pages_and_an_admin_revokes_a_token(
    browser: Browser, team_server: tuple[Server, dict[str, str]]
) -> None:
    server, tokens = team_server
    scientist = new_context(browser)
    admin = new_context(browser)
    try:
        page = scientist.new_page()
        sign_in(page, server.base, tokens["sci"], "/ui/monitoring")
        assert "churn" in page.inner_text("main")
        assert page.locator("header nav a:has-text('Admin')").count() == 0
        for path in ("/ui/audit", "/ui/admin/users"):
            answer = page.goto(f"{server.base}{path}")
            assert answer is not None and answer.status == 403, path
            assert "sci is a scientist; this page is for admins only" in page.inner_text("main")
        shot(page, "admin-refused")
        with server.client(tokens["sci"]) as client:
            assert client.get("/api/v1/whoami").status_code == 200

        page = admin.new_page()
        visit = watch(page)
        sign_in(page, server.base, tokens["ada"], "/ui/admin/users")
        seen = [page.content()]
        row = page.locator("section#user-sci tbody tr").first
        assert "live" in row.inner_text()
        row.locator("button:has-text('Revoke')").click()
        page.wait_for_url("**/ui/admin/users#user-sci")
        assert "revoked" in page.locator("section#user-sci tbody tr").first.inner_text()
        seen.append(page.content())
        shot(page, "admin-users-revoked")
        with server.client(tokens["sci"]) as client:
            assert client.get("/api/v1/whoami").status_code == 401  # the token no longer works
        for path in ("/ui/audit", "/ui/monitoring", "/ui/monitoring/churn?window=7d"):
            page.goto(f"{server.base}{path}")
            seen.append(page.content())
        assert "POST /ui/admin/tokens/" in seen[-3]  # the revocation is in the audit log
        for html in seen:
            for secret in tokens.values():
                assert secret not in html and secret[12:20] not in html
        assert visit.errors == [] and visit.failed == []
    finally:
        scientist.close()
        admin.close()
