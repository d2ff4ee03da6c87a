"""``mlship serve --auth``: a real server (over HTTPS) that asks for deployment keys, and one (with
two workers) that takes the workspace's API tokens; health checks stay open, each protocol's
refusal reads like its other errors, the rate is per key, refusals are counted in /metrics and
logged without the secret, and ``mlship predict --url`` scores a file with ``--token`` or
``MLSHIP_TOKEN``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mlship.workspace import Workspace
from tests.conftest import run_cli
from tests.serving import RECORD, Server, bearer, serving
from tests.tls import self_signed, trusting

APP = "app-key-0123456789abcdef0123"
CLI = "cli-key-0123456789abcdef0123"
BURST = "burst-key-0123456789abcdef01"
OPS = "ops-key-0123456789abcdef01234"
LOAD = "load-key-0123456789abcdef0123"
RATE = 4


def _metric(text: str, reason: str) -> float:
    prefix = f'mlship_auth_refused_total{{reason="{reason}"}} '
    found = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)]
    return found[0] if found else 0.0


@pytest.fixture(scope="module")
def home(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("serve-auth") / "ws"
    shutil.copytree(trained.settings.home, copy)
    return copy


@pytest.fixture(scope="module")
def new_customers(trained: Workspace) -> Path:
    return trained.settings.home.parent / "churn" / "data" / "new_customers.csv"


@pytest.fixture(scope="module")
def keyed(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("keyed")
    cert, key = self_signed(root / "tls")
    keys = root / "keys.txt"
    keys.write_text(
        f"app viewer {APP}\ncli viewer {CLI}\nburst viewer {BURST}\nload viewer {LOAD}\n"
    )
    args = (
        "--auth", "keys", "--auth-keys", str(keys), "--rate-limit", str(RATE),
        "--tls-cert", str(cert), "--tls-key", str(key), "--no-prediction-log",
    )  # fmt: skip
    env = {"MLSHIP_SERVE_KEYS": f"ops admin {OPS}"}
    with serving("churn:1", home, *args, env=env, tls=trusting(cert)) as server:
        yield server, cert


def test_keys_guard_every_protocol_but_the_health_checks(keyed: tuple[Server, Path]) -> None:
    server, cert = keyed
    with server.client(verify=trusting(cert)) as client:
        for path in ("/health", "/ping", "/v2/health/live", "/v2/health/ready"):
            assert client.get(path).status_code == 200, path
        native = client.post("/predict", json={"records": [RECORD]})
        assert native.status_code == 401 and native.headers["www-authenticate"] == "Bearer"
        assert native.json() == {
            "errors": [
                "Authorization: this server needs a bearer token (Authorization: Bearer TOKEN)"
            ]
        }
        assert native.headers["x-request-id"]
        mlflow = client.post("/invocations", json={"inputs": [RECORD]}, headers=bearer(APP[:-1]))
        assert mlflow.status_code == 401
        assert mlflow.json()["message"] == "Authorization: the bearer token is not valid here"
        v2 = client.post("/v2/models/churn/infer", json={}, headers={"Authorization": APP})
        assert v2.status_code == 401 and v2.json()["error"].startswith("Authorization: ")
        assert client.get("/metrics").status_code == 401

        answer = client.post("/predict", json={"records": [RECORD]}, headers=bearer(APP))
        assert answer.status_code == 200 and answer.json()["predictions"][0] in ("no", "yes")
        feedback = {"request_id": answer.json()["request_id"], "label": "yes"}
        refused = client.post("/feedback", json=feedback, headers=bearer(APP))
        assert refused.status_code == 403
        assert refused.json()["errors"] == [
            "Authorization: key app has the viewer role; /feedback needs scientist or above"
        ]
        stored = client.post("/feedback", json=feedback, headers=bearer(OPS))
        assert stored.status_code == 200, stored.text

        statuses = [
            client.post("/predict", json={"records": [RECORD]}, headers=bearer(BURST))
            for _ in range(RATE + 1)
        ]
        assert [s.status_code for s in statuses] == [200] * RATE + [429]
        assert int(statuses[-1].headers["retry-after"]) >= 1
        assert (
            statuses[-1]
            .json()["errors"][0]
            .startswith(
                f"Authorization: too many requests for key burst ({RATE} a minute); retry in "
            )
        )
        other = client.post("/predict", json={"records": [RECORD]}, headers=bearer(APP))
        assert other.status_code == 200  # a bucket per key

        metrics = client.get("/metrics", headers=bearer(APP)).text
    assert _metric(metrics, "missing") >= 2
    assert _metric(metrics, "invalid") >= 2
    assert _metric(metrics, "forbidden") == 1
    assert _metric(metrics, "rate_limited") == 1


def test_predict_url_sends_the_token(
    keyed: tuple[Server, Path], home: Path, new_customers: Path, tmp_path: Path
) -> None:
    server, cert = keyed
    env = {"MLSHIP_CA_BUNDLE": str(cert)}
    out = tmp_path / "scored.csv"
    args = ("predict", "churn", str(new_customers), "-o", str(out), "--url", server.base)
    result = run_cli(*args, "--token", CLI, home=home, env=env)
    assert f"at {server.base}" in result.stdout and "churn:1" in result.stdout
    scored = pd.read_csv(out)
    assert len(scored) == len(pd.read_csv(new_customers))
    assert set(scored["prediction"]) <= {"no", "yes"}
    assert list(scored.columns) == ["customer_id", "prediction", "proba_no", "proba_yes"]

    from_env = run_cli(*args, home=home, env={**env, "MLSHIP_TOKEN": CLI})
    assert from_env.returncode == 0

    refused = run_cli(*args, home=home, env=env, check=False)
    assert refused.returncode == 1
    assert f"{server.base}: it needs a token; pass --token or set MLSHIP_TOKEN" in refused.stderr
    wrong = run_cli(*args, "--token", "x" * 20, home=home, env=env, check=False)
    assert wrong.returncode == 1 and "the token was refused" in wrong.stderr


def test_a_load_test_sends_the_token(
    keyed: tuple[Server, Path], home: Path, tmp_path: Path
) -> None:
    server, cert = keyed
    payload = tmp_path / "request.json"
    payload.write_text(json.dumps({"records": [RECORD]}))
    env = {"MLSHIP_CA_BUNDLE": str(cert)}
    args = ("loadtest", f"{server.base}/predict", "--rate", "2", "--duration", "1",
            "--payload", str(payload), "--json", str(tmp_path / "load.json"))  # fmt: skip
    run_cli(*args, "--token", LOAD, home=home, env=env)
    found = json.loads((tmp_path / "load.json").read_text())
    assert (found["ok"], found["failed"]) == (2, 0), (found["errors"], found)
    run_cli(*args, home=home, env=env)  # no token: every request refused, and counted by kind
    found = json.loads((tmp_path / "load.json").read_text())
    assert (found["ok"], found["errors"]) == (0, {"HTTP 401": 2}), found


def test_refusals_are_logged_without_the_secret(keyed: tuple[Server, Path]) -> None:
    server, cert = keyed
    httpx.get(f"{server.base}/metrics", headers=bearer(APP[:-1]), verify=trusting(cert))
    output = server.stop()
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    refused = [line for line in logged if line.get("event") == "refused"]
    assert {line["reason"] for line in refused} == {
        "missing", "invalid", "forbidden", "rate_limited",
    }  # fmt: skip
    forbidden = next(line for line in refused if line["reason"] == "forbidden")
    assert forbidden["status"] == 403 and forbidden["caller"] == "key app"
    assert forbidden["path"] == "/feedback" and forbidden["request_id"]
    for secret in (APP, APP[:-1], CLI, BURST, OPS):
        assert secret not in output


@pytest.fixture(scope="module")
def tokened(home: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    tokens = {}
    for user, role in (("ana", "viewer"), ("sam", "scientist")):
        run_cli("users", "add", user, "--role", role, home=home)
        printed = run_cli("tokens", "create", user, "--name", "serving", home=home).stdout
        lines = printed.strip().splitlines()
        tokens[user] = lines[-1]
        tokens[f"{user} id"] = lines[0].split()[1].lstrip("#")
    args = ("--auth", "tokens", "--workers", "2", "--no-prediction-log")
    with serving("churn:1", home, *args) as server:
        yield server, tokens


def test_workspace_tokens_with_two_workers(
    tokened: tuple[Server, dict[str, str]], home: Path
) -> None:
    server, tokens = tokened
    with server.client() as client:
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post("/predict", json={"records": [RECORD]}).status_code == 401
    with server.client(tokens["ana"]) as ana, server.client(tokens["sam"]) as sam:
        answer = ana.post("/predict", json={"records": [RECORD]})
        assert answer.status_code == 200, answer.text
        feedback = {"request_id": answer.json()["request_id"], "label": "no"}
        refused = ana.post("/feedback", json=feedback)
        assert refused.status_code == 403
        assert "user ana has the viewer role" in refused.json()["errors"][0]
        assert sam.post("/feedback", json=feedback).is_success
        run_cli("tokens", "revoke", tokens["ana id"], home=home)
        for _ in range(4):  # whichever worker answers
            assert ana.post("/predict", json={}).status_code == 401


def test_a_server_without_its_keys_does_not_start(home: Path, tmp_path: Path) -> None:
    result = run_cli("serve", "churn:1", "--auth", "keys", home=home, check=False)
    assert result.returncode == 1
    assert "auth mode keys needs deployment keys: set MLSHIP_SERVE_KEYS" in result.stderr
    keys = tmp_path / "keys.txt"
    keys.write_text(f"app viewer {APP}\nlab owner {CLI}\n")
    args = ("serve", "churn:1", "--auth", "keys", "--auth-keys", str(keys), "--workers", "2")
    result = run_cli(*args, home=home, check=False)
    assert result.returncode == 1
    assert f"auth.keys_file {keys}, line 2: role 'owner'; expected one of" in result.stderr
    assert CLI not in result.stderr + result.stdout
