"""Serving: mlship's server vs MLflow's scoring server, on the same scikit-learn model.

The model is the churn example's, trained by mlship (a pipeline with its preprocessing and a tuned
decision threshold). mlship serves it with ``mlship serve``; MLflow serves the very same fitted
pipeline, saved with ``mlflow.sklearn.save_model``, with ``mlflow models serve --env-manager
local``. Both listen on 127.0.0.1 with their default logging (each writes a line per request) to a
file. The load generator keeps ``concurrency`` requests in flight for a fixed time per cell, with
one row or 100 rows per request; errors are counted and must be 0. It is ``wrk`` (C, one
connection per request in flight, latency percentiles from every request) when installed, so that
the client takes little of the CPU the servers need, and otherwise an asyncio httpx client.
Client and servers share this machine's cores, as they would on one host.

The floor is the raw in-process ``predict`` of the same pipeline on the same rows. A third
server, ``mlship serve --write-ahead-log``, shows what putting every answer's log rows on disk
(fsynced, shared by the requests in flight) before sending it costs.

    python benchmarks/bench_serving.py [--seconds 5] [--concurrency 1 8 32] [--rows 1 100]
        [--client wrk|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console
from rich.table import Table

from mlship.config import Settings
from mlship.examples.churn import write_project
from mlship.spec import load_spec
from mlship.train.run import execute
from mlship.workspace import Workspace

VENV_BIN = Path(sys.executable).parent
WAL = "mlship, write-ahead log"


@dataclass(frozen=True)
class Cell:
    tool: str
    concurrency: int
    rows: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not answer {url} within 90 s; see {log}")


def _start(
    command: list[str], env: dict[str, str], log: Path, ready: str
) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    _wait(ready, process, log)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _load(
    url: str, body: bytes | None, concurrency: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        headers = {"content-type": "application/json"}

        async def call() -> httpx.Response:
            if body is None:
                return await client.get(url)
            return await client.post(url, content=body, headers=headers)

        for _ in range(min(concurrency, 4)):  # warm the connections and the server
            await call()
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                started = time.perf_counter()
                try:
                    response = await call()
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


_WRK_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("{body}", "rb")
wrk.body = file and file:read("*a") or nil
if file then file:close() end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(
    url: str, body: bytes | None, concurrency: int, seconds: float, scratch: Path
) -> tuple[int, int, float, float, float]:
    """Requests, errors, seconds, p50 ms and p99 ms of one ``wrk`` run."""
    body_file = scratch / "body.json"
    body_file.write_bytes(body or b"")
    script = scratch / "load.lua"
    script.write_text(
        _WRK_SCRIPT.format(method="POST" if body is not None else "GET", body=body_file)
    )
    threads = min(concurrency, 2)
    for duration in (1, seconds):  # a short run warms the connections and the server
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration:g}s", "--latency",
             "--timeout", "30s", "-s", str(script), url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    text = done.stdout
    match = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", text)
    assert match is not None, text
    requests = int(match.group(1))
    elapsed = float(match.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(3)]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if sockets:
        errors += sum(int(n) for n in sockets.groups())

    def percentile(label: str) -> float:
        found = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        assert found is not None, text
        return float(found.group(1)) * _UNITS[found.group(2)]

    return requests, errors, elapsed, percentile("50"), percentile("99")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _cell(
    tool: str,
    url: str,
    body: bytes | None,
    concurrency: int,
    rows: int,
    seconds: float,
    scratch: Path | None = None,
) -> Cell:
    """One load run; with ``scratch`` (a directory for its script) by wrk, else by httpx."""
    if scratch is not None:
        requests, errors, elapsed, p50, p99 = _wrk(url, body, concurrency, seconds, scratch)
        return Cell(tool, concurrency, rows, requests, errors, elapsed, p50, p99)
    started = time.perf_counter()
    latencies, errors = asyncio.run(_load(url, body, concurrency, seconds))
    elapsed = time.perf_counter() - started
    return Cell(
        tool,
        concurrency,
        rows,
        len(latencies),
        errors,
        elapsed,
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
    )


def _agree(urls: dict[str, str], bodies: dict[str, bytes], rows: int) -> int:
    """Post one request body to each server and check they predict the same labels, row by row:
    a faster server that answered differently would not be serving the same model."""
    answers = {}
    for tool, url in urls.items():
        response = httpx.post(
            url, content=bodies[tool], headers={"Content-Type": "application/json"}, timeout=60
        )
        response.raise_for_status()
        answers[tool] = [str(p) for p in response.json()["predictions"]]
    first = next(iter(answers.values()))
    for tool, predictions in answers.items():
        differ = [i for i, (a, b) in enumerate(zip(first, predictions, strict=False)) if a != b]
        if len(predictions) != rows or differ:
            raise SystemExit(
                f"the servers disagree on {rows} row(s): {len(predictions)} answers from {tool}, "
                f"rows {differ[:10]} differ"
            )
    return len(first)


def _raw_floor(pipeline: Any, frame: pd.DataFrame, repeats: int = 200) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        pipeline.predict(frame)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def train_churn(root: Path, home: Path, console: Console) -> tuple[Path, Any]:
    """The churn example (3,000 rows) written under ``root`` and trained into ``home``: its
    spec, and churn:1 loaded."""
    console.log("Training the churn example with mlship ...")
    workspace = Workspace.open(Settings(home=home, n_jobs=1))
    try:
        spec = write_project(root / "churn", n=3000)
        execute(load_spec(spec), workspace)
        model = workspace.load_model(workspace.catalogue.get_version("churn", 1))
    finally:
        workspace.close()
    return spec, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Load time per cell.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument(
        "--client",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="Load generator (wrk when installed).",
    )
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 140)
    import mlflow.sklearn

    with tempfile.TemporaryDirectory(prefix="mlship-bench-serving-") as tmp:
        root = Path(tmp)
        home = root / "home"
        spec, model = train_churn(root, home, console)
        inputs = pd.read_csv(spec.parent / "data" / "new_customers.csv")
        columns = [c.name for c in model.signature.inputs]
        typed = model.prepare(inputs, "new_customers.csv", csv_lines=True)
        mlflow_dir = root / "mlflow-model"
        mlflow.sklearn.save_model(model.pipeline, str(mlflow_dir), serialization_format="pickle")

        env = {**os.environ, "MLSHIP_HOME": str(home), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        mlship_port, mlflow_port, wal_port = _free_port(), _free_port(), _free_port()
        servers = {
            "mlship": _start(
                # Its defaults, the prediction log included (MLflow keeps none).
                [str(VENV_BIN / "mlship"), "serve", "churn:1", "--port", str(mlship_port)],
                env, root / "mlship.log", f"http://127.0.0.1:{mlship_port}/health",
            ),
            # The same, each answer's log rows fsynced before it is sent.
            WAL: _start(
                [str(VENV_BIN / "mlship"), "serve", "churn:1", "--port", str(wal_port),
                 "--write-ahead-log"],
                env, root / "mlship-wal.log", f"http://127.0.0.1:{wal_port}/health",
            ),
            "MLflow": _start(
                [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(mlflow_dir),
                 "--env-manager", "local", "-p", str(mlflow_port)],
                env, root / "mlflow.log", f"http://127.0.0.1:{mlflow_port}/ping",
            ),
        }  # fmt: skip
        cells: list[Cell] = []
        floors: dict[int, float] = {}
        try:
            # The client's and HTTP's own cost: a GET that does no work, at concurrency 1.
            live = f"http://127.0.0.1:{mlship_port}/v2/health/live"
            scratch = root if args.client == "wrk" else None
            echo = _cell("mlship", live, None, 1, 0, min(args.seconds, 3), scratch)
            for rows in args.rows:
                # Values as the signature types them (booleans as true/false): MLflow passes
                # JSON to the pipeline as pandas reads it, so the text "no" of a boolean column
                # would reach the model as a string, and 2 of 100 rows got another answer.
                sample = typed[columns].head(rows)
                while len(sample) < rows:
                    sample = pd.concat([sample, typed[columns]]).head(rows)
                records = sample.astype(object).where(sample.notna(), None).to_dict("records")
                import orjson

                bodies = {
                    "mlship": orjson.dumps({"records": records}),
                    WAL: orjson.dumps({"records": records}),
                    "MLflow": orjson.dumps({"dataframe_records": records}),
                }
                urls = {
                    "mlship": f"http://127.0.0.1:{mlship_port}/predict",
                    WAL: f"http://127.0.0.1:{wal_port}/predict",
                    "MLflow": f"http://127.0.0.1:{mlflow_port}/invocations",
                }
                agreed = _agree(urls, bodies, rows)
                console.log(f"Both servers answer the same {agreed} prediction(s)")
                floors[rows] = _raw_floor(model.pipeline, typed.head(rows))
                for concurrency in args.concurrency:
                    for tool in ("mlship", WAL, "MLflow"):
                        console.log(f"{tool}: {rows} row(s) per request, concurrency {concurrency}")
                        cells.append(
                            _cell(
                                tool,
                                urls[tool],
                                bodies[tool],
                                concurrency,
                                rows,
                                args.seconds,
                                scratch,
                            )
                        )
        finally:
            for process in servers.values():
                _stop(process)
    _print(console, cells, floors, args.seconds, args.client)
    console.print(
        f"HTTP and client floor (GET /v2/health/live, concurrency 1): p50 {echo.p50_ms:.2f} ms"
    )


def _print(
    console: Console, cells: list[Cell], floors: dict[int, float], seconds: float, client: str
) -> None:
    table = Table(
        title=f"Serving the churn model on 127.0.0.1 ({seconds:g} s per cell, client {client})"
    )
    for name in (
        "rows/request", "concurrency", "tool", "requests/s", "p50 ms", "p99 ms", "errors",
        "x MLflow", "raw predict p50 ms",
    ):  # fmt: skip
        table.add_column(name, justify="left" if name == "tool" else "right")
    for cell in cells:
        peer = next(
            c for c in cells
            if c.tool == "MLflow" and c.rows == cell.rows and c.concurrency == cell.concurrency
        )  # fmt: skip
        table.add_row(
            str(cell.rows),
            str(cell.concurrency),
            cell.tool,
            f"{cell.throughput:.0f}",
            f"{cell.p50_ms:.2f}",
            f"{cell.p99_ms:.2f}",
            str(cell.errors),
            f"{cell.throughput / peer.throughput:.2f}x",
            f"{floors[cell.rows]:.2f}",
        )
    console.print(table)
    for rows, floor in floors.items():
        ones = [c for c in cells if c.tool == "mlship" and c.rows == rows and c.concurrency == 1]
        for cell in ones:
            console.print(
                f"{rows} row(s), concurrency 1: mlship p50 {cell.p50_ms:.2f} ms vs raw predict "
                f"{floor:.2f} ms (+{cell.p50_ms - floor:.2f} ms)"
            )


if __name__ == "__main__":
    main()
