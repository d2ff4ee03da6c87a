"""What the run and model commands share about annotations: ``key=value`` tags and filters,
note text from the command line or a file, and notes printed as rendered markdown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel

from mlship.cli.console import out
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.store.entities import Note

TagFilter = Annotated[
    list[str] | None,
    typer.Option("--tag", help="Only those with this tag, as KEY=VALUE (repeat for several)."),
]
OwnerFilter = Annotated[str | None, typer.Option("--owner", help="Only those owned by USER.")]
NoteFile = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Read the note (markdown) from this file instead."),
]


def parse_pairs(items: Sequence[str], what: str = "tag") -> dict[str, str]:
    """``["team=growth", "ticket=ML-7"]`` -> ``{"team": "growth", "ticket": "ML-7"}``."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MlshipError(f"bad {what} {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = value
    return pairs


def note_text(text: str | None, file: Path | None) -> str:
    """The note given as an argument or in a file (exactly one of them)."""
    if (text is None) == (file is None):
        raise MlshipError("give the note as TEXT or with --file FILE (one of them)")
    if file is None:
        return text or ""
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MlshipError(f"cannot read the note file {file}: {exc}") from None


def show_tags(tags: dict[str, object] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((tags or {}).items())) or "-"


def print_notes(notes: Sequence[Note]) -> None:
    """Each note as rendered markdown in a panel titled with its author and time."""
    if not notes:
        return
    from rich.markdown import Markdown

    out.print(f"Notes ({len(notes)})")
    for note in notes:
        when = note.created_at.strftime("%Y-%m-%d %H:%M:%S")
        answer = f", in reply to #{note.reply_to}" if note.reply_to else ""
        title = f"#{note.id} {note.author}, {when} UTC{answer}"
        out.print(Panel(Markdown(note.body), title=title, title_align="left"))
