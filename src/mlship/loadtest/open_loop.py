"""Requests at a constant arrival rate, their outcomes, and the figures read from them.

Open loop: request ``i`` is due at ``i / rate`` seconds whether or not earlier ones were answered,
and its latency runs from when it was due, not from when a connection was free. A closed loop
(each client waiting for its answer before it sends again) slows down with the server and hides
a stall: here a replica that dies shows as slow or failed requests, and as a gap in the answers.
``clients`` is the number of connections the requests share.

Every ``kill_every_s`` seconds the ``kill_command`` (a shell command line, such as
``kill -9 $(cat replica-2.pid)``) is run, and when it ran and what it said is kept with the
outcomes, so a report shows what was killed and when.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Load:
    """What to send, where, how often and for how long."""

    url: str
    rate: float
    """Requests per second."""
    duration_s: float
    clients: int = 8
    body: bytes | None = None
    """POSTed with ``content_type`` when given; a GET otherwise."""
    content_type: str = "application/json"
    timeout_s: float = 30.0
    kill_every_s: float | None = None
    kill_command: str | None = None
    token: str | None = field(default=None, repr=False)
    """Sent as ``Authorization: Bearer`` when given."""
    ca_bundle: str | None = None
    """The certificates to trust for https (a private CA); the system's when None."""

    @property
    def requests(self) -> int:
        return max(1, math.floor(self.rate * self.duration_s))


@dataclass(frozen=True)
class Outcome:
    """One request: when it was due (seconds from the start), how long its answer took from
    then, the HTTP status (None when none came) or the kind of failure, and the answer's
    ``X-Request-Id``."""

    due_s: float
    latency_s: float
    status: int | None
    error: str | None
    request_id: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def done_s(self) -> float:
        return self.due_s + self.latency_s


@dataclass(frozen=True)
class Kill:
    """One run of the kill command: when (seconds from the start), its exit code and output."""

    at_s: float
    command: str
    exit_code: int
    output: str


@dataclass(frozen=True)
class Second:
    """The answers that came back during one second of the run."""

    second: int
    ok: int
    failed: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Phase:
    """The requests due in one part of a run with kills: before the first kill, in the
    :data:`DURING_S` seconds after each kill, or after the first kill outside those."""

    name: str
    requests: int
    failed: int
    p50_ms: float | None
    p99_ms: float | None


DURING_S = 3.0
"""How long after a kill a request counts as sent "during" it: the time a load balancer needs
to notice a dead process (a few health checks) and a supervisor to start it again."""


@dataclass(frozen=True)
class Gap:
    """The longest time without a successful answer, and when it began."""

    seconds: float
    from_s: float


@dataclass(frozen=True)
class Summary:
    """The figures of a run."""

    url: str
    rate: float
    duration_s: float
    elapsed_s: float
    requests: int
    ok: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    errors: dict[str, int]
    """Failed requests by kind: ``HTTP 502``, ``ConnectError``, ``ReadTimeout``, ..."""
    kills: tuple[Kill, ...]
    timeline: tuple[Second, ...]
    gap: Gap
    phases: tuple[Phase, ...] = ()
    """Before, during and after the kills (none without kills)."""

    @property
    def throughput(self) -> float:
        """Successful answers per second."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class Run:
    """Every request's outcome and every kill, in order."""

    load: Load
    outcomes: tuple[Outcome, ...]
    kills: tuple[Kill, ...]
    elapsed_s: float


def run(load: Load) -> Run:
    """Send ``load``'s requests and wait for every answer (or its timeout)."""
    return asyncio.run(_run(load))


async def _run(load: Load) -> Run:
    limits = httpx.Limits(max_connections=load.clients, max_keepalive_connections=load.clients)
    headers = {"content-type": load.content_type} if load.body is not None else {}
    if load.token is not None:
        headers["authorization"] = f"Bearer {load.token}"
    timeout = httpx.Timeout(load.timeout_s)
    kills: list[Kill] = []
    verify: str | bool = load.ca_bundle if load.ca_bundle is not None else True
    async with httpx.AsyncClient(
        limits=limits, timeout=timeout, headers=headers, verify=verify
    ) as client:
        clock = asyncio.get_running_loop().time
        start = clock()
        killer = asyncio.create_task(_kill(load, start, clock, kills))
        tasks = []
        for i in range(load.requests):
            due = i / load.rate
            wait = start + due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(_one(client, load, due, start, clock)))
        outcomes = await asyncio.gather(*tasks)
        killer.cancel()
        elapsed = clock() - start
    return Run(load, tuple(outcomes), tuple(kills), elapsed)


