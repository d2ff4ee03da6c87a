"""The rows a registered version was tested on, split off its stored dataset again.

Test rows are not stored: the split depends on the spec and the rows only, so the training code's
own function (:func:`mlship.train.parts.holdout_part`) gives them back from the stored dataset,
after checking that the dataset still hashes to the version's data hash and that the split gives
as many rows as the run tested on. The model card slices them; the gate scores two versions on
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mlship.errors import IntegrityError
from mlship.spec.models import Column, PipelineSpec
from mlship.store.context import HasArtifacts, HasDatasets, HasRuns, HasSettings, HasSigner
from mlship.store.entities import Dataset, ModelVersion, Run, model_of
from mlship.train.details import RunDetails
from mlship.train.model_io import LoadedModel, LoadsModels, load_scored
from mlship.train.parts import Holdout


class HeldOutStores(
    HasRuns, HasDatasets, HasArtifacts, HasSettings, HasSigner, LoadsModels, Protocol
):
    """Where the test rows and the scored model come from."""


@dataclass(frozen=True)
class HeldOut:
    """A version's test rows (every column, and the target) and the spec that split them."""

    spec: PipelineSpec
    run: Run
    dataset: Dataset
    rows: Holdout


def run_spec(run: Run, dataset: Dataset) -> PipelineSpec:
    """The spec the run trained with, its inferred columns filled in from the dataset."""
    spec = PipelineSpec.model_validate(run.spec)
    if spec.infer_columns:  # the columns the run inferred are the dataset's
        spec = spec.model_copy(
            update={"columns": [Column.model_validate(c) for c in dataset.columns]}
        )
    return spec


def held_out(workspace: HeldOutStores, version: ModelVersion, run: Run | None = None) -> HeldOut:
    """The test rows of ``version``'s run, checked against what the run recorded."""
    from mlship.data.ingested import dataset_frame
    from mlship.data.versioning import frame_hash
    from mlship.train.parts import holdout_part

    ref = f"{model_of(version).name}:{version.version}"
    run = run or workspace.runs.get_run(version.run_id)
    dataset = workspace.datasets.get_dataset(version.dataset_hash)
    spec = run_spec(run, dataset)
    frame = dataset_frame(dataset, workspace)
    if frame_hash(frame) != dataset.data_hash:
        raise IntegrityError(
            f"dataset {dataset.data_hash[:12]} of {ref} does not hash to its recorded content "
            "hash; its test rows cannot be trusted"
        )
    holdout = holdout_part(spec, frame)
    expected = recorded_test_rows(run)
    if expected is not None and expected != len(holdout.y):
        raise IntegrityError(
            f"splitting dataset {dataset.data_hash[:12]} again gives {len(holdout.y)} test rows; "
            f"run {run.id[:8]} tested {ref} on {expected}"
        )
    return HeldOut(spec, run, dataset, holdout)


def scored_model(workspace: HeldOutStores, version: ModelVersion, run: Run) -> LoadedModel:
    """The model the run scored on its test rows: the version itself, or, when the version was
    refitted on every labelled row (the test rows among them), the scored model the run kept, so
    what is measured on the test rows is measured on rows the model has not learnt from."""
    refit = RunDetails.from_json(run.details).refit
    kept = refit.scored_model if refit is not None else None
    if kept is None:
        return workspace.load_model(version)
    signer = None if workspace.settings.url else workspace.signer  # a server verifies its own
    return load_scored(version, kept, workspace.artifacts, signer)


def recorded_test_rows(run: Run) -> int | None:
    """How many rows the run scored its model on, when it recorded that."""
    split = RunDetails.from_json(run.details).split
    return split.test_rows if split is not None else None
