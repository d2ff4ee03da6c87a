"""Parsing ``MODEL[:VERSION]`` references and opening the workspace they live in."""

from __future__ import annotations

from mlship.errors import MlshipError
from mlship.store.tables import ModelVersion
from mlship.workspace import Workspace


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


def resolve_version(workspace: Workspace, ref: str) -> ModelVersion:
    name, version = parse_model_ref(ref)
    return workspace.metadata.get_version(name, version)
