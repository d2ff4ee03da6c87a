"""The hooks through which a front end follows an ingest (progress bars, messages).

Apart from :mod:`mlship.data.ingest` so that every ingest path (in memory, in batches, on Spark)
can report through it without importing the ingest that dispatches to it.
"""

from __future__ import annotations


class IngestObserver:
    """Hooks a front end uses to show ingest progress; the defaults do nothing."""

    def source_started(self, label: str) -> None:
        """Reading of source ``label`` starts."""

    def source_progress(self, label: str, done: int, total: int | None) -> None:
        """Reading of ``label`` advanced (bytes for files, rows for queries)."""

    def message(self, text: str) -> None:
        """Something worth telling the user."""
