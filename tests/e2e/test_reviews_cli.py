"""A review between people through the command line, on the embedded store and on a real
``mlship server`` with tokens: a request, an objection that blocks the approval, comments in a
thread, a request for changes and its answer, a withdrawal, an admin's overrule, the approvals,
a rollback; all of it in the model's history and the audit log. And the review endpoints answer
any body with a 4xx that says what is wrong, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import CliResult, invoke_cli
from tests.contract import register_model
from tests.tracking import Team

Cli = Callable[..., CliResult]


def _embedded(tmp_path: Path) -> tuple[Cli, str, str]:
    home = tmp_path / "home"
    ws = Workspace.open(Settings(home=home, user="alice", n_jobs=1))
    try:
        name = register_model(ws, versions=3, prefix="churn")
        run = ws.catalogue.get_version(name, 1).run_id
    finally:
        ws.close()

    def cli(user: str, *args: str, check: bool = True) -> CliResult:
        return invoke_cli(*args, home=home, env={"MLSHIP_USER": user}, check=check)

    return cli, name, run


def _on_server(tmp_path: Path, team: Team) -> tuple[Cli, str, str]:
    settings = Settings(
        home=tmp_path / "alice", url=team.url, token=team.tokens["alice"], user="alice", n_jobs=1
    )
    ws = Workspace.open(settings)
    try:
        name = register_model(ws, versions=3, prefix="churn")
        run = ws.catalogue.get_version(name, 1).run_id
    finally:
        ws.close()

    def cli(user: str, *args: str, check: bool = True) -> CliResult:
        return invoke_cli(*args, home=tmp_path / user, env=team.env(user), check=check)

    return cli, name, run


def _flat(result: CliResult) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_three_people_review_a_promotion_and_roll_it_back(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if where == "server":
        cli, name, _ = _on_server(tmp_path, request.getfixturevalue("team"))
    else:
        cli, name, _ = _embedded(tmp_path)
    v1, v2, v3 = (f"{name}:{n}" for n in (1, 2, 3))
    cli("alice", "models", "promote", v1, "--to", "production")
    cli("bob", "models", "review", v1, "--approve", "--reason", "baseline")

    # alice asks for v2; sam objects, and the approval is refused naming him and his reason.
    cli("alice", "models", "promote", v2, "--to", "production", "--reason", "better recall")
    objected = cli("sam", "models", "review", v2, "--object", "--reason", "holdout overlaps May")
    assert "sam objects to" in objected.stdout and "approval waits until sam" in objected.stdout
    refused = cli("bob", "models", "review", v2, "--approve", check=False)
    assert refused.returncode == 1
    assert f"{v2} cannot be approved while an objection is open: sam objects" in _flat(refused)
    assert "holdout overlaps May" in _flat(refused)
    assert "Traceback" not in refused.stderr

    # A thread on the request: bob asks, alice answers.
    asked = cli("bob", "models", "comment", v2, "Did you re-split by week?", "--on-request")
    comment_id = asked.stdout.split("#", 1)[1].split()[0]
    answered = cli("alice", "models", "comment", v2, "Yes, see the card.", "--reply-to", comment_id)
    assert f"in reply to #{comment_id}" in answered.stdout
    no_reason = cli("bob", "models", "review", v2, "--request-changes", check=False)
    assert no_reason.returncode == 1 and "a request needs a reason" in _flat(no_reason)
    cli("bob", "models", "review", v2, "--request-changes", "--reason", "add the weekly slices")
    cli("alice", "models", "rerequest", v2, "--note", "slices added")
    mine = cli("alice", "models", "review", v2, "--approve", check=False)
    if where == "server":  # a scientist does not approve; locally four eyes refuse it
        assert "alice is a scientist; this needs the reviewer role or above" in _flat(mine)
    else:
        assert "alice requested the promotion" in _flat(mine)
        assert "cannot also approve" in _flat(mine)
    cli("sam", "models", "objection", "withdraw", v2, "--note", "split checked")
    approved = cli("bob", "models", "review", v2, "--approve", "--reason", "all answered")
    assert f"{v2}: promoted (none -> production); {name}:1 archived" in _flat(approved)

    # v3: sam objects again, the admin overrules with a reason, bob approves; then a rollback.
    cli("alice", "models", "promote", v3, "--to", "production")
    cli("sam", "models", "review", v3, "--object", "--reason", "latency doubles")
    if where == "server":  # a reviewer is not an admin, and a viewer only reads
        not_admin = cli("bob", "models", "objection", "overrule", v3, "--reason", "x", check=False)
        assert "bob is a reviewer; this needs the admin role or above" in _flat(not_admin)
        viewer = cli("victor", "models", "comment", v3, "me too", check=False)
        assert "victor is a viewer; this needs the scientist role" in _flat(viewer)
    overruled = cli("admin", "models", "objection", "overrule", v3, "--reason", "p99 within SLO")
    assert "admin overruled sam's objection" in overruled.stdout
    cli("bob", "models", "review", v3, "--approve")
    cli("bob", "models", "rollback", name, "--reason", "v3 pages at night")

    shown = _flat(cli("victor" if where == "server" else "alice", "models", "requests", name))
    for said in (
        "objection by sam: holdout overlaps May [withdrawn by sam: split checked]",
        "changes requested by bob: add the weekly slices [answered by alice: slices added]",
        "objection by sam: latency doubles [overruled by admin: p99 within SLO]",
        f"Comments on {v2}",
        "Did you re-split by week?",
        "Yes, see the card.",
    ):
        assert said in shown, said
    history = _flat(cli("bob", "models", "history", name))
    for action in (
        "objected",
        "commented",
        "changes requested",
        "review requested again",
        "objection withdrawn",
        "objection overruled",
        "approved",
        "rollback",
    ):
        assert f" {action} " in history, action
    audit = cli("admin", "audit", "--table", "reviews", "--json", "--limit", "20")
    entries = _json_objects(audit.stdout)
    assert {entry["user"] for entry in entries} >= {"sam", "bob", "alice", "admin"}
    assert all("model_events" in entry["changes"] for entry in entries)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects printed one after another (each may span several lines)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        value, end = decoder.raw_decode(text, at)
        found.append(value)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return found


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_notes_on_a_run_answer_one_another(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if where == "server":
        cli, _, run = _on_server(tmp_path, request.getfixturevalue("team"))
    else:
        cli, _, run = _embedded(tmp_path)
    first = cli("alice", "runs", "note", run, "Why this seed?")
    note_id = first.stdout.split("#", 1)[1].split()[0]
    reply = cli("bob", "runs", "note", run, "It is the team's default.", "--reply-to", note_id)
    assert f"by bob, in reply to #{note_id}" in reply.stdout
    stray = cli("bob", "runs", "note", run, "answer", "--reply-to", "999999", check=False)
    assert stray.returncode == 1
    assert f"run {run[:8]} has no note #999999 to reply to" in _flat(stray)
    thread = _flat(cli("bob", "runs", "show", run))
    assert "bob, " in thread and f"UTC, in reply to #{note_id}" in thread


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=6,
)
_FIELDS = {
    "body": st.text(max_size=30) | _JSON,
    "reason": st.text(max_size=30) | _JSON,
    "note": st.none() | st.text(max_size=30) | _JSON,
    "reply_to": st.none() | st.integers(-5, 10**12) | _JSON,
    "on_request": st.booleans() | _JSON,
}


@settings(derandomize=True, max_examples=25, deadline=None)
@given(
    path=st.sampled_from(
        [
            "comments",
            "changes",
            "objections",
            "objections/withdraw",
            "objections/overrule",
            "rerequest",
        ]
    ),
    body=st.fixed_dictionaries({}, optional=_FIELDS) | _JSON,
    version=st.sampled_from(["1", "2", "0", "-1", "x", "99999999999999999999"]),
)
def test_review_endpoints_answer_any_body_with_a_clear_4xx_or_success(
    reviewed_model: tuple[Team, str], path: str, body: Any, version: str
) -> None:
    team, name = reviewed_model
    answer = httpx.post(
        f"{team.url}/api/v1/models/{name}/versions/{version}/{path}",
        json=body,
        headers=team.headers("admin"),
        timeout=30,
    )
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["detail"], answer.text


@pytest.fixture(scope="module")
def reviewed_model(team: Team, tmp_path_factory: pytest.TempPathFactory) -> tuple[Team, str]:
    """A model on the team's server whose version 1 waits for a review (alice asked)."""
    _, name, _ = _on_server(tmp_path_factory.mktemp("fuzz"), team)
    invoke_cli(
        "models", "promote", f"{name}:1", "--to", "production",
        home=tmp_path_factory.mktemp("alice"), env=team.env("alice"),
    )  # fmt: skip
    return team, name
