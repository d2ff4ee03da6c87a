"""Batch scoring: ``mlship predict`` in this process against ``--executor ray`` on the same rows.

The churn example is trained once (churn:1), and ``rows`` new customers are written twice: as one
Parquet file and as a directory of ``files`` Parquet files (row groups of 50,000 rows). Each
command runs in its own ``mlship`` process, as a user runs it, with the prediction log off (it is
the same work on both paths), and is timed from start to exit; ``--executor ray`` starts a local
Ray with one CPU per core for each job, so its time includes Ray's start-up, which is what a one-off
job pays. The table gives the wall time, rows/s and the ratio to local; the answers of both are
checked equal before anything is printed.

    python benchmarks/bench_batch_scoring.py [--rows 200000 1000000] [--files 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from bench_serving import train_churn
from rich.console import Console
from rich.table import Table

from mlship.examples.churn import make_customers


def _write_inputs(rows: int, files: int, root: Path) -> tuple[Path, Path]:
    frame = make_customers(rows, seed=5).drop(columns=["churned"])
    whole = root / f"rows-{rows}.parquet"
    frame.to_parquet(whole, index=False)
    directory = root / f"rows-{rows}"
    directory.mkdir()
    for index, part in enumerate(np.array_split(np.arange(rows), files)):
        table = pa.Table.from_pandas(frame.iloc[part], preserve_index=False)
        pq.write_table(table, directory / f"part-{index:03d}.parquet", row_group_size=50_000)
    return whole, directory


def _timed(home: Path, source: Path, output: Path, *extra: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSHIP_", "RAY_ADDRESS"))}
    env["MLSHIP_HOME"] = str(home)
    command = [sys.executable, "-m", "mlship", "predict", "churn:1", str(source), "-o", str(output)]
    began = time.perf_counter()
    subprocess.run([*command, "--no-prediction-log", *extra], env=env, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--files", type=int, default=8, help="Files of the dataset directory.")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"Batch scoring, churn:1, {os.cpu_count()} cores")
    for column in ("rows", "executor", "input", "seconds", "rows/s", "vs local"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "ws"
        train_churn(root, home, console)
        for rows in args.rows:
            whole, directory = _write_inputs(rows, args.files, root)
            local = _timed(home, whole, root / "local.parquet")
            on_ray = _timed(home, directory, root / "ray.parquet", "--executor", "ray")
            expected = pd.read_parquet(root / "local.parquet")
            got = pd.read_parquet(root / "ray.parquet")
            pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=0)
            for executor, source, seconds in (
                ("local", "1 file", local),
                ("ray", f"{args.files} files", on_ray),
            ):
                table.add_row(
                    f"{rows:,}", executor, source, f"{seconds:.1f}", f"{rows / seconds:,.0f}",
                    f"{local / seconds:.2f}x",
                )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
