"""Shortening text that is repeated back to people.

Answers and records echo what they were given (a bad value, a media type, an error), and a value
can be megabytes long. Every place that echoes cuts it the same way: the first characters, enough
to recognise it, and an ellipsis that says something was cut.
"""

from __future__ import annotations


def shorten(text: str, limit: int) -> str:
    """``text`` as it is when it has at most ``limit`` characters, else its first ``limit - 1``
    characters and ``…`` (so the result never exceeds ``limit``)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