async def _one(
    client: httpx.AsyncClient, load: Load, due: float, start: float, clock: Callable[[], float]
) -> Outcome:
    try:
        if load.body is None:
            response = await client.get(load.url)
        else:
            response = await client.post(load.url, content=load.body)
    except httpx.HTTPError as exc:
        return Outcome(due, clock() - start - due, None, type(exc).__name__, None)
    latency = clock() - start - due
    request_id = response.headers.get("x-request-id")
    error = None if response.is_success else f"HTTP {response.status_code}"
    return Outcome(due, latency, response.status_code, error, request_id)


async def _kill(load: Load, start: float, clock: Callable[[], float], kills: list[Kill]) -> None:
    """Run the kill command every ``kill_every_s`` seconds while requests are being sent."""
    if load.kill_every_s is None or load.kill_command is None:
        return
    n = 1
    while n * load.kill_every_s < load.duration_s:
        await asyncio.sleep(max(0.0, start + n * load.kill_every_s - clock()))
        at = clock() - start
        # The user's own command line, run as their shell would run it.
        process = await asyncio.create_subprocess_shell(
            load.kill_command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        code = await process.wait()
        kills.append(Kill(at, load.kill_command, code, output.decode(errors="replace").strip()))
        n += 1


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by the nearest rank, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def longest_gap(outcomes: tuple[Outcome, ...], end_s: float) -> Gap:
    """The longest stretch without a successful answer, between two answers or from the last
    one to ``end_s`` (the whole run when none came)."""
    moments = sorted(o.done_s for o in outcomes if o.ok)
    if not moments:
        return Gap(end_s, 0.0)
    edges = [*moments, max(end_s, moments[-1])]
    best = Gap(0.0, moments[0])
    for before, after in itertools.pairwise(edges):
        if after - before > best.seconds:
            best = Gap(after - before, before)
    return best


def summarise(result: Run) -> Summary:
    """The figures of ``result``: counts, latency percentiles of the successful answers, failures
    by kind, a per-second timeline (by when answers came) and the longest gap."""
    ok = [o.latency_s * 1000 for o in result.outcomes if o.ok]
    errors = Counter(o.error for o in result.outcomes if o.error is not None)
    seconds = math.ceil(max([result.elapsed_s, *(o.done_s for o in result.outcomes)]))
    timeline = []
    for second in range(seconds):
        inside = [o for o in result.outcomes if second <= o.done_s < second + 1]
        latencies = [o.latency_s * 1000 for o in inside if o.ok]
        timeline.append(
            Second(
                second,
                len(latencies),
                len(inside) - len(latencies),
                percentile(latencies, 0.5),
                percentile(latencies, 0.99),
            )
        )
    load = result.load
    return Summary(
        url=load.url,
        rate=load.rate,
        duration_s=load.duration_s,
        elapsed_s=result.elapsed_s,
        requests=len(result.outcomes),
        ok=len(ok),
        failed=len(result.outcomes) - len(ok),
        p50_ms=percentile(ok, 0.5),
        p95_ms=percentile(ok, 0.95),
        p99_ms=percentile(ok, 0.99),
        max_ms=max(ok) if ok else None,
        errors=dict(errors.most_common()),
        kills=result.kills,
        timeline=tuple(timeline),
        gap=longest_gap(result.outcomes, result.elapsed_s),
        phases=phases(result.outcomes, result.kills),
    )


def phases(outcomes: Sequence[Outcome], kills: Sequence[Kill]) -> tuple[Phase, ...]:
    """The requests before the first kill, during the kills (due in the :data:`DURING_S`
    seconds after one) and after, each with its failures and latency percentiles; none when
    nothing was killed."""
    if not kills:
        return ()
    first = min(kill.at_s for kill in kills)

    def during(outcome: Outcome) -> bool:
        return any(kill.at_s <= outcome.due_s < kill.at_s + DURING_S for kill in kills)

    groups: dict[str, list[Outcome]] = {"before": [], "during": [], "after": []}
    for outcome in outcomes:
        if outcome.due_s < first:
            groups["before"].append(outcome)
        elif during(outcome):
            groups["during"].append(outcome)
        else:
            groups["after"].append(outcome)
    found = []
    for name, inside in groups.items():
        latencies = [o.latency_s * 1000 for o in inside if o.ok]
        found.append(
            Phase(
                name,
                len(inside),
                len(inside) - len(latencies),
                percentile(latencies, 0.5),
                percentile(latencies, 0.99),
            )
        )
    return tuple(found)
