"""``mlship rollout`` end to end: churn:1 in production, churn:2 rolled out against it.

The labelled traffic of each step is written as a server writes it (prediction-log parts, one
record per request, and labels in the feedback log), with known accuracies and error rates and
with times inside the step, and each command is told the time with ``--now``: the hour a step
holds passes without waiting. The commands, the store and the history are the real ones.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pytest

from mlship.config import Settings
from mlship.monitor.feedback import FeedbackStore, Label, feedback_log
from mlship.monitor.predlog import SCHEMA
from mlship.store.logstore import PREDICTIONS, part_name
from mlship.store.parts import sealed_part
from mlship.workspace import Workspace
from tests.conftest import CliResult, invoke_cli
from tests.quick_project import fast_churn
from tests.serving import RECORD, Server, serving

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
"""When each rollout here starts: in the past, so that every step's traffic is written by
parts named after it (the log reader skips parts older than the window)."""

DEPLOYMENT = """name: churn-rollout
refresh_seconds: 0.5
rollout:
  model: churn
  candidate: 2
  steps: [10, 50, 100]
  hold: 1h
  checks: {max_error_rate: 0.05, min_requests: 20}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with churn:1 (in production, approved by a second person) and churn:2."""
    root = tmp_path_factory.mktemp("rollout")
    spec = fast_churn(root / "churn")
    home = root / "home"
    for _ in range(2):
        invoke_cli("run", str(spec), home=home, cwd=root)
    invoke_cli("models", "promote", "churn:1", "--to", "production", home=home,
               env={"MLSHIP_USER": "alice"})  # fmt: skip
    invoke_cli("models", "approve", "churn:1", home=home, env={"MLSHIP_USER": "bob"})
    return home


@dataclass
class Project:
    home: Path
    deployment: Path

    def cli(self, *args: str, at: datetime | None = None, user: str = "alice") -> CliResult:
        now = () if at is None else ("--now", at.isoformat())
        return invoke_cli(*args, *now, home=self.home, check=False, env={"MLSHIP_USER": user})

    def traffic(
        self,
        start: datetime,
        minutes: float,
        accuracy: dict[int, float],
        records: int,
        errors: dict[int, int] | None = None,
        seed: int = 0,
    ) -> None:
        """``records`` answered and labelled records per version, spread over ``minutes`` from
        ``start``, right in exactly ``accuracy`` of them (in a shuffled order); and ``errors``
        refused requests per version."""
        rng = np.random.default_rng(seed)
        rows: list[tuple[object, ...]] = []
        labels: list[Label] = []
        for version, share in accuracy.items():
            right = np.zeros(records, dtype=bool)
            right[: round(share * records)] = True
            rng.shuffle(right)
            for index, is_right in enumerate(right):
                at = start + timedelta(minutes=minutes * (index + rng.random()) / records)
                answer = "yes" if rng.random() < 0.3 else "no"
                request = uuid.uuid4().hex
                output = orjson.dumps({"prediction": answer}).decode()
                rows.append((request, at, "churn-rollout", "churn", version, "route", 5.0, "{}",
                             output, 200, None))  # fmt: skip
                label = answer if is_right else ("no" if answer == "yes" else "yes")
                labels.append(Label(request, 0, label))
            for index in range((errors or {}).get(version, 0)):
                at = start + timedelta(minutes=minutes * (index + 0.5) / records)
                rows.append((uuid.uuid4().hex, at, "churn-rollout", "churn", version, "error",
                             1.0, "", "", 422, "records[0].age: not a number"))  # fmt: skip
        columns = list(zip(*rows, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA, strict=True)],
            schema=SCHEMA,
        )
        workspace = Workspace.open(Settings(home=self.home))
        try:
            workspace.logs.put(
                f"{PREDICTIONS}/churn-rollout", part_name(), sealed_part(table, workspace.sealing)
            )
            FeedbackStore(feedback_log(workspace.logs), workspace.sealing).append(labels, "test")
        finally:
            workspace.close()

    def history(self) -> list[dict[str, object]]:
        workspace = Workspace.open(Settings(home=self.home))
        try:
            return [
                {"action": e.action, "version": e.version, "user": e.user, **e.details}
                for e in workspace.registry.history("churn")
            ]
        finally:
            workspace.close()


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Project:
    """A copy of the trained home for one test, and the deployment file."""
    home = tmp_path / "home"
    shutil.copytree(trained, home)
    deployment = tmp_path / "rollout.yaml"
    deployment.write_text(DEPLOYMENT, encoding="utf-8")
    return Project(home, deployment)


def said(result: CliResult) -> str:
    return " ".join((result.stdout + result.stderr).split())


def status(project: Project, at: datetime) -> dict[str, object]:
    result = project.cli("rollout", "status", "churn", "--json", at=at)
    assert result.returncode == 0, said(result)
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_a_worse_canary_is_rolled_back_with_its_figures_in_the_history(project: Project) -> None:
    assert project.cli("models", "promote", "churn:2", "--to", "production").returncode == 0
    started = project.cli("rollout", "start", str(project.deployment), at=T0)
    assert started.returncode == 0, said(started)
    assert (
        "Started: Rollout of churn:2 against churn:1 (deployment churn-rollout): running, "
        "step 1 of 3 (10% to the candidate)" in said(started)
    )
    again = project.cli("rollout", "start", str(project.deployment), at=T0 + timedelta(minutes=1))
    assert again.returncode == 0 and "Already started (nothing changed)" in said(again)
    project.traffic(T0, 30, {1: 0.85, 2: 0.55}, records=300)
    # Before the hour is up: significantly worse is enough.
    step = project.cli("rollout", "step", "churn", at=T0 + timedelta(minutes=31))
    assert step.returncode == 1, said(step)
    text = said(step)
    assert (
        "Rolled back churn:2 to 0%: churn:2 is significantly worse than churn:1: accuracy "
        "-0.3000, 95% always-valid interval [" in text
    )
    assert "sequential p = " in text and "< 0.05" in text
    report = status(project, T0 + timedelta(minutes=32))
    state = report["rollout"]
    assert isinstance(state, dict)
    assert state["status"] == "rolled back" and state["weight"] == 0
    assert "significantly worse" in state["reasons"][0]
    events = project.history()
    moves = [e for e in events if str(e["action"]).startswith("rollout")]
    assert [e["action"] for e in moves] == ["rollout started", "rollout rolled back"]
    back = moves[-1]
    assert back["version"] == 2 and back["weight"] == 0 and back["labelled"] == "300 vs 300"
    assert back["accuracy"] == "-0.3000" and float(str(back["p"])) < 0.05
    assert str(back["interval"]).startswith("[-0.")
    rejected = events[-1]
    assert rejected["action"] == "rejected" and rejected["version"] == 2
    assert str(rejected["note"]).startswith("rolled back by its rollout: churn:2 is significantly")
    # Judging again changes nothing and says so, still failing a pipeline.
    later = project.cli("rollout", "step", "churn", at=T0 + timedelta(hours=3))
    assert later.returncode == 1 and "rolled back" in said(later)
    assert len(project.history()) == len(events)
    shown = said(project.cli("models", "history", "churn"))
    assert "rollout rolled back" in shown and "significantly worse" in shown


def test_an_equal_canary_goes_step_by_step_to_100_and_is_done_once_approved(
    project: Project,
) -> None:
    assert project.cli("rollout", "start", str(project.deployment), at=T0).returncode == 0
    project.traffic(T0, 25, {1: 0.8, 2: 0.8}, records=150, seed=1)
    early = project.cli("rollout", "step", "churn", at=T0 + timedelta(minutes=30))
    assert early.returncode == 0
    assert "No move: checks hold; 30m more at 10% before moving on" in said(early)
    project.traffic(T0 + timedelta(minutes=30), 25, {1: 0.8, 2: 0.8}, records=150, seed=2)
    first = project.cli("rollout", "step", "churn", at=T0 + timedelta(minutes=61))
    assert first.returncode == 0, said(first)
    assert (
        "Advanced to step 2 of 3 (50% to the candidate): checks held for 1h at 10%: on to "
        "50%" in said(first)
    )
    # The same look again moves nothing: the new step has just begun.
    repeat = project.cli("rollout", "step", "churn", at=T0 + timedelta(minutes=61))
    assert "No move: checks hold; 1h more at 50%" in said(repeat)
    step2 = T0 + timedelta(minutes=62)
    project.traffic(step2, 55, {1: 0.8, 2: 0.8}, records=200, seed=3)
    second = project.cli("rollout", "step", "churn", at=step2 + timedelta(minutes=60))
    assert "Advanced to step 3 of 3 (100% to the candidate)" in said(second), said(second)
    step3 = step2 + timedelta(minutes=60)
    project.traffic(step3, 55, {2: 0.8}, records=100, seed=4)
    third = project.cli("rollout", "step", "churn", at=step3 + timedelta(minutes=61))
    assert "Holding at 100%: checks held for 1h at 100%: churn:2 is ready for production" in said(
        third
    )
    held = project.cli("rollout", "step", "churn", at=step3 + timedelta(minutes=90))
    assert held.returncode == 0
    assert "No move: churn:2 holds at 100% and is ready for production" in said(held)
    # Production stays a decision of two people; once taken, the rollout is done.
    assert project.cli("models", "promote", "churn:2", "--to", "production").returncode == 0
    assert project.cli("models", "approve", "churn:2", user="bob").returncode == 0
    done = project.cli("rollout", "step", "churn", at=step3 + timedelta(minutes=95))
    assert "Done: churn:2 is in production" in said(done)
    moves = [e for e in project.history() if str(e["action"]).startswith("rollout")]
    assert [(e["action"], e["weight"]) for e in moves] == [
        ("rollout started", 10.0),
        ("rollout advanced", 50.0),
        ("rollout advanced", 100.0),
        ("rollout holding", 100.0),
        ("rollout done", 100.0),
    ]
    assert moves[1]["labelled"] == "300 vs 300" and float(str(moves[1]["p"])) > 0.05
    assert moves[3]["requests"] == 100 and "labelled" not in moves[3]
    final = status(project, step3 + timedelta(minutes=96))
    assert isinstance(final["rollout"], dict) and final["rollout"]["status"] == "done"


def test_a_failing_error_rate_check_rolls_back(project: Project) -> None:
    assert project.cli("rollout", "start", str(project.deployment), at=T0).returncode == 0
    project.traffic(T0, 20, {1: 0.8, 2: 0.8}, records=100, errors={2: 12}, seed=5)
    step = project.cli("rollout", "step", "churn", at=T0 + timedelta(minutes=21))
    assert step.returncode == 1
    assert (
        "Rolled back churn:2 to 0%: churn:2's error rate 10.71% is above max_error_rate "
        "5.00% (112 requests)" in said(step)
    )
    (back,) = [e for e in project.history() if e["action"] == "rollout rolled back"]
    assert back["error_rate"] == pytest.approx(12 / 112, rel=1e-3) and back["requests"] == 112


def test_too_little_traffic_holds_the_step_even_after_the_hold(project: Project) -> None:
    assert project.cli("rollout", "start", str(project.deployment), at=T0).returncode == 0
    project.traffic(T0, 20, {1: 0.8, 2: 0.8}, records=10, seed=6)
    step = project.cli("rollout", "step", "churn", at=T0 + timedelta(hours=2))
    assert step.returncode == 0
    assert "No move: churn:2 answered 10 requests in this step; its checks need 20" in said(step)


BAD_BLOCKS = {
    "rollout: {model: churn, candidate: 2, steps: [10, 5, 100]}":
        "field rollout.steps: step 2 (5) does not rise above step 1 (10): steps must rise",
    "rollout: {model: churn, candidate: 2, steps: [10, 50]}":
        "field rollout.steps: the last step is 50: it must be 100",
    "rollout: {model: churn, candidate: 2, steps: [0, 100]}":
        "field rollout.steps: step 1 is 0: a percentage above 0, at most 100",
    "rollout: {model: churn, candidate: 2, hold: soon}":
        "field rollout.hold: 'soon' is not a duration",
    "rollout: {model: 'churn:2', candidate: 2}":
        "field rollout.model: 'churn:2': expected the model's name alone",
    "rollout: {model: churn, candidate: 2, checks: {max_error: 0.1}}":
        "field rollout.checks.max_error: unknown field",
    "rollout: {model: churn, candidate: 2, alpha: 1.5}":
        "field rollout.alpha: Input should be less than 1",
    "rollout: {model: churn}":
        "field rollout.candidate: Field required",
    "routes: [{model: churn:1}]\nrollout: {model: churn, candidate: 2}":
        "routes: leave them out with rollout:, which routes between churn@production and churn:2",
    "routes: [{model: churn:1}]": "no rollout: block",
}  # fmt: skip


@pytest.mark.parametrize("block", list(BAD_BLOCKS))
def test_bad_rollout_blocks_are_refused_naming_the_field(project: Project, block: str) -> None:
    project.deployment.write_text(f"name: churn-rollout\n{block}\n", encoding="utf-8")
    result = project.cli("rollout", "start", str(project.deployment))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(project.deployment) in said(result) and BAD_BLOCKS[block] in said(result)


def test_rollouts_that_cannot_start_say_why(project: Project) -> None:
    def start(candidate: str, model: str = "churn") -> str:
        project.deployment.write_text(
            f"name: r\nrollout: {{model: {model}, candidate: {candidate}}}\n", encoding="utf-8"
        )
        result = project.cli("rollout", "start", str(project.deployment))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        return said(result)

    assert "churn:1 is already in production: there is nothing to roll out" in start("1")
    assert "model 'churn' has no version 9" in start("9")
    assert "no model named 'lift'" in start("2", "lift")
    none = project.cli("rollout", "status", "churn")
    assert none.returncode == 1 and "churn has no rollout: `mlship rollout start" in said(none)
    missing = project.cli("rollout", "start", str(project.deployment.with_name("x.yaml")))
    assert missing.returncode == 1 and "x.yaml does not exist" in said(missing)
    project.deployment.write_text(DEPLOYMENT, encoding="utf-8")
    assert project.cli("rollout", "start", str(project.deployment)).returncode == 0
    assert (
        "churn already has a rollout of churn:2 (running, step 1 of 3 (10%)); it must be "
        "rolled back or done before another starts" in start("1")
    )


def _answers(client: httpx.Client, requests: int) -> Counter[int]:
    """Which version answered each of ``requests`` requests."""
    counts: Counter[int] = Counter()
    for _ in range(requests):
        answer = client.post("/predict", json={"records": [RECORD]})
        assert answer.status_code == 200, answer.text
        counts[int(answer.json()["version"])] += 1
    return counts


def _swapped(server: Server, change: str) -> None:
    """Wait for the server to log ``change`` (it refreshes every 0.5 s)."""
    deadline = time.monotonic() + 30
    while change not in server.output_text():
        assert time.monotonic() < deadline, f"the server never logged {change!r}"
        time.sleep(0.1)


def test_a_served_deployment_follows_the_rollout(project: Project) -> None:
    """``mlship serve`` of the deployment: production only before the start, a tenth to the
    candidate at the first step, production only again once it is rolled back."""
    with (
        serving(str(project.deployment), project.home) as server,
        httpx.Client(base_url=server.base) as client,
    ):
        assert _answers(client, 20) == Counter({1: 20})
        assert project.cli("rollout", "start", str(project.deployment)).returncode == 0
        _swapped(server, "churn:2 weight 0 -> 10")
        split = _answers(client, 200)
        assert set(split) == {1, 2} and 5 <= split[2] <= 45, split
        now = datetime.now(UTC)
        project.traffic(now, 1, {1: 0.9, 2: 0.5}, records=200, seed=7)
        step = project.cli("rollout", "step", "churn", at=now + timedelta(minutes=2))
        assert step.returncode == 1 and "Rolled back churn:2 to 0%" in said(step)
        _swapped(server, "churn:2 weight 10 -> 0")
        assert _answers(client, 100) == Counter({1: 100})
    server.stop()


def test_watch_and_status_say_where_the_rollout_stands(project: Project) -> None:
    assert project.cli("rollout", "start", str(project.deployment), at=T0).returncode == 0
    shown = said(project.cli("rollout", "status", "churn", at=T0 + timedelta(minutes=10)))
    assert (
        "Rollout of churn:2 against churn:1 (deployment churn-rollout): running, step 1 of 3 "
        "(10% to the candidate)" in shown
    )
    assert "Next: checks hold; 50m more at 10% before moving on" in shown
    # Hours later, with no traffic at all in the step: watching waits, it does not move on.
    watched = project.cli("rollout", "watch", "churn", "--every", "1s", "--looks", "2")
    assert watched.returncode == 0, said(watched)
    assert watched.stdout.count("running, step 1 of 3 (10% to the candidate)") == 2
    assert "No move: churn:2 answered 0 requests in this step; its checks need 20" in said(watched)
    looked = project.cli("rollout", "step", "churn", "--json")
    assert looked.returncode == 0, said(looked)
    look = json.loads(looked.stdout)
    assert look["moved"] is None and look["candidate"] is None and look["comparison"] is None
    assert look["waiting"].startswith("churn:2 answered 0 requests in this step")
    assert look["rollout"]["step"] == 1 and look["rollout"]["hold"] == "1h"
    project.traffic(T0, 20, {1: 0.8, 2: 0.8}, records=100, errors={2: 40}, seed=8)
    ended = project.cli("rollout", "watch", "churn", "--every", "1m")  # ends at the first look
    assert ended.returncode == 1 and "Rolled back churn:2 to 0%: churn:2's error rate" in said(
        ended
    )
    bad = project.cli("rollout", "watch", "churn", "--every", "soon")
    assert bad.returncode == 1 and "--every: expected a duration" in said(bad)
    when = project.cli("rollout", "step", "churn", "--now", "yesterday")
    assert when.returncode == 1 and "--now: expected an ISO 8601 time, got 'yesterday'" in said(
        when
    )
