"""Command-line options that several commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OutputDir = Annotated[
    Path | None, typer.Option("--output", "-o", help="Directory for the JSON and HTML.")
]
"""Where a command writes a report; ``<home>/reports`` when not given."""
