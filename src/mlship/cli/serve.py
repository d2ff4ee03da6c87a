"""``mlship serve``: an HTTP server for one model version."""

from __future__ import annotations

from typing import Annotated

import typer

from mlship.cli.console import out
from mlship.cli.refs import resolve_version
from mlship.registry.model_io import load_model
from mlship.workspace import Workspace


def serve(
    ref: Annotated[str, typer.Argument(help="MODEL or MODEL:VERSION (newest by default).")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
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
