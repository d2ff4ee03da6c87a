"""Columns of the sources that a spec does not declare: never dropped without a word.

Without ``columns: {infer: true}`` they are left out of the dataset and listed (in the command's
output, the data report and the run's details), so that a column forgotten in a long spec is
seen. With it, they are typed by :mod:`mlship.data.infer`, the inference ``mlship init`` uses,
which asks ingest's own parse expressions what every value reads as: a column inferred as
``integer`` is one ingest then reads as integers, value for value. The inferred columns are
recorded with the dataset (its stored columns, and so its content hash through the typed values),
so the same data always gives the same columns and a run can be traced to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from mlship.data.infer import infer_column, missing_tokens
from mlship.data.tracking import ROW, SOURCE, is_provenance
from mlship.data.typing import REASONS, WARNINGS
from mlship.errors import DataError
from mlship.spec.data import Column, Source, Transform, ValueFormats
from mlship.spec.loader import LoadedSpec, check_consistency
from mlship.spec.models import PipelineSpec
from mlship.yamlfile import Problem

_BOOKKEEPING = (SOURCE, ROW, REASONS, WARNINGS)


@dataclass(frozen=True)
class UndeclaredColumns:
    """What became of the columns the spec does not declare: left out, or inferred."""

    left_out: tuple[str, ...] = ()
    inferred: tuple[Column, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """As recorded in the data report and the run's details."""
        return {
            "left_out": list(self.left_out),
            "inferred": [{"name": c.name, "type": c.type, "role": c.role} for c in self.inferred],
        }


def is_bookkeeping(name: str) -> bool:
    """A column ingest adds to say where a row came from and what was wrong with it."""
    return name in _BOOKKEEPING or is_provenance(name)


def left_out(columns: Iterable[str], declared: list[Column]) -> tuple[str, ...]:
    """The ``columns`` of the combined table that no declared column names, in table order."""
    names = {column.name for column in declared}
    return tuple(c for c in columns if c not in names and not is_bookkeeping(c))


def left_out_message(names: list[str]) -> str:
    """The sentence a command prints about columns it left out."""
    count = len(names)
    noun = "column in the sources is" if count == 1 else "columns in the sources are"
    return (
        f"{count} {noun} not in the spec and {'was' if count == 1 else 'were'} left out: "
        f"{', '.join(names)} — declare {'it' if count == 1 else 'them'}, or add `infer: true` "
        "under columns"
    )


def _undeclared_values(
    spec: PipelineSpec, renamed: dict[str, pl.DataFrame]
) -> dict[str, tuple[Source, pl.Series]]:
    """Each undeclared column with the source whose value formats read it and its raw values.

    Joined sources contribute their rows as the table takes them: a column is read from the
    base source, else from the first source that brings it. Stacked (union) sources all
    contribute, the values of a column written as different types compared as text.
    """
    declared = {column.name for column in spec.columns}
    derived = {name for source in spec.sources for name in source.mapping.derive}
    order = list(spec.sources)
    if spec.combine.method == "join":
        base = spec.combine.base or spec.source_names[0]
        order.sort(key=lambda source: source.label != base)
    found: dict[str, list[tuple[Source, pl.Series]]] = {}
    for source in order:
        frame = renamed[source.label]
        for name in frame.columns:
            if name in declared or name in derived or is_bookkeeping(name):
                continue
            found.setdefault(name, []).append((source, frame[name]))
    values: dict[str, tuple[Source, pl.Series]] = {}
    for name, parts in found.items():
        if spec.combine.method == "join" or len(parts) == 1:
            values[name] = parts[0]
            continue
        series = [series for _, series in parts]
        if len({s.dtype for s in series}) > 1:
            series = [s.cast(pl.String) for s in series]
        values[name] = (parts[0][0], pl.concat(series))
    return values


def _formats(source: Source, series: pl.Series) -> tuple[ValueFormats, ValueFormats | None]:
    """How the column's values are read, and the column's own ``values`` when it adds missing
    markers to its source's (a column's list replaces the source's, so it repeats them)."""
    base = source.values or ValueFormats()
    tokens = set(missing_tokens(series.to_frame()))
    known = set(base.null_values or [])
    if tokens <= known:
        return base, None
    own = ValueFormats(null_values=sorted(known | tokens))
    return own.over(base), own


def infer_undeclared(spec: PipelineSpec, renamed: dict[str, pl.DataFrame]) -> tuple[Column, ...]:
    """Every undeclared column of the sources (each renamed as its mapping says) as the data
    says it is: type, role, nullability, and for free text its length and word counts.

    The target named by ``target`` gets role target; a classification's integer target with
    few values is read as a category of labels, as ``mlship init`` writes it.
    """
    target = spec.target_column
    columns: list[Column] = []
    for name, (source, series) in _undeclared_values(spec, renamed).items():
        formats, own = _formats(source, series)
        labels = target if spec.task == "classification" else None
        found = infer_column(series.alias(name), formats, labels)
        role = "target" if name == target else found.role
        transform = None
        if found.free_text and role == "feature":
            transform = Transform(text=["length", "words"])
        columns.append(
            Column(
                name=name,
                type=found.type,
                role=role,
                nullable=found.nullable,
                values=own,
                transform=transform,
            )
        )
    declared = {column.name for column in spec.columns}
    if target is not None and target not in declared and target not in {c.name for c in columns}:
        present = {c for frame in renamed.values() for c in frame.columns if not is_bookkeeping(c)}
        raise DataError(
            f"target {target!r}: no source has this column (after mapping); the sources' "
            f"columns are: {', '.join(sorted(present))}"
        )
    return tuple(columns)


def with_columns(loaded: LoadedSpec, columns: list[Column]) -> LoadedSpec:
    """``loaded`` with ``columns`` (its declared ones followed by the inferred ones) as the
    spec's columns, checked as a written spec would be; unchanged when nothing is inferred."""
    spec = loaded.spec
    if not spec.infer_columns:
        return loaded
    resolved = spec.model_copy(update={"columns": list(columns), "infer_columns": False})
    problems = check_consistency(resolved)
    if problems:
        raise DataError(
            "with the columns inferred from the data, the spec does not hold: "
            + "; ".join(_named(resolved, problem) for problem in problems)
        )
    return LoadedSpec(spec=resolved, path=loaded.path)


def _named(spec: PipelineSpec, problem: Problem) -> str:
    """A problem of the resolved spec, naming the column rather than its position."""
    loc, message = problem
    if len(loc) >= 2 and loc[0] == "columns" and isinstance(loc[1], int):
        return f"column {spec.columns[loc[1]].name!r}: {message}"
    return f"{'.'.join(map(str, loc))}: {message}"
