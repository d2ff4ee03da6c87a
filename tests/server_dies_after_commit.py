"""A tracking server that dies between the commit of a write and its answer, once.

``python -m tests.server_dies_after_commit PORT SUFFIX MARKER`` serves the workspace of
``MLSHIP_HOME`` on 127.0.0.1:PORT as ``mlship server`` does, except that the first successful
POST whose path ends with SUFFIX is applied and committed, and then the process ends on the spot
(``os._exit``, as a SIGKILL would leave it) instead of answering. MARKER, a file, records that it
happened, so the server started again on the same home answers normally.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

from mlship.server.app import create_app
from mlship.workspace import Workspace

Asgi = Any


def dying(app: Asgi, suffix: str, marker: Path) -> Asgi:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        doomed = (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and str(scope["path"]).endswith(suffix)
            and not marker.exists()
        )
        if not doomed:
            await app(scope, receive, send)
            return

        async def cut(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                marker.touch()  # the write is committed: the answer is about to leave
                os._exit(137)
            await send(message)

        await app(scope, receive, cut)

    return wrapped


def main() -> None:
    port, suffix, marker = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    workspace = Workspace.open()
    app = dying(create_app(workspace), suffix, marker)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
