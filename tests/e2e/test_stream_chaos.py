"""Chaos on ``mlship stream run``: three consumers of one group share a stream while a producer
appends to it; one is SIGKILLed with a batch in hand, one is SIGTERMed mid-flow, the third drains
the stream. Nothing is lost and nothing comes out twice: every produced event has exactly one
output message or exactly one dead letter, and the prediction log read as ``mlship monitor``
reads it has exactly one row for each, however many times the redeliveries logged them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from mlship.brokers.base import Backlog, Broker, Event
from mlship.brokers.url import open_broker
from mlship.examples.churn.events import churn_events
from mlship.monitor.predlog import read_log
from mlship.workspace import Workspace
from tests.conftest import mlship_env
from tests.killing import Running
from tests.serving import free_port
from tests.streams import write_stream_spec

PRODUCED = 3000
"""Events the producer appends, ``CHUNK`` at a time every ``PACE_S``: about ten seconds."""
CHUNK = 150
PACE_S = 0.5
CLAIM_IDLE_MS = 2000
"""The group's claim timeout: a dead consumer's batch goes to another one after two seconds."""
DEADLINE_S = 180.0
"""How long the test waits for what must come; never reached when the runner works."""
GROUP = "scorers"
TRIES = 15
"""Parts after which a Redis consumer is killed with any batch in hand, not only a logged one."""
UNREADABLE = b"{not json"


@pytest.fixture(scope="module")
def home(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained churn workspace, which the consumers write their logs into."""
    copy = tmp_path_factory.mktemp("stream-chaos") / "home"
    shutil.copytree(trained.settings.home_resolved, copy)
    return copy


def _payloads() -> list[tuple[bytes, str]]:
    """The producer's events as bodies, each with what it is: one in a hundred badly typed,
    one missing a required field, one not JSON at all."""
    bodies: list[tuple[bytes, str]] = []
    for i, event in enumerate(churn_events(PRODUCED)):
        if i % 100 == 7:
            event["monthly_charges"] = "abc"
            bodies.append((json.dumps(event).encode(), "wrong type"))
        elif i % 100 == 37:
            del event["tenure_months"]
            bodies.append((json.dumps(event).encode(), "missing field"))
        elif i % 100 == 67:
            bodies.append((UNREADABLE, "unreadable"))
        else:
            bodies.append((json.dumps(event).encode(), "good"))
    return bodies


@dataclass
class Producer:
    """Appends :func:`_payloads` steadily from a thread, with the broker's own client (as a
    producing application would), and keeps the ids the broker gave them."""

    kind: str
    url: str
    stream: str
    ids: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    failure: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive(), f"the producer did not finish in {DEADLINE_S} s"
        assert self.failure is None, f"the producer failed: {self.failure!r}"

    def _run(self) -> None:
        payloads = _payloads()
        chunks = [payloads[i : i + CHUNK] for i in range(0, len(payloads), CHUNK)]
        try:
            if self.kind == "redis":
                self._redis(chunks)
            else:
                asyncio.run(self._nats(chunks))
        except BaseException as exc:  # reported by join()
            self.failure = exc

    def _redis(self, chunks: list[list[tuple[bytes, str]]]) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            for chunk in chunks:
                pipe = client.pipeline(transaction=False)
                for body, kind in chunk:
                    pipe.xadd(self.stream, {"data": body})
                    self.kinds[kind] += 1
                self.ids += [i.decode() for i in pipe.execute()]
                time.sleep(PACE_S)
        finally:
            client.close()

    async def _nats(self, chunks: list[list[tuple[bytes, str]]]) -> None:
        connection = await nats.connect(self.url)
        try:
            jetstream = connection.jetstream()
            for chunk in chunks:
                acks = await asyncio.gather(*(jetstream.publish(self.stream, b) for b, _ in chunk))
                self.ids += [str(ack.seq) for ack in acks]
                self.kinds.update(kind for _, kind in chunk)
                await asyncio.sleep(PACE_S)
        finally:
            await connection.close()


Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Scorer:
    """One ``mlship stream run`` subprocess, its output read live, its metrics on a port."""

    name: str
    port: int
    running: Running

    @property
    def pid(self) -> int:
        return self.running.process.pid

    def metrics(self) -> Metrics:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric(self, stream: str, name: str, **labels: str) -> float:
        found = self.metrics()
        return found.get((name, tuple(sorted({"stream": stream, **labels}.items()))), 0.0)

    def handled(self, stream: str) -> float:
        found = self.metrics()
        return sum(
            found.get(("mlship_stream_events_total", (("outcome", o), ("stream", stream))), 0.0)
            for o in ("scored", "dead_letter")
        )


