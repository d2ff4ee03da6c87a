"""The model server's authentication: deployment keys read strictly, each route's role, the
per-token rate, and refusals (401, 403, 429) in each protocol's error shape, never a 5xx, for
any ``Authorization`` header at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.errors import SpecError
from mlship.serve.app import create_app
from mlship.serve.auth import (
    Buckets,
    Caller,
    Guard,
    KeyCheck,
    RemoteTokenCheck,
    TokenCheck,
    Unavailable,
    guard_for,
    load_keys,
    parse_keys,
    route_kind,
)
from mlship.spec.deployment import Auth, RouteRoles, load_deployment
from mlship.train.model_io import LoadedModel
from mlship.workspace import Workspace
from tests.serving import RECORD

VIEWER = "viewer-key-0123456789abcdef"
SCIENTIST = "scientist-key-0123456789abcdef"
KEYS = f"""\
# name  role       secret
app     viewer     {VIEWER}
lab     scientist  {SCIENTIST}
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def model(trained: Workspace) -> LoadedModel:
    return trained.load_model(trained.tracking.get_version("churn", 1))


def _client(model: LoadedModel, guard: Guard) -> TestClient:
    return TestClient(create_app(model, guard=guard), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(model: LoadedModel) -> Iterator[TestClient]:
    guard = Guard("keys", KeyCheck(parse_keys(KEYS, "keys")), RouteRoles(), Buckets(0))
    with _client(model, guard) as test_client:
        yield test_client


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app viewer", "keys, line 1: expected NAME ROLE SECRET separated by spaces, found 2"),
        (f"\n\napp owner {VIEWER}", "keys, line 3: role 'owner'; expected one of viewer, "),
        ("app viewer short", "keys, line 1: key 'app' has 5 characters; a key needs at least 16"),
        (f"a viewer {VIEWER}\na admin {SCIENTIST}", "keys, line 2: key 'a' is already given on"),
        ("a viewer sha256:abc", "keys, line 1: sha256: must be followed by 64 hexadecimal"),
    ],
)
def test_a_bad_key_line_is_named(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_keys(text, "keys")


def test_keys_come_from_a_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(KEYS)
    digest = KeyCheck(parse_keys(f"x viewer {VIEWER}", "k")).keys[0].sha256.hex()
    keys = load_keys(
        Auth(mode="keys", keys_file=path), {"MLSHIP_SERVE_KEYS": f"ops admin sha256:{digest}"}
    )
    assert [(k.name, k.role) for k in keys] == [
        ("app", "viewer"), ("lab", "scientist"), ("ops", "admin"),
    ]  # fmt: skip
    check = KeyCheck(keys)
    found = check(VIEWER)
    assert found is not None and found.role == "admin" and found.name == "key ops"
    assert check(VIEWER[:-1]) is None and check(VIEWER + "x") is None
    with pytest.raises(SpecError, match="auth mode keys needs deployment keys"):
        load_keys(Auth(mode="keys"), {})
    with pytest.raises(SpecError, match=f"auth.keys_file {tmp_path / 'nope'}: cannot read it"):
        load_keys(Auth(mode="keys", keys_file=tmp_path / "nope"), {})


def test_no_guard_when_auth_is_off() -> None:
    assert guard_for(Auth()) is None


def test_keys_are_checked_on_the_event_loop_tokens_off_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSHIP_SERVE_KEYS", KEYS)
    keys = guard_for(Auth(mode="keys", per_minute=60))
    assert keys is not None and not keys.blocking and keys.buckets.capacity == 60
    with pytest.raises(SpecError, match="auth mode tokens needs a workspace"):
        guard_for(Auth(mode="tokens"))


def test_a_deployment_file_names_a_bad_auth_field(tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text("routes: [{model: churn}]\nauth: {mode: off}\n")  # YAML's false
    assert load_deployment(path).auth.mode == "off"
    path.write_text("routes: [{model: churn}]\nauth: {mode: on, roles: {predict: boss}}\n")
    with pytest.raises(SpecError) as raised:
        load_deployment(path)
    assert str(raised.value).splitlines() == [
        f"{path}, field auth.mode: Input should be 'off', 'tokens' or 'keys'",
        f"{path}, field auth.roles.predict: Input should be 'viewer', 'scientist', 'reviewer' "
        "or 'admin'",
    ]


# -- routes and roles ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/health", "open"),
        ("/ping", "open"),
        ("/v2/health/ready", "open"),
        ("/v2/health/live", "open"),
        ("/v2/models/churn/ready", "open"),
        ("/predict", "predict"),
        ("/invocations", "predict"),
        ("/v2/models/churn/infer", "predict"),
        ("/v2/models/churn", "predict"),
        ("/openapi.json", "predict"),
        ("/feedback", "feedback"),
        ("/metrics", "metrics"),
        ("/anything-added-later", "admin"),
        ("/health/", "admin"),
    ],
)
def test_each_route_has_a_kind(path: str, kind: str) -> None:
    assert route_kind(path) == kind


