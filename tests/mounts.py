"""Real filesystems that refuse writes, for tests: a small tmpfs, read-only or filled up, mounted
in a private mount namespace (``unshare --mount --map-root-user``) before a command runs.

The filesystem really is read-only or full (root ignores file modes, so ``chmod`` would prove
nothing), the mount vanishes with the command, and no privilege is needed beyond user namespaces.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

PAGE = 4096
UNSHARE = ("unshare", "--mount", "--map-root-user", "--propagation", "private")


def read_only(path: Path) -> str:
    return f"mkdir -p {shlex.quote(str(path))}\nmount -t tmpfs -o ro,size=1m tmpfs {path}"


def full(path: Path, pages_free: int = 0, pages: int = 16) -> str:
    """A tmpfs of ``pages`` pages at ``path`` with all but ``pages_free`` taken by a filler."""
    where = shlex.quote(str(path))
    return (
        f"mkdir -p {where}\nmount -t tmpfs -o size={pages * PAGE} tmpfs {where}\n"
        f"dd if=/dev/zero of={where}/filler bs={PAGE} count={pages - pages_free} 2>/dev/null "
        "|| true"
    )


def mount_namespaces() -> None:
    """These tests need private mount namespaces; without them they fail, saying so."""
    probe = subprocess.run(
        [*UNSHARE, "sh", "-ec", "mount -t tmpfs tmpfs /mnt"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail(
            "cannot mount a tmpfs in a private mount namespace (unshare --mount "
            f"--map-root-user): {probe.stderr.strip()}",
            pytrace=False,
        )