class Chaos:
    """The consumers, the broker and what the test needs to say when something goes wrong."""

    def __init__(self, kind: str, url: str, spec: Path, home: Path, names: dict[str, str]):
        self.kind, self.url, self.spec, self.home, self.names = kind, url, spec, home, names
        self.scorers: dict[str, Scorer] = {}
        self.broker: Broker = open_broker(url)

    def start(self, name: str) -> Scorer:
        port = free_port()
        running = Running.command(
            [
                sys.executable, "-m", "mlship", "stream", "run", str(self.spec),
                "--consumer", name, "--metrics-port", str(port),
            ],
            cwd=self.spec.parent,
            env=mlship_env(self.home),
        )  # fmt: skip
        scorer = Scorer(name, port, running)
        self.scorers[name] = scorer
        return scorer

    def outputs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {s.running.process.poll()}):\n{s.running.output[-6000:]}"
            for name, s in self.scorers.items()
        )

    def wait(self, what: str, check: Callable[[], bool], *alive: Scorer) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for scorer in alive:
                if scorer.running.process.poll() is not None:
                    raise AssertionError(
                        f"{scorer.name} exited while waiting for {what}:\n{self.outputs()}"
                    )
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass  # its metrics are not served yet: the runner is starting
            time.sleep(0.05)
        raise AssertionError(f"{what} did not happen in {DEADLINE_S:.0f} s:\n{self.outputs()}")

    def backlog(self) -> Backlog:
        checker = self.broker.consumer(
            self.names["stream"], GROUP, "checker", claim_idle_ms=CLAIM_IDLE_MS
        )
        return checker.backlog()

    def read_all(self, stream: str) -> list[Event]:
        found: list[Event] = []
        while batch := self.broker.read(stream, found[-1].position if found else None, 1000):
            found += batch
        return found

    def terminate(self, scorer: Scorer) -> int:
        scorer.running.process.send_signal(signal.SIGTERM)
        try:
            code = scorer.running.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{scorer.name} ignored SIGTERM:\n{self.outputs()}") from None
        scorer.running.eof.wait(10)
        return code

    def close(self) -> None:
        for scorer in self.scorers.values():
            if scorer.running.process.poll() is None:
                scorer.running.process.kill()
                scorer.running.process.wait(30)
        self.broker.close()


def _parts_of(folder: Path, pid: int) -> list[Path]:
    """The prediction-log parts process ``pid`` wrote (``part-<ns>-<host>-<pid>-<n>.parquet``)."""
    return sorted(folder.glob(f"part-*-{pid}-*.parquet")) if folder.is_dir() else []


