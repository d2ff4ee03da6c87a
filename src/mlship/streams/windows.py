"""Windows in event time, the watermark and lateness: the arithmetic both feature paths share.

The window of an event at time ``t`` is the latest window containing ``t``: it ends at the first
multiple of ``slide`` after ``t`` (epoch seconds) and starts ``size`` before that, holding the
times in ``[start, end)``. A tumbling window has ``slide == size``. Epoch-aligned windows need no
state to agree on: two processes, or the online and offline paths, find the same window for the
same time.

An entity's watermark as of a position is the largest event time among its events at lower
positions, less ``max_delay``: events up to ``max_delay`` out of order are in time. An event is
late when its window closed, with ``allowed_lateness`` to spare, before the watermark reached it.
"""

from __future__ import annotations

import math


def window_of(time: float, size: float, slide: float) -> tuple[float, float]:
    """``(start, end)`` of the latest window of ``size`` every ``slide`` seconds holding ``time``.

    ``floor(time / slide)`` can round to the neighbouring multiple when ``time`` is within a
    rounding error of a boundary; the index is corrected so that ``time`` is always in
    ``[index * slide, index * slide + slide)`` and an event always falls in its own window.
    """
    index = math.floor(time / slide)
    if index * slide > time:
        index -= 1
    elif (index + 1) * slide <= time:
        index += 1
    end = index * slide + slide
    return end - size, end


def watermark(newest: float | None, max_delay: float) -> float | None:
    """The watermark when ``newest`` is the largest event time seen before (None: nothing was)."""
    return None if newest is None else newest - max_delay


def is_late(window_end: float, allowed_lateness: float, mark: float | None) -> bool:
    """Whether an event whose window ends at ``window_end`` comes too late for it."""
    return mark is not None and window_end + allowed_lateness <= mark
