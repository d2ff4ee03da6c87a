"""``mlship airflow export``: the churn example's DAG loads in Airflow's own DagBag with the
spec's schedule, retries and owner, and ``airflow dags test`` runs every step against a local
workspace, which then holds the dataset, the run, the registered version and its bundle.

Airflow lives in its own virtualenv (tools/airflow/.venv, ``make airflow``), as on a scheduler:
the DAG file must load there without mlship. Its metadata database is SQLite in a temporary
AIRFLOW_HOME; ``airflow dags test`` runs the tasks in one process, with no scheduler.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke_cli
from tests.quick_project import fast_churn

AIRFLOW_BIN = Path(__file__).resolve().parents[2] / "tools" / "airflow" / ".venv" / "bin"
# Quotes, a newline and a triple quote to break out of a string, Jinja braces for a template:
# values that would run code if the DAG file pasted them in as text.
HOSTILE_OWNER = "ops'''\"\"\"); import os; os.system('touch PWNED') #"
HOSTILE_TAG = "{{ 7 * 7 }}\\n${HOME}"
ORCHESTRATION = f"""
orchestration:
  schedule: 30 2 * * 1-5
  retries: 1
  retry_delay: 30s
  timeout: 20m
  run_timeout: 2h
  owner: {json.dumps(HOSTILE_OWNER)}
  tags: [{json.dumps(HOSTILE_TAG)}, churn]
"""
GATE = """
gate:
  require: not_worse
  max_loss: 0.05
"""

DAGBAG = """
import importlib.util, json, os, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
found = {}
for dag_id, dag in bag.dags.items():
    found[dag_id] = {
        "schedule": dag.schedule,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "run_timeout": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
        "tags": sorted(dag.tags),
        "description": dag.description,
        "tasks": {
            task.task_id: {
                "downstream": sorted(task.downstream_task_ids),
                "retries": task.retries,
                "retry_delay": task.retry_delay.total_seconds(),
                "timeout": task.execution_timeout.total_seconds(),
                "owner": task.owner,
            }
            for task in dag.tasks
        },
    }

# Where the tasks' workspace comes from: the export, else MLSHIP_HOME, else the Airflow Variable.
loader = importlib.util.spec_from_file_location("exported", sys.argv[1] + "/mlship_churn.py")
module = importlib.util.module_from_spec(loader)
loader.loader.exec_module(module)
homes = [module._setting("mlship_home", "MLSHIP_HOME", module.PIPELINE["home"])]
os.environ["MLSHIP_HOME"] = "/from/environment"
homes.append(module._setting("mlship_home", "MLSHIP_HOME", module.PIPELINE["home"]))
os.environ["AIRFLOW_VAR_MLSHIP_HOME"] = "/from/variable"
homes.append(module._setting("mlship_home", "MLSHIP_HOME", module.PIPELINE["home"]))
print(json.dumps({"errors": bag.import_errors, "dags": found, "homes": homes}))
"""
# The gate and package steps called as the tasks call them, after the run registered churn:1.
STEPS = """
import sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
try:
    bag.dags["mlship_churn-gated"].get_task("gate").python_callable("churn:1")
except Exception as exc:
    print(f"gate: {type(exc).__name__}: {exc}")
