"""``mlship stream``: score the events of a message broker's stream with a deployment."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from mlship.cli.console import err, out
from mlship.errors import MlshipError

app = typer.Typer(
    help="Streams from a message broker (Redis Streams, NATS JetStream): score their events as "
    "they come, land them for training.",
    no_args_is_help=True,
)

BAD_SETUP = 2
"""Exit code of a runner that could not start: a bad spec, an unknown model, a broker away."""


@app.command("run")
def run(
    spec: Annotated[Path, typer.Argument(help="The stream spec (YAML).")],
    consumer: Annotated[
        str | None,
        typer.Option(help="This consumer's name in the group; HOST-PID by default."),
    ] = None,
    metrics_port: Annotated[
        int,
        typer.Option(help="Serve Prometheus /metrics on this port; 0 (the default) is off.", min=0),
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option(help="Interface the metrics listen on.")
    ] = "127.0.0.1",
    max_events: Annotated[
        int | None,
        typer.Option(help="Most events in one micro-batch; the spec's batch.max_events.", min=1),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Level of the JSON logs on stderr.")] = "info",
) -> None:
    """Consume the spec's stream in its consumer group, score micro-batches with its model or
    deployment (following promotions), write each batch's prediction-log rows, then publish the
    predictions and dead letters (once per event), then acknowledge. SIGTERM or Ctrl-C finishes
    the batch in hand and exits 0."""
    from mlship.serve.logs import json_logging
    from mlship.streaming.build import build_runner
    from mlship.workspace import Workspace

    json_logging(log_level)
    workspace = Workspace.open()
    try:
        try:
            built = build_runner(
                spec,
                workspace,
                consumer=consumer,
                metrics_port=metrics_port,
                metrics_host=metrics_host,
                max_events=max_events,
            )
        except MlshipError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(BAD_SETUP) from None
        source, runner = built.spec.source, built.runner
        table = runner.live.table
        routes = ", ".join(f"{s.label} ({s.weight:g})" for s in table.routes)
        shadows = ", ".join(s.label for s in table.shadows)
        out.print(
            f"Reading {source.stream} on {runner.broker.url} in group {source.group} as "
            f"{built.consumer}"
        )
        out.print(
            f"Scoring with {routes}" + (f"; shadows {shadows}" if shadows else "")
            + f" (batches of up to {runner.max_events})"
        )  # fmt: skip
        out.print(
            f"Writing predictions to {built.spec.output.stream}, dead letters to "
            f"{built.spec.dead_letter.stream}"
        )
        out.print(f"Prediction log: {built.log_place}")
        out.print(f"Usage ledger: {built.usage_place}")
        if metrics_port:
            out.print(f"Metrics: http://{metrics_host}:{metrics_port}/metrics")

        def stop(_signum: int, _frame: Any) -> None:
            runner.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        runner.run()
        out.print(f"Stopped: {runner.handled} events handled")
    finally:
        workspace.close()
