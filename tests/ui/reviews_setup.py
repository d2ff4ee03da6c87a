"""What the review pages' tests share: a model whose versions carry holdout metrics, registered
the way training registers them, and the people of a review with their roles."""

from __future__ import annotations

import hashlib

from mlship.store.repositories import NewCandidate, NewMetric, NewVersion
from mlship.workspace import Workspace

PEOPLE = {"alice": "scientist", "bob": "reviewer", "carol": "scientist", "dan": "admin",
          "vic": "viewer"}  # fmt: skip
"""alice requests, bob reviews and approves, carol objects, dan is an admin, vic only reads."""


def register_versions(workspace: Workspace, name: str, accuracies: list[float]) -> None:
    """Versions 1..n of ``name``, one a finished run, with holdout accuracy and F1."""
    store = workspace.tracking
    for number, accuracy in enumerate(accuracies, start=1):
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
        holdout = {"accuracy": accuracy, "f1": round(accuracy - 0.05, 4)}
        store.finish_run(
            run_id,
            dataset_id=dataset.id,
            candidates=[
                NewCandidate(
                    name="c",
                    estimator="e",
                    params={},
                    cv_mean=accuracy,
                    cv_std=0.01,
                    fit_seconds=1.0,
                    rank=1,
                    selected=True,
                )
            ],
            metrics=[NewMetric(candidate="c", split="holdout", name="accuracy", value=accuracy)],
            best_candidate="c",
            wall_seconds=1.0,
            register=NewVersion(
                name=name,
                dataset_hash=dataset.data_hash,
                estimator="sklearn.linear_model.LogisticRegression",
                params={},
                artifact_sha256=sha256,
                artifact_size=len(artifact),
                artifact_signature=workspace.artifact_signature(sha256),
                signature={},
                metrics={"holdout": holdout, "cv": {"accuracy": accuracy}},
            ),
        )
