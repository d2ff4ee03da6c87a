"""Progress of a walk over every stored artifact (a key rotation, an encrypt-all, a sign-all).

Its own module because both the rotation and the signing walk report through it, and neither
should import the other for it.
"""

from __future__ import annotations


class RotationObserver:
    """Hooks a front end uses to show a rotation's progress; the defaults do nothing."""

    def started(self, total: int, key: str) -> None:
        """``total`` artifacts will be looked at; ``key`` is the id they move under."""

    def advanced(self, sha256: str, moved: bool) -> None:
        """One artifact is done: re-encrypted (``moved``) or already under the key."""