def _kill_with_a_batch_in_hand(chaos: Chaos, victim: Scorer) -> list[str]:
    """SIGKILL ``victim`` with a batch in hand, its prediction-log rows written and the batch
    not acknowledged; the ids of the events it held.

    Right after a new part of its log appears it is stopped (SIGSTOP), given time for what it
    already sent to reach the broker, and checked: on Redis, the part's events must still be
    pending under its name; on JetStream (which does not say which member of a group holds
    what), they must not be published yet, so not acknowledged either. Killed when they are
    held, let go (SIGCONT) to try the next part otherwise. A Redis consumer that keeps
    acknowledging before it is stopped is killed, after ``TRIES`` parts, with whatever batch
    it holds (fetched, not logged yet)."""
    folder = chaos.home / "predictions" / chaos.names["name"]
    client = redis.Redis.from_url(chaos.url) if chaos.kind == "redis" else None
    published: set[str] = set()
    after: dict[str, int | None] = {chaos.names["output"]: None, chaos.names["dead"]: None}

    def held(part: Path, tries: int) -> list[str]:
        ids = set(pq.read_table(part, columns=["request_id"])["request_id"].to_pylist())
        if client is not None:
            found: Any = client.xpending_range(
                chaos.names["stream"], GROUP, "-", "+", 10_000, consumername=victim.name
            )
            pending = sorted(p["message_id"].decode() for p in found)
            return pending if ids & set(pending) or tries >= TRIES else []
        for stream in list(after):
            read = after[stream]
            while batch := chaos.broker.read(stream, read, 1000):
                published.update(e.fields["event_id"] for e in batch)
                read = after[stream] = batch[-1].position
        return [] if ids & published else sorted(ids)

    try:
        seen, tries = len(_parts_of(folder, victim.pid)), 0
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            assert victim.running.process.poll() is None, chaos.outputs()
            parts = _parts_of(folder, victim.pid)
            if len(parts) > seen:
                os.kill(victim.pid, signal.SIGSTOP)
                time.sleep(0.2)  # what it sent before it stopped reaches the broker
                seen, tries = len(parts), tries + 1
                holding = held(parts[-1], tries)
                if holding:
                    victim.running.process.kill()
                    victim.running.process.wait(30)
                    return holding
                os.kill(victim.pid, signal.SIGCONT)
            time.sleep(0.001)
        raise AssertionError(f"{victim.name} never held a batch:\n{chaos.outputs()}")
    finally:
        if client is not None:
            client.close()


def _spec(folder: Path, url: str) -> tuple[Path, dict[str, str]]:
    return write_stream_spec(
        folder, url, "chaos", group=GROUP, claim_idle="2s", max_events=10, max_wait="20ms"
    )


@pytest.fixture
def chaos(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Chaos]:
    kind = request.param
    url = request.getfixturevalue(f"{kind}_url")
    spec, names = _spec(tmp_path, url)
    found = Chaos(kind, url, spec, home, names)
    try:
        yield found
    finally:
        found.close()


