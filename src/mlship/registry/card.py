"""The model card of a registered version, gathered from what the store already holds.

A card says what a model is for and where not to trust it (the spec's ``card:`` section and the
descriptions), what it learnt from (the dataset's lineage and the run that trained it), how well it
does (cross-validated and test-set metrics), how well it does *for whom* (fairness slices over the
spec's sensitive columns) and what the measurements themselves warn about (a fit verdict other than
a good fit, a small test set, quarantined rows, slices that are worse or too small to judge).

Nothing of it is stored: the card is rebuilt each time from the version, its run, its dataset and
its notes, so it never disagrees with them. The slices need the test rows, which are not stored
either: they are split off the stored dataset again by the training code's own function
(:func:`mlship.train.parts.holdout_part`), after checking that the dataset still hashes to the
version's data hash and that the split gives as many rows as the run tested on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from mlship.errors import MlshipError
from mlship.evaluation.slices import SMALL_SLICE, SliceReport, slice_metrics
from mlship.registry.held_out import held_out, recorded_test_rows, run_spec, scored_model
from mlship.spec.models import CardSpec
from mlship.store.context import (
    HasArtifacts,
    HasDatasets,
    HasRegistry,
    HasRuns,
    HasSettings,
    HasSigner,
)
from mlship.store.entities import Dataset, ModelVersion, Run, model_of
from mlship.train.details import RunDetails, SplitRecord
from mlship.train.metrics import KEY_METRICS, metric_label
from mlship.train.model_io import LoadsModels


class CardStores(
    HasRuns, HasDatasets, HasArtifacts, HasRegistry, HasSettings, HasSigner, LoadsModels, Protocol
):
    """What a card is built from: the run, its dataset and evaluation, the notes, the model."""


SMALL_TEST_SET = 100
"""Fewer test rows than this and the card warns that the test metrics are uncertain."""


@dataclass(frozen=True)
class CardNote:
    author: str
    created_at: str
    body: str


@dataclass(frozen=True)
class ModelCard:
    """Everything a model card shows, as plain values."""

    model: str
    version: int
    task: str
    metric: str
    facts: dict[str, Any]
    model_description: str
    version_description: str
    intended_use: str
    limitations: list[str]
    """Declared in the spec's ``card:`` section."""
    measured: list[str]
    """Found by the card from the stored measurements."""
    lineage: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    sensitive: list[str] = field(default_factory=list)
    slices: SliceReport | None = None
    notes: list[CardNote] = field(default_factory=list)
    generated_at: str = ""

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


