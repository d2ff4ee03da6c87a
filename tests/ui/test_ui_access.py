"""The web UI under ``/ui`` on the tracking server: sign-in, sessions, CSRF, roles, secrets.

The server's real app over a real SQLite workspace, through Starlette's test client (cookies
kept as a browser keeps them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mlship.server.app import create_app
from mlship.store.tables import UiSession
from mlship.workspace import Workspace
from tests.ui.harness import client_sign_in, form_token

ROLES = {"ada": "admin", "sci": "scientist", "vic": "viewer"}
Served = tuple[TestClient, dict[str, str], str]
"""The test client of the server's app, a token per user, and a run's id."""


def _start(workspace: Workspace) -> str:
    return workspace.metadata.start_run(
        pipeline="churn",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={"name": "churn"},
        git_commit=None,
        environment={},
    )


@pytest.fixture
def server(workspace: Workspace) -> Iterator[Served]:
    """The server's app, a token per user of :data:`ROLES`, and one run."""
    tokens = {}
    for name, role in ROLES.items():
        workspace.users.add(name, role)
        tokens[name] = workspace.users.create_token(name, "browser").secret
    run_id = _start(workspace)
    with TestClient(create_app(workspace), follow_redirects=False) as client:
        yield client, tokens, run_id


def test_pages_need_a_session_and_send_the_browser_toclient_sign_in(server: Served) -> None:
    client, _tokens, run_id = server
    answer = client.get(f"/ui/runs/{run_id}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/signin?next=%2Fui%2Fruns%2F{run_id}"
    posted = client.post(f"/ui/runs/{run_id}/notes", data={"body": "x", "csrf": "x"})
    assert posted.status_code == 403


def test_sign_in_sets_a_hardened_session_cookie_and_never_shows_the_token(
    server: Served,
    workspace: Workspace,
) -> None:
    client, tokens, run_id = server
    form = client.get("/ui/signin?next=/ui/runs/" + run_id)
    answer = client.post(
        "/ui/signin",
        data={"csrf": form_token(form.text), "token": tokens["sci"], "next": f"/ui/runs/{run_id}"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/runs/{run_id}"
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "mlship_session=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert "Max-Age=28800" in cookie and "Secure" not in cookie  # plain HTTP here
    session_id = client.cookies["mlship_session"]
    assert session_id != tokens["sci"]
    with workspace.metadata.transaction() as session:
        stored = session.scalars(select(UiSession.id_sha256)).all()
    assert len(stored) == 1 and session_id not in stored[0] and len(stored[0]) == 64
    page = client.get(f"/ui/runs/{run_id}")
    assert "Signed in as <strong>sci</strong>" in page.text and ">scientist<" in page.text
    for secret in (tokens["sci"], session_id):
        assert secret not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"  # nothing of a signed-in page is kept
    assert page.headers["x-content-type-options"] == "nosniff"


def test_a_wrong_token_is_refused_without_saying_why_and_audited(
    server: Served, workspace: Workspace
) -> None:
    client, _tokens, _run_id = server
    form = client.get("/ui/signin")
    answer = client.post("/ui/signin", data={"csrf": form_token(form.text), "token": "mls_nope"})
    assert answer.status_code == 401
    assert "that token is not valid" in answer.text
    assert "mlship_session" not in client.cookies
    denied = workspace.audit.list(user="anonymous")
    assert [(e.outcome, e.action) for e in denied] == [("denied", "POST /ui/signin")]
    assert "mls_nope" not in str(denied[0].changes)


def test_the_session_cookie_is_secure_under_https(workspace: Workspace) -> None:
    workspace.users.add("ada", "admin")
    token = workspace.users.create_token("ada", "browser").secret
    with TestClient(create_app(workspace), base_url="https://mlship.test") as client:
        form = client.get("/ui/signin")
        assert "Secure" in form.headers["set-cookie"]  # the sign-in form's own cookie too
        answer = client.post(
            "/ui/signin",
            data={"csrf": form_token(form.text), "token": token},
            follow_redirects=False,
        )
        cookie = next(
            v for k, v in answer.headers.multi_items() if k == "set-cookie" and "session=" in v
        )
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_sign_in_itself_needs_its_form_token(server: Served) -> None:
    client, tokens, _run_id = server
    client.get("/ui/signin")
    answer = client.post("/ui/signin", data={"csrf": "forged", "token": tokens["ada"]})
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert "mlship_session" not in client.cookies


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(
    server: Served,
    workspace: Workspace,
) -> None:
    client, tokens, run_id = server
    csrf = client_sign_in(client, tokens["sci"])
    for sent in ({"body": "no token"}, {"body": "wrong", "csrf": csrf[:-2] + "xx"}):
        answer = client.post(f"/ui/runs/{run_id}/notes", data=sent)
        assert answer.status_code == 403 and "CSRF token is missing or wrong" in answer.text
    assert workspace.tracking.notes("run", run_id) == []
    answer = client.post(f"/ui/runs/{run_id}/notes", data={"body": "looks good", "csrf": csrf})
    assert answer.status_code == 303
    notes = workspace.tracking.notes("run", run_id)
    assert [(n.author, n.body) for n in notes] == [("sci", "looks good")]
    assert "looks good" in client.get(f"/ui/runs/{run_id}").text


def test_a_viewer_sees_no_note_form_and_a_forged_one_is_refused_and_audited(
    server: Served,
    workspace: Workspace,
) -> None:
    client, tokens, run_id = server
    csrf = client_sign_in(client, tokens["vic"])
    page = client.get(f"/ui/runs/{run_id}").text
    assert '/notes"' not in page and "Add note" not in page
    answer = client.post(f"/ui/runs/{run_id}/notes", data={"body": "sneaky", "csrf": csrf})
    assert answer.status_code == 403
    assert "vic is a viewer; this needs the scientist role" in answer.text
    assert workspace.tracking.notes("run", run_id) == []
    denied = workspace.audit.list(user="vic", outcome="denied")
    assert [(e.outcome, e.action) for e in denied] == [("denied", f"POST /ui/runs/{run_id}/notes")]


def test_sign_out_deletes_the_session(server: Served, workspace: Workspace) -> None:
    client, tokens, _run_id = server
    csrf = client_sign_in(client, tokens["ada"])
    session_id = client.cookies["mlship_session"]
    assert client.post("/ui/signout", data={"csrf": "wrong"}).status_code == 403
    answer = client.post("/ui/signout", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/signin"
    entries = workspace.audit.list(user="ada", table="ui_sessions")
    assert sorted(e.action for e in entries) == ["POST /ui/signin", "POST /ui/signout"]
    assert all(e.role == "admin" and e.origin.startswith("ui ") for e in entries)
    with workspace.metadata.transaction() as session:
        assert session.scalars(select(UiSession)).all() == []
    client.cookies.set("mlship_session", session_id, path="/ui")  # a copy of the old cookie
    assert client.get("/ui/runs").status_code == 303


def test_revoking_the_token_ends_its_sessions(server: Served, workspace: Workspace) -> None:
    client, tokens, _run_id = server
    client_sign_in(client, tokens["sci"])
    token = next(t for t in workspace.users.tokens("sci"))
    workspace.users.revoke(token.id)
    assert client.get("/ui/runs").status_code == 303


def test_sessions_expire(workspace: Workspace) -> None:
    from mlship.security.ui_sessions import SESSION_LIFETIME, SqlSessions
    from mlship.security.users import SqlUsers
    from mlship.store.tables import utcnow

    workspace.users.add("ada", "admin")
    secret = workspace.users.create_token("ada", "t", timedelta(days=30)).secret
    sessions = SqlSessions(workspace.metadata, SqlUsers(workspace.metadata, "ada"))
    opened = sessions.open(secret)
    assert opened is not None
    assert sessions.identity(opened.id) is not None
    later = utcnow() + SESSION_LIFETIME + timedelta(seconds=1)
    assert sessions.identity(opened.id, now=later) is None
    assert sessions.identity("not-a-session") is None


def test_sign_in_sends_nobody_to_another_site(server: Served) -> None:
    client, tokens, _run_id = server
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui\\@evil", "/elsewhere"):
        form = client.get("/ui/signin")
        answer = client.post(
            "/ui/signin",
            data={"csrf": form_token(form.text), "token": tokens["vic"], "next": target},
        )
        assert answer.headers["location"] == "/ui/runs", target


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from(["q", "owner", "status", "tag", "sort", "page", "run"]),
        st.text(max_size=30),
        max_size=5,
    )
)
def test_odd_query_parameters_get_a_page_or_a_4xx_never_a_500(
    server: Served,
    params: dict[str, str],
) -> None:
    client, tokens, _run_id = server
    if "mlship_session" not in client.cookies:
        client_sign_in(client, tokens["vic"])
    for path in ("/ui/runs", "/ui/compare"):
        answer = client.get(path, params=params)
        assert answer.status_code in (200, 400, 404), (path, params, answer.text[:300])


@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_odd_note_forms_get_a_redirect_or_a_4xx_never_a_500(
    server: Served, body: str | bytes
) -> None:
    client, tokens, run_id = server
    csrf = client_sign_in(client, tokens["sci"])
    if isinstance(body, bytes):  # a raw body: maybe not UTF-8, maybe not a form at all
        content = b"csrf=" + csrf.encode() + b"&body=" + body
        answer = client.post(
            f"/ui/runs/{run_id}/notes",
            content=content,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    else:
        answer = client.post(f"/ui/runs/{run_id}/notes", data={"body": body, "csrf": csrf})
    assert answer.status_code in (303, 400, 413), (body, answer.status_code, answer.text[:300])


def test_a_form_larger_than_the_limit_is_refused(server: Served) -> None:
    client, tokens, run_id = server
    csrf = client_sign_in(client, tokens["sci"])
    answer = client.post(f"/ui/runs/{run_id}/notes", data={"body": "x" * 70_000, "csrf": csrf})
    assert answer.status_code == 413
