"""The alert history over HTTP, so monitors on several hosts share one set of cool-downs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mlship.server.access import role_route
from mlship.server.deps import WorkspaceDep
from mlship.store.records import to_record, to_records

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class NewAlert(BaseModel):
    model: str = Field(max_length=200)
    rule: str = Field(max_length=200)
    metric: str = Field(max_length=200)
    value: float
    condition: str = Field(max_length=60)
    severity: str = Field(max_length=20)
    window: str = Field(max_length=60)
    status: Literal["fired", "suppressed"]
    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = None


@router.get("", **role_route("viewer"))
def list_alerts(
    workspace: WorkspaceDep,
    model: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    return to_records(workspace.alert_history.list(model=model, since=since, limit=limit))


@router.get("/last-delivered", **role_route("viewer"))
def last_delivered(model: str, rule: str, workspace: WorkspaceDep) -> dict[str, Any]:
    found = workspace.alert_history.last_delivered(model, rule)
    return {"at": None if found is None else found.isoformat()}


@router.post("", **role_route("scientist"))
def record(body: NewAlert, workspace: WorkspaceDep) -> dict[str, Any]:
    return to_record(workspace.alert_history.record(**body.model_dump()))
