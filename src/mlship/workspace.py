"""A workspace: the settings plus the metadata and artifact stores they point at.

Opening one applies pending schema migrations, so every command sees the schema it was written for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mlship.config import Settings, load_settings
from mlship.store.artifacts import ArtifactStore, LocalArtifactStore
from mlship.store.db import make_engine, upgrade
from mlship.store.metadata import MetadataStore


@dataclass
class Workspace:
    settings: Settings

    @classmethod
    def open(cls, settings: Settings | None = None) -> Workspace:
        return cls(settings or load_settings())

    @cached_property
    def metadata(self) -> MetadataStore:
        engine = make_engine(self.settings.database_url_resolved)
        upgrade(engine)
        return MetadataStore(engine)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        return LocalArtifactStore(self.settings.artifact_root_resolved)

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.engine.dispose()
