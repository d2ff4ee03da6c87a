"""A pipeline trained on a landed stream: ``mlship data validate`` and ``mlship run`` read a
``stream:`` source's range from the workspace's history, join labels onto it, quarantine a bad
event by its id, count an event landed twice once, and make a new dataset version exactly when
the landed events in the range change."""

from __future__ import annotations

import io
import os
import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import polars as pl

from mlship.brokers.base import Event
from mlship.config import Settings
from mlship.streams.history import write_part
from mlship.workspace import Workspace
from tests.conftest import invoke_cli
from tests.objectstore import ObjectStore

CUSTOMERS = 40
BAD = 5
NOV = datetime(2026, 11, 1, tzinfo=UTC)

PIPELINE = """\
name: streamchurn
task: classification
sources:
  - name: events
    stream: {spec: stream.yaml, since: 2026-11-01, until: 2026-12-01}
  - name: labels
    path: labels.csv
combine:
  method: join
  base: events
  joins:
    - {source: labels, on: [customer_id], how: inner}
columns:
  - {name: customer_id, type: string, role: id, nullable: false}
  - {name: age, type: integer}
  - {name: plan, type: category}
  - {name: churned, type: category, role: target, nullable: false}
checks:
  max_quarantine: 0.2
models:
  - {estimator: logistic_regression}
metric: accuracy
"""

STREAM = """\
name: {name}
source: {{url: "redis://127.0.0.1:1/0", stream: churn-events, group: scorers}}
model: streamchurn@production
output: {{stream: churn-predictions}}
dead_letter: {{stream: churn-dead}}
"""


def _event(i: int, at: datetime, *, age: object = None) -> Event:
    """Customer ``K<i>``'s event, as a Redis entry gives it (every value text)."""
    fields = {"customer_id": f"K{i:03d}", "age": str(20 + i if age is None else age)}
    fields["plan"] = "basic" if i % 2 else "pro"
    return Event(f"{1793500000000 + i}-0", i, at, fields, text_values=True)


def _project(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stream.yaml").write_text(STREAM.format(name=name), encoding="utf-8")
    labels = ["customer_id,churned"] + [
        f"K{i:03d},{'yes' if i % 3 == 0 else 'no'}" for i in range(CUSTOMERS + 10)
    ]
    (root / "labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")
    (root / "pipeline.yaml").write_text(PIPELINE, encoding="utf-8")
    return root / "pipeline.yaml"


def _land(home: Path, name: str, events: list[Event]) -> None:
    """Store ``events`` as one part of the history, as ``mlship stream land`` does."""
    workspace = Workspace.open(Settings(home=home))
    try:
        write_part(workspace.logs, name, events, workspace.sealing)
    finally:
        workspace.close()


def _dataset(stdout: str) -> str:
    match = re.search(r"^Dataset ([0-9a-f]{12}): ", stdout, re.M)
    assert match, stdout
    return match.group(1)


def test_a_landed_range_becomes_a_versioned_dataset(tmp_path: Path) -> None:
    home, name = tmp_path / "home", "churn-stream"
    spec = _project(tmp_path / "project", name)
    events = [
        _event(i, NOV + timedelta(hours=i), age="forty" if i == 5 else None)
        for i in range(CUSTOMERS)
    ]
    _land(home, name, events[:25])
    _land(home, name, events[20:])  # 20..24 redelivered after a lander died: landed twice

    first = invoke_cli("data", "validate", str(spec), home=home)
    assert f"Validation: {CUSTOMERS} rows in, {CUSTOMERS - 1} kept, 1 quarantined" in first.stdout
    assert (
        f"events event {events[5].id}: age: 'forty' is not an integer (customer_id=K005)"
        in " ".join(first.stdout.split())
    )
    version = _dataset(first.stdout)

    again = invoke_cli("data", "validate", str(spec), home=home)
    assert f"Dataset {version}: {CUSTOMERS - 1} rows (inputs unchanged" in again.stdout

    # Events appended after the range change nothing; one in the range makes a new version.
    _land(home, name, [_event(CUSTOMERS, datetime(2026, 12, 2, tzinfo=UTC))])
    outside = invoke_cli("data", "validate", str(spec), home=home)
    assert _dataset(outside.stdout) == version
    _land(home, name, [_event(CUSTOMERS + 1, datetime(2026, 11, 30, tzinfo=UTC))])
    inside = invoke_cli("data", "validate", str(spec), home=home)
    assert f"Validation: {CUSTOMERS + 1} rows in" in inside.stdout
    newer = _dataset(inside.stdout)
    assert newer != version

    workspace = Workspace.open(Settings(home=home))
    try:
        dataset = workspace.datasets.get_dataset(newer)
        stored = pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))
        lineage = dataset.sources[0]
    finally:
        workspace.close()
    assert sorted(stored["customer_id"]) == sorted(
        f"K{i:03d}" for i in [*range(CUSTOMERS), CUSTOMERS + 1] if i != 5
    )
    assert lineage["kind"] == "stream" and lineage["stream"] == name
    assert lineage["since"] == "2026-11-01T00:00:00+00:00"

    shown = invoke_cli("data", "show", newer, home=home).stdout
    assert f"stream {name}" in shown and "stream" in shown


