"""An incremental ingest that dies after its dataset is stored, before its marks move, skips no
row: the next ingest reads the same rows again, finds the dataset already stored, and only then
moves the marks.

The death is real: the ingest is a client of a tracking server whose process ends right after it
commits the new dataset (``tests.server_dies_after_commit``), so the client never learns of it
and fails. The store it leaves behind is then ingested into directly, as the server's host would.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env
from tests.serving import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
PII_KEY = {"MLSHIP_PII_KEY": "incremental-team-pseudonym-key-" + "0" * 32}
SPEC = """\
name: visits
task: classification
sources:
  - name: visits
    path: visits.csv
    incremental: {mode: append}
columns:
  - {name: visit_id, type: integer, role: id, nullable: false}
  - {name: minutes, type: float}
  - {name: churned, type: category, role: target, nullable: false}
models:
  - {estimator: logistic_regression}
metric: accuracy
"""


def _rows(first: int, last: int) -> str:
    return "".join(f"{i},{i * 0.5},{'yes' if i % 3 else 'no'}\n" for i in range(first, last))


def _marks_serial(home: Path) -> int:
    workspace = Workspace.open(Settings(home=home, user="ops"))
    try:
        found = workspace.marks.ingest_marks("visits")
        assert found is not None
        return found.serial
    finally:
        workspace.close()


def test_a_crash_between_storing_and_moving_the_marks_rereads_the_same_rows(
    tmp_path: Path,
) -> None:
    home = tmp_path / "server"
    csv = tmp_path / "visits.csv"
    csv.write_text("visit_id,minutes,churned\n" + _rows(0, 30))
    spec = tmp_path / "visits.yaml"
    spec.write_text(SPEC)
    invoke_cli("data", "validate", str(spec), home=home, env=PII_KEY)
    assert _marks_serial(home) == 1

    invoke_cli("users", "add", "alice", "--role", "scientist", home=home)
    created = invoke_cli("tokens", "create", "alice", home=home).stdout
    token = next(line.strip() for line in created.splitlines() if line.strip().startswith("mls_"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    marker = tmp_path / "died"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.server_dies_after_commit", str(port), "/datasets"]
    dying = start_server(
        [*command, str(marker)],
        mlship_env(home, {"PYTHONPATH": path, **PII_KEY}),
        base,
        ready="/api/v1/health",
        ready_status=401,
    )
    with csv.open("a") as handle:
        handle.write(_rows(30, 50))
    client = {
        "MLSHIP_URL": base,
        "MLSHIP_TOKEN": token,
        "MLSHIP_RETRY_ATTEMPTS": "2",
        "MLSHIP_RETRY_SECONDS": "2",
        **PII_KEY,
    }
    failed = invoke_cli(
        "data", "validate", str(spec), home=tmp_path / "client", env=client, check=False
    )
    assert failed.returncode != 0, failed.stdout
    assert dying.process.wait(timeout=60) == 137 and marker.exists()
    # The dataset of 50 rows is stored; the marks did not move.
    assert _marks_serial(home) == 1
    server = Workspace.open(Settings(home=home, user="ops"))
    try:
        orphan = next(d for d in server.datasets.list_datasets() if d.n_rows == 50)
    finally:
        server.close()

    again = invoke_cli("data", "validate", str(spec), home=home, env=PII_KEY)
    assert f"Dataset {orphan.data_hash[:12]}: 50 rows" in again.stdout
    shown = json.loads(invoke_cli("data", "show", "visits", "--json", home=home).stdout)
    assert shown["data_hash"] == orphan.data_hash
    assert orphan.validation is not None
    assert orphan.validation["increment"]["rows_read"] == 20  # the same 20 rows, read again
    assert _marks_serial(home) == 2
    with csv.open("a") as handle:
        handle.write(_rows(50, 55))
    invoke_cli("data", "validate", str(spec), home=home, env=PII_KEY)
    latest = json.loads(invoke_cli("data", "show", "visits", "--json", home=home).stdout)
    assert latest["n_rows"] == 55 and latest["validation"]["increment"]["rows_read"] == 5
    assert latest["validation"]["increment"]["previous"] == orphan.data_hash
