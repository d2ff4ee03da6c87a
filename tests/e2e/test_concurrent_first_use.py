"""A new workspace used by several processes at once: ten first ``mlship run``s started together
on one fresh workspace all succeed, and many processes opening the workspace and creating its
keys at the same moment agree on one schema and one set of intact keys."""

from __future__ import annotations

import multiprocessing
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from mlship.config import Settings
from mlship.security.keyring import load_keyring
from mlship.security.keys import load_or_create_key
from mlship.store.db import current_revision, head_revision
from mlship.train.model_io import load_model
from mlship.workspace import Workspace
from tests.conftest import mlship_env
from tests.quick_project import fast_churn

RUNS = 10
RACERS = 24


def assert_keys_intact(keys: Path) -> None:
    """Every key file is whole (64 hex characters), private, and no temporary file is left."""
    names = sorted(path.name for path in keys.iterdir())
    assert [n for n in names if n.endswith(".tmp")] == [], names
    for name in ("pii.key", "signing.key"):
        path = keys / name
        text = path.read_text()
        assert len(text) == 64 and all(c in "0123456789abcdef" for c in text), (name, text)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ten_first_runs_at_once_on_a_fresh_workspace_all_succeed(tmp_path: Path) -> None:
    spec = fast_churn(tmp_path / "churn")
    home = tmp_path / "home"
    env = mlship_env(home, {"MLSHIP_N_JOBS": "1", "MLSHIP_USER": "tester"})
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "mlship", "run", str(spec)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RUNS)
    ]
    outputs = [process.communicate(timeout=600) for process in started]
    failed = [
        f"exit {process.returncode}\n{err}"
        for process, (_, err) in zip(started, outputs, strict=True)
        if process.returncode != 0
    ]
    assert failed == []
    assert all("Traceback" not in err for _, err in outputs)

    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    try:
        runs = workspace.tracking.list_runs(limit=100)
        assert len(runs) == RUNS
        assert {run.status for run in runs} == {"succeeded"}
        datasets = workspace.tracking.list_datasets()
        assert len(datasets) == 1  # the same data, stored and recorded once
        assert {run.dataset_id for run in runs} == {datasets[0].id}
        versions = [workspace.tracking.get_version("churn", n) for n in range(1, RUNS + 1)]
        assert sorted(v.run_id for v in versions) == sorted(run.id for run in runs)
        registered = {
            line.split("Registered churn:")[1].split(" ")[0]
            for out, _ in outputs
            for line in out.splitlines()
            if "Registered churn:" in line
        }
        assert registered == {str(n) for n in range(1, RUNS + 1)}
        for version in versions:  # each signature verifies with the one signing key
            load_model(version, workspace.artifacts, workspace.signer)
    finally:
        workspace.close()
    assert_keys_intact(home / "keys")


def _open_and_create(home: str, barrier: Any, results: Any) -> None:
    """One racer: wait for the others, then open the workspace and create everything it keeps."""
    settings = Settings(home=Path(home), n_jobs=1, user="tester", encrypt_artifacts=True)
    barrier.wait()
    workspace = Workspace.open(settings)
    try:
        metadata = workspace.metadata
        signing = workspace.signing_key
        pii = load_or_create_key(None, settings.pii_key_file_resolved)
        keyring = load_keyring(settings, create=True)
        assert keyring is not None
        stored = workspace.artifacts.put_bytes(b"the same bytes from every process")
        dataset, _ = metadata.get_or_add_dataset(
            data_hash="d" * 64,
            artifact_sha256=stored.sha256,
            n_rows=1,
            columns=[{"name": "x"}],
            sources=[],
        )
        metadata.remember_ingest("same inputs", dataset.id)
        results.put((signing.hex(), pii.hex(), keyring.current_id, dataset.id, stored.sha256))
    except BaseException as exc:
        results.put(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        workspace.close()


def test_many_processes_opening_a_new_workspace_at_once_agree_on_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(RACERS)
    results = context.Queue()
    home = tmp_path / "home"
    racers = [
        context.Process(target=_open_and_create, args=(str(home), barrier, results))
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    found = [results.get(timeout=300) for _ in racers]
    for racer in racers:
        racer.join(timeout=60)
    assert [r for r in found if r[0] == "failed"] == []
    assert len(set(found)) == 1  # one signing key, one PII key, one keyring, one dataset

    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    try:
        engine = workspace.metadata.engine
        assert current_revision(engine) == head_revision(engine)
        assert "datasets" in inspect(engine).get_table_names()
        assert len(workspace.tracking.list_datasets()) == 1
    finally:
        workspace.close()
    assert_keys_intact(home / "keys")
    assert stat.S_IMODE((home / "keys" / "artifacts.keyring").stat().st_mode) == 0o600
