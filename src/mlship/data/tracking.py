"""The bookkeeping columns that say where each row, and each joined value, came from.

Every source row carries ``_source`` (the source's name) and ``_row`` (``line N`` of a file,
``row N`` of a query) from reading to quarantine. A join adds, for each joined source, a
``_row:<source>`` column: the line of that source the row's joined values came from, so that a
check failing on a joined column names that line and not the base source's. None of these
columns is data: they never reach the clean table.
"""

from __future__ import annotations

SOURCE = "_source"
ROW = "_row"
PROVENANCE = "_row:"
DUPLICATE_KEY = "duplicate key"
"""How every reason about a duplicate key starts, so that counts can tell them from others."""


def provenance_column(label: str) -> str:
    """The column holding the line of source ``label`` each joined row's values came from."""
    return f"{PROVENANCE}{label}"


def is_provenance(name: str) -> bool:
    return name.startswith(PROVENANCE)


def source_of(name: str) -> str:
    """The source a provenance column is about."""
    return name.removeprefix(PROVENANCE)
