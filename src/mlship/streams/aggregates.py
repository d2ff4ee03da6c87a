"""The aggregations of stream features, as pure functions of a window's entries.

The online path (state in Redis) and the offline path (the landed history) both end in
:func:`aggregate`, with the same entries in whatever order they hold them, so the two agree to
the bit: sums and means add with :func:`math.fsum` (exactly rounded, so the order of addition
does not matter), ``min``/``max``/``distinct_count`` do not depend on order, and ``last`` picks by
``(time, position)``, which no two events share.

Values: a missing value (None, or NaN as pandas writes a missing float) is skipped by every
aggregation but ``count``, which counts events. ``sum``, ``mean``, ``min`` and ``max`` read
numbers: ints, finite floats, or text that reads as a decimal number (a Redis entry's fields are
text); they answer floats. ``last`` answers the value as the event carried it. ``distinct_count``
compares values as Python does: ``1`` and ``1.0`` are one value, the text ``"1"`` is another (a
number that came as text stays text), ``True`` equals ``1``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

Scalar = int | float | str | bool
"""A value an event's field holds that features can aggregate."""

Result = int | float | str | bool | None
"""A feature's value: None when a column aggregate saw no value (mean, min, max, last)."""

NUMERIC = frozenset({"sum", "mean", "min", "max"})
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


@dataclass(frozen=True, slots=True)
class Point:
    """One event's part in one window: its time, its position, its value of the column."""

    time: float
    position: int
    value: Scalar | None


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: Scalar) -> float:
    """``value`` as a float for a numeric aggregate; ValueError saying what it is otherwise."""
    if isinstance(value, bool):
        raise ValueError("is not a number")
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValueError("is too large for a number") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("is not a finite number")
        return value
    if isinstance(value, str) and _DECIMAL.match(value.strip()):
        converted = float(value)
        if not math.isfinite(converted):
            raise ValueError("is too large for a number")
        return converted
    raise ValueError("is not a number")


def aggregate(agg: str, points: Sequence[Point]) -> Result:
    """The aggregate ``agg`` of a window's ``points`` (already chosen: in the window, in time)."""
    if agg == "count":
        return len(points)
    present = [point for point in points if not is_missing(point.value)]
    if agg == "last":
        latest = max(present, key=lambda point: (point.time, point.position), default=None)
        return None if latest is None else latest.value
    if agg == "distinct_count":
        return len({point.value for point in present})
    numbers = [number(point.value) for point in present if point.value is not None]
    return _NUMERIC[agg](numbers)


def _min(values: list[float]) -> float | None:
    return min(values, default=None)


def _max(values: list[float]) -> float | None:
    return max(values, default=None)


def _total(values: list[float]) -> float:
    try:
        return math.fsum(values)
    except OverflowError:
        return _rounded(sum((Fraction(value) for value in values), Fraction(0)))


def _mean(values: list[float]) -> float:
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        return _rounded(sum((Fraction(value) for value in values), Fraction(0)) / len(values))


def _rounded(exact: Fraction) -> float:
    """``exact`` as the nearest float; beyond the floats' range, an infinity of its sign (an
    intermediate sum of large values can overflow where the exact result does not)."""
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


_NUMERIC: dict[str, Callable[[list[float]], float | None]] = {
    "sum": _total,
    "mean": lambda values: _mean(values) if values else None,
    "min": _min,
    "max": _max,
}
