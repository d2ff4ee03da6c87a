"""``mlship models list|show``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.refs import resolve_version
from mlship.cli.render import fmt, metrics_table
from mlship.workspace import Workspace

app = typer.Typer(help="Look at registered models.", no_args_is_help=True)


@app.command("list")
def list_models() -> None:
    """Registered models with their newest version."""
    workspace = Workspace.open()
    try:
        models = workspace.metadata.list_models()
    finally:
        workspace.close()
    table = Table(title="Models")
    for name in ("model", "versions", "latest", "estimator", "holdout", "created (UTC)", "by"):
        table.add_column(name)
    for model in models:
        latest = model.versions[-1]
        holdout = latest.metrics.get("holdout", {})
        first = next(iter(holdout.items()), None)
        table.add_row(
            model.name,
            str(len(model.versions)),
            str(latest.version),
            latest.estimator,
            f"{first[0]} {fmt(first[1])}" if first else "-",
            latest.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            latest.created_by,
        )
    out.print(table)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="MODEL or MODEL:VERSION (newest by default)."),
) -> None:
    """A model version: lineage, signature, metrics and checksum."""
    workspace = Workspace.open()
    try:
        version = resolve_version(workspace, ref)
    finally:
        workspace.close()
    facts = Table(title=f"Model {version.model.name}:{version.version}", show_header=False)
    facts.add_column("field")
    facts.add_column("value")
    for key, value in (
        ("estimator", version.estimator),
        ("params", json.dumps(version.params, sort_keys=True)),
        ("run", version.run_id),
        ("dataset sha256", version.dataset_hash),
        ("artifact sha256", version.artifact_sha256),
        ("artifact bytes", str(version.artifact_size)),
        ("created (UTC)", version.created_at.isoformat(timespec="seconds")),
        ("created by", version.created_by),
    ):
        facts.add_row(key, value)
    out.print(facts)
    signature = Table(title="Input signature")
    for name in ("column", "type", "nullable", "known values"):
        signature.add_column(name)
    categories = version.signature.get("categories", {})
    for column in version.signature["inputs"]:
        known = categories.get(column["name"])
        signature.add_row(
            column["name"],
            column["type"],
            "yes" if column["nullable"] else "no",
            ", ".join(known) if known else "",
        )
    out.print(signature)
    target = version.signature["target"]
    classes = version.signature.get("classes")
    out.print(
        f"Predicts [bold]{target['name']}[/] ({version.signature['task']}"
        + (f"; classes: {', '.join(map(str, classes))})" if classes else ")")
    )
    for split, values in version.metrics.items():
        out.print(metrics_table(f"{split} metrics", values))
