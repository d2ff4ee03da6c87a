"""``mlship data validate|profile|list|show|diff``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.options import OutputDir
from mlship.cli.render import fmt, print_validation
from mlship.errors import DataError
from mlship.spec import load_spec
from mlship.workspace import Workspace

if TYPE_CHECKING:
    import polars as pl

    from mlship.data.dataset_profile import DatasetProfile
    from mlship.store.entities import Dataset

app = typer.Typer(help="Validate, profile and compare datasets.", no_args_is_help=True)


@app.command("validate")
def validate_command(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
) -> None:
    """Ingest and check the spec's sources; store the dataset and write the data report."""
    from mlship.cli.progress import IngestProgress
    from mlship.data.ingest import ingest

    loaded = load_spec(spec)
    workspace = Workspace.open()
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            console=out,
        ) as progress:
            result = ingest(loaded, workspace, IngestProgress(progress))
    finally:
        workspace.close()
    reuse = " (inputs unchanged: stored dataset reused)" if result.reused else ""
    out.print(f"Dataset {result.dataset.data_hash[:12]}: {result.dataset.n_rows} rows{reuse}")
    print_validation(result.validation)


def _profile_of(workspace: Workspace, dataset: Dataset) -> DatasetProfile:
    import polars as pl

    from mlship.data.dataset_profile import DatasetProfile
    from mlship.data.profile import profile_of

    if dataset.profile_sha256:
        stored = json.loads(workspace.artifacts.get_bytes(dataset.profile_sha256))
        return DatasetProfile.from_json(stored)
    frame = pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))
    return profile_of(frame)


def _frame_of(workspace: Workspace, dataset: Dataset) -> pl.DataFrame:
    import polars as pl

    return pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))