def build_card(workspace: CardStores, version: ModelVersion) -> ModelCard:
    """The card of ``version`` (loaded with its model, as ``get_version`` returns it)."""
    name = model_of(version).name
    run = workspace.runs.get_run(version.run_id)
    dataset = workspace.datasets.get_dataset(version.dataset_hash)
    declared = CardSpec.model_validate((run.spec or {}).get("card") or {})
    slices = _fairness(workspace, version, run, dataset) if declared.sensitive else None
    notes = workspace.registry.version_notes(name, version.version)
    evaluation = _stored_evaluation(workspace, run)
    return ModelCard(
        model=name,
        version=version.version,
        task=run.task,
        metric=run.metric,
        facts={
            "estimator": version.estimator,
            "candidate": run.best_candidate,
            "stage": version.stage,
            "owner": model_of(version).owner,
            "registered by": version.created_by,
            "registered at": version.created_at.isoformat(timespec="seconds"),
            "tags": dict(version.tags or {}),
            "params": dict(version.params or {}),
        },
        model_description=model_of(version).description or "",
        version_description=version.description or "",
        intended_use=declared.intended_use,
        limitations=list(declared.limitations),
        measured=measured_limitations(run, dataset, evaluation, slices, version),
        lineage=_lineage(run, dataset),
        metrics={split: dict(values) for split, values in (version.metrics or {}).items()},
        sensitive=list(declared.sensitive),
        slices=slices,
        notes=[
            CardNote(n.author, n.created_at.isoformat(timespec="seconds"), n.body) for n in notes
        ],
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _lineage(run: Run, dataset: Dataset) -> dict[str, Any]:
    details = RunDetails.from_json(run.details)
    split = details.split or SplitRecord()
    fitted_on = details.fitted_on
    return {
        "run": run.id,
        "pipeline": run.pipeline,
        "dataset": dataset.data_hash,
        "sources": list(dataset.sources or []),
        "rows": dataset.n_rows,
        "training rows": split.train_rows,
        "test rows": split.test_rows,
        "fitted on": fitted_on.sentence() if fitted_on else None,
        "quarantined rows": dataset.n_quarantined,
        "spec sha256": run.spec_hash,
        "git commit": run.git_commit,
        "mlship": dataset.code_version,
        "trained": run.started_at.isoformat(timespec="seconds"),
    }


def _stored_evaluation(workspace: CardStores, run: Run) -> dict[str, Any]:
    """The run's stored evaluation (fit diagnosis and all), or nothing for runs without one."""
    if not run.report_sha256:
        return {}
    stored = json.loads(workspace.artifacts.get_bytes(run.report_sha256))
    return dict(stored.get("evaluation") or {})


def _fairness(
    workspace: CardStores, version: ModelVersion, run: Run, dataset: Dataset
) -> SliceReport:
    """Score the version on its run's test rows, per value of each sensitive column."""
    ref = f"{model_of(version).name}:{version.version}"
    spec = run_spec(run, dataset)
    assert spec.card is not None
    holdout = held_out(workspace, version, run).rows
    missing = [column for column in spec.card.sensitive if column not in holdout.frame.columns]
    if missing:
        raise MlshipError(
            f"sensitive column(s) {', '.join(missing)} of {ref} are not in its dataset "
            f"{dataset.data_hash[:12]}"
        )
    loaded = scored_model(workspace, version, run)
    inputs = [column.name for column in loaded.signature.inputs]
    predictions, proba = loaded.predict(holdout.frame[inputs])
    return slice_metrics(
        spec.task,
        run.metric,
        KEY_METRICS[spec.task],
        holdout.y,
        predictions,
        proba,
        getattr(loaded.pipeline, "classes_", None),
        {column: holdout.frame[column] for column in spec.card.sensitive},
        positive=spec.target.positive,
    )


def _shown(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def measured_limitations(
    run: Run,
    dataset: Dataset,
    evaluation: dict[str, Any],
    slices: SliceReport | None,
    version: ModelVersion,
) -> list[str]:
    """What the stored measurements warn about, one sentence each."""
    found: list[str] = []
    fit = (evaluation.get("diagnosis") or {}).get("fit") or {}
    if fit.get("verdict") and fit["verdict"] != "a good fit":
        found.append(f"Fit diagnosis: {fit['verdict']}. {fit.get('reason', '')}".strip())
    test_rows = recorded_test_rows(run)
    if test_rows is not None and test_rows < SMALL_TEST_SET:
        found.append(
            f"The test set has only {test_rows} rows: the test metrics could move a lot on "
            "another sample of the same size."
        )
    if dataset.n_quarantined:
        found.append(
            f"{dataset.n_quarantined} rows failed the data checks and were quarantined before "
            "training: the model has not seen rows like them."
        )
    if slices is None:
        return found
    inputs = {column["name"] for column in (version.signature or {}).get("inputs", [])}
    for column in slices.columns:
        if column in inputs:
            found.append(f"The sensitive column {column} is an input of the model.")
    for piece in slices.slices:
        if piece.worse and not piece.small:
            worse = ", ".join(
                f"{metric_label(m)} {_shown(piece.metrics[m])} against "
                f"{_shown(slices.overall[m])} overall"
                for m in piece.worse
            )
            found.append(
                f"Worse for {piece.column} = {piece.value} ({piece.rows} test rows): {worse}."
            )
    for column in slices.columns:
        small = [piece for piece in slices.of(column) if piece.small]
        if not small:
            continue
        values = ", ".join(piece.value for piece in small[:8]) + (", ..." if len(small) > 8 else "")
        found.append(
            f"{column}: {len(small)} of {len(slices.of(column))} groups have fewer than "
            f"{SMALL_SLICE} test rows ({values}); their metrics are too noisy to judge."
        )
    for column, folded in slices.folded.items():
        found.append(
            f"{column} has more values than the card shows: {folded} rarer values are scored "
            "together as one 'other' slice."
        )
    return found
