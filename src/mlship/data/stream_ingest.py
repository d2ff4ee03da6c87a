"""Ingest of one file larger than memory: the same pipeline, a bounded batch at a time.

Three passes over the data, none of which holds more than one batch (plus small tallies):

1. The file is read in batches (:mod:`mlship.data.readers.batched`); each batch is renamed,
   pseudonymized, typed, derived and converted by the in-memory path's own functions, and the
   typed rows are staged to a Parquet file with, for duplicates and ``unique`` checks, two 64-bit
   hashes per row of the columns compared.
2. Which rows repeat an earlier row is decided over the whole table from the hashes alone, one
   hash partition at a time (a few MB each), so a copy is found even when the first row is
   millions of rows earlier.
3. The staged rows are validated a row group at a time by :func:`mlship.data.checks.validate`,
   told which rows are first copies; clean rows are appended to the dataset's Parquet file,
   quarantined rows (with their reasons) to the quarantine's. Counts, examples and the declared
   checks are summed over the batches; table checks (row count, missing share, the quarantined
   share) are decided on the totals.

The dataset's hash is the in-memory path's :func:`~mlship.data.versioning.frame_hash` of the same
rows, so both paths give one dataset one address. The data report's profile is computed on an
even sample of the clean rows (its ``rows`` says how many).

What needs every row at once is not streamed: several sources (joins, unions, as-of joins), a
source ``key`` (conflicting copies are resolved by key), ``outliers`` and ``distribution`` checks
and inferred columns. For those :func:`stream_plan` says why, and the file is read whole.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from mlship.data.checks import CheckResult, DeclaredCheck, Validation, is_tracking, validate
from mlship.data.dataset_files import PartWriter
from mlship.data.lineage import FileLineage
from mlship.data.readers import file_reader_for
from mlship.data.readers.batched import BatchTally, can_batch, file_batches, lineage_of
from mlship.data.readers.files import FileReader
from mlship.errors import DataError
from mlship.spec.data import Column, TableChecks

if TYPE_CHECKING:
    from mlship.data.ingest_observer import IngestObserver
    from mlship.spec.loader import LoadedSpec

_INDEX = "__index"
PROFILE_SAMPLE_ROWS = 100_000
"""The data report's profile of a streamed dataset is computed on about this many clean rows."""
_STAGED_ROWS = 4_096
"""Rows validated at once in the third pass (a row group of the staged table)."""
_PARTITION_ROWS = 500_000
"""Rows of hashes held at once while looking for repeats."""


def stream_plan(loaded: LoadedSpec, threshold: int) -> tuple[FileReader | None, str | None]:
    """The reader to stream the spec's source with, or None; and, when the source is large
    enough to stream but cannot be, why (a message for the user)."""
    spec = loaded.spec
    large: list[tuple[FileReader, int]] = []
    for source in spec.sources:
        if source.path is None:
            continue
        try:
            reader = file_reader_for(source, loaded.base_dir)
        except DataError:
            return None, None  # reading it whole says what is wrong
        size = _size(reader)
        if size is not None and size > threshold:
            large.append((reader, size))
    if not large:
        return None, None
    reader, size = large[0]
    source = reader.source
    if len(spec.sources) > 1:
        why: str | None = (
            "the spec combines several sources, and a join or union needs the other sources whole"
        )
    else:
        why = can_batch(reader) or _unstreamable(loaded)
    if why is None:
        return reader, None
    shown = f"{size / 2**20:.0f} MiB"
    return None, (
        f"{source.label} ({shown}) is larger than stream_above ({threshold / 2**20:.0f} MiB) "
        f"but is read whole: {why}"
    )


def _size(reader: FileReader) -> int | None:
    location = reader.location.removeprefix("file://")
    if "://" in location:
        return None
    path = Path(location)
    return path.stat().st_size if path.is_file() else None


def _unstreamable(loaded: LoadedSpec) -> str | None:
    spec = loaded.spec
    source = spec.sources[0]
    if source.key is not None:
        return "the source's `key` resolves conflicting copies, which needs all rows at once"
    if spec.infer_columns:
        return "`columns: {infer: true}` infers types from all the values"
    for column in spec.columns:
        for check in column.checks:
            if check.outliers is not None:
                return f"the outliers check of {column.name!r} needs the quantiles of all rows"
            if check.distribution is not None:
                return f"the distribution check of {column.name!r} compares all rows"
    return None


