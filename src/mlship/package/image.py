"""Building a bundle's container image with no registry: a Debian base made here, then buildah.

The bundle's Dockerfile starts ``FROM ${BASE}``. Where no registry can be reached (an air-gapped
build machine, a CI runner behind a proxy) the base cannot be pulled, so it is made locally:
mmdebstrap writes a minimal Debian root filesystem holding Python and its venv module, which is
imported into buildah's storage under a tag derived from what made it. The tarball is cached
under that same key, so the next build reuses it, and a change of suite or package list makes a
new one. The image is then built with ``buildah bud --isolation chroot`` (no daemon, no user
namespaces needed) from a bundle that carries the wheels of all its pins (``mlship package
--wheels``), so pip installs with ``--no-index``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlship.errors import MlshipError
from mlship.package.bundle import Bundle, open_bundle
from mlship.store.failures import Place
from mlship.store.locks import file_lock

SUITE = "bookworm"
SUITE_PYTHON = "3.11"
"""The Python of the suite's python3: a bundle builds into the base only when it was packaged
with this Python, since its wheels are the packaging machine's."""
PACKAGES = ("python3", "python3-venv")
"""What the base holds besides Debian's minimal system (which has ``useradd``)."""

_EXCLUDED = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*")
"""Paths dpkg leaves out of the base: documentation nobody reads inside a model server."""

REPOSITORY = "localhost/mlship-base"

Step = Callable[[str], None]


class ImageError(MlshipError):
    """A container tool is missing or failed; the message says which and what it printed."""


@dataclass(frozen=True)
class Base:
    tag: str
    tarball: Path
    python: str  # major.minor of the base's python3
    made: bool  # mmdebstrap ran (the tarball was not in the cache)


@dataclass(frozen=True)
class Built:
    tag: str
    base: str
    seconds: float
    size: int  # bytes, as buildah reports the image
    user: str  # the image's USER


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ImageError(
            f"{name} is not installed; building images needs buildah and mmdebstrap "
            "(Debian: apt-get install -y buildah mmdebstrap)"
        )
    return found


