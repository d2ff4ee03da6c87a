"""What the behavioural suites of the registry, users, audit log and alert history share: the
people who act on a backend, and models with registered versions to act on.

Versions are made the way training makes them (a dataset, a run that finishes with a
registration, its artifact in the store first), through the metadata store of the backend, so
on a server they are signed with the server's key like any other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from mlship.store.repositories import NewCandidate, NewMetric, NewVersion
from mlship.workspace import Workspace
from tests.backends import Backend, unique


@dataclass(repr=False)
class People:
    """Workspaces acting as an admin, a scientist, a reviewer and a viewer of one backend.

    Locally roles are not checked (whoever can open the database can do anything; the settings
    name who acts), so the role a person has only matters on the HTTP backends.
    """

    backend: Backend
    admin: Workspace
    alice: Workspace
    """A scientist: registers, requests promotions, withdraws her own requests."""
    bob: Workspace
    """A reviewer: decides promotions, rolls back."""
    vera: Workspace
    """A viewer: reads."""

    def __repr__(self) -> str:
        return f"People({self.backend.name})"

    @classmethod
    def of(cls, backend: Backend) -> People:
        """The people of ``backend``, made once per session (their workspaces stay open)."""
        key = str(backend.root)
        found: People | None = _PEOPLE.get(key)
        if found is None:
            found = _PEOPLE[key] = cls._make(backend)
        return found

    @classmethod
    def _make(cls, backend: Backend) -> People:
        return cls(
            backend,
            backend.workspace_as("admin", "admin"),
            backend.workspace_as("alice", "scientist"),
            backend.workspace_as("bob", "reviewer"),
            backend.workspace_as("vera", "viewer"),
        )


_PEOPLE: dict[str, People] = {}
"""By backend root (a directory of its own per backend and session)."""


def register_model(workspace: Workspace, versions: int = 2, prefix: str = "m") -> str:
    """A new model (a session-unique name) with ``versions`` versions, registered by the
    workspace's user; its name."""
    name = unique(prefix)
    store = workspace.tracking
    for number in range(versions):
        artifact = f"{name}:{number}".encode()
        sha256 = hashlib.sha256(artifact).hexdigest()
        if not workspace.artifacts.exists(sha256):
            workspace.artifacts.put_bytes(artifact)
        dataset, _ = store.get_or_add_dataset(
            hashlib.sha256(b"data " + artifact).hexdigest(), sha256, 10, [{"name": "x"}], []
        )
        run_id = store.start_run(
            pipeline=name,
            task="classification",
            metric="accuracy",
            spec_path="/spec.yaml",
            spec_hash="0" * 64,
            spec={},
            git_commit=None,
            environment={},
        )
        store.finish_run(
            run_id,
            dataset_id=dataset.id,
            candidates=[
                NewCandidate(
                    name="c",
                    estimator="e",
                    params={},
                    cv_mean=0.5,
                    cv_std=0.1,
                    fit_seconds=1.0,
                    rank=1,
                    selected=True,
                )
            ],
            metrics=[NewMetric(candidate="c", split="holdout", name="accuracy", value=0.5)],
            best_candidate="c",
            wall_seconds=1.0,
            register=NewVersion(
                name=name,
                dataset_hash=dataset.data_hash,
                estimator="sklearn.dummy.DummyClassifier",
                params={},
                artifact_sha256=sha256,
                artifact_size=len(artifact),
                artifact_signature=workspace.artifact_signature(sha256),
                signature={},
                metrics={},
            ),
        )
    return name


def is_utc(moment: datetime | None) -> bool:
    """An aware time in UTC (every time a repository hands out is one)."""
    return moment is not None and moment.utcoffset() == timedelta(0)
