"""``mlship deploy``: replicas of a server on this machine behind a load balancer, supervised."""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli.console import out
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.deploy.supervisor import Plan, Supervisor

app = typer.Typer(
    help="Run replicas of a server on this machine behind a load balancer.",
    no_args_is_help=True,
)


@app.command("haproxy")
def haproxy(
    target: Annotated[
        str | None,
        typer.Argument(
            help="What each replica serves (as `mlship serve` takes it: MODEL, MODEL:VERSION, "
            "MODEL@STAGE, a deployment YAML, a bundle directory); none with --server.",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[int, typer.Option("--replicas", "-n", help="Replicas.", min=1)] = 2,
    server: Annotated[
        bool,
        typer.Option(
            "--server",
            help="Replicas of `mlship server` (this workspace's database and artifacts) "
            "instead of a model server.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Interface HAProxy listens on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(help="Port HAProxy listens on: 8000 for models, 8080 with --server."),
    ] = None,
    stats_port: Annotated[
        int | None,
        typer.Option(
            help="Port of HAProxy's statistics page on 127.0.0.1 (a free one by default)."
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Where the HAProxy configuration, the logs and the pid files go "
            "(<home>/deploy/<name> by default).",
        ),
    ] = None,
    replica_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--replica-arg",
            help="An option passed on to every replica, e.g. --replica-arg=--no-prediction-log "
            "(repeat for several).",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds HAProxy waits for a replica's answer before it tries another one.",
            min=0.1,
        ),
    ] = 30.0,
    buffer_kib: Annotated[
        int,
        typer.Option(
            help="HAProxy's buffer in KiB: requests up to about this size are sent again to "
            "another replica when theirs dies (larger ones are forwarded, not re-sent); each "
            "request in flight holds two.",
            min=16,
            max=16384,
        ),
    ] = 64,
) -> None:
    """Start N replicas on free local ports, HAProxy in front of them (health checks, retries on
    another replica, a request id), and keep them running until Ctrl-C or SIGTERM."""
    from mlship.deploy.haproxy import find_haproxy
    from mlship.deploy.supervisor import Supervisor

    plan = _plan(target, replicas, server, host, port, stats_port, directory, replica_arg or [])
    plan = replace(plan, server_timeout_s=timeout, buffer_bytes=buffer_kib * 1024)
    haproxy_program = find_haproxy()
    try:
        plan.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlshipError(
            f"--dir {plan.directory}: cannot be used for the configuration and the logs "
            f"({exc.strerror or exc}); give a directory this user can write"
        ) from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            _say(f"{signal.Signals(signum).name}: stopping HAProxy, then the replicas")
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = Supervisor(plan, haproxy_program, _say)
    try:
        out.print(
            f"Starting {plan.count} replicas of {escape(' '.join(plan.command[3:]))} "
            f"(logs in {plan.directory})"
        )
        supervisor.start(stop.is_set)
        if not stop.is_set():
            if not out.is_terminal:
                out.print(_table(supervisor, "Replicas"))
            out.print(
                f"HAProxy on http://{plan.host}:{plan.port}  "
                f"(statistics: http://127.0.0.1:{plan.stats_port}/)"
            )
            _watch(supervisor, stop)
    finally:
        # Also when starting or watching failed: nothing is left running.
        started = supervisor.balancer is not None
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if started:
        out.print(_table(supervisor, "Replicas, stopped"))
        _totals(supervisor)


def _watch(supervisor: Supervisor, stop: threading.Event) -> None:
    """Supervise until stopped; on a terminal, under a table of the replicas kept up to date
    (events still print above it), elsewhere (a log file, a pipe) with the events alone."""
    if not out.is_terminal:
        supervisor.watch(stop)
        return
    from rich.live import Live

    with Live(_table(supervisor, "Replicas"), console=out, auto_refresh=False) as live:
        supervisor.watch(stop, lambda: live.update(_table(supervisor, "Replicas"), refresh=True))


def _say(message: str) -> None:
    out.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(message)}")


def _plan(
    target: str | None,
    replicas: int,
    server: bool,
    host: str,
    port: int | None,
    stats_port: int | None,
    directory: Path | None,
    extra: list[str],
) -> Plan:
    from mlship.config import load_settings
    from mlship.deploy.haproxy import MODEL_SERVER_RETRIES, RESEND_SAFE_WRITES
    from mlship.deploy.replicas import free_ports
    from mlship.deploy.supervisor import Plan

    if server == (target is not None):
        raise MlshipError(
            "give either a TARGET to serve (a model reference, a deployment file or a bundle) "
            "or --server for tracking servers, not both"
            if server
            else "give a TARGET to serve (a model reference, a deployment file or a bundle), "
            "or --server for replicas of the tracking server"
        )
    settings = load_settings()
    program = (sys.executable, "-m", "mlship")
    statuses: tuple[int, ...]
    if target is not None:
        from mlship.serve.factory import deployment_for

        name = deployment_for(target).name  # a bad deployment file fails here, once
        command = (*program, "serve", target, *extra)
        health, statuses, resend_only = "/v2/health/ready", (200,), None
        default_port = 8000
    else:
        _check_shared_stores(settings)
        name = "tracking-server"
        command = (*program, "server", *extra)
        # Every route of the tracking server needs a token: a 401 is a process that answers.
        health, statuses, resend_only = "/api/v1/health", (200, 401), RESEND_SAFE_WRITES
        default_port = 8080
    port = port if port is not None else default_port
    return Plan(
        name=name,
        command=command,
        count=replicas,
        host=host,
        port=port,
        stats_port=stats_port if stats_port is not None else free_ports(1, avoid=(port,))[0],
        directory=directory or settings.home_resolved / "deploy" / name,
        health_path=health,
        healthy_statuses=statuses,
        retry_on=MODEL_SERVER_RETRIES,
        resend_only=resend_only,
        server_timeout_s=30.0,
    )


def _check_shared_stores(settings: Settings) -> None:
    """Tracking-server replicas serve this workspace's own stores, which they share: refuse a
    workspace that points at a server, and say what SQLite means here."""
    if settings.url:
        raise MlshipError(
            "MLSHIP_URL is set, so the replicas would serve a server's stores; tracking-server "
            "replicas serve this workspace's database and artifacts: unset MLSHIP_URL"
        )
    if settings.database_url_resolved.startswith("sqlite"):
        _say(
            "The database is SQLite: the replicas share it on this machine (WAL, one writer at "
            "a time); replicas on several machines need PostgreSQL (MLSHIP_DATABASE_URL)"
        )


def _table(supervisor: Supervisor, title: str) -> Table:
    table = Table(title=title)
    for column in ("replica", "port", "pid", "state", "requests", "retried", "restarts",
                   "last exit", "log"):  # fmt: skip
        left = column in ("replica", "state", "last exit", "log")
        table.add_column(column, justify="left" if left else "right", no_wrap=column != "last exit")
    for view in supervisor.views():
        table.add_row(
            view.name,
            str(view.port),
            str(view.pid or "-"),
            view.state,
            str(view.served),
            str(view.retries),
            str(view.restarts),
            view.last_exit or "-",
            view.log.name,
        )
    return table


def _totals(supervisor: Supervisor) -> None:
    totals = supervisor.backend_totals()
    if totals is None:
        return
    out.print(
        f"HAProxy forwarded {totals.sessions} requests; {totals.retries} were retried and "
        f"{totals.redispatches} redispatched to another replica; {totals.failed} connection or "
        "response errors on the replicas"
    )
