"""Progress of a backup, a restore or a check: how many objects, and how many bytes, are done.

Its own module so that the copying code reports progress without knowing about terminals; the
command line shows it as a bar (``cli/backup.py``), tests and the Python API pass nothing.
"""

from __future__ import annotations


class CopyObserver:
    """Hooks a front end uses to show progress; the defaults do nothing."""

    def started(self, what: str, total: int) -> None:
        """``total`` objects of kind ``what`` (artifacts, log parts) will be gone through."""

    def advanced(self, size: int) -> None:
        """One more object is done (``size`` bytes copied; 0 when it was there already)."""

    def finished(self) -> None:
        """The objects started last are all done."""
