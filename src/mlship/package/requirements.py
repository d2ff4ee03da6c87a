"""The pinned requirements of a bundle: what serving it imports, and nothing else.

A bundle is installed with ``pip install --no-deps -r requirements.txt``: the file lists every
distribution the server needs, each pinned to the version installed where the bundle was made,
so the install resolves nothing and gets exactly the packages the model was checked with. The
list is the closure (over installed package metadata) of

* what mlship's server imports (:data:`SERVING`), and
* the distributions that provide the modules named inside the model's pickle (scikit-learn,
  and imbalanced-learn, LightGBM or XGBoost when the model uses them).

mlship itself is installed without its dependencies, because its full list (training,
tuning, Ray, databases) is not needed to serve; that is also why the install passes
``--no-deps``.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlship.errors import MlshipError

# What ``mlship serve`` imports, besides the model's own libraries.
SERVING = (
    "fastapi",
    "uvicorn",
    "typer",
    "rich",
    "pydantic",
    "pydantic-settings",
    "pyyaml",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "orjson",
    "prometheus-client",
    "packaging",
    "cryptography",  # checking the model's signature (HMAC or Ed25519) before unpickling
    "psutil",  # the server measures its own CPU and memory for the usage ledger
)


class _Recorder(pickle.Unpickler):
    """An unpickler that notes every module the pickle takes a class or function from."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.modules: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.modules.add(module)
        return super().find_class(module, name)


def pickled_modules(data: bytes) -> set[str]:
    """Modules a (trusted, already verified) pickle imports when it is loaded."""
    recorder = _Recorder(data)
    recorder.load()
    return recorder.modules


@dataclass
class Pins:
    """Pinned distributions, by canonical name, and what could not be pinned."""

    versions: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (display, ver)
    missing: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{display}=={version}" for display, version in sorted(self.versions.values())]


def distributions_of(modules: Iterable[str]) -> set[str]:
    """The installed distributions that provide these modules (by their top-level package)."""
    providers = metadata.packages_distributions()
    found: set[str] = set()
    for module in modules:
        top = module.split(".", 1)[0]
        found.update(providers.get(top, []))
    return found


def pin_closure(roots: Iterable[str], *, exclude: Iterable[str] = ()) -> Pins:
    """Every installed distribution ``roots`` need (with their extras), pinned to its version.

    Requirements whose environment marker is false here (another platform or Python) are
    left out, as pip would leave them out on this platform.
    """
    skip = {canonicalize_name(name) for name in exclude}
    pins = Pins()
    pending: list[tuple[str, frozenset[str]]] = [(name, frozenset()) for name in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = (canonicalize_name(name), extras)
        if key in seen or key[0] in skip:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pins.missing.append(name)
            continue
        display = dist.metadata["Name"]
        pins.versions[canonicalize_name(display)] = (display, dist.version)
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return pins


def bundle_requirements(
    model_bytes: bytes, *, reads_formats: bool = False
) -> tuple[Pins, set[str]]:
    """Pins for serving this model, and the distributions its pickle needs (for the record).

    ``reads_formats``: the model's inputs declare how their text is written (null tokens, digit
    groups, date formats), which is read with ingest's Polars expressions, so Polars is added."""
    model_distributions = distributions_of(pickled_modules(model_bytes)) - {"mlship"}
    roots = [*SERVING, *(["polars"] if reads_formats else []), *sorted(model_distributions)]
    pins = pin_closure(roots, exclude=["mlship"])
    if pins.missing:
        raise MlshipError(
            "cannot pin the bundle's requirements: not installed here: " + ", ".join(pins.missing)
        )
    return pins, model_distributions
