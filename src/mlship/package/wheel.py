"""mlship itself, for a bundle: a wheel built from the source tree it runs from, or a pin.

An installed release is pinned (``mlship==X``) and comes from the package index. A development
install (editable, from a source tree) has no release to pin, so its wheel is built into the
bundle. The build runs on a copy of the tree: setuptools reuses its ``build/`` directory, which
can hold modules deleted since, and they must not reach a bundle.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlship.errors import MlshipError

_NOT_SOURCE = (
    ".git",
    ".venv",
    "build",
    "dist",
    ".mlship",
    "reports",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "node_modules",
)


def source_tree() -> Path | None:
    """The directory mlship was installed from in development (``pip install -e``), if any."""
    try:
        text = metadata.distribution("mlship").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    info = json.loads(text)
    url = urlparse(info.get("url", ""))
    if url.scheme != "file" or "dir_info" not in info:
        return None
    return Path(unquote(url.path))


def build_wheel(source: Path, into: Path) -> Path:
    """Build mlship's wheel from ``source`` into ``into``; the wheel's path."""
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlship-wheel-") as scratch:
        copy = Path(scratch) / "src"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "-w",
                str(into),
                str(copy),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise MlshipError(
            f"building mlship's wheel from {source} failed:\n{done.stderr.strip()[-2000:]}"
        )
    wheels = sorted(into.glob("mlship-*.whl"))
    if not wheels:
        raise MlshipError(f"building mlship's wheel from {source} produced no wheel")
    return wheels[-1]


def download_wheels(requirements: list[str], into: Path) -> list[Path]:
    """Download the wheel of every pinned requirement (``NAME==VERSION``) into ``into``, so
    the bundle installs with no package index (``pip install --no-index --find-links``).

    The wheels are this machine's (its platform and Python), which is what the pins were taken
    from; pip's own cache saves the downloads on the next bundle."""
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="mlship-pins-") as listing:
        listing.write("\n".join(requirements) + "\n")
        listing.flush()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(into),
                "-r",
                listing.name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise MlshipError(
            "downloading the wheels of the bundle's pinned requirements failed (--wheels needs "
            f"the package index, or pip's cache, to hold them):\n{done.stderr.strip()[-2000:]}"
        )
    return sorted(into.glob("*.whl"))
