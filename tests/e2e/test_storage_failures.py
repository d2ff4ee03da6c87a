"""Stores on real filesystems that refuse writes: a read-only or full artifact store, a read-only
reports folder, a read-only database, an output folder that cannot be written.

Each command runs in a private mount namespace (``unshare --mount --map-root-user``), where it
mounts a small tmpfs, read-only or filled up, over the store first: the filesystem really is
read-only or full (root ignores file modes, so ``chmod`` would prove nothing), the mount
vanishes with the command, and no privilege is needed beyond user namespaces. The command line
must say which store, where, and what to do, exit non-zero without a traceback, and leave no
data report for a dataset it did not store.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mlship.config import Settings
from mlship.store.entities import Dataset, Run
from mlship.workspace import Workspace
from tests.conftest import mlship_env
from tests.mounts import UNSHARE, full, mount_namespaces, read_only
from tests.quick_project import fast_churn


def run_mounted(
    mounts: str, *args: str, home: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``mlship ARGS`` in a mount namespace of its own, after the shell commands ``mounts``."""
    command = shlex.join([sys.executable, "-m", "mlship", *args])
    return subprocess.run(
        [*UNSHARE, "sh", "-ec", f"{mounts}\nexec {command}"],
        env=mlship_env(home, {"MLSHIP_N_JOBS": "1", **(env or {})}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """What the command printed on stderr, with the console's line wrapping undone."""
    return " ".join(result.stderr.split())


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = said(result)
    assert message.startswith("error: ") or "\nerror: " in result.stderr, message
    for text in expected:
        assert text in message, message


_mount_namespaces = pytest.fixture(scope="module", autouse=True)(mount_namespaces)


def reports(home: Path) -> list[str]:
    folder = home / "reports"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def recorded(home: Path) -> tuple[list[Dataset], list[Run]]:
    """The datasets and runs the workspace at ``home`` recorded."""
    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    try:
        return workspace.tracking.list_datasets(), workspace.tracking.list_runs()
    finally:
        workspace.close()


def test_a_read_only_artifact_store_is_found_before_training(tmp_path: Path) -> None:
    spec, home, store = fast_churn(tmp_path / "churn"), tmp_path / "home", tmp_path / "store"
    result = run_mounted(
        read_only(store),
        "run",
        str(spec),
        home=home,
        cwd=tmp_path,
        env={"MLSHIP_ARTIFACT_ROOT": str(store)},
    )
    assert_refused(
        result,
        f"error: the artifact store at {store} is read-only",
        "remount it read-write, or set MLSHIP_ARTIFACT_ROOT to a writable directory",
    )
    assert "Ingesting" not in result.stdout  # stopped before any work
    assert reports(home) == []
    assert recorded(home) == ([], [])


def test_a_full_artifact_store_is_found_before_training(tmp_path: Path) -> None:
    spec, home, store = fast_churn(tmp_path / "churn"), tmp_path / "home", tmp_path / "store"
    result = run_mounted(
        full(store),
        "run",
        str(spec),
        home=home,
        cwd=tmp_path,
        env={"MLSHIP_ARTIFACT_ROOT": str(store)},
    )
    assert_refused(
        result,
        f"error: the artifact store at {store} is full (no space left on the device)",
        "free some space there, or set MLSHIP_ARTIFACT_ROOT to a directory on a larger disk",
    )
    assert reports(home) == []


def test_a_store_that_fills_up_while_storing_the_dataset_leaves_no_report(
    tmp_path: Path,
) -> None:
    """The probe passes (two pages free); the dataset does not fit. The run fails naming the
    store, no dataset is recorded, and ``reports/`` holds no report claiming one."""
    spec, home, store = fast_churn(tmp_path / "churn"), tmp_path / "home", tmp_path / "store"
    result = run_mounted(
        full(store, pages_free=2),
        "run",
        str(spec),
        home=home,
        cwd=tmp_path,
        env={"MLSHIP_ARTIFACT_ROOT": str(store)},
    )
    assert_refused(result, f"error: the artifact store at {store} is full")
    assert "Read crm" in result.stderr + result.stdout  # it got as far as reading the data
    assert reports(home) == []
    datasets, runs = recorded(home)
    assert datasets == []
    assert [run.status for run in runs] == ["failed"]
    assert f"the artifact store at {store} is full" in (runs[0].error or "")


def test_a_read_only_reports_folder_is_found_before_training(tmp_path: Path) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    result = run_mounted(read_only(home / "reports"), "run", str(spec), home=home, cwd=tmp_path)
    assert_refused(
        result,
        f"error: the reports folder at {home / 'reports'} is read-only",
        "set MLSHIP_HOME to a writable directory",
    )
    assert not (home / "artifacts" / "objects").exists()


def test_a_read_only_workspace_names_its_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_mounted(read_only(home), "runs", "list", home=home, cwd=tmp_path)
    assert_refused(
        result,
        f"error: the metadata database at {home / 'mlship.db'} is read-only",
        "set MLSHIP_DATABASE_URL (or MLSHIP_HOME) to a writable directory",
    )


def test_a_full_disk_under_the_database_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_mounted(full(home), "runs", "list", home=home, cwd=tmp_path)
    assert_refused(
        result,
        f"error: the metadata database at {home / 'mlship.db'} is full",
        "free some space there, or set MLSHIP_DATABASE_URL (or MLSHIP_HOME) to a directory on",
    )


def test_an_output_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    """A folder the user chose (``--output``), which no store owns: named with its problem."""
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,x\n2,y\n")
    out = tmp_path / "out"
    result = run_mounted(
        read_only(out),
        "data",
        "profile",
        str(data),
        "--output",
        str(out),
        home=tmp_path / "home",
        cwd=tmp_path,
    )
    assert_refused(
        result,
        f"error: the directory at {out} is read-only",
        "remount it read-write, or use a writable directory",
    )


def test_a_read_only_keys_directory_is_named_with_the_settings_that_move_the_key(
    tmp_path: Path,
) -> None:
    spec, home = fast_churn(tmp_path / "churn"), tmp_path / "home"
    result = run_mounted(read_only(home / "keys"), "run", str(spec), home=home, cwd=tmp_path)
    assert_refused(
        result,
        f"error: the keys directory at {home / 'keys'} is read-only",
        "or set MLSHIP_SIGNING_KEY, or point MLSHIP_SIGNING_KEY_FILE into a writable directory",
    )
    assert reports(home) == []
