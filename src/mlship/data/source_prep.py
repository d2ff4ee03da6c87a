"""A source's rows made ready for checks: renamed, pseudonymized, typed, derived and converted,
then combined with the other sources and cut to the spec's schema.

These steps are shared by every ingest path: in memory (:mod:`mlship.data.ingest`), in batches
(:mod:`mlship.data.stream_ingest`) and on Spark (:mod:`mlship.data.spark`), which each call them
on what they read. Keeping them here, below those paths, lets the in-memory ingest dispatch to the
others without an import cycle.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from mlship.data.combine import combine_sources
from mlship.data.duplicates import Deduplicated
from mlship.data.mapping import convert_units, derive_columns, rename_columns
from mlship.data.privacy import pseudonymize
from mlship.data.sources import SourceData
from mlship.data.tracking import ROW, SOURCE, is_provenance, provenance_column
from mlship.data.typing import REASONS, WARNINGS, Location, TypedColumn, type_columns
from mlship.errors import DataError
from mlship.spec.data import Column, Source, ValueFormats
from mlship.spec.loader import LoadedSpec


def with_tracking(data: SourceData) -> pl.DataFrame:
    return data.frame.with_columns(
        pl.lit(data.label).alias(SOURCE),
        pl.format(f"{data.unit} {{}}", data.places()).alias(ROW),
    )


def types_for(frame: pl.DataFrame, source: Source, columns: list[Column]) -> list[TypedColumn]:
    """The columns to type, each with its value formats (the column's over the source's).

    A column only ``mapping.cast`` names is lenient: a value it cannot read is null, with a
    warning."""
    declared = {c.name: c for c in columns}
    base = source.values or ValueFormats()
    typed = [
        TypedColumn(
            c.name, c.type, c.nullable, c.role == "pii", c.values.over(base) if c.values else base
        )
        for c in columns
        if c.name in frame.columns and not (c.role == "pii" and c.pii == "hash")
    ]
    for name, kind in source.mapping.cast.items():
        if name in frame.columns and name not in declared:
            typed.append(TypedColumn(name, kind, formats=base, lenient=True))
    return typed


def key_names(frame: pl.DataFrame, source: Source, loaded: LoadedSpec) -> list[str]:
    """The columns that say which record a row of ``source`` is, for its reasons: the spec's id
    columns; where the source has none (a joined table of prices or customers), its declared
    ``key``, else the columns it is joined on. PII columns are never shown."""
    private = {c.name for c in loaded.spec.columns if c.role == "pii"}
    ids = [c.name for c in loaded.spec.columns if c.role == "id" and c.name in frame.columns]
    if not ids and source.key:
        ids = list(source.key)
    if not ids:
        joins = [j for j in loaded.spec.combine.joins if j.source == source.label]
        ids = list(joins[0].on) if joins and loaded.spec.combine.method == "join" else []
    return [name for name in ids if name in frame.columns and name not in private]


def row_location(frame: pl.DataFrame, names: list[str]) -> Location:
    """Where a row is, for reasons: ``orders line 7``, and its key columns' values as read."""
    keys = [
        pl.format(f"{name}={{}}", pl.col(name).cast(pl.String).fill_null("(empty)"))
        for name in names
    ]
    where = pl.format("{} {}", pl.col(SOURCE), pl.col(ROW))
    return Location(where, pl.concat_str(keys, separator=", ") if keys else None)


def prepare_source(
    loaded: LoadedSpec, source: Source, data: SourceData, key: bytes
) -> pl.DataFrame:
    columns = loaded.spec.columns
    frame = rename_columns(with_tracking(data), source.mapping, data.label)
    frame = pseudonymize(frame, columns, key)
    location = row_location(frame, key_names(frame, source, loaded))
    frame = type_columns(frame, types_for(frame, source, columns), location)
    frame = derive_columns(frame, source.mapping, data.label)
    return convert_units(frame, source.mapping, data.label)


def combine_prepared(
    loaded: LoadedSpec, frames: dict[str, pl.DataFrame], found: dict[str, Deduplicated]
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, str]]:
    """Combine the sources; returns the table, the combine report and, for every column that a
    joined source brought, that source (whose ``_row:<source>`` column says where each value
    came from)."""
    spec = loaded.spec
    base = spec.combine.base or spec.source_names[0]
    if spec.combine.method == "join":
        joined_on = {join.source: set(join.on) for join in spec.combine.joins}
        for label in list(frames):
            if label != base:
                frames[label] = _joinable(
                    frames[label], label, found[label], joined_on.get(label, set())
                )
    result = combine_sources(frames, spec.combine, spec.source_names, track_origin=True)
    _uncount_stand_ins(result.report, frames)
    frame = result.frame
    for kept in (REASONS, WARNINGS):
        extra = [c for c in frame.columns if c.startswith(f"{kept}:")]
        if extra:
            merged = pl.concat_str(
                [pl.col(kept), *map(pl.col, extra)], separator="; ", ignore_nulls=True
            )
            frame = frame.with_columns(
                pl.when(merged == "").then(None).otherwise(merged).alias(kept)
            ).drop(extra)
    origins = {
        name: label
        for name, label in result.origin.items()
        if label != base and not name.startswith("_")
    }
    return frame, result.report, origins


def _uncount_stand_ins(report: dict[str, Any], frames: dict[str, pl.DataFrame]) -> None:
    """The combine report counts a joined source's rows as read, not its stand-in rows."""
    for label, frame in frames.items():
        column = provenance_column(label)
        if column not in frame.columns:
            continue
        stand_ins = frame[column].null_count()
        report["rows_in"][label] -= stand_ins
        for entry in report.get("joins", []):
            if entry["source"] == label:
                entry["rows_right"] -= stand_ins


def _joinable(frame: pl.DataFrame, label: str, found: Deduplicated, on: set[str]) -> pl.DataFrame:
    """A joined source as the join takes it: its line as ``_row:<label>``, its reasons and
    warnings kept apart (each already says which line of ``label`` it is about), and a stand-in
    row for each key whose copies were quarantined, so that the rows of the table matching such
    a key are quarantined with a reason too."""
    if found.counts is not None and set(found.counts.key) == on and found.stand_ins.height:
        frame = pl.concat([frame, found.stand_ins], how="diagonal_relaxed")
    return frame.drop(SOURCE).rename(
        {
            REASONS: f"{REASONS}:{label}",
            WARNINGS: f"{WARNINGS}:{label}",
            ROW: provenance_column(label),
        }
    )


def select_schema(frame: pl.DataFrame, columns: list[Column]) -> pl.DataFrame:
    kept = [c for c in columns if not (c.role == "pii" and c.pii == "drop")]
    missing = [c.name for c in kept if c.name not in frame.columns]
    if missing:
        present = ", ".join(c for c in frame.columns if not c.startswith("_"))
        raise DataError(
            f"after mapping and combining the sources, column(s) {', '.join(map(repr, missing))} "
            f"are missing; the combined table has: {present}"
        )
    bookkeeping = (SOURCE, ROW, REASONS, WARNINGS)
    tracking = [c for c in frame.columns if c in bookkeeping or is_provenance(c)]
    return frame.select([c.name for c in kept] + tracking)
