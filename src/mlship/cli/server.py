"""``mlship server``: share this workspace's stores with a team over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from mlship.cli.console import err
from mlship.cli.options import TlsCert, TlsKey
from mlship.errors import MlshipError
from mlship.workspace import Workspace


def server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    max_body_mb: Annotated[
        int, typer.Option(help="Largest JSON request body, in MiB.", min=1)
    ] = 16,
    max_artifact_mb: Annotated[
        int, typer.Option(help="Largest artifact upload, in MiB.", min=1)
    ] = 4096,
    rate_limit: Annotated[
        int, typer.Option(help="Requests per minute per token (0: unlimited).", min=0)
    ] = 6000,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve this workspace's metadata and artifacts to clients that set MLSHIP_URL.

    Every request needs a token (`mlship users add` and `mlship tokens create`, run here, make
    the first admin); PostgreSQL (MLSHIP_DATABASE_URL) is the database for a team.
    """
    import uvicorn

    from mlship.security.tls import uvicorn_tls
    from mlship.server.app import MiB, create_app

    tls = uvicorn_tls(tls_cert, tls_key)
    scheme = "https" if tls else "http"
    workspace = Workspace.open()
    try:
        if workspace.remote is not None:
            raise MlshipError(
                "MLSHIP_URL is set, so this would serve a server's stores; a server serves its "
                "own workspace: unset MLSHIP_URL"
            )
        app = create_app(
            workspace,
            max_body_bytes=max_body_mb * MiB,
            max_artifact_bytes=max_artifact_mb * MiB,
            requests_per_minute=rate_limit,
        )
        if not workspace.users.all():
            err.print(
                "[yellow]No users yet:[/] every request will be refused until an admin exists "
                "(`mlship users add NAME --role admin`, then `mlship tokens create NAME`)"
            )
        err.print(f"mlship server on {scheme}://{host}:{port} (database {_safe_url(workspace)})")
        err.print(f"web UI at {scheme}://{host}:{port}/ui (sign in with an API token)")
        uvicorn.run(app, host=host, port=port, log_level=log_level, **tls)
    finally:
        workspace.close()


def _safe_url(workspace: Workspace) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(workspace.settings.database_url_resolved)
    return url.render_as_string(hide_password=True)
