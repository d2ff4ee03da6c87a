"""``mlship models``: look at registered models, move versions through their stages, review."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli import model_reviews
from mlship.cli.annotate import (
    NoteFile,
    OwnerFilter,
    TagFilter,
    note_text,
    parse_pairs,
    print_notes,
    show_tags,
)
from mlship.cli.console import out
from mlship.cli.model_reviews import objections, report_change
from mlship.cli.options import OutputDir
from mlship.cli.render import fmt, metrics_table, name_column, number_column
from mlship.errors import MlshipError
from mlship.registry.refs import parse_model_ref, parse_version_ref, resolve_version
from mlship.store.entities import model_of
from mlship.train.details import RunDetails
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from mlship.store.entities import ModelVersion
    from mlship.store.registry import Change, Registry

app = typer.Typer(
    help="Registered models: look, stage, review, roll back, compare, annotate, document.",
    no_args_is_help=True,
)


@app.command("list")
def list_models(owner: OwnerFilter = None, tag: TagFilter = None) -> None:
    """Registered models with their newest version."""
    workspace = Workspace.open()
    try:
        models = workspace.catalogue.list_models(owner=owner, tags=parse_pairs(tag or []))
        selection_metrics = {
            run_id: workspace.runs.get_run(run_id).metric
            for run_id in {model.versions[-1].run_id for model in models}
        }
    finally:
        workspace.close()
    table = Table(title="Models")
    name_column(table, "model")
    for name in ("versions", "latest"):
        number_column(table, name)
    for name in ("production", "staging", "estimator", "selected by"):
        table.add_column(name, overflow="fold")
    number_column(table, "cv")
    number_column(table, "test")
    for name in ("created (UTC)", "by", "owner", "tags"):
        table.add_column(name, overflow="fold")
    for model in models:
        latest = model.versions[-1]
        metric = selection_metrics.get(latest.run_id)
        cv = latest.metrics.get("cv", {}).get(metric) if metric else None
        test = latest.metrics.get("holdout", {}).get(metric) if metric else None

        def in_stage(stage: str, versions: Sequence[ModelVersion] = model.versions) -> str:
            return ", ".join(str(v.version) for v in versions if v.stage == stage) or "-"

        table.add_row(
            model.name,
            str(len(model.versions)),
            str(latest.version),
            in_stage("production"),
            in_stage("staging"),
            latest.estimator.rsplit(".", 1)[-1],
            metric or "-",
            fmt(cv),
            fmt(test),
            latest.created_at.strftime("%Y-%m-%d %H:%M"),
            latest.created_by,
            model.owner,
            show_tags(model.tags),
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
        notes = workspace.registry.version_notes(model_of(version).name, version.version)
        fitted_on = RunDetails.from_json(workspace.runs.get_run(version.run_id).details).fitted_on
    finally:
        workspace.close()
    facts = Table(title=f"Model {model_of(version).name}:{version.version}", show_header=False)
    facts.add_column("field")
    facts.add_column("value", overflow="fold")
    for key, value in (
        ("estimator", version.estimator),
        ("params", json.dumps(version.params, sort_keys=True)),
        ("run", version.run_id),
        ("fitted on", fitted_on.sentence() if fitted_on else "-"),
        ("dataset sha256", version.dataset_hash),
        ("artifact sha256", version.artifact_sha256),
        ("artifact bytes", str(version.artifact_size)),
        ("created (UTC)", version.created_at.isoformat(timespec="seconds")),
        ("created by", version.created_by),
        ("model owner", model_of(version).owner),
        ("stage", version.stage),
        ("description", version.description or "-"),
        ("tags", show_tags(version.tags)),
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
    print_notes(notes)


def _change(act: Callable[[Registry], Change]) -> None:
    """Run one registry change (as the settings' user, or the token's on a server), and say
    what it did."""

    workspace = Workspace.open()
    try:
        change = act(workspace.registry)
    finally:
        workspace.close()
    report_change(change)


@app.command("promote")
def promote(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION.")],
    to: Annotated[
        str, typer.Option("--to", help="staging, production (needs an approval) or archived.")
    ] = "staging",
    reason: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
) -> None:
    """Move a version to staging or archived, or request its promotion to production."""
    name, version = parse_version_ref(ref)
    if to == "production":
        _change(lambda registry: registry.request_promotion(name, version, reason))
    else:
        _change(lambda registry: registry.set_stage(name, version, to, reason))  # type: ignore[arg-type]


@app.command("approve")
def approve(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION with a pending promotion request.")],
    note: Annotated[str | None, typer.Option(help="A note for the history.")] = None,
) -> None:
    """Approve a pending promotion (not your own): the version goes to production."""
    name, version = parse_version_ref(ref)
    _change(lambda registry: registry.approve(name, version, note))


@app.command("reject")
def reject(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION with a pending promotion request.")],
    note: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
) -> None:
    """Turn down someone else's pending promotion (the requester withdraws it instead)."""
    name, version = parse_version_ref(ref)
    _change(lambda registry: registry.reject(name, version, note))


