"""Scale-out on one machine: replicas behind HAProxy next to one server's worker processes.

The churn example's model, trained by mlship, is served three ways in one run: ``mlship deploy
haproxy churn:1 -n N`` (N replicas, each one process, behind HAProxy), ``mlship serve churn:1
--workers N`` (one server, N worker processes on one socket) for N = 1, 2 and 4, every one with
its defaults (the prediction log on). Each is loaded in turn with one row per request and
``concurrency`` requests in flight (a closed loop: throughput), by the asyncio httpx client of
``bench_serving.py``, which shares the machine's cores with the servers. Then:

- HAProxy's cost per request: with one replica, requests one at a time, alternately through
  HAProxy and straight to the replica; the median of the first minus the median of the second;
- the failover gap: two replicas behind HAProxy under a steady open-loop load
  (:mod:`mlship.loadtest`), one SIGKILLed halfway: the longest time without a successful answer,
  the requests that failed, and how many HAProxy had to retry.

    python benchmarks/bench_scaleout.py [--seconds 5] [--concurrency 32] [--replicas 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
from bench_serving import _free_port, _load, _percentile, _start, _stop, train_churn
from rich.console import Console
from rich.table import Table

from mlship.deploy.haproxy import parse_log_line
from mlship.loadtest.open_loop import Load, run, summarise

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Cell:
    setup: str
    processes: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


@dataclass
class Deployed:
    process: subprocess.Popen[bytes]
    url: str
    directory: Path


def _deploy(replicas: int, env: dict[str, str], directory: Path) -> Deployed:
    """``mlship deploy haproxy churn:1 -n replicas`` writing into ``directory``, once it says
    HAProxy is on."""
    port = _free_port()
    directory.mkdir()
    output = directory / "deploy.out"
    with output.open("wb") as handle:
        process = subprocess.Popen(
            [str(VENV_BIN / "mlship"), "deploy", "haproxy", "churn:1", "-n", str(replicas),
             "--port", str(port), "--dir", str(directory)],
            env={**env, "COLUMNS": "200"}, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 300
    while "HAProxy on" not in output.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mlship deploy did not start; see {output}")
        time.sleep(0.3)
    return Deployed(process, f"http://127.0.0.1:{port}", directory)


def _undeploy(deployed: Deployed) -> None:
    if deployed.process.poll() is None:
        os.killpg(deployed.process.pid, signal.SIGTERM)
        deployed.process.wait(timeout=120)


def _cell(
    setup: str, processes: int, url: str, body: bytes, concurrency: int, seconds: float
) -> Cell:
    started = time.perf_counter()
    latencies, errors = asyncio.run(_load(url, body, concurrency, seconds))
    elapsed = time.perf_counter() - started
    return Cell(setup, processes, len(latencies), errors, elapsed,
                _percentile(latencies, 0.5), _percentile(latencies, 0.99))  # fmt: skip


def _overhead(through: str, direct: str, body: bytes, seconds: float) -> tuple[float, float]:
    """Median latencies (ms) of requests sent one at a time, alternately through HAProxy and
    straight to the replica, so that both see the same load from the rest of the machine."""
    import httpx

    timings: dict[str, list[float]] = {through: [], direct: []}
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=30, headers=headers) as client:
        for url in timings:  # warm both connections
            client.post(url, content=body).raise_for_status()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for url, found in timings.items():
                started = time.perf_counter()
                client.post(url, content=body).raise_for_status()
                found.append(time.perf_counter() - started)
    return _percentile(timings[through], 0.5), _percentile(timings[direct], 0.5)


@dataclass(frozen=True)
class Failover:
    gap_s: float
    failed: int
    requests: int
    retried: int


def _failover(deployed: Deployed, body: bytes, rate: float, seconds: float) -> Failover:
    """Steady load on two replicas, the second SIGKILLed halfway."""
    pid_file = deployed.directory / "replica-2.pid"
    kill = f"kill -9 $(cat {pid_file})"
    halfway = seconds / 2 + 0.01  # once: the second kill would be after the end
    load = Load(f"{deployed.url}/predict", rate, seconds, 8, body, kill_every_s=halfway,
                kill_command=kill)  # fmt: skip
    summary = summarise(run(load))
    log = (deployed.directory / "haproxy.log").read_text().splitlines()
    retried = sum(1 for r in map(parse_log_line, log) if r is not None and r.retries)
    return Failover(summary.gap.seconds, summary.failed, summary.requests, retried)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Load time per cell.")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--failover-rate", type=float, default=50.0, help="Requests per second.")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 140)
    with tempfile.TemporaryDirectory(prefix="mlship-bench-scaleout-") as tmp:
        root = Path(tmp)
        home = root / "home"
        spec, model = train_churn(root, home, console)
        inputs = pd.read_csv(spec.parent / "data" / "new_customers.csv")
        columns = [c.name for c in model.signature.inputs]
        typed = model.prepare(inputs, "new_customers.csv", csv_lines=True)[columns].head(1)
        records = typed.astype(object).where(typed.notna(), None).to_dict("records")
        body = orjson.dumps({"records": records})
        env = {**os.environ, "MLSHIP_HOME": str(home), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        cells: list[Cell] = []
        overhead: tuple[float, float] | None = None
        for n in args.replicas:
            console.log(f"HAProxy + {n} replica(s), concurrency {args.concurrency}")
            deployed = _deploy(n, env, root / f"deploy-{n}")
            try:
                url = f"{deployed.url}/predict"
                cells.append(
                    _cell("HAProxy + replicas", n, url, body, args.concurrency, args.seconds)
                )
                if n == 1:
                    config = (deployed.directory / "haproxy.cfg").read_text().splitlines()
                    where = next(line.split()[2] for line in config if "server replica-1" in line)
                    direct = f"http://{where}/predict"
                    overhead = _overhead(url, direct, body, 2 * args.seconds)
            finally:
                _undeploy(deployed)
        for n in args.replicas:
            console.log(f"mlship serve --workers {n}, concurrency {args.concurrency}")
            port = _free_port()
            server = _start(
                [str(VENV_BIN / "mlship"), "serve", "churn:1", "--port", str(port),
                 "--workers", str(n)],
                env, root / f"workers-{n}.log", f"http://127.0.0.1:{port}/health",
            )  # fmt: skip
            try:
                url = f"http://127.0.0.1:{port}/predict"
                cells.append(_cell("serve --workers", n, url, body, args.concurrency, args.seconds))
            finally:
                _stop(server)
        console.log(f"Failover: 2 replicas at {args.failover_rate:g} requests/s, one killed")
        deployed = _deploy(2, env, root / "failover")
        try:
            failover = _failover(deployed, body, args.failover_rate, 2 * args.seconds)
        finally:
            _undeploy(deployed)
    _print(console, cells, args, overhead, failover)


def _print(
    console: Console,
    cells: list[Cell],
    args: argparse.Namespace,
    overhead: tuple[float, float] | None,
    failover: Failover,
) -> None:
    table = Table(
        title=f"Scale-out of the churn model on {os.cpu_count()} cores (1 row per request, "
        f"concurrency {args.concurrency}, {args.seconds:g} s per cell, httpx client)"
    )
    for name in ("setup", "processes", "requests/s", "p50 ms", "p99 ms", "errors",
                 "x 1 process", "x workers"):  # fmt: skip
        table.add_column(name, justify="left" if name == "setup" else "right")
    for cell in cells:
        one = next(c for c in cells if c.setup == cell.setup and c.processes == 1)
        workers = next(
            c for c in cells if c.setup == "serve --workers" and c.processes == cell.processes
        )
        table.add_row(
            cell.setup,
            str(cell.processes),
            f"{cell.throughput:.0f}",
            f"{cell.p50_ms:.1f}",
            f"{cell.p99_ms:.1f}",
            str(cell.errors),
            f"{cell.throughput / one.throughput:.2f}x",
            f"{cell.throughput / workers.throughput:.2f}x",
        )
    console.print(table)
    if overhead is not None:
        through, direct = overhead
        console.print(
            f"HAProxy per request (1 replica, one request at a time, p50): {through:.2f} ms "
            f"through it, {direct:.2f} ms direct: {through - direct:+.2f} ms"
        )
    console.print(
        f"Failover (2 replicas, {args.failover_rate:g} requests/s, one SIGKILLed): longest gap "
        f"without an answer {failover.gap_s * 1000:.0f} ms; {failover.failed} of "
        f"{failover.requests} requests failed; HAProxy retried {failover.retried}"
    )


if __name__ == "__main__":
    main()
