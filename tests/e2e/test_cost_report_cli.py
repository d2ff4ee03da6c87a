"""``mlship cost report`` through the command line, on a workspace with a real training run, a
registered model with an owner and a team tag, and a usage ledger written as servers write it:
the parts add up to the totals, the team pays for its model's training, serving and storage,
and the HTML page has its charts and the forecast."""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.costs.items import Owners, training_items
from mlship.costs.ledger import UsageRecord, write_usage
from mlship.prices import GB
from mlship.store.clock import utcnow
from mlship.store.logstore import part_name
from mlship.workspace import Workspace
from tests.backends import open_backend
from tests.conftest import invoke_cli

SERVING_CPU = 36_000.0  # ten CPU-hours: a figure big enough to read in a table of 4 decimals


@pytest.fixture
def home(trained: Workspace, tmp_path: Path) -> Path:
    """A copy of the trained workspace (churn:1), handed to alice of the fraud team, with two
    hours of a server's work for it, a batch scoring of no model, and a prediction log."""
    copy = tmp_path / "ws"
    shutil.copytree(trained.settings.home, copy)
    # Servers of the trained workspace in other tests recorded their usage there: start clean.
    shutil.rmtree(copy / "usage", ignore_errors=True)
    invoke_cli("models", "owner", "churn", "alice", home=copy)
    invoke_cli("models", "tag", "churn", "team=fraud", home=copy)
    now = utcnow()
    workspace = Workspace.open(Settings(home=copy, user="tester"))
    try:
        write_usage(
            workspace.logs,
            [
                UsageRecord(
                    kind="serving",
                    started_at=now - timedelta(hours=h + 1),
                    ended_at=now - timedelta(hours=h),
                    model="churn",
                    version=1,
                    deployment="web",
                    cpu_seconds=SERVING_CPU / 2,
                    memory_byte_seconds=2 * GB * 3600,
                    requests=500,
                    predictions=2000,
                )
                for h in (1, 2)
            ],
            workspace.sealing,
        )
        write_usage(
            workspace.logs,
            [
                UsageRecord(
                    kind="batch",
                    started_at=now - timedelta(hours=3),
                    ended_at=now - timedelta(hours=2),
                    cpu_seconds=3600.0,
                    predictions=100,
                )
            ],
            workspace.sealing,
        )
        workspace.logs.put("predictions/web", part_name(), b"p" * 4096)
    finally:
        workspace.close()
    return copy


def _report(home: Path, *args: str) -> dict[str, Any]:
    result = invoke_cli("cost", "report", "--json", *args, home=home)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _group(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(g for g in document["groups"] if g["group"] == name)
    return found


def test_the_parts_add_up_and_the_team_pays_for_its_model(home: Path) -> None:
    workspace = Workspace.open(Settings(home=home, user="tester"))
    try:
        prices = workspace.settings.prices
        models = workspace.catalogue.list_models()
        (run,) = workspace.runs.list_runs()
        (training,) = training_items([run], prices, Owners.of(models))
        version = models[0].versions[0]
    finally:
        workspace.close()
    serving = SERVING_CPU / 3600 * prices.cpu_hour + 4 * prices.gb_hour

    by_kind = _report(home, "--by", "kind")
    total = by_kind["total"]["cost"]
    assert sum(g["cost"] for g in by_kind["groups"]) == pytest.approx(total)
    assert _group(by_kind, "training")["cost"] == pytest.approx(training.cost)
    assert _group(by_kind, "serving")["cost"] == pytest.approx(serving)
    assert _group(by_kind, "serving")["predictions"] == 4000
    assert _group(by_kind, "serving")["cost_per_1000_predictions"] == pytest.approx(serving / 4)
    assert _group(by_kind, "batch")["cost"] == pytest.approx(prices.cpu_hour)
    storage = _group(by_kind, "storage")
    assert storage["cost"] > 0
    assert storage["stored_gb"] * GB >= version.artifact_size + 4096

    by_team = _report(home, "--by", "team")
    assert by_team["total"]["cost"] == pytest.approx(total)
    assert {g["group"] for g in by_team["groups"]} == {"fraud", "(none)"}
    fraud, nobody = _group(by_team, "fraud"), _group(by_team, "(none)")
    # The run trained before the tag was set still goes to the model's team, with its dataset,
    # its report, the model's artifact and the deployment's prediction log.
    assert fraud["cost"] > training.cost + serving
    assert fraud["cpu_hours"] == pytest.approx((training.cpu_seconds + SERVING_CPU) / 3600)
    assert fraud["predictions"] == 4000
    assert nobody["predictions"] == 100  # the batch scoring of no model, and the shared logs
    assert _group(_report(home, "--by", "owner"), "alice")["cost"] == pytest.approx(fraud["cost"])
    assert {g["group"] for g in _report(home, "--by", "model")["groups"]} == {"churn", "(none)"}
    forecast = by_team["forecast"]
    assert forecast["month_to_date"] >= 0 and forecast["forecast"] >= forecast["month_to_date"]


def _row(stdout: str, name: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)]
        if name in cells:
            return [c for c in cells if c]
    raise AssertionError(f"no row {name!r} in:\n{stdout}")


