"""``mlship stream land`` against a real Redis server and a real NATS JetStream server, then
``mlship run`` on what it landed.

Events are appended to the stream as producers do (JSON objects; on Redis, one entry of flat text
fields). A lander that took some of them and died before acknowledging left them pending; the
real command, in a process of its own, claims them after the stream's ``claim_idle`` and lands
everything, so those events are landed twice. SIGTERM stops it after the batch in hand. A
pipeline whose source is the ``stream:`` range joined onto labels then trains on every event
once, quarantines the bad one by its id, reuses its dataset when nothing new was landed, and
makes a new version when new events in the range were.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis

from mlship.brokers.base import Broker
from mlship.brokers.url import open_broker
from mlship.config import Settings
from mlship.store.logread import load_parts
from mlship.streams.history import history_log, read_history, write_part
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env

CUSTOMERS = 40
BAD = 5

PIPELINE = """\
name: {name}
task: classification
sources:
  - name: events
    stream: {{spec: stream.yaml, since: 1h}}
  - name: labels
    path: labels.csv
combine:
  method: join
  base: events
  joins:
    - {{source: labels, on: [customer_id], how: inner}}
columns:
  - {{name: customer_id, type: string, role: id, nullable: false}}
  - {{name: age, type: integer}}
  - {{name: plan, type: category}}
  - {{name: churned, type: category, role: target, nullable: false}}
checks:
  max_quarantine: 0.2
models:
  - {{estimator: logistic_regression}}
metric: accuracy
"""

STREAM = """\
name: {name}
source: {{url: "{url}", stream: {stream}, group: scorers, claim_idle: 1s}}
model: {name}@production
output: {{stream: {stream}-predictions}}
dead_letter: {{stream: {stream}-dead}}
"""


def _project(root: Path, name: str, url: str, stream: str) -> Path:
    root.mkdir(parents=True)
    (root / "stream.yaml").write_text(STREAM.format(name=name, url=url, stream=stream))
    labels = ["customer_id,churned"] + [
        f"K{i:03d},{'yes' if i % 3 == 0 else 'no'}" for i in range(CUSTOMERS + 10)
    ]
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    (root / "pipeline.yaml").write_text(PIPELINE.format(name=name))
    return root


@pytest.fixture(params=["redis", "nats"])
def broker_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


def _produce(broker: Broker, url: str, stream: str, customers: range) -> dict[int, str]:
    """Append one event per customer, as producers do; on Redis, the bad one as flat text
    fields."""
    ids = {}
    for i in customers:
        fields: dict[str, object] = {
            "customer_id": f"K{i:03d}",
            "age": "forty" if i == BAD else 20 + i,
            "plan": "basic" if i % 2 else "pro",
        }
        if i == BAD and url.startswith("redis"):
            client = redis.Redis.from_url(url)
            entry = client.xadd(stream, {"customer_id": f"K{i:03d}", "age": "forty", "plan": "pro"})
            client.close()
            ids[i] = entry.decode() if isinstance(entry, bytes) else str(entry)
        else:
            ids[i] = broker.append(stream, fields)
    return ids


def _landed(home: Path, name: str) -> tuple[int, int]:
    """How many distinct events the history holds, and how many rows its parts hold."""
    workspace = Workspace.open(Settings(home=home))
    try:
        rows = sum(
            pq.read_metadata(item.source).num_rows
            for item in load_parts(workspace.logs, [history_log(name)], workspace.sealing)
        )
        return read_history(workspace.logs, name, workspace.sealing).landed, rows
    finally:
        workspace.close()


def _land_until(home: Path, project: Path, name: str, events: int, rows: int) -> str:
    """Run the real ``mlship stream land`` until ``events`` distinct events are landed in at
    least ``rows`` rows of parts, then SIGTERM it; its output."""
    lander = subprocess.Popen(
        [sys.executable, "-m", "mlship", "stream", "land", "stream.yaml", "--every", "1s"],
        cwd=project,
        env=mlship_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while (found := _landed(home, name))[0] < events or found[1] < rows:
            assert lander.poll() is None, lander.communicate()
            assert time.monotonic() < deadline, "the lander did not land every event in time"
            time.sleep(0.5)
        lander.send_signal(signal.SIGTERM)
        stdout, stderr = lander.communicate(timeout=60)
    finally:
        if lander.poll() is None:
            lander.kill()
            lander.communicate()
    assert lander.returncode == 0, stderr
    assert "SIGTERM: landing the batch in hand, then stopping" in stderr
    return stdout


def _dataset(stdout: str) -> str:
    match = re.search(r"^Dataset ([0-9a-f]{12}): ", stdout, re.M)
    assert match, stdout
    return match.group(1)


def test_landed_events_train_a_pipeline_once_each(broker_url: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    name, stream, home = f"churn-{tag}", f"events-{tag}", tmp_path / "home"
    project = _project(tmp_path / "project", name, broker_url, stream)
    broker = open_broker(broker_url)
    try:
        ids = _produce(broker, broker_url, stream, range(CUSTOMERS))
        # A lander that landed ten events and died before acknowledging them.
        dying = broker.consumer(stream, "scorers-land", "dying", claim_idle_ms=1000)
        taken = dying.fetch(10, 0)
        assert len(taken) == 10
        workspace = Workspace.open(Settings(home=home))
        try:
            write_part(workspace.logs, name, taken, workspace.sealing)
        finally:
            workspace.close()

        # The ten it took are claimed after the stream's claim_idle and landed again.
        out = " ".join(_land_until(home, project, name, CUSTOMERS, CUSTOMERS + 10).split())
        where = home / "streams" / name
        assert f"Landing {stream} from {broker_url} (group scorers-land," in out
        assert f"into {where}" in out
        assert "Stopped: landed" in out
        assert len(list(where.glob("part-*.parquet"))) >= 2

        first = invoke_cli("run", "pipeline.yaml", home=home, cwd=project)
        text = " ".join(first.stdout.split())
        assert f"{CUSTOMERS} rows in, {CUSTOMERS - 1} kept, 1 quarantined" in text
        assert f"events event {ids[BAD]}: age: 'forty' is not an integer" in text
        version = _dataset(first.stdout)
        assert f"Dataset {version}: {CUSTOMERS - 1} rows" in first.stdout

        again = invoke_cli("run", "pipeline.yaml", home=home, cwd=project)
        assert _dataset(again.stdout) == version
        assert "reused" in again.stdout

        _produce(broker, broker_url, stream, range(CUSTOMERS, CUSTOMERS + 2))
        _land_until(home, project, name, CUSTOMERS + 2, 0)
        newer = invoke_cli("run", "pipeline.yaml", home=home, cwd=project)
        assert f"Dataset {_dataset(newer.stdout)}: {CUSTOMERS + 1} rows" in newer.stdout
        assert _dataset(newer.stdout) != version
    finally:
        broker.close()
