"""Reading a packaged model bundle.

A bundle is a directory: ``model.pkl``, ``mlship-bundle.json`` (the manifest: which model and
version, the artifact's sha256, the input signature, metrics and lineage), ``deployment.yaml``
(how it is served), pinned ``requirements.txt``, a ``Dockerfile`` and ``kubernetes.yaml``.
Serving a bundle needs neither the registry nor the metadata database, only this directory.

The model file is unpickled only after it hashes to the manifest's checksum, so a file that was
damaged or swapped after packaging is refused before any of its code runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlship.errors import MlshipError, NotFoundError

if TYPE_CHECKING:
    from mlship.security.signing import Signer
    from mlship.train.model_io import LoadedModel

MANIFEST = "mlship-bundle.json"
MODEL_FILE = "model.pkl"
DEPLOYMENT_FILE = "deployment.yaml"
KIND = "mlship-model-bundle"
FORMAT = 1


class BundleError(MlshipError):
    """A bundle directory is incomplete or its manifest is malformed."""


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a directory holding a bundle manifest."""
    return (path / MANIFEST).is_file()


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: its directory and its manifest (checked for the fields serving needs)."""

    root: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def version(self) -> int:
        return int(self.manifest["model"]["version"])

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def sha256(self) -> str:
        return str(self.manifest["artifact"]["sha256"])

    @property
    def deployment_file(self) -> Path:
        return self.root / DEPLOYMENT_FILE

    def names(self, ref: str) -> bool:
        """Whether a reference (``churn``, ``churn:3``, ``churn@production``) names this model."""
        name = ref.split("@", 1)[0].split(":", 1)[0]
        if name != self.name:
            return False
        if "@" in ref:
            return True  # the bundle is whatever stage it was packaged from
        version = ref.partition(":")[2]
        return version in ("", "latest", str(self.version))

    def load_model(self, signer: Signer) -> LoadedModel:
        """The bundled model, unpickled only after the manifest's signature of its checksum
        verifies by ``signer`` (the registering workspace's HMAC key, or its Ed25519 public key)
        and its bytes match that checksum."""
        from mlship.train.model_io import LoadedModel, unpickle_verified
        from mlship.train.signature import Signature

        signature = self.manifest["artifact"].get("signature")
        signer.verify(self.sha256, signature, f"model {self.ref} from bundle {self.root}")

        path = self.root / str(self.manifest["artifact"]["file"])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"bundle {self.root}: the model file {path.name} is missing"
            ) from None
        pipeline = unpickle_verified(
            data, self.sha256, f"model {self.ref} from {path}", f"the checksum in {MANIFEST},"
        )
        return LoadedModel(
            name=self.name,
            version=self.version,
            pipeline=pipeline,
            signature=Signature.from_dict(self.manifest["signature"]),
        )


_REQUIRED: dict[str, tuple[str, ...]] = {
    "model": ("name", "version"),
    "artifact": ("file", "sha256"),
}


def open_bundle(root: Path) -> Bundle:
    """Read and check a bundle's manifest; errors name the file and the field."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{root} is not a model bundle: {MANIFEST} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise BundleError(f"{path}: field kind: expected {KIND!r}")
    if manifest.get("format") != FORMAT:
        raise BundleError(
            f"{path}: field format: this mlship reads bundle format {FORMAT}, "
            f"found {manifest.get('format')!r}"
        )
    for section, fields in _REQUIRED.items():
        for field in fields:
            if not isinstance(manifest.get(section), dict) or field not in manifest[section]:
                raise BundleError(f"{path}: field {section}.{field} is missing")
    if not isinstance(manifest.get("signature"), dict):
        raise BundleError(f"{path}: field signature is missing")
    return Bundle(root, manifest)
