"""The pipeline spec: the single source of truth for what a run does."""

from mlship.spec.loader import LoadedSpec, load_spec, parse_spec
from mlship.spec.models import Column, ModelSpec, PipelineSpec, Source, Split

__all__ = [
    "Column",
    "LoadedSpec",
    "ModelSpec",
    "PipelineSpec",
    "Source",
    "Split",
    "load_spec",
    "parse_spec",
]
