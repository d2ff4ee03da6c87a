"""Recording a streamed ingest: the same dataset record, reports and messages as the in-memory
path, made from files instead of frames.

The clean rows and the quarantine are Parquet files the passes of
:mod:`mlship.data.stream_ingest` wrote; they are stored as artifacts from disk, and the dataset's
hash is computed from the clean file a column chunk at a time. The table itself is only read
back when a caller asks for it (training does; ``mlship data validate`` does not).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlship.data.dataset_files import file_frame_hash
from mlship.data.profile import profile_of
from mlship.data.readers.files import FileReader
from mlship.data.report import write_report
from mlship.data.stream_ingest import (
    Streamed,
    clean_up,
    run_passes,
    stream_plan,
    work_dir,
)
from mlship.data.undeclared import UndeclaredColumns, left_out
from mlship.errors import DataError
from mlship.store.artifacts import atomic_write

if TYPE_CHECKING:
    from mlship.data.ingest_observer import IngestObserver
    from mlship.data.ingested import Ingested, IngestStores
    from mlship.spec.loader import LoadedSpec

__all__ = ["ingest_streamed", "stream_plan"]


def ingest_streamed(
    loaded: LoadedSpec,
    workspace: IngestStores,
    observer: IngestObserver,
    reader: FileReader,
    sha256: str,
    key: bytes,
    cache_key: str,
) -> Ingested:
    """Ingest the spec's one file source a batch at a time (:mod:`mlship.data.stream_ingest`)."""
    observer.message(
        f"{reader.describe()} is read in batches (larger than stream_above); memory stays flat"
    )
    workdir = work_dir(workspace.settings.home_resolved)
    try:
        streamed = run_passes(loaded, reader, sha256, key, workdir, observer)
        return _record(loaded, workspace, observer, reader, streamed, cache_key)
    finally:
        clean_up(workdir)


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(2**20):
            yield block


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for block in _blocks(path):
        digest.update(block)
    return digest.hexdigest()


def _record(
    loaded: LoadedSpec,
    workspace: IngestStores,
    observer: IngestObserver,
    reader: FileReader,
    streamed: Streamed,
    cache_key: str,
) -> Ingested:
    from mlship.data.ingested import Ingested, code_version, dataset_frame, json_bytes

    spec = loaded.spec
    shown = f"{reader.label} ({streamed.lineage.location})"
    if streamed.rows_in == 0:
        what = "a header but no data rows" if reader.format == "csv" else "no data rows"
        raise DataError(f"{shown}: the file has {what}; there is nothing to ingest")
    summary = streamed.summary
    summary["sources"] = [streamed.lineage.to_json()]
    summary["combine"] = streamed.combine
    summary["undeclared"] = UndeclaredColumns(
        left_out(streamed.combined_columns, spec.columns), ()
    ).as_dict()
    quarantine = streamed.quarantine
    quarantine_sha = _sha256(quarantine) if quarantine else None
    summary["quarantine_sha256"] = quarantine_sha
    report_dir = workspace.settings.home_resolved / "reports"
    quarantine_file = report_dir / f"{spec.name}-quarantine.parquet"
    summary["quarantine_path"] = str(quarantine_file) if quarantine else None
    profile = profile_of(streamed.sample)
    summary["streamed"] = {"profile_rows": profile.rows, "profile_sample_of": streamed.rows_out}
    html_path = report_dir / f"{spec.name}-data.html"
    summary["report_path"] = str(html_path)

    def write_reports() -> None:
        if quarantine:
            atomic_write(quarantine_file, _blocks(quarantine))
        else:
            quarantine_file.unlink(missing_ok=True)
        write_report(report_dir, f"{spec.name}-data", profile, summary)
        observer.message(f"Data report: {html_path}")

    if not streamed.passed:
        write_reports()
        where = f"report: {html_path}"
        if quarantine:
            where += f"; quarantined rows: {quarantine_file}"
        lines = [*streamed.failure, f"sources: {shown}", where]
        raise DataError("data validation failed:\n  " + "\n  ".join(lines))
    if quarantine:
        workspace.artifacts.put_file(quarantine)
    profile_sha = workspace.artifacts.put_bytes(json_bytes(profile.to_json())).sha256
    dataset, created = workspace.datasets.get_or_add_dataset(
        data_hash=file_frame_hash(streamed.clean),
        artifact_sha256=workspace.artifacts.put_file(streamed.clean).sha256,
        n_rows=streamed.rows_out,
        columns=[c.model_dump() for c in spec.columns],
        sources=summary["sources"],
        pipeline=spec.name,
        spec_hash=loaded.spec_hash,
        code_version=code_version(loaded.base_dir),
        n_quarantined=streamed.quarantined,
        quarantine_sha256=quarantine_sha,
        profile_sha256=profile_sha,
        validation=summary,
    )
    workspace.datasets.remember_ingest(cache_key, dataset.id)
    write_reports()
    if streamed.quarantined:
        observer.message(f"Quarantined {streamed.quarantined} of {streamed.rows_in} rows")
    return Ingested(
        dataset=dataset,
        reused=not created,
        validation=summary,
        table=lambda: dataset_frame(dataset, workspace),
        combine=streamed.combine,
        columns=list(spec.columns),
    )
