"""What live traffic is compared with: the data a model version was trained on.

By default the reference of ``churn:3`` is the dataset version its run trained on (recorded in the
registry as ``dataset_hash``), restricted to the model's input columns, plus the model's own
predictions on those rows (so that the drift of the predictions is measured like any column's),
plus the dataset's stored profile (for the quality checks: training ranges and missing shares)
and the version's test-set metrics (the baseline that live performance is held against).

Very large training sets are sampled (``max_rows`` evenly spaced rows, read through the stored
dataset's lazy scan so that it is never loaded whole): drift statistics on 200,000
rows are as decisive as on millions, and predicting the reference costs time on every pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from mlship.errors import DataError
from mlship.monitor.traffic import PREDICTION, input_dtype, prediction_dtype
from mlship.store.context import HasArtifacts, HasDatasets, HasRuns
from mlship.store.entities import model_of
from mlship.train.model_io import LoadsModels
from mlship.train.signature import Signature

if TYPE_CHECKING:
    from mlship.store.entities import ModelVersion

MAX_ROWS = 200_000


@dataclass(frozen=True)
class Reference:
    model: str
    version: int
    dataset_hash: str
    signature: Signature
    frame: pl.DataFrame
    """Input columns (typed as traffic is decoded) and ``prediction``."""
    profile: dict[str, Any] | None
    baseline: dict[str, float]
    """The version's test-set ("holdout") metrics."""
    metric: str | None
    """The metric its pipeline selects models by (what reports lead with)."""
    rows: int
    """Rows of the training dataset (before any sampling)."""

    def profile_column(self, name: str) -> dict[str, Any] | None:
        if self.profile is None:
            return None
        return next((c for c in self.profile["columns"] if c["name"] == name), None)


class ReferenceStores(HasDatasets, HasRuns, HasArtifacts, LoadsModels, Protocol):
    """What a reference is read from: the dataset version, the run's report, the model."""


def typed_inputs(frame: pl.DataFrame, signature: Signature) -> pl.DataFrame:
    """``frame``'s input columns cast to the types traffic decodes to (categories as text)."""
    fields = input_dtype(signature).to_schema()
    columns = []
    for column in signature.inputs:
        if column.type == "datetime":
            columns.append(pl.col(column.name).cast(pl.Datetime("us", "UTC")))
        else:
            columns.append(pl.col(column.name).cast(fields[column.name]))
    return frame.select(columns)


def load_reference(
    workspace: ReferenceStores,
    version: ModelVersion,
    *,
    dataset: str | None = None,
    max_rows: int = MAX_ROWS,
) -> Reference:
    """The reference of a registered version (see the module docstring); ``dataset`` (a hash
    prefix or ``PIPELINE~N``) compares with another dataset version instead, such as last
    month's data."""
    from mlship.data.dataset_files import sample_dataset

    name = model_of(version).name
    stored = workspace.datasets.get_dataset(dataset or version.dataset_hash)
    signature = Signature.from_dict(version.signature)
    data = sample_dataset(stored, workspace.artifacts, [c.name for c in signature.inputs], max_rows)
    missing = [c.name for c in signature.inputs if c.name not in data.columns]
    if missing:
        raise DataError(
            f"dataset {stored.data_hash[:12]} cannot be the reference of {name}:"
            f"{version.version}: it lacks the input column(s) {', '.join(missing)}"
        )
    rows = stored.n_rows
    loaded = workspace.load_model(version)
    signature = loaded.signature
    names = [column.name for column in signature.inputs]
    predictions, _ = loaded.predict(data[names])
    frame = typed_inputs(pl.from_pandas(data[names]), signature).with_columns(
        pl.Series(PREDICTION, [_plain(v) for v in predictions]).cast(prediction_dtype(signature))
    )
    profile = None
    if stored.profile_sha256:
        profile = dict(json.loads(workspace.artifacts.get_bytes(stored.profile_sha256)))
    baseline = {k: float(v) for k, v in (version.metrics or {}).get("holdout", {}).items()}
    return Reference(
        model=name,
        version=version.version,
        dataset_hash=stored.data_hash,
        signature=signature,
        frame=frame,
        profile=profile,
        baseline=baseline,
        metric=workspace.runs.get_run(version.run_id).metric,
        rows=rows,
    )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
