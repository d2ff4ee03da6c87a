"""Ingest: read every source of a spec, type it against the schema, and version the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlship.data.schema import coerce_frame
from mlship.data.sources import read_source
from mlship.data.versioning import frame_hash, store_frame
from mlship.spec.loader import LoadedSpec
from mlship.store.artifacts import ArtifactStore
from mlship.store.metadata import MetadataStore
from mlship.store.tables import Dataset


@dataclass(frozen=True)
class Ingested:
    frame: pd.DataFrame
    dataset: Dataset
    reused: bool


def read_sources(loaded: LoadedSpec) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Read and type every source; sources with the same schema are stacked (a union)."""
    frames = []
    lineage = []
    for source in loaded.spec.sources:
        path = loaded.source_path(source)
        fmt = source.resolved_format or "csv"
        raw = read_source(path, fmt, source.delimiter)
        frames.append(coerce_frame(raw, loaded.spec.columns, str(path), csv_lines=fmt == "csv"))
        lineage.append({"path": str(path), "format": fmt, "rows": len(raw)})
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame, lineage


def ingest(loaded: LoadedSpec, metadata: MetadataStore, artifacts: ArtifactStore) -> Ingested:
    frame, lineage = read_sources(loaded)
    data_hash = frame_hash(frame)
    columns = [c.model_dump() for c in loaded.spec.columns]
    artifact = store_frame(frame, artifacts)
    dataset, created = metadata.get_or_add_dataset(
        data_hash=data_hash,
        artifact_sha256=artifact.sha256,
        n_rows=len(frame),
        columns=columns,
        sources=lineage,
    )
    return Ingested(frame=frame, dataset=dataset, reused=not created)
