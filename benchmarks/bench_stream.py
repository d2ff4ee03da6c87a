"""Streaming: ``mlship stream run`` against a naive one-event-at-a-time loop, on Redis Streams.

A ``redis-server`` of its own (a temporary directory, a free port, an append-only file with
``appendfsync everysec``: at most a second of writes lost on a power cut, the setting most
production servers run with) and the churn example's model, trained and registered in a temporary
workspace. For each cell, a producer process appends churn events at the offered rate (pipelined
``XADD``s, ids made by the server) for ``--seconds``, while consumers work on them in one group:

- ``mlship stream run`` (1 or 2 processes): micro-batches, each checked against the signature,
  scored in one ``predict`` call, its prediction-log rows written as one part, its predictions
  published once per event, then acknowledged;
- the naive floor (1 or 2 processes): a redis-py loop that reads ONE event (``XREADGROUP COUNT
  1``), scores it alone with the same loaded model (``predict`` on a 1-row frame), ``XADD``s the
  prediction and ``XACK``s it. No prediction log, no validation, no once-per-event publishing.

Throughput is the events handled (one output each) over the time from the first append to the
last output; events still unhandled a few seconds after the producer stopped count as not
handled. End-to-end latency is an output entry's id (its publication, in the server's clock)
minus its event's id (its append, in the same clock).

The goal: at least 10x the naive floor's throughput with as many processes, and a p99 under
50 ms at 1,000 events/s.

    python benchmarks/bench_stream.py [--seconds 10] [--rates 1000 10000] [--consumers 1 2]
        [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

VENV_BIN = Path(sys.executable).parent
GROUP = "scorers"
MLSHIP = "mlship stream run"
NAIVE = "naive loop"
P99_GOAL_MS = 50.0
RATIO_GOAL = 10.0


@dataclass(frozen=True)
class Cell:
    tool: str
    rate: int
    processes: int
    appended: int
    handled: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


# The producer and the naive consumer run as processes of their own: this script, with a role.


def produce(url: str, stream: str, rate: int, seconds: float) -> None:
    """Append churn events at ``rate`` per second for ``seconds``, pipelined once a millisecond
    or so; print how many were appended and in how long."""
    from mlship.examples.churn.events import churn_events

    payloads = [{"data": json.dumps(event)} for event in churn_events(2000)]
    client = redis.Redis.from_url(url)
    sent = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        due = min(int(rate * elapsed), sent + 2000)
        if due <= sent:
            time.sleep(0.001)
            continue
        pipe = client.pipeline(transaction=False)
        for i in range(sent, due):
            pipe.xadd(stream, payloads[i % len(payloads)])  # type: ignore[arg-type]
        pipe.execute()
        sent = due
    print(json.dumps({"appended": sent, "seconds": time.perf_counter() - started}), flush=True)


def naive(url: str, stream: str, output: str, name: str, home: str) -> None:
    """Read one event, score it alone, publish its prediction, acknowledge it; until SIGTERM."""
    import pandas as pd

    from mlship.config import Settings
    from mlship.workspace import Workspace

    workspace = Workspace.open(Settings(home=Path(home), n_jobs=1))
    model = workspace.load_model(workspace.catalogue.get_version("churn", 1))
    names = [c.name for c in model.signature.inputs]
    client = redis.Redis.from_url(url)
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    client.xreadgroup(GROUP, name, {stream: ">"}, count=1, block=1)  # joins the group
    print("ready", flush=True)
    while not stopping:
        read: Any = client.xreadgroup(GROUP, name, {stream: ">"}, count=1, block=100)
        for _stream, entries in read or []:
            for entry_id, fields in entries:
                event = json.loads(fields[b"data"])
                frame = pd.DataFrame([{n: event.get(n) for n in names}])
                predictions, _proba = model.predict(frame)
                answer = {"event_id": entry_id.decode(), "prediction": str(predictions[0])}
                client.xadd(output, {"data": json.dumps(answer)})
                client.xack(stream, GROUP, entry_id)
    workspace.close()


# The bench itself.


def _redis(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    data = root / "redis"
    data.mkdir()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
         "--logfile", str(data / "redis.log")],
        start_new_session=True,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(
                    f"redis-server did not start; see {data / 'redis.log'}"
                ) from None
            time.sleep(0.1)
    client.close()
    return process, url


def _train(root: Path, home: Path, console: Console) -> None:
    from mlship.config import Settings
    from mlship.examples.churn import write_project
    from mlship.spec import load_spec
    from mlship.train.run import execute
    from mlship.workspace import Workspace

    console.log("Training the churn example with mlship ...")
    workspace = Workspace.open(Settings(home=home, n_jobs=1))
    try:
        execute(load_spec(write_project(root / "churn", n=3000)), workspace)
    finally:
        workspace.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_consumers(
    client: redis.Redis, count: int, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Until ``count`` consumers are reading (each has loaded the model): connections whose
    last command is a group read (Redis lists a consumer in its group only once it has read)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f"a consumer exited early with {processes[0].returncode}")
        clients: Any = client.client_list()
        if sum(1 for c in clients if c.get("cmd") in ("xreadgroup", "xautoclaim")) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{count} consumers did not start reading within 180 s")


def _launch(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _spec(root: Path, url: str, names: dict[str, str]) -> Path:
    path = root / f"{names['name']}.yaml"
    path.write_text(
        f"""name: {names["name"]}
