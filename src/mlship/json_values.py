"""Plain JSON values for the evaluation: rounded finite floats or ``None``, and plain labels.

An evaluation is stored as JSON and compared across runs, so its numbers are rounded to what is
worth reading (six significant digits for scores, four for chart coordinates), an undefined number
is ``null`` rather than NaN (which is not JSON), and class labels are plain Python values rather
than numpy scalars.

A leaf: training rounds its trial scores the same way, and the evaluation is built on training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

SCORE_DIGITS = 6
POINT_DIGITS = 4


def rounded(value: Any, digits: int = SCORE_DIGITS) -> float | None:
    """``value`` to ``digits`` significant digits; ``None`` for a missing or non-finite number."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    if number == 0:
        return 0.0
    return float(f"{number:.{digits}g}")


def rounded_list(values: Iterable[Any], digits: int = POINT_DIGITS) -> list[float | None]:
    return [rounded(value, digits) for value in values]


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value
