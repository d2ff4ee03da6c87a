"""``mlship loadtest``: steady load on a URL, what it did to latency and errors, and what was
killed meanwhile."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli.console import out
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.loadtest.open_loop import Run, Summary


def loadtest(
    url: Annotated[
        str, typer.Argument(help="The URL to load, e.g. http://127.0.0.1:8000/predict.")
    ],
    rate: Annotated[float, typer.Option(help="Requests per second (a constant rate).", min=0.1)],
    duration: Annotated[float, typer.Option(help="Seconds to send for.", min=0.1)],
    clients: Annotated[int, typer.Option(help="Connections the requests share.", min=1)] = 8,
    payload: Annotated[
        Path | None,
        typer.Option(help="A JSON file POSTed as every request's body (a GET without it)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take.", min=0.1)] = 30.0,
    kill_every: Annotated[
        float | None,
        typer.Option(help="Run --kill-cmd every this many seconds while the load runs.", min=0.1),
    ] = None,
    kill_cmd: Annotated[
        str | None,
        typer.Option(
            help="A shell command run every --kill-every seconds, e.g. "
            "'kill -9 $(cat .mlship/deploy/churn-1/replica-2.pid)'."
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the summary and the timeline here.")
    ] = None,
    requests_out: Annotated[
        Path | None,
        typer.Option(
            "--requests",
            help="Write every request here, one JSON object a line (due, latency, status, "
            "error, request id).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token for a server with --auth: a deployment key or an API token "
            "(MLSHIP_TOKEN).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Send requests at a constant rate whatever the server does (an open loop: a stall shows as
    latency, not as fewer requests), then report throughput, p50/p95/p99, errors by kind, the
    longest time without a successful answer and a per-second timeline."""
    from mlship.loadtest.open_loop import Load, run, summarise

    if (kill_every is None) != (kill_cmd is None):
        raise MlshipError("--kill-every and --kill-cmd go together: give both or neither")
    if not url.startswith(("http://", "https://")):
        raise MlshipError(f"URL {url!r}: expected http://host:port/path or https://...")
    body = None
    if payload is not None:
        body = read_payload(payload)
    from mlship.config import load_settings

    settings = load_settings()
    if token is None and settings.token is not None:
        token = settings.token.get_secret_value()
    ca_bundle = str(settings.ca_bundle) if settings.ca_bundle is not None else None
    load = Load(url, rate, duration, clients, body, timeout_s=timeout, kill_every_s=kill_every,
                kill_command=kill_cmd, token=token, ca_bundle=ca_bundle)  # fmt: skip
    out.print(
        f"Sending {load.requests} requests to {escape(url)} at {rate:g}/s for {duration:g} s "
        f"over {clients} connections"
    )
    result = run(load)
    summary = summarise(result)
    _print(summary)
    if json_out is not None:
        _write(json_out, json.dumps(_as_json(summary), indent=2) + "\n")
        out.print(f"Summary: {json_out}")
    if requests_out is not None:
        _write(requests_out, _lines(result))
        out.print(f"Requests: {requests_out}")


def read_payload(path: Path) -> bytes:
    """The bytes of a request body file, checked to be JSON before any request is sent."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise MlshipError(f"payload {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MlshipError(f"payload {path}: not valid JSON ({exc})") from None
    return body


def _write(path: Path, text: str) -> None:
    """``text`` into ``path`` whole (a synced temporary file renamed over it)."""
    from mlship.store.artifacts import atomic_write

    atomic_write(path, [text.encode()])


def _lines(result: Run) -> str:
    return "".join(
        json.dumps(
            {
                "due_s": round(o.due_s, 6),
                "latency_ms": round(o.latency_s * 1000, 3),
                "status": o.status,
                "error": o.error,
                "request_id": o.request_id,
            }
        )
        + "\n"
        for o in result.outcomes
    )


def _as_json(summary: Summary) -> dict[str, object]:
    found = asdict(summary)
    found["throughput"] = summary.throughput
    return found


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print(summary: Summary) -> None:
    table = Table(title=f"Load on {escape(summary.url)}")
    for column in ("requests", "answered", "failed", "answers/s", "p50 ms", "p95 ms", "p99 ms",
                   "max ms", "longest gap"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.requests),
        str(summary.ok),
        str(summary.failed),
        f"{summary.throughput:.1f}",
        _ms(summary.p50_ms),
        _ms(summary.p95_ms),
        _ms(summary.p99_ms),
        _ms(summary.max_ms),
        f"{summary.gap.seconds:.2f} s at {summary.gap.from_s:.1f} s",
    )
    out.print(table)
    if summary.errors:
        errors = Table(title="Failed requests by kind")
        errors.add_column("kind")
        errors.add_column("requests", justify="right")
        for kind, count in summary.errors.items():
            errors.add_row(escape(kind), str(count))
        out.print(errors)
    if summary.kills:
        kills = Table(title="Killed")
        for column in ("at s", "command", "exit", "output"):
            kills.add_column(column, justify="right" if column in ("at s", "exit") else "left")
        for kill in summary.kills:
            kills.add_row(
                f"{kill.at_s:.2f}", escape(kill.command), str(kill.exit_code), escape(kill.output)
            )
        out.print(kills)
        around = Table(title="Around the kills (requests by when they were due)")
        for column in ("phase", "requests", "failed", "p50 ms", "p99 ms"):
            around.add_column(column, justify="left" if column == "phase" else "right")
        for phase in summary.phases:
            around.add_row(
                phase.name, str(phase.requests), str(phase.failed), _ms(phase.p50_ms),
                _ms(phase.p99_ms),
            )  # fmt: skip
        out.print(around)
    timeline = Table(title="Answers per second (by when they came)")
    for column in ("second", "answered", "failed", "p50 ms", "p99 ms"):
        timeline.add_column(column, justify="right")
    for second in summary.timeline:
        timeline.add_row(
            str(second.second),
            str(second.ok),
            str(second.failed),
            _ms(second.p50_ms),
            _ms(second.p99_ms),
        )
    out.print(timeline)
