"""A workspace: the settings plus the metadata and artifact stores they point at.

Opening one applies pending schema migrations, so every command sees the schema it was written for.
The stores are imported when first used, so importing this module (as every command does) does not
import SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from mlship.config import Settings, load_settings

if TYPE_CHECKING:
    from mlship.store.artifacts import ArtifactStore
    from mlship.store.metadata import MetadataStore


@dataclass
class Workspace:
    settings: Settings

    @classmethod
    def open(cls, settings: Settings | None = None) -> Workspace:
        return cls(settings or load_settings())

    @cached_property
    def metadata(self) -> MetadataStore:
        from mlship.store.db import make_engine, upgrade
        from mlship.store.metadata import MetadataStore

        engine = make_engine(self.settings.database_url_resolved)
        upgrade(engine)
        return MetadataStore(engine)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from mlship.store.artifacts import LocalArtifactStore

        return LocalArtifactStore(self.settings.artifact_root_resolved)

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.engine.dispose()
