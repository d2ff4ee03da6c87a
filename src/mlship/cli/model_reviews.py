"""``mlship models comment|review|rerequest|objection|requests``: reviews between people.

The commands of a review, registered on ``mlship models`` by :mod:`mlship.cli.models`: comment
(in threads), give a verdict (approve, request changes, object), answer requests for changes,
withdraw or overrule an objection, and read a model's requests with their reviews and comments.
Who acts is the settings' user, or the token's user on a server; the rules are the registry's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from mlship.cli.annotate import NoteFile, note_text
from mlship.cli.console import out
from mlship.errors import MlshipError
from mlship.registry.refs import parse_version_ref
from mlship.store.entities import Note, PromotionRequest, Review
from mlship.store.registry import Change
from mlship.workspace import Workspace

objections = typer.Typer(
    help="Objections to a promotion: withdraw your own, or overrule others' (admins).",
    no_args_is_help=True,
)

Ref = Annotated[str, typer.Argument(help="MODEL:VERSION.")]


def comment(
    ref: Ref,
    text: Annotated[str | None, typer.Argument(help="The comment, in markdown.")] = None,
    file: NoteFile = None,
    reply_to: Annotated[
        int | None, typer.Option("--reply-to", help="The comment this one answers (its #id).")
    ] = None,
    on_request: Annotated[
        bool,
        typer.Option("--on-request", help="On the version's promotion request, not the version."),
    ] = False,
) -> None:
    """Comment on a version or its promotion request, or answer a comment (--reply-to)."""
    name, version = parse_version_ref(ref)
    body = note_text(text, file)
    workspace = Workspace.open()
    try:
        added = workspace.registry.comment(name, version, body, reply_to, on_request)
    finally:
        workspace.close()
    where = f"request #{added.target_id} of " if added.target_kind == "request" else ""
    answer = f", in reply to #{added.reply_to}" if added.reply_to else ""
    out.print(f"Comment #{added.id} by {added.author} on {where}{name}:{version}{answer}")


def review(
    ref: Ref,
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve: the version goes to production.")
    ] = False,
    request_changes: Annotated[
        bool,
        typer.Option("--request-changes", help="Ask for changes; approval waits for the answer."),
    ] = False,
    object_: Annotated[
        bool,
        typer.Option("--object", help="Object: approval waits until withdrawn or overruled."),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(help="Why (required to request changes or object; a note when approving)."),
    ] = None,
) -> None:
    """Give a verdict on someone else's pending promotion request."""
    chosen = [flag for flag, on in (("approve", approve), ("changes", request_changes),
                                    ("object", object_)) if on]  # fmt: skip
    if len(chosen) != 1:
        raise MlshipError("give one verdict: --approve, --request-changes or --object")
    name, version = parse_version_ref(ref)
    workspace = Workspace.open()
    try:
        registry = workspace.registry
        if chosen == ["approve"]:
            change = registry.approve(name, version, reason)
        elif chosen == ["changes"]:
            found = registry.request_changes(name, version, reason or "")
        else:
            found = registry.raise_objection(name, version, reason or "")
    finally:
        workspace.close()
    if chosen == ["approve"]:
        report_change(change)
    elif chosen == ["changes"]:
        out.print(
            f"{found.author} asked for changes to {ref} (#{found.id}); approval waits until the "
            f"requester answers with `mlship models rerequest {ref}`"
        )
    else:
        out.print(
            f"{found.author} objects to {ref} (#{found.id}); approval waits until "
            f"{found.author} withdraws the objection or an admin overrules it"
        )


def report_change(change: Change) -> None:
    """Say what one registry change did."""
    where = f"{change.model}:{change.version}" if change.version else change.model
    if change.action == "promotion requested":
        out.print(
            f"Promotion of {where} to production requested (#{change.request_id}); another "
            f"user approves it with `mlship models approve {where}`"
        )
        return
    moved = f" ({change.from_stage} -> {change.to_stage})" if change.to_stage else ""
    replaced = f"; {change.model}:{change.replaced} archived" if change.replaced else ""
    out.print(f"{where}: {change.action}{moved}{replaced}")


