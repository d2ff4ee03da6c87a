"""Windows of live traffic: the last N rows, or the rows of the last so many seconds."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_ROWS = re.compile(r"^\s*(\d+)\s*rows?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``"90s"``, ``"30m"``, ``"1h"``, ``"2d"`` (``"0"`` is zero)."""
    if text.strip() == "0":
        return 0.0
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; expected a number and s, m, h or d (30m, 1h)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Window:
    """Exactly one of ``rows`` (the newest rows) or ``seconds`` (rows newer than now minus this)."""

    rows: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.rows is None) == (self.seconds is None):
            raise ValueError("a window is either a number of rows or a duration, not both or none")
        if self.rows is not None and self.rows < 1:
            raise ValueError(f"a window needs at least 1 row, got {self.rows}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"a window needs a positive duration, got {self.seconds} s")

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"500 rows"`` or a duration such as ``"1h"``."""
        match = _ROWS.match(text)
        if match is not None:
            return cls(rows=int(match.group(1)))
        try:
            return cls(seconds=parse_duration(text))
        except ValueError:
            raise ValueError(
                f"{text!r} is not a window; expected a number of rows (500 rows) or a duration "
                "(30m, 1h, 7d)"
            ) from None

    @property
    def label(self) -> str:
        if self.rows is not None:
            return f"last {self.rows} rows"
        assert self.seconds is not None
        return f"last {format_duration(self.seconds)}"
