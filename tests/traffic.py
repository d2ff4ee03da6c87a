"""Served traffic for the monitoring tests: records drawn from churn:1's own training data, the
first ones as they were and the rest drifted (customers 20 years older, monthly charges raised),
so the monitor has something true to find."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlship.config import Settings
from mlship.data.versioning import load_frame
from mlship.workspace import Workspace

FEATURES = [
    "age", "tenure_months", "monthly_charges", "total_charges", "contract", "internet_service",
    "payment_method", "support_calls", "paperless_billing",
]  # fmt: skip


@dataclass(frozen=True)
class Traffic:
    records: list[dict[str, Any]]
    """The normal records, then the drifted ones, as JSON objects (missing values as null)."""
    truth: list[str]
    """Each record's true label, as training saw it."""


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None)
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in rows.to_dict("records")
    ]


def churn_traffic(home: Path, normal: int, drifted: int, seed: int) -> Traffic:
    """``normal`` then ``drifted`` records sampled with ``seed`` from the dataset churn:1 of the
    workspace at ``home`` was trained on."""
    workspace = Workspace.open(Settings(home=home))
    try:
        version = workspace.tracking.get_version("churn", 1)
        dataset = workspace.tracking.get_dataset(version.dataset_hash)
        data = load_frame(dataset.artifact_sha256, workspace.artifacts)
    finally:
        workspace.close()
    sample = data.sample(n=normal + drifted, random_state=seed).reset_index(drop=True)
    as_is, changed = sample.iloc[:normal], sample.iloc[normal:].copy()
    changed["age"] = changed["age"] + 20
    changed["monthly_charges"] = changed["monthly_charges"] * 1.8 + 30
    return Traffic(_records(as_is) + _records(changed), sample["churned"].astype(str).tolist())
