"""HAProxy in front of local replicas: its configuration, rendered from a typed description, and
the program itself (found, checked, its statistics read).

The configuration is a pure function of :class:`Balancer`, so it is tested by rendering it and
asking ``haproxy -c`` whether it is valid. What it sets, and why:

- health checks on each replica's readiness endpoint every 500 ms, down after two failures, up
  after two successes, so a dead or draining replica leaves the rotation within about a second;
  a replica that refuses a connection is marked down at once (``observe layer4``), so requests
  stop going to a dead one before its checks fail;
- ``retries 3`` and ``option redispatch``: a connection refused by a dead replica is tried again
  on another one; L7 retries (``retry-on``) re-send a request whose replica died before answering
  (the body is buffered, ``option http-buffer-request``, so a POST can be sent again); a model
  server's predictions are safe to re-send, a tracking server's writes only when they never
  reached it, or carry an ``Idempotency-Key`` the server applies once (``resend_only``);
- ``balance leastconn``: a replica busy with a large batch gets fewer new requests;
- a request id: the caller's ``X-Request-ID``, or a new one set before the request is forwarded,
  so a retried request keeps its id and the prediction log and HAProxy's log name the same one;
- a statistics page on its own local port (``/;csv`` for programs).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlship.errors import MlshipError

SEARCHED = ("/usr/sbin", "/usr/local/sbin")
"""Where HAProxy is looked for when it is not on PATH (Debian installs it in /usr/sbin)."""

MODEL_SERVER_RETRIES = ("conn-failure", "empty-response", "response-timeout", "502", "503")
"""When a prediction is sent again to another replica: it never reached one, or the replica
died (no answer, a timeout) or refused it while stopping (502, 503). Scoring is idempotent."""

RESEND_SAFE_WRITES = "METH_GET || METH_HEAD || { req.hdr(idempotency-key) -m found }"
"""Which tracking-server requests HAProxy may send again after they reached a replica that then
failed: reads, and writes with an ``Idempotency-Key`` (the server applies a key's write once).
Any other write is sent again only when it never reached a replica (a refused connection)."""


class HaproxyError(MlshipError):
    """HAProxy is missing, refused its configuration or could not start."""


@dataclass(frozen=True)
class Backend:
    """One replica: a name for the statistics and the logs, and where it listens."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class Balancer:
    """What HAProxy is to do: listen on ``bind_host:port``, spread requests over ``backends``,
    check ``health_path`` (healthy when the status matches ``healthy_statuses``), re-send on
    ``retry_on``, and show statistics on ``stats_port``."""

    name: str
    bind_host: str
    port: int
    stats_port: int
    backends: tuple[Backend, ...]
    health_path: str
    healthy_statuses: tuple[int, ...] = (200,)
    retry_on: tuple[str, ...] = MODEL_SERVER_RETRIES
    resend_only: str | None = None
    """An HAProxy condition: requests that do not match it are sent again only after a failed
    connection, never once a replica had them (None: any request may be)."""
    server_timeout_s: float = 30.0
    """Longest wait for a replica's answer; after it the request is re-sent when
    ``response-timeout`` is among ``retry_on``, else answered 504."""
    check_interval_ms: int = 500
    buffer_bytes: int = 16384
    """HAProxy's buffer (``tune.bufsize``): the largest request it can send again (the body and
    the headers must fit in it); each request in flight holds two."""
    log_target: str = "stdout"
    """Where HAProxy logs a line per request (``stdout``: the deploy command sends it to a file)."""


LOG_FORMAT = (
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc "
    "%ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r id=%[unique-id]"
)
"""HAProxy's own HTTP log line (``option httplog``) with the request id at the end; the fifth
field of ``%ac/%fc/%bc/%sc/%rc`` is how many times the request was retried (``+`` before it when
it was redispatched to another replica)."""


def render(balancer: Balancer) -> str:
    """The configuration file's text for ``balancer``."""
    if not balancer.backends:
        raise ValueError("a balancer needs at least one backend")
    statuses = "|".join(str(status) for status in balancer.healthy_statuses)
    expect = (
        f"http-check expect status {balancer.healthy_statuses[0]}"
        if len(balancer.healthy_statuses) == 1
        else f"http-check expect rstatus ^({statuses})$"
    )
    interval = balancer.check_interval_ms
    fast = max(interval // 2, 100)
    checks = (
        f"inter {interval}ms fastinter {fast}ms downinter {interval}ms fall 2 rise 2 "
        "observe layer4 error-limit 1 on-error mark-down"
    )
    servers = "\n".join(
        f"    server {backend.name} {backend.host}:{backend.port} check"
        for backend in balancer.backends
    )
    timeout = f"{int(balancer.server_timeout_s * 1000)}ms"
    resend = (
        ""
        if balancer.resend_only is None
        else f"\n    http-request disable-l7-retry unless {balancer.resend_only}"
    )
    return f"""# Written by mlship deploy haproxy; rewritten on every start.
global
    log {balancer.log_target} format raw local0
    maxconn 4096
    tune.bufsize {balancer.buffer_bytes}

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 30s
    timeout server {timeout}
    timeout check 2s

frontend {_identifier(balancer.name)}
    bind {balancer.bind_host}:{balancer.port}
    unique-id-format %[req.hdr(x-request-id)]
    http-request set-header X-Request-ID %[uuid(4)] unless {{ req.hdr(x-request-id) -m found }}
    log-format "{LOG_FORMAT}"
    default_backend replicas

backend replicas
    balance leastconn
    option httpchk GET {balancer.health_path}
    {expect}
    option http-buffer-request
    retries 3
    option redispatch 1
    retry-on {" ".join(balancer.retry_on)}{resend}
    default-server {checks}
{servers}

frontend stats
    bind 127.0.0.1:{balancer.stats_port}
    no log
    stats enable
    stats uri /
    stats refresh 2s
"""


def _identifier(name: str) -> str:
    """``name`` as an HAProxy section name (letters, digits and ``-_.:`` only; a deployment's
    name may hold anything else)."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "-", name)[:64] or "mlship"


def find_haproxy() -> Path:
    """The ``haproxy`` program: on PATH, or in /usr/sbin; an error saying how to install it."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path=":".join(SEARCHED))
    if found is None:
        raise HaproxyError(
            "haproxy is not installed (not on PATH, nor in /usr/sbin): install it with "
            "`apt-get install haproxy` (or your system's package manager), version 2.2 or later"
        )
    return Path(found)


def check(haproxy: Path, config: Path) -> None:
    """Have HAProxy check ``config`` (``haproxy -c``); an error with its complaint if invalid."""
    done = subprocess.run(
        [str(haproxy), "-c", "-q", "-f", str(config)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        complaint = (done.stderr or done.stdout).strip()
        raise HaproxyError(f"HAProxy refused the configuration {config}:\n{complaint}")


@dataclass(frozen=True)
class ServerState:
    """One replica as HAProxy sees it (a row of its statistics)."""

    name: str
    status: str
    """``UP``, ``DOWN``, ``MAINT``, ``UP 1/2`` (going down), ``DOWN 1/2`` (coming up), ..."""
    sessions: int
    """Requests forwarded to it so far."""
    retries: int
    """Connections or requests to it that were tried again."""
    redispatches: int
    """Requests taken away from it to another replica."""
    failed: int
    """Requests it failed to answer (connection or response errors)."""

    @property
    def up(self) -> bool:
        return self.status == "UP"


def parse_stats(text: str) -> tuple[ServerState, ...]:
    """The replicas' rows of HAProxy's CSV statistics (``/;csv``), and ``BACKEND``, their
    totals."""
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    found = []
    for row in rows:
        if row.get("pxname") != "replicas" or row.get("svname") == "FRONTEND":
            continue

        def number(key: str, row: dict[str, str] = row) -> int:
            value = row.get(key) or "0"
            return int(value) if value.isdigit() else 0

        failed = number("econ") + number("eresp")
        found.append(
            ServerState(
                row["svname"],
                row.get("status") or "",
                number("stot"),
                number("wretr"),
                number("wredis"),
                failed,
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class LoggedRequest:
    """One request of HAProxy's log (the line :data:`LOG_FORMAT` writes)."""

    request_id: str
    server: str
    """The replica that answered (``<NOSRV>`` when none did)."""
    status: int
    retries: int
    """How many times it was sent again after a failed attempt."""
    redispatched: bool
    """Whether it was sent to another replica than the first one chosen."""


_LOGGED = re.compile(
    r"^\S+ \[[^\]]+\] \S+ [^/\s]+/(?P<server>\S+) \S+ (?P<status>-?\d+) .*? "
    r"\d+/\d+/\d+/\d+/(?P<redispatched>\+?)(?P<retries>\d+) .* id=(?P<id>\S*)$"
)


def parse_log_line(line: str) -> LoggedRequest | None:
    """The request a line of HAProxy's log records; None for its other lines (warnings)."""
    found = _LOGGED.match(line.strip())
    if found is None:
        return None
    return LoggedRequest(
        found["id"],
        found["server"],
        int(found["status"]),
        int(found["retries"]),
        bool(found["redispatched"]),
    )
