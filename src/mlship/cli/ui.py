"""``mlship ui``: the web UI on this machine's workspace, no server needed."""

from __future__ import annotations

from typing import Annotated

import typer

from mlship.cli.console import err
from mlship.errors import MlshipError
from mlship.workspace import Workspace

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ui(
    host: Annotated[
        str, typer.Option(help="Loopback interface to listen on (127.0.0.1, ::1 or localhost).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8765,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "warning",
) -> None:
    """Browse this workspace's runs in a web browser, as the local user (no sign-in).

    The pages are served to this machine only; for a team, `mlship server` serves the same
    pages under /ui, behind a sign-in.
    """
    import uvicorn

    from mlship.ui import local_app

    if host not in LOOPBACK:
        raise MlshipError(
            f"--host {host}: mlship ui serves without a sign-in, so only on this machine "
            f"({', '.join(LOOPBACK)}); for a team, run `mlship server` and open /ui on it"
        )
    workspace = Workspace.open()
    try:
        if workspace.remote is not None:
            served = (workspace.settings.url or "").rstrip("/")
            raise MlshipError(
                "MLSHIP_URL is set: the tracking server serves these pages itself under /ui "
                f"({served}/ui); unset MLSHIP_URL to browse the local workspace"
            )
        app = local_app(workspace)
        shown = f"[{host}]" if ":" in host else host
        home = workspace.settings.home_resolved
        err.print(f"mlship ui on http://{shown}:{port}/ui (workspace {home})")
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        workspace.close()
