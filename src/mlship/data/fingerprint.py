"""Fingerprints of ingest inputs, so that an unchanged ingest is recognised before it runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import fsspec

from mlship import __version__
from mlship.spec.models import PipelineSpec

_BLOCK = 1 << 20


def file_sha256(location: str) -> str:
    """sha256 of a local path or fsspec URL, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with fsspec.open(location, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def data_spec(spec: PipelineSpec) -> dict[str, Any]:
    """The part of a spec that decides the dataset (not models, split or metric)."""
    dumped = spec.model_dump(mode="json")
    return {key: dumped[key] for key in ("sources", "combine", "columns", "checks")}


def ingest_key(spec: PipelineSpec, source_hashes: list[str], settings_marker: str) -> str:
    """Key of an ingest: the data spec, every source's content hash and the code version."""
    payload = {
        "spec": data_spec(spec),
        "sources": source_hashes,
        "code": __version__,
        "settings": settings_marker,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def location_of(path: str, base_dir: Path) -> str:
    """A source path as fsspec can open it (relative local paths against the spec's folder)."""
    if "://" in path:
        return path
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else base_dir / candidate)
