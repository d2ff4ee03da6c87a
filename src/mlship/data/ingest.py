"""Ingest: sources in, one validated, pseudonymized, versioned dataset out.

For each source: read -> rename -> pseudonymize PII -> type (unparsable values get a reason) ->
derive columns -> convert units. Then the sources are combined, every check runs, failing rows are
quarantined with their reasons, and the clean table is stored once, addressed by its content. An
ingest whose inputs (data spec, source bytes, code version, PII key) are unchanged is not repeated:
the stored dataset is reused.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from mlship.data.checks import Validation, validate
from mlship.data.duplicates import resolve_duplicates
from mlship.data.fingerprint import ingest_key, location_of
from mlship.data.incremental import Growth, commit, is_incremental, merge, read_growth
from mlship.data.ingest_observer import IngestObserver
from mlship.data.ingested import Ingested, IngestStores, code_version, dataset_frame, json_bytes
from mlship.data.mapping import rename_columns
from mlship.data.privacy import pseudonym
from mlship.data.profile import profile_of
from mlship.data.report import write_report
from mlship.data.source_prep import combine_prepared, prepare_source, select_schema
from mlship.data.sources import SourceData, read_source, source_fingerprint
from mlship.data.tracking import ROW, SOURCE
from mlship.data.typing import REASONS
from mlship.data.undeclared import (
    UndeclaredColumns,
    infer_undeclared,
    left_out,
)
from mlship.data.versioning import frame_hash
from mlship.errors import DataError
from mlship.security.keys import load_or_create_key
from mlship.spec.data import Column
from mlship.spec.loader import LoadedSpec
from mlship.store.artifacts import atomic_write

ProgressHook = Callable[[int, int | None], None]


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _store_parquet(frame: pl.DataFrame, workspace: IngestStores) -> str:
    return workspace.artifacts.put_bytes(_parquet_bytes(frame)).sha256


def _shown(data: SourceData) -> str:
    """How messages name a source: ``label (file or database)``, passwords masked."""
    return f"{data.label} ({data.origin.location})"


def _nothing_to_ingest(raw: dict[str, SourceData], method: str) -> DataError:
    """Why the combined table has no rows: the sources that have none, or else the combining."""
    empty = [data for data in raw.values() if data.frame.is_empty()]
    if empty:
        reasons = []
        for data in empty:
            if data.origin.kind == "query":
                reason = "the query returned no rows"
            elif data.origin.kind == "stream":
                reason = "no landed events in the range"
            elif data.origin.format == "csv":
                reason = "the file has a header but no data rows"
            else:
                reason = "the file has no data rows"
            reasons.append(f"{_shown(data)}: {reason}")
        return DataError("; ".join(reasons) + "; there is nothing to ingest")
    rows = ", ".join(f"{data.label} {data.frame.height}" for data in raw.values())
    return DataError(
        f"the sources have rows ({rows}), but combining them ({method}) leaves none; "
        "check the keys the sources are joined on"
    )


def _read_all(
    loaded: LoadedSpec, workspace: IngestStores, observer: IngestObserver
) -> dict[str, SourceData]:
    found: dict[str, SourceData] = {}
    for source in loaded.spec.sources:
        label = source.label
        observer.source_started(label)
        found[label] = read_source(
            source,
            loaded.base_dir,
            lambda done, total, label=label: observer.source_progress(label, done, total),  # type: ignore[misc]
            workspace,
        )
    return found


def _source_hashes(loaded: LoadedSpec, workspace: IngestStores) -> list[str] | None:
    """Content hashes of every file source and fingerprints of every landed stream's range;
    None when a query makes reading necessary."""
    hashes = []
    for source in loaded.spec.sources:
        found = source_fingerprint(source, loaded.base_dir, workspace)
        if found is None:
            return None
        hashes.append(found)
    return hashes


def ingest(
    loaded: LoadedSpec, workspace: IngestStores, observer: IngestObserver | None = None
) -> Ingested:
    """Ingest the spec's sources into a validated dataset (or reuse an identical earlier one)."""
    observer = observer or IngestObserver()
    spec = loaded.spec
    settings = workspace.settings
    configured = settings.pii_key.get_secret_value() if settings.pii_key else None
    # A client of a shared server never invents a key: pseudonyms made with a key of its own
    # would not match the ones everybody else writes to the same datasets.
    key = load_or_create_key(
        configured,
        settings.pii_key_file_resolved,
        what="PII key (a team shares one: set the same MLSHIP_PII_KEY on every client)",
        create=not settings.url,
    )
    marker = pseudonym(key, "mlship ingest cache")

    raw: dict[str, SourceData] | None = None
    # Growing sources are read from their marks (mlship.data.incremental), never whole.
    growth = read_growth(loaded, workspace, observer.message) if is_incremental(spec) else None
    hashes = None if growth is not None else _source_hashes(loaded, workspace)
    if hashes is None:
        raw = growth.raw if growth is not None else _read_all(loaded, workspace, observer)
        hashes = [frame_hash(d.frame.to_pandas()) for d in raw.values()]
    cache_key = ingest_key(spec, hashes, marker)
    if growth is None:
        cached = workspace.datasets.cached_dataset(cache_key)
    else:
        cached = growth.previous if growth.nothing_new else None
    if cached is not None:
        observer.message(
            f"Inputs unchanged: reusing dataset {cached.data_hash[:12]} ({cached.n_rows} rows)"
        )
        return Ingested(
            dataset=cached,
            reused=True,
            validation=cached.validation or {},
            table=lambda: dataset_frame(cached, workspace),
            columns=[Column.model_validate(c) for c in cached.columns or []],
        )

    spec_hash = loaded.spec_hash  # of the spec as written, as its runs record it
    if spec.engine == "spark":  # the same steps compiled to Spark (mlship.data.spark)
        from mlship.data.spark.ingest import spark_ingest

        done = spark_ingest(loaded, key)
        return _record(
            loaded, workspace, done.raw, done.validation, done.combine, cache_key, observer,
            done.undeclared, spec_hash,
        )  # fmt: skip
    if raw is None:  # one file larger than `stream_above` is read in batches
        from mlship.data.stream_record import ingest_streamed, stream_plan

        reader, why = stream_plan(loaded, int(settings.stream_above))
        if why:
            observer.message(why)
        if reader is not None:
            return ingest_streamed(loaded, workspace, observer, reader, hashes[0], key, cache_key)
    raw = raw if raw is not None else _read_all(loaded, workspace, observer)
    inferred = _inferred(loaded, raw)
    if inferred:
        spec = spec.model_copy(update={"columns": [*spec.columns, *inferred]})
        loaded = LoadedSpec(spec=spec, path=loaded.path)
    found = {
        label: resolve_duplicates(
            prepare_source(loaded, source, raw[label], key), source, spec.columns
        )
        for source, label in zip(spec.sources, raw, strict=True)
    }
    frames = {label: result.frame for label, result in found.items()}
    combined, combine_report, origins = combine_prepared(loaded, frames, found)
    set_aside = [
        _select_set_aside(result.quarantined, spec.columns)
        for result in found.values()
        if result.quarantined.height
    ]
    # Rows all set aside as conflicting copies are quarantined rows, not "nothing to ingest".
    if combined.is_empty() and not set_aside:
        raise _nothing_to_ingest(raw, spec.combine.method)
    undeclared = UndeclaredColumns(left_out(combined.columns, spec.columns), inferred)
    combined = select_schema(combined, spec.columns)
    duplicates = [result.counts for result in found.values() if result.counts is not None]
    validation = validate(
        combined,
        spec.columns,
        spec.checks,
        _references(loaded, workspace),
        origins=origins,
        duplicates=duplicates,
        set_aside=set_aside,
    )
    return _record(
        loaded,
        workspace,
        raw,
        validation,
        combine_report,
        cache_key,
        observer,
        undeclared,
        spec_hash,
        growth,
    )