def test_health_stays_open_and_predictions_need_a_token(client: TestClient) -> None:
    for path in ("/health", "/v2/health/ready", "/v2/health/live", "/v2/models/churn/ready"):
        assert client.get(path).status_code == 200, path
    refused = client.post("/predict", json={"records": [RECORD]})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json() == {
        "errors": ["Authorization: this server needs a bearer token (Authorization: Bearer TOKEN)"]
    }
    answer = client.post("/predict", json={"records": [RECORD]}, headers=_bearer(VIEWER))
    assert answer.status_code == 200 and answer.json()["predictions"][0] in ("no", "yes")


def test_refusals_speak_each_protocol(client: TestClient) -> None:
    wrong = _bearer("not-a-key-of-this-server")
    mlflow = client.post("/invocations", json={"inputs": [RECORD]}, headers=wrong)
    assert mlflow.status_code == 401
    assert mlflow.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert mlflow.json()["message"] == "Authorization: the bearer token is not valid here"
    v2 = client.post("/v2/models/churn/infer", json={"inputs": []})
    assert v2.status_code == 401 and v2.json()["error"].startswith("Authorization: this server")


def test_a_role_too_low_is_forbidden(client: TestClient) -> None:
    feedback = {"request_id": "r1", "label": "yes"}
    refused = client.post("/feedback", json=feedback, headers=_bearer(VIEWER))
    assert refused.status_code == 403
    assert refused.json() == {
        "errors": ["Authorization: key app has the viewer role; /feedback needs scientist or above"]
    }
    assert client.get("/metrics", headers=_bearer(VIEWER)).status_code == 200
    assert client.get("/not-a-route", headers=_bearer(SCIENTIST)).status_code == 403


def test_refusals_are_counted_by_reason(model: LoadedModel) -> None:
    guard = Guard("keys", KeyCheck(parse_keys(KEYS, "keys")), RouteRoles(), Buckets(0))
    with _client(model, guard) as client:
        client.post("/predict", json={"records": [RECORD]})
        client.post("/predict", json={"records": [RECORD]}, headers=_bearer("wrong" * 4))
        client.post("/predict", json={"records": [RECORD]}, headers={"Authorization": "Basic x"})
        client.post("/feedback", json={}, headers=_bearer(VIEWER))
        metrics = client.get("/metrics", headers=_bearer(VIEWER)).text
    assert 'mlship_auth_refused_total{reason="missing"} 1.0' in metrics
    assert 'mlship_auth_refused_total{reason="invalid"} 2.0' in metrics
    assert 'mlship_auth_refused_total{reason="forbidden"} 1.0' in metrics


# -- rate limits -----------------------------------------------------------------------------


def test_the_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = Buckets(6, clock)  # one every 10 s, bursts of 6
    assert [buckets.take("a") for _ in range(6)] == [None] * 6
    assert buckets.take("a") == pytest.approx(10.0)
    assert buckets.take("b") is None  # each caller its own bucket
    clock.now += 5
    assert buckets.take("a") == pytest.approx(5.0)
    clock.now += 5
    assert buckets.take("a") is None
    assert Buckets(0, clock).take("a") is None


