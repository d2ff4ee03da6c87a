"""What an ingest gives back and where it keeps it: the outcome every ingest path returns (in
memory, in batches, on Spark), the stores it needs, and a stored dataset read back as a frame.

Apart from :mod:`mlship.data.ingest`, which dispatches to the other paths, so that they can build
the same outcome without importing it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import polars as pl

from mlship.spec.data import Column
from mlship.store.context import (
    HasArtifacts,
    HasDatasets,
    HasLogs,
    HasMarks,
    HasSealing,
    HasSettings,
)
from mlship.store.entities import Dataset


class IngestStores(HasSettings, HasDatasets, HasMarks, HasArtifacts, HasLogs, HasSealing, Protocol):
    """Where an ingest reads its settings, cached datasets and landed streams, and keeps the
    dataset it makes."""


@dataclass
class Ingested:
    """The outcome of an ingest: the clean table and what was recorded about it."""

    dataset: Dataset
    reused: bool
    validation: dict[str, Any]
    table: pd.DataFrame | Callable[[], pd.DataFrame]
    """The clean table, or how to load it: a reused or streamed dataset is only read from the
    store when a caller asks for :attr:`frame`."""
    combine: dict[str, Any] = field(default_factory=dict)
    columns: list[Column] = field(default_factory=list)
    """The dataset's columns: the spec's declared ones, then any inferred (``infer: true``)."""

    @cached_property
    def frame(self) -> pd.DataFrame:
        return self.table if isinstance(self.table, pd.DataFrame) else self.table()


def dataset_frame(dataset: Dataset, workspace: HasArtifacts) -> pd.DataFrame:
    """A stored dataset as the pandas frame training gets, with the same column types whether
    the dataset was just ingested or read back from the store."""
    stored = pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))
    return stored.to_pandas()


def json_bytes(data: dict[str, Any]) -> bytes:
    import json

    return json.dumps(data, sort_keys=True, default=str).encode()


def code_version(base_dir: Path) -> str:
    """mlship's version, and the commit of the project holding the spec when it is in git."""
    from mlship import __version__
    from mlship.environment import git_commit

    found = f"mlship {__version__}"
    commit = git_commit(base_dir)
    if commit:
        found += f", git {commit[:12]}" + ("-dirty" if commit.endswith("-dirty") else "")
    return found
