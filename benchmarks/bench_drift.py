"""Drift statistics on a large frame: time of ``dataset_drift`` for numeric and string columns.

Generates a deterministic reference and current frame (default 200,000 rows x 50 columns: 40
normal floats, 5 of them shifted in the current frame, and 10 string columns of 30 categories,
one with a changed mix) and reports the best and median time of ``--repeat`` runs.

    python benchmarks/bench_drift.py [--rows 200000] [--current-rows 200000] [--repeat 5]

``--current-rows`` different from ``--rows`` exercises the general Wasserstein merge; equal sizes
take the shortcut over order statistics.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl

from mlship.monitor import dataset_drift

NUMERIC, STRINGS, SHIFTED = 40, 10, 5


def _frame(rows: int, seed: int, drifted: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for i in range(NUMERIC):
        shift = 0.3 if drifted and i < SHIFTED else 0.0
        columns[f"n{i}"] = rng.normal(shift, 1.0, rows)
    categories = np.array([f"c{k}" for k in range(30)])
    for i in range(STRINGS):
        weights = np.linspace(1.0, 3.0 if drifted and i == 0 else 1.0, 30)
        columns[f"s{i}"] = rng.choice(categories, rows, p=weights / weights.sum())
    return pl.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--current-rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    reference = _frame(args.rows, 1, drifted=False)
    current = _frame(args.current_rows or args.rows, 2, drifted=True)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = dataset_drift(reference, current)
        times.append(time.perf_counter() - start)
    print(f"{reference.height:,} x {reference.width} vs {current.height:,} rows")
    print(f"best {min(times):.3f} s, median {statistics.median(times):.3f} s")
    print(f"drifted: {result.drifted_columns} (share {result.share:.2f})")


if __name__ == "__main__":
    main()
