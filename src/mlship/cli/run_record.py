"""``mlship runs show --json``: one run's record as plain JSON, for scripts and CI.

The same facts the text view prints, keyed by name: the run's fields, its candidates, its
metrics per split, the details recorded at run time (the split strategy, library warnings,
threshold, nested CV) and its notes, so a script never parses a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlship.train.details import RunDetails

if TYPE_CHECKING:
    from mlship.store.entities import Candidate, Note, Run
    from mlship.train.tuning import TrialRecord


def _when(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _candidate(candidate: Candidate) -> dict[str, Any]:
    return {
        "rank": candidate.rank,
        "name": candidate.name,
        "estimator": candidate.estimator,
        "selected": candidate.selected,
        "params": candidate.params,
        "cv_mean": candidate.cv_mean,
        "cv_std": candidate.cv_std,
        "train_mean": candidate.train_mean,
        "fit_seconds": candidate.fit_seconds,
        "cpu_seconds": candidate.cpu_seconds,
        "peak_memory_bytes": candidate.peak_memory_bytes,
        "cost": candidate.cost,
        "predict_ms": candidate.predict_ms,
        "trials": candidate.trials,
        "tuning": candidate.tuning,
    }


def _trial(trial: TrialRecord) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.lower(),
        "params": trial.params,
        "value": trial.value,
        "fold_scores": trial.fold_scores,
        "cpu_seconds": trial.usage.cpu_seconds,
        "cost": trial.cost,
        "error": trial.error,
    }


def run_record(
    run: Run, notes: Sequence[Note], searches: dict[str, list[TrialRecord]]
) -> dict[str, Any]:
    """Everything ``runs show`` prints about ``run``, as JSON-ready values."""
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for metric in run.metrics:
        per_split = metrics.setdefault(metric.split, {})
        per_split.setdefault(metric.candidate or "", {})[metric.name] = metric.value
    dataset = run.dataset
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "status": run.status,
        "user": run.user,
        "owner": run.owner,
        "tags": run.tags,
        "task": run.task,
        "metric": run.metric,
        "spec_path": run.spec_path,
        "spec_sha256": run.spec_hash,
        "dataset": (
            {"sha256": dataset.data_hash, "rows": dataset.n_rows} if dataset is not None else None
        ),
        "started_at": _when(run.started_at),
        "finished_at": _when(run.finished_at),
        "wall_seconds": run.wall_seconds,
        "cpu_seconds": run.cpu_seconds,
        "peak_memory_bytes": run.peak_memory_bytes,
        "cost": run.cost,
        "executor": run.executor,
        "attempts": run.attempts,
        "git_commit": run.git_commit,
        "environment": run.environment,
        "error": run.error,
        "best_candidate": run.best_candidate,
        "candidates": [_candidate(c) for c in run.candidates],
        "metrics": metrics,
        "details": RunDetails.from_json(run.details).to_json(),
        "notes": [
            {"author": n.author, "created_at": _when(n.created_at), "body": n.body} for n in notes
        ],
        "trials": {study: [_trial(t) for t in found] for study, found in searches.items()},
    }


__all__ = ["run_record"]
