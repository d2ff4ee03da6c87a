"""Finding the registry's rows and appending to a model's history, shared by the stage moves
(:mod:`mlship.registry.lifecycle`) and the reviews (:mod:`mlship.registry.reviews`), so both
lock, refuse and record the same way, inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlship.errors import MlshipError, NotFoundError
from mlship.store.tables import ModelEvent, ModelVersion, PromotionRequest, RegisteredModel


def storable_texts(**texts: str | None) -> None:
    """Refuse text no database stores alike: PostgreSQL refuses a NUL character that SQLite
    keeps, so it is refused here, before either sees it, with the same message on every store."""
    for what, text in texts.items():
        if text is not None and "\x00" in text:
            raise MlshipError(f"the {what} contains a NUL character, which cannot be stored")


def model_row(session: Session, name: str, *, lock: bool = False) -> RegisteredModel:
    query = select(RegisteredModel).where(RegisteredModel.name == name)
    if lock:  # one registry change of a model at a time (PostgreSQL; SQLite serialises writes)
        query = query.with_for_update()
    model = session.scalar(query)
    if model is None:
        known = ", ".join(session.scalars(select(RegisteredModel.name))) or "none yet"
        raise NotFoundError(f"no model named {name!r} (registered models: {known})")
    return model


def version_row(session: Session, model: RegisteredModel, version: int) -> ModelVersion:
    found = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )
    if found is None:
        raise NotFoundError(f"model {model.name!r} has no version {version}")
    return found


def pending_request(
    session: Session, model: RegisteredModel, version: int
) -> PromotionRequest | None:
    return session.scalar(
        select(PromotionRequest).where(
            PromotionRequest.model_id == model.id,
            PromotionRequest.version == version,
            PromotionRequest.status == "pending",
        )
    )


def record(
    session: Session,
    model: RegisteredModel,
    version: int | None,
    action: str,
    user: str,
    from_stage: str | None = None,
    to_stage: str | None = None,
    **details: Any,
) -> None:
    session.add(
        ModelEvent(
            model_id=model.id,
            version=version,
            action=action,
            from_stage=from_stage,
            to_stage=to_stage,
            user=user,
            details={k: v for k, v in details.items() if v is not None},
        )
    )
