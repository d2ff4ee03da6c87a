"""The review pages on the tracking server's app, through Starlette's test client: which forms
each person is shown, every step a form takes (in the history and the audit log, by the
signed-in user), the registry's refusals as 4xx pages, CSRF, and generated input. Then in
headless Chromium on a real ``mlship server``: a promotion requested, reviewed by four people from
an objection to an approval, and rolled back, all through the pages, each page checked (no
console error, no failed request, axe)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy import event

from mlship.config import Settings
from mlship.server.app import create_app
from mlship.store.audit import Actor, acting
from mlship.ui import reviews as review_pages
from mlship.ui.app import local_app
from mlship.workspace import Workspace
from tests.conftest import CliResult, invoke_cli
from tests.serving import Server
from tests.ui.harness import (
    check_page,
    client_sign_in,
    form_token,
    new_context,
    shot,
    sign_in,
    team_server,
)
from tests.ui.reviews_setup import PEOPLE, register_versions

Served = tuple[TestClient, dict[str, str]]
_names = itertools.count(1)
PAGE = "/ui/models/churn/requests/{}"
FORMS = ("comment", "approve", "reject", "changes", "object", "withdraw-objection", "overrule",
         "rerequest", "withdraw")  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def any_workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on SQLite, and one on PostgreSQL (which refuses what SQLite keeps, NUL)."""
    url = None
    if request.param == "postgresql":
        from tests.services import create_database

        url = create_database(request.getfixturevalue("postgres_url"), f"ui_reviews_{next(_names)}")
    ws = Workspace.open(Settings(home=tmp_path / "ws", n_jobs=1, user="tester", database_url=url))
    yield ws
    ws.close()


@pytest.fixture
def any_server(any_workspace: Workspace) -> Iterator[Served]:
    """:func:`server` on each kind of database."""
    yield from _serve(any_workspace)


@pytest.fixture
def server(workspace: Workspace) -> Iterator[Served]:
    """The server's app over a workspace with churn:1 in production and churn:2 requested by
    alice (request #2), and a token for each of :data:`PEOPLE`."""
    yield from _serve(workspace)


def _serve(workspace: Workspace) -> Iterator[Served]:
    tokens = {}
    for name, role in PEOPLE.items():
        workspace.users.add(name, role)
        tokens[name] = workspace.users.create_token(name, "browser").secret
    register_versions(workspace, "churn", [0.81, 0.86, 0.84])
    as_user(workspace, "alice", "request_promotion", 1)
    as_user(workspace, "bob", "approve", 1)
    as_user(workspace, "alice", "request_promotion", 2, "better recall")
    with TestClient(create_app(workspace), follow_redirects=False) as client:
        yield client, tokens


def as_user(workspace: Workspace, user: str, step: str, *args: object) -> object:
    """A registry step by ``user`` (as the API would run it for their token)."""
    with acting(Actor(user, "test", step, PEOPLE[user])):
        return getattr(workspace.registry, step)("churn", *args)


def forms(html: str) -> set[str]:
    """The review steps the page offers (the actions of its forms)."""
    return set(re.findall(r'action="/ui/models/churn/requests/\d+/([a-z-]+)"', html))


def test_each_person_is_shown_the_forms_they_may_use(server: Served, workspace: Workspace) -> None:
    client, tokens = server
    seen = {}
    for user in PEOPLE:
        client_sign_in(client, tokens[user])
        page = client.get(PAGE.format(2))
        assert page.status_code == 200
        seen[user] = forms(page.text)
    assert seen["alice"] == {"comment", "withdraw"}  # the requester neither reviews nor decides
    assert seen["bob"] == {"comment", "approve", "reject", "changes", "object"}
    assert seen["carol"] == {"comment", "changes", "object"}  # a scientist does not decide
    assert seen["dan"] == {"comment", "approve", "reject", "changes", "object"}
    assert seen["vic"] == set()

    as_user(workspace, "carol", "raise_objection", 2, "the holdout overlaps May")
    as_user(workspace, "bob", "request_changes", 2, "add the weekly slices")
    for user in PEOPLE:
        client_sign_in(client, tokens[user])
        seen[user] = forms(client.get(PAGE.format(2)).text)
    assert seen["alice"] == {"comment", "withdraw", "rerequest"}
    assert seen["bob"] == {"comment", "approve", "reject", "object"}
    assert seen["carol"] == {"comment", "changes", "withdraw-objection"}
    assert seen["dan"] == {"comment", "approve", "reject", "changes", "object", "overrule"}
    assert seen["vic"] == set()
    page = client.get(PAGE.format(2)).text
    assert "pending, blocked" in page
    assert "carol</strong> objects" in page and "the holdout overlaps May" in page
    assert "bob</strong> asked for changes" in page

    # The closed request of churn:1 offers no verdict, and comments go to the newest request.
    client_sign_in(client, tokens["bob"])
    assert forms(client.get(PAGE.format(1)).text) == {"comment"}


