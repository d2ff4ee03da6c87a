"""Who may call the model server: bearer tokens, roles per route, per-token rate limits.

Off by default, so a server that never asked for it answers everyone as before. On, every request
but the health, readiness and liveness checks (load balancers and kubelets call those without a
token) must carry ``Authorization: Bearer <secret>``, from one of two sources:

- ``tokens``: the workspace's API tokens (``mlship tokens create USER``), checked against the
  workspace's users as the tracking server checks them, or by asking the tracking server
  (``whoami``) when the workspace is one; the caller's role is the user's.
- ``keys``: deployment keys, given to the server in a file or in ``MLSHIP_SERVE_KEYS``, one
  ``NAME ROLE SECRET`` a line. Only each secret's SHA-256 is kept in memory, and a presented secret
  is compared with every key in constant time, so neither the keys nor the time taken tell which
  one was close.

A route needs the role of its kind (:class:`~mlship.spec.deployment.RouteRoles`): predict, feedback,
metrics, or admin for anything else, so that a route added later is closed until it is classed.
Refusals are 401 (no token, or one that is not valid, without saying which), 403 (a role too low)
and 429 (over the token's rate, with ``Retry-After``), in the error shape of the protocol at the
path; each is counted in ``mlship_auth_refused_total`` by reason and logged, never with the secret.
The middleware is plain ASGI, like the request-id one, and sits outside the body limit: a caller
without a token learns nothing about the server's limits.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
from prometheus_client import CollectorRegistry, Counter
from starlette.concurrency import run_in_threadpool

from mlship.errors import SpecError
from mlship.spec.deployment import KEYS_VARIABLE, Auth, RouteRoles
from mlship.store.accounts import ROLES, Role

log = logging.getLogger("mlship.serve.auth")

RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
Kind = Literal["open", "predict", "feedback", "metrics", "admin"]
Reason = Literal["missing", "invalid", "forbidden", "rate_limited", "unavailable"]

MIN_KEY_CHARS = 16
"""Shortest deployment key accepted: a key is a random secret, never a password."""

MAX_SECRET_CHARS = 4096
"""Longest secret looked at; anything longer is not a token or key of ours."""

OPEN_PATHS = frozenset({"/health", "/ping", "/v2/health/live", "/v2/health/ready"})
_MODEL_READY = re.compile(r"/v2/models/[^/]+(/versions/[^/]+)?/ready")
_MODEL = re.compile(r"/v2/models/[^/]+(/versions/[^/]+)?(/infer)?")
PREDICT_PATHS = frozenset(
    {"/predict", "/invocations", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


def route_kind(path: str) -> Kind:
    """The kind of route at ``path``, which decides the role it needs."""
    if path in OPEN_PATHS or _MODEL_READY.fullmatch(path):
        return "open"
    if path in PREDICT_PATHS or _MODEL.fullmatch(path):
        return "predict"
    if path == "/feedback":
        return "feedback"
    if path == "/metrics":
        return "metrics"
    return "admin"


def needed_role(roles: RouteRoles, kind: Kind) -> Role:
    needed: Role = getattr(roles, kind)
    return needed


@dataclass(frozen=True)
class Caller:
    """Who a valid token or key belongs to: ``name`` is what the logs show (never the secret),
    ``key`` what its rate is counted by."""

    name: str
    role: Role
    key: str


class Unavailable(Exception):
    """The tokens cannot be checked right now (the tracking server is unreachable): a 503."""


class Check(Protocol):
    """Checks a presented secret: its caller, or None when it is not valid."""

    def __call__(self, secret: str) -> Caller | None: ...


# -- deployment keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentKey:
    name: str
    role: Role
    sha256: bytes


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def parse_keys(text: str, origin: str) -> list[DeploymentKey]:
    """The keys in ``text`` (``NAME ROLE SECRET`` a line; ``#`` starts a comment), or a
    SpecError naming ``origin``'s line and what was expected. A secret may be given as
    ``sha256:HEX``, its digest, so that the file need not hold it."""
    keys: list[DeploymentKey] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{origin}, line {number}"
        fields = line.split()
        if len(fields) != 3:
            raise SpecError(
                f"{where}: expected NAME ROLE SECRET separated by spaces, found {len(fields)} "
                f"field{'s' if len(fields) != 1 else ''}"
            )
        name, role, secret = fields
        if role not in ROLES:
            raise SpecError(f"{where}: role {role!r}; expected one of {', '.join(ROLES)}")
        if name in seen:
            raise SpecError(f"{where}: key {name!r} is already given on line {seen[name]}")
        seen[name] = number
        if secret.startswith("sha256:"):
            try:
                digest = bytes.fromhex(secret.removeprefix("sha256:"))
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise SpecError(f"{where}: sha256: must be followed by 64 hexadecimal digits")
        elif len(secret) < MIN_KEY_CHARS:
            raise SpecError(
                f"{where}: key {name!r} has {len(secret)} characters; a key needs at least "
                f"{MIN_KEY_CHARS} random ones (e.g. `openssl rand -hex 32`)"
            )
        else:
            digest = _digest(secret)
        keys.append(DeploymentKey(name, role, digest))
    return keys


def load_keys(auth: Auth, environ: dict[str, str] | None = None) -> list[DeploymentKey]:
    """The deployment keys of ``auth.keys_file`` and of ``MLSHIP_SERVE_KEYS``; a SpecError when
    there are none (a server that refuses everyone is a mistake, not a configuration)."""
    env = os.environ if environ is None else environ
    keys: list[DeploymentKey] = []
    if auth.keys_file is not None:
        try:
            text = auth.keys_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SpecError(f"auth.keys_file {auth.keys_file}: cannot read it: {reason}") from None
        keys += parse_keys(text, f"auth.keys_file {auth.keys_file}")
    if env.get(KEYS_VARIABLE):
        found = parse_keys(env[KEYS_VARIABLE], KEYS_VARIABLE)
        names = {key.name for key in keys}
        twice = sorted(names & {key.name for key in found})
        if twice:
            raise SpecError(f"{KEYS_VARIABLE}: key {twice[0]!r} is also in auth.keys_file")
        keys += found
    if not keys:
        raise SpecError(
            f"auth mode keys needs deployment keys: set {KEYS_VARIABLE} or auth.keys_file "
            "(--auth-keys FILE), one `NAME ROLE SECRET` a line"
        )
    return keys


class KeyCheck:
    """Deployment keys, compared in constant time: every key is compared, whichever matches."""

    def __init__(self, keys: list[DeploymentKey]) -> None:
        self.keys = keys

    def __call__(self, secret: str) -> Caller | None:
        digest = _digest(secret)
        found: DeploymentKey | None = None
        for key in self.keys:
            if hmac.compare_digest(key.sha256, digest):
                found = key
        if found is None:
            return None
        return Caller(f"key {found.name}", found.role, f"key:{found.name}")


# -- the workspace's tokens ------------------------------------------------------------------


class Authenticates(Protocol):
    """What checks a workspace token: :meth:`mlship.security.users.SqlUsers.authenticate`."""

    def authenticate(self, secret: str) -> Any: ...


class TokenCheck:
    """The workspace's API tokens, checked in its metadata store (an indexed lookup of the
    token's SHA-256, as the tracking server does)."""

    def __init__(self, users: Authenticates) -> None:
        self.users = users

    def __call__(self, secret: str) -> Caller | None:
        try:
            identity = self.users.authenticate(secret)
        except Exception as exc:  # the database is away: the caller may retry elsewhere
            raise Unavailable(f"the workspace's tokens cannot be checked: {exc}") from None
        if identity is None:
            return None
        return Caller(f"user {identity.user}", identity.role, f"token:{identity.token_id}")


class RemoteTokenCheck:
    """The tracking server's API tokens, checked by asking it who the token belongs to
    (``GET /api/v1/whoami``). An answer is remembered for ``remember`` seconds, so that a busy
    server does not ask once a request; a revoked token stops working after at most that long."""

    def __init__(
        self,
        url: str,
        *,
        verify: Any = True,
        remember: float = 10.0,
        timeout: float = 5.0,
        http: Any = None,
    ) -> None:
        """``http``: the ``httpx.Client`` to ask with (one is made when None)."""
        import httpx

        self.url = url.rstrip("/")
        self.remember = remember
        self._http = http or httpx.Client(verify=verify, timeout=timeout)
        self._known: dict[bytes, tuple[float, Caller | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, secret: str) -> Caller | None:
        import httpx

        digest = _digest(secret)
        now = time.monotonic()
        with self._lock:
            known = self._known.get(digest)
        if known is not None and now - known[0] < self.remember:
            return known[1]
        try:
            answer = self._http.get(
                f"{self.url}/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"the tracking server at {self.url} is unreachable: {exc}") from None
        if answer.status_code == 401:
            caller = None
        elif answer.status_code == 200:
            caller = _whoami(answer, self.url)
        else:
            raise Unavailable(f"the tracking server at {self.url} answered {answer.status_code}")
        with self._lock:
            if len(self._known) > 10_000:  # only valid or tried secrets land here; keep it small
                self._known.clear()
            self._known[digest] = (now, caller)
        return caller


def _whoami(answer: Any, url: str) -> Caller:
    """The caller in a tracking server's ``whoami`` answer."""
    try:
        body = answer.json()
        user, role, token_id = body["user"], body["role"], body["token_id"]
    except (ValueError, KeyError, TypeError):
        raise Unavailable(f"the tracking server at {url} gave an unreadable whoami") from None
    if role not in ROLES:
        raise Unavailable(f"the tracking server at {url} gave an unknown role {role!r}")
    return Caller(f"user {user}", role, f"token:{token_id}")


# -- rate limits -----------------------------------------------------------------------------


class Buckets:
    """A token bucket per caller: ``per_minute`` requests on average, bursts up to that. The
    clock is given so that the arithmetic can be tested without waiting."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None when ``key`` may go on, else the seconds until it may."""
        if self.rate <= 0:
            return None
        now = self.clock()
        with self._lock:
            level, last = self._buckets.get(key, (self.capacity, now))
            level = min(self.capacity, level + (now - last) * self.rate)
            if level < 1.0:
                self._buckets[key] = (level, now)
                return (1.0 - level) / self.rate
            self._buckets[key] = (level - 1.0, now)
            return None


# -- the middleware --------------------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    """The policy of one server: how secrets are checked, what each route needs, the rate."""

    mode: str
    check: Check
    roles: RouteRoles
    buckets: Buckets
    blocking: bool = True
    """Whether ``check`` waits on a database or a server (run off the event loop): not for
    keys, whose check is a few hashes."""


def guard_for(auth: Auth, users: Callable[[], Check] | None = None) -> Guard | None:
    """The guard of ``auth`` (None when it is off); ``users`` gives the token check in tokens
    mode. Keys are read here, so a bad key file stops the server before it listens."""
    if auth.mode == "off":
        return None
    if auth.mode == "keys":
        check: Check = KeyCheck(load_keys(auth))
    else:
        if users is None:
            raise SpecError("auth mode tokens needs a workspace whose users hold the tokens")
        check = users()
    return Guard(auth.mode, check, auth.roles, Buckets(auth.per_minute), auth.mode == "tokens")


ErrorBody = Callable[[str, list[str]], dict[str, Any]]


def _bearer(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bool]:
    """The secret of the first ``Authorization`` header, and whether there was one."""
    value = next((v for k, v in headers if k.lower() == b"authorization"), None)
    if value is None:
        return None, False
    scheme, _, secret = value.decode("latin-1").strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > MAX_SECRET_CHARS:
        return None, True
    if not secret.isascii() or not secret.isprintable():
        return None, True
    return secret, True


@dataclass(frozen=True)
class Refusal:
    """A request refused: the status, the reason counted, the message sent back."""

    status: int
    reason: Reason
    message: str
    retry_after: int | None = None


MESSAGES: dict[Reason, str] = {
    "missing": "Authorization: this server needs a bearer token (Authorization: Bearer TOKEN)",
    "invalid": "Authorization: the bearer token is not valid here",
}


class Authenticating:
    """Refuses requests without a valid token of the role their route needs (plain ASGI)."""

    def __init__(
        self, app: Any, guard: Guard, error_body: ErrorBody, registry: CollectorRegistry
    ) -> None:
        self.app = app
        self.guard = guard
        self.error_body = error_body
        self.refused = Counter(
            "mlship_auth_refused",
            "Requests refused by authentication: missing, invalid, forbidden, rate_limited, "
            "unavailable",
            ("reason",),
            registry=registry,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = route_kind(scope["path"])
        if kind != "open":
            refusal, caller = await self._judge(scope["path"], scope["headers"], kind)
            if refusal is not None:
                await self._refuse(scope, send, refusal, caller)
                return
            assert caller is not None
            scope.setdefault("state", {})["caller"] = caller.name
        await self.app(scope, receive, send)

    async def _judge(
        self, path: str, headers: list[tuple[bytes, bytes]], kind: Kind
    ) -> tuple[Refusal | None, Caller | None]:
        """Why a request for ``path`` is refused (None when it may go on), and its caller."""
        secret, given = _bearer(headers)
        if secret is None:
            reason: Reason = "invalid" if given else "missing"
            return Refusal(401, reason, MESSAGES[reason]), None
        try:
            if self.guard.blocking:
                caller = await run_in_threadpool(self.guard.check, secret)
            else:
                caller = self.guard.check(secret)
        except Unavailable as exc:
            message = f"Authorization: cannot be checked now ({exc})"
            return Refusal(503, "unavailable", message, retry_after=5), None
        if caller is None:
            return Refusal(401, "invalid", MESSAGES["invalid"]), None
        needed = needed_role(self.guard.roles, kind)
        if RANK[caller.role] < RANK[needed]:
            message = (
                f"Authorization: {caller.name} has the {caller.role} role; {path} needs "
                f"{needed} or above"
            )
            return Refusal(403, "forbidden", message), caller
        wait = self.guard.buckets.take(caller.key)
        if wait is not None:
            message = (
                f"Authorization: too many requests for {caller.name} "
                f"({self.guard.buckets.capacity:g} a minute); retry in {wait:.1f} s"
            )
            return Refusal(429, "rate_limited", message, max(1, math.ceil(wait))), caller
        return None, caller

    async def _refuse(
        self,
        scope: Any,
        send: Callable[[Any], Awaitable[None]],
        refusal: Refusal,
        caller: Caller | None,
    ) -> None:
        status, reason, retry_after = refusal.status, refusal.reason, refusal.retry_after
        self.refused.labels(reason).inc()
        state = scope.get("state", {})
        client = scope.get("client")
        log.warning(
            "refused %s %s: %s",
            scope["method"],
            scope["path"],
            reason,
            extra={
                "event": "refused",
                "reason": reason,
                "status": status,
                "method": scope["method"],
                "path": scope["path"],
                "request_id": state.get("request_id"),
                "caller": None if caller is None else caller.name,
                "client": None if not client else str(client[0]),
            },
        )
        body = orjson.dumps(self.error_body(scope["path"], [refusal.message]))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            challenge = b'Bearer error="invalid_token"' if reason == "invalid" else b"Bearer"
            headers.append((b"www-authenticate", challenge))
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
