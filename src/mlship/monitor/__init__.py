"""Monitoring: how far the data a model sees in production has moved from its training data."""

from mlship.monitor.drift import (
    DEFAULT_THRESHOLDS,
    ColumnDrift,
    DatasetDrift,
    Method,
    column_drift,
    dataset_drift,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ColumnDrift",
    "DatasetDrift",
    "Method",
    "column_drift",
    "dataset_drift",
]