def _run(command: Sequence[str], what: str, *, timeout: float = 1800) -> str:
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ImageError(f"{what} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        output = (done.stderr.strip() or done.stdout.strip())[-3000:]
        raise ImageError(f"{what} failed (exit {done.returncode}):\n{output}")
    return done.stdout


def base_key(suite: str = SUITE, packages: Sequence[str] = PACKAGES) -> str:
    """The cache key of a base: a digest of everything that decides its contents."""
    inputs = {"suite": suite, "variant": "minbase", "packages": sorted(packages)}
    inputs["excluded"] = list(_EXCLUDED)
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "mlship" / "images"


def make_base(
    cache: Path,
    *,
    suite: str = SUITE,
    packages: Sequence[str] = PACKAGES,
    step: Step = lambda _message: None,
) -> Base:
    """The base image in buildah's storage, made (and cached) first if need be."""
    buildah = _tool("buildah")
    key = base_key(suite, packages)
    tag = f"{REPOSITORY}:{suite}-{key}"
    tarball = cache / f"{suite}-{key}.tar"
    # Two builds on one machine (CI jobs, test workers) must not both make or import the base:
    # the second waits and finds it made (the lock is released when its holder dies).
    lock = Place("the image cache", cache)
    with file_lock(cache / f"{suite}-{key}.lock", lock):
        made = False
        if not tarball.is_file():
            mmdebstrap = _tool("mmdebstrap")
            cache.mkdir(parents=True, exist_ok=True)
            step(f"making a Debian {suite} root filesystem with mmdebstrap (cached in {cache})")
            made_at = tempfile.mkstemp(prefix=f".{tarball.stem}.", suffix=".tar", dir=cache)
            os.close(made_at[0])  # mmdebstrap writes the file by its name
            partial = Path(made_at[1])
            try:
                _run(
                    [
                        mmdebstrap,
                        "--quiet",
                        "--variant=minbase",
                        f"--include={','.join(packages)}",
                        *(f"--dpkgopt=path-exclude={path}" for path in _EXCLUDED),
                        # apt's lists are 50 MB the image never uses.
                        "--customize-hook=rm -rf $1/var/lib/apt/lists/* $1/var/cache/apt/*",
                        suite,
                        str(partial),
                    ],
                    "mmdebstrap",
                )
                with partial.open("rb") as handle:
                    os.fsync(handle.fileno())
                partial.chmod(0o644)
                os.replace(partial, tarball)
            finally:
                partial.unlink(missing_ok=True)
            made = True
        if made or not _image_exists(buildah, tag):
            step(f"importing the base into buildah as {tag}")
            container = _run([buildah, "from", "scratch"], "buildah from scratch").strip()
            try:
                _run([buildah, "add", container, str(tarball), "/"], f"buildah add {tarball}")
                _run([buildah, "config", "--cmd", '["python3"]', container], "buildah config")
                _run([buildah, "commit", "--quiet", container, tag], f"buildah commit {tag}")
            finally:
                subprocess.run([buildah, "rm", container], capture_output=True, check=False)
    python = _python_of(buildah, tag)
    return Base(tag=tag, tarball=tarball, python=python, made=made)


def _image_exists(buildah: str, tag: str) -> bool:
    done = subprocess.run(
        [buildah, "inspect", "--type", "image", tag], capture_output=True, check=False
    )
    return done.returncode == 0


def _python_of(buildah: str, tag: str) -> str:
    container = _run([buildah, "from", tag], f"buildah from {tag}").strip()
    try:
        printed = _run(
            [
                buildah,
                "run",
                "--isolation",
                "chroot",
                container,
                "--",
                "python3",
                "-c",
                "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
            ],
            f"python3 in {tag}",
        )
    finally:
        subprocess.run([buildah, "rm", container], capture_output=True, check=False)
    return printed.strip()


_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _bytes(human: str) -> int:
    """``177 MB`` (buildah's decimal units) as bytes."""
    number, _, unit = human.strip().partition(" ")
    try:
        return round(float(number) * _UNITS[unit.strip() or "B"])
    except (ValueError, KeyError):
        raise ImageError(f"buildah reported the image's size as {human!r}") from None


def buildable(bundle_dir: Path) -> Bundle:
    """The opened bundle, if it can be built with no package index (it carries its wheels)."""
    bundle = open_bundle(bundle_dir)
    dockerfile = bundle_dir / "Dockerfile"
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImageError(f"{bundle_dir}: cannot read its Dockerfile: {exc}") from None
    if "--no-index" not in text:
        raise ImageError(
            f"{bundle_dir} does not carry the wheels of its requirements, and the image is "
            "built with no package index; package it again with --wheels: "
            f"mlship package {bundle.ref} -o NEW_DIR --wheels"
        )
    return bundle


def build_image(
    bundle_dir: Path,
    tag: str,
    base: Base,
    *,
    step: Step = lambda _message: None,
) -> Built:
    """Build the bundle's image from ``base`` with ``buildah bud --isolation chroot``."""
    buildah = _tool("buildah")
    bundle = buildable(bundle_dir)
    dockerfile = bundle_dir / "Dockerfile"
    trained = str(bundle.manifest.get("environment", {}).get("python", ""))
    if trained and ".".join(trained.split(".")[:2]) != base.python:
        raise ImageError(
            f"{bundle_dir}: its wheels are for Python {trained} and the base {base.tag} has "
            f"Python {base.python}; package the bundle with a Python {base.python}"
        )
    step(f"building {tag} from {base.tag} (buildah bud --isolation chroot)")
    started = time.monotonic()
    _run(
        [
            buildah,
            "bud",
            "--quiet",
            "--isolation",
            "chroot",
            "--build-arg",
            f"BASE={base.tag}",
            "--tag",
            tag,
            "--file",
            str(dockerfile),
            str(bundle_dir),
        ],
        f"buildah bud {bundle_dir}",
    )
    seconds = time.monotonic() - started
    listed = json.loads(_run([buildah, "images", "--json", tag], "buildah images"))
    size = _bytes(str(listed[0]["size"])) if listed else 0
    user = _run(
        [buildah, "inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}}", tag],
        f"buildah inspect {tag}",
    ).strip()
    return Built(tag=tag, base=base.tag, seconds=seconds, size=size, user=user)
