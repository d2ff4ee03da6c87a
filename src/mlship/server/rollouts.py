"""Progressive rollouts over HTTP, so ``mlship rollout`` on any host and every server of a
deployment with a rollout share one state.

Reading takes a viewer; starting and moving a rollout take a scientist (a rollback also turns
down the candidate's pending promotion request, which only closes the way to production). The
acting user is the token's. Bodies are declared in :mod:`mlship.remote.rollouts_api`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from mlship.remote import rollouts_api as api
from mlship.server.access import role_route
from mlship.server.deps import WorkspaceDep
from mlship.server.idempotency import RecordedRoute
from mlship.store.clock import as_utc
from mlship.store.entities import to_json
from mlship.store.rollouts import Move, RolloutConflict, RolloutPlan

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"], route_class=RecordedRoute)


@router.get("/{model}", **role_route("viewer"))
def current(model: str, workspace: WorkspaceDep) -> Any:
    found = workspace.rollouts.current(model)
    return {"rollout": None if found is None else to_json(found)}


@router.post("", **role_route("scientist"))
def start(body: api.NewRollout, workspace: WorkspaceDep) -> Any:
    plan = RolloutPlan(
        model=body.model,
        candidate=body.candidate,
        deployment=body.deployment,
        steps=tuple(body.steps),
        hold_seconds=body.hold_seconds,
        alpha=body.alpha,
        effect=body.effect,
        checks=body.checks,
    )
    rollout, started = workspace.rollouts.start(plan, as_utc(body.at))
    return {"rollout": to_json(rollout), "started": started}


@router.post("/{model}/moves", **role_route("scientist"))
def move(model: str, body: api.RolloutMove, workspace: WorkspaceDep) -> Any:
    found = workspace.rollouts.current(model)
    if found is None or found.id != body.rollout:
        raise RolloutConflict(f"{model}'s current rollout is not #{body.rollout}; judge it again")
    seen = dataclasses.replace(found, step=body.step, status=body.status)
    decided = Move(
        body.action,
        body.to_step,
        body.weight,
        body.to_status,
        tuple(body.reasons),
        body.figures,
    )
    return to_json(workspace.rollouts.move(seen, decided, as_utc(body.at)))