def test_the_table_totals_the_groups_and_the_page_has_the_charts(home: Path) -> None:
    page = home.parent / "out" / "costs.html"
    shown = invoke_cli("cost", "report", "--by", "team", "--html", str(page), home=home).stdout
    fraud, nobody, total = _row(shown, "fraud"), _row(shown, "(none)"), _row(shown, "total")
    as_money = [float(row[1].replace(",", "")) for row in (fraud, nobody, total)]
    assert as_money[0] + as_money[1] == pytest.approx(as_money[2], abs=0.00011)
    assert total[5] == "4,100"  # predictions
    assert re.search(r"Total \d[\d,]*\.\d{4} USD over 2 team groups", shown)
    forecast = re.search(r"This month so far .* by \d{4}-\d{2}-\d{2}\.", shown)
    assert forecast is not None
    assert f"Report written to {page}" in shown
    html = page.read_text()
    assert html.count("<svg") == 3
    for chart in ("cost per team", "cost per day by kind", "storage by class"):
        assert f'aria-label="{chart}"' in html
    assert "This month so far" in html and "fraud" in html
    assert "<script" not in html
    assert not list(page.parent.glob(".*.tmp"))


def test_bad_options_are_named_not_traced(home: Path) -> None:
    wrong = invoke_cli("cost", "report", "--by", "colour", home=home, check=False)
    assert wrong.returncode == 2
    assert "'colour'; expected one of team, owner, model, stage, kind" in wrong.stderr
    for since in ("3", "thirty days", "0"):
        bad = invoke_cli("cost", "report", "--since", since, home=home, check=False)
        assert bad.returncode == 2 and "--since" in bad.stderr, since
        assert "Traceback" not in bad.stderr
    blocked = home.parent / "a-file"
    blocked.write_text("not a folder")
    unwritable = invoke_cli(
        "cost", "report", "--html", str(blocked / "costs.html"), home=home, check=False
    )
    assert unwritable.returncode == 1
    assert f"cannot write the report to {blocked / 'costs.html'}" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr


@settings(derandomize=True, max_examples=30, deadline=None)
@given(
    by=st.one_of(st.sampled_from(["team", "kind", "Team", ""]), st.text(max_size=12)),
    since=st.one_of(
        st.sampled_from(["30d", "1s", "99999999999d", "-1d", "7 d", "1w"]), st.text(max_size=12)
    ),
)
def test_any_by_and_since_give_a_report_or_a_usage_error(
    by: str, since: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.getbasetemp() / "empty-cost-workspace"
    result = invoke_cli("cost", "report", "--by", by, "--since", since, home=home, check=False)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 2), result.stderr
    if result.returncode == 2:
        assert "--by" in result.stderr or "--since" in result.stderr


def test_through_a_tracking_server_the_ledger_counts_and_unsized_logs_are_named(
    tmp_path: Path,
) -> None:
    with open_backend("http-sqlite", tmp_path / "server", None) as backend:
        workspace = backend.workspace_as("admin")
        now = utcnow()
        record = UsageRecord(
            kind="serving",
            started_at=now - timedelta(hours=2),
            ended_at=now - timedelta(hours=1),
            deployment="web",
            cpu_seconds=3600.0,
            predictions=1000,
        )
        write_usage(workspace.logs, [record], workspace.sealing)
        workspace.logs.put("predictions/web", part_name(), b"p" * 100)
        assert workspace.remote is not None and workspace.settings.token is not None
        token = workspace.settings.token.get_secret_value()
        env = {"MLSHIP_URL": workspace.remote.url, "MLSHIP_TOKEN": token}
        result = invoke_cli(
            "cost", "report", "--by", "kind", home=tmp_path / "client", env=env
        ).stdout
    serving = _row(result, "serving")
    assert float(serving[1]) == pytest.approx(workspace.settings.prices.cpu_hour, abs=1e-4)
    assert serving[5] == "1,000"
    assert "does not give the sizes of log parts: the storage of predictions/web, usage" in result
    assert "the tracking server does not give artifact sizes" in result
