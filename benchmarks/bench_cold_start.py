"""Cold start: how long a request waits when a packaged model scales up from zero pods.

The churn example's model is trained by mlship and packaged with ``mlship package``; each trial
then starts ``mlship serve BUNDLE`` in a new process with an empty state directory (a new pod's
emptyDir) and sends one prediction every 20 ms until one is answered 200. The table gives, per
trial, the time from starting the process to ``/v2/health/ready`` answering 200 (what a
readiness probe sees) and to the first 200 on ``/predict`` (what the caller held by Knative's
activator waits). Pulling the image and scheduling the pod come on top and depend on the
cluster; the files are in the page cache after the first trial, as on a node that has the image.

    python benchmarks/bench_cold_start.py [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
from bench_serving import VENV_BIN, _free_port, _stop, train_churn
from rich.console import Console
from rich.table import Table

POLL_SECONDS = 0.02
GIVE_UP_SECONDS = 120.0


@dataclass(frozen=True)
class Trial:
    ready_s: float
    first_prediction_s: float


def _first_200(
    process: subprocess.Popen[bytes], base: str, body: bytes, started: float, log: Path
) -> Trial:
    """Poll readiness and /predict together, each until it first answers 200."""
    ready: float | None = None
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=5) as client:
        while time.perf_counter() - started < GIVE_UP_SECONDS:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}; see {log}")
            try:
                if ready is None and client.get(f"{base}/v2/health/ready").status_code == 200:
                    ready = time.perf_counter() - started
                answer = client.post(f"{base}/predict", content=body, headers=headers)
                if answer.status_code == 200:
                    done = time.perf_counter() - started
                    return Trial(ready if ready is not None else done, done)
            except httpx.TransportError:
                pass
            time.sleep(POLL_SECONDS)
    raise RuntimeError(f"no 200 on /predict within {GIVE_UP_SECONDS:.0f} s; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="Cold starts to time.")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 120)
    with tempfile.TemporaryDirectory(prefix="mlship-bench-cold-") as tmp:
        root = Path(tmp)
        home = root / "home"
        spec, model = train_churn(root, home, console)
        env = {**os.environ, "MLSHIP_HOME": str(home), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        bundle = root / "bundle"
        console.log("Packaging churn:1 ...")
        subprocess.run(
            ["mlship", "package", "churn:1", "-o", str(bundle)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        columns = [c.name for c in model.signature.inputs]
        rows = pd.read_csv(spec.parent / "data" / "new_customers.csv")[columns].head(1)
        body = json.dumps({"records": json.loads(rows.to_json(orient="records"))}).encode()
        key = (home / "keys" / "signing.key").read_text().strip()

        trials = []
        for number in range(1, args.trials + 1):
            state = root / f"pod-{number}"
            pod_env = {**env, "MLSHIP_HOME": str(state), "MLSHIP_SIGNING_KEY": key}
            port = _free_port()
            log = root / f"serve-{number}.log"
            with log.open("wb") as handle:
                started = time.perf_counter()
                process = subprocess.Popen(
                    ["mlship", "serve", str(bundle), "--port", str(port)],
                    env=pod_env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
                try:
                    trial = _first_200(process, f"http://127.0.0.1:{port}", body, started, log)
                finally:
                    _stop(process)
            console.log(
                f"trial {number}: ready {trial.ready_s:.2f} s, "
                f"first prediction {trial.first_prediction_s:.2f} s"
            )
            trials.append(trial)
    _print(console, trials)


def _print(console: Console, trials: list[Trial]) -> None:
    table = Table(
        title=f"Cold start of a packaged model, {len(trials)} trials ({os.cpu_count()} CPUs)"
    )
    table.add_column("from `mlship serve BUNDLE` to")
    for heading in ("min s", "median s", "max s"):
        table.add_column(heading, justify="right")
    for label, values in (
        ("/v2/health/ready 200", [t.ready_s for t in trials]),
        ("first /predict 200", [t.first_prediction_s for t in trials]),
    ):
        table.add_row(
            label, f"{min(values):.2f}", f"{statistics.median(values):.2f}", f"{max(values):.2f}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
