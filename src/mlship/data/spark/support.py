"""What of a data spec the Spark engine compiles, and a clear refusal of the rest.

An ``engine: spark`` ingest must give the very dataset the local engine gives. A feature whose
Spark form could differ (a SQL dialect, a quantile's interpolation, a join's tie-breaking) is
refused by name before any data is read, never approximated.
"""

from __future__ import annotations

from mlship.errors import DataError
from mlship.spec.data import Column, ValueFormats
from mlship.spec.models import PipelineSpec

SPARK_FORMATS = ("csv", "parquet")


def _values(where: str, formats: ValueFormats | None) -> list[str]:
    if formats is None:
        return []
    written = formats.model_dump(exclude_none=True)
    written.pop("null_values", None)
    return [f"{where}: values.{name}" for name in sorted(written)]


def _column(column: Column) -> list[str]:
    found = _values(f"column {column.name!r}", column.values)
    if column.role == "weight":
        found.append(f"column {column.name!r}: role weight")
    for check in column.checks:
        for name in ("unique", "outliers", "distribution"):
            if getattr(check, name):
                found.append(f"column {column.name!r}: check {name}")
    return found


def unsupported(spec: PipelineSpec) -> list[str]:
    """Every feature of ``spec`` the Spark engine does not compile, named as the spec writes it."""
    found: list[str] = []
    for source in spec.sources:
        where = f"source {source.label!r}"
        if source.path is None:
            found.append(f"{where}: {'query' if source.query else 'stream'} (files only)")
        elif source.resolved_format not in SPARK_FORMATS:
            found.append(f"{where}: format {source.resolved_format} (csv and parquet only)")
        elif source.resolved_format == "csv" and source.encoding.lower().replace("_", "-") not in (
            "utf-8",
            "utf8",
        ):
            found.append(f"{where}: encoding {source.encoding} (utf-8 only)")
        if source.mapping.derive:
            found.append(f"{where}: mapping.derive")
        if source.key is not None:
            found.append(f"{where}: key / on_duplicate")
        found.extend(_values(where, source.values))
        if source.incremental is not None:
            found.append(f"{where}: incremental (reads from the last mark locally only)")
    if spec.combine.method == "join":
        found.append("combine: method join")
    if spec.combine.conflicts is not None:
        found.append("combine: conflicts")
    if spec.infer_columns:
        found.append("columns: infer")
    for column in spec.columns:
        found.extend(_column(column))
    if spec.checks.unique:
        found.append("checks: unique")
    return found


def refuse_unsupported(spec: PipelineSpec) -> None:
    """Raise a :class:`DataError` naming every feature ``engine: spark`` cannot run."""
    found = unsupported(spec)
    if found:
        raise DataError(
            "engine: spark cannot run this spec as written: "
            + "; ".join(found)
            + ". Use engine: local for these, or leave them out"
        )
