"""The one error type of the scoring path: a request the server cannot score."""

from __future__ import annotations


class ScoringError(Exception):
    """A request the server cannot score: the HTTP status and one readable line per problem.

    Each protocol's exception handler turns it into that protocol's error body, so the same
    problem reads the same whichever endpoint was called.
    """

    def __init__(self, status: int, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.status = status
        self.errors = errors
