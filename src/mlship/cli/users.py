"""``mlship users`` and ``mlship tokens``: who may use a shared server, and their API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.errors import MlshipError
from mlship.workspace import Workspace

users_app = typer.Typer(help="Users of a shared server and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: created once, stored as hashes.", no_args_is_help=True)


def _when(moment: object) -> str:
    from datetime import datetime

    from mlship.store.clock import as_utc

    if not isinstance(moment, datetime):
        return "-"
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[
        str, typer.Option("--role", "-r", help="viewer, scientist, reviewer or admin.")
    ] = "viewer",
) -> None:
    """Add a user with one role."""

    workspace = Workspace.open()
    try:
        user = workspace.users.add(name, role)
    finally:
        workspace.close()
    out.print(
        f"Added user {user.name} ({user.role}); `mlship tokens create {user.name}` gives a token"
    )


@users_app.command("list")
def list_users() -> None:
    """Users, their roles and how many live tokens they have."""
    from mlship.store.clock import as_utc, utcnow

    workspace = Workspace.open()
    try:
        users = workspace.users.all()
    finally:
        workspace.close()
    now = utcnow()
    table = Table(title="Users")
    for column in ("user", "role", "status", "live tokens", "created (UTC)", "by"):
        table.add_column(column)
    for user in users:
        live = [
            t for t in user.tokens
            if t.revoked_at is None and (t.expires_at is None or as_utc(t.expires_at) > now)
        ]  # fmt: skip
        table.add_row(
            user.name,
            user.role,
            "disabled" if user.disabled else "active",
            str(len(live)),
            _when(user.created_at),
            user.created_by,
        )
    out.print(table)


def _set_disabled(name: str, disabled: bool) -> None:

    workspace = Workspace.open()
    try:
        user = workspace.users.set_disabled(name, disabled)
    finally:
        workspace.close()
    out.print(
        f"User {user.name} {'disabled: its tokens no longer work' if disabled else 'enabled'}"
    )


@users_app.command("disable")
def disable_user(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Disable a user: every token of theirs stops working at once."""
    _set_disabled(name, True)


@users_app.command("enable")
def enable_user(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Enable a disabled user again (tokens that were not revoked or expired work again)."""
    _set_disabled(name, False)


@tokens_app.command("create")
def create_token(
    user: Annotated[str, typer.Argument(help="Whose token.")],
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for.")] = "cli",
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, e.g. 30d or 12h (default: none).")
    ] = None,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from mlship.monitor.window import parse_duration

    lifetime = None
    if expires is not None:
        try:
            lifetime = timedelta(seconds=parse_duration(expires))
        except ValueError as exc:
            raise MlshipError(f"--expires: {exc}") from None
    workspace = Workspace.open()
    try:
        token = workspace.users.create_token(user, name, lifetime)
    finally:
        workspace.close()
    until = f", expires {_when(token.expires_at)} UTC" if token.expires_at else ""
    out.print(f"Token #{token.id} for {token.user} ({token.name}{until}). Shown this once:")
    out.print(token.secret, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
) -> None:
    """Tokens by their first characters (the secrets themselves are not stored)."""
    from mlship.store.clock import as_utc, utcnow

    workspace = Workspace.open()
    try:
        tokens = workspace.users.tokens(user)
    finally:
        workspace.close()
    now = utcnow()
    table = Table(title="Tokens")
    for column in (
        "id",
        "user",
        "name",
        "starts with",
        "status",
        "created",
        "expires",
        "last used",
    ):
        table.add_column(column)
    for token in tokens:
        if token.revoked_at is not None:
            status = "revoked"
        elif token.expires_at is not None and as_utc(token.expires_at) <= now:
            status = "expired"
        else:
            status = "live"
        table.add_row(
            str(token.id),
            token.user.name if token.user is not None else "",
            token.name,
            token.prefix + "...",
            status,
            _when(token.created_at),
            _when(token.expires_at),
            _when(token.last_used_at),
        )
    out.print(table)


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="Token id (`tokens list`).")],
) -> None:
    """Revoke a token at once (it stays listed, as revoked)."""

    workspace = Workspace.open()
    try:
        token = workspace.users.revoke(token_id)
    finally:
        workspace.close()
    out.print(f"Token #{token.id} ({token.prefix}...) revoked")