source: {{url: "{url}", stream: {names["stream"]}, group: {GROUP}, claim_idle: 60s}}
entity: customer_id
model: "churn:1"
batch: {{max_events: 500, max_wait: 20ms}}
output: {{stream: {names["output"]}}}
dead_letter: {{stream: {names["dead"]}}}
""",
        encoding="utf-8",
    )
    return path


def _cell(
    tool: str,
    rate: int,
    processes: int,
    seconds: float,
    drain: float,
    url: str,
    root: Path,
    env: dict[str, str],
) -> Cell:
    tag = uuid.uuid4().hex[:8]
    names = {
        "name": f"bench-{tag}",
        "stream": f"events-{tag}",
        "output": f"predictions-{tag}",
        "dead": f"dead-{tag}",
    }
    client = redis.Redis.from_url(url)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    consumers: list[subprocess.Popen[bytes]] = []
    script = str(Path(__file__).resolve())
    try:
        if tool == MLSHIP:
            spec = _spec(root, url, names)
            for i in range(processes):
                command = [str(VENV_BIN / "mlship"), "stream", "run", str(spec),
                           "--consumer", f"c{i}", "--log-level", "warning"]  # fmt: skip
                consumers.append(_launch(command, env, logs / f"{tag}-{i}.log"))
        else:
            client.xgroup_create(names["stream"], GROUP, id="0", mkstream=True)
            for i in range(processes):
                command = [sys.executable, script, "--role", "naive", "--url", url,
                           "--stream", names["stream"], "--output", names["output"],
                           "--name", f"c{i}", "--home", env["MLSHIP_HOME"]]  # fmt: skip
                consumers.append(_launch(command, env, logs / f"{tag}-{i}.log"))
        _wait_consumers(client, processes, consumers)
        producer = subprocess.run(
            [sys.executable, script, "--role", "produce", "--url", url, "--stream",
             names["stream"], "--rate", str(rate), "--seconds", str(seconds)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        appended = json.loads(producer.stdout.strip().splitlines()[-1])["appended"]
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            done = client.xlen(names["output"]) + client.xlen(names["dead"])
            if done >= appended:
                break
            time.sleep(0.05)
    finally:
        for process in consumers:
            _stop(process)
    inputs: Any = client.xrange(names["stream"], count=appended + 10)
    appended_ms = {entry_id.decode(): _ms(entry_id) for entry_id, _ in inputs}
    outputs: Any = client.xrange(names["output"])
    latencies: list[int] = []
    seen: set[str] = set()
    last = 0
    cutoff = max(appended_ms.values()) + int(drain * 1000)
    for entry_id, fields in outputs:
        event_id = json.loads(fields[b"data"])["event_id"]
        at = _ms(entry_id)
        if event_id in seen or event_id not in appended_ms or at > cutoff:
            continue  # what came out after the drain (the stop's last batch) is lag
        seen.add(event_id)
        latencies.append(at - appended_ms[event_id])
        last = max(last, at)
    for stream in names.values():
        client.delete(stream)
    client.close()
    first = min(appended_ms.values())
    latencies.sort()

    def percentile(q: float) -> float:
        return float(latencies[min(len(latencies) - 1, int(q * len(latencies)))])

    return Cell(
        tool,
        rate,
        processes,
        len(appended_ms),
        len(seen),
        max(last - first, 1) / 1000,
        percentile(0.5) if latencies else float("nan"),
        percentile(0.99) if latencies else float("nan"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Producing time per cell.")
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--drain", type=float, default=3.0, help="Seconds allowed after the end.")
    parser.add_argument("--quick", action="store_true", help="A short smoke: 2 s, 1 consumer.")
    parser.add_argument("--role", choices=["bench", "produce", "naive"], default="bench")
    parser.add_argument("--url")
    parser.add_argument("--stream")
    parser.add_argument("--output")
    parser.add_argument("--name")
    parser.add_argument("--home", help="A workspace with churn:1 trained (reused as it is).")
    parser.add_argument("--rate", type=int)
    args = parser.parse_args()
    if args.role == "produce":
        produce(args.url, args.stream, args.rate, args.seconds)
        return
    if args.role == "naive":
        naive(args.url, args.stream, args.output, args.name, args.home)
        return
    if args.quick:
        args.seconds, args.consumers, args.drain = 2.0, [1], 1.0
    console = Console(width=None if sys.stdout.isatty() else 140)
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="mlship-bench-stream-") as tmp:
        root = Path(tmp)
        home = Path(args.home) if args.home else root / "home"
        server, url = _redis(root)
        try:
            if not args.home:
                _train(root, home, console)
            env = {**os.environ, "MLSHIP_HOME": str(home)}
            env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
            for rate in args.rates:
                for processes in args.consumers:
                    for tool in (MLSHIP, NAIVE):
                        console.log(f"{tool}: {rate} events/s offered, {processes} process(es)")
                        cells.append(
                            _cell(tool, rate, processes, args.seconds, args.drain, url, root, env)
                        )
        finally:
            _stop(server)
    _print(console, cells, args.seconds)


def _print(console: Console, cells: list[Cell], seconds: float) -> None:
    table = Table(
        title=f"Scoring churn events from Redis Streams ({seconds:g} s per cell, "
        "redis-server with appendonly yes, appendfsync everysec)"
    )
    for name in (
        "offered/s", "processes", "consumer", "appended", "handled", "events/s", "p50 ms",
        "p99 ms", "x naive",
    ):  # fmt: skip
        table.add_column(name, justify="left" if name == "consumer" else "right")
    holds = True
    for cell in cells:
        floor = next(
            c for c in cells if c.tool == NAIVE and c.rate == cell.rate
            and c.processes == cell.processes
        )  # fmt: skip
        ratio = cell.throughput / floor.throughput if floor.throughput else float("inf")
        table.add_row(
            f"{cell.rate:,}",
            str(cell.processes),
            cell.tool,
            f"{cell.appended:,}",
            f"{cell.handled:,}",
            f"{cell.throughput:,.0f}",
            f"{cell.p50_ms:.0f}",
            f"{cell.p99_ms:.0f}",
            f"{ratio:.1f}x",
        )
        if cell.tool == MLSHIP:
            if cell.rate == max(c.rate for c in cells) and ratio < RATIO_GOAL:
                holds = False
            if cell.rate <= 1000 and not cell.p99_ms < P99_GOAL_MS:
                holds = False
    console.print(table)
    console.print(
        f"Goal (at least {RATIO_GOAL:g}x the naive floor's events/s at the highest offered rate, "
        f"p99 under {P99_GOAL_MS:g} ms at 1,000 events/s): "
        + ("[green]holds[/green]" if holds else "[red]missed[/red]")
    )


if __name__ == "__main__":
    main()
