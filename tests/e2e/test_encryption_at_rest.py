"""Encryption at rest through the real command line: with ``MLSHIP_ENCRYPT_ARTIFACTS`` on, the
churn example leaves no artifact file that shows its data (no Parquet magic, no column name, no
pickle header), every command that reads artifacts still works, ``mlship keys rotate`` moves every
file under a new key and retires the old one, and without the keyring a command fails with a
message that names the artifact and the key it needs."""

from __future__ import annotations

import re
from pathlib import Path

from mlship.crypto.encryption import HEADER_SIZE, MAGIC, read_header
from tests.conftest import run_cli
from tests.e2e.test_pii_never_leaks import quick_models

ON = {"MLSHIP_ENCRYPT_ARTIFACTS": "true"}
MARKERS = (b"customer_id", b"monthly_charges", b"month-to-month", b"sklearn", b"roc_auc")
"""Column names, a category value, a module a pickled model names, a metric in a report."""


def _artifact_keys(home: Path) -> dict[str, str]:
    """Every artifact file by name, with the key id it is encrypted under; fails on any file
    that is not encrypted or that shows a plaintext marker."""
    files = [p for p in (home / "artifacts" / "objects").rglob("*") if p.is_file()]
    assert files
    keys = {}
    for path in files:
        data = path.read_bytes()
        assert data.startswith(MAGIC), f"{path} is not encrypted"
        assert not data.startswith(b"PAR1") and not data.startswith(b"\x80")
        shown = [marker for marker in MARKERS if marker in data]
        assert shown == [], f"{path} shows {shown}"
        header = read_header(data[:HEADER_SIZE], str(path))
        assert header is not None
        keys[path.parent.name + path.name] = header.key_id
    return keys


def _part_keys(home: Path) -> dict[str, str]:
    """Every prediction-log, label and usage-ledger part by name, with the key id it is encrypted
    under; fails on any part that is not encrypted or that shows a logged value."""
    parts = [
        *(home / "predictions").rglob("part-*.parquet"),
        *(home / "feedback").rglob("part-*"),
        *(home / "usage").rglob("part-*"),
    ]
    keys = {}
    for path in parts:
        data = path.read_bytes()
        assert data.startswith(MAGIC), f"{path} is not encrypted"
        shown = [marker for marker in (*MARKERS, b"PAR1") if marker in data]
        assert shown == [], f"{path} shows {shown}"
        header = read_header(data[:HEADER_SIZE], str(path))
        assert header is not None
        keys[path.name] = header.key_id
    return keys


def _reads_work(spec: Path, home: Path, run_id: str, out: Path) -> None:
    inputs = spec.parent / "data" / "new_customers.csv"
    scored = run_cli("predict", "churn", str(inputs), "-o", str(out), home=home, env=ON)
    assert "Scored 200 rows with churn:1" in scored.stdout
    assert out.read_text().startswith("customer_id,prediction")
    shown = run_cli("runs", "show", run_id, home=home, env=ON).stdout
    assert "Holdout metrics" in shown and "roc_auc" in shown
    profile = run_cli("data", "profile", "churn", home=home, env=ON).stdout
    assert re.search(r"Profiled \d+ rows × 13 columns", profile), profile


def test_encrypted_workspace_end_to_end(churn_spec: Path, tmp_path: Path) -> None:
    quick_models(churn_spec)
    home = tmp_path / "home"
    result = run_cli("run", str(churn_spec), home=home, env=ON)
    assert "Registered churn:1" in result.stdout
    run_id = re.search(r", run ([0-9a-f]{8}),", result.stdout)
    assert run_id is not None, result.stdout

    before = _artifact_keys(home)
    assert len(set(before.values())) == 1
    (old,) = set(before.values())
    status = run_cli("keys", "status", home=home, env=ON).stdout
    assert f"Current key: {old}" in status
    assert re.search(rf"{old}\s*│\s*current\s*│\s*{len(before)}\b", status), status
    assert re.search(r"plaintext\s*│\s*-\s*│\s*0\b", status), status
    _reads_work(churn_spec, home, run_id.group(1), tmp_path / "scored-1.csv")
    # What was scored is logged, and what scoring used is recorded: both are as unreadable on
    # disk as the artifacts.
    parts = _part_keys(home)
    assert len(parts) == 2 and set(parts.values()) == {old}
    watched = run_cli("monitor", "status", "churn", home=home, env=ON)
    assert "churn" in watched.stdout and "Traceback" not in watched.stderr
    parts = _part_keys(home)  # and what the monitoring pass used
    assert len(parts) == 3 and set(parts.values()) == {old}

    rotated = run_cli("keys", "rotate", home=home, env=ON).stdout
    after = _artifact_keys(home)
    assert after.keys() == before.keys()
    (new,) = set(after.values())
    assert new != old
    moved = len(before) + len(parts)
    assert f"Artifacts under new key {new}: {moved} re-encrypted, 0 already" in rotated
    assert set(_part_keys(home).values()) == {new}
    assert f"Retired from the keyring: {old}" in rotated
    status = run_cli("keys", "status", home=home, env=ON).stdout
    assert f"Current key: {new}" in status and old not in status
    _reads_work(churn_spec, home, run_id.group(1), tmp_path / "scored-2.csv")
    assert (tmp_path / "scored-1.csv").read_text() == (tmp_path / "scored-2.csv").read_text()

    keyring = home / "keys" / "artifacts.keyring"
    keyring.rename(tmp_path / "elsewhere.keyring")
    refused = run_cli(
        "predict", "churn", str(churn_spec.parent / "data" / "new_customers.csv"),
        "-o", str(tmp_path / "never.csv"), home=home, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    message = " ".join(refused.stderr.split())
    assert re.search(rf"artifact [0-9a-f]{{64}} is encrypted \(under key {new}\)", message), message
