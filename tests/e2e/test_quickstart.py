"""``mlship quickstart``: the main job a newcomer runs first, and the commands it prints work."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from tests.conftest import mlship_env, run_cli


def test_quickstart_trains_registers_and_prints_working_commands(tmp_path: Path) -> None:
    home = tmp_path / ".mlship"
    result = run_cli("quickstart", "--dir", "demo", home=home, cwd=tmp_path)
    out = result.stdout
    assert (tmp_path / "demo" / "pipeline.yaml").is_file()
    for name in ("crm.sqlite", "billing.parquet", "support_events.jsonl", "new_customers.csv"):
        assert (tmp_path / "demo" / "data" / name).is_file()
    # The deliberately broken rows are quarantined, with reasons, and the report says where.
    assert "quarantined" in out
    assert "'forty' is not an integer" in out.replace("\n", " ")
    assert (home / "reports" / "churn-quarantine.parquet").is_file()
    assert (home / "reports" / "churn-data.html").is_file()
    assert "Leaderboard of run" in out
    for candidate in ("logistic", "forest", "boosting"):
        assert candidate in out
    assert "Registered churn:1" in out
    assert "Quickstart finished in" in out

    lines = [line.strip() for line in out.splitlines()]
    predict = next(line for line in lines if " predict churn:1 " in line)
    serve = next(line for line in lines if " serve churn:1 --port " in line)
    assert next(line for line in lines if line.startswith("curl -s -X POST"))
    assert "demo/data/new_customers.csv" in predict

    # Run the printed predict command exactly as a user would paste it.
    done = subprocess.run(
        shlex.split(predict),
        cwd=tmp_path,
        env=mlship_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "predictions.csv").is_file()
    assert serve.endswith("--port 8000")