@app.command("withdraw")
def withdraw(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION with your pending promotion request.")],
    note: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
) -> None:
    """Take back your own pending promotion request."""
    name, version = parse_version_ref(ref)
    _change(lambda registry: registry.withdraw(name, version, note))


@app.command("rollback")
def rollback(
    model: Annotated[str, typer.Argument(help="MODEL.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
) -> None:
    """Put back the version that was in production before the current one."""
    _change(lambda registry: registry.rollback(model, reason))


@app.command("tag")
def tag(
    ref: Annotated[str, typer.Argument(help="MODEL (the model) or MODEL:VERSION.")],
    tags: Annotated[list[str], typer.Argument(help="KEY=VALUE to set, KEY- to remove.")],
) -> None:
    """Set or remove tags of a model or a version."""
    name, version = parse_model_ref(ref)
    changes: dict[str, str | None] = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if sep:
            changes[key] = value
        elif item.endswith("-") and len(item) > 1:
            changes[item[:-1]] = None
        else:
            raise MlshipError(f"bad tag {item!r}: expected KEY=VALUE, or KEY- to remove one")
    _change(lambda registry: registry.tag(name, version, changes))


@app.command("describe")
def describe(
    ref: Annotated[str, typer.Argument(help="MODEL (the model) or MODEL:VERSION.")],
    text: Annotated[str, typer.Argument(help="The description.")],
) -> None:
    """Set the description of a model or a version."""
    name, version = parse_model_ref(ref)
    _change(lambda registry: registry.describe(name, version, text))


@app.command("owner")
def owner(
    model: Annotated[str, typer.Argument(help="MODEL.")],
    user: Annotated[str, typer.Argument(help="Who owns the model from now on.")],
) -> None:
    """Hand a model over to another owner (recorded in its history)."""
    _change(lambda registry: registry.set_owner(model, user))


@app.command("note")
def note(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION.")],
    text: Annotated[str | None, typer.Argument(help="The note, in markdown.")] = None,
    file: NoteFile = None,
) -> None:
    """Add a markdown note to a version (notes are kept in order and never edited)."""

    name, version = parse_version_ref(ref)
    body = note_text(text, file)
    workspace = Workspace.open()
    try:
        added = workspace.registry.add_note(name, version, body)
    finally:
        workspace.close()
    out.print(f"Note #{added.id} added to {name}:{version} by {added.author}")


app.command("comment")(model_reviews.comment)
app.command("review")(model_reviews.review)
app.command("rerequest")(model_reviews.rerequest)
app.command("requests")(model_reviews.requests)
app.add_typer(objections, name="objection")


@app.command("card")
def card(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION, MODEL (newest) or MODEL@STAGE.")],
    output: OutputDir = None,
) -> None:
    """Write a version's model card (Markdown and self-contained HTML) from the stored data:
    intended use, limitations, lineage, metrics and fairness slices."""
    from mlship.registry.card import build_card
    from mlship.registry.card_page import write_card

    workspace = Workspace.open()
    try:
        found = build_card(workspace, resolve_version(workspace, ref))
        directory = output or workspace.settings.home_resolved / "reports"
    finally:
        workspace.close()
    md_path, html_path = write_card(directory, found)
    flagged = [piece for piece in (found.slices.slices if found.slices else []) if piece.flagged]
    if found.slices is not None:
        out.print(
            f"Fairness: {len(found.slices.slices)} slices over {', '.join(found.slices.columns)}"
            f"; {len(flagged)} flagged"
        )
    for item in found.measured:
        out.print(f"- {escape(item)}")
    out.print(f"Markdown: {md_path}\nHTML: {html_path}")


@app.command("history")
def history(model: Annotated[str, typer.Argument(help="MODEL.")]) -> None:
    """Every change of a model: registrations, stage moves, reviews, tags; who and when."""

    workspace = Workspace.open()
    try:
        events = workspace.registry.history(model)
    finally:
        workspace.close()
    table = Table(title=f"History of {model}")
    for name in ("when (UTC)", "version", "action", "stage", "by", "details"):
        table.add_column(name)
    for event in events:
        moved = f"{event.from_stage or '-'} -> {event.to_stage}" if event.to_stage else ""
        details = ", ".join(f"{k}={v}" for k, v in event.details.items())
        table.add_row(
            event.at.strftime("%Y-%m-%d %H:%M:%S"),
            str(event.version or "-"),
            event.action,
            moved,
            event.user,
            details,
        )
    out.print(table)


@app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="MODEL:VERSION or MODEL@STAGE.")],
    b: Annotated[str, typer.Argument(help="MODEL:VERSION or MODEL@STAGE.")],
    everything: Annotated[
        bool, typer.Option("--all", help="Also list the fields that are the same.")
    ] = False,
) -> None:
    """Compare two versions: estimator and parameters, metrics, data lineage, inputs."""
    from mlship.registry.diff import diff_versions

    workspace = Workspace.open()
    try:
        found = diff_versions(
            workspace.runs, resolve_version(workspace, a), resolve_version(workspace, b)
        )
    finally:
        workspace.close()
    table = Table(title=f"{found.a} -> {found.b}")
    for name in ("section", "field", found.a, found.b, "change"):
        table.add_column(name, overflow="fold")
    rows = found.rows if everything else found.changed()
    for row in rows:
        delta = row.delta
        change = f"{delta:+.4g}" if delta is not None else ("changed" if row.changed else "")
        table.add_row(row.section, row.name, _cell(row.a), _cell(row.b), change)
    out.print(table)
    if not rows:
        out.print("The two versions are the same in every compared field.")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@app.command("sign")
