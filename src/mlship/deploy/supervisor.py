"""Replicas behind HAProxy, supervised: started, checked, restarted when they die, stopped in order.

The order of a start: every replica on a port of its own, all of them answering their health
endpoint (a replica that dies first stops the start, with the end of its log: a bad model
reference is not restarted for ever), then HAProxy in front of them. While it runs, a replica that
dies is started again on the same port after a backoff (0.5 s, doubling up to 30 s while it keeps
dying) and HAProxy takes it back once its health checks pass. The order of a stop: HAProxy
first, softly (it stops listening and finishes the requests it has), then SIGINT to every
replica, which finish their requests and write their logs (no drain period: nothing can arrive
once HAProxy is stopped), SIGKILL for those that take longer than the grace.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mlship.deploy.haproxy import (
    Backend,
    Balancer,
    HaproxyError,
    ServerState,
    check,
    parse_stats,
    render,
)
from mlship.deploy.replicas import (
    Replica,
    describe_exit,
    free_ports,
    stop_process,
    tail,
    wait_until_ready,
)
from mlship.errors import MlshipError
from mlship.store.artifacts import atomic_write

HAPROXY_GRACE_S = 15.0
"""How long HAProxy may take to finish the requests it has when told to stop."""

REPLICA_GRACE_S = 60.0
"""How long a replica may take to drain after SIGTERM before it is killed."""


@dataclass(frozen=True)
class Plan:
    """What to run: ``count`` replicas of ``command`` (each gets ``--host 127.0.0.1 --port P``
    added), HAProxy on ``host:port`` in front, everything written under ``directory``."""

    name: str
    command: tuple[str, ...]
    count: int
    host: str
    port: int
    stats_port: int
    directory: Path
    health_path: str
    healthy_statuses: tuple[int, ...]
    retry_on: tuple[str, ...]
    resend_only: str | None
    server_timeout_s: float
    buffer_bytes: int = 16384
    start_timeout_s: float = 180.0


@dataclass(frozen=True)
class ReplicaView:
    """One replica as the command shows it."""

    name: str
    port: int
    pid: int | None
    state: str
    """HAProxy's view (``UP``, ``DOWN``, ...), or ``restarting`` while the process is dead."""
    restarts: int
    last_exit: str
    log: Path
    served: int
    retries: int
    redispatches: int


