"""Every route of ``mlship server`` with every role: the allow/deny matrix, read from the routes'
own declarations in the OpenAPI spec, checked against what the running server does."""

from __future__ import annotations

import re
from typing import Any

import httpx

from mlship.security.users import ROLES
from mlship.server.access import RANK, ROLE_KEY
from tests.tracking import TEAM, Team

PLACEHOLDERS = {
    "sha256": "0" * 64,
    "version": "1",
    "token_id": "999999",
    "stage": "staging",
}
"""Path parameters that must look right to reach the role check's verdict; any other parameter
is a name nothing has (``nosuch``), so an allowed call finds nothing and changes nothing."""

ROLE_USER = {role: next(user for user, r in TEAM.items() if r == role) for role in ROLES}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            found.append((method.upper(), path, operation.get(ROLE_KEY, "")))
    return found


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS.get(m.group(1), "nosuch"), path)


def test_every_route_allows_exactly_the_roles_it_declares(team: Team) -> None:
    spec = httpx.get(
        f"{team.url}/api/v1/openapi.json", headers=team.headers("victor"), timeout=30
    ).json()
    operations = _operations(spec)
    undeclared = [(m, p) for m, p, role in operations if role not in RANK]
    assert not undeclared, f"routes without a declared role: {undeclared}"
    assert len(operations) >= 40

    checked, wrong = 0, list[tuple[object, ...]]()
    with httpx.Client(base_url=team.url, timeout=30) as client:
        for method, path, needed in operations:
            extra: dict[str, Any] = {}
            if method in ("POST", "PUT"):
                extra = {"content": b""} if "/artifacts/" in path else {"json": {}}
            anonymous = client.request(method, _url(path), **extra)
            checked += 1
            if anonymous.status_code != 401:
                wrong.append((method, path, "no token", anonymous.status_code))
            for role, user in ROLE_USER.items():
                answer = client.request(method, _url(path), headers=team.headers(user), **extra)
                checked += 1
                allowed = RANK[role] >= RANK[needed]
                refused = answer.status_code in (401, 403)
                if allowed == refused or answer.status_code >= 500:
                    wrong.append((method, path, role, answer.status_code, answer.text[:200]))
    print(f"role matrix: {len(operations)} routes x {len(ROLES) + 1} callers = {checked} checks")
    assert not wrong, wrong
    assert checked == len(operations) * (len(ROLES) + 1)


def test_refused_mutations_are_audited_and_reads_are_not(team: Team) -> None:
    headers = team.headers("victor")
    before = _denied(team)
    httpx.post(f"{team.url}/api/v1/users", json={"name": "x", "role": "admin"}, headers=headers)
    httpx.get(f"{team.url}/api/v1/users", headers=headers)
    after = _denied(team)
    new = [entry for entry in after if entry["id"] not in {e["id"] for e in before}]
    assert [(e["user"], e["action"], e["outcome"]) for e in new] == [
        ("victor", "POST /api/v1/users", "denied")
    ]
    assert "needs the admin role" in new[0]["changes"]["reason"]


def _denied(team: Team) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{team.url}/api/v1/audit",
        params={"outcome": "denied", "user": "victor", "limit": 1000},
        headers=team.headers("admin"),
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found
