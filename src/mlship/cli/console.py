"""Shared console output: one stdout console for results, one stderr console for errors."""

from __future__ import annotations

from rich.console import Console

out = Console()
err = Console(stderr=True)
