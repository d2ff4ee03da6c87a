"""Retraining as an alert action: train a candidate on fresh data and put it in ``staging``.

The candidate comes from the same pipeline that produced the model: the spec file recorded on the
run of the version being judged (or the one given), executed again. Its sources are read again,
so the candidate learns from whatever the data systems hold now (ingest reuses the stored
dataset only when the sources are byte for byte unchanged). The new version is moved to
``staging`` with the alert as the reason, and stops there: reaching production still takes a
request and someone else's approval, as for any version. A model that drifted is exactly the
case where a person should look before the candidate takes traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from mlship.errors import MlshipError
from mlship.monitor.alerts import Firing, Retrain
from mlship.store.context import (
    ChecksWritable,
    HasArtifacts,
    HasCatalogue,
    HasDatasets,
    HasLogs,
    HasMarks,
    HasRegistry,
    HasRuns,
    HasSealing,
    HasSettings,
    HasTuningStorage,
    SignsArtifacts,
)


class RetrainStores(
    HasSettings,
    HasDatasets,
    HasMarks,
    HasRuns,
    HasArtifacts,
    HasLogs,
    HasSealing,
    HasTuningStorage,
    SignsArtifacts,
    ChecksWritable,
    HasCatalogue,
    HasRegistry,
    Protocol,
):
    """What a retrain uses: what a run does (:class:`~mlship.train.run.RunStores`), plus the
    catalogue that finds the spec and the registry that stages the candidate."""


def spec_of(workspace: RetrainStores, model: str, version: int | None = None) -> Path:
    """The spec file of the run that trained ``model:version`` (the newest version by default)."""
    found = workspace.catalogue.get_version(model, version)
    run = workspace.runs.get_run(found.run_id)
    path = Path(run.spec_path)
    if not path.is_file():
        raise MlshipError(
            f"cannot retrain {model}: its pipeline spec {path} (recorded on run {run.id[:8]}) "
            "is not there any more; give the spec to use"
        )
    return path


def retrain_to_staging(
    workspace: RetrainStores, firing: Firing, *, spec: Path | None = None
) -> dict[str, Any]:
    """Train a candidate for ``firing.model`` and move it to staging; what was done."""
    from mlship.spec import load_spec
    from mlship.train.run import execute

    path = spec or spec_of(workspace, firing.model)
    loaded = load_spec(path)
    if loaded.spec.name != firing.model:
        raise MlshipError(f"spec {path} trains model {loaded.spec.name!r}, not {firing.model!r}")
    result = execute(loaded, workspace)
    version = result.version.version
    reason = (
        f"retrained after alert {firing.rule.name!r}: {firing.rule.metric} = {firing.value:.4g} "
        f"({firing.rule.condition})"
    )
    workspace.registry.set_stage(firing.model, version, "staging", reason)
    run = workspace.runs.get_run(result.run_id)
    return {
        "model": firing.model,
        "version": version,
        "stage": "staging",
        "run": result.run_id,
        "spec": str(path),
        "dataset": result.dataset_hash,
        "metric": run.metric,
        "holdout": result.holdout.get(run.metric),
    }


def retrainer(workspace: RetrainStores, *, spec: Path | None = None) -> Retrain:
    """The ``retrain`` callback for :func:`~mlship.monitor.alerts.evaluate`."""

    def retrain(firing: Firing) -> dict[str, Any]:
        return retrain_to_staging(workspace, firing, spec=spec)

    return retrain
