"""``mlship serve``: an HTTP server for one model version."""

from __future__ import annotations

import typer

from mlship.cli.console import out
from mlship.cli.refs import resolve_version
from mlship.registry.model_io import load_model
from mlship.workspace import Workspace


def serve(
    ref: str = typer.Argument(..., help="MODEL or MODEL:VERSION (newest by default)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve POST /predict, GET /health and OpenAPI docs at /docs."""
    import uvicorn

    from mlship.serve.app import create_app

    workspace = Workspace.open()
    try:
        model = load_model(resolve_version(workspace, ref), workspace.artifacts)
    finally:
        workspace.close()
    out.print(f"Serving {model.ref} on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(model), host=host, port=port, log_level=log_level)