def test_the_page_shows_the_request_its_metrics_against_production_and_the_thread(
    server: Served, workspace: Workspace
) -> None:
    client, tokens = server
    csrf = client_sign_in(client, tokens["bob"])
    posted = client.post(
        PAGE.format(2) + "/comment", data={"csrf": csrf, "text": "Did you re-split by week?"}
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == PAGE.format(2) + "#comments"
    asked = workspace.registry.comments("churn", 2)[0]
    csrf = client_sign_in(client, tokens["alice"])
    client.post(
        PAGE.format(2) + "/comment",
        data={"csrf": csrf, "text": "Yes, see the card.", "reply_to": str(asked.id)},
    )
    page = client.get(PAGE.format(2)).text
    assert "Promotion of churn:2 to production" in page and "better recall" in page
    assert "Requested by</dt><dd>alice" in page
    # accuracy 0.86 against production's (churn:1) 0.81
    row = r"accuracy</td>\s*<td[^>]*>0.86</td>\s*<td[^>]*>0.81</td>\s*<td[^>]*>\+0.05</td>"
    assert re.search(row, page)
    # the reply is nested under the question
    question = page.index("Did you re-split by week?")
    replies = page.index('<ul class="replies">', question)
    assert question < replies < page.index("Yes, see the card.")
    comments = workspace.registry.comments("churn", 2)
    assert [(c.author, c.reply_to, c.target_kind) for c in comments] == [
        ("bob", None, "request"),
        ("alice", asked.id, "request"),
    ]


def test_every_step_of_the_forms_reaches_the_history_and_the_audit_log(
    server: Served, workspace: Workspace
) -> None:
    client, tokens = server

    def post(user: str, step: str, text: str = "", request: int = 2) -> int:
        csrf = client_sign_in(client, tokens[user])
        answer = client.post(PAGE.format(request) + f"/{step}", data={"csrf": csrf, "text": text})
        status: int = answer.status_code
        return status

    assert post("carol", "object", "the holdout overlaps May") == 303
    assert post("bob", "changes", "add the weekly slices") == 303
    assert post("alice", "rerequest", "slices added") == 303
    assert post("carol", "withdraw-objection", "split checked") == 303
    assert post("carol", "object", "latency doubles") == 303
    assert post("dan", "overrule", "p99 within SLO") == 303
    assert post("bob", "approve", "all answered") == 303
    history = [(e.action, e.user) for e in workspace.registry.history("churn") if e.version == 2]
    assert history == [
        ("registered", "tester"),
        ("promotion requested", "alice"),
        ("objected", "carol"),
        ("changes requested", "bob"),
        ("review requested again", "alice"),
        ("objection withdrawn", "carol"),
        ("objected", "carol"),
        ("objection overruled", "dan"),
        ("approved", "bob"),
        ("promoted", "bob"),
    ]
    overruled = workspace.audit.list(user="dan", table="reviews")
    assert overruled and all(e.origin.startswith("ui ") and e.role == "admin" for e in overruled)
    assert overruled[0].action == "POST " + PAGE.format(2) + "/overrule"
    page = client.get(PAGE.format(2)).text
    assert "approved" in page and "overruled by dan" in page and "p99 within SLO" in page
    assert "against the version it replaced" in page and ">churn:1</th>" in page
    assert "Your part" not in page and forms(page) == {"comment"}
    # a new request of churn:3, withdrawn by its requester
    as_user(workspace, "alice", "request_promotion", 3)
    assert post("alice", "withdraw", "not yet", request=3) == 303
    assert workspace.registry.requests("churn")[-1].status == "withdrawn"
    assert post("bob", "reject", request=3) == 409  # nothing left to decide on it


def test_what_the_registry_refuses_comes_back_as_a_4xx_page_with_its_reason(
    server: Served, workspace: Workspace
) -> None:
    client, tokens = server
    as_user(workspace, "carol", "raise_objection", 2, "the holdout overlaps May")
    csrf = client_sign_in(client, tokens["bob"])
    refused = client.post(PAGE.format(2) + "/approve", data={"csrf": csrf, "text": "ok"})
    assert refused.status_code == 409
    assert "churn:2 cannot be approved while an objection is open: carol objects" in refused.text
    assert 'role="alert"' in refused.text and "Promotion of churn:2" in refused.text
    no_reason = client.post(PAGE.format(2) + "/changes", data={"csrf": csrf, "text": "  "})
    assert no_reason.status_code == 400 and "a request needs a reason" in no_reason.text
    stray = client.post(
        PAGE.format(2) + "/comment", data={"csrf": csrf, "text": "x", "reply_to": "999"}
    )
    assert stray.status_code == 404 and "has no comment #999 to reply to" in stray.text
    not_admin = client.post(PAGE.format(2) + "/overrule", data={"csrf": csrf, "text": "x"})
    assert not_admin.status_code == 403
    assert "bob is a reviewer; this needs the admin role" in not_admin.text

    csrf = client_sign_in(client, tokens["alice"])  # the requester, forging the reviewers' forms
    own = client.post(PAGE.format(2) + "/object", data={"csrf": csrf, "text": "mine"})
    assert own.status_code == 409 and "alice requested the promotion of churn:2" in own.text
    approve = client.post(PAGE.format(2) + "/approve", data={"csrf": csrf})
    assert approve.status_code == 403 and "needs the reviewer role" in approve.text
    csrf = client_sign_in(client, tokens["vic"])
    viewer = client.post(PAGE.format(2) + "/comment", data={"csrf": csrf, "text": "me too"})
    assert viewer.status_code == 403 and "vic is a viewer" in viewer.text
    denied = workspace.audit.list(user="vic", outcome="denied")
    assert [e.action for e in denied] == ["POST " + PAGE.format(2) + "/comment"]
    for path, code in (
        ("/ui/models/churn/requests/99", 404),
        ("/ui/models/nope/requests/2", 404),
        ("/ui/models/churn/requests/x", 404),
        ("/ui/reviews?page=0", 400),
        ("/ui/reviews?model=nope", 404),
        ("/ui/reviews?model=a%00b", 400),
        ("/ui/models/a%00b/requests/2", 404),
    ):
        answer = client.get(path)
        assert answer.status_code == code, (path, answer.text[:200])
        assert 'class="error-box"' in answer.text
    assert client.post(PAGE.format(2) + "/launch", data={"csrf": csrf}).status_code == 404
    history = [e.action for e in workspace.registry.history("churn") if e.version == 2]
    assert history == ["registered", "promotion requested", "objected"]  # nothing refused


def test_a_form_without_the_pages_csrf_token_is_refused(
    server: Served, workspace: Workspace
) -> None:
    client, tokens = server
    csrf = client_sign_in(client, tokens["bob"])
    for sent in ({"text": "ok"}, {"text": "ok", "csrf": csrf[:-2] + "xx"}):
        answer = client.post(PAGE.format(2) + "/approve", data=sent)
        assert answer.status_code == 403 and "CSRF token is missing or wrong" in answer.text
    client.cookies.clear()
    anonymous = client.post(PAGE.format(2) + "/approve", data={"csrf": csrf})
    assert anonymous.status_code == 403 and "sign in first" in anonymous.text
    assert workspace.registry.requests("churn")[-1].status == "pending"


def test_the_list_shows_open_requests_with_what_holds_each_a_page_at_a_time(
    server: Served, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, tokens = server
    as_user(workspace, "carol", "raise_objection", 2, "the holdout overlaps May")
    as_user(workspace, "carol", "request_promotion", 3, "cheaper")
    client_sign_in(client, tokens["vic"])
    page = client.get("/ui/reviews").text
    assert "2 open requests" in page
    assert 'href="/ui/models/churn/requests/2"' in page
    assert "carol: the holdout overlaps May" in page
    assert "nothing: ready for approval" in page
    assert '<a href="/ui/reviews" aria-current="page">Reviews</a>' in page
    monkeypatch.setattr(review_pages, "PAGE_SIZE", 1)
    first = client.get("/ui/reviews?model=churn").text
    assert "page 1 of 2" in first and "requests/2" in first and "requests/3" not in first
    assert 'href="/ui/reviews?model=churn&amp;page=2"' in first
    second = client.get("/ui/reviews?model=churn&page=2").text
    assert "requests/3" in second and 'requests/2"' not in second
    assert "No request waits" in client.get("/ui/reviews?page=3").text


@settings(
    derandomize=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(st.sampled_from(["model", "page"]), st.text(max_size=30), max_size=2),
    ref=st.text(max_size=14),
)
def test_odd_query_parameters_and_paths_get_a_page_or_a_4xx(
    any_server: Served, params: dict[str, str], ref: str
) -> None:
    client, tokens = any_server
    if "mlship_session" not in client.cookies:
        client_sign_in(client, tokens["vic"])
    answer = client.get("/ui/reviews", params=params)
    assert answer.status_code in (200, 400, 404), (params, answer.text[:300])
    assert client.get("/ui/reviews", params={"model": "a\x00"}).status_code == 400
    assert client.get("/ui/models/a%00/requests/2").status_code == 404
    page = client.get("/ui/models/churn/requests/" + quote(ref, safe=""))
    assert page.status_code in (200, 303, 307, 404, 405), (ref, page.text[:300])


@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    step=st.sampled_from(FORMS),
    text=st.one_of(st.text(max_size=60), st.binary(max_size=60)),
    reply=st.one_of(st.none(), st.text(max_size=14)),
)
def test_odd_forms_get_a_redirect_or_a_4xx_never_a_500(
    any_server: Served, step: str, text: str | bytes, reply: str | None
) -> None:
    client, tokens = any_server
    if "mlship_session" not in client.cookies:
        client_sign_in(client, tokens["dan"])
    csrf = form_token(client.get("/ui/reviews").text)
    if isinstance(text, bytes):
        answer = client.post(
            PAGE.format(2) + f"/{step}",
            content=b"csrf=" + csrf.encode() + b"&text=" + text,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    else:
        data = {"csrf": csrf, "text": text} | ({} if reply is None else {"reply_to": reply})
        answer = client.post(PAGE.format(2) + f"/{step}", data=data)
    assert answer.status_code in (303, 400, 404, 409, 413), (step, answer.text[:300])


# -- in a browser, on a real ``mlship server``, the CLI of each person beside it ----------------

Cli = Callable[..., CliResult]
Team = tuple[Server, dict[str, str], Cli]


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """``mlship server`` on a workspace with churn:1..3 and fraud:1..2, a token for each of
    :data:`PEOPLE`, and their command line against it."""
    root = tmp_path_factory.mktemp("reviews")
    home = root / "server"
    workspace = Workspace.open(Settings(home=home, user="ops", n_jobs=1))
    try:
        register_versions(workspace, "churn", [0.81, 0.86, 0.84])
        register_versions(workspace, "fraud", [0.7, 0.72])
    finally:
        workspace.close()
    with team_server(home, PEOPLE) as (server, tokens):

        def cli(user: str, *args: str, check: bool = True) -> CliResult:
            env = {"MLSHIP_URL": server.base, "MLSHIP_TOKEN": tokens[user]}
            return invoke_cli(*args, home=root / user, env=env, check=check)

        yield server, tokens, cli


def signed_in(browser: Browser, server: Server, token: str) -> tuple[BrowserContext, Page]:
    """A browser context signed in with ``token``, and a page of it."""
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server.base, token, "/ui/reviews")
    return context, page


def _request(page: Page, base: str, version: int, reason: str) -> None:
    """The requester asks for ``churn:version`` in production with the version page's form."""
    page.goto(f"{base}/ui/models/churn/versions/{version}")
    page.fill("#reason-promotion", reason)
    page.click("button:has-text('Request promotion to production')")
    page.wait_for_url(f"{base}/ui/models/churn/versions/{version}#promotion")
    assert f"request #{version}" in page.inner_text("#pending")


def _flat(result: CliResult) -> str:
    return " ".join((result.stdout + result.stderr).split())


def _json_objects(text: str) -> list[dict[str, object]]:
    """The JSON objects printed one after another, each over several lines."""
    decoder, found, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def test_a_promotion_is_reviewed_in_the_browser_from_objection_to_rollback(
    browser: Browser, team: Team
) -> None:
    server, tokens, cli = team
    url = f"{server.base}{PAGE}"
    cli("alice", "models", "promote", "churn:1", "--to", "production")
    cli("bob", "models", "review", "churn:1", "--approve", "--reason", "baseline")
    people = {
        user: signed_in(browser, server, tokens[user]) for user in ("alice", "bob", "carol", "dan")
    }
    try:
        # alice asks for churn:2 in production from its version page.
        _request(people["alice"][1], server.base, 2, "better recall")
        # carol finds the request in the list of open ones, and objects.
        _, carol = people["carol"]
        check_page(people["carol"][0], f"{server.base}/ui/reviews", "reviews")
        carol.goto(f"{server.base}/ui/reviews")
        carol.click("a:has-text('#2')")
        carol.wait_for_url(url.format(2))
        carol.fill("#object-text", "the holdout overlaps May")
        carol.click("button:has-text('Object')")
        carol.wait_for_url(url.format(2) + "#reviews")
        assert "carol objects (#" in carol.inner_text("#main")

        # bob's approval is refused, with the reason shown on the page.
        bob_context, bob = people["bob"]
        check_page(bob_context, url.format(2), "review-request-blocked")
        bob.goto(url.format(2))
        bob.fill("#approve-text", "looks good")
        with bob.expect_response(lambda r: r.request.method == "POST") as posted:
            bob.click("button:has-text('Approve')")
        assert posted.value.status == 409
        refusal = bob.inner_text("#refusal")
        assert "churn:2 cannot be approved while an objection is open: carol objects" in refusal
        assert "the holdout overlaps May" in refusal
        shot(bob, "review-approval-refused")

        # A thread: bob asks, alice answers under his comment.
        bob.goto(url.format(2))
        bob.fill("#comment-text", "Did you re-split by week?")
        bob.click("button:has-text('Comment')")
        bob.wait_for_url(url.format(2) + "#comments")
        _, alice = people["alice"]
        alice.goto(url.format(2))
        assert alice.locator("button:has-text('Approve')").count() == 0
        alice.click("details.reply summary")
        alice.locator("details.reply textarea").fill("Yes, see the card.")
        alice.click("details.reply button:has-text('Reply')")
        alice.wait_for_url(url.format(2) + "#comments")
        nested = alice.locator("ul.thread > li.comment > ul.replies article")
        assert "Yes, see the card." in nested.inner_text()

        # carol withdraws her objection; bob approves.
        carol.goto(url.format(2))
        carol.fill("#withdraw-objection-text", "split checked")
        carol.click("button:has-text('Withdraw my objection')")
        carol.wait_for_url(url.format(2) + "#reviews")
        bob.goto(url.format(2))
        bob.fill("#approve-text", "all answered")
        bob.click("button:has-text('Approve')")
        bob.wait_for_url(url.format(2) + "#status")
        assert "approved" in bob.inner_text(".title-row").lower()
        shot(bob, "review-request")

        # churn:3: carol objects again, dan overrules her with a reason, bob approves.
        _request(alice, server.base, 3, "cheaper")
        carol.goto(url.format(3))
        carol.fill("#object-text", "latency doubles")
        carol.click("button:has-text('Object')")
        carol.wait_for_url(url.format(3) + "#reviews")
        dan_context, dan = people["dan"]
        check_page(dan_context, url.format(3), "review-request-as-admin")
        dan.goto(url.format(3))
        dan.fill("#overrule-text", "p99 within SLO")
        dan.click("button:has-text('Overrule')")
        dan.wait_for_url(url.format(3) + "#reviews")
        assert "overruled by dan" in dan.inner_text("#reviews ~ table")
        bob.goto(url.format(3))
        bob.click("button:has-text('Approve')")
        bob.wait_for_url(url.format(3) + "#status")

        # churn:3 misbehaves at night: bob rolls back to churn:2 from the model's page.
        bob.goto(f"{server.base}/ui/models/churn")
        bob.fill("#rollback-reason", "v3 pages at night")
        bob.click("button:has-text('Roll back')")
        bob.wait_for_url(f"{server.base}/ui/models/churn#history")
        assert "rollback" in bob.inner_text("#main").lower()
    finally:
        for context, _page in people.values():
            context.close()

    history = _flat(cli("vic", "models", "history", "churn"))
    for action in ("promotion requested", "objected", "commented", "objection withdrawn",
                   "approved", "promoted", "objection overruled", "rollback"):  # fmt: skip
        assert f" {action} " in history, action
    shown = _flat(cli("vic", "models", "requests", "churn"))
    for said in (
        "objection by carol: the holdout overlaps May [withdrawn by carol: split checked]",
        "objection by carol: latency doubles [overruled by dan: p99 within SLO]",
        "Did you re-split by week?",
        "Yes, see the card.",
    ):
        assert said in shown, said
    audit = cli("dan", "audit", "--table", "reviews", "--json", "--limit", "50")
    entries = _json_objects(audit.stdout)
    by_ui = {e["user"] for e in entries if str(e.get("origin", "")).startswith("ui ")}
    assert by_ui >= {"carol", "dan"}, entries


def test_who_sees_which_form_and_forged_forms_are_refused(
    browser: Browser, team: Team, tmp_path: Path
) -> None:
    server, tokens, cli = team
    url = f"{server.base}/ui/models/fraud/requests/{{}}"
    cli("alice", "models", "promote", "fraud:2", "--to", "production", "--reason", "new rules")
    with server.client(tokens["vic"]) as client:
        request_id = client.get("/api/v1/models/fraud/requests").json()[-1]["id"]
    target = url.format(request_id)
    contexts = []
    try:
        vic_context, vic = signed_in(browser, server, tokens["vic"])
        contexts.append(vic_context)
        check_page(vic_context, target, "review-request-as-viewer")
        vic.goto(target)
        assert vic.locator("main form[method=post]").count() == 0
        alice_context, alice = signed_in(browser, server, tokens["alice"])
        contexts.append(alice_context)
        alice.goto(target)
        buttons = set(alice.locator("main form button").all_inner_texts())
        assert buttons == {"Comment", "Withdraw the request"}, buttons
        # alice forges bob's form: the role check answers 403.
        csrf = alice.get_attribute("form[action$='/withdraw'] input[name=csrf]", "value")
        assert csrf
        forged = alice_context.request.post(target + "/approve", form={"csrf": csrf})
        assert forged.status == 403 and "needs the reviewer role" in forged.text()
        bob_context, bob = signed_in(browser, server, tokens["bob"])
        contexts.append(bob_context)
        bob.goto(target)
        assert "Approve" in bob.locator("main form button").all_inner_texts()
        wrong = bob_context.request.post(target + "/approve", form={"csrf": "forged"})
        assert wrong.status == 403 and "CSRF token is missing or wrong" in wrong.text()
        # a form on another site posting with bob's cookie but without the page's token
        attack = tmp_path / "attack.html"
        attack.write_text(
            f'<form method="post" action="{target}/approve">'
            '<input name="text" value="forged"><button>go</button></form>'
        )
        evil = bob_context.new_page()
        evil.goto(attack.as_uri())
        with evil.expect_navigation():
            evil.click("button")
        assert "Not allowed" in evil.inner_text("main")
    finally:
        for context in contexts:
            context.close()
    requests = _flat(cli("vic", "models", "requests", "fraud"))
    assert "pending" in requests and "approved" not in requests


def test_the_review_pages_read_indexes_not_whole_tables(
    server: Served, workspace: Workspace
) -> None:
    as_user(workspace, "carol", "raise_objection", 2, "the holdout overlaps May")
    engine = workspace.metadata.engine
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        review_pages.open_requests(workspace, review_pages.ReviewQuery())
        review_pages.request_view(workspace, "churn", 2)
        review_pages.request_view(workspace, "churn", 1)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    plans = []
    with engine.connect() as connection:
        for statement, parameters in sent:
            if statement.lstrip().upper().startswith("SELECT"):
                rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                plans.append("\n".join(str(row[-1]) for row in rows))
    everything = "\n".join(plans)
    assert "ix_promotion_requests_status_id (status=?)" in everything
    assert "ix_reviews_model_version (model_id=? AND version=?)" in everything
    assert "ix_notes_target (target_kind=? AND target_id=?)" in everything
    assert "SCAN" not in everything, everything  # every table is searched by an index


def test_on_mlship_ui_the_local_user_reviews_by_name_with_no_sign_in(workspace: Workspace) -> None:
    register_versions(workspace, "churn", [0.81, 0.86])
    as_user(workspace, "alice", "request_promotion", 1, "first one")
    app = local_app(workspace)
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as client:
        page = client.get(PAGE.format(1))
        assert page.status_code == 200 and "tester · local workspace" in page.text
        assert forms(page.text) == {"comment", "approve", "reject", "changes", "object"}
        csrf = form_token(page.text)
        answer = client.post(PAGE.format(1) + "/approve", data={"csrf": csrf, "text": "fine"})
        assert answer.status_code == 303, answer.text
        as_user(workspace, "alice", "request_promotion", 2)
        tester_objects = client.post(PAGE.format(2) + "/object", data={"csrf": csrf, "text": "no"})
        assert tester_objects.status_code == 303
        forged = client.post(PAGE.format(2) + "/withdraw-objection", data={"text": "x"})
        assert forged.status_code == 403
        assert forms(client.get(PAGE.format(2)).text) >= {"withdraw-objection"}
    events = [(e.version, e.action, e.user) for e in workspace.registry.history("churn")][-4:]
    assert events == [
        (1, "approved", "tester"),
        (1, "promoted", "tester"),
        (2, "promotion requested", "alice"),
        (2, "objected", "tester"),
    ]


def test_the_forms_work_with_scripts_off(browser: Browser, team: Team) -> None:
    server, tokens, cli = team
    cli("alice", "models", "promote", "fraud:1", "--to", "production", "--reason", "baseline")
    with server.client(tokens["vic"]) as client:
        request_id = client.get("/api/v1/models/fraud/requests").json()[-1]["id"]
    target = f"{server.base}/ui/models/fraud/requests/{request_id}"
    context = new_context(browser, javascript=False)
    try:
        page = context.new_page()
        page.goto(target)
        page.wait_for_url("**/ui/signin?next=*")
        page.fill("#token", tokens["carol"])
        page.click("button:has-text('Sign in')")
        page.wait_for_url(target)
        page.fill("#comment-text", "Which weeks are in the holdout?")
        page.click("button:has-text('Comment')")
        page.wait_for_url(target + "#comments")
        page.click("details.reply summary")
        page.locator("details.reply textarea").fill("Answering myself: weeks 20 to 23.")
        page.click("details.reply button:has-text('Reply')")
        page.wait_for_url(target + "#comments")
        page.fill("#changes-text", "add the weekly slices")
        page.click("button:has-text('Request changes')")
        page.wait_for_url(target + "#reviews")
        text = page.inner_text("#main")
        assert "carol asked for changes" in text and "weeks 20 to 23" in text
        assert "weeks 20 to 23" in page.locator("ul.thread ul.replies").inner_text()
    finally:
        context.close()
