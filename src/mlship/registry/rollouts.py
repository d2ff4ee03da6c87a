"""Progressive rollouts in the metadata store: the :class:`~mlship.store.rollouts.Rollouts`
protocol over the registry's database.

A rollout belongs to a registered model, and what it does is part of the model's life: starting
it, each step, a rollback and the end are appended to the model's history (``mlship models
history``) by the same transaction that changes the rollout, as every registry change is, and a
rollback turns down the candidate's pending promotion request with the reason. Rejecting here
does not take a second person: the four-eyes rule guards the way into production, and the
rollout only ever closes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlship.errors import MlshipError
from mlship.registry.lifecycle import _decide
from mlship.registry.rows import model_row as _model
from mlship.registry.rows import pending_request as _pending
from mlship.registry.rows import record as _record
from mlship.registry.rows import version_row as _version
from mlship.store import tables
from mlship.store.audit import acting_user
from mlship.store.entities import Rollout
from mlship.store.metadata import MetadataStore
from mlship.store.rollouts import Move, RolloutConflict, RolloutPlan
from mlship.store.tables import ModelVersion, RegisteredModel, as_utc


def _entity(row: tables.Rollout, model: str) -> Rollout:
    return Rollout(
        id=row.id,
        model=model,
        candidate=row.candidate,
        control=row.control,
        deployment=row.deployment,
        steps=[float(step) for step in row.steps],
        hold_seconds=row.hold_seconds,
        alpha=row.alpha,
        effect=row.effect,
        checks=dict(row.checks),
        step=row.step,
        weight=row.weight,
        since=as_utc(row.since),
        status=row.status,
        reasons=[str(reason) for reason in row.reasons],
        started_by=row.started_by,
        started_at=as_utc(row.started_at),
        updated_at=as_utc(row.updated_at),
    )


def _newest(session: Session, model: RegisteredModel) -> tables.Rollout | None:
    return session.scalar(
        select(tables.Rollout)
        .where(tables.Rollout.model_id == model.id)
        .order_by(tables.Rollout.id.desc())
        .limit(1)
    )


def _step_label(steps: list[Any], step: int, weight: float) -> str:
    return f"step {step + 1} of {len(steps)} ({weight:g}%)"


class SqlRollouts:
    """Rollouts over the metadata store's database; each method is one transaction."""

    def __init__(self, metadata: MetadataStore, user: str) -> None:
        self.metadata = metadata
        self.user = user

    def start(self, plan: RolloutPlan, at: datetime) -> tuple[Rollout, bool]:
        user = acting_user(self.user)
        ref = f"{plan.model}:{plan.candidate}"
        with self.metadata.transaction() as session:
            model = _model(session, plan.model, lock=True)
            candidate = _version(session, model, plan.candidate)
            newest = _newest(session, model)
            if newest is not None and newest.status in ("running", "holding"):
                if newest.candidate == plan.candidate:
                    return _entity(newest, model.name), False
                raise RolloutConflict(
                    f"{plan.model} already has a rollout of {plan.model}:{newest.candidate} "
                    f"({newest.status}, {_step_label(newest.steps, newest.step, newest.weight)}); "
                    "it must be rolled back or done before another starts"
                )
            if candidate.stage == "production":
                raise MlshipError(f"{ref} is already in production: there is nothing to roll out")
            if candidate.stage == "archived":
                raise MlshipError(f"{ref} is archived; move it to staging first if it should serve")
            production = session.scalar(
                select(ModelVersion).where(
                    ModelVersion.model_id == model.id, ModelVersion.stage == "production"
                )
            )
            if production is None:
                raise MlshipError(
                    f"{plan.model} has no version in production to roll {ref} out against: "
                    "promote one first (a first version needs no rollout)"
                )
            row = tables.Rollout(
                model_id=model.id,
                candidate=plan.candidate,
                control=production.version,
                deployment=plan.deployment,
                steps=list(plan.steps),
                hold_seconds=plan.hold_seconds,
                alpha=plan.alpha,
                effect=plan.effect,
                checks=dict(plan.checks),
                step=0,
                weight=plan.steps[0],
                since=at,
                status="running",
                reasons=[],
                started_by=user,
                started_at=at,
                updated_at=at,
            )
            session.add(row)
            session.flush()
            _record(
                session,
                model,
                plan.candidate,
                "rollout started",
                user,
                step=f"1 of {len(plan.steps)}",
                weight=plan.steps[0],
                against=production.version,
                deployment=plan.deployment,
                steps="/".join(f"{step:g}" for step in plan.steps),
                hold_seconds=plan.hold_seconds,
            )
            return _entity(row, model.name), True

    def current(self, model: str) -> Rollout | None:
        with self.metadata.transaction() as session:
            found = _model(session, model)
            row = _newest(session, found)
            return None if row is None else _entity(row, found.name)

    def move(self, rollout: Rollout, move: Move, at: datetime) -> Rollout:
        user = acting_user(self.user)
        with self.metadata.transaction() as session:
            model = _model(session, rollout.model, lock=True)
            row = session.get(tables.Rollout, rollout.id, with_for_update=True)
            if row is None or row.model_id != model.id:
                raise RolloutConflict(f"{rollout.model} has no rollout #{rollout.id}")
            if (row.step, row.status) != (rollout.step, rollout.status):
                raise RolloutConflict(
                    f"the rollout of {rollout.model}:{rollout.candidate} moved while it was "
                    f"judged (now {row.status}, "
                    f"{_step_label(row.steps, row.step, row.weight)}); judge it again"
                )
            if move.step != row.step or move.status != row.status:
                row.since = at
            row.step, row.weight, row.status = move.step, move.weight, move.status
            row.reasons = list(move.reasons)
            row.updated_at = at
            reason = "; ".join(move.reasons) or None
            _record(
                session,
                model,
                rollout.candidate,
                f"rollout {move.action}",
                user,
                step=f"{move.step + 1} of {len(row.steps)}",
                weight=move.weight,
                reason=reason,
                **move.figures,
            )
            if move.action == "rolled back":
                request = _pending(session, model, rollout.candidate)
                if request is not None:
                    note = f"rolled back by its rollout: {reason}"
                    _decide(session, model, rollout.candidate, request, "rejected", user, note)
            return _entity(row, model.name)
