"""The tracking server's guards, in process: body size, rate limits, artifact addresses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlship.server.app import create_app
from mlship.workspace import Workspace


@pytest.fixture
def token(workspace: Workspace) -> str:
    workspace.users.add("sci", "scientist")
    return workspace.users.create_token("sci", "t").secret


def _client(workspace: Workspace, **limits: int) -> TestClient:
    return TestClient(create_app(workspace, **limits), raise_server_exceptions=False)


def test_bodies_over_the_limit_are_refused_declared_or_streamed(
    workspace: Workspace, token: str
) -> None:
    client = _client(workspace, max_body_bytes=1000)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    big = b'{"pipeline": "' + b"x" * 5000 + b'"}'
    assert client.post("/api/v1/runs", content=big, headers=headers).status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    streamed = client.post("/api/v1/runs", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert client.post("/api/v1/runs/reopen", json={}, headers=headers).status_code == 422


def test_artifact_uploads_have_their_own_limit_and_must_match_their_address(
    workspace: Workspace, token: str
) -> None:
    client = _client(workspace, max_body_bytes=10, max_artifact_bytes=100)
    headers = {"Authorization": f"Bearer {token}"}
    data = b"y" * 50
    address = hashlib.sha256(data).hexdigest()
    assert client.put(f"/api/v1/artifacts/{address}", content=data, headers=headers).json() == {
        "sha256": address,
        "size": 50,
    }
    assert client.get(f"/api/v1/artifacts/{address}", headers=headers).content == data
    wrong = client.put(f"/api/v1/artifacts/{'0' * 64}", content=data, headers=headers)
    assert wrong.status_code == 400 and "hashes to" in wrong.json()["detail"]
    big = b"z" * 101
    too_big = client.put(
        f"/api/v1/artifacts/{hashlib.sha256(big).hexdigest()}", content=big, headers=headers
    )
    assert too_big.status_code == 413
    for bad in ("..%2F..%2Fetc%2Fpasswd", "../../mlship.db", "A" * 64, "0" * 63):
        answer = client.get(f"/api/v1/artifacts/{bad}", headers=headers)
        assert answer.status_code in (404, 422), bad


def test_each_token_has_its_own_rate(workspace: Workspace, token: str) -> None:
    other = workspace.users.create_token("sci", "second").secret
    client = _client(workspace, requests_per_minute=3)
    answers = [
        client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}) for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    second = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {other}"})
    assert second.status_code == 200


def test_a_server_does_not_serve_another_server(workspace: Workspace) -> None:
    from mlship.config import Settings
    from mlship.errors import MlshipError

    remote = Workspace.open(Settings(home=workspace.settings.home, url="http://127.0.0.1:1"))
    with pytest.raises(MlshipError, match="unset MLSHIP_URL"):
        create_app(remote)


def test_the_server_publishes_its_ed25519_public_key(tmp_path: Path) -> None:
    from mlship.config import Settings

    settings = Settings(home=tmp_path / "ws", signing_scheme="ed25519")
    workspace = Workspace.open(settings)
    try:
        workspace.users.add("v", "viewer")
        secret = workspace.users.create_token("v", "t").secret
        answer = _client(workspace).get(
            "/api/v1/models/signing-key", headers={"Authorization": f"Bearer {secret}"}
        )
        assert answer.json() == {"scheme": "ed25519", "public_key": workspace.signer.public_text()}
    finally:
        workspace.close()
