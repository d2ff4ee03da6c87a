"""Parsing ``MODEL[:VERSION]`` and ``MODEL@STAGE`` references to registered versions.

In the registry, not the CLI, because the server that follows a stage resolves them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mlship.errors import MlshipError
from mlship.store.context import HasCatalogue, HasRegistry

if TYPE_CHECKING:
    from mlship.store.entities import ModelVersion


class RefStores(HasCatalogue, HasRegistry, Protocol):
    """Where references are looked up: the versions, and which one holds a stage."""


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """``churn`` -> ("churn", None) meaning the newest; ``churn:3`` -> ("churn", 3)."""
    name, _, version = ref.partition(":")
    if not name:
        raise MlshipError(f"bad model reference {ref!r}; expected MODEL or MODEL:VERSION")
    if version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise MlshipError(
            f"bad model reference {ref!r}: version must be a positive integer or 'latest'"
        )
    return name, int(version)


def parse_version_ref(ref: str) -> tuple[str, int]:
    """``churn:3`` -> ("churn", 3); for commands that act on one exact version."""
    name, version = parse_model_ref(ref)
    if version is None:
        raise MlshipError(f"{ref!r} names no version; expected MODEL:VERSION, e.g. {name}:1")
    return name, version


def resolve_version(workspace: RefStores, ref: str) -> ModelVersion:
    """``MODEL`` (newest), ``MODEL:VERSION`` or ``MODEL@STAGE`` (e.g. ``churn@production``)."""
    from mlship.store.registry import STAGES

    if "@" in ref:
        name, _, stage = ref.partition("@")
        if stage not in STAGES or stage == "none":
            raise MlshipError(
                f"bad model reference {ref!r}: the stage must be staging, production or archived"
            )
        found = workspace.registry.in_stage(name, stage)
        return workspace.catalogue.get_version(name, found.version)
    name, version = parse_model_ref(ref)
    return workspace.catalogue.get_version(name, version)
