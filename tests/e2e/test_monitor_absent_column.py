"""Clients that never send an optional column: monitoring reports it missing, and still judges
the drift of the columns that are there (instead of stopping at the absent one)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pandas as pd
import pytest

from mlship.monitor.predlog import Entry, PredictionLog
from mlship.workspace import Workspace
from tests.conftest import invoke_cli

ABSENT = "paperless_billing"


@pytest.fixture
def home(trained: Workspace, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(trained.settings.home, copy)
    return copy


def test_a_column_no_client_sends_is_flagged_missing_not_a_failure(
    home: Path, trained: Workspace
) -> None:
    rows = pd.read_csv(trained.settings.home.parent / "churn" / "data" / "new_customers.csv")
    records = json.loads(rows.drop(columns=["customer_id", ABSENT]).to_json(orient="records"))
    log = PredictionLog(home / "predictions" / "churn-1", "churn-1")
    for record in records[:300]:
        log.append(
            Entry(uuid.uuid4().hex, "churn", 1, "route", 5.0, [record], [{"prediction": "no"}])
        )
    log.close()

    shown = invoke_cli("monitor", "status", "churn", "--window", "300 rows", "--json", home=home)
    found = json.loads(shown.stdout)
    compared = {column["column"] for column in found["drift"]["columns"]}
    assert ABSENT not in compared and "age" in compared
    missing = {column["column"]: column for column in found["quality"]["columns"]}
    assert missing[ABSENT]["missing"] == 1.0 and missing[ABSENT]["issues"], missing[ABSENT]
