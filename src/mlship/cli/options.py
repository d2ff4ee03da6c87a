"""Command-line options that several commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OutputDir = Annotated[
    Path | None, typer.Option("--output", "-o", help="Directory for the JSON and HTML.")
]
"""Where a command writes a report; ``<home>/reports`` when not given."""

TlsCert = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        help="PEM certificate (chain included) to serve HTTPS with; needs --tls-key.",
        show_default=False,
    ),
]
"""The certificate of a server that speaks HTTPS (see ``mlship.security.tls``)."""

TlsKey = Annotated[
    Path | None,
    typer.Option(
        "--tls-key", help="PEM private key of --tls-cert (no passphrase).", show_default=False
    ),
]
"""The private key of that certificate."""