def sign_versions(
    refs: Annotated[list[str] | None, typer.Argument(help="MODEL:VERSION to sign.")] = None,
    unsigned: Annotated[
        bool, typer.Option("--all-unsigned", help="Sign every version that has no signature.")
    ] = False,
) -> None:
    """Sign versions registered before artifacts were signed, after checking their checksums."""
    import hashlib

    workspace = Workspace.open()
    try:
        if unsigned:
            versions = [
                workspace.catalogue.get_version(m.name, v.version)
                for m in workspace.catalogue.list_models() for v in m.versions
                if v.artifact_signature is None
            ]  # fmt: skip
        else:
            versions = [workspace.catalogue.get_version(*parse_version_ref(r)) for r in refs or []]
        if not versions:
            raise MlshipError("nothing to sign: give MODEL:VERSION or --all-unsigned")
        registry = workspace.registry
        for version in versions:
            ref = f"{model_of(version).name}:{version.version}"
            if version.artifact_signature is not None:
                if workspace.remote is None:  # a server checks signatures with its own key
                    what = f"model {ref}"
                    signature = version.artifact_signature
                    workspace.signer.verify(version.artifact_sha256, signature, what)
                out.print(f"{ref}: already signed")
                continue
            data = workspace.artifacts.get_bytes(version.artifact_sha256)
            if hashlib.sha256(data).hexdigest() != version.artifact_sha256:
                raise MlshipError(f"{ref}: the artifact does not match its checksum; not signed")
            change = registry.record_signature(
                model_of(version).name, version.version,
                workspace.artifact_signature(version.artifact_sha256),
            )  # fmt: skip
            report_change(change)
    finally:
        workspace.close()
