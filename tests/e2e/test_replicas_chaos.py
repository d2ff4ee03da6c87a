"""Chaos under load: three model-server replicas behind HAProxy (``mlship deploy haproxy``),
steady predictions from several connections (``mlship loadtest``), one replica SIGKILLed and
restarted by the supervisor. The replicas keep a write-ahead log, so no client request may fail
and the prediction log must hold every answer exactly once, the killed replica's included."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from mlship.monitor.predlog import read_log
from tests.conftest import run_cli
from tests.quick_project import fast_churn
from tests.replicated import deployed
from tests.serving import RECORD

KILLED = 2
"""The replica that is killed (``replica-2``)."""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with churn:1 (the quickest model of the churn example)."""
    root = tmp_path_factory.mktemp("replicas")
    home = root / "home"
    run_cli("run", str(fast_churn(root / "churn")), home=home, cwd=root)
    return home


def test_a_replica_killed_under_load_fails_no_request_and_comes_back(
    home: Path, tmp_path: Path
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"records": [RECORD]}))
    directory = tmp_path / "deploy"
    with deployed("churn:1", home, 3, directory, "--replica-arg=--write-ahead-log") as deployment:
        first_pid = deployment.pid(KILLED)
        run_cli(
            "loadtest", f"{deployment.url}/predict", "--rate", "20", "--duration", "10",
            "--clients", "4", "--payload", str(payload),
            "--kill-every", "5", "--kill-cmd", f"kill -9 $(cat {directory}/replica-{KILLED}.pid)",
            "--json", str(tmp_path / "load.json"), "--requests", str(tmp_path / "requests.jsonl"),
            home=home,
        )  # fmt: skip
        # The supervisor noticed, started it again, and HAProxy took it back.
        deployment.wait_for(f"replica-{KILLED} (pid {first_pid}, port")
        deployment.wait_for(f"replica-{KILLED} restarted")
        deployment.wait_for(f"replica-{KILLED} is UP in HAProxy", timeout=90)
        assert deployment.pid(KILLED) != first_pid
    output = deployment.output
    assert "killed by SIGKILL" in output, output

    summary = json.loads((tmp_path / "load.json").read_text())
    assert summary["requests"] == 200
    assert summary["failed"] == 0, summary["errors"]
    assert [kill["exit_code"] for kill in summary["kills"]] == [0]
    print(
        "requests before / during / after the kill (sent, failed, p99 ms): "
        + "; ".join(
            f"{p['name']} {p['requests']}, {p['failed']}, {p['p99_ms']:.0f}"
            for p in summary["phases"]
        )
    )
    answered = [
        json.loads(line)["request_id"]
        for line in (tmp_path / "requests.jsonl").read_text().splitlines()
    ]
    assert len(set(answered)) == 200  # every answer carries its own request id

    # HAProxy's log names the replica that answered each request, and how often it was retried.
    logged = {r.request_id: r for r in deployment.logged_requests()}
    assert set(answered) <= set(logged)
    retried = [r for r in logged.values() if r.retries]
    assert all(r.status == 200 for r in retried)
    print(f"HAProxy retried {len(retried)} of {len(answered)} requests")

    rows = read_log(home / "predictions" / "churn-1").to_pandas()
    routed = Counter(rows.loc[rows["role"] == "route", "request_id"])
    assert max(routed.values()) == 1, [i for i, n in routed.items() if n > 1]
    assert set(routed) <= set(answered)
    missing = set(answered) - set(routed)
    assert not missing, f"{len(missing)} answers are not in the prediction log"
    by_killed = {i for i in answered if logged[i].server == f"replica-{KILLED}"}
    assert by_killed  # the killed replica had answered some, and they were kept
    print(f"replica-{KILLED} answered {len(by_killed)} before it was killed; all are logged")


def test_a_replica_that_cannot_start_stops_the_command_with_its_log(
    home: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "deploy", "haproxy", "nosuch:1", "-n", "2", "--port", "0", "--dir", str(tmp_path),
        home=home, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr
    assert "exited 1 before it answered /v2/health/ready" in error, error
    assert "nosuch" in error  # the end of the replica's log says what is wrong
    assert "Traceback" not in error
    assert not list(tmp_path.glob("*.pid"))  # nothing left running


def test_request_ids_replica_options_and_a_large_request_resent_when_its_replica_dies(
    home: Path, tmp_path: Path
) -> None:
    options = ("--replica-arg=--max-records=150", "--replica-arg=--no-prediction-log")
    with deployed("churn:1", home, 2, tmp_path, *options) as deployment:
        url = f"{deployment.url}/predict"
        given = httpx.post(url, json={"records": [RECORD]}, headers={"X-Request-ID": "caller-7"})
        assert given.status_code == 200 and given.headers["x-request-id"] == "caller-7"
        assert given.json()["request_id"] == "caller-7"
        made = httpx.post(url, json={"records": [RECORD]})
        assert re.fullmatch(r"[0-9a-f-]{36}", made.headers["x-request-id"])
        # The options reached the replicas: 151 records are one too many.
        assert httpx.post(url, json={"records": [RECORD] * 151}).status_code == 413

        # A replica that hangs, then dies, with 100-record requests (about 25 kB each, more than
        # HAProxy's default 16 kB buffer) on it: they are sent again, whole, to the other one.
        stuck = deployment.pid(1)
        os.kill(stuck, signal.SIGSTOP)
        answers: list[int] = []

        def post() -> None:
            body = {"records": [RECORD] * 100}
            answers.append(httpx.post(url, json=body, timeout=60).status_code)

        senders = [threading.Thread(target=post) for _ in range(4)]
        for sender in senders:
            sender.start()
        time.sleep(1)
        os.kill(stuck, signal.SIGKILL)
        for sender in senders:
            sender.join(timeout=60)
        assert answers == [200] * 4
        resent = [r for r in deployment.logged_requests() if r.retries]
        assert resent and all(r.status == 200 and r.server == "replica-2" for r in resent)
        deployment.wait_for(f"replica-1 (pid {stuck}, port")
    output = deployment.output
    stopped = output[output.index("Replicas, stopped") :]
    assert re.search(r"replica-2 .* stopped ", stopped), output
