"""Library warnings raised in fits: caught where the fit runs, counted, said once.

A logistic regression that does not converge warns on every fold of every trial; streamed as
they come, a hundred identical lines bury the progress display and the one line that matters.
So every fit (a fold, a trial's fold, the fit on the whole training part) records the warnings
it raises, in the process that fits it: workers of a pool or a Ray cluster cannot share a
parent's warning filters, so the counts travel back with the fold's result. The run adds them up
per candidate and per category and message, and says each once at the end
(``lr: 12 \u00d7 ConvergenceWarning: lbfgs failed to converge ...``); the run's details and its
evaluation report keep them.

The evaluation that follows selection refits the selected candidate with the same parameters
(the learning curve, the threshold search); whatever it would warn about was counted when the
candidate was fitted, so there warnings are silenced (:func:`silenced`), in this process and in
the joblib workers scikit-learn hands its filters to.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

MESSAGE_CHARS = 160
"""A message is kept to its first line and this many characters: enough to recognise it."""


@dataclass(frozen=True)
class CaughtWarning:
    """One kind of warning (category and message) and how many times it was raised."""

    category: str
    message: str
    count: int

    def text(self) -> str:
        return f"{self.count} × {self.category}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "message": self.message, "count": self.count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaughtWarning:
        return cls(str(data["category"]), str(data["message"]), int(data["count"]))


Caught = tuple[CaughtWarning, ...]


def _message(raised: warnings.WarningMessage) -> str:
    lines = str(raised.message).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) > MESSAGE_CHARS or len(lines) > 1:
        return first[:MESSAGE_CHARS].rstrip() + " ..."
    return first


def merge(groups: Iterable[Caught]) -> Caught:
    """The counts of several fits added up, most frequent first."""
    counts: Counter[tuple[str, str]] = Counter()
    for group in groups:
        for caught in group:
            counts[caught.category, caught.message] += caught.count
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(CaughtWarning(category, message, count) for (category, message), count in ordered)


@dataclass
class Catcher:
    """What :func:`catching` found, filled in when its block ends."""

    caught: Caught = field(default_factory=tuple)


@contextmanager
def catching() -> Iterator[Catcher]:
    """Record every warning raised inside the block (each occurrence, none shown).

    Meant for the worker side of a fit: one fit at a time per process, as executors run them.
    """
    found = Catcher()
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        try:
            yield found
        finally:
            found.caught = merge(
                (CaughtWarning(raised.category.__name__, _message(raised), 1),) for raised in log
            )


@contextmanager
def silenced() -> Iterator[None]:
    """No warning inside the block is shown (see the module docstring for where and why)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def summary_lines(per_candidate: Mapping[str, Sequence[CaughtWarning]]) -> list[str]:
    """``lr: 12 \u00d7 ConvergenceWarning: lbfgs failed to converge ...``, one line per kind, from
    the run's details."""
    return [f"{name}: {found.text()}" for name, kinds in per_candidate.items() for found in kinds]


__all__ = ["Caught", "CaughtWarning", "catching", "merge", "silenced", "summary_lines"]