@dataclass
class _Merged:
    """Counts of the batches' validations, summed."""

    rows_in: int = 0
    quarantined: int = 0
    warned: int = 0
    clean: int = 0
    results: dict[tuple[str | None, str, str], CheckResult] = field(default_factory=dict)
    ranks: dict[tuple[str | None, str, str], tuple[int, int]] = field(default_factory=dict)
    declared: list[DeclaredCheck] = field(default_factory=list)

    def add(self, found: Validation) -> None:
        self.rows_in += found.rows_in
        self.quarantined += len(found.quarantine)
        self.warned += found.warned
        self.clean += found.rows_out
        order = {(d.column, d.check, d.severity): i for i, d in enumerate(found.declared)}
        for result in found.results:
            key = (result.column, result.check, result.severity)
            known = self.results.get(key)
            if known is None:
                self.results[key] = CheckResult(*key, result.failed, list(result.examples))
                typing = result.check in ("type", "nullable") or key not in order
                kind = (0 if result.severity == "error" else 1) if typing else 2
                self.ranks[key] = (kind, order.get(key, len(self.ranks)))
            else:
                known.failed += result.failed
                known.examples.extend(result.examples[: 3 - len(known.examples)])
        rows = [d for d in found.declared if d.check not in ("rows", "max_quarantine")]
        if not self.declared:
            self.declared = rows
            return
        self.declared = [
            DeclaredCheck(
                a.column,
                a.check,
                a.severity,
                a.tested + b.tested,
                a.failed + b.failed,
                a.failed + b.failed == 0,
                a.detail,
            )
            for a, b in zip(self.declared, rows, strict=True)
        ]

    def ordered(self) -> list[CheckResult]:
        return [self.results[key] for key in sorted(self.results, key=self.ranks.__getitem__)]


@dataclass
class Streamed:
    """What the streamed passes made: the files and the validation's summary."""

    clean: Path
    quarantine: Path | None
    rows_in: int
    rows_out: int
    quarantined: int
    summary: dict[str, Any]
    passed: bool
    failure: list[str]
    sample: pl.DataFrame
    combine: dict[str, Any]
    lineage: FileLineage
    combined_columns: list[str]
    """The columns of the table before it was cut to the declared ones."""


def _row_checks_only(columns: Sequence[Column]) -> list[Column]:
    """The columns with their ``max_missing`` checks taken out: decided on the totals."""
    return [
        c.model_copy(
            update={"checks": [k.model_copy(update={"max_missing": None}) for k in c.checks]}
        )
        for c in columns
    ]


def _compared(table: TableChecks, columns: Sequence[Column], data: list[str]) -> list[list[str]]:
    """Every set of columns whose repeats a check looks for: the whole row for duplicates,
    each ``unique`` column, each ``unique`` combination."""
    sets = [data] if table.duplicates != "allow" else []
    for column in columns:
        if column.name in data and any(k.unique for k in column.checks):
            sets.append([column.name])
    sets.extend(list(names) for names in table.unique)
    return sets


def _hashes(frame: pl.DataFrame, sets: list[list[str]]) -> list[pl.Expr]:
    exprs = []
    for index, names in enumerate(sets):
        values = pl.struct(
            [
                pl.col(n).cast(pl.String)
                if isinstance(frame.schema[n], pl.Categorical | pl.Enum)
                else pl.col(n)
                for n in names
            ]
        )
        exprs.append(values.hash(0).alias(f"h{index}a"))
        exprs.append(values.hash(1).alias(f"h{index}b"))
    return exprs


def run_passes(
    loaded: LoadedSpec,
    reader: FileReader,
    sha256: str,
    key: bytes,
    workdir: Path,
    observer: IngestObserver,
) -> Streamed:
    """Read, type and validate the spec's one source a batch at a time into ``workdir``."""
    from mlship.data.duplicates import resolve_duplicates
    from mlship.data.source_prep import combine_prepared, prepare_source, select_schema

    spec = loaded.spec
    source = spec.sources[0]
    label = source.label
    tally = BatchTally()
    staged = workdir / "staged.parquet"
    hashed = workdir / "hashes.parquet"
    sets: list[list[str]] | None = None
    origins: dict[str, str] = {}
    report: dict[str, Any] = {}
    combined_columns: list[str] = []
    total = _size(reader)
    observer.source_started(label)
    with PartWriter(staged, _STAGED_ROWS) as staging, PartWriter(hashed) as hashes:
        for data in file_batches(reader, sha256, tally):
            observer.source_progress(label, tally.bytes, total)
            found = resolve_duplicates(
                prepare_source(loaded, source, data, key), source, spec.columns
            )
            combined, part, origins = combine_prepared(loaded, {label: found.frame}, {label: found})
            report = _add_report(report, part)
            frame = select_schema(combined, spec.columns)
            if sets is None:
                combined_columns = combined.columns
                data_columns = [c for c in frame.columns if not is_tracking(c)]
                sets = _compared(spec.checks, spec.columns, data_columns)
            start = staging.rows
            staging.write(frame)
            hashes.write(
                frame.select(
                    pl.int_range(start, start + frame.height, dtype=pl.Int64).alias(_INDEX),
                    *_hashes(frame, sets),
                )
            )
    assert sets is not None
    repeats = [_repeated(hashed, index, hashes.rows) for index in range(len(sets))]
    hashed.unlink()
    streamed = _validate_staged(loaded, staged, sets, repeats, origins, report, workdir, tally.rows)
    streamed.lineage = lineage_of(reader, sha256, tally)
    streamed.combined_columns = combined_columns
    return streamed


