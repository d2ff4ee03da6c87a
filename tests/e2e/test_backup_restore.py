"""Backups through the real command line: the restore drill, and what a backup must survive.

The drill backs a trained workspace up, restores it into an empty place and shows that the
restored workspace is the same workspace: the model is shown, scores the same rows to the same
answers, the run reproduces, and every signature checks. Around it: a damaged object makes
``backup verify`` fail naming it, a second backup of an unchanged workspace copies nothing, a
backup killed mid-copy never shows as complete, and the same works with the metadata on
PostgreSQL and with the backups in object storage.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env, run_cli
from tests.objectstore import ObjectStore
from tests.quick_project import fast_churn


def _said(text: str) -> str:
    return " ".join(text.split())


def _backup_name(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("Backup "))
    return line.split()[1]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace in which the quickest churn project was run once (churn:1), and its spec."""
    from mlship.spec import load_spec
    from mlship.train.run import execute

    root = tmp_path_factory.mktemp("backed-up")
    spec, home = fast_churn(root / "churn"), root / "home"
    workspace = Workspace.open(Settings(home=home, n_jobs=1, user="tester"))
    try:
        execute(load_spec(spec), workspace)
    finally:
        workspace.close()
    return home, spec


def test_restore_drill(original: tuple[Path, Path], tmp_path: Path) -> None:
    home, spec = original
    backups, restored = tmp_path / "backups", tmp_path / "restored"
    rows = spec.parent / "data" / "new_customers.csv"
    before = tmp_path / "before.csv"
    # logs a part, and records what it used in a part of the usage ledger
    run_cli("predict", "churn:1", str(rows), "-o", str(before), home=home)

    taken = run_cli("backup", "--to", str(backups), home=home)
    name = _backup_name(taken.stdout)
    assert "Log parts: 2 (2 copied)" in taken.stdout, taken.stdout
    assert "Keys: not included" in taken.stdout
    manifest = json.loads((backups / name / "manifest.json").read_text())
    assert manifest["database"]["kind"] == "sqlite"
    assert manifest["artifacts"] and all(a["signature"] for a in manifest["artifacts"])
    assert manifest["keys"]["included"] is False
    assert not (backups / name / "keys").exists()

    refused = invoke_cli("restore", str(backups / name), "--into", str(home), home=home,
                         check=False)  # fmt: skip
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{home} is not empty" in _said(refused.stderr), refused.stderr
    keyless = invoke_cli("restore", str(backups / name), "--into", str(restored), home=home,
                         check=False)  # fmt: skip
    assert "--keys DIR" in _said(keyless.stderr), keyless.stderr
    assert not restored.exists()  # nothing written before the keys were found

    done = run_cli("restore", str(backups / name), "--into", str(restored),
                   "--keys", str(home / "keys"), home=home)  # fmt: skip
    assert f"Restored backup {name} into {restored}" in _said(done.stdout), done.stdout
    assert sorted(part["log"] for part in manifest["logs"]) == ["predictions/batch", "usage"]
    for part in manifest["logs"]:
        assert (restored / part["log"] / part["name"]).read_bytes() == (
            home / part["log"] / part["name"]
        ).read_bytes()

    shown = run_cli("models", "show", "churn:1", home=restored)
    assert "churn" in shown.stdout and "artifact sha256" in shown.stdout, shown.stdout
    after = tmp_path / "after.csv"
    run_cli("predict", "churn:1", str(rows), "-o", str(after), home=restored)
    assert after.read_text() == before.read_text()
    signed = invoke_cli("models", "sign", "churn:1", home=restored)
    assert "churn:1: already signed" in signed.stdout
    stored = invoke_cli("keys", "sign-all", home=restored)
    count = len(manifest["artifacts"])
    assert f"Artifacts signed: 0; already signed: {count}" in stored.stdout, stored.stdout
    reproduced = run_cli("runs", "reproduce", "churn", home=restored, cwd=spec.parent)
    assert "Reproduced: every metric within" in reproduced.stdout, reproduced.stdout


def test_incremental_backup_and_a_damaged_object(
    original: tuple[Path, Path], tmp_path: Path
) -> None:
    home, _ = original
    backups = tmp_path / "backups"
    first = invoke_cli("backup", "--to", str(backups), home=home)
    count = int(_said(first.stdout).split("Artifacts: ")[1].split()[0])
    assert f"Artifacts: {count} ({count} copied" in first.stdout, first.stdout
    again = invoke_cli("backup", "--to", str(backups), home=home)
    assert f"Artifacts: {count} (0 copied, 0 B; {count} already backed up)" in again.stdout
    name = _backup_name(again.stdout)
    checked = invoke_cli("backup", "verify", str(backups / name), home=home)
    assert f"Backup {name} is sound" in _said(checked.stdout), checked.stdout

    manifest = json.loads((backups / name / "manifest.json").read_text())
    victim = manifest["artifacts"][0]["sha256"]
    path = backups / "objects" / victim[:2] / victim[2:]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    broken = invoke_cli("backup", "verify", str(backups / name), home=home, check=False)
    assert broken.returncode == 1, broken.stdout
    assert f"artifact {victim}" in broken.stdout and "corrupt" in broken.stdout, broken.stdout


