"""Inputs the model never saw in training: numbers outside the training range, unseen categories.

A model extrapolates outside the range it was fitted on, and a category it never saw falls into
its encoder's unknown bucket: the answer is still an answer, but one to be read with care. The
server answers such records and flags each of them (column, kind, value) in the response and in
``/metrics``; a deployment with ``strict: true`` refuses them instead (422 naming row and column).
What "seen in training" means comes from the version's signature, so a version registered before
training ranges were recorded flags no numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlship.text import shorten
from mlship.train.signature import Signature

Kind = Literal["below_training_range", "above_training_range", "unseen_category"]


@dataclass(frozen=True)
class Flag:
    """One input of one record outside what training saw."""

    column: str
    kind: Kind
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "value": _excerpt(self.value)}

    def describe(self, row: int) -> str:
        if self.kind == "unseen_category":
            what = "a category not seen in training"
        else:
            side = "below" if self.kind == "below_training_range" else "above"
            what = f"{side} the range seen in training"
        return f"records[{row}].{self.column}: {_excerpt(self.value)!r} is {what}"


EXCERPT = 40
"""Longest text of a value repeated in an answer: enough to recognise it, not to echo it."""


def _excerpt(value: Any) -> Any:
    if isinstance(value, str) and len(value) > EXCERPT:
        return shorten(value, EXCERPT)
    return value


@dataclass(frozen=True)
class TrainingSupport:
    """What the model saw in training, per input: ranges of numbers, sets of categories."""

    ranges: dict[str, tuple[float, float]]
    categories: dict[str, frozenset[str]]

    @classmethod
    def of(cls, signature: Signature) -> TrainingSupport:
        categorical = {c.name for c in signature.inputs if c.type == "category"}
        return cls(
            ranges=dict(signature.ranges),
            categories={
                name: frozenset(values)
                for name, values in signature.categories.items()
                if name in categorical
            },
        )

    def flags(self, records: Sequence[Any]) -> list[list[Flag]]:
        """Per typed record (attributes per input), its flags; empty lists when all is known."""
        result: list[list[Flag]] = []
        for record in records:
            found: list[Flag] = []
            for name, (low, high) in self.ranges.items():
                value = getattr(record, name, None)
                if value is None or isinstance(value, bool):
                    continue
                number = float(value)
                if math.isnan(number):
                    continue
                if number < low:
                    found.append(Flag(name, "below_training_range", value))
                elif number > high:
                    found.append(Flag(name, "above_training_range", value))
            for name, known in self.categories.items():
                value = getattr(record, name, None)
                if value is not None and str(value) not in known:
                    found.append(Flag(name, "unseen_category", value))
            result.append(found)
        return result
