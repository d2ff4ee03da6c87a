"""Save and load model artifacts.

Model files are pickles, and unpickling runs code, so a model is only unpickled after its bytes
hash to the checksum the registry recorded for the version. A mismatch is refused with an error
that names the model, the version and both checksums.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from mlship.data.schema import coerce_frame
from mlship.errors import IntegrityError
from mlship.store.entities import model_of
from mlship.train.scoring import predict_outputs
from mlship.train.signature import Signature

if TYPE_CHECKING:
    from mlship.security.signing import Signer
    from mlship.store.artifacts import ArtifactRef, ArtifactStore
    from mlship.store.entities import ModelVersion
    from mlship.train.details import ScoredModelRecord


def save_model(pipeline: Any, store: ArtifactStore) -> ArtifactRef:
    return store.put_bytes(pickle.dumps(pipeline, protocol=5))


@dataclass
class LoadedModel:
    """A verified, unpickled model version ready to predict."""

    name: str
    version: int
    pipeline: Any
    signature: Signature

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def prepare(
        self,
        raw: pd.DataFrame,
        origin: str,
        *,
        csv_lines: bool = False,
        lines: Sequence[int] | None = None,
        rows: Sequence[int] | int = 1,
    ) -> pd.DataFrame:
        """Check raw input against the signature and type it (raises DataError naming rows, and
        their lines when ``csv_lines`` or ``lines`` say them; ``rows`` numbers the rows as in
        :func:`~mlship.data.schema.coerce_frame`)."""
        return coerce_frame(
            raw,
            self.signature.inputs,
            origin,
            csv_lines=csv_lines,
            lines=lines,
            rows=rows,
        )

    def predict(
        self, frame: pd.DataFrame
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
        """Predictions, and class probabilities (one column per class) for classifiers."""
        return predict_outputs(self.pipeline, frame, self.signature.task)


def load_model(version: ModelVersion, store: ArtifactStore, signer: Signer) -> LoadedModel:
    """Fetch, verify (signature by ``signer``'s keys, then checksum) and unpickle a version."""
    return load_model_bytes(version, signed_model_bytes(version, store, signer))


def signed_model_bytes(version: ModelVersion, store: ArtifactStore, signer: Signer) -> bytes:
    """A version's artifact once its signature (by ``signer``'s keys) verifies; the caller
    checks its checksum (:func:`load_model_bytes`, :func:`check_checksum`)."""
    name = model_of(version).name
    what = f"model {name}:{version.version}"
    signer.verify(version.artifact_sha256, version.artifact_signature, what)
    try:
        data = store.get_bytes(version.artifact_sha256)
    except IntegrityError as exc:
        raise IntegrityError(f"refusing to load model {name}:{version.version}: {exc}") from None
    return data


def load_model_bytes(version: ModelVersion, data: bytes) -> LoadedModel:
    """Unpickle ``data`` as ``version`` if it hashes to the version's checksum (the caller has
    checked the signature: :func:`load_model` here, a tracking server for its clients)."""
    name = model_of(version).name
    # Defence in depth for stores that do not verify.
    pipeline = unpickle_verified(
        data, version.artifact_sha256, f"model {name}:{version.version}", "the registry's"
    )
    return LoadedModel(
        name=name,
        version=version.version,
        pipeline=pipeline,
        signature=Signature.from_dict(version.signature),
    )


def load_scored(
    version: ModelVersion, kept: ScoredModelRecord, store: ArtifactStore, signer: Signer | None
) -> LoadedModel:
    """The model a run scored on its test set, kept beside ``version`` when the version is a
    refit on every labelled row (``kept``: its checksum and seal, as the run recorded them). It
    serves with the version's signature; ``signer`` checks the seal (None: the checksum only, as
    for a tracking server's client).
    """
    name = model_of(version).name
    what = f"the model run {version.run_id[:8]} scored on its test set for {name}:{version.version}"
    sha256 = kept.sha256
    if signer is not None:
        signer.verify(sha256, kept.signature, what)
    try:
        data = store.get_bytes(sha256)
    except IntegrityError as exc:
        raise IntegrityError(f"refusing to load {what}: {exc}") from None
    return LoadedModel(
        name=name,
        version=version.version,
        pipeline=unpickle_verified(data, sha256, what, "the run's"),
        signature=Signature.from_dict(version.signature),
    )


def unpickle_verified(data: bytes, sha256: str, what: str, whose: str) -> Any:
    """Unpickle ``data`` only if it hashes to ``sha256`` (``whose`` checksum, for the message)."""
    check_checksum(data, sha256, what, whose)
    return pickle.loads(data)  # noqa: S301 - the bytes are the ones whose checksum was recorded


def check_checksum(data: bytes, sha256: str, what: str, whose: str) -> None:
    """Refuse ``data`` unless it hashes to ``sha256`` (``whose`` checksum, for the message)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise IntegrityError(
            f"refusing to load {what}: artifact checksum {actual} does not match {whose} {sha256}"
        )


class LoadsModels(Protocol):
    """Whatever hands out registered versions ready to predict (a workspace, with its artifact
    store and its keys, or a tracking server's client)."""

    def load_model(self, version: ModelVersion) -> LoadedModel: ...
