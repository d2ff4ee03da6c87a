"""An ``engine: spark`` ingest: the spec compiled to Spark, the outcome as the local engine's.

Spark reads every source, types, converts and checks every row, counts, and keeps the clean
rows. Only three things come back to this process: the counts, the rows that need words (the
quarantined ones, those with a typing warning, and the first few failing rows of each check, as
examples), and the clean table that the dataset stores. The rows that need words are worded by
the local engine's own code, run on their raw values; its verdict must be Spark's, or the ingest
stops, so the two engines never silently differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from mlship.data.checks import (
    CheckResult,
    RowCheck,
    Validation,
    _declared,
    _examples,
    _flags,
    _quarantine,
    _table_errors,
    _typing_results,
    compile_row_checks,
    is_tracking,
)
from mlship.data.combine import combine_sources
from mlship.data.fingerprint import location_of
from mlship.data.readers.base import SourceData
from mlship.data.spark.checks import spark_flags
from mlship.data.spark.prepare import LOST, WARNED, local_prepare, spark_prepare
from mlship.data.spark.read import ORDER, SparkSource, read_spark_source
from mlship.data.spark.session import spark_message, spark_session
from mlship.data.spark.support import refuse_unsupported
from mlship.data.tracking import ROW, SOURCE
from mlship.data.typing import REASONS, WARNINGS
from mlship.data.undeclared import UndeclaredColumns, left_out
from mlship.errors import DataError
from mlship.spec.data import Column, TableChecks
from mlship.spec.loader import LoadedSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

BAD = "_bad"
_SOURCE_BITS = 40  # a row's order: its source's position, then its place in the file
_EXAMPLES = 3


@dataclass(frozen=True)
class SparkIngest:
    """What the local engine's recording step takes: lineage, validation, combine report and
    the columns left out."""

    raw: dict[str, SourceData]
    validation: Validation
    combine: dict[str, Any]
    undeclared: UndeclaredColumns


def _raw_schema(
    spark_source: SparkSource, fmt: str, location_schema: dict[str, Any]
) -> pl.DataFrame:
    names = [c for c in spark_source.frame.columns if c not in (SOURCE, ROW, "_index")]
    if fmt == "csv":
        schema = {name: pl.String() for name in names}
    else:
        schema = {name: location_schema[name] for name in names}
    return pl.DataFrame(schema=schema).with_columns(
        pl.lit(None, pl.String).alias(SOURCE), pl.lit(None, pl.String).alias(ROW)
    )


def _parquet_schema(path: str) -> dict[str, Any]:
    return dict(pl.read_parquet_schema(path))


def _local_table(
    loaded: LoadedSpec, raws: dict[str, pl.DataFrame], key: bytes
) -> tuple[pl.DataFrame, list[str]]:
    """The local engine's table of ``raws`` (raw rows per source): typed, combined, with its
    reasons; and the combined table's columns before the schema's selection."""
    from mlship.data.source_prep import select_schema

    spec = loaded.spec
    frames = {
        source.label: local_prepare(raws[source.label], source, spec.columns, key, loaded)
        for source in spec.sources
    }
    combined = combine_sources(frames, spec.combine, spec.source_names).frame
    return select_schema(combined, spec.columns), combined.columns


def _checked(action: str, run: Any) -> Any:
    try:
        return run()
    except DataError:
        raise
    except Exception as exc:  # Spark's analysis and execution errors
        raise DataError(f"engine: spark: {action} failed: {spark_message(exc)}") from None


def _stand_in(height: int, nulls: dict[str, int]) -> pl.DataFrame:
    """A frame of ``height`` rows whose columns have the given null counts: all the table-level
    checks read of the whole table, without its values."""
    index = pl.int_range(height, eager=True)
    return (
        pl.DataFrame(
            {
                name: pl.select(pl.when(index < n).then(None).otherwise(True)).to_series()
                for name, n in nulls.items()
            }
        )
        if nulls
        else pl.DataFrame({"_": pl.repeat(True, height, eager=True)})
    )


@dataclass(frozen=True)
class _Read:
    """The sources as Spark read them, their empty local stand-ins, and the prepared table."""

    sources: dict[str, SparkSource]
    empties: dict[str, pl.DataFrame]
    table: DataFrame


def _read_prepared(loaded: LoadedSpec, key: bytes) -> _Read:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    spec = loaded.spec
    spark = spark_session(spec.spark)
    read: dict[str, SparkSource] = {}
    empties: dict[str, pl.DataFrame] = {}
    prepared: list[DataFrame] = []
    for position, source in enumerate(spec.sources):
        found = read_spark_source(spark, source, loaded.base_dir)
        found.frame.persist(StorageLevel.MEMORY_AND_DISK)  # numbered once, read twice
        read[source.label] = found
        fmt = found.origin.format
        where = location_of(source.path or "", loaded.base_dir)
        empty = _raw_schema(found, fmt, _parquet_schema(where) if fmt == "parquet" else {})
        empties[source.label] = empty
        frame = spark_prepare(found.frame, empty, source, spec.columns, key)
        order = F.lit(position).cast("bigint") * F.lit(1 << _SOURCE_BITS) + F.col("_index")
        prepared.append(frame.withColumn(ORDER, order).drop("_index"))
    table = prepared[0]
    for frame in prepared[1:]:
        table = table.unionByName(frame, allowMissingColumns=True)
    return _Read(read, empties, table)


@dataclass(frozen=True)
class _Flagged:
    """The table with one boolean column per check (``names``: check key -> column)."""

    table: DataFrame
    names: dict[str, str]
    warned: Any
    """True on a row kept with a warning (typing's or a warn check's)."""


def _flagged(
    table: DataFrame, loaded: LoadedSpec, data_columns: list[str], checks: list[RowCheck]
) -> _Flagged:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    spec = loaded.spec
    flagged_checks = spark_flags(spec.columns, spec.checks, data_columns, checks)
    names = {check.key: f"_f{i}" for i, (check, _) in enumerate(flagged_checks)}
    table = table.select(
        *(F.col(f"`{name}`") for name in data_columns), SOURCE, ROW, ORDER, LOST, WARNED
    )
    table = table.withColumns({names[check.key]: flag for check, flag in flagged_checks})
    bad = F.col(LOST)
    warned = F.col(WARNED)
    for check in checks:
        if check.severity == "error":
            bad = bad | F.col(names[check.key])
        else:
            warned = warned | F.col(names[check.key])
    table = table.withColumn(BAD, bad).persist(StorageLevel.MEMORY_AND_DISK)
    return _Flagged(table, names, warned & ~F.col(BAD))


def _totals(flagged: _Flagged, checks: list[RowCheck], data_columns: list[str]) -> Any:
    from pyspark.sql import functions as F

    names = flagged.names

    def count(flag: Any) -> Any:
        return F.sum(flag.cast("long"))

    return _checked(
        "checking the rows",
        lambda: flagged.table.agg(
            F.count(F.lit(1)).alias("rows"),
            count(F.col(BAD)).alias("bad"),
            count(flagged.warned).alias("warned"),
            *(count(F.col(names[c.key])).alias(names[c.key]) for c in checks),
            *(
                count(F.col(f"`{n}`").isNull()).alias(f"_null{i}")
                for i, n in enumerate(data_columns)
            ),
        ).collect()[0],
    )


def _needing_words(
    flagged: _Flagged, checks: list[RowCheck], counts: dict[str, int]
) -> pl.DataFrame:
    """Order and flags of the rows that need words: quarantined, warned by typing, or among
    the first failing rows of a warn check (its examples)."""
    from pyspark.sql import functions as F

    table, names = flagged.table, flagged.names
    examples: set[int] = set()
    for check in checks:
        if check.severity == "warn" and counts[check.key]:
            first = table.where(F.col(names[check.key])).orderBy(ORDER).select(ORDER)
            examples.update(int(r[0]) for r in first.limit(_EXAMPLES).collect())
    wanted = F.col(BAD) | F.col(WARNED)
    if examples:
        wanted = wanted | F.col(ORDER).isin(sorted(examples))
    needed = table.where(wanted).select(ORDER, LOST, WARNED, *names.values()).orderBy(ORDER)
    marks = pl.from_arrow(_checked("collecting the quarantined rows", needed.toArrow))
    assert isinstance(marks, pl.DataFrame)
    return marks


def spark_ingest(loaded: LoadedSpec, key: bytes) -> SparkIngest:
    """Ingest ``loaded``'s sources with Spark; refuses specs it cannot compile, by feature."""
    from pyspark.sql import functions as F

    spec = loaded.spec
    refuse_unsupported(spec)
    read = _read_prepared(loaded, key)
    # The local engine on no rows: the spec's mistakes in its words, and the table's schema.
    local_empty, combined_columns = _local_table(loaded, read.empties, key)
    data_columns = [c for c in local_empty.columns if not is_tracking(c)]
    checks = compile_row_checks(spec.columns, spec.checks, dict(local_empty.schema))
    flagged = _flagged(read.table, loaded, data_columns, checks)
    totals = _totals(flagged, checks, data_columns)
    rows = int(totals["rows"])
    if rows == 0:
        shown = ", ".join(f"{f.label} ({f.origin.path})" for f in read.sources.values())
        raise DataError(f"{shown}: the sources have no data rows; there is nothing to ingest")
    counts = {c.key: int(totals[flagged.names[c.key]] or 0) for c in checks}
    marks = _needing_words(flagged, checks, counts)
    local = _local_rows(loaded, read.sources, read.empties, marks[ORDER], key)
    _same_verdicts(local, marks)
    flags = pl.DataFrame({c.key: marks[flagged.names[c.key]] for c in checks})
    _same_flags(local, flags, checks)
    kept = flagged.table.where(~F.col(BAD)).orderBy(ORDER)
    clean_spark = kept.select(*(F.col(f"`{n}`") for n in data_columns))
    clean = pl.from_arrow(_checked("collecting the clean rows", clean_spark.toArrow))
    assert isinstance(clean, pl.DataFrame)
    clean = clean.cast(dict(local_empty.select(data_columns).schema))  # type: ignore[arg-type]
    for found in read.sources.values():
        found.frame.unpersist()
    flagged.table.unpersist()
    tally = _Tally(
        rows=rows,
        bad=int(totals["bad"] or 0),
        warned=int(totals["warned"] or 0),
        counts=counts,
        nulls={n: int(totals[f"_null{i}"] or 0) for i, n in enumerate(data_columns)},
    )
    validation = _validation(spec.columns, spec.checks, checks, tally, local, flags, clean)
    raw = {
        label: SourceData(label, pl.DataFrame(), found.origin, None)
        for label, found in read.sources.items()
    }
    report = {
        "method": "union",
        "rows_in": {label: found.rows for label, found in read.sources.items()},
        "conflicts": None,
        "rows_out": rows,
    }
    undeclared = UndeclaredColumns(left_out(combined_columns, spec.columns), ())
    return SparkIngest(raw, validation, report, undeclared)


