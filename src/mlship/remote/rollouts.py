"""Progressive rollouts on a tracking server, over HTTP: the
:class:`~mlship.store.rollouts.Rollouts` protocol for clients of a server."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from mlship.remote import rollouts_api as api
from mlship.remote.client import Client
from mlship.store import entities
from mlship.store.clock import as_utc
from mlship.store.entities import Rollout
from mlship.store.rollouts import Move, RolloutPlan


class HttpRollouts:
    def __init__(self, client: Client) -> None:
        self.client = client

    def start(self, plan: RolloutPlan, at: datetime) -> tuple[Rollout, bool]:
        body = api.NewRollout(
            model=plan.model,
            candidate=plan.candidate,
            deployment=plan.deployment,
            steps=list(plan.steps),
            hold_seconds=plan.hold_seconds,
            alpha=plan.alpha,
            effect=plan.effect,
            checks=dict(plan.checks),
            at=as_utc(at),
        )
        found = self.client.post("/rollouts", body.model_dump(mode="json"))
        return entities.parse(Rollout, found["rollout"]), bool(found["started"])

    def current(self, model: str) -> Rollout | None:
        found = self.client.get(f"/rollouts/{quote(model, safe='')}")["rollout"]
        return None if found is None else entities.parse(Rollout, found)

    def move(self, rollout: Rollout, move: Move, at: datetime) -> Rollout:
        body = api.RolloutMove(
            rollout=rollout.id,
            step=rollout.step,
            status=rollout.status,
            action=move.action,
            to_step=move.step,
            weight=move.weight,
            to_status=move.status,
            reasons=list(move.reasons),
            figures=dict(move.figures),
            at=as_utc(at),
        )
        path = f"/rollouts/{quote(rollout.model, safe='')}/moves"
        return entities.parse(Rollout, self.client.post(path, body.model_dump(mode="json")))