def test_over_the_rate_is_429_with_retry_after(model: LoadedModel) -> None:
    clock = Clock()
    guard = Guard("keys", KeyCheck(parse_keys(KEYS, "keys")), RouteRoles(), Buckets(2, clock))
    body = {"records": [RECORD]}
    with _client(model, guard) as client:
        statuses = [
            client.post("/predict", json=body, headers=_bearer(VIEWER)).status_code
            for _ in range(2)
        ]
        refused = client.post("/predict", json=body, headers=_bearer(VIEWER))
        other = client.post("/predict", json=body, headers=_bearer(SCIENTIST))
        clock.now += 30
        again = client.post("/predict", json=body, headers=_bearer(VIEWER))
    assert statuses == [200, 200]
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    assert refused.json()["errors"] == [
        "Authorization: too many requests for key app (2 a minute); retry in 30.0 s"
    ]
    assert other.status_code == 200 and again.status_code == 200


# -- the workspace's tokens ------------------------------------------------------------------


def test_workspace_tokens_carry_their_users_role(model: LoadedModel, workspace: Workspace) -> None:
    workspace.users.add("ana", "viewer")
    workspace.users.add("sam", "scientist")
    ana = workspace.users.create_token("ana", "serving").secret
    sam = workspace.users.create_token("sam", "serving").secret
    guard = Guard("tokens", TokenCheck(workspace.users), RouteRoles(), Buckets(0))  # type: ignore[arg-type]
    feedback = {"request_id": "r1", "label": "yes"}
    with _client(model, guard) as client:
        assert client.post("/predict", json={"records": [RECORD]}, headers=_bearer(ana)).is_success
        assert client.post("/feedback", json=feedback, headers=_bearer(ana)).status_code == 403
        # Past the role check (no feedback store here, so the route is not found).
        assert client.post("/feedback", json=feedback, headers=_bearer(sam)).status_code == 404
        workspace.users.set_disabled("ana", True)
        assert client.post("/predict", json={}, headers=_bearer(ana)).status_code == 401


def test_a_tracking_server_vouches_for_its_tokens(workspace: Workspace) -> None:
    from mlship.server.app import create_app as tracking_app

    workspace.users.add("rev", "reviewer")
    created = workspace.users.create_token("rev", "serving")
    with TestClient(tracking_app(workspace)) as tracking:
        remembering = RemoteTokenCheck("http://testserver/", http=tracking, remember=3600)
        asking = RemoteTokenCheck("http://testserver", http=tracking, remember=0)
        for check in (remembering, asking):
            caller = check(created.secret)
            assert caller == Caller("user rev", "reviewer", f"token:{created.id}")
            assert check("mls_" + "x" * 43) is None
        workspace.users.revoke(created.id)
        assert asking(created.secret) is None
        assert remembering(created.secret) is not None  # until the answer is older than remember
    away = RemoteTokenCheck("http://127.0.0.1:9", timeout=1)  # nothing listens on the discard port
    with pytest.raises(Unavailable, match=r"tracking server at http://127\.0\.0\.1:9 is unreach"):
        away(created.secret)


# -- any header at all -----------------------------------------------------------------------

_schemes = st.sampled_from([b"Bearer", b"bearer", b"BEARER", b"Basic", b"Token", b"", b"Bearer:"])
_secrets = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=40).map(lambda text: text.encode("utf-8")),
    st.integers(0, len(VIEWER) - 1).map(lambda i: (VIEWER[:i] + "#" + VIEWER[i + 1 :]).encode()),
    st.just((VIEWER + " " + VIEWER).encode()),
    st.just(("é" + VIEWER).encode("latin-1")),
)
_headers = st.one_of(
    st.binary(max_size=80),
    st.tuples(_schemes, st.sampled_from([b" ", b"  ", b"\t", b""]), _secrets).map(b"".join),
)


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(header=_headers, path=st.sampled_from(["/predict", "/invocations", "/v2/models/x/infer"]))
def test_no_authorization_header_gets_past_or_breaks_the_server(
    client: TestClient, header: bytes, path: str
) -> None:
    response = client.post(path, content=b"{}", headers=[(b"authorization", header)])
    assert response.status_code == 401, (header, response.text)
    body = response.json()
    text = body.get("errors", [None])[0] or body.get("message") or body.get("error")
    assert text.startswith("Authorization: "), body
    assert VIEWER not in response.text