@dataclass(frozen=True)
class _Tally:
    """What Spark counted over the whole table."""

    rows: int
    bad: int
    warned: int
    counts: dict[str, int]
    nulls: dict[str, int]


def _local_rows(
    loaded: LoadedSpec,
    read: dict[str, SparkSource],
    empties: dict[str, pl.DataFrame],
    orders: pl.Series,
    key: bytes,
) -> pl.DataFrame:
    """The local engine's table of the rows at ``orders``, from their raw values."""
    from pyspark.sql import functions as F

    raws: dict[str, pl.DataFrame] = {}
    positions = orders // (1 << _SOURCE_BITS)
    indices = orders % (1 << _SOURCE_BITS)
    spark = None
    for position, (label, found) in enumerate(read.items()):
        wanted = indices.filter(positions == position).to_list()
        empty = empties[label]
        if not wanted:
            raws[label] = empty
            continue
        spark = spark or found.frame.sparkSession
        chosen = spark.createDataFrame([(i,) for i in wanted], "_index bigint")
        rows = found.frame.join(F.broadcast(chosen), "_index").orderBy("_index").drop("_index")
        got = pl.from_arrow(_checked("collecting raw rows", rows.toArrow))
        assert isinstance(got, pl.DataFrame)
        raws[label] = got.select(empty.columns).cast(dict(empty.schema))  # type: ignore[arg-type]
    table, _ = _local_table(loaded, raws, key)
    return table


