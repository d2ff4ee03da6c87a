"""A run: ingest, check, cross-validate every candidate, evaluate the best once, register it.

The holdout set is split off before anything is fitted and is scored exactly once, by the selected
model. The registered model is the one fitted on the training part, so its holdout metrics describe
the very artifact that is served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mlship.data.ingest import Ingested, IngestObserver, ingest
from mlship.errors import DataError
from mlship.features.preprocess import build_pipeline
from mlship.registry.model_io import save_model
from mlship.registry.signature import Signature
from mlship.spec.loader import LoadedSpec
from mlship.store.metadata import NewVersion
from mlship.store.tables import Candidate, Metric, ModelVersion
from mlship.train.catalog import build_estimator, qualified_name
from mlship.train.cv import FoldScore, cross_validate_all, make_folds
from mlship.train.environment import describe_environment, git_commit
from mlship.train.metrics import greater_is_better
from mlship.train.scoring import score
from mlship.workspace import Workspace


@dataclass(frozen=True)
class LeaderboardRow:
    name: str
    estimator: str
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    train_mean: float
    fit_seconds: float
    cv_metrics: dict[str, float]


@dataclass(frozen=True)
class RunResult:
    run_id: str
    dataset_hash: str
    dataset_reused: bool
    n_rows: int
    leaderboard: list[LeaderboardRow]
    holdout: dict[str, float]
    version: ModelVersion
    wall_seconds: float
    validation: dict[str, Any]


class RunObserver:
    """Hooks a front end uses to show progress; the defaults do nothing."""

    ingest: IngestObserver = IngestObserver()

    def stage(self, message: str) -> None:
        """A new stage of the run has started."""

    def start_cv(self, candidates: list[str], folds: int) -> None:
        """Cross-validation of ``candidates`` with ``folds`` folds each is about to start."""

    def fold_done(self, score: FoldScore) -> None:
        """One fold of one candidate has been scored."""

    def end_cv(self) -> None:
        """Cross-validation has finished."""


def _leaderboard(
    scores: list[FoldScore], spec_models: list[tuple[str, Any]], metric: str, bigger: bool
) -> list[LeaderboardRow]:
    rows = []
    for name, pipeline in spec_models:
        mine = [s for s in scores if s.candidate == name]
        names = sorted({k for s in mine for k in s.validation})
        means = {k: float(np.mean([s.validation.get(k, np.nan) for s in mine])) for k in names}
        values = [s.validation.get(metric, np.nan) for s in mine]
        estimator = pipeline.named_steps["model"]
        rows.append(
            LeaderboardRow(
                name=name,
                estimator=qualified_name(estimator),
                params=_jsonable(estimator.get_params(deep=False)),
                cv_mean=float(np.mean(values)),
                cv_std=float(np.std(values)),
                train_mean=float(np.mean([s.train.get(metric, np.nan) for s in mine])),
                fit_seconds=float(np.sum([s.fit_seconds for s in mine])),
                cv_metrics=means,
            )
        )
    worst = -np.inf if bigger else np.inf
    return sorted(
        rows,
        key=lambda r: (r.cv_mean if not np.isnan(r.cv_mean) else worst) * (-1 if bigger else 1),
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = repr(value)
    return out


def _split(
    loaded: LoadedSpec, frame: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    spec = loaded.spec
    target = spec.target.name
    feature_names = [c.name for c in spec.features]
    y = frame[target]
    if spec.task == "classification":
        y = y.astype("object") if spec.target.type != "boolean" else y.astype(bool)
        counts = y.value_counts()
        if len(counts) < 2:
            raise DataError(f"target column {target!r} has a single class; nothing to learn")
        rare = counts[counts < spec.split.folds + 1]
        if spec.split.stratify and len(rare):
            raise DataError(
                f"target column {target!r}: class(es) {list(rare.index)} have fewer rows than "
                f"the {spec.split.folds} folds plus a holdout need"
            )
    stratify = y if spec.task == "classification" and spec.split.stratify else None
    X_train, X_test, y_train, y_test = train_test_split(
        frame[feature_names],
        y,
        test_size=spec.split.holdout,
        random_state=spec.split.seed,
        stratify=stratify,
    )
    return (
        X_train.reset_index(drop=True),
        X_test.reset_index(drop=True),
        y_train.reset_index(drop=True),
        y_test.reset_index(drop=True),
    )


def execute(
    loaded: LoadedSpec,
    workspace: Workspace,
    observer: RunObserver | None = None,
) -> RunResult:
    """Run the pipeline ``loaded`` describes and record it; raises on bad data or spec."""
    observer = observer or RunObserver()
    spec = loaded.spec
    metadata = workspace.metadata
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    run_id = metadata.start_run(
        pipeline=spec.name,
        user=workspace.settings.user,
        task=spec.task,
        metric=spec.metric,
        spec_path=str(loaded.path),
        spec_hash=loaded.spec_hash,
        spec=spec.model_dump(mode="json"),
        git_commit=git_commit(loaded.base_dir),
        environment=describe_environment(),
    )
    try:
        return _execute(loaded, workspace, observer, run_id, started)
    except BaseException as exc:
        message = str(exc) or type(exc).__name__
        metadata.fail_run(run_id, message, started_at)
        raise


def _execute(
    loaded: LoadedSpec,
    workspace: Workspace,
    observer: RunObserver,
    run_id: str,
    started: float,
) -> RunResult:
    spec = loaded.spec
    observer.stage("Ingesting and checking data")
    ingested: Ingested = ingest(loaded, workspace, observer.ingest)
    X_train, X_test, y_train, y_test = _split(loaded, ingested.frame)

    candidates = [
        (m.label, build_pipeline(spec.features, build_estimator(m.estimator, spec.task, m.params)))
        for m in spec.models
    ]
    folds = make_folds(spec.task, y_train, spec.split.folds, spec.split.seed, spec.split.stratify)
    observer.start_cv([name for name, _ in candidates], len(folds))
    scores = cross_validate_all(
        spec.task,
        candidates,
        X_train,
        y_train,
        folds,
        n_jobs=workspace.settings.n_jobs,
        on_fold=observer.fold_done,
    )
    observer.end_cv()
    bigger = greater_is_better(spec.task, spec.metric)
    leaderboard = _leaderboard(scores, candidates, spec.metric, bigger)
    best = leaderboard[0]

    observer.stage(f"Fitting {best.name} on the training part and scoring the holdout")
    model = dict(candidates)[best.name]
    model.fit(X_train, y_train)
    holdout = score(spec.task, model, X_test, y_test)
    classes = getattr(model, "classes_", None)

    observer.stage("Registering the model")
    class_list = [_plain(c) for c in classes] if classes is not None else None
    signature = Signature.from_spec(spec, X_train, class_list)
    artifact = save_model(model, workspace.artifacts)
    wall = time.perf_counter() - started
    version = workspace.metadata.finish_run(
        run_id,
        dataset_id=ingested.dataset.id,
        candidates=[
            Candidate(
                name=row.name,
                estimator=row.estimator,
                params=row.params,
                cv_mean=row.cv_mean,
                cv_std=row.cv_std,
                fit_seconds=row.fit_seconds,
                rank=rank,
                selected=rank == 1,
            )
            for rank, row in enumerate(leaderboard, start=1)
        ],
        metrics=[
            *(
                Metric(candidate=row.name, split="cv", name=name, value=value)
                for row in leaderboard
                for name, value in row.cv_metrics.items()
            ),
            *(
                Metric(candidate=best.name, split="holdout", name=name, value=value)
                for name, value in holdout.items()
            ),
        ],
        best_candidate=best.name,
        wall_seconds=wall,
        register=NewVersion(
            name=spec.name,
            dataset_hash=ingested.dataset.data_hash,
            estimator=best.estimator,
            params=best.params,
            artifact_sha256=artifact.sha256,
            artifact_size=artifact.size,
            signature=signature.to_dict(),
            metrics={"holdout": holdout, "cv": best.cv_metrics},
            created_by=workspace.settings.user,
        ),
    )
    assert version is not None
    return RunResult(
        run_id=run_id,
        dataset_hash=ingested.dataset.data_hash,
        dataset_reused=ingested.reused,
        n_rows=len(ingested.frame),
        leaderboard=leaderboard,
        holdout=holdout,
        version=version,
        wall_seconds=wall,
        validation=ingested.validation,
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
