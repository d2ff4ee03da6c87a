"""``mlship keys``: the keys artifacts are encrypted under, their rotation, encrypting
artifacts stored before encryption was turned on, and signing those stored before signing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.config import load_settings
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.security.progress import RotationObserver
    from mlship.security.rotation import Moved

app = typer.Typer(
    help="Artifact encryption keys (status, rotation), artifact signatures and the public "
    "signing key.",
    no_args_is_help=True,
)


@app.command("public")
def public() -> None:
    """Print the Ed25519 public key that verifies this workspace's models (MLSHIP_VERIFY_KEY
    for a bundle's server or a client); only with signing_scheme = "ed25519"."""
    from mlship.workspace import Workspace

    workspace = Workspace.open()
    try:
        if workspace.remote is not None:
            text = workspace.remote.get("/models/signing-key")["public_key"]
        else:
            text = workspace.signer.public_text()
    finally:
        workspace.close()
    if text is None:
        raise MlshipError(
            "this workspace signs with an HMAC key, which has no public half; set "
            'MLSHIP_SIGNING_SCHEME=ed25519 (or signing_scheme = "ed25519" in mlship.toml)'
        )
    out.print(text)


@app.command("status")
def status() -> None:
    """The current key, the keyring, how many artifacts and log parts are under each key or in
    plaintext, and how many artifacts are unsigned."""
    from mlship.security.rotation import DAMAGED, census

    settings = load_settings()
    found = census(settings)
    state = "on" if settings.encrypt_artifacts else "off"
    out.print(f"Encryption of new artifacts: {state}")
    out.print(f"Current key: {found.current or 'none'} ({found.source})")
    table = Table(title="Artifacts and log parts by key")
    for column in ("key", "role", "artifacts"):
        table.add_column(column)
    for held in found.keyring:
        role = "current" if held == found.current else "kept for reading"
        table.add_row(held, role, str(found.files.get(held, 0)))
    for kid, count in sorted(found.files.items(), key=lambda item: str(item[0])):
        if kid == DAMAGED:
            table.add_row(
                kid, "[red]unreadable: `mlship keys encrypt-all` lists them[/]", str(count)
            )
        elif kid is not None and kid not in found.keyring:
            table.add_row(kid, "[red]not in the keyring[/]", str(count))
    table.add_row("plaintext", "-", str(found.files.get(None, 0)))
    out.print(table)
    unsigned, total = found.unsigned, found.artifacts
    if unsigned:
        out.print(
            f"[red]Unsigned artifacts: {unsigned} of {total}[/] (refused when read; "
            "`mlship keys sign-all` signs them)"
        )
    else:
        out.print(f"Signed artifacts: {total} of {total}")
    _missing(settings)


def _missing(settings: Settings) -> None:
    """How many artifacts the metadata names are not in the store (in a local workspace, whose
    database this process can open)."""
    from mlship.store.gc import collected_store
    from mlship.store.references import named
    from mlship.workspace import Workspace

    workspace = Workspace.open(settings)
    try:
        if workspace.remote is not None:
            return
        with workspace.metadata.transaction() as session:
            wanted = named(session)
        store = collected_store(settings)
        missing = sorted(sha256 for sha256 in wanted if not store.exists(sha256))
    finally:
        workspace.close()
    if missing:
        out.print(
            f"[red]Missing artifacts: {len(missing)} of {len(wanted)} the metadata names[/] "
            f"(first: {missing[0]})"
        )
    else:
        out.print(f"Missing artifacts: 0 of {len(wanted)} the metadata names")


@app.command("rotate")
def rotate() -> None:
    """Make a new key current and re-encrypt every artifact under it; the old key is retired
    when every file has moved. Interrupted, run it again: it resumes."""
    from mlship.security.rotation import rotate as rotate_keys

    settings = load_settings()
    with _progress("Re-encrypt under") as observer:
        done = rotate_keys(settings, observer)
    _report(done)


@app.command("encrypt-all")
def encrypt_all() -> None:
    """Re-encrypt under the current key every artifact not under it yet (plaintext files
    stored before encryption was turned on, and files under older keys)."""
    from mlship.security.rotation import encrypt_all as encrypt_everything

    settings = load_settings()
    with _progress("Re-encrypt under") as observer:
        done = encrypt_everything(settings, observer)
    _report(done)


@app.command("sign-all")
def sign_all() -> None:
    """Sign every artifact stored before the store signed what it wrote, after checking its
    checksum; the store refuses to read an unsigned artifact. A signature that does not verify
    is reported and left as it is."""
    from mlship.security.store_signing import sign_all as sign_everything
    from mlship.store.artifacts import LocalArtifactStore
    from mlship.store.s3 import S3ArtifactStore
    from mlship.workspace import Workspace

    workspace = Workspace.open()
    try:
        if workspace.remote is not None:
            raise MlshipError(
                "`mlship keys sign-all` signs the artifact store itself, a directory or a "
                "bucket; run it on the tracking server's host (without MLSHIP_URL)"
            )
        store = workspace.artifacts
        assert isinstance(store, LocalArtifactStore | S3ArtifactStore)
        with _progress("Sign with") as observer:
            done = sign_everything(store, observer)
    finally:
        workspace.close()
    out.print(f"Artifacts signed: {done.signed}; already signed: {done.already}")
    for sha256, message in done.failed:
        out.print(f"[red]failed[/] {sha256}: {message}", highlight=False)
    if done.failed:
        raise MlshipError(f"{len(done.failed)} artifact(s) could not be signed (listed above)")


@contextmanager
def _progress(verb: str) -> Iterator[RotationObserver]:
    """A progress bar over the artifacts (rich and the rotation code load when a command runs)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mlship.security.progress import RotationObserver

    class Bar(RotationObserver):
        def __init__(self, progress: Progress) -> None:
            self.progress = progress

        def started(self, total: int, key: str) -> None:
            self.task = self.progress.add_task(f"{verb} {key}", total=total)

        def advanced(self, sha256: str, moved: bool) -> None:
            self.progress.advance(self.task)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=out) as progress:
        yield Bar(progress)


def _report(done: Moved) -> None:
    made = "new key" if done.new_key else "key"
    out.print(
        f"Artifacts under {made} {done.key}: {done.moved} re-encrypted, "
        f"{done.skipped} already under it"
    )
    if done.retired:
        out.print(f"Retired from the keyring: {', '.join(done.retired)}")
    if done.failed:
        for sha256, message in done.failed:
            out.print(f"[red]failed[/] {sha256}: {message}", highlight=False)
    if done.remaining:
        left = ", ".join(
            f"{count} {'in plaintext' if kid is None else f'under {kid}'}"
            for kid, count in done.remaining.items()
        )
        raise MlshipError(
            f"not every artifact is under key {done.key} yet ({left}); older keys stay in the "
            "keyring. Fix what failed and run the command again: it resumes"
        )
