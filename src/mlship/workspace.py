"""A workspace: the settings plus the metadata and artifact stores they point at.

The stores are local (a database and a directory, the embedded default; the artifacts may be in
S3-compatible object storage, ``MLSHIP_ARTIFACT_ROOT=s3://bucket/prefix``) or, when ``MLSHIP_URL``
names a tracking server, that server's, reached over HTTP with ``MLSHIP_TOKEN``. The choice is made
here, once, and the rest of mlship sees only interfaces, each with an SQL and an HTTP
implementation: datasets, runs, the model catalogue and tuning journals
(:mod:`mlship.store.repositories`, chosen in :attr:`Workspace.tracking`), the registry, users, audit
log and alert history (:mod:`mlship.store.registry`, :mod:`mlship.store.accounts`,
:mod:`mlship.store.audit_trail`, :mod:`mlship.store.alert_history`), so every command works against
both. The SQL ones act as the settings' user; the HTTP ones as the token's user. Domain code
never imports this module: it asks for the stores it reads through the small protocols of
:mod:`mlship.store.context`, which a workspace satisfies, so the workspace sits above the domain.
:attr:`Workspace.metadata` is the SQL store itself, for what only runs next to the database (the
server, maintenance). Opening a local store applies pending schema migrations, so every command
sees the schema it was written for, under the workspace's lock (``<home>/.lock``), so processes
that start together on a new workspace create it once. The stores are imported when first used,
so importing this module (as every command does) does not import SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from mlship.config import Settings, load_settings
from mlship.errors import ConfigError

if TYPE_CHECKING:
    import optuna

    from mlship.remote.client import Client
    from mlship.security.signing import Signer
    from mlship.store.accounts import Users
    from mlship.store.alert_history import AlertHistory
    from mlship.store.artifacts import ArtifactStore
    from mlship.store.audit_trail import AuditLog
    from mlship.store.entities import ModelVersion
    from mlship.store.logstore import LogStore
    from mlship.store.metadata import MetadataStore
    from mlship.store.parts import Sealing
    from mlship.store.registry import Registry
    from mlship.store.repositories import Catalogue, Datasets, Journals, Marks, Runs, Tracking
    from mlship.store.rollouts import Rollouts
    from mlship.train.model_io import LoadedModel


RESTORING = ".mlship-restoring"
"""A file in the home while a restore writes the workspace (it names the backup): commands refuse
to open a workspace a restore has not finished."""


@dataclass
class Workspace:
    settings: Settings

    @classmethod
    def open(cls, settings: Settings | None = None) -> Workspace:
        """The workspace ``settings`` describe, unless a restore into it has not finished."""
        settings = settings or load_settings()
        if not settings.url:
            marker = settings.home_resolved / RESTORING
            if marker.is_file():
                backup = marker.read_text(errors="replace").strip() or "the backup"
                raise ConfigError(
                    f"the workspace at {settings.home_resolved} is being restored from {backup}, "
                    "or that restore was cut off: run the same `mlship restore` again to finish "
                    "it (it goes on where it stopped)"
                )
        return cls(settings)

    @cached_property
    def remote(self) -> Client | None:
        """The tracking server's client, or None for the local stores."""
        if not self.settings.url:
            return None
        from mlship.remote.client import Client, RetryPolicy

        token = self.settings.token.get_secret_value() if self.settings.token else None
        retry = RetryPolicy(self.settings.retry_attempts, self.settings.retry_seconds)
        return Client(self.settings.url, token, ca_bundle=self.settings.ca_bundle, retry=retry)

    @cached_property
    def tracking(self) -> Tracking:
        """Datasets, runs, the model catalogue and tuning journals: the server's over HTTP, or
        the local SQL store. The one place that chooses; prefer the narrow views below."""
        if self.remote is not None:
            from mlship.remote.metadata import RemoteMetadata

            return RemoteMetadata(self.remote)
        return self.metadata

    @property
    def datasets(self) -> Datasets:
        return self.tracking

    @property
    def runs(self) -> Runs:
        return self.tracking

    @property
    def catalogue(self) -> Catalogue:
        return self.tracking

    @property
    def marks(self) -> Marks:
        return self.tracking

    @property
    def journals(self) -> Journals:
        return self.tracking

    @cached_property
    def metadata(self) -> MetadataStore:
        """The SQL metadata store of a local workspace (or of the server serving it), acting as
        the settings' user. A client of a server has no database to open."""
        if self.remote is not None:
            from mlship.errors import MlshipError

            raise MlshipError(
                f"this needs direct database access, which a client of {self.remote.url} does "
                "not have; run it on the server's host"
            )
        from mlship.store.audit import local_actor
        from mlship.store.db import make_engine, upgrade
        from mlship.store.metadata import MetadataStore
        from mlship.store.retry import RetryPolicy

        engine = make_engine(self.settings.database_url_resolved)
        upgrade(engine, self.settings.lock_file)

        def holds(sha256: str) -> bool:  # the artifact store is opened on first use only
            return self.artifacts.exists(sha256)

        retry = RetryPolicy(seconds=self.settings.database_retry_seconds)
        return MetadataStore(engine, local_actor(self.settings.user), holds=holds, retry=retry)

    @cached_property
    def registry(self) -> Registry:
        if self.remote is not None:
            from mlship.remote.registry import HttpRegistry

            return HttpRegistry(self.remote)
        from mlship.registry.lifecycle import SqlRegistry

        return SqlRegistry(self.metadata, self.settings.user)

    @cached_property
    def rollouts(self) -> Rollouts:
        """Progressive rollouts: the tracking server's over HTTP, or the local metadata store's."""
        if self.remote is not None:
            from mlship.remote.rollouts import HttpRollouts

            return HttpRollouts(self.remote)
        from mlship.registry.rollouts import SqlRollouts

        return SqlRollouts(self.metadata, self.settings.user)

    @cached_property
    def users(self) -> Users:
        if self.remote is not None:
            from mlship.remote.admin import HttpUsers

            return HttpUsers(self.remote)
        from mlship.security.users import SqlUsers

        return SqlUsers(self.metadata, self.settings.user)

    @cached_property
    def alert_history(self) -> AlertHistory:
        if self.remote is not None:
            from mlship.remote.admin import HttpAlertHistory

            return HttpAlertHistory(self.remote)
        from mlship.monitor.history import SqlAlertHistory

        return SqlAlertHistory(self.metadata)

    @cached_property
    def audit(self) -> AuditLog:
        if self.remote is not None:
            from mlship.remote.admin import HttpAuditLog

            return HttpAuditLog(self.remote)
        from mlship.store.audit_log import SqlAuditLog

        return SqlAuditLog(self.metadata)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The artifact store: the server's, or the local one, signing what it writes and checking
        what it reads with :attr:`signer`, encrypting when ``encrypt_artifacts`` is on and
        decrypting whenever there is a key (encryption may have been on before). A server signs
        and encrypts at rest with its own settings."""
        if self.remote is not None:
            from mlship.remote.artifacts import RemoteArtifactStore

            return RemoteArtifactStore(self.remote)
        settings = self.settings
        if settings.artifact_url is not None:
            from mlship.store.s3 import S3ArtifactStore

            return S3ArtifactStore.from_settings(settings, self.sealing.cipher, signer=self.signer)
        from mlship.store.artifacts import LocalArtifactStore

        return LocalArtifactStore(
            settings.artifact_root_resolved,
            self.sealing.cipher,
            signer=self.signer,
            encrypt=settings.encrypt_artifacts,
            allow_plaintext=not settings.refuse_plaintext_artifacts,
            cold=settings.cold_root_resolved,
        )

    @cached_property
    def logs(self) -> LogStore:
        """Where the prediction logs and labels live: beside the artifacts, so that every
        replica and every machine using this workspace writes to and reads from one place (the
        server's, the object storage's, or ``home`` for a local workspace)."""
        if self.remote is not None:
            from mlship.remote.logparts import RemoteLogStore

            return RemoteLogStore(self.remote)
        from mlship.store.log_home import log_store_for

        return log_store_for(self.settings)

    def check_writable(self) -> None:
        """Write, sync, rename and delete a small file in the artifact store and in ``reports/``,
        so a read-only, full or refused store stops a command before it spends time on work it
        could not keep (:class:`~mlship.errors.StorageError` names the store and what to do). A
        server's store is the server's to check."""
        from mlship.store.artifacts import LocalArtifactStore
        from mlship.store.failures import Place, probe
        from mlship.store.s3 import S3ArtifactStore

        store = self.artifacts
        if isinstance(store, LocalArtifactStore | S3ArtifactStore):
            store.probe()
        reports = self.settings.home_resolved / "reports"
        probe(Place("the reports folder", reports, "MLSHIP_HOME"))

    @cached_property
    def sealing(self) -> Sealing:
        """How this process encrypts and decrypts what it keeps on its own disk: the local
        artifact store, and the prediction logs and labels under ``home`` (also with a server,
        whose store follows the server's settings)."""
        from mlship.security import keyring

        return keyring.sealing(self.settings)

    def tuning_storage(self, run_id: str) -> optuna.storages.BaseStorage:
        """Where the studies of run ``run_id`` live: Optuna's tables in the local database, or
        the run's journal on the tracking server."""
        if self.remote is not None:
            from optuna.storages import JournalStorage

            from mlship.remote.metadata import RemoteJournal

            return JournalStorage(RemoteJournal(self.journals, run_id))
        from mlship.store.locks import file_lock
        from mlship.train.tuning import storage_for

        with file_lock(self.settings.lock_file):  # Optuna creates its tables on first use
            return storage_for(self.settings.database_url_resolved)

    @cached_property
    def signing_key(self) -> bytes:
        """The key that signs and verifies model artifacts (created with a local workspace; a
        client of a server only has one if it is configured)."""
        from mlship.security.signing import signing_key

        return signing_key(self.settings, create=self.remote is None)

    @cached_property
    def signer(self) -> Signer:
        """The keys that sign and verify model artifacts (HMAC or Ed25519, see
        :mod:`mlship.security.signing`); a client of a server has only what is configured."""
        from mlship.security.signing import signer

        return signer(self.settings, create=self.remote is None)

    def artifact_signature(self, sha256: str) -> str:
        """The signature a new model version carries (a server signs with its own key)."""
        if self.remote is not None:
            return ""
        return self.signer.sign(sha256)

    def load_model(self, version: ModelVersion) -> LoadedModel:
        """A registered version, unpickled only after its signature and checksum verify.

        From a server, the server checks the signature with its key before it sends the file,
        and the client checks the bytes against the version's checksum before unpickling.
        """
        from mlship.train.model_io import load_model, load_model_bytes

        if self.remote is None:
            return load_model(version, self.artifacts, self.signer)
        from mlship.remote.metadata import part
        from mlship.store.entities import model_of

        name = model_of(version).name
        if self.settings.verify_key:  # a pinned public key: check the server's signature too
            what = f"model {name}:{version.version}"
            self.signer.verify(version.artifact_sha256, version.artifact_signature or "", what)
        path = f"/models/{part(name)}/versions/{version.version}/artifact"
        return load_model_bytes(version, self.remote.get_bytes(path))

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
        elif "metadata" in self.__dict__:
            self.metadata.engine.dispose()
