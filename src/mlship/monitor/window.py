"""Windows of live traffic (the last N rows, or the rows of the last so many seconds) and the
durations they and cool-downs are written in.

Durations are strict (a whole number and one of s, m, h, d) because a cool-down of "5" could mean
seconds or minutes, and an alert that repeats every 5 seconds instead of 5 minutes is a pager storm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlship.durations import seconds_in

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_ROWS = re.compile(r"^(\d+)\s*rows?$")
_DURATION_HINT = "a whole number and a unit: 45s, 30m, 1h or 2d"


def parse_duration(text: str | int) -> float:
    """Seconds in ``"45s"``, ``"30m"``, ``"1h"`` or ``"2d"``; ``"0"`` (or 0) is zero.

    >>> parse_duration("30m")
    1800.0
    """
    if isinstance(text, int) and not isinstance(text, bool) and text == 0:
        return 0.0
    if not isinstance(text, str):
        raise ValueError(f"expected a duration: {_DURATION_HINT}")
    seconds = seconds_in(text, _UNITS)
    if seconds is None:
        raise ValueError(f"expected a duration: {_DURATION_HINT}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the units :func:`parse_duration` reads.

    >>> format_duration(5400)
    '90m'
    """
    if seconds == 0:
        return "0"
    if float(seconds).is_integer():
        for unit, size in _UNITS.items():
            if int(seconds) % size == 0:
                return f"{int(seconds) // size}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Window:
    """The slice of live traffic a metric is measured over: the last N rows or the last duration.

    Hashable, so rules over the same window share one measurement.

    >>> Window.parse("500 rows").label, Window.parse("1h").label
    ('last 500 rows', 'last 1h')
    """

    rows: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.rows is None) == (self.seconds is None):
            raise ValueError("a window is either a number of rows or a duration, exactly one")
        if self.rows is not None and self.rows <= 0:
            raise ValueError("a window needs at least 1 row")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError("a window must be longer than 0")

    @classmethod
    def parse(cls, text: str | Window) -> Window:
        """``"500 rows"`` or a duration (``"30m"``)."""
        if isinstance(text, Window):
            return text
        if isinstance(text, str):
            rows = _ROWS.match(text.strip())
            if rows is not None:
                return cls(rows=int(rows.group(1)))
            seconds = seconds_in(text, _UNITS)
            if seconds is not None and text.strip() != "0":  # "0" is a cool-down, not a window
                return cls(seconds=seconds)
        raise ValueError(f"expected a number of rows such as '500 rows' or {_DURATION_HINT}")

    @property
    def label(self) -> str:
        if self.rows is not None:
            return f"last {self.rows} row{'s' if self.rows != 1 else ''}"
        return f"last {format_duration(self.seconds or 0)}"

    def __str__(self) -> str:
        return self.label


DEFAULT_WINDOW = Window(seconds=3600)