def test_a_stream_never_landed_is_refused_with_what_to_do(tmp_path: Path) -> None:
    spec = _project(tmp_path / "project", "never-landed")
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "home", check=False)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "events (stream spec" in message
    assert "stream 'never-landed' has never been landed" in message
    assert "land its events first with `mlship stream land" in message
    assert "Traceback" not in result.stderr


FEATURED = """\
name: {name}
source: {{url: "redis://127.0.0.1:1/0", stream: churn-events, group: scorers}}
entity: customer_id
event_time: {{field: ts, max_delay: 0s}}
features:
  - {{name: visits_2d, agg: count, window: {{size: 2d, slide: 1d}}}}
  - {{name: oldest_2d, agg: max, column: age, window: {{size: 2d, slide: 1d}}}}
model: streamchurn@production
output: {{stream: churn-predictions}}
dead_letter: {{stream: churn-dead}}
"""


def test_stream_features_become_columns_and_a_dead_letter_is_quarantined(tmp_path: Path) -> None:
    home, name = tmp_path / "home", "featured"
    spec = _project(tmp_path / "project", name)
    (tmp_path / "project" / "stream.yaml").write_text(FEATURED.format(name=name))
    spec.write_text(
        PIPELINE.replace("since: 2026-11-01, until: 2026-12-01", "since: 2026-11-02").replace(
            "columns:\n", "columns:\n  - {name: visits_2d, type: integer}\n"
        )
    )
    events = []
    for i in range(CUSTOMERS * 2):  # every customer twice: on November 1st and 2nd
        event = _event(i % CUSTOMERS, NOV, age="forty" if i == CUSTOMERS + BAD else None)
        day = NOV + timedelta(days=i // CUSTOMERS, hours=1)
        ts = "soon" if i == CUSTOMERS + 7 else day.isoformat()
        events.append(replace(event, id=f"{i}-0", position=i, fields={**event.fields, "ts": ts}))
    _land(home, name, events)

    result = invoke_cli("data", "validate", str(spec), home=home)
    out = " ".join(result.stdout.split())
    # K007's second event has no time: a dead letter online, in no range here. K005's has an
    # age no feature can take: a dead letter online, quarantined here with the reason.
    assert f"Validation: {CUSTOMERS - 1} rows in, {CUSTOMERS - 2} kept, 1 quarantined" in out
    assert f"events event {CUSTOMERS + BAD}-0: age: 'forty' is not a number, oldest_2d (max)" in out
    workspace = Workspace.open(Settings(home=home))
    try:
        dataset = workspace.datasets.get_dataset(_dataset(result.stdout))
        stored = pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))
    finally:
        workspace.close()
    # Each event's window is the two days up to the end of its own: the visit on the day
    # before `since` counts.
    assert stored["visits_2d"].to_list() == [2] * (CUSTOMERS - 2)


def test_a_history_in_object_storage_trains_like_one_at_home(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    """With the artifacts in a bucket, the history is there too, and the pipeline reads it."""
    home, name = tmp_path / "home", "in-a-bucket"
    root = f"s3://{object_store.bucket}/streamland/{secrets.token_hex(6)}"
    env = {**object_store.env(), "MLSHIP_ARTIFACT_ROOT": root}
    spec = _project(tmp_path / "project", name)
    events = [_event(i, NOV + timedelta(hours=i)) for i in range(CUSTOMERS)]
    with mock.patch.dict(os.environ, env):
        workspace = Workspace.open(Settings(home=home, artifact_root=root))
        try:
            write_part(workspace.logs, name, events, workspace.sealing)
            where = workspace.logs.location(f"streams/{name}")
        finally:
            workspace.close()
    assert where.startswith(root)
    assert not (home / "streams").exists()
    result = invoke_cli("data", "validate", str(spec), home=home, env=env)
    assert f"Validation: {CUSTOMERS} rows in, {CUSTOMERS} kept" in result.stdout
