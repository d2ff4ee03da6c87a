"""``mlship stream run`` end to end against a real Redis: events in (good, badly typed, text,
unreadable), predictions and dead letters out once per event, a prediction log that ``mlship
monitor status`` reads, metrics, the usage ledger, SIGTERM, and a consumer killed after
publishing and before acknowledging, whose events the next consumer takes over."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from mlship.brokers.base import Backlog, Broker, Event
from mlship.brokers.url import open_broker
from mlship.config import Settings
from mlship.costs.ledger import read_usage
from mlship.examples.churn.events import churn_events
from mlship.monitor.predlog import PredictionLog, read_log
from mlship.streaming.build import build_runner
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env, run_cli
from tests.serving import free_port
from tests.streams import write_stream_spec

DEADLINE_S = 180.0
"""How long a test waits for what must come (a slow machine loads the model in seconds)."""


@pytest.fixture(scope="module")
def home(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained churn workspace, which the runs below write their logs into."""
    copy = tmp_path_factory.mktemp("stream-run") / "home"
    shutil.copytree(trained.settings.home_resolved, copy)
    return copy


def _spec(folder: Path, url: str, claim_idle: str = "1s") -> tuple[Path, dict[str, str]]:
    return write_stream_spec(folder, url, "churn", claim_idle=claim_idle)


def _read_all(broker: Broker, stream: str) -> list[Event]:
    return broker.read(stream, None, 10_000)


def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _metric(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), -1.0)


