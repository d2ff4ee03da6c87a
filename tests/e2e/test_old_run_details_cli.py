"""Runs recorded by older versions still read: ``runs show`` (text and JSON), ``models show`` and
the model card take what such a run recorded and say nothing it did not; a damaged record is
refused with the key that is wrong, not a traceback.

The run is real (the small churn example through ``mlship run``); its stored details are then
replaced, in the workspace's own SQLite database, by the shape the first versions wrote: the
selection rule and the split's counts, no strategy, no refit, no warnings.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import invoke_cli
from tests.quick_project import fast_churn

TEST_SCORED = "once, by the selected model, after selection"


def _stored(home: Path, run_id: str) -> dict[str, Any]:
    with sqlite3.connect(home / "mlship.db") as db:
        (text,) = db.execute("SELECT details FROM runs WHERE id = ?", (run_id,)).fetchone()
    found: dict[str, Any] = json.loads(text)
    return found


def _store(home: Path, run_id: str, details: dict[str, Any]) -> None:
    with sqlite3.connect(home / "mlship.db") as db:
        db.execute("UPDATE runs SET details = ? WHERE id = ?", (json.dumps(details), run_id))


def _record(home: Path) -> dict[str, Any]:
    shown = invoke_cli("runs", "show", "churn", "--json", home=home)
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def test_runs_recorded_by_older_versions_still_show(tmp_path: Path) -> None:
    home = tmp_path / "home"
    invoke_cli("run", str(fast_churn(tmp_path / "churn")), home=home)
    record = _record(home)
    run_id = record["id"]
    # Today's record is shown as stored, key for key.
    assert record["details"] == _stored(home, run_id)
    split = record["details"]["split"]

    earliest = {
        "selection": {"rule": "best", "tolerance": 0.01},
        "split": {
            "train_rows": split["train_rows"],
            "test_rows": split["test_rows"],
            "folds": split["folds"],
            "test_scored": TEST_SCORED,
        },
        "executor": "inline",
    }
    _store(home, run_id, earliest)
    assert _record(home)["details"] == earliest

    shown = invoke_cli("runs", "show", run_id, home=home)
    assert shown.stderr == ""
    assert (
        f"Split: {split['train_rows']} training rows in {split['folds']} folds, "
        f"{split['test_rows']} test rows scored {TEST_SCORED}"
    ) in shown.stdout
    shipped = (
        "The shipped model is the one scored on the test set, fitted on the "
        f"{split['train_rows']:,} training rows."
    )
    assert shipped in shown.stdout
    for unrecorded in ("Leakage screening", "Decision threshold", "Library warnings", "Nested"):
        assert unrecorded not in shown.stdout

    model = invoke_cli("models", "show", "churn:1", home=home)
    assert "fitted on the" in model.stdout and f"{split['train_rows']:,}" in model.stdout

    # A run that recorded no details at all (as a failed run) shows without them.
    _store(home, run_id, {})
    assert _record(home)["details"] == {}
    assert "Split:" not in invoke_cli("runs", "show", run_id, home=home).stdout


def test_a_damaged_details_record_is_refused_naming_the_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    invoke_cli("run", str(fast_churn(tmp_path / "churn")), home=home)
    run_id = _record(home)["id"]
    _store(home, run_id, {"split": {"train_rows": 80, "test_rows": "many"}})
    for args in (("runs", "show", run_id), ("runs", "show", run_id, "--json")):
        result = invoke_cli(*args, home=home, check=False)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "run details: split.test_rows: expected a whole number, got str 'many'" in (
            " ".join(result.stderr.split())
        )
