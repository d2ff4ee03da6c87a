"""An Airflow DAG for a pipeline spec: validate, train, gate (when the spec has one), package.

The DAG file is a fixed program plus one Python literal, ``PIPELINE``, that holds everything
taken from the spec and the export (paths, schedule, owner, tags, retries...). Every value goes
into the literal through ``repr`` of plain strings, numbers, booleans, lists and dicts, and the
literal is read back with :func:`ast.literal_eval` and compared before the file is written, so
no spec value (a hostile owner or tag, a path with quotes or braces) can become code. The
program passes nothing of it through Jinja (no templated operator fields) or a shell (each step
is an argument list for :func:`subprocess.Popen`), for the same reason.

The tasks run the mlship command line rather than importing mlship: Airflow pins its own
dependencies, which clash with mlship's, so the file must load in Airflow's own virtualenv. The
steps do not redo each other's work: ``mlship data validate`` stores the dataset and ``mlship
run`` finds it by the content of its inputs and reuses it. The version the run registers is
handed to the gate and the package steps by XCom (the run writes it with ``--version-file``);
asking for "the newest version" there could name another run's.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlship.errors import MlshipError
from mlship.spec.loader import LoadedSpec
from mlship.spec.orchestration import Orchestration


class ExportError(MlshipError):
    """A DAG that cannot be written as asked."""


# Task ids, in the order they run; the gate only when the spec has one.
VALIDATE, TRAIN, GATE, PACKAGE = "validate", "train", "gate", "package"
MARK = "# Written by `mlship airflow export`."


@dataclass(frozen=True)
class DagPlan:
    """What one DAG runs: the spec and model, the mlship executable, the workspace it runs
    against and the directory it runs in (absolute paths, recorded at export: the directory is
    where an ``mlship.toml`` is read from), where bundles go, and the scheduling."""

    dag_id: str
    model: str
    description: str
    spec: Path
    mlship: Path
    home: Path
    directory: Path
    bundles: Path
    gate: bool
    orchestration: Orchestration

    @property
    def task_ids(self) -> tuple[str, ...]:
        return (VALIDATE, TRAIN, GATE, PACKAGE) if self.gate else (VALIDATE, TRAIN, PACKAGE)

    @property
    def file_name(self) -> str:
        """The DAG file's name: a Python module name (Airflow imports the file as one)."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.dag_id) + ".py"

    def literal(self) -> dict[str, Any]:
        """The values the DAG file's ``PIPELINE`` holds: plain strings, numbers and lists."""
        orchestration = self.orchestration
        return {
            "dag_id": self.dag_id,
            "model": self.model,
            "description": self.description,
            "spec": str(self.spec),
            "mlship": str(self.mlship),
            "home": str(self.home),
            "directory": str(self.directory),
            "bundles": str(self.bundles),
            "gate": self.gate,
            "schedule": orchestration.schedule,
            "retries": orchestration.retries,
            "retry_delay_seconds": orchestration.retry_delay_seconds,
            "timeout_seconds": orchestration.timeout_seconds,
            "run_timeout_seconds": orchestration.run_timeout_seconds,
            "owner": orchestration.owner,
            "tags": ["mlship", *(tag for tag in orchestration.tags if tag != "mlship")],
        }


def dag_id_of(model: str) -> str:
    """The DAG's id: the pipeline's name under mlship's prefix, apart from other teams' DAGs."""
    return f"mlship_{model}"


def plan_for(loaded: LoadedSpec, mlship: Path, home: Path, directory: Path) -> DagPlan:
    """The plan of ``loaded``'s DAG, run by the executable ``mlship`` against ``home`` in
    ``directory``."""
    spec = loaded.spec
    if not mlship.is_absolute() or not mlship.is_file():
        raise ExportError(
            f"mlship executable {mlship} not found; pass --mlship with the absolute path of the "
            "mlship command the scheduler's workers should run"
        )
    bundles = Path(spec.orchestration.bundles).expanduser()
    return DagPlan(
        dag_id=dag_id_of(spec.name),
        model=spec.name,
        description=spec.description,
        spec=loaded.path.resolve(),
        mlship=mlship,
        home=home.expanduser().resolve(),
        directory=directory.resolve(),
        bundles=(bundles if bundles.is_absolute() else loaded.base_dir / bundles).resolve(),
        gate=spec.gate is not None,
        orchestration=spec.orchestration,
    )


def render(plan: DagPlan) -> str:
    """The DAG file's text for ``plan``."""
    values = plan.literal()
    lines = ["{"] + [f"    {key!r}: {value!r}," for key, value in values.items()] + ["}"]
    literal = "\n".join(lines)
    if ast.literal_eval(literal) != values:  # a value repr does not read back as itself
        raise ExportError(f"the settings of {plan.dag_id} cannot be written as a Python literal")
    text = _TEMPLATE.replace("__PIPELINE__", literal)
    ast.parse(text)
    return text


def existing_dag_id(path: Path) -> str | None:
    """The dag id in ``path`` if it is a DAG file this module wrote, else None."""
    try:
        text = path.read_text(encoding="utf-8")
        if MARK not in text:
            return None
        for node in ast.parse(text).body:
            if (
                isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["PIPELINE"]
                and isinstance(found := ast.literal_eval(node.value), dict)
            ):
                dag_id = found.get("dag_id")
                return dag_id if isinstance(dag_id, str) else None
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    return None


