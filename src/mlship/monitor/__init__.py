"""Monitoring: how far the data a model sees in production has moved from its training data, how
good its answers are once the true labels arrive, how healthy its server is, and the alerts and
retraining that follow.

The drift functions are importable from here; they are loaded on first use, so that the server
(which imports :mod:`mlship.monitor.feedback`) does not import SciPy's statistics at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlship.monitor.drift import (
        DEFAULT_THRESHOLDS,
        ColumnDrift,
        DatasetDrift,
        Method,
        column_drift,
        dataset_drift,
    )

_DRIFT = (
    "DEFAULT_THRESHOLDS",
    "ColumnDrift",
    "DatasetDrift",
    "Method",
    "column_drift",
    "dataset_drift",
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ColumnDrift",
    "DatasetDrift",
    "Method",
    "column_drift",
    "dataset_drift",
]


def __getattr__(name: str) -> Any:
    if name in _DRIFT:
        return getattr(importlib.import_module("mlship.monitor.drift"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
