"""``mlship backup [list|verify|prune]`` and ``mlship restore``: backups of a workspace, their
check, their retention, and a workspace rebuilt from one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.render import byte_size
from mlship.config import load_settings
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.backup.observer import CopyObserver
    from mlship.backup.verify import Finding

app = typer.Typer(
    help="Without a command: back the workspace up (a snapshot of its database, the artifacts "
    "and log parts not backed up yet at the destination, a manifest written last). With one: "
    "list, verify or prune the backups in a destination.",
    invoke_without_command=True,
)

Destination = Annotated[
    str | None,
    typer.Argument(
        help="The backup directory or s3://bucket/prefix; MLSHIP_BACKUP_ROOT when left out."
    ),
]
BackupRef = Annotated[
    str,
    typer.Argument(
        help="DIR/NAME, s3://bucket/prefix/NAME, or NAME in MLSHIP_BACKUP_ROOT "
        "(`mlship backup list` shows the names)."
    ),
]
KeysDir = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        help="A copy of the workspace's keys directory (<home>/keys), for a backup made "
        "without --include-keys.",
    ),
]


@app.callback()
def backup(
    ctx: typer.Context,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Directory or s3://bucket/prefix to keep the backup in; MLSHIP_BACKUP_ROOT "
            "when left out.",
        ),
    ] = None,
    include_keys: Annotated[
        bool,
        typer.Option(
            "--include-keys",
            help="Also copy the workspace's key files into the backup (whoever reads the "
            "backup can then sign models); left out, keep <home>/keys apart yourself.",
        ),
    ] = False,
) -> None:
    """Take a consistent backup of the workspace: a snapshot of its database, every artifact
    and log part not backed up already at the destination, and a manifest, written last."""
    if ctx.invoked_subcommand is not None:
        return
    from mlship.backup.place import default_root, open_place
    from mlship.backup.snapshot import take_backup
    from mlship.workspace import Workspace

    workspace = Workspace.open()
    try:
        place = open_place(default_root(workspace.settings, to), workspace.settings)
        with _progress() as observer:
            taken = take_backup(workspace, place, include_keys=include_keys, observer=observer)
    finally:
        workspace.close()
    manifest = taken.manifest
    held = len(manifest.artifacts) - manifest.copied
    out.print(f"Backup {manifest.name} written to {taken.where}", highlight=False)
    out.print(
        f"Database: {manifest.database.kind} snapshot, {byte_size(manifest.database.size)}",
        highlight=False,
    )
    out.print(
        f"Artifacts: {len(manifest.artifacts)} ({manifest.copied} copied, "
        f"{byte_size(taken.copied_bytes)}; {held} already backed up)",
        highlight=False,
    )
    out.print(f"Log parts: {len(manifest.logs)} ({taken.parts_copied} copied)", highlight=False)
    out.print(f"Keys: {'included' if manifest.keys.included else 'not included'}: "
              f"{manifest.keys.note}", highlight=False)  # fmt: skip
    if manifest.unreadable:
        table = Table(title="Artifacts not backed up")
        table.add_column("artifact")
        table.add_column("why", overflow="fold")
        for item in manifest.unreadable:
            table.add_row(item.sha256, escape(item.reason))
        out.print(table)
        raise MlshipError(
            f"{len(manifest.unreadable)} artifact(s) of the workspace could not be read and are "
            "not in the backup (listed above)"
        )


@app.command("list")
def list_backups(destination: Destination = None) -> None:
    """The backups in a destination, oldest first; an incomplete one (interrupted, or still
    being written) has no manifest and cannot be restored."""
    from mlship.backup.place import default_root, open_place
    from mlship.backup.retention import listing

    settings = load_settings()
    place = open_place(default_root(settings, destination), settings)
    found = listing(place)
    table = Table(title=f"Backups in {escape(place.where)}")
    for column in ("name", "state", "created", "database", "artifacts", "log parts", "keys"):
        table.add_column(column, no_wrap=column in ("name", "created"))
    for item in found:
        manifest = item.manifest
        if manifest is None:
            state = "[red]unreadable manifest[/]" if item.problem else "[red]incomplete[/]"
            table.add_row(item.name, state, "-", "-", "-", "-", "-")
            continue
        table.add_row(
            item.name,
            "complete",
            manifest.created,
            manifest.database.kind,
            str(len(manifest.artifacts)),
            str(len(manifest.logs)),
            "included" if manifest.keys.included else "apart",
        )
    out.print(table)
    if not found:
        out.print("No backups yet.")


@app.command("verify")
def verify(backup_ref: BackupRef, keys: KeysDir = None) -> None:
    """Check a backup without restoring it: its manifest, database snapshot, every artifact
    and log part against its checksum, and every signature against the keys (--keys, the
    backup's own, or the workspace's settings). Exit 1, with a table, when anything is wrong."""
    from mlship.backup.place import locate
    from mlship.backup.verify import verify_backup

    settings = load_settings()
    place, name = locate(backup_ref, settings)
    with _progress("Check") as observer:
        manifest, findings = verify_backup(place, name, settings, keys=keys, observer=observer)
    if findings:
        _findings(f"Backup {name}: what is wrong", findings)
        raise typer.Exit(1)
    assert manifest is not None
    out.print(
        f"Backup {name} is sound: {manifest.database.kind} database snapshot reads, "
        f"{len(manifest.artifacts)} artifacts and {len(manifest.logs)} log parts match their "
        "checksums, every signature verifies",
        highlight=False,
    )


@app.command("prune")
def prune(
    destination: Destination = None,
    keep_last: Annotated[
        int, typer.Option("--keep-last", help="Keep the newest N complete backups.")
    ] = 7,
    keep_daily: Annotated[
        int,
        typer.Option(
            "--keep-daily", help="Also keep the newest backup of each of the last D days."
        ),
    ] = 0,
) -> None:
    """Delete the backups the policy does not keep, then the artifacts no kept backup lists."""
    from mlship.backup.place import default_root, open_place
    from mlship.backup.retention import prune as prune_backups

    settings = load_settings()
    place = open_place(default_root(settings, destination), settings)
    done = prune_backups(place, keep_last, keep_daily)
    out.print(f"Kept: {', '.join(done.kept) or 'none'}", highlight=False)
    out.print(f"Removed: {', '.join(done.removed) or 'none'}", highlight=False)
    if done.leftovers:
        out.print(f"Files left by interrupted backups: {done.leftovers} deleted", highlight=False)
    if done.swept:
        out.print(
            f"Objects deleted: {done.objects_removed}; kept: {done.objects_kept}", highlight=False
        )
    else:
        out.print(
            "Objects: none deleted, a backup without a readable manifest is there (still "
            "being written, or damaged); prune again once it is complete or removed",
            highlight=False,
        )


def restore(
    backup_ref: BackupRef,
    into: Annotated[
        Path | None,
        typer.Option("--into", help="The new workspace's home (empty); MLSHIP_HOME when left out."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="An empty PostgreSQL database to restore into (a backup of a PostgreSQL "
            "workspace); SQLite in the home when left out.",
        ),
    ] = None,
    keys: KeysDir = None,
) -> None:
    """Rebuild a workspace from a backup in an empty place: keys, database, artifacts (checked
    against their checksums and signatures while copied) and log parts."""
    from mlship.backup.place import locate
    from mlship.backup.restore import restore_backup

    overrides: dict[str, object] = {}
    if into is not None:
        overrides["home"] = into
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = load_settings(**overrides)
    place, name = locate(backup_ref, load_settings())
    with _progress("Restore") as observer:
        done = restore_backup(place, name, settings, keys=keys, observer=observer)
    out.print(
        f"Restored backup {name} into {done.home}: {done.manifest.database.kind} database, "
        f"{done.artifacts} artifacts, {done.log_parts} log parts; keys from {done.keys}",
        highlight=False,
    )
    if done.failed:
        _findings("Artifacts not restored", list(done.failed))
        raise MlshipError(f"{len(done.failed)} artifact(s) could not be restored (listed above)")


def _findings(title: str, findings: list[Finding]) -> None:
    table = Table(title=title)
    table.add_column("what", no_wrap=True)
    table.add_column("problem", overflow="fold")
    for finding in findings:
        table.add_row(escape(finding.what), escape(finding.problem))
    out.print(table)


@contextmanager
def _progress(verb: str = "Back up") -> Iterator[CopyObserver]:
    """A bar per kind of object, with the bytes copied so far."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from mlship.backup.observer import CopyObserver

    class Bar(CopyObserver):
        def __init__(self, progress: Progress) -> None:
            self.progress = progress
            self.task: TaskID | None = None
            self.copied = 0

        def started(self, what: str, total: int) -> None:
            self.copied = 0
            self.task = self.progress.add_task(f"{verb} {what}", total=total, copied="")

        def advanced(self, size: int) -> None:
            self.copied += size
            if self.task is not None:
                self.progress.update(self.task, advance=1, copied=byte_size(self.copied))

        def finished(self) -> None:
            pass

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[copied]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out) as progress:
        yield Bar(progress)
