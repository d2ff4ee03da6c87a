"""What every scoring path does with a version's records: name their problems, turn them into
the frame the model predicts on, and its answers into plain values.

The model server's endpoints and the stream runner (``mlship stream run``) score through these
same functions, so a record refused, a frame built or an answer written reads the same whichever
way it came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlship.features.transformers import parse_datetimes
from mlship.serve.bodies import path_text

if TYPE_CHECKING:
    from mlship.serve.live import Served

MAX_ERRORS = 20
"""Most problems listed in one answer (a large batch can have one in every record)."""


def _field_path(loc: tuple[Any, ...]) -> str:
    return path_text(tuple(p for p in loc if p != "body"))


def readable_errors(errors: list[Any], prefix: tuple[Any, ...] = ()) -> list[str]:
    """One line per problem: ``records[0].age: Input should be a valid integer``. The value
    sent is never repeated (it may be large, or personal): the path names it."""
    lines = []
    for err in errors[:MAX_ERRORS]:
        path = _field_path((*prefix, *tuple(err["loc"])))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field, not an input of this model"
        lines.append(f"{path}: {message}")
    if len(errors) > MAX_ERRORS:
        lines.append(f"... and {len(errors) - MAX_ERRORS} more problems")
    return lines


def frame_of(served: Served, typed: Sequence[Any]) -> pd.DataFrame:
    """The frame ``served``'s model predicts on, from records its signature validated."""
    names = [c.name for c in served.model.signature.inputs]
    frame = pd.DataFrame({name: [getattr(r, name) for r in typed] for name in names})
    for column in served.model.signature.inputs:
        if column.type == "datetime":  # any offset in, UTC timestamps as in training
            frame[column.name] = parse_datetimes(frame[column.name])
    return frame


def plain_list(values: Any) -> list[Any]:
    """Python values (not numpy scalars), for JSON."""
    return [v.item() if hasattr(v, "item") else v for v in values]


def probability_dicts(
    served: Served, proba: np.ndarray[Any, Any] | None
) -> list[dict[str, float]] | None:
    """Per record, each class's probability (None for a model that gives none)."""
    classes = served.model.signature.classes
    if proba is None or not classes:
        return None
    labels = [str(c) for c in classes]
    return [dict(zip(labels, map(float, row), strict=True)) for row in proba]


def outputs_of(
    served: Served, predictions: np.ndarray[Any, Any], proba: np.ndarray[Any, Any] | None
) -> list[dict[str, Any]]:
    """Per record, ``{"prediction": ..., "probabilities": {...}}`` as the prediction log keeps
    it."""
    values = plain_list(predictions)
    probabilities = probability_dicts(served, proba)
    if probabilities is None:
        return [{"prediction": value} for value in values]
    return [
        {"prediction": value, "probabilities": p}
        for value, p in zip(values, probabilities, strict=True)
    ]