def _read_any(path: Path) -> pl.DataFrame:
    import polars as pl

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix == ".csv":
            return pl.read_csv(path, try_parse_dates=True, infer_schema_length=10_000)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path)
        if suffix == ".json":
            return pl.read_json(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    raise DataError(f"{path}: unsupported file type {suffix!r}; use csv, parquet, json or jsonl")


@app.command("profile")
def profile_command(
    target: Annotated[
        str, typer.Argument(help="A dataset hash (prefix), PIPELINE[~N], or a data file.")
    ],
    output: OutputDir = None,
) -> None:
    """Per-column statistics as JSON and a self-contained HTML report with charts."""
    from mlship.data.profile import profile_of
    from mlship.data.report import write_report

    workspace = Workspace.open()
    try:
        path = Path(target)
        if path.is_file():
            name, profile = path.stem, profile_of(_read_any(path))
        else:
            dataset = workspace.datasets.get_dataset(target)
            name, profile = f"dataset-{dataset.data_hash[:12]}", _profile_of(workspace, dataset)
        directory = output or workspace.settings.home_resolved / "reports"
    finally:
        workspace.close()
    json_path, html_path = write_report(directory, f"{name}-profile", profile)
    out.print(f"Profiled {profile.rows} rows × {len(profile.columns)} columns")
    out.print(f"HTML: {html_path}\nJSON: {json_path}")


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
) -> None:
    """Stored datasets, newest first."""
    workspace = Workspace.open()
    try:
        datasets = workspace.datasets.list_datasets(limit)
    finally:
        workspace.close()
    table = Table(title="Datasets")
    for name in ("dataset", "pipeline", "rows", "columns", "quarantined", "created (UTC)"):
        table.add_column(
            name, justify="right" if name in ("rows", "columns", "quarantined") else "left"
        )
    for dataset in datasets:
        table.add_row(
            dataset.data_hash[:12],
            dataset.pipeline or "-",
            str(dataset.n_rows),
            str(dataset.n_columns),
            str(dataset.n_quarantined),
            dataset.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(table)


@app.command("show")
def show_command(
    ref: Annotated[
        str,
        typer.Argument(
            help="Dataset hash (or prefix), or PIPELINE[~N]: its newest dataset, or N before."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the dataset's record as one JSON object.")
    ] = False,
) -> None:
    """A dataset's lineage, schema, validation and statistics."""
    from mlship.data.lineage import FileLineage, QueryLineage, lineage_from_json

    workspace = Workspace.open()
    try:
        dataset = workspace.datasets.get_dataset(ref)
        if as_json:
            from mlship.store.entities import to_json

            typer.echo(json.dumps(to_json(dataset), sort_keys=True))
            return
        profile = _profile_of(workspace, dataset)
    finally:
        workspace.close()
    facts = Table(title=f"Dataset {dataset.data_hash}", show_header=False)
    facts.add_column("field")
    facts.add_column("value", overflow="fold")
    for key, value in (
        ("pipeline", dataset.pipeline or "-"),
        ("rows × columns", f"{dataset.n_rows} × {dataset.n_columns}"),
        ("quarantined rows", str(dataset.n_quarantined)),
        ("parquet sha256", dataset.artifact_sha256),
        ("spec sha256", dataset.spec_hash or "-"),
        ("code version", dataset.code_version or "-"),
        ("created (UTC)", dataset.created_at.isoformat(timespec="seconds")),
    ):
        facts.add_row(key, value)
    out.print(facts)
    sources = Table(title="Sources (lineage)")
    for name in ("source", "kind", "location", "rows", "sha256"):
        sources.add_column(name)
    for source in map(lineage_from_json, dataset.sources):
        if isinstance(source, FileLineage):
            location, sha256 = source.path, source.sha256[:12]
        elif isinstance(source, QueryLineage):
            location, sha256 = f"{source.url} {source.query}", "-"
        else:
            since = source.since or "the first event"
            location = f"{source.location}, {since} to {source.until}"
            sha256 = source.fingerprint[:12]
        sources.add_row(source.name, source.kind, location, str(source.rows), sha256)
    out.print(sources)
    increment = (dataset.validation or {}).get("increment")
    if increment:
        from mlship.cli.increments import print_increment

        print_increment(increment)
    columns = Table(title="Columns")
    for name in ("column", "type", "missing", "distinct", "mean", "min", "max"):
        columns.add_column(name)
    for column in profile.columns:
        columns.add_row(
            column.name,
            column.dtype,
            f"{column.missing_share:.1%}",
            str(column.distinct),
            _num(column.mean),
            _num(column.min),
            _num(column.max),
        )
    out.print(columns)
    if dataset.validation:
        print_validation(dataset.validation)


def _num(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else fmt(value, 3)
    return "" if value is None else str(value)


@app.command("diff")
def diff_command(
    first: Annotated[
        str, typer.Argument(help="Dataset hash (prefix) or PIPELINE[~N]: the baseline.")
    ],
    second: Annotated[
        str, typer.Argument(help="Dataset hash (prefix) or PIPELINE[~N] to compare with it.")
    ],
) -> None:
    """Schema and statistics differences between two datasets."""
    from mlship.data.profile import column_stabilities, diff_profiles
    from mlship.data.stability import PSI_MAX

    workspace = Workspace.open()
    try:
        a, b = workspace.datasets.get_dataset(first), workspace.datasets.get_dataset(second)
        # The index needs the values (deciles, every label), not just the stored profiles.
        stabilities = column_stabilities(_frame_of(workspace, a), _frame_of(workspace, b))
        diff = diff_profiles(
            _profile_of(workspace, a).to_json(), _profile_of(workspace, b).to_json(), stabilities
        )
    finally:
        workspace.close()
    out.print(
        f"Dataset {a.data_hash[:12]} ({a.n_rows} rows) -> {b.data_hash[:12]} ({b.n_rows} rows)"
    )
    for label in ("added", "removed"):
        if diff[label]:
            out.print(f"Columns {label}: {', '.join(diff[label])}")
    for change in diff["dtype_changed"]:
        out.print(f"Column {change['column']}: type {change['a']} -> {change['b']}")
    table = Table(title="Shared columns (a → b where they differ)")
    for name in ("column", "missing", "distinct", "mean", "min", "max", "PSI"):
        table.add_column(name, justify="left" if name == "column" else "right")
    for column in diff["columns"]:
        psi = column.get("psi")
        style = "red" if psi is not None and psi > 0.2 else None
        table.add_row(
            column["name"],
            _pair(column["missing_share"], share=True),
            _pair(column["distinct"]),
            _pair(column.get("mean")),
            _pair(column.get("min")),
            _pair(column.get("max")),
            "-" if psi is None else f"{psi:.3f}",
            style=style,
        )
    out.print(table)
    out.print(
        "PSI above 0.2 (red) is usually read as a significant shift; "
        f"{PSI_MAX:.1f} means the values do not overlap at all."
    )


def _pair(change: dict[str, Any] | None, share: bool = False) -> str:
    if not change:
        return "-"

    def one(value: Any) -> str:
        if share and isinstance(value, float):
            return f"{value:.1%}"
        return _num(value) or "-"

    before, after = one(change.get("a")), one(change.get("b"))
    return before if before == after else f"{before} → {after}"
