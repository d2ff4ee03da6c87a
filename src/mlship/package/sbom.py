"""The software bill of materials of a bundle, as CycloneDX JSON (``sbom.cdx.json``).

Whoever runs a bundle (or the image built from it) needs to know what it is made of without
installing it: which model, and exactly which Python distributions at which versions, so that a
vulnerability scanner or a licence check can read it. The document lists the model as the
bundle's subject and every pinned requirement as a library it depends on, each with its package
URL (``pkg:pypi/NAME@VERSION``), and, for the wheels the bundle carries, their sha256.

It is written with cyclonedx-python-lib, so that it follows the published schema of the spec
version it names; the tests validate it against that schema.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from mlship import __version__

SBOM_FILE = "sbom.cdx.json"
SPEC_VERSION = "1.6"


def sbom(
    name: str, version: int, pins: list[str], wheels: dict[str, Path], *, mlship: str = __version__
) -> str:
    """The CycloneDX JSON of model ``name:version`` served with ``pins`` (``NAME==VERSION``
    lines) and mlship ``mlship``; ``wheels`` maps a canonical distribution name to the wheel
    the bundle carries for it, whose sha256 is recorded."""
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=name,
        version=str(version),
        bom_ref=f"model:{name}:{version}",
        description=f"{name}:{version} served by mlship {mlship}",
    )
    bom = Bom()
    bom.metadata.component = model
    libraries = []
    for line in sorted({*pins, f"mlship=={mlship}"}, key=str.lower):
        display, _, pinned = line.partition("==")
        key = canonicalize_name(display)
        hashes = []
        if key in wheels:
            digest = hashlib.sha256(wheels[key].read_bytes()).hexdigest()
            hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=digest))
        library = Component(
            type=ComponentType.LIBRARY,
            name=display,
            version=pinned,
            purl=PackageURL(type="pypi", name=key, version=pinned),
            bom_ref=f"pkg:pypi/{key}@{pinned}",
            hashes=hashes,
        )
        bom.components.add(library)
        libraries.append(library)
    bom.register_dependency(model, libraries)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def wheels_by_name(directory: Path) -> dict[str, Path]:
    """The wheels in ``directory``, by the canonical name of their distribution."""
    found: dict[str, Path] = {}
    for wheel in sorted(directory.glob("*.whl")):
        found[canonicalize_name(wheel.name.split("-", 1)[0])] = wheel
    return found