@pytest.mark.parametrize("chaos", ["redis", "nats"], indirect=True)
def test_killed_and_stopped_consumers_lose_nothing_and_publish_nothing_twice(
    chaos: Chaos,
) -> None:
    stream = chaos.names["stream"]
    if chaos.kind == "nats":  # the stream exists before the raw producer publishes to it
        chaos.broker.consumer(stream, GROUP, "checker", claim_idle_ms=CLAIM_IDLE_MS)
    killed, stopped, drainer = (chaos.start(n) for n in ("killed", "stopped", "drainer"))
    everyone = (killed, stopped, drainer)
    chaos.wait(
        "the three consumers serving their metrics",
        lambda: all(s.metrics() is not None for s in everyone),
        *everyone,
    )
    producer = Producer(chaos.kind, chaos.url, stream)
    producer.start()

    # SIGKILL the first once it has worked a while, with a batch in hand.
    chaos.wait("the first consumer at work", lambda: killed.handled(stream) >= 30, *everyone)
    held = _kill_with_a_batch_in_hand(chaos, killed)
    killed_parts = _parts_of(chaos.home / "predictions" / chaos.names["name"], killed.pid)
    assert killed.running.process.returncode == -signal.SIGKILL

    # SIGTERM the second mid-flow: it finishes its batch and exits 0.
    before = stopped.handled(stream)
    chaos.wait(
        "the second consumer at work after the kill",
        lambda: stopped.handled(stream) >= before + 30,
        stopped,
        drainer,
    )
    stopped_redeliveries = stopped.metric(stream, "mlship_stream_redeliveries_total")
    mid_flow = len(producer.ids) < PRODUCED
    code = chaos.terminate(stopped)
    assert code == 0, f"SIGTERM: exit code {code}\n{chaos.outputs()}"
    assert "Stopped: " in stopped.running.output and "Traceback" not in stopped.running.output
    if chaos.kind == "redis":
        client = redis.Redis.from_url(chaos.url)
        try:
            left: Any = client.xpending_range(
                stream, GROUP, min="-", max="+", count=100, consumername="stopped"
            )
        finally:
            client.close()
        assert left == [], f"the stopped consumer left events unacknowledged: {left}"

    # The third drains the stream: the killed one's events included, after the claim timeout.
    producer.join()
    chaos.wait(
        "the stream drained (nothing undelivered, nothing pending)",
        lambda: chaos.backlog() == Backlog(undelivered=0, pending=0),
        drainer,
    )
    drainer_redeliveries = drainer.metric(stream, "mlship_stream_redeliveries_total")
    code = chaos.terminate(drainer)
    assert code == 0, f"SIGTERM: exit code {code}\n{chaos.outputs()}"

    produced = producer.ids
    assert len(produced) == len(set(produced)) == PRODUCED
    bad = PRODUCED - producer.kinds["good"]
    outputs = [e.fields["event_id"] for e in chaos.read_all(chaos.names["output"])]
    dead = [e.fields["event_id"] for e in chaos.read_all(chaos.names["dead"])]
    once_out, once_dead = Counter(outputs), Counter(dead)
    twice = sorted(i for i, n in (once_out + once_dead).items() if n > 1)
    assert not twice, f"published more than once: {twice[:20]}"
    assert not set(outputs) & set(dead), "events both scored and dead-lettered"
    assert set(outputs) | set(dead) == set(produced), (
        f"lost: {sorted(set(produced) - set(outputs) - set(dead))[:20]}; "
        f"never produced: {sorted(set(outputs) | set(dead) - set(produced))[:20]}"
    )
    assert len(dead) == bad, f"{len(dead)} dead letters for {bad} bad events"
    assert set(held) <= set(outputs) | set(dead)

    folder = chaos.home / "predictions" / chaos.names["name"]
    raw = pa.concat_tables(pq.read_table(part) for part in sorted(folder.glob("part-*.parquet")))
    counted = read_log(folder)
    rows: dict[str, list[str]] = {}
    for name, table in (("raw", raw), ("counted", counted)):
        for role in ("stream", "error"):
            mask = pa.compute.equal(table["role"], role)
            rows[f"{name} {role}"] = table.filter(mask)["request_id"].to_pylist()
    assert sorted(rows["counted stream"]) == sorted(outputs), "counted stream rows != outputs"
    assert sorted(rows["counted error"]) == sorted(dead), "counted error rows != dead letters"
    logged = Counter(rows["raw stream"] + rows["raw error"])
    by_killed = {i for part in killed_parts for i in pq.read_table(part)["request_id"].to_pylist()}
    relogged = sorted(i for i in set(held) & by_killed if logged[i] < 2)
    assert not relogged, f"held by the killed consumer, logged only by it: {relogged}"
    raw_twice = sum(n - 1 for n in logged.values())
    redeliveries = stopped_redeliveries + drainer_redeliveries

    print(
        f"\nchaos on {chaos.kind}: produced {PRODUCED} ({bad} bad: {dict(producer.kinds)}), "
        f"outputs {len(outputs)}, dead letters {len(dead)}, "
        f"raw log rows {raw.num_rows} (logged again: {raw_twice}), "
        f"counted rows {counted.num_rows}, redeliveries {redeliveries:g}, "
        f"events in the killed consumer's hand {len(held)}, "
        f"second consumer stopped before the producer finished: {mid_flow}"
    )
    assert len(held) > 0 and redeliveries > 0, (
        f"{redeliveries:g} redeliveries: the kill proved nothing\n{chaos.outputs()}"
    )
    assert raw.num_rows >= counted.num_rows == PRODUCED