@dataclass
class Supervisor:
    """Runs a :class:`Plan`: :meth:`start`, then :meth:`watch` until told to stop, then
    :meth:`stop`. ``say`` is told every event (a death, a restart, a state change)."""

    plan: Plan
    haproxy: Path
    say: Callable[[str], None]
    replicas: list[Replica] = field(default_factory=list)
    balancer: Replica | None = None
    states: dict[str, ServerState] = field(default_factory=dict)
    stopped: bool = False

    @property
    def config_file(self) -> Path:
        return self.plan.directory / "haproxy.cfg"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.plan.stats_port}/;csv"

    def start(self, stopping: Callable[[], bool]) -> None:
        """Start the replicas, wait for all of them, then HAProxy; stops what it started and
        raises an error naming the replica and quoting its log when one cannot start."""
        plan = self.plan
        plan.directory.mkdir(parents=True, exist_ok=True)
        ports = free_ports(plan.count, avoid=(plan.port, plan.stats_port))
        for index, port in enumerate(ports, start=1):
            command = (*plan.command, "--host", "127.0.0.1", "--port", str(port))
            replica = Replica(
                index,
                port,
                command,
                plan.directory / f"replica-{index}.log",
                plan.directory / f"replica-{index}.pid",
            )
            replica.start()
            self.replicas.append(replica)
        try:
            dead = wait_until_ready(self.replicas, self._ready, plan.start_timeout_s, stopping)
        except TimeoutError as exc:
            self.stop()
            raise MlshipError(f"{exc}; their logs are in {plan.directory}") from None
        if dead:
            self.stop()
            first = dead[0]
            code = first.process.returncode if first.process is not None else 0
            raise MlshipError(
                f"{first.name} {describe_exit(code)} before it answered {plan.health_path}; "
                f"the end of its log ({first.log}):\n{tail(first.log)}"
            )
        if stopping():
            return
        balancer = Balancer(
            plan.name,
            plan.host,
            plan.port,
            plan.stats_port,
            tuple(Backend(r.name, "127.0.0.1", r.port) for r in self.replicas),
            plan.health_path,
            plan.healthy_statuses,
            plan.retry_on,
            plan.resend_only,
            plan.server_timeout_s,
            buffer_bytes=plan.buffer_bytes,
        )
        atomic_write(self.config_file, [render(balancer).encode()])
        try:
            check(self.haproxy, self.config_file)
        except HaproxyError:
            self.stop()
            raise
        self._start_balancer()
        self._wait_for_balancer()

    def _ready(self, port: int) -> bool:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}{self.plan.health_path}", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code in self.plan.healthy_statuses

    def _start_balancer(self) -> None:
        directory = self.plan.directory
        command = (str(self.haproxy), "-db", "-f", str(self.config_file))
        self.balancer = Replica(
            0, self.plan.port, command, directory / "haproxy.log", directory / "haproxy.pid",
            label="HAProxy",
        )  # fmt: skip
        self.balancer.start()

    def _wait_for_balancer(self) -> None:
        """Until HAProxy answers its statistics page and has every replica UP; an error
        quoting its log if it ends."""
        deadline = time.monotonic() + 20
        assert self.balancer is not None and self.balancer.process is not None
        process = self.balancer.process
        log = self.plan.directory / "haproxy.log"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.stop()
                raise HaproxyError(
                    f"HAProxy {describe_exit(process.returncode)} at start; the end of its log "
                    f"({log}):\n{tail(log)}"
                )
            if self.poll_stats() and all(
                self.states.get(r.name) is not None and self.states[r.name].up
                for r in self.replicas
            ):
                return
            time.sleep(0.2)
        self.stop()
        raise HaproxyError(
            f"HAProxy did not report every replica UP within 20 s (statistics on port "
            f"{self.plan.stats_port}); see {log}"
        )

    def poll_stats(self) -> bool:
        """Read HAProxy's view of the replicas and report what changed; False if unreachable."""
        try:
            response = httpx.get(self.stats_url, timeout=2)
            response.raise_for_status()
        except httpx.HTTPError:
            return False
        for state in parse_stats(response.text):
            before = self.states.get(state.name)
            self.states[state.name] = state
            if state.name == "BACKEND":
                continue
            if before is not None and before.up != state.up and "/" not in state.status:
                self.say(f"{state.name} is {state.status} in HAProxy")
        return True

    def watch(self, stop: threading.Event, tick: Callable[[], None] | None = None) -> None:
        """Restart replicas (and HAProxy) that die, until ``stop`` is set; ``tick`` is called
        after every reading of HAProxy's statistics (twice a second)."""
        next_stats = 0.0
        supervised = [*self.replicas, *([self.balancer] if self.balancer else [])]
        while not stop.is_set():
            now = time.monotonic()
            for replica in supervised:
                code = replica.died()
                if code is not None:
                    wait = replica.schedule_restart(code, now)
                    self.say(
                        f"{replica.name} (pid {replica.pid}, port {replica.port}) "
                        f"{replica.last_exit}; restarting in {wait:g} s"
                    )
                elif replica.due(now):
                    replica.restart()
                    self.say(f"{replica.name} restarted (pid {replica.pid})")
            if now >= next_stats:
                self.poll_stats()
                next_stats = now + 0.5
                if tick is not None:
                    tick()
            stop.wait(0.1)

    def views(self) -> list[ReplicaView]:
        """Each replica's process and HAProxy's view of it."""
        found = []
        for replica in self.replicas:
            state = self.states.get(replica.name)
            shown = "restarting" if replica.restart_at is not None else "starting"
            if state is not None and replica.restart_at is None:
                shown = state.status
            if self.stopped and replica.process is not None:
                shown = _stopped(replica.process.poll())

            found.append(
                ReplicaView(
                    replica.name,
                    replica.port,
                    replica.pid,
                    shown,
                    replica.restarts,
                    replica.last_exit,
                    replica.log,
                    state.sessions if state else 0,
                    state.retries if state else 0,
                    state.redispatches if state else 0,
                )
            )
        return found

    def backend_totals(self) -> ServerState | None:
        """The backend's totals (requests, retries, redispatches) as HAProxy last reported."""
        return self.states.get("BACKEND")

    def stop(self) -> None:
        """HAProxy softly (SIGUSR1: it stops listening and finishes its requests), then every
        replica at once, each waited for (SIGKILL after the grace). With HAProxy stopped no
        request can arrive, so the replicas get SIGINT, which stops them without a drain period
        (in-flight requests finish and the logs are written all the same); SIGTERM would make
        each wait out a drain nobody needs."""
        balancer = self.balancer
        if balancer is not None and balancer.process is not None and balancer.restart_at is None:
            if balancer.process.poll() is None:
                self.poll_stats()  # the last figures, for the summary
            stop_process(balancer.process, signal.SIGUSR1, HAPROXY_GRACE_S)
        running = [r for r in self.replicas if r.process is not None and r.restart_at is None]
        for replica in running:
            assert replica.process is not None
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGINT)
        for replica in running:
            replica.wait(REPLICA_GRACE_S)
        for path in self._pid_files():
            path.unlink(missing_ok=True)
        self.stopped = True

    def _pid_files(self) -> Sequence[Path]:
        return [r.pid_file for r in self.replicas] + [self.plan.directory / "haproxy.pid"]


def _stopped(code: int | None) -> str:
    """How a replica ended after the stop: SIGINT is how it was asked to (and SIGTERM how a
    replica a supervisor's death reached ends)."""
    if code is None:
        return "running"
    if code in (0, -signal.SIGINT, -signal.SIGTERM):
        return "stopped"
    return f"stopped ({describe_exit(code)})"
