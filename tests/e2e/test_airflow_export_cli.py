"""``mlship airflow export`` at the command line: what it writes and records, and its refusals,
each naming what is wrong (Airflow itself runs the DAG in test_airflow_export.py)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

from tests.conftest import invoke_cli
from tests.unit.test_spec import GOOD


def _pipeline(path: Path) -> dict[str, Any]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "PIPELINE":
            found = ast.literal_eval(node.value)
            assert isinstance(found, dict)
            return found
    raise AssertionError(f"no PIPELINE in {path}")


def test_export_records_the_spec_the_workspace_and_this_mlship(tmp_path: Path) -> None:
    spec = tmp_path / "project" / "pipeline.yaml"
    spec.parent.mkdir()
    spec.write_text(GOOD + "gate: {require: not_worse, max_loss: 0.02}\n")
    home, dags = tmp_path / "ws", tmp_path / "dags"
    done = invoke_cli("airflow", "export", str(spec), "-o", str(dags), home=home, cwd=tmp_path)
    path = dags / "mlship_churn.py"
    assert f"Wrote {path}: DAG mlship_churn, tasks validate -> train -> gate -> package" in (
        done.stdout
    )
    assert "Schedule @daily, 2 retries 5m apart" in done.stdout
    pipeline = _pipeline(path)
    assert pipeline["spec"] == str(spec) and pipeline["home"] == str(home)
    assert pipeline["directory"] == str(tmp_path)
    assert pipeline["bundles"] == str(spec.parent / "bundles")
    assert pipeline["mlship"] == str(Path(sys.executable).absolute().parent / "mlship")
    assert pipeline["gate"] is True

    # The spec changed: exporting again replaces the DAG it wrote.
    spec.write_text(GOOD + "orchestration: {schedule: null, owner: ml-team}\n")
    again = invoke_cli("airflow", "export", str(spec), "-o", str(dags), home=home, cwd=tmp_path)
    assert "tasks validate -> train -> package" in again.stdout
    assert "Schedule none (triggered only)" in again.stdout
    assert (_pipeline(path)["schedule"], _pipeline(path)["owner"]) == (None, "ml-team")
    assert sorted(p.name for p in dags.iterdir()) == ["mlship_churn.py"]


def test_export_refuses_naming_what_is_wrong(tmp_path: Path) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(GOOD + "orchestration:\n  schedule: 0 9 * * mon-fry\n")
    home, dags = tmp_path / "ws", tmp_path / "dags"
    bad = invoke_cli("airflow", "export", str(spec), "-o", str(dags), home=home, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"{spec}, line 20, field orchestration.schedule:" in " ".join(bad.stderr.split())
    assert "day of week 'fry' is not 0-7 or sun-sat" in " ".join(bad.stderr.split())
    assert not dags.exists()

    spec.write_text(GOOD)
    dags.mkdir()
    (dags / "mlship_churn.py").write_text("# the team's own DAG\n")
    taken = invoke_cli("airflow", "export", str(spec), "-o", str(dags), home=home, check=False)
    assert taken.returncode == 1
    assert "exists and is not the DAG of churn; pass --force to replace it" in taken.stderr
    assert (dags / "mlship_churn.py").read_text() == "# the team's own DAG\n"

    missing = invoke_cli(
        "airflow", "export", str(spec), "-o", str(dags), "--force", "--mlship",
        str(tmp_path / "nowhere" / "mlship"), home=home, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "nowhere/mlship not found; pass --mlship with the absolute path" in " ".join(
        missing.stderr.split()
    )
    assert (dags / "mlship_churn.py").read_text() == "# the team's own DAG\n"
