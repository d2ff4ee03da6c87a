"""Pieces of the messages every reader writes: a library's error on one line, a JSON value's kind.

Every failure is a :class:`~mlship.errors.DataError` whose message starts with the source's
description, ``label (location)``; these helpers phrase what follows it.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of a library's message, or its class when it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def json_kind(value: object) -> str:
    """What a JSON value that is not an object is, with its article: ``an array``, ``null``."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
