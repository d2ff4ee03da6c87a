"""The alert history over HTTP, so monitors on several hosts share one set of cool-downs.

The request body is declared in :mod:`mlship.remote.admin_api`; answers are
:class:`~mlship.store.entities.Alert` entities.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from mlship.remote import admin_api as api
from mlship.server.access import role_route
from mlship.server.deps import WorkspaceDep
from mlship.server.idempotency import RecordedRoute
from mlship.store.clock import as_utc
from mlship.store.entities import to_json

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], route_class=RecordedRoute)


@router.get("", **role_route("viewer"))
def list_alerts(
    workspace: WorkspaceDep,
    model: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=10_000),
) -> Any:
    return to_json(workspace.alert_history.list(model=model, since=since, limit=limit))


@router.get("/last-delivered", **role_route("viewer"))
def last_delivered(model: str, rule: str, workspace: WorkspaceDep) -> dict[str, Any]:
    found = workspace.alert_history.last_delivered(model, rule)
    return {"at": None if found is None else as_utc(found).isoformat()}


@router.post("", **role_route("scientist"))
def record(body: api.NewAlert, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.alert_history.record(**body.model_dump()))
