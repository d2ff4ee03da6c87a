"""Durations as people write them in specs, rules and options: a whole number and a unit.

One reading for every file that takes durations (``45s``, ``30m``, ``1h``, ``2d``; ``500ms`` where
a file allows it), so the same text never means two things. Each caller keeps its own units and
its own error sentence, which say what that file accepts.
"""

from __future__ import annotations

import re
from collections.abc import Collection

UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")


def seconds_in(text: str, units: Collection[str]) -> float | None:
    """Seconds in ``text`` (surrounding spaces ignored): ``"0"``, or a whole number and one of
    ``units``; None when it is neither, for the caller to say what it expected.

    >>> seconds_in("30m", ("s", "m"))
    1800.0
    """
    cleaned = text.strip()
    if cleaned == "0":
        return 0.0
    match = _DURATION.match(cleaned)
    if match is None or match.group(2) not in units:
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]
