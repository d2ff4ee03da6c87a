"""Fuzzing the tracking server's OpenAPI spec with Schemathesis: no input makes it fail (5xx).

Cases are generated from each operation's declared parameters and bodies (Hypothesis, a fixed
number per operation, derandomised so a failure reproduces) and sent as an admin, who gets past
every role check and so reaches the deepest code. The server has a database of its own, since
the cases really change things; the fuzzing admin's own token and user are kept out of the
revoke and disable operations so the run does not lock itself out halfway.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.services import create_database
from tests.tracking import Team, team_server

EXAMPLES = 25
"""Cases per operation: enough to reach each one's validation edges, bounded for CI."""


@pytest.fixture(scope="module")
def fuzz_team(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    database = create_database(postgres_url, "mlship_fuzz")
    with team_server(tmp_path_factory.mktemp("fuzz"), database) as found:
        yield found


def _safe(case: Any, admin_token_id: int) -> bool:
    params = case.path_parameters or {}
    return str(params.get("token_id")) != str(admin_token_id) and params.get("name") != "admin"


def test_no_generated_request_makes_the_server_fail(fuzz_team: Team, tmp_path: Path) -> None:
    headers = fuzz_team.headers("admin")
    spec = httpx.get(f"{fuzz_team.url}/api/v1/openapi.json", headers=headers, timeout=30).json()
    me = httpx.get(f"{fuzz_team.url}/api/v1/whoami", headers=headers, timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    sent: dict[str, int] = {}
    failures: list[str] = []

    def fuzz(operation: Any) -> None:
        label = operation.label
        sent[label] = 0
        strategy = operation.as_strategy().filter(lambda c: _safe(c, me["token_id"]))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def send(case: Any) -> None:
            response = case.call(base_url=fuzz_team.url, headers=headers, timeout=30)
            sent[label] += 1
            if response.status_code >= 500 or response.status_code == 401:
                failures.append(f"{label}: {response.status_code} {response.text[:300]}")

        send()

    for found in schema.get_all_operations():
        assert isinstance(found, Ok), found
        fuzz(found.ok())

    total = sum(sent.values())
    print(f"fuzzing: {len(sent)} operations, {total} cases, {len(failures)} failures")
    assert len(sent) >= 40 and total >= len(sent) * 5
    assert not failures, "\n".join(sorted(set(failures))[:30])
    output = fuzz_team.server.output_text()
    assert "Traceback" not in output, output[-3000:]
