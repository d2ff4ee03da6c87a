"""Single-row latency: ``POST /predict`` on ``mlship serve`` vs raw in-process ``predict``.

Trains the churn example into a temporary workspace, then times the same one-row input
(a) through the loaded model in this process and (b) over real HTTP on 127.0.0.1 against a
``mlship serve`` subprocess with a keep-alive client. Prints medians and p99 and the ratio.

    python benchmarks/bench_predict_latency.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _record(frame: pd.DataFrame) -> dict[str, Any]:
    row = frame.iloc[0].to_dict()
    return {str(k): (None if pd.isna(v) else v) for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        workspace = Workspace.open(Settings(home=home))
        console.log("Training the churn example")
        execute(load_spec(write_project(root / "churn")), workspace)
        model = workspace.load_model(workspace.catalogue.get_version("churn"))
        workspace.close()

        raw = pd.read_csv(root / "churn" / "data" / "new_customers.csv", dtype=str).head(1)
        frame = model.prepare(raw, "new_customers.csv")
        for _ in range(20):  # warm-up
            model.predict(frame)
        in_process = []
        for _ in range(args.requests):
            started = time.perf_counter()
            model.predict(frame)
            in_process.append(time.perf_counter() - started)

        record = _record(frame)
        port = _free_port()
        env = {**os.environ, "MLSHIP_HOME": str(home)}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlship",
                "serve",
                "churn",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=10) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                body = {"records": [record]}
                for _ in range(20):
                    client.post("/predict", json=body).raise_for_status()
                served = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    client.post("/predict", json=body).raise_for_status()
                    served.append(time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(timeout=30)

    raw_p50, raw_p99 = _percentiles(in_process)
    http_p50, http_p99 = _percentiles(served)
    table = Table(title=f"Single-row predict latency of churn ({args.requests} requests each)")
    for name in ("path", "p50 ms", "p99 ms", "p50 vs raw"):
        table.add_column(name, justify="left" if name == "path" else "right")
    table.add_row("raw in-process predict", f"{raw_p50:.3f}", f"{raw_p99:.3f}", "1.00x")
    table.add_row(
        "mlship serve POST /predict (HTTP, keep-alive)",
        f"{http_p50:.3f}",
        f"{http_p99:.3f}",
        f"{http_p50 / raw_p50:.2f}x (+{http_p50 - raw_p50:.3f} ms)",
    )
    console.print(table)


if __name__ == "__main__":
    main()