def _same_verdicts(local: pl.DataFrame, marks: pl.DataFrame) -> None:
    """Stop unless the local engine reads these rows as Spark did (same typing verdicts)."""
    lost = local[REASONS].is_not_null()
    warned = local[WARNINGS].is_not_null()
    differ = (lost != marks[LOST]) | (warned != marks[WARNED])
    if differ.any():
        at = differ.arg_true()[0]
        where = f"{local[SOURCE][at]} {local[ROW][at]}"
        raise DataError(
            f"engine: spark read {where} differently from the local engine "
            f"(typing failed: spark {marks[LOST][at]}, local {lost[at]}; warned: spark "
            f"{marks[WARNED][at]}, local {warned[at]}); use engine: local for this data"
        )


def _same_flags(local: pl.DataFrame, flags: pl.DataFrame, checks: list[RowCheck]) -> None:
    """Stop unless the local engine judges these rows as Spark did, check by check (all but
    ``duplicates``, which depends on rows that did not come back)."""
    own = [c for c in checks if c.key != "duplicates"]
    if not own or local.is_empty():
        return
    judged = _flags(local, own)
    for check in own:
        differ = judged[check.key] != flags[check.key]
        if differ.any():
            at = differ.arg_true()[0]
            raise DataError(
                f"engine: spark judged {local[SOURCE][at]} {local[ROW][at]} differently from "
                f"the local engine on check {check.check!r}"
                f"{f' of {check.column}' if check.column else ''}; use engine: local for this data"
            )


