"""Budgets through the command line: churn:1 tagged ``team=growth``, a ledger of serving work
that spends the team's monthly budget twice over, ``mlship cost budgets`` saying so, and
``mlship monitor run`` delivering the budget's alerts and a cost rule's to a real webhook
receiver once, then keeping quiet within the cool-down, with both in the alert history."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlship.config import Settings
from mlship.costs.ledger import UsageRecord, write_usage
from mlship.workspace import Workspace
from tests.conftest import invoke_cli

SETTINGS = """\
[prices]
cpu_hour = 1.0
gb_hour = 0.0

[[budgets]]
team = "growth"
monthly = 5.0
warn_at = 0.5
alert = true

[[budgets]]
model = "churn"
monthly = 100000.0

[[budgets]]
team = "risk"
monthly = 20.0
"""


def _row(stdout: str, name: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)]
        if name in cells:
            return [c for c in cells if c]
    raise AssertionError(f"no row {name!r} in:\n{stdout}")


def test_an_overspent_team_is_shown_over_and_alerted_once(
    trained: Workspace, tmp_path: Path, received: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = received
    home, project = tmp_path / "ws", tmp_path / "project"
    shutil.copytree(trained.settings.home, home)
    # Servers of the trained workspace in other tests recorded their usage there: start clean.
    shutil.rmtree(home / "usage", ignore_errors=True)
    project.mkdir()
    (project / "mlship.toml").write_text(SETTINGS)
    invoke_cli("models", "tag", "churn", "team=growth", home=home, cwd=project)

    # Two days of one server's work for churn:1: 10 CPU-hours (10.0 at 1.0 an hour), 4,000
    # predictions; written as a server writes it, one part of the ledger.
    now = datetime.now(UTC)
    workspace = Workspace.open(Settings(home=home))
    try:
        write_usage(
            workspace.logs,
            [
                UsageRecord(
                    kind="serving",
                    started_at=now - timedelta(days=2),
                    ended_at=now - timedelta(minutes=1),
                    model="churn",
                    version=1,
                    deployment="churn-prod",
                    cpu_seconds=36_000.0,
                    memory_byte_seconds=2**30 * 3600.0,
                    requests=400,
                    predictions=4000,
                )
            ],
            workspace.sealing,
        )
    finally:
        workspace.close()

    shown = invoke_cli("cost", "budgets", home=home, cwd=project).stdout
    assert _row(shown, "team growth")[-1] == "over"
    assert _row(shown, "model churn")[-1] == "ok"
    assert _row(shown, "team risk")[1:] == ["20.00", "0.00", "0.00", "0.00", "0%", "ok"]
    assert "Forecast over budget: team growth" in shown
    figures = json.loads(invoke_cli("cost", "budgets", "--json", home=home, cwd=project).stdout)
    growth, churn, risk = figures["budgets"]
    assert (growth["team"], growth["status"], growth["currency"]) == ("growth", "over", "USD")
    # The ledger's 10.0 (what falls in this month of it) and the small training run; at least
    # the month so far, and the two days' rate (5 a day) to the month's end on top.
    assert growth["forecast"] >= growth["month_to_date"] > 0
    assert growth["rate_per_day"] >= 5.0
    assert growth["share"] == pytest.approx(growth["forecast"] / 5.0)
    assert growth["share"] > 1
    # churn is the team's only model: the same spending, against a far larger budget.
    assert churn["forecast"] == pytest.approx(growth["forecast"])
    assert churn["status"] == "ok"
    assert (risk["forecast"], risk["status"]) == (0.0, "ok")

    rules = project / "rules.yaml"
    rules.write_text(
        f"""\
webhook:
  url: {url}
rules:
  - name: churn-answers
    model: churn
    metric: cost.per_1000_predictions
    window: 7d
    condition: "> 1"
    severity: warning
    actions: [log, webhook]
"""
    )
    first = invoke_cli("monitor", "run", "--rules", str(rules), home=home, cwd=project).stdout
    assert "3 fired, 0 suppressed" in first
    assert len(bodies) == 3
    by_rule = {body["rule"]: body for body in bodies}
    answers = by_rule["churn-answers"]
    assert (answers["model"], answers["metric"]) == ("churn", "cost.per_1000_predictions")
    assert answers["value"] == pytest.approx(2.5)  # 10.0 for 4,000 predictions
    critical = by_rule["budget.team.growth.critical"]
    assert (critical["model"], critical["team"], critical["severity"]) == (
        "team:growth",
        "growth",
        "critical",
    )
    assert critical["metric"] == "cost.budget_share"
    assert critical["value"] == pytest.approx(growth["share"], rel=0.01)
    assert critical["condition"] == ">= 1"
    assert "team growth reaches 100% of its budget of 5" in critical["description"]
    assert by_rule["budget.team.growth.warning"]["condition"] == ">= 0.5"

    again = invoke_cli("monitor", "run", "--rules", str(rules), home=home, cwd=project).stdout
    assert "0 fired, 3 suppressed" in again
    assert len(bodies) == 3  # the cool-down kept the receiver quiet

    history = invoke_cli(
        "monitor", "alerts", "--model", "team:growth", home=home, cwd=project
    ).stdout
    statuses = [
        (cells[2], cells[7])
        for line in history.splitlines()
        if len(cells := [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]) > 7
        and cells[2].startswith("budget.")
    ]
    assert sorted(statuses) == [
        ("budget.team.growth.critical", "fired"),
        ("budget.team.growth.critical", "suppressed"),
        ("budget.team.growth.warning", "fired"),
        ("budget.team.growth.warning", "suppressed"),
    ]
    assert "webhook: ok (HTTP 204)" in history


def test_budgets_are_explained_when_none_are_declared_or_one_is_wrong(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    none = invoke_cli("cost", "budgets", home=tmp_path / "ws", cwd=project).stdout
    assert "No budgets: declare them in mlship.toml as [[budgets]]" in none
    (project / "mlship.toml").write_text('[[budgets]]\nteam = "growth"\nmonthly = "lots"\n')
    wrong = invoke_cli("cost", "budgets", home=tmp_path / "ws", cwd=project, check=False)
    assert wrong.returncode != 0
    # the message names the settings file, so where its line wraps depends on the temporary path
    assert "budgets[0].monthly: Input should be a valid number" in " ".join(wrong.stderr.split())
    assert "Traceback" not in wrong.stderr


def test_budgets_that_alert_are_evaluated_without_a_rules_file(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "ws"
    project.mkdir()
    nothing = invoke_cli("monitor", "run", home=home, cwd=project, check=False)
    assert nothing.returncode != 0
    assert "no alert rules to evaluate: give --rules FILE, or set alert = true on a budget" in (
        nothing.stderr
    )
    (project / "mlship.toml").write_text(
        '[[budgets]]\nteam = "growth"\nmonthly = 5.0\nalert = true\n'
    )
    quiet = invoke_cli("monitor", "run", home=home, cwd=project).stdout
    assert "Budget alerts" in quiet
    rows = [_row(quiet, "budget.team.growth.warning"), _row(quiet, "budget.team.growth.critical")]
    # Nothing spent yet: a share of 0, below both.
    assert [(row[0], row[2], row[3], row[6]) for row in rows] == [
        ("team:growth", "cost.budget_share", "0.0000", "ok"),
        ("team:growth", "cost.budget_share", "0.0000", "ok"),
    ]
    assert "0 fired, 0 suppressed" in quiet