def _inferred(loaded: LoadedSpec, raw: dict[str, SourceData]) -> tuple[Column, ...]:
    """With ``columns: {infer: true}``, the columns the spec does not declare, inferred from
    the sources' values as their mappings rename them."""
    if not loaded.spec.infer_columns:
        return ()
    renamed = {
        source.label: rename_columns(raw[source.label].frame, source.mapping, source.label)
        for source in loaded.spec.sources
    }
    return infer_undeclared(loaded.spec, renamed)


def _select_set_aside(frame: pl.DataFrame, columns: list[Column]) -> pl.DataFrame:
    """A source's quarantined copies, cut to the dataset's columns it has."""
    kept = {c.name for c in columns if not (c.role == "pii" and c.pii == "drop")}
    return frame.select(c for c in frame.columns if c in kept or c in (SOURCE, ROW, REASONS))


def _references(loaded: LoadedSpec, workspace: IngestStores) -> dict[str, pl.Series]:
    references: dict[str, pl.Series] = {}
    for column in loaded.spec.columns:
        for check in column.checks:
            if check.distribution is None:
                continue
            ref = check.distribution.reference
            location = location_of(ref, loaded.base_dir)
            if "://" in ref or ref.endswith((".parquet", ".csv")):
                frame = (
                    pl.read_parquet(location) if ref.endswith(".parquet") else pl.read_csv(location)
                )
            else:
                dataset = workspace.datasets.get_dataset(ref)
                frame = pl.read_parquet(
                    io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256))
                )
            if column.name not in frame.columns:
                raise DataError(f"reference {ref} has no column {column.name!r} to compare with")
            references[column.name] = frame[column.name]
    return references