def _many_artifacts(home: Path, count: int, size: int, *, encrypt: bool = False) -> Settings:
    """A workspace (no training: its schema and ``count`` signed artifacts of ``size`` bytes)."""
    settings = Settings(home=home, user="tester", encrypt_artifacts=encrypt)
    workspace = Workspace.open(settings)
    try:
        workspace.metadata  # noqa: B018 - creates the schema
        for _ in range(count):
            workspace.artifacts.put_bytes(secrets.token_bytes(size))
    finally:
        workspace.close()
    return settings


@pytest.fixture
def quick_home(tmp_path: Path) -> Iterator[Path]:
    """A home in memory where there is one (/dev/shm), so that the hundreds of small artifacts
    a test needs are written without a disk sync each; the backups it takes go to disk."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path / "home"
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="mlship-backup-") as folder:
        yield Path(folder) / "home"


def test_a_killed_backup_never_shows_as_complete(quick_home: Path, tmp_path: Path) -> None:
    home, backups = quick_home, tmp_path / "backups"
    _many_artifacts(home, 400, 16 << 10)
    process = subprocess.Popen(
        [sys.executable, "-m", "mlship", "backup", "--to", str(backups)],
        env=mlship_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    objects = backups / "objects"
    deadline = time.monotonic() + 60
    while not (objects.is_dir() and any(objects.glob("*/*"))):  # an object, copied whole
        assert process.poll() is None, "the backup ended before copying anything"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    (interrupted,) = [p.name for p in backups.iterdir() if p.name[0].isdigit()]
    assert not (backups / interrupted / "manifest.json").exists()

    listed = invoke_cli("backup", "list", str(backups), home=home)
    assert "incomplete" in listed.stdout and "│ complete" not in listed.stdout, listed.stdout
    refused = invoke_cli("restore", str(backups / interrupted), "--into", str(tmp_path / "r"),
                         home=home, check=False)  # fmt: skip
    assert refused.returncode == 1 and "is incomplete" in _said(refused.stderr), refused.stderr

    finished = invoke_cli("backup", "--to", str(backups), home=home)
    copied = int(_said(finished.stdout).split("Artifacts: 400 (")[1].split()[0])
    assert 0 < copied < 400  # what the killed backup copied is not copied again
    pruned = invoke_cli("backup", "prune", str(backups), "--keep-last", "1", home=home)
    assert f"Removed: {interrupted}" in pruned.stdout, pruned.stdout
    assert "Objects deleted: 0; kept: 400" in pruned.stdout
    assert "Files left by interrupted backups" in pruned.stdout  # its snapshot, at least
    assert not any((backups / "incoming").iterdir())

    # A restore killed half-way leaves no workspace that opens; run again, it finishes.
    (name,) = [p.name for p in backups.iterdir() if p.name[0].isdigit()]
    restored = tmp_path / "restored"
    command = [sys.executable, "-m", "mlship", "restore", str(backups / name),
               "--into", str(restored), "--keys", str(home / "keys")]  # fmt: skip
    process = subprocess.Popen(
        command, env=mlship_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    objects = restored / "artifacts" / "objects"
    deadline = time.monotonic() + 60
    while not (objects.is_dir() and any(objects.glob("*/*"))):
        assert process.poll() is None, "the restore ended before copying anything"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    opened = invoke_cli("models", "list", home=restored, check=False)
    assert opened.returncode == 1 and "Traceback" not in opened.stderr, opened.stderr
    assert "is being restored from" in _said(opened.stderr), opened.stderr
    again = subprocess.run(command, env=mlship_env(home), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert not (restored / ".mlship-restoring").exists()
    assert invoke_cli("models", "list", home=restored).returncode == 0
    assert len(list(objects.glob("*/*"))) >= 400


def test_retention_keeps_the_newest_and_sweeps_unlisted_objects(tmp_path: Path) -> None:
    home, backups = tmp_path / "home", tmp_path / "backups"
    settings = _many_artifacts(home, 2, 1000)
    first = _backup_name(invoke_cli("backup", "--to", str(backups), home=home).stdout)
    workspace = Workspace.open(settings)
    try:
        gone = workspace.artifacts.put_bytes(b"only in the first two backups")
    finally:
        workspace.close()
    second = _backup_name(invoke_cli("backup", "--to", str(backups), home=home).stdout)
    (home / "artifacts" / "objects" / gone.sha256[:2] / gone.sha256[2:]).unlink()
    (home / "artifacts" / "signatures" / gone.sha256[:2] / gone.sha256[2:]).unlink()
    third = _backup_name(invoke_cli("backup", "--to", str(backups), home=home).stdout)

    pruned = invoke_cli("backup", "prune", str(backups), "--keep-last", "1", home=home)
    assert f"Removed: {first}, {second}" in pruned.stdout, pruned.stdout
    assert "Objects deleted: 1; kept: 2" in pruned.stdout
    listed = invoke_cli("backup", "list", str(backups), home=home)
    assert f"│ {third} " in listed.stdout and f"│ {first} " not in listed.stdout
    assert invoke_cli("backup", "verify", str(backups / third), home=home).returncode == 0


def test_backup_and_restore_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    from tests.services import create_database

    suffix = secrets.token_hex(3)
    source = create_database(postgres_url, f"backup_src_{suffix}")
    target = create_database(postgres_url, f"backup_dst_{suffix}")
    home, backups, restored = tmp_path / "home", tmp_path / "backups", tmp_path / "restored"
    env = {"MLSHIP_DATABASE_URL": source}
    invoke_cli("users", "add", "ada", "--role", "reviewer", home=home, env=env)
    taken = invoke_cli("backup", "--to", str(backups), "--include-keys", home=home, env=env)
    name = _backup_name(taken.stdout)
    assert (backups / name / "database.pgdump").is_file()
    assert (backups / name / "keys" / "signing.key").is_file()
    assert invoke_cli("backup", "verify", str(backups / name), home=home).returncode == 0

    into_used = invoke_cli("restore", str(backups / name), "--into", str(restored),
                           "--database-url", source, home=home, check=False)  # fmt: skip
    assert into_used.returncode == 1 and "is not empty" in _said(into_used.stderr)
    into_sqlite = invoke_cli("restore", str(backups / name), "--into", str(restored),
                             home=home, check=False)  # fmt: skip
    assert "give --database-url" in _said(into_sqlite.stderr), into_sqlite.stderr

    invoke_cli("restore", str(backups / name), "--into", str(restored), "--database-url", target,
               home=home)  # fmt: skip
    users = invoke_cli("users", "list", home=restored, env={"MLSHIP_DATABASE_URL": target})
    assert "ada" in users.stdout and "reviewer" in users.stdout
    assert (restored / "keys" / "signing.key").read_bytes() == (
        home / "keys" / "signing.key"
    ).read_bytes()
    assert os.stat(restored / "keys" / "signing.key").st_mode & 0o077 == 0


def test_backups_in_object_storage(object_store: ObjectStore, tmp_path: Path) -> None:
    home, restored = tmp_path / "home", tmp_path / "restored"
    _many_artifacts(home, 3, 2000)
    destination = f"s3://{object_store.bucket}/backups-{secrets.token_hex(4)}"
    env = object_store.env()
    name = _backup_name(invoke_cli("backup", "--to", destination, home=home, env=env).stdout)
    again = invoke_cli("backup", "--to", destination, home=home, env=env)
    assert "Artifacts: 3 (0 copied" in again.stdout, again.stdout
    listed = invoke_cli("backup", "list", destination, home=home, env=env)
    assert listed.stdout.count("complete") == 2, listed.stdout
    invoke_cli("backup", "verify", f"{destination}/{name}", home=home, env=env)

    invoke_cli("restore", f"{destination}/{name}", "--into", str(restored),
               "--keys", str(home / "keys"), home=home, env=env)  # fmt: skip
    original = Workspace.open(Settings(home=home, user="tester"))
    copy = Workspace.open(Settings(home=restored, user="tester"))
    try:
        from mlship.store.artifacts import LocalArtifactStore

        ours, theirs = original.artifacts, copy.artifacts
        assert isinstance(ours, LocalArtifactStore) and isinstance(theirs, LocalArtifactStore)
        addresses = list(ours.addresses())
        assert addresses == list(theirs.addresses())
        assert all(theirs.get_bytes(a) == ours.get_bytes(a) for a in addresses)
    finally:
        original.close()
        copy.close()


def test_an_encrypted_workspace_backed_up_with_its_keys(tmp_path: Path) -> None:
    from mlship.crypto.encryption import MAGIC

    home, backups, restored = tmp_path / "home", tmp_path / "backups", tmp_path / "restored"
    _many_artifacts(home, 2, 3000, encrypt=True)
    env = {"MLSHIP_ENCRYPT_ARTIFACTS": "true"}
    taken = invoke_cli("backup", "--to", str(backups), "--include-keys", home=home, env=env)
    name = _backup_name(taken.stdout)
    manifest = json.loads((backups / name / "manifest.json").read_text())
    assert manifest["encrypted"] is True and manifest["keys"]["included"] is True
    assert "artifacts.keyring" in manifest["keys"]["files"]
    for artifact in manifest["artifacts"]:
        sha = artifact["sha256"]
        assert (backups / "objects" / sha[:2] / sha[2:]).read_bytes().startswith(MAGIC)
        assert (backups / name / "keys" / "signing.key").stat().st_mode & 0o077 == 0

    elsewhere = tmp_path / "elsewhere"  # a machine without the workspace's keys
    checked = invoke_cli("backup", "verify", str(backups / name), home=elsewhere)
    assert "is sound" in checked.stdout, checked.stdout
    invoke_cli("restore", str(backups / name), "--into", str(restored), home=elsewhere, env=env)
    copy = Workspace.open(Settings(home=restored, user="tester", encrypt_artifacts=True))
    try:
        for artifact in manifest["artifacts"]:
            assert len(copy.artifacts.get_bytes(artifact["sha256"])) == 3000
    finally:
        copy.close()


def _in_bucket(object_store: ObjectStore, home: Path, root: str) -> Settings:
    return Settings(
        home=home,
        user="tester",
        artifact_root=root,
        s3_endpoint_url=object_store.endpoint,
        s3_access_key_id=object_store.access_key,
        s3_secret_access_key=SecretStr(object_store.secret_key),
    )


def test_a_workspace_with_its_artifacts_in_a_bucket(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    home, backups, restored = tmp_path / "home", tmp_path / "backups", tmp_path / "restored"
    source = f"s3://{object_store.bucket}/ws-{secrets.token_hex(4)}"
    target = f"s3://{object_store.bucket}/ws-{secrets.token_hex(4)}"
    workspace = Workspace.open(_in_bucket(object_store, home, source))
    try:
        workspace.metadata  # noqa: B018 - creates the schema
        stored = [workspace.artifacts.put_bytes(secrets.token_bytes(500)) for _ in range(2)]
    finally:
        workspace.close()
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": source}
    name = _backup_name(invoke_cli("backup", "--to", str(backups), home=home, env=env).stdout)

    keys = str(home / "keys")
    used = invoke_cli("restore", str(backups / name), "--into", str(restored), "--keys", keys,
                      home=home, env=env, check=False)  # fmt: skip
    assert f"the artifact store {source} is not empty" in _said(used.stderr), used.stderr
    assert not restored.exists()
    moved = {**env, "MLSHIP_ARTIFACT_ROOT": target}
    invoke_cli("restore", str(backups / name), "--into", str(restored), "--keys", keys,
               home=home, env=moved)  # fmt: skip
    copy = Workspace.open(_in_bucket(object_store, restored, target))
    try:
        assert {ref.sha256 for ref in stored} <= set(copy.artifacts.addresses())  # type: ignore[attr-defined]
        for ref in stored:
            assert len(copy.artifacts.get_bytes(ref.sha256)) == 500
    finally:
        copy.close()


def test_what_a_backup_needs_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _many_artifacts(home, 1, 10)
    nowhere = invoke_cli("backup", home=home, check=False)
    assert nowhere.returncode == 1 and "MLSHIP_BACKUP_ROOT" in _said(nowhere.stderr)
    remote = invoke_cli("backup", "--to", str(tmp_path / "b"), home=home, check=False,
                        env={"MLSHIP_URL": "http://127.0.0.1:9"})  # fmt: skip
    assert "on the tracking server's host" in _said(remote.stderr), remote.stderr
    configured = invoke_cli("backup", home=home, env={"MLSHIP_BACKUP_ROOT": str(tmp_path / "b")})
    name = _backup_name(configured.stdout)
    listed = invoke_cli("backup", "verify", name, home=home,
                        env={"MLSHIP_BACKUP_ROOT": str(tmp_path / "b")})  # fmt: skip
    assert f"Backup {name} is sound" in _said(listed.stdout)
    missing = invoke_cli("backup", "verify", "20000101T000000Z", home=home, check=False,
                         env={"MLSHIP_BACKUP_ROOT": str(tmp_path / "b")})  # fmt: skip
    assert missing.returncode == 1 and "there is no backup" in _said(missing.stdout)
