"""Many finished runs at once, for measuring and showing what a large store feels like.

Training 10,000 runs to see whether the runs page stays fast would take days; this writes the
rows such runs leave (a run, its candidates, its metrics and the rows it is searched by) in
bulk, through the same tables and the same :func:`_searched` that
:meth:`~mlship.store.metadata.MetadataStore.finish_run` uses, so a search cannot tell them from
trained ones. Values come from a seeded generator: the same call writes the same runs.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from mlship.store.metadata import MetadataStore, searched
from mlship.store.repositories import NewCandidate, NewMetric
from mlship.store.tables import Candidate, Metric, Run, RunValue, utcnow

__all__ = ["METRIC_NAMES", "PARAM_NAMES", "seed_runs"]

PARAM_NAMES = (
    "model", "max_depth", "learning_rate", "n_estimators", "subsample", "min_samples_leaf",
    "class_weight", "l2", "max_features", "seed",
)  # fmt: skip
METRIC_NAMES = (
    "roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier", "pr_auc",
    "balanced_accuracy", "mcc",
)  # fmt: skip
_OWNERS = ("alice", "bob", "carol", "dan", "erin")
_TEAMS = ("growth", "risk", "search")


def _params(rng: random.Random, n: int) -> dict[str, Any]:
    values: list[Any] = [
        rng.choice(("gbm", "rf", "lr", "svm")),
        rng.randint(2, 12),
        round(rng.uniform(0.01, 0.3), 4),
        rng.choice((100, 200, 400, 800)),
        round(rng.uniform(0.5, 1.0), 3),
        rng.randint(1, 50),
        rng.choice(("balanced", None)),
        round(rng.uniform(0.0, 10.0), 3),
        rng.choice(("sqrt", "log2", 0.5)),
        rng.randint(0, 10_000),
    ]
    names = [PARAM_NAMES[i] if i < len(PARAM_NAMES) else f"p{i}" for i in range(n)]
    return {name: values[i % len(values)] for i, name in enumerate(names)}


def _run(
    rng: random.Random, number: int, pipeline: str, params: int, metrics: int, newest: datetime
) -> tuple[dict[str, Any], list[NewCandidate], list[NewMetric]]:
    run_id = uuid.UUID(int=rng.getrandbits(128)).hex
    started = newest - timedelta(minutes=10 * number, seconds=rng.random())
    wall = round(rng.uniform(5, 3600), 2)
    owner = rng.choice(_OWNERS)
    quality = rng.random()
    scores = {
        (METRIC_NAMES[i] if i < len(METRIC_NAMES) else f"m{i}"): round(
            min(1.0, max(0.0, quality + rng.gauss(0, 0.05))), 5
        )
        for i in range(metrics)
    }
    main = next(iter(scores), "roc_auc")
    run = {
        "id": run_id, "pipeline": pipeline, "status": "succeeded", "user": owner,
        "owner": owner, "tags": {"team": rng.choice(_TEAMS)}, "task": "classification",
        "metric": main, "spec_path": f"{pipeline}.yaml", "spec_hash": "0" * 64, "spec": {},
        "environment": {}, "started_at": started, "finished_at": started + timedelta(seconds=wall),
        "wall_seconds": wall, "cost": round(wall * 0.0001, 6), "best_candidate": "best",
        "attempts": 1,
    }  # fmt: skip
    candidates = [
        NewCandidate(name="best", estimator="sklearn.ensemble.Best", params=_params(rng, params),
                     cv_mean=scores.get(main, quality), cv_std=0.01, fit_seconds=wall / 2,
                     rank=1, selected=True),
        NewCandidate(name="baseline", estimator="sklearn.dummy.DummyClassifier", params={},
                     cv_mean=0.5, cv_std=0.0, fit_seconds=0.1, rank=2),
    ]  # fmt: skip
    figures = [
        *(NewMetric(candidate="best", split="holdout", name=k, value=v) for k, v in scores.items()),
        NewMetric(candidate="best", split="cv", name=main, value=scores.get(main, quality)),
        NewMetric(candidate="baseline", split="cv", name=main, value=0.5),
    ]
    return run, candidates, figures


def seed_runs(
    store: MetadataStore,
    count: int,
    *,
    pipeline: str = "synthetic",
    params: int = 10,
    metrics: int = 10,
    seed: int = 0,
    batch: int = 1000,
    newest: datetime | None = None,
) -> list[str]:
    """Write ``count`` finished runs of ``pipeline``, each with ``params`` params and ``metrics``
    holdout scores, one transaction per ``batch`` runs; their ids, newest first. The newest
    started at ``newest`` (now, when not given), each other one ten minutes before the next."""
    rng = random.Random(seed)  # noqa: S311 (made-up figures, repeatable on purpose)
    newest = newest or utcnow()
    ids: list[str] = []
    for start in range(0, count, batch):
        rows: dict[type[Any], list[dict[str, Any]]] = {
            Run: [], Candidate: [], Metric: [], RunValue: []
        }  # fmt: skip
        for number in range(start, min(count, start + batch)):
            run, candidates, figures = _run(rng, number, pipeline, params, metrics, newest)
            ids.append(run["id"])
            rows[Run].append(run)
            rows[Candidate] += [{"run_id": run["id"], **asdict(c)} for c in candidates]
            rows[Metric] += [{"run_id": run["id"], **asdict(m)} for m in figures]
            rows[RunValue] += [
                {"run_id": run["id"], "kind": v.kind, "key": v.key, "number": v.number,
                 "text": v.text}
                for v in searched(candidates, figures, "best")
            ]  # fmt: skip
        with store.transaction() as session:
            for table, values in rows.items():
                session.execute(insert(table), values)
    return ids