def _wait(check: Callable[[], bool], what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the runner exited {process.returncode}:\n{out}\n{err}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass  # the metrics are not served yet: the runner is starting
        time.sleep(0.25)
    process.kill()
    out, err = process.communicate()
    raise AssertionError(f"{what} did not happen in {DEADLINE_S} s:\n{out}\n{err}")


@contextmanager
def _running(spec: Path, home: Path, *options: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mlship", "stream", "run", str(spec), *options],
        env=mlship_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, f"{out}\n{err}"
    assert "Traceback" not in err, err
    return out, err


def test_events_are_scored_dead_lettered_logged_and_monitored(
    home: Path, redis_url: str, tmp_path: Path
) -> None:
    spec, names = _spec(tmp_path, redis_url)
    broker = open_broker(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        events = churn_events(30, bad=2)  # two JSON events with a charge of "abc"
        for event in events:
            broker.append(names["stream"], event)
        flat: dict[Any, Any] = {k: str(v) for k, v in events[0].items() if v is not None}
        flat["paperless_billing"] = "yes"
        for i in range(3):  # a Redis entry's own fields: text, typed as the signature says
            client.xadd(names["stream"], {**flat, "customer_id": f"T{i}", "tenure_months": str(i)})
        client.xadd(names["stream"], {**flat, "monthly_charges": "abc"})
        client.xadd(names["stream"], {"data": b"{not json"})
        produced, bad = 30 + 2 + 3 + 2, 4
        port = free_port()
        with _running(spec, home, "--metrics-port", str(port), "--consumer", "first") as process:

            def all_handled() -> bool:
                found = _metrics(port)
                stream = names["stream"]
                return (
                    _metric(found, "mlship_stream_events_total", stream=stream, outcome="scored")
                    == produced - bad
                    and _metric(
                        found, "mlship_stream_events_total", stream=stream, outcome="dead_letter"
                    )
                    == bad
                    and _metric(found, "mlship_stream_lag", stream=stream, kind="pending") == 0
                    and _metric(found, "mlship_stream_lag", stream=stream, kind="undelivered") == 0
                )

            _wait(all_handled, "every event handled and the lag at 0", process)
            found = _metrics(port)
            assert (
                _metric(found, "mlship_stream_end_to_end_seconds_count", stream=names["stream"])
                == produced
            )
            assert _metric(
                found, "mlship_stream_rows_scored_total",
                stream=names["stream"], model="churn", version="1", role="stream",
            ) == produced - bad  # fmt: skip
            out, _err = _stop(process)
        assert f"Reading {names['stream']} on {redis_url} in group scorers as first" in out
        assert f"Writing predictions to {names['output']}, dead letters to {names['dead']}" in out
        assert "Prediction log: " in out and f"Stopped: {produced} events handled" in out

        outputs = _read_all(broker, names["output"])
        dead = _read_all(broker, names["dead"])
        assert len(outputs) == produced - bad and len(dead) == bad
        assert len({o.fields["event_id"] for o in outputs}) == produced - bad
        first = outputs[0].fields
        assert first["model"] == "churn" and first["version"] == 1
        assert first["entity"] == events[0]["customer_id"]
        assert first["prediction"] in ("yes", "no") and set(first["probabilities"]) == {"yes", "no"}
        assert {o.fields["entity"] for o in outputs} >= {"T0", "T1", "T2"}
        reasons = sorted(d.fields["reason"] for d in dead)
        assert any(r.startswith("data: not valid JSON (") for r in reasons), reasons
        assert "monthly_charges: 'abc' is not a number" in reasons
        assert (
            sum(r.startswith("monthly_charges: Input should be a valid number") for r in reasons)
            == 2
        )
        assert all(d.fields["payload"] is not None for d in dead)
        consumer = broker.consumer(names["stream"], "scorers", "checker", claim_idle_ms=600_000)
        assert consumer.backlog() == Backlog(undelivered=0, pending=0)
    finally:
        client.close()
        broker.close()

    log = read_log(home / "predictions" / names["name"])
    roles = log.column("role").to_pylist()
    assert roles.count("stream") == produced - bad and roles.count("error") == bad
    assert set(log.filter(pa.compute.equal(log["role"], "error"))["status"].to_pylist()) == {422}

    status = run_cli("monitor", "status", "churn", "--window", "1h", "--json", home=home)
    figures = json.loads(status.stdout)["metrics"]
    assert figures["traffic.rows"] >= produced - bad
    assert figures["health.errors"] >= bad and figures["health.requests"] >= produced

    workspace = Workspace.open(Settings(home=home))
    try:
        usage = [
            r for r in read_usage(workspace.logs, workspace.sealing)
            if r.deployment == names["name"]
        ]  # fmt: skip
    finally:
        workspace.close()
    assert usage and {r.kind for r in usage} == {"stream"}
    assert sum(r.predictions for r in usage) == produced - bad
    assert sum(r.cpu_seconds for r in usage) > 0 and sum(r.memory_byte_seconds for r in usage) > 0


def test_a_consumer_killed_after_publishing_leaves_one_output_per_event(
    home: Path, redis_url: str, tmp_path: Path
) -> None:
    """The first consumer writes its batch's record and publishes its outputs, then dies before
    acknowledging (nothing after ``write`` runs, as with SIGKILL there). The second takes the
    events over after the claim timeout, scores and logs them again, and publishes nothing new."""
    spec, names = _spec(tmp_path, redis_url)
    broker = open_broker(redis_url)
    try:
        for event in churn_events(12):
            broker.append(names["stream"], event)
        workspace = Workspace.open(Settings(home=home))
        try:
            doomed = build_runner(spec, workspace, consumer="doomed").runner
            fetched: list[Event] = []
            while len(fetched) < 12:
                fetched += doomed.consumer.fetch(12 - len(fetched), 1000)
            assert doomed.write(fetched) is not None  # logged and published; never acknowledged
            doomed.close()
        finally:
            workspace.close()
        assert len(_read_all(broker, names["output"])) == 12
        port = free_port()
        with _running(spec, home, "--metrics-port", str(port), "--consumer", "second") as process:

            def taken_over() -> bool:
                found = _metrics(port)
                stream = names["stream"]
                return (
                    _metric(found, "mlship_stream_redeliveries_total", stream=stream) == 12
                    and _metric(
                        found, "mlship_stream_events_total", stream=stream, outcome="scored"
                    )
                    == 12
                )

            _wait(taken_over, "the dead consumer's events taken over", process)
            _stop(process)
        outputs = _read_all(broker, names["output"])
        assert sorted(o.fields["event_id"] for o in outputs) == sorted(e.id for e in fetched)
        consumer = broker.consumer(names["stream"], "scorers", "checker", claim_idle_ms=600_000)
        assert consumer.backlog() == Backlog(undelivered=0, pending=0)
    finally:
        broker.close()
    folder = home / "predictions" / names["name"]
    raw = pa.concat_tables(pq.read_table(part) for part in sorted(folder.glob("part-*.parquet")))
    assert raw.column("role").to_pylist().count("stream") == 24  # logged by both consumers
    log = read_log(folder)
    assert sorted(log.column("request_id").to_pylist()) == sorted(e.id for e in fetched)


def test_a_bad_spec_or_an_unreachable_broker_is_one_line_and_exit_code_2(
    home: Path, tmp_path: Path
) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "name: s\nsource: {url: 'redis://127.0.0.1:1/0', stream: e}\nmodel: churn:1\n"
        "output: {stream: o}\ndead_letter: {stream: d}\nbatch: {max_events: 0}\n"
    )
    result = invoke_cli("stream", "run", str(unknown), home=home, check=False)
    assert result.returncode == 2, result
    assert "batch.max_events" in result.stderr and "Traceback" not in result.stderr
    unreachable = tmp_path / "unreachable.yaml"
    unreachable.write_text(unknown.read_text().replace("batch: {max_events: 0}\n", ""))
    result = invoke_cli("stream", "run", str(unreachable), home=home, check=False)
    assert result.returncode == 2, result
    assert "redis://127.0.0.1:1/0" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    missing = tmp_path / "missing.yaml"
    missing.write_text(unreachable.read_text().replace("churn:1", "churn:9"))
    result = invoke_cli("stream", "run", str(missing), home=home, check=False)
    assert result.returncode == 2, result
    assert f"{missing}: model: model 'churn' has no version 9" in " ".join(result.stderr.split())


def test_a_nats_jetstream_stream_is_scored_the_same_way(
    home: Path, nats_url: str, tmp_path: Path
) -> None:
    spec, names = _spec(tmp_path, nats_url, claim_idle="30s")
    broker = open_broker(nats_url)
    try:
        events = churn_events(15, bad=1)
        for event in events:
            broker.append(names["stream"], event)
        port = free_port()
        with _running(spec, home, "--metrics-port", str(port)) as process:

            def all_handled() -> bool:
                found = _metrics(port)
                stream = names["stream"]
                scored = _metric(
                    found, "mlship_stream_events_total", stream=stream, outcome="scored"
                )
                dead = _metric(
                    found, "mlship_stream_events_total", stream=stream, outcome="dead_letter"
                )
                return scored == 15 and dead == 1

            _wait(all_handled, "every event handled", process)
            out, _err = _stop(process)
        assert f"Reading {names['stream']} on {nats_url}" in out
        outputs = _read_all(broker, names["output"])
        assert sorted(o.fields["entity"] for o in outputs) == sorted(
            e["customer_id"] for e in events[:15]
        )
        (dead,) = _read_all(broker, names["dead"])
        assert dead.fields["reason"].startswith("monthly_charges: Input should be a valid number")
        consumer = broker.consumer(names["stream"], "scorers", "checker", claim_idle_ms=30_000)
        assert consumer.backlog() == Backlog(undelivered=0, pending=0)
    finally:
        broker.close()
    log = read_log(home / "predictions" / names["name"])
    assert log.column("role").to_pylist().count("stream") == 15


def test_online_features_are_added_before_scoring(
    home: Path, redis_url: str, tmp_path: Path
) -> None:
    """A feature named like a model input gives that input: ``support_calls`` is the count of
    the customer's events in the hour so far. An event whose time cannot be read is a dead
    letter with the features' reason."""
    spec, names = _spec(tmp_path, redis_url)
    text = spec.read_text().replace(
        "entity: customer_id\n",
        "entity: customer_id\nevent_time: {field: ts, max_delay: 5s}\n"
        "features:\n  - {name: support_calls, agg: count, window: {size: 1h}}\n",
    )
    spec.write_text(text)
    broker = open_broker(redis_url)
    try:
        record = {k: v for k, v in churn_events(1)[0].items() if k != "support_calls"}
        for i in range(4):
            customer = "A" if i != 2 else "B"
            at = f"2026-12-01T09:0{i}:00Z"
            broker.append(names["stream"], {**record, "customer_id": customer, "ts": at})
        broker.append(names["stream"], {**record, "customer_id": "A", "ts": "yesterday"})
        port = free_port()
        with _running(spec, home, "--metrics-port", str(port)) as process:

            def all_handled() -> bool:
                found = _metrics(port)
                stream = names["stream"]
                return (
                    _metric(found, "mlship_stream_events_total", stream=stream, outcome="scored")
                    == 4
                    and _metric(
                        found, "mlship_stream_events_total", stream=stream, outcome="dead_letter"
                    )
                    == 1
                )

            _wait(all_handled, "every event handled", process)
            _stop(process)
        (dead,) = _read_all(broker, names["dead"])
        assert dead.fields["reason"].startswith("ts: 'yesterday' is not a time"), dead.fields
    finally:
        broker.close()
    log = read_log(home / "predictions" / names["name"])
    scored = [
        json.loads(row["input"])
        for row in log.to_pylist()
        if row["role"] == "stream"
    ]  # fmt: skip
    assert [r["support_calls"] for r in scored] == [1, 2, 1, 3]


def test_a_batch_whose_record_cannot_be_written_is_neither_published_nor_acknowledged(
    home: Path, redis_url: str, tmp_path: Path
) -> None:
    spec, names = _spec(tmp_path, redis_url)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the log's folder should be")
    broker = open_broker(redis_url)
    workspace = Workspace.open(Settings(home=home))
    try:
        for event in churn_events(5):
            broker.append(names["stream"], event)
        runner = build_runner(spec, workspace, consumer="blocked").runner
        good_log = runner.prediction_log
        runner.prediction_log = PredictionLog(blocked / "log", names["name"])
        fetched: list[Event] = []
        while len(fetched) < 5:
            fetched += runner.consumer.fetch(5 - len(fetched), 1000)
        assert runner.handle(fetched) is False
        assert _read_all(broker, names["output"]) == []
        assert runner.consumer.backlog() == Backlog(undelivered=0, pending=5)
        failures = runner.metrics.registry.get_sample_value(
            "mlship_stream_batch_failures_total",
            {"stream": names["stream"], "stage": "prediction log"},
        )
        assert failures == 1
        runner.prediction_log = good_log  # the store takes writes again
        again: list[Event] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(again) < 5 and time.monotonic() < deadline:  # after claim_idle (1 s)
            again += runner.consumer.fetch(5 - len(again), 500)
        assert sorted(e.id for e in again) == sorted(e.id for e in fetched)
        assert all(e.deliveries == 2 for e in again)
        assert runner.handle(again) is True
        assert len(_read_all(broker, names["output"])) == 5
        assert runner.consumer.backlog() == Backlog(undelivered=0, pending=0)
        runner.close()
    finally:
        workspace.close()
        broker.close()
