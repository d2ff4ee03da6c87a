"""What domain code reads of a workspace, one small protocol per store.

A domain function names the stores it uses by combining these (``class Stores(HasRuns,
HasArtifacts, Protocol)``), so it imports the store's interfaces and never the workspace, which
chooses between the local and the HTTP implementations and so imports them all. The workspace
satisfies every one of these structurally and passes itself; a test may pass anything that has
the attributes. Each member is read-only, as the workspace opens a store once and keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import optuna

    from mlship.config import Settings
    from mlship.crypto.signatures import Signer
    from mlship.store.artifacts import ArtifactStore
    from mlship.store.logstore import LogStore
    from mlship.store.parts import Sealing
    from mlship.store.registry import Registry
    from mlship.store.repositories import Catalogue, Datasets, Marks, Runs
    from mlship.store.rollouts import Rollouts


class HasSettings(Protocol):
    @property
    def settings(self) -> Settings: ...


class HasArtifacts(Protocol):
    @property
    def artifacts(self) -> ArtifactStore: ...


class HasDatasets(Protocol):
    @property
    def datasets(self) -> Datasets: ...


class HasMarks(Protocol):
    @property
    def marks(self) -> Marks: ...


class HasRuns(Protocol):
    @property
    def runs(self) -> Runs: ...


class HasCatalogue(Protocol):
    @property
    def catalogue(self) -> Catalogue: ...


class HasRegistry(Protocol):
    @property
    def registry(self) -> Registry: ...


class HasRollouts(Protocol):
    @property
    def rollouts(self) -> Rollouts: ...


class HasLogs(Protocol):
    @property
    def logs(self) -> LogStore: ...


class HasSealing(Protocol):
    @property
    def sealing(self) -> Sealing: ...


class HasSigner(Protocol):
    @property
    def signer(self) -> Signer: ...


class SignsArtifacts(Protocol):
    def artifact_signature(self, sha256: str) -> str:
        """The signature a new model version carries (empty when a server signs it)."""
        ...


class ChecksWritable(Protocol):
    def check_writable(self) -> None:
        """Stop before any work if the artifact store or the reports folder refuses a write."""
        ...


class HasTuningStorage(Protocol):
    def tuning_storage(self, run_id: str) -> optuna.storages.BaseStorage:
        """Where the studies of run ``run_id`` live."""
        ...
