"""What routes get from the application: the workspace it serves and its repositories."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mlship.server.access import identity
from mlship.store.accounts import Identity
from mlship.workspace import Workspace


def workspace(request: Request) -> Workspace:
    found: Workspace = request.app.state.workspace
    return found


WorkspaceDep = Annotated[Workspace, Depends(workspace)]
Caller = Annotated[Identity, Depends(identity)]
