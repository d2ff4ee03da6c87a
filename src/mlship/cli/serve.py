"""``mlship serve``: an HTTP server for a model reference or a deployment file."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlship.cli.console import out


class JsonLines(logging.Formatter):
    """One JSON object per log record, with the fields a request's log line carries."""

    FIELDS = ("request_id", "method", "path", "status", "latency_ms", "served_by", "event")

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        return json.dumps(line)


def _json_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    for name in ("mlship.serve", "mlship.serve.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def serve(
    target: Annotated[
        str,
        typer.Argument(
            help="MODEL, MODEL:VERSION, MODEL@STAGE (follows promotions), or a deployment YAML."
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="Log level of the JSON logs.")] = "info",
    prediction_log: Annotated[
        bool, typer.Option(help="Keep the prediction log (Parquet, flushed on shutdown).")
    ] = True,
) -> None:
    """Serve /predict, MLflow's /invocations, the v2 inference protocol, /metrics and /docs."""
    import uvicorn

    from mlship.cli.refs import resolve_version
    from mlship.serve.app import create_app
    from mlship.serve.deployment import Deployment, load_deployment
    from mlship.serve.live import LiveModels
    from mlship.serve.predlog import PredictionLog
    from mlship.workspace import Workspace

    path = Path(target)
    if target.endswith((".yaml", ".yml")) or path.is_file():
        deployment = load_deployment(path)
    else:
        deployment = Deployment.single(target)
    _json_logging(log_level)
    workspace = Workspace.open()
    try:
        live = LiveModels(deployment, workspace, resolve_version)
        log = None
        if prediction_log and deployment.log.enabled:
            directory = deployment.log.directory or (
                workspace.settings.home_resolved / "predictions" / deployment.name
            )
            log = PredictionLog(
                directory, deployment.name, deployment.log.flush_rows, deployment.log.flush_seconds
            )
        app = create_app(
            live,
            prediction_log=log,
            sticky_header=deployment.sticky_header,
            batching=deployment.batching,
        )
        shadows = f"; shadows {', '.join(live.table.versions()[len(deployment.routes) :])}"
        routes = ", ".join(f"{served.label} ({served.weight:g})" for served in live.table.routes)
        out.print(
            f"Serving deployment {deployment.name}: {routes}"
            + (shadows if deployment.shadows else "")
            + f" on http://{host}:{port}  (docs: http://{host}:{port}/docs)"
        )
        if log is not None:
            out.print(f"Prediction log: {log.directory}")
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        workspace.close()
