"""Writing a bundle for one registered model version.

The bundle is assembled in a temporary directory next to the destination and renamed into
place at the end, so an interrupted ``mlship package`` leaves either a whole bundle or nothing.
Every file is fsynced before the rename, and the manifest records each file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from mlship import __version__
from mlship.errors import MlshipError
from mlship.package import manifests, scaling
from mlship.package.bundle import DEPLOYMENT_FILE, FORMAT, KIND, MANIFEST, MODEL_FILE
from mlship.package.requirements import bundle_requirements
from mlship.package.sbom import SBOM_FILE, sbom, wheels_by_name
from mlship.package.wheel import build_wheel, download_wheels, source_tree
from mlship.spec.deployment import Batching, PredictionLogSpec
from mlship.store.artifacts import fsync_directory
from mlship.store.context import HasArtifacts, HasRuns, HasSettings, HasSigner
from mlship.store.entities import ModelVersion, model_of


class BundleStores(HasSigner, HasArtifacts, HasRuns, HasSettings, Protocol):
    """What a bundle is written from: the verified model file, its run, and who packaged it."""


Step = Callable[[str], None]


@dataclass(frozen=True)
class Written:
    root: Path
    files: dict[str, int]  # relative path -> bytes
    pins: list[str]
    warnings: list[str]


def write_bundle(
    workspace: BundleStores,
    version: ModelVersion,
    out: Path,
    shape: manifests.Shape,
    *,
    wheels: bool = False,
    step: Step = lambda _message: None,
) -> Written:
    """Write the bundle of ``version`` to the new directory ``out``.

    ``wheels``: carry the wheel of every pinned requirement too, so that the bundle (and the
    image built from it) installs with no package index."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MlshipError(f"{out} already exists and is not an empty directory; choose a new one")
    name, number = model_of(version).name, version.version
    ref = f"{name}:{number}"
    step(f"reading {ref} from the registry (signature and checksum verified)")
    # Before anything reads the pickle (pinning lists the modules it names).
    workspace.signer.verify(version.artifact_sha256, version.artifact_signature, f"model {ref}")
    model_bytes = workspace.artifacts.get_bytes(version.artifact_sha256)
    step("pinning what serving it needs")
    inputs = (version.signature or {}).get("inputs", [])
    reads_formats = any(column.get("values") for column in inputs)
    pins, model_distributions = bundle_requirements(model_bytes, reads_formats=reads_formats)
    run = workspace.runs.get_run(version.run_id)
    trained_with = dict(run.environment.get("packages", {}))
    warnings = _version_drift(trained_with, pins.versions)

    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        files: dict[str, bytes] = {MODEL_FILE: model_bytes}
        source = source_tree()
        mlship_line = _wheels(scratch / "wheels", source, pins.lines() if wheels else [], step)
        carried = wheels_by_name(scratch / "wheels")
        files[SBOM_FILE] = sbom(name, number, pins.lines(), carried).encode()
        files["requirements.txt"] = _requirements(ref, mlship_line, pins.lines()).encode()
        files[DEPLOYMENT_FILE] = _deployment(name, number, shape.auth).encode()
        files["Dockerfile"] = manifests.dockerfile(
            ref, shape, has_wheels=source is not None, offline=wheels
        ).encode()
        files[".dockerignore"] = manifests.dockerignore().encode()
        files["kubernetes.yaml"] = scaling.kubernetes(name, number, shape).encode()
        files["README.md"] = _readme(ref, shape).encode()
        step("writing the bundle")
        for relative, data in files.items():
            _write(scratch / relative, data)
        manifest = _manifest(
            workspace, version, run, files, scratch, model_distributions, trained_with, pins.lines()
        )
        _write(scratch / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        scratch.chmod(0o755)  # mkdtemp makes it private; a bundle is for others to read
        fsync_directory(scratch)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(scratch, out)
        fsync_directory(out.parent)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    sizes = {
        str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()
    }
    return Written(out, sizes, pins.lines(), warnings)


def _wheels(into: Path, source: Path | None, download: list[str], step: Step) -> str:
    """Put mlship's wheel (built from ``source``, a development tree) and the wheels of
    ``download`` in ``into``; the requirement line that installs mlship."""
    if source is not None:
        step(f"building mlship's wheel from {source}")
        mlship_line = f"./wheels/{build_wheel(source, into).name}"
    else:
        mlship_line = f"mlship=={__version__}"
    if download:
        step(f"downloading the wheels of {len(download)} pinned requirements")
        download_wheels(download if source else [*download, mlship_line], into)
    return mlship_line


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _version_drift(trained_with: dict[str, str], pinned: dict[str, tuple[str, str]]) -> list[str]:
    """Packages whose version here differs from the one the model was trained with."""
    from packaging.utils import canonicalize_name

    found = []
    for package, trained in sorted(trained_with.items()):
        here = pinned.get(canonicalize_name(package))
        if here is not None and here[1] != trained:
            found.append(
                f"{package}: the model was trained with {trained}, the bundle pins {here[1]} "
                "(the version installed here)"
            )
    return found


def _requirements(ref: str, mlship_line: str, lines: list[str]) -> str:
    return (
        f"# Everything serving {ref} needs, pinned; install with\n"
        "#   pip install --no-deps -r requirements.txt\n"
        "# from this directory. --no-deps: the list is complete, and mlship's own dependencies\n"
        "# for training and tuning are not needed to serve.\n"
        f"{mlship_line}\n" + "\n".join(lines) + "\n"
    )


def _deployment(name: str, version: int, auth: str = "off") -> str:
    deployment: dict[str, Any] = {
        "name": f"{name}-{version}",
        "routes": [{"model": f"{name}:{version}", "weight": 1.0}],
        "batching": Batching().model_dump(),
        "log": PredictionLogSpec().model_dump(exclude={"directory"}),
    }
    if auth != "off":  # keys from MLSHIP_SERVE_KEYS, tokens from MLSHIP_URL's server
        deployment["auth"] = {"mode": auth}
    return (
        "# How `mlship serve` serves this bundle (the same fields as any deployment file).\n"
        + yaml.safe_dump(deployment, sort_keys=False)
    )


def _readme(ref: str, shape: manifests.Shape) -> str:
    return f"""\
# {ref}, packaged by mlship {__version__}

Serve it from a virtualenv (from this directory):

    python -m venv .venv && .venv/bin/pip install --no-deps -r requirements.txt
    .venv/bin/mlship serve . --port {manifests.PORT}

or in a container, or on Kubernetes:

    docker build -t {shape.image} .
    docker run --rm -p {manifests.PORT}:{manifests.PORT} {shape.image}
    kubectl apply -f kubernetes.yaml

Endpoints: POST /predict, POST /invocations (MLflow), /v2/models/... (Open Inference
Protocol), /metrics (Prometheus), /docs. `mlship-bundle.json` describes the model: its input
signature, metrics, lineage and the sha256 of every file; the model file is refused if it does
not match.
"""


def _manifest(
    workspace: BundleStores,
    version: ModelVersion,
    run: Any,
    files: dict[str, bytes],
    root: Path,
    model_distributions: set[str],
    trained_with: dict[str, str],
    pins: list[str],
) -> dict[str, Any]:
    dataset = run.dataset
    hashes = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    return {
        "kind": KIND,
        "format": FORMAT,
        "model": {
            "name": model_of(version).name,
            "version": version.version,
            "stage": version.stage,
            "description": version.description,
            "tags": version.tags or {},
            "estimator": version.estimator,
            "params": version.params,
        },
        "artifact": {
            "file": MODEL_FILE,
            "sha256": version.artifact_sha256,
            "size": len(files[MODEL_FILE]),
            "signature": version.artifact_signature,
        },
        "signature": version.signature,
        "metrics": version.metrics,
        "lineage": {
            "run": version.run_id,
            "pipeline": run.pipeline,
            "spec_sha256": run.spec_hash,
            "git_commit": run.git_commit,
            "dataset_sha256": version.dataset_hash,
            "dataset_rows": dataset.n_rows if dataset is not None else None,
            "sources": dataset.sources if dataset is not None else [],
        },
        "environment": {
            "python": platform.python_version(),
            "platform": sys.platform,
            "machine": platform.machine(),
            "trained_with": trained_with,
            "model_needs": sorted(model_distributions),
            "pinned": pins,
        },
        "created": {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "by": workspace.settings.user,
            "mlship": __version__,
        },
        "files": hashes,
    }
