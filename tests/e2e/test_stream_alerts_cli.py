"""Alert rules on a stream through the command line, against a real Redis: events (some bad)
scored by ``mlship stream run``, more appended after it stopped, and ``mlship monitor run``
delivering a lag alert and a dead-letter-rate alert to a real webhook receiver, listed by
``mlship monitor alerts``; a stream whose broker is out of reach leaves its lag rule not
evaluated, with the reason, and the pass goes on."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlship.brokers.url import open_broker
from mlship.examples.churn.events import churn_events
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env

DEADLINE_S = 180.0


def _spec(folder: Path, url: str, name: str, stream: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"""name: {name}
source: {{url: "{url}", stream: {stream}, group: scorers, claim_idle: 5s}}
entity: customer_id
model: "churn:1"
batch: {{max_events: 50, max_wait: 50ms}}
output: {{stream: {stream}-out}}
dead_letter: {{stream: {stream}-dead}}
""",
        encoding="utf-8",
    )
    return path


def _consume_all(spec: Path, home: Path, url: str, stream: str) -> None:
    """Run ``mlship stream run`` until the group has nothing left, then stop it with SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlship", "stream", "run", str(spec)],
        env=mlship_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    broker = open_broker(url)
    try:
        group = broker.consumer(stream, "scorers", "looking", claim_idle_ms=5000)
        deadline = time.monotonic() + DEADLINE_S
        while True:
            backlog = group.backlog()
            if backlog.undelivered == 0 and backlog.pending == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                out, err = process.communicate()
                raise AssertionError(f"the runner did not consume the stream:\n{out}\n{err}")
            time.sleep(0.25)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"{out}\n{err}"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        broker.close()


def _rows(stdout: str, rule: str) -> list[list[str]]:
    return [
        cells
        for line in stdout.splitlines()
        if len(cells := [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]) > 3
        and rule in cells
    ]


def test_lag_and_dead_letters_are_alerted_once_and_listed(
    trained: Workspace,
    redis_url: str,
    tmp_path: Path,
    received: tuple[str, list[dict[str, Any]]],
) -> None:
    url, bodies = received
    home = tmp_path / "home"
    shutil.copytree(trained.settings.home_resolved, home)
    tag = uuid.uuid4().hex[:8]
    name, stream = f"churn-stream-{tag}", f"churn-events-{tag}"
    spec = _spec(tmp_path, redis_url, name, stream)
    broker = open_broker(redis_url)
    try:
        for event in churn_events(36, bad=4):  # four with a charge of "abc": dead letters
            broker.append(stream, event)
        _consume_all(spec, home, redis_url, stream)
        for event in churn_events(15, seed=5):  # appended after the runner stopped: lag 15
            broker.append(stream, event)
    finally:
        broker.close()
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        f"""webhook: {{url: "{url}"}}
rules:
  - name: stream-behind
    stream: {spec.name}
    metric: stream.lag
    condition: "> 10"
    severity: critical
    actions: [log, webhook]
  - name: dead-letters
    stream: {spec.name}
    metric: stream.dead_letter_rate
    window: 1h
    condition: "> 0.05"
    actions: [log, webhook]
  - name: redelivered
    stream: {spec.name}
    metric: stream.redeliveries
    condition: "> 0"
  - name: slow
    stream: {spec.name}
    metric: stream.latency_p99_ms
    condition: "> 3600000"
""",
        encoding="utf-8",
    )
    first = invoke_cli("monitor", "run", "--rules", str(rules), home=home, cwd=tmp_path).stdout
    assert "2 fired, 0 suppressed" in first, first
    subject = f"stream:{name}"
    by_rule = {body["rule"]: body for body in bodies}
    assert sorted(by_rule) == ["dead-letters", "stream-behind"]
    behind = by_rule["stream-behind"]
    assert (behind["model"], behind["metric"], behind["value"]) == (subject, "stream.lag", 15.0)
    assert behind["severity"] == "critical"
    dead = by_rule["dead-letters"]
    assert (dead["model"], dead["metric"]) == (subject, "stream.dead_letter_rate")
    assert dead["value"] == pytest.approx(4 / 40)
    (redelivered,) = _rows(first, "redelivered")
    assert redelivered[3:5] == ["0.0000", "> 0"] and "ok" in redelivered
    (slow,) = _rows(first, "slow")
    assert "ok" in slow  # a measured latency, under an hour

    again = invoke_cli("monitor", "run", "--rules", str(rules), home=home, cwd=tmp_path).stdout
    assert "0 fired, 2 suppressed" in again
    assert len(bodies) == 2  # the cool-down kept the receiver quiet

    history = invoke_cli("monitor", "alerts", "--model", subject, home=home, cwd=tmp_path).stdout
    statuses = sorted((cells[2], cells[7]) for cells in _rows(history, subject))
    assert statuses == [
        ("dead-letters", "fired"),
        ("dead-letters", "suppressed"),
        ("stream-behind", "fired"),
        ("stream-behind", "suppressed"),
    ]
    assert "webhook: ok (HTTP 204)" in history


def test_a_broker_out_of_reach_leaves_the_lag_rule_not_evaluated(
    trained: Workspace, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained.settings.home_resolved, home)
    spec = _spec(tmp_path, "redis://127.0.0.1:1/0", "nowhere", "nowhere-events")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        f"""rules:
  - name: stream-behind
    stream: {spec.name}
    metric: stream.lag
    condition: "> 10"
  - name: events
    stream: {spec.name}
    metric: stream.events
    condition: "> 0"
""",
        encoding="utf-8",
    )
    result = invoke_cli("monitor", "run", "--rules", str(rules), home=home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (behind,) = _rows(result.stdout, "stream-behind")
    assert "not evaluated" in behind
    assert "cannot read the backlog of nowhere-events (group scorers) at redis://127.0.0.1:1/0" in (
        " ".join(result.stdout.split())
    )
    (events,) = _rows(result.stdout, "events")
    assert "ok" in events  # read from the log, which has none: 0 events
    assert "0 fired, 0 suppressed, 1 not evaluated" in result.stdout


def test_a_stream_metric_without_its_stream_is_a_rules_file_error(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        'rules:\n  - name: behind\n    metric: stream.lag\n    condition: "> 10"\n',
        encoding="utf-8",
    )
    result = invoke_cli(
        "monitor", "run", "--rules", str(rules), home=tmp_path / "home", cwd=tmp_path, check=False
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    text = " ".join(result.stderr.split())
    assert (
        f"{rules.resolve()}, line 2, field rules[0].stream: rule 'behind' watches stream.lag"
        in (text)
    ), text