def _add_report(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """The combine report of the batches so far: row counts summed."""
    if not total:
        return part
    total["rows_out"] += part["rows_out"]
    for name, rows in part["rows_in"].items():
        total["rows_in"][name] += rows
    return total


def _repeated(hashed: Path, index: int, rows: int) -> pl.Series:
    """The row indices (sorted) whose hashed values occurred in an earlier row, found one hash
    partition at a time: each pass reads the three columns of every row group and keeps the
    rows of its partition."""
    import pyarrow.parquet as pq

    a, b = f"h{index}a", f"h{index}b"
    partitions = max(1, -(-rows // _PARTITION_ROWS))
    parquet = pq.ParquetFile(hashed)
    found: list[pl.Series] = []
    for part in range(partitions):
        pieces = []
        for group in range(parquet.num_row_groups):
            piece = pl.from_arrow(parquet.read_row_group(group, columns=[_INDEX, a, b]))
            assert isinstance(piece, pl.DataFrame)
            pieces.append(piece.filter(pl.col(a) % partitions == part) if partitions > 1 else piece)
        if pieces:
            # Sorted by both hashes, then by row: a row whose hashes equal the previous row's
            # repeats an earlier one (a sort holds far less than a hash table of structs).
            chunk = pl.concat(pieces).sort(a, b, _INDEX)
            same = (pl.col(a) == pl.col(a).shift(1)) & (pl.col(b) == pl.col(b).shift(1))
            found.append(chunk.filter(same.fill_null(False))[_INDEX])
            del chunk, pieces
    if not found:
        return pl.Series(_INDEX, [], dtype=pl.Int64)
    return pl.concat(found).sort()


def _staged_groups(staged: Path) -> Iterator[pl.DataFrame]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(staged)
    for group in range(parquet.num_row_groups):
        frame = pl.from_arrow(parquet.read_row_group(group))
        assert isinstance(frame, pl.DataFrame)
        yield frame


def _validate_staged(
    loaded: LoadedSpec,
    staged: Path,
    sets: list[list[str]],
    repeats: list[pl.Series],
    origins: dict[str, str],
    report: dict[str, Any],
    workdir: Path,
    rows: int,
) -> Streamed:
    spec = loaded.spec
    columns = _row_checks_only(spec.columns)
    table = spec.checks.model_copy(update={"rows": None})
    merged = _Merged()
    nulls: dict[str, int] = {}
    quarantine_parts: list[Path] = []
    sample: list[pl.DataFrame] = []
    stride = max(1, rows // PROFILE_SAMPLE_ROWS)
    start = 0
    with PartWriter(workdir / "clean.parquet") as clean:
        for frame in _staged_groups(staged):
            positions = pl.int_range(start, start + frame.height, eager=True, dtype=pl.Int64)
            flags = {
                tuple(names): ~positions.is_in(found.implode())
                for names, found in zip(sets, repeats, strict=True)
            }

            def first_seen(names: Sequence[str], flags: Any = flags) -> pl.Expr:
                return pl.lit(flags[tuple(names)])

            found = validate(frame, columns, table, {}, origins=origins, first_seen=first_seen)
            merged.add(found)
            for name, count in zip(frame.columns, frame.null_count().row(0), strict=True):
                nulls[name] = nulls.get(name, 0) + count
            kept = found.clean
            offset = -clean.rows % stride  # every stride-th clean row of the whole table
            clean.write(kept)
            sample.append(kept.gather_every(stride, offset) if kept.height > offset else kept[:0])
            if len(found.quarantine):
                part = workdir / f"quarantine-{len(quarantine_parts):05d}.parquet"
                with PartWriter(part) as writer:
                    writer.write(found.quarantine)
                quarantine_parts.append(part)
            start += frame.height
    staged.unlink()
    return _finish(loaded, workdir, merged, nulls, quarantine_parts, sample, report)


def _finish(
    loaded: LoadedSpec,
    workdir: Path,
    merged: _Merged,
    nulls: dict[str, int],
    quarantine_parts: list[Path],
    sample: list[pl.DataFrame],
    report: dict[str, Any],
) -> Streamed:
    """Table checks on the totals; the quarantine's parts made one file; the summary."""
    spec = loaded.spec
    table = spec.checks
    rows_in, rows_out = merged.rows_in, merged.clean
    errors: list[str] = []
    results = merged.ordered()
    declared = list(merged.declared)
    if table.rows is not None:
        low, high = table.rows.min, table.rows.max
        if low is not None and rows_out < low:
            errors.append(f"the dataset has {rows_out} rows, fewer than the minimum {low}")
        if high is not None and rows_out > high:
            errors.append(f"the dataset has {rows_out} rows, more than the maximum {high}")
    for column in spec.columns:
        for check in column.checks:
            if check.max_missing is None or column.name not in nulls:
                continue
            missing = nulls[column.name]
            share = missing / rows_in if rows_in else 0.0
            failed = bool(rows_in) and share > check.max_missing
            if failed:
                message = f"{column.name}: {share:.1%} missing, more than {check.max_missing:.1%}"
                results.append(
                    CheckResult(column.name, "max_missing", check.severity, missing, [message])
                )
                if check.severity == "error":
                    errors.append(message)
            declared.append(
                DeclaredCheck(
                    column.name,
                    "max_missing",
                    check.severity,
                    rows_in,
                    missing,
                    not failed,
                    f"at most {check.max_missing:.1%} missing",
                )
            )
    share = merged.quarantined / rows_in if rows_in else 0.0
    if table.rows is not None:
        bounds = [
            f"at least {table.rows.min}" if table.rows.min is not None else "",
            f"at most {table.rows.max}" if table.rows.max is not None else "",
        ]
        held = (table.rows.min is None or rows_out >= table.rows.min) and (
            table.rows.max is None or rows_out <= table.rows.max
        )
        declared.append(
            DeclaredCheck(
                None,
                "rows",
                "error",
                rows_out,
                0 if held else rows_out,
                held,
                f"{rows_out} rows kept; {' and '.join(b for b in bounds if b)}",
            )
        )
    declared.append(
        DeclaredCheck(
            None,
            "max_quarantine",
            "error",
            rows_in,
            merged.quarantined,
            share <= table.max_quarantine,
            f"{share:.1%} quarantined, at most {table.max_quarantine:.1%} allowed",
        )
    )
    passed = not errors and share <= table.max_quarantine
    failure = list(errors)
    if share > table.max_quarantine:
        top = sorted(results, key=lambda r: -r.failed)[:3]
        failure.append(
            f"{merged.quarantined} of {rows_in} rows ({share:.1%}) failed error checks, more "
            f"than the allowed {table.max_quarantine:.1%}; most frequent: "
            + "; ".join(f"{r.examples[0]} ({r.failed} rows)" for r in top if r.examples)
        )
    summary: dict[str, Any] = {
        "rows": {
            "in": rows_in,
            "quarantined": merged.quarantined,
            "warned": merged.warned,
            "out": rows_out,
        },
        "max_quarantine": table.max_quarantine,
        "quarantined_share": share,
        "passed": passed,
        "table_errors": errors,
        "checks": [r.as_dict() for r in results],
        "declared": [d.as_dict() for d in declared],
        "duplicates": [],
    }
    quarantine = _join_quarantine(quarantine_parts, workdir) if quarantine_parts else None
    kept = pl.concat(sample) if sample else pl.DataFrame()
    return Streamed(
        clean=workdir / "clean.parquet",
        quarantine=quarantine,
        rows_in=rows_in,
        rows_out=rows_out,
        quarantined=merged.quarantined,
        summary=summary,
        passed=passed,
        failure=failure,
        sample=kept,
        combine=report,
        lineage=FileLineage("", "", "", 0, "", 0),
        combined_columns=[],
    )


def _join_quarantine(parts: list[Path], workdir: Path) -> Path:
    """The quarantined rows of every batch in one file; each batch has a ``_check:`` column
    per check that failed in it, the file one per check that failed anywhere (checks in the
    order they were declared, after the row's own columns)."""
    frames = [pl.scan_parquet(part) for part in parts]
    names: list[str] = []
    for frame in frames:
        names.extend(n for n in frame.collect_schema().names() if n not in names)
    checks = [n for n in names if n.startswith("_check:")]
    order = [n for n in names if n not in checks] + sorted(checks, key=names.index)
    path = workdir / "quarantine.parquet"
    pl.concat(frames, how="diagonal_relaxed").select(order).sink_parquet(path)
    return path


def clean_up(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)


def work_dir(home: Path) -> Path:
    """A private folder for one ingest's intermediate files, beside the workspace's data (the
    system's temp folder may be a small in-memory file system)."""
    parent = home / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="ingest-", dir=parent))
