"""The bookkeeping columns that say where each row, and each joined value, came from.

Every source row carries ``_source`` (the source's name) and ``_row`` (``line N`` of a file,
``row N`` of a query) from reading to quarantine. A join adds, for each joined source, a
``_row:<source>`` column: the line of that source the row's joined values came from, so that a
check failing on a joined column names that line and not the base source's. A column that
several joined sources have, merged row by row by a conflicts rule, gets a ``_from:<column>``
column naming the source each row's value came from. None of these columns is data: they never
reach the clean table.
"""

from __future__ import annotations

SOURCE = "_source"
ROW = "_row"
PROVENANCE = "_row:"
FROM = "_from:"
PLACED = r"^[^:]+ (?:(?:line|row) \d+|event [^\s:]+): "
"""How a reason that names its row's place starts: ``<source> line N: `` (files), ``<source>
row N: `` (queries, Parquet) or ``<source> event ID: `` (landed streams), from the ``_source``
and ``_row`` values."""
DUPLICATE_KEY = "duplicate key"
"""How every reason about a duplicate key starts, so that counts can tell them from others."""


def provenance_column(label: str) -> str:
    """The column holding the line of source ``label`` each joined row's values came from."""
    return f"{PROVENANCE}{label}"


def from_column(name: str) -> str:
    """The column naming, per row, the source whose value column ``name`` holds.

    Only columns that several joined sources have (resolved row by row by a conflicts rule)
    get one; every other column comes from one source.
    """
    return f"{FROM}{name}"


def is_provenance(name: str) -> bool:
    return name.startswith((PROVENANCE, FROM))


def source_of(name: str) -> str:
    """The source a ``_row:<source>`` column is about."""
    return name.removeprefix(PROVENANCE)