def _validation(
    columns: list[Column],
    table_checks: TableChecks,
    checks: list[RowCheck],
    tally: _Tally,
    local: pl.DataFrame,
    flags: pl.DataFrame,
    clean: pl.DataFrame,
) -> Validation:
    """The local engine's :class:`Validation`, from Spark's counts and the worded rows."""
    known = {c.name for c in columns}
    typing_failed = local[REASONS].is_not_null()
    typing_warned = local[WARNINGS].is_not_null()
    results: list[CheckResult] = []
    if typing_failed.any():
        results.extend(_typing_results(local, typing_failed, known))
    if typing_warned.any():
        results.extend(_typing_results(local, typing_warned, known, "warn", WARNINGS))
    counts = tally.counts
    failing = [c for c in checks if counts[c.key]]
    examples = _examples(local, flags, failing)
    results.extend(
        CheckResult(c.column, c.check, c.severity, counts[c.key], examples[c.key]) for c in failing
    )
    errors = [c for c in checks if c.severity == "error"]
    bad = typing_failed
    if errors:
        bad = bad | flags.select(pl.any_horizontal(c.key for c in errors)).to_series()
    if bad.any():
        failed = [c for c in errors if counts[c.key]]
        marks = flags.select(c.key for c in failed).filter(bad) if failed else pl.DataFrame()
        quarantine = _quarantine(local.filter(bad), marks, failed)
    else:
        quarantine = local.clear()
    if quarantine.height != tally.bad:
        raise DataError(
            f"engine: spark quarantined {tally.bad} rows, the local engine's reading of them "
            f"{quarantine.height}; use engine: local for this data"
        )
    stand_in = _stand_in(tally.rows, tally.nulls)
    bad_all = pl.int_range(tally.rows, eager=True) < tally.bad
    table_errors, table_results = _table_errors(stand_in, bad_all, columns, table_checks, {})
    validation = Validation(
        frame=clean,
        quarantined=pl.repeat(False, clean.height, eager=True),
        quarantine=quarantine,
        results=results + table_results,
        rows_in=tally.rows,
        warned=tally.warned,
        table_errors=table_errors,
        max_quarantine=table_checks.max_quarantine,
    )
    validation.declared = _declared(
        stand_in, checks, counts, columns, table_checks, table_results, validation
    )
    return validation