def write_dag(plan: DagPlan, directory: Path, *, force: bool = False) -> Path:
    """Write ``plan``'s DAG file into ``directory`` (whole or not at all) and return its path.

    The DAG file of the same DAG is replaced, since re-exporting after the spec changed is the
    way to change it; any other file of that name only with ``force``.
    """
    from mlship.store.artifacts import atomic_write

    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} is not a directory; -o takes the DAGs folder")
    path = directory / plan.file_name
    if path.is_dir():
        raise ExportError(f"{path} is a directory; the DAG is a file there")
    if path.exists() and not force and existing_dag_id(path) != plan.dag_id:
        raise ExportError(
            f"{path} exists and is not the DAG of {plan.model}; pass --force to replace it"
        )
    atomic_write(path, [render(plan).encode("utf-8")])
    return path


_TEMPLATE = (
    MARK
    + ''' Re-export the spec rather than edit.
"""An mlship pipeline as an Airflow DAG: validate, train, gate (when the spec has one), package.

Its settings (schedule, retries, timeouts, owner, tags) come from the spec's `orchestration:`
block.

Each task runs the mlship command line in a subprocess and this file imports nothing of mlship's,
so it loads in Airflow's own environment. The tasks use the workspace and the mlship executable
recorded below unless the Airflow Variable `mlship_home` / `mlship_executable`, or else the
environment variable MLSHIP_HOME / MLSHIP_EXECUTABLE, names others. Other settings of mlship
(MLSHIP_URL, MLSHIP_TOKEN, keys) come from the workers' environment, never from this file.
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import tempfile

from airflow.sdk import Variable, dag, task
from airflow.sdk.exceptions import AirflowFailException

PIPELINE = __PIPELINE__

GATE_FAILED = 1  # `mlship gate` exits 0 on a pass, 1 on a fail and 2 when it could not judge
STOP_GRACE_SECONDS = 60  # mlship marks its run failed and stops its workers on SIGTERM

log = logging.getLogger(__name__)


def _setting(variable: str, environment: str, recorded: str) -> str:
    """An Airflow Variable, else an environment variable, else the value recorded at export."""
    return Variable.get(variable, default=None) or os.environ.get(environment) or recorded


def _mlship(*args: str) -> int:
    """Run mlship with ``args``, its output in the task's log; return its exit code. A task
    stopped by Airflow (its timeout, or marked failed) stops mlship too."""
    executable = _setting("mlship_executable", "MLSHIP_EXECUTABLE", PIPELINE["mlship"])
    home = _setting("mlship_home", "MLSHIP_HOME", PIPELINE["home"])
    directory = PIPELINE["directory"]
    if not os.path.isdir(directory):
        raise RuntimeError(f"{directory}, where mlship runs, is not a directory on this worker")
    if not os.access(executable, os.X_OK):
        raise RuntimeError(
            f"{executable} is not an executable on this worker; set the Airflow Variable "
            "mlship_executable to the mlship command's path"
        )
    environment = dict(os.environ, MLSHIP_HOME=home, COLUMNS="160")
    log.info("in %s: MLSHIP_HOME=%s %s %s", directory, home, executable, " ".join(args))
    process = subprocess.Popen(
        [executable, *args],
        cwd=directory,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            log.info("%s", line.rstrip())
        return process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _check(*args: str) -> None:
    code = _mlship(*args)
    if code != 0:
        raise RuntimeError(f"mlship {args[0]} exited with {code}; its output is in the log above")


def _duration(seconds: float | None) -> datetime.timedelta | None:
    return None if seconds is None else datetime.timedelta(seconds=seconds)


@dag(
    dag_id=PIPELINE["dag_id"],
    description=PIPELINE["description"] or None,
    schedule=PIPELINE["schedule"],
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=_duration(PIPELINE["run_timeout_seconds"]),
    tags=PIPELINE["tags"],
    default_args={
        "owner": PIPELINE["owner"],
        "retries": PIPELINE["retries"],
        "retry_delay": datetime.timedelta(seconds=PIPELINE["retry_delay_seconds"]),
        "execution_timeout": _duration(PIPELINE["timeout_seconds"]),
    },
)
def pipeline() -> None:
    @task(task_id="validate")
    def validate() -> None:
        """Ingest and check the sources; the dataset is stored for the run to reuse."""
        _check("data", "validate", PIPELINE["spec"])

    @task(task_id="train")
    def train() -> str:
        """Train, evaluate and register; return the registered MODEL:VERSION."""
        with tempfile.TemporaryDirectory(prefix="mlship-") as scratch:
            written = os.path.join(scratch, "version.txt")
            _check("run", PIPELINE["spec"], "--version-file", written)
            with open(written, encoding="utf-8") as handle:
                return handle.read().strip()

    @task(task_id="gate")
    def gate(candidate: str) -> str:
        """The candidate against the version in production; a fail is final (no retries: the
        same rows and seed give the same verdict), no verdict is retried."""
        code = _mlship("gate", candidate, "--against", PIPELINE["model"] + "@production")
        if code == GATE_FAILED:
            raise AirflowFailException(f"{candidate} failed the gate: it is not packaged")
        if code != 0:
            raise RuntimeError(f"mlship gate could not judge {candidate} (exit {code})")
        return candidate

    @task(task_id="package")
    def package(candidate: str) -> str:
        """Write the version's bundle under the bundles directory (once: bundles are whole)."""
        model, _, version = candidate.rpartition(":")
        output = os.path.join(PIPELINE["bundles"], f"{model}-{version}")
        if os.path.isdir(output) and os.listdir(output):
            log.info("%s is packaged already in %s", candidate, output)
            return output
        _check("package", candidate, "--output", output)
        return output

    candidate = train()
    validate() >> candidate
    package(gate(candidate) if PIPELINE["gate"] else candidate)


pipeline()
'''
)
