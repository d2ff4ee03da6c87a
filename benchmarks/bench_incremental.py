"""Incremental ingest against a full one: the rows appended to a CSV file, read from the mark,
versus the whole file read again.

Writes a CSV of ``--rows`` rows, ingests it with ``incremental: {mode: append}`` (the first
ingest reads it all), appends ``--added`` rows and times the incremental ingest, then times a
plain ingest of the same final file in the same workspace. Both must give the same dataset
(same content hash): the script exits with status 1 when they do not.

    python benchmarks/bench_incremental.py [--rows 2000000] [--added 10000]

The increment is parsed, typed and checked alone; what it still pays for in proportion to the
whole dataset is reading the previous version back, hashing and writing the new one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mlship.config import Settings
from mlship.data.ingest import ingest
from mlship.spec import load_spec
from mlship.workspace import Workspace

SPEC = """\
name: NAME
task: classification
sources:
  - {name: rows, path: rows.csv GROWS}
columns:
  - {name: id, type: integer, role: id}
  - {name: amount, type: float, checks: [{min: 0}]}
  - {name: plan, type: category}
  - {name: y, type: category, role: target}
models:
  - {estimator: logistic_regression}
metric: accuracy
"""


def _rows(first: int, last: int) -> str:
    return "".join(
        f"{i},{i * 0.25},{('basic', 'pro', 'team')[i % 3]},{'yes' if i % 7 == 0 else 'no'}\n"
        for i in range(first, last)
    )


def _timed(spec: Path, workspace: Workspace) -> tuple[float, str, int]:
    start = time.perf_counter()
    found = ingest(load_spec(spec), workspace)
    return time.perf_counter() - start, found.dataset.data_hash, found.dataset.n_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--added", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        root = Path(tmp)
        (root / "rows.csv").write_text("id,amount,plan,y\n" + _rows(0, args.rows))
        grows = root / "grows.yaml"
        growing = ", incremental: {mode: append}"
        grows.write_text(SPEC.replace("NAME", "grows").replace(" GROWS", growing))
        whole = root / "whole.yaml"
        whole.write_text(SPEC.replace("NAME", "whole").replace(" GROWS", ""))
        workspace = Workspace.open(Settings(home=root / "ws", user="bench", n_jobs=1))
        try:
            first, _, _ = _timed(grows, workspace)
            with (root / "rows.csv").open("a") as handle:
                handle.write(_rows(args.rows, args.rows + args.added))
            added, grown, n = _timed(grows, workspace)
            full, read_whole, _ = _timed(whole, workspace)
        finally:
            workspace.close()
    print(f"{args.rows:,} rows, then {args.added:,} appended ({n:,} in the dataset)")
    print(f"  first ingest (reads all): {first:8.2f} s")
    print(f"  incremental ingest:       {added:8.2f} s")
    print(f"  full ingest of the file:  {full:8.2f} s")
    same = grown == read_whole
    print(f"  same dataset: {same} ({grown[:12]})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
