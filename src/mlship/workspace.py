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
    from mlship.registry.model_io import LoadedModel
    from mlship.store.artifacts import ArtifactStore
    from mlship.store.metadata import MetadataStore
    from mlship.store.tables import ModelVersion


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
    def signing_key(self) -> bytes:
        """The key that signs and verifies model artifacts (created with the workspace)."""
        from mlship.security.signing import signing_key

        return signing_key(self.settings)

    def load_model(self, version: ModelVersion) -> LoadedModel:
        """A registered version, unpickled only after its signature and checksum verify."""
        from mlship.registry.model_io import load_model

        return load_model(version, self.artifacts, self.signing_key)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The artifact store; encrypting when ``encrypt_artifacts`` is on, and decrypting
        whenever there is a key (encryption may have been on before)."""
        from mlship.store.artifacts import LocalArtifactStore

        settings = self.settings
        cipher = None
        if (
            settings.encrypt_artifacts
            or settings.encryption_key is not None
            or settings.encryption_key_file_resolved.is_file()
        ):
            from mlship.security.keyring import artifact_cipher

            cipher = artifact_cipher(settings)
        return LocalArtifactStore(
            settings.artifact_root_resolved,
            cipher,
            encrypt=settings.encrypt_artifacts,
            allow_plaintext=not settings.refuse_plaintext_artifacts,
        )

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.engine.dispose()