print("package:", bag.dags["mlship_churn"].get_task("package").python_callable("churn:1"))
"""


@dataclass(frozen=True)
class Exported:
    root: Path
    home: Path
    dags: Path
    bag: dict[str, Any]
    run: subprocess.CompletedProcess[str]
    seconds: dict[str, float]
    environment: dict[str, str]


def _airflow(name: str) -> str:
    path = AIRFLOW_BIN / name
    if not path.is_file():
        pytest.fail(
            f"Apache Airflow's virtualenv is missing ({path} not found): run `make airflow`, "
            "which installs tools/airflow/requirements.txt into tools/airflow/.venv"
        )
    return str(path)


def _checked(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise AssertionError(
            f"{what} exited {result.returncode}\nstdout:\n{result.stdout[-20000:]}\n"
            f"stderr:\n{result.stderr[-20000:]}"
        )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The churn example (and a copy with a gate) exported into a DAGs folder, the folder loaded
    in a DagBag, and the churn DAG run once by ``airflow dags test``."""
    root = tmp_path_factory.mktemp("airflow")
    home, dags = root / "ws", root / "dags"
    spec = fast_churn(root / "churn")
    spec.write_text(spec.read_text() + ORCHESTRATION)
    gated = spec.with_name("gated.yaml")
    gated.write_text(spec.read_text().replace("name: churn", "name: churn-gated", 1) + GATE)
    for path in (spec, gated):
        invoke_cli("airflow", "export", str(path), "-o", str(dags), home=home, cwd=root)

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLSHIP_", "AIRFLOW"))}
    environment.update(
        AIRFLOW_HOME=str(root / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    seconds: dict[str, float] = {}
    started = time.monotonic()
    # The database is made while the DagBag is read: the two do not touch each other.
    migrate = subprocess.Popen(
        [_airflow("airflow"), "db", "migrate"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        loaded = subprocess.run(
            [_airflow("python"), "-c", DAGBAG, str(dags)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        seconds["dagbag"] = time.monotonic() - started
        stdout, stderr = migrate.communicate(timeout=180)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()
    _checked(loaded, "loading the DAGs folder in a DagBag")
    _checked(subprocess.CompletedProcess(migrate.args, migrate.returncode, stdout, stderr),
             "airflow db migrate")  # fmt: skip
    seconds["migrate"] = time.monotonic() - started
    bag = json.loads(loaded.stdout.strip().splitlines()[-1])

    started = time.monotonic()
    run = subprocess.run(
        [_airflow("airflow"), "dags", "test", "mlship_churn"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=400,
    )
    seconds["dags test"] = time.monotonic() - started
    _checked(run, "airflow dags test mlship_churn")
    return Exported(root, home, dags, bag, run, seconds, environment)


def test_the_dag_loads_in_airflow_with_the_specs_settings(exported: Exported) -> None:
    assert exported.bag["errors"] == {}
    assert sorted(exported.bag["dags"]) == ["mlship_churn", "mlship_churn-gated"]
    dag = exported.bag["dags"]["mlship_churn"]
    assert dag["schedule"] == "30 2 * * 1-5"
    assert (dag["catchup"], dag["max_active_runs"], dag["run_timeout"]) == (False, 1, 7200.0)
    assert (
        dag["description"] == "Predict which customers will cancel their subscription next month."
    )
    assert {name: task["downstream"] for name, task in dag["tasks"].items()} == {
        "validate": ["train"],
        "train": ["package"],
        "package": [],
    }
    for task in dag["tasks"].values():
        assert (task["retries"], task["retry_delay"], task["timeout"]) == (1, 30.0, 1200.0)

    gated = exported.bag["dags"]["mlship_churn-gated"]["tasks"]
    assert {name: task["downstream"] for name, task in gated.items()} == {
        "validate": ["train"],
        "train": ["gate"],  # package takes the version the gate passed
        "gate": ["package"],
        "package": [],
    }


def test_spec_values_reach_airflow_as_data_never_as_code(exported: Exported) -> None:
    dag = exported.bag["dags"]["mlship_churn"]
    assert dag["tags"] == sorted(["mlship", HOSTILE_TAG, "churn"])  # not rendered by Jinja
    assert {task["owner"] for task in dag["tasks"].values()} == {HOSTILE_OWNER}
    assert not list(exported.root.rglob("PWNED"))
    text = (exported.dags / "mlship_churn.py").read_text()
    assert "import mlship" not in text and "from mlship" not in text
    assert re.search(r"^    'home': '.*/ws',$", text, re.MULTILINE)


def test_dags_test_runs_every_step_against_the_workspace(exported: Exported) -> None:
    log = exported.run.stdout + exported.run.stderr
    for step in ("validate", "train", "package"):
        assert f"[DAG TEST] end task task_id={step}" in log
    assert "state=success" in log
    # validate stored the dataset; the run found it by its inputs rather than ingesting again
    assert "rows (inputs unchanged: stored dataset reused)" in log

    datasets = invoke_cli("data", "list", home=exported.home).stdout
    assert len(re.findall(r"│ [0-9a-f]{12} │ churn ", datasets)) == 1
    runs = invoke_cli("runs", "list", home=exported.home).stdout
    assert re.search(r"│ churn +│ succeeded │", runs)
    version = invoke_cli("models", "show", "churn:1", home=exported.home).stdout
    dataset = re.search(r"│ [0-9a-f]{12} │ churn ", datasets)
    assert dataset is not None and dataset.group(0)[2:14] in version
    bundle = exported.root / "churn" / "bundles" / "churn-1"
    assert (bundle / "mlship-bundle.json").is_file() and (bundle / "model.pkl").is_file()
    print(f"Airflow timings (s): {exported.seconds}")


def test_the_tasks_workspace_can_be_moved_without_a_new_export(exported: Exported) -> None:
    recorded = str(exported.home)
    assert exported.bag["homes"] == [recorded, "/from/environment", "/from/variable"]


def test_a_gate_without_a_verdict_fails_to_be_retried_and_a_bundle_is_written_once(
    exported: Exported,
) -> None:
    done = subprocess.run(
        [_airflow("python"), "-c", STEPS, str(exported.dags)],
        env=exported.environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    _checked(done, "calling the gate and package steps")
    # churn-gated has no version in production: `mlship gate` exits 2, an ordinary failure
    # (retried), not AirflowFailException, which is kept for a candidate found worse
    assert "gate: RuntimeError: mlship gate could not judge churn:1 (exit 2)" in done.stdout
    assert f"package: {exported.root / 'churn' / 'bundles' / 'churn-1'}" in done.stdout
    assert "packaged already" in done.stdout + done.stderr
