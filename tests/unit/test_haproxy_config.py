"""The HAProxy configuration ``mlship deploy haproxy`` writes: valid for HAProxy itself (checked
with ``haproxy -c``), with what a replica's death needs (health checks, retries, a request id);
and HAProxy's statistics and log lines read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.deploy import haproxy
from mlship.deploy.haproxy import (
    MODEL_SERVER_RETRIES,
    RESEND_SAFE_WRITES,
    Backend,
    Balancer,
    HaproxyError,
    check,
    find_haproxy,
    parse_log_line,
    parse_stats,
    render,
)


def _balancer(count: int = 3, **changes: object) -> Balancer:
    backends = tuple(Backend(f"replica-{i}", "127.0.0.1", 40000 + i) for i in range(1, count + 1))
    fields: dict[str, object] = {
        "name": "churn-1",
        "bind_host": "127.0.0.1",
        "port": 8000,
        "stats_port": 8404,
        "backends": backends,
        "health_path": "/v2/health/ready",
    }
    fields.update(changes)
    return Balancer(**fields)  # type: ignore[arg-type]


def _valid(text: str, tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    check(find_haproxy(), config)


def test_a_model_server_balancer_is_valid_and_retries_predictions(tmp_path: Path) -> None:
    text = render(_balancer())
    _valid(text, tmp_path)
    lines = [line.strip() for line in text.splitlines()]
    assert "option httpchk GET /v2/health/ready" in lines
    assert "http-check expect status 200" in lines
    assert "retries 3" in lines
    assert "option redispatch 1" in lines
    assert "option http-buffer-request" in lines  # so a POST body can be sent again
    assert f"retry-on {' '.join(MODEL_SERVER_RETRIES)}" in lines
    assert "balance leastconn" in lines
    assert any(line.startswith("default-server inter 500ms") and "fall 2 rise 2" in line
               for line in lines)  # fmt: skip
    # The caller's request id is kept; one is set when there is none, before any retry.
    assert (
        "http-request set-header X-Request-ID %[uuid(4)] unless { req.hdr(x-request-id) -m found }"
        in lines
    )
    assert not any("disable-l7-retry" in line for line in lines)  # predictions: all resent
    servers = [line for line in lines if line.startswith("server ")]
    assert servers == [f"server replica-{i} 127.0.0.1:{40000 + i} check" for i in (1, 2, 3)]
    assert "bind 127.0.0.1:8404" in lines  # the statistics page, on its own port
    assert "tune.bufsize 16384" in lines


def test_a_tracking_server_balancer_takes_401_as_up_and_resends_only_safe_requests(
    tmp_path: Path,
) -> None:
    text = render(
        _balancer(
            2,
            health_path="/api/v1/health",
            healthy_statuses=(200, 401),
            resend_only=RESEND_SAFE_WRITES,
            server_timeout_s=600,
        )
    )
    _valid(text, tmp_path)
    lines = [line.strip() for line in text.splitlines()]
    assert "http-check expect rstatus ^(200|401)$" in lines
    # Reads and keyed writes are sent again; other writes only when they never got through.
    assert (
        "http-request disable-l7-retry unless METH_GET || METH_HEAD || "
        "{ req.hdr(idempotency-key) -m found }"
    ) in lines
    assert "timeout server 600000ms" in lines


@settings(derandomize=True, max_examples=15, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=8),
    port=st.integers(min_value=1024, max_value=65535),
    name=st.text(max_size=80),  # a deployment's name: anything its YAML file says
    interval=st.integers(min_value=100, max_value=5000),
    timeout=st.floats(min_value=0.1, max_value=3600),
    buffer_kib=st.integers(min_value=16, max_value=16384),
)
def test_every_balancer_renders_a_configuration_haproxy_accepts(
    count: int,
    port: int,
    name: str,
    interval: int,
    timeout: float,
    buffer_kib: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    balancer = _balancer(
        count,
        name=name,
        port=port,
        check_interval_ms=interval,
        server_timeout_s=timeout,
        buffer_bytes=buffer_kib * 1024,
    )
    _valid(render(balancer), tmp_path_factory.mktemp("cfg"))


def test_no_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one backend"):
        render(_balancer(0))


def test_a_configuration_haproxy_refuses_is_an_error_quoting_it(tmp_path: Path) -> None:
    broken = render(_balancer()).replace("balance leastconn", "balance sometimes")
    with pytest.raises(HaproxyError, match=r"refused the configuration .*haproxy\.cfg"):
        _valid(broken, tmp_path)


def test_a_missing_haproxy_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(haproxy, "SEARCHED", (str(tmp_path),))
    with pytest.raises(HaproxyError, match=r"apt-get install haproxy"):
        find_haproxy()


HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight"
)
STATS = f"""{HEADER}
churn-1,FRONTEND,,,0,1,4096,2,182,269,0,0,0,,,,,OPEN,
replicas,replica-1,0,0,0,1,,268,182,269,,0,,0,0,0,0,UP,1
replicas,replica-2,0,0,0,1,,88,182,269,,0,,1,1,2,22,DOWN,1
replicas,replica-3,0,0,0,1,,10,182,269,,0,,0,0,0,0,DOWN 1/2,1
replicas,BACKEND,0,0,0,1,410,366,182,269,0,0,,1,1,2,22,UP,3
stats,FRONTEND,,,0,1,4096,2,182,269,0,0,0,,,,,OPEN,
"""
"""The first columns of HAProxy 2.6's ``/;csv``, as it writes them."""


def test_statistics_name_each_replica_and_the_backend_totals() -> None:
    states = {state.name: state for state in parse_stats(STATS)}
    assert set(states) == {"replica-1", "replica-2", "replica-3", "BACKEND"}
    assert states["replica-1"].up and states["replica-1"].sessions == 268
    killed = states["replica-2"]
    assert (killed.up, killed.retries, killed.redispatches, killed.failed) == (False, 2, 22, 2)
    assert not states["replica-3"].up  # coming back: not yet in the rotation
    assert states["BACKEND"].sessions == 366


def test_log_lines_give_the_request_id_the_replica_and_the_retries() -> None:
    redispatched = parse_log_line(
        "127.0.0.1:48400 [06/Dec/2026:20:43:59.915] churn-1 replicas/replica-1 1/0/0/91/94 200 "
        '372 ---- 4/4/3/1/+1 0/0 "POST /predict HTTP/1.1" id=84ed3760-87f7'
    )
    assert redispatched is not None
    assert (redispatched.request_id, redispatched.server, redispatched.status) == (
        "84ed3760-87f7", "replica-1", 200,
    )  # fmt: skip
    assert (redispatched.retries, redispatched.redispatched) == (1, True)
    failed = parse_log_line(
        "127.0.0.1:1 [06/Dec/2026:20:43:59.915] churn-1 replicas/<NOSRV> -1/-1/-1/-1/3001 503 "
        '216 SC-- 1/1/0/0/3 0/0 "POST /predict HTTP/1.1" id=abc'
    )
    assert failed is not None
    assert (failed.server, failed.status, failed.retries, failed.redispatched) == (
        "<NOSRV>", 503, 3, False,
    )  # fmt: skip
    warning = "[WARNING]  (1210) : Server replicas/replica-2 is UP, reason: Layer7 check passed"
    assert parse_log_line(warning) is None


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_line_is_read_or_skipped_never_an_exception(line: str) -> None:
    parse_log_line(line)
