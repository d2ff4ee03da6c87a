"""The README's tour, run exactly as written, after what ``make quickstart`` does; and what the
quickstart itself, the main job a newcomer runs first, wrote and printed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import mlship_env
from tests.serving import free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_script() -> str:
    text = README.read_text()
    match = re.search(r"<!-- tour:start -->\s*```bash\n(.*?)```\s*<!-- tour:end -->", text, re.S)
    assert match, "README.md has no tour block"
    return match.group(1)


def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    assert (venv / "bin" / "activate").is_file(), "tests must run inside the project's virtualenv"
    (tmp_path / ".venv").symlink_to(venv)
    env = mlship_env(tmp_path / ".mlship")
    del env["MLSHIP_HOME"]  # the tour relies on the default workspace in the current directory
    # The timeouts only stop a hung tour; the full example trains here, slowly on a busy machine.
    quickstart = subprocess.run(
        [str(venv / "bin" / "mlship"), "quickstart"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert quickstart.returncode == 0, quickstart.stderr
    assert (tmp_path / ".mlship" / "mlship.db").is_file()
    _check_quickstart(quickstart.stdout, tmp_path, env)

    port = str(free_port())
    # Stop a server the tour left running if a step fails before its `kill %1`.
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += tour_script().replace("8000", port)
    tour = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert tour.returncode == 0, f"stdout:\n{tour.stdout}\nstderr:\n{tour.stderr}"
    out = tour.stdout
    assert "Sources (lineage)" in out and "support_events.jsonl" in out
    assert "is not an integer" in out  # the quarantine's reasons
    assert (
        "Shared columns (a → b where they differ)" in out
    )  # data diff of the two dataset versions
    assert "Inputs unchanged: reusing dataset" in out  # the last run's ingest came from the cache
    assert "customer_id,prediction,proba_no,proba_yes" in out
    assert '"status":"ok"' in out
    assert '"predictions":[' in out
    assert "records[0].age: Input should be a valid integer" in out
    assert "Registered churn:2" in out
    assert "Model churn:2" in out
    assert "Fit: " in out  # the evaluation report of the last run


def _check_quickstart(out: str, root: Path, env: dict[str, str]) -> None:
    """What ``mlship quickstart`` (the main job a newcomer runs first) wrote and printed, and
    that the predict command it prints works pasted as it is."""
    project, home = root / "mlship-quickstart", root / ".mlship"
    assert (project / "pipeline.yaml").is_file()
    for name in ("crm.sqlite", "billing.parquet", "support_events.jsonl", "new_customers.csv"):
        assert (project / "data" / name).is_file()
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
    assert "mlship-quickstart/data/new_customers.csv" in predict
    assert serve.endswith("--port 8000")
    done = subprocess.run(
        shlex.split(predict), cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert (root / "predictions.csv").is_file()