def rerequest(
    ref: Ref,
    note: Annotated[str | None, typer.Option(help="What changed, for the history.")] = None,
) -> None:
    """Answer the requests for changes on your pending promotion and ask for a review again."""
    name, version = parse_version_ref(ref)
    workspace = Workspace.open()
    try:
        workspace.registry.request_review_again(name, version, note)
    finally:
        workspace.close()
    out.print(f"{ref}: requests for changes answered; the promotion waits for a review again")


@objections.command("withdraw")
def withdraw_objection(
    ref: Ref, note: Annotated[str | None, typer.Option(help="Why, for the history.")] = None
) -> None:
    """Withdraw your own objection to a version."""
    name, version = parse_version_ref(ref)
    workspace = Workspace.open()
    try:
        closed = workspace.registry.withdraw_objection(name, version, note)
    finally:
        workspace.close()
    for review in closed:
        out.print(f"{review.closed_by} withdrew objection #{review.id} to {ref}")


@objections.command("overrule")
def overrule_objections(
    ref: Ref, reason: Annotated[str, typer.Option(help="Why, recorded in the history.")]
) -> None:
    """Overrule the open objections of others to a version (an admin, not the requester)."""
    name, version = parse_version_ref(ref)
    workspace = Workspace.open()
    try:
        closed = workspace.registry.overrule_objections(name, version, reason)
    finally:
        workspace.close()
    for review in closed:
        out.print(f"{review.closed_by} overruled {review.author}'s objection #{review.id} to {ref}")


def requests(
    model: Annotated[str, typer.Argument(help="MODEL.")],
    version: Annotated[
        int | None, typer.Option(help="Only this version's requests and comments.")
    ] = None,
) -> None:
    """A model's promotion requests with their reviews, and the comments on each version."""
    workspace = Workspace.open()
    try:
        registry = workspace.registry
        found = [r for r in registry.requests(model) if version in (None, r.version)]
        reviews = [r for r in registry.reviews(model) if version in (None, r.version)]
        numbers = sorted({r.version for r in found} | ({version} if version else set()))
        threads = {number: registry.comments(model, number) for number in numbers}
    finally:
        workspace.close()
    out.print(_requests_table(model, found, reviews))
    for number, comments in threads.items():
        if comments:
            out.print(thread_tree(f"Comments on {model}:{number}", comments))


def _requests_table(
    model: str, found: Sequence[PromotionRequest], reviews: Sequence[Review]
) -> Table:
    table = Table(title=f"Promotion requests of {model}")
    for name in ("#", "version", "by", "when (UTC)", "status", "reviews", "reason / decision"):
        table.add_column(name, overflow="fold")
    by_request: dict[int, list[Review]] = defaultdict(list)
    for item in reviews:
        by_request[item.request_id].append(item)
    for request in found:
        said = "\n".join(
            f"#{r.id} {r.verdict} by {r.author}: {r.reason} [{_ending(r)}]"
            for r in by_request[request.id]
        )
        decided = f"{request.decided_by}: {request.note or '-'}" if request.decided_by else ""
        table.add_row(
            str(request.id),
            str(request.version),
            request.requested_by,
            request.requested_at.strftime("%Y-%m-%d %H:%M"),
            request.status,
            escape(said) or "-",
            escape("\n".join(part for part in (request.reason or "", decided) if part)) or "-",
        )
    return table


def _ending(review: Review) -> str:
    if review.status == "open":
        return "open"
    why = f": {review.closing_note}" if review.closing_note else ""
    return f"{review.status} by {review.closed_by}{why}"


def thread_tree(title: str, comments: Sequence[Note]) -> Tree:
    """Comments as a tree: each reply under the comment it answers, in the order written."""
    tree = Tree(title)
    nodes: dict[int, Tree] = {}
    for note in comments:
        parent = nodes.get(note.reply_to or 0, tree)
        on = f" (on request #{note.target_id})" if note.target_kind == "request" else ""
        when = note.created_at.strftime("%Y-%m-%d %H:%M")
        nodes[note.id] = parent.add(
            f"[bold]#{note.id} {escape(note.author)}[/], {when} UTC{on}\n{escape(note.body)}"
        )
    return tree
