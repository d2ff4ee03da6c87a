"""Which file each CI system reads, and writing it without clobbering or half-writing.

A pipeline file is usually edited by hand after it is written, so an existing one is replaced
only when asked (``force``), and the new text goes to a temporary file that is renamed over the
old one: a crash leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlship.ci import github, gitlab, jenkins
from mlship.ci.stages import CiError, Plan

SYSTEMS: dict[str, tuple[str, Callable[[Plan], str]]] = {
    "github": (github.PATH, github.render),
    "gitlab": (gitlab.PATH, gitlab.render),
    "jenkins": (jenkins.PATH, jenkins.render),
}


def target(system: str, root: Path) -> Path:
    """Where ``system`` reads its pipeline under the repository ``root``."""
    if system not in SYSTEMS:
        raise CiError(f"unknown CI system {system!r}; expected one of {', '.join(SYSTEMS)}")
    return root / SYSTEMS[system][0]


def write_pipeline(system: str, plan: Plan, root: Path, *, force: bool = False) -> Path:
    """Write ``system``'s file for ``plan`` under ``root`` and return its path."""
    path = target(system, root)
    if path.is_dir():
        raise CiError(f"{path} is a directory; the {system} pipeline is a file there")
    if path.exists() and not force:
        raise CiError(f"{path} exists; pass --force to replace it")
    text = SYSTEMS[system][1](plan)
    from mlship.store.artifacts import atomic_write

    atomic_write(path, [text.encode("utf-8")])
    return path