def _record(
    loaded: LoadedSpec,
    workspace: IngestStores,
    raw: dict[str, SourceData],
    validation: Validation,
    combine_report: dict[str, Any],
    cache_key: str,
    observer: IngestObserver,
    undeclared: UndeclaredColumns,
    spec_hash: str,
    growth: Growth | None = None,
) -> Ingested:
    spec = loaded.spec
    summary = validation.summary()
    summary["sources"] = [d.origin.to_json() for d in raw.values()]
    summary["combine"] = combine_report
    summary["undeclared"] = undeclared.as_dict()
    # Stored only once the data has passed: a failed ingest leaves no artifact behind.
    quarantine = _parquet_bytes(validation.quarantine) if len(validation.quarantine) else None
    quarantine_sha = hashlib.sha256(quarantine).hexdigest() if quarantine else None
    summary["quarantine_sha256"] = quarantine_sha
    report_dir = workspace.settings.home_resolved / "reports"
    quarantine_file = report_dir / f"{spec.name}-quarantine.parquet"
    summary["quarantine_path"] = str(quarantine_file) if quarantine else None
    profile = profile_of(validation.clean)
    html_path = report_dir / f"{spec.name}-data.html"
    summary["report_path"] = str(html_path)

    def write_reports() -> None:
        """Written once the dataset is stored, or to say why it was not (failed checks): a
        store that failed leaves no report claiming a dataset."""
        _export_quarantine(quarantine, quarantine_file)
        write_report(report_dir, f"{spec.name}-data", profile, summary)
        observer.message(f"Data report: {html_path}")

    if not validation.passed:
        write_reports()
        reasons = list(validation.table_errors)
        if validation.quarantined_share > validation.max_quarantine:
            top = sorted(validation.results, key=lambda r: -r.failed)[:3]
            reasons.append(
                f"{len(validation.quarantine)} of {validation.rows_in} rows "
                f"({validation.quarantined_share:.1%}) failed error checks, more than the allowed "
                f"{validation.max_quarantine:.1%}; most frequent: "
                + "; ".join(f"{r.examples[0]} ({r.failed} rows)" for r in top if r.examples)
            )
        sources = "sources: " + ", ".join(_shown(data) for data in raw.values())
        where = f"report: {html_path}"
        if summary["quarantine_path"]:
            where += f"; quarantined rows: {summary['quarantine_path']}"
        raise DataError("data validation failed:\n  " + "\n  ".join([*reasons, sources, where]))
    if quarantine:
        workspace.artifacts.put_bytes(quarantine)
    clean = validation.clean
    if growth is not None:  # the new rows, added to the previous version's
        clean, summary["increment"] = merge(growth, clean, workspace)
        profile = profile_of(clean)
    pandas_frame = clean.to_pandas()
    data_hash = frame_hash(pandas_frame)
    profile_sha = workspace.artifacts.put_bytes(json_bytes(profile.to_json())).sha256
    dataset, created = workspace.datasets.get_or_add_dataset(
        data_hash=data_hash,
        artifact_sha256=_store_parquet(clean, workspace),
        n_rows=len(clean),
        columns=[c.model_dump() for c in spec.columns],
        sources=summary["sources"],
        pipeline=spec.name,
        spec_hash=spec_hash,
        code_version=code_version(loaded.base_dir),
        n_quarantined=len(validation.quarantine),
        quarantine_sha256=quarantine_sha,
        profile_sha256=profile_sha,
        validation=summary,
    )
    if growth is not None:
        commit(growth, dataset, workspace)
    workspace.datasets.remember_ingest(cache_key, dataset.id)
    write_reports()
    if len(validation.quarantine):
        observer.message(f"Quarantined {len(validation.quarantine)} of {validation.rows_in} rows")
    return Ingested(
        dataset=dataset,
        reused=not created,
        validation=summary,
        table=pandas_frame,
        combine=combine_report,
        columns=list(spec.columns),
    )


def _export_quarantine(quarantine: bytes | None, path: Path) -> None:
    """A readable copy of the quarantined rows next to the report (the artifact is the record)."""
    if not quarantine:
        path.unlink(missing_ok=True)
        return
    atomic_write(path, [quarantine])
