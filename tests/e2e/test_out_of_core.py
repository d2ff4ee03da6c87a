"""Data larger than memory: ``mlship data validate`` and ``mlship predict`` read a big CSV in
bounded batches.

A small table is ingested and scored both in memory and in batches (many of them, the batch size
made tiny): the dataset's hash, every check's count, the quarantined rows with their reasons and
the predictions are the same, and a duplicate of a row many batches earlier is still found. Then
a file ten times larger than the memory cap is ingested and scored by the real command in a
subprocess whose resident memory is sampled and which is killed (and the test failed) if it goes
over the cap: the same counts per copy of the table, the same predictions on every copy.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env

SPEC = """\
name: bigchurn
task: classification
sources:
  - name: customers
    path: customers.csv
columns:
  - {name: customer_id, type: string, role: id, nullable: false, checks: [{unique: true}]}
  - {name: age, type: integer, checks: [{min: 18, max: 110}]}
  - {name: tenure_months, type: integer, nullable: false, checks: [{min: 0}]}
  - {name: monthly_charges, type: float, nullable: false, checks: [{min: 0}]}
  - {name: total_charges, type: float, checks: [{max_missing: 0.2, severity: warn}]}
  - name: contract
    type: category
    nullable: false
    checks: [{allowed: [month-to-month, one-year, two-year]}]
  - {name: churned, type: category, role: target, nullable: false, positive: "yes"}
checks:
  duplicates: quarantine
  rules:
    - name: covers_monthly
      expr: "total_charges IS NULL OR total_charges >= monthly_charges * 0.5"
      severity: warn
  max_quarantine: 0.05
models:
  - {name: logistic, estimator: logistic_regression, params: {max_iter: 200}}
split: {holdout: 0.2, folds: 2, seed: 1}
metric: roc_auc
"""

HEADER = b"customer_id,age,tenure_months,monthly_charges,total_charges,contract,churned,notes\n"
CHUNK_ROWS = 10_000
NOTE_CHARS = 1200
"""Each row carries a free-text note the spec does not declare (a support ticket's text), so the
file is large in bytes without taking minutes of per-row work."""
CAP_MB = 128
"""Resident memory allowed over what the same command needs for a small file."""
MARK = b"@@@@@"


def _chunk(seed: int = 3, broken: bool = True) -> bytes:
    """CHUNK_ROWS rows of the table (ids start with MARK, replaced per copy); when ``broken``,
    some values are bad on purpose and a few rows are exact copies of earlier ones."""
    rng = np.random.default_rng(seed)
    n = CHUNK_ROWS
    age = rng.integers(18, 90, n).astype(str).astype(object)
    tenure = rng.integers(0, 72, n)
    monthly = np.round(rng.uniform(10, 120, n), 2)
    spread = rng.uniform(0.9, 1.1, n)
    total = np.round(monthly * np.maximum(tenure, 1) * spread, 2).astype(str).astype(object)
    contract = rng.choice(np.array(["month-to-month", "one-year", "two-year"], dtype=object), n)
    odds = 1 / (1 + np.exp(-(-1.5 + 0.02 * monthly - 0.05 * tenure)))
    churn = np.where(rng.uniform(size=n) < odds, "yes", "no")
    total[rng.uniform(size=n) < 0.05] = ""
    tenure_text = tenure.astype(str).astype(object)
    if broken:
        age[7::997] = "unknown"
        age[11::1499] = "212"
        contract[13::1993] = "??"
        tenure_text[17::2503] = ""
    ids = np.array([f"{MARK.decode()}-{i}" for i in range(n)], dtype=object)
    note = ("the customer called about billing and asked about the invoice " * 30)[:NOTE_CHARS]
    notes = np.full(n, note, dtype=object)
    rows = np.column_stack(
        [ids, age, tenure_text, monthly.astype(str), total, contract, churn, notes]
    )
    if broken:
        rows = np.vstack([rows, rows[5::3001]])  # exact copies of earlier rows
    return ("\n".join(",".join(row) for row in rows) + "\n").encode()


def _write(path: Path, chunk: bytes, copies: int, extra: bytes = b"") -> None:
    """``copies`` of ``chunk``, each with its own ids, then ``extra`` rows."""
    with path.open("wb") as handle:
        handle.write(HEADER)
        for copy in range(copies):
            handle.write(chunk.replace(MARK, b"%05d" % copy))
        handle.write(extra)


@dataclass(frozen=True)
class Project:
    root: Path
    home: Path
    """A workspace with bigchurn:1 trained on a small copy of the table."""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("outofcore")
    (root / "pipeline.yaml").write_text(SPEC)
    _write(root / "customers.csv", _chunk(), 1)
    home = root / "ws"
    invoke_cli("run", str(root / "pipeline.yaml"), home=home)
    return Project(root, home)


def _dataset(home: Path) -> tuple[str, dict[str, object]]:
    workspace = Workspace.open(Settings(home=home))
    try:
        newest = workspace.datasets.list_datasets(limit=1)[0]
        return newest.data_hash, dict(newest.validation or {})
    finally:
        workspace.close()


def _check_counts(validation: dict[str, object]) -> dict[tuple[object, ...], int]:
    checks = validation["checks"]
    assert isinstance(checks, list)
    return {(c["column"], c["check"], c["severity"]): c["failed"] for c in checks}


def _validated_both_ways(spec: Path, root: Path, pipeline: str) -> dict[tuple[object, ...], int]:
    """``mlship data validate`` of ``spec`` read whole (home ``root/memory``) and in batches
    (``root/batches``): the same dataset, rows, counts, declared checks and quarantine. The
    counts by check."""
    invoke_cli("data", "validate", str(spec), home=root / "memory")
    streamed = invoke_cli(
        "data", "validate", str(spec), home=root / "batches", env={"MLSHIP_STREAM_ABOVE": "0"}
    )
    assert "read in batches" in streamed.stdout
    memory_hash, memory = _dataset(root / "memory")
    batch_hash, batches = _dataset(root / "batches")
    assert batch_hash == memory_hash
    assert batches["rows"] == memory["rows"]
    counts = _check_counts(batches)
    assert counts == _check_counts(memory)
    assert batches["declared"] == memory["declared"]

    def quarantined(home: Path) -> pl.DataFrame:
        found = pl.read_parquet(home / "reports" / f"{pipeline}-quarantine.parquet")
        return found.select("_row", "_reasons").sort("_row")

    assert quarantined(root / "batches").equals(quarantined(root / "memory"))
    return counts


def test_batches_give_the_in_memory_dataset_and_quarantine(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlship.data.readers.batched as batched

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(SPEC)
    # Three copies, and copies of rows of the first one at the very end: dozens of batches
    # apart once the batches are 1 MiB.
    first = _chunk().replace(MARK, b"00000").split(b"\n")
    _write(folder / "customers.csv", _chunk(), 3, b"\n".join(first[100:103]) + b"\n")
    monkeypatch.setattr(batched, "STREAM_BLOCK_BYTES", 1024 * 1024)
    counts = _validated_both_ways(folder / "pipeline.yaml", tmp_path, "bigchurn")
    assert counts[(None, "duplicate row", "error")] == 3 * 4 + 3

    # The stored dataset: row groups for streaming, read lazily with the query pushed down, and
    # whole by the existing readers.
    import pyarrow.parquet as pq

    from mlship.data.dataset_files import scan_dataset
    from mlship.data.versioning import load_frame

    workspace = Workspace.open(Settings(home=tmp_path / "batches"))
    try:
        dataset = workspace.datasets.list_datasets(limit=1)[0]
        path = workspace.artifacts.located(dataset.artifact_sha256)  # type: ignore[attr-defined]
        assert pq.ParquetFile(path).metadata.row_group(0).num_rows == dataset.n_rows
        old = scan_dataset(dataset, workspace.artifacts).filter(pl.col("age") > 80)
        found = old.select("customer_id", "age").collect()
        whole = load_frame(dataset.artifact_sha256, workspace.artifacts)
        assert len(whole) == dataset.n_rows
        assert found["customer_id"].to_list() == whole[whole["age"] > 80]["customer_id"].tolist()
    finally:
        workspace.close()
    quarantine = pl.read_parquet(tmp_path / "batches" / "reports" / "bigchurn-quarantine.parquet")
    assert quarantine.filter(pl.col("_row") == "line 30014").height == 1


def test_batches_score_as_in_memory_and_name_a_bad_line(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlship.data.readers.batched as batched

    monkeypatch.setattr(batched, "STREAM_BLOCK_BYTES", 1024 * 1024)
    clean = tmp_path / "clean.csv"
    _write(clean, _chunk(seed=4, broken=False), 2)
    home = project.home
    args = ("predict", "bigchurn", str(clean))
    invoke_cli(*args, "-o", str(tmp_path / "memory.csv"), home=home)
    streamed = invoke_cli(
        *args, "-o", str(tmp_path / "batches.csv"), home=home, env={"MLSHIP_STREAM_ABOVE": "0"}
    )
    assert "Scored 20000 rows" in streamed.stdout
    assert "Prediction log:" in streamed.stdout
    assert (tmp_path / "batches.csv").read_bytes() == (tmp_path / "memory.csv").read_bytes()
    invoke_cli(
        *args, "-o", str(tmp_path / "batches.parquet"), home=home,
        env={"MLSHIP_STREAM_ABOVE": "0"},
    )  # fmt: skip
    in_parquet = pl.read_parquet(tmp_path / "batches.parquet")
    assert in_parquet.equals(pl.read_csv(tmp_path / "memory.csv"))

    lines = clean.read_bytes().split(b"\n")
    fields = lines[15_000].split(b",")
    fields[1] = b"forty"
    lines[15_000] = b",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\n".join(lines))
    failed = invoke_cli(
        "predict", "bigchurn", str(bad), "-o", str(tmp_path / "bad-out.csv"),
        home=home, env={"MLSHIP_STREAM_ABOVE": "0"}, check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    assert "row 15000 (line 15001)" in failed.stdout + failed.stderr
    assert not (tmp_path / "bad-out.csv").exists()


def test_real_measurements_give_the_same_dataset_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data nobody here wrote: scikit-learn's breast-cancer measurements (569 patients, column
    names with spaces), the spec drafted from them by ``mlship init``, one range tightened so that
    real rows fail it, and some patients sent twice. In batches of about 4 KiB (dozens of them)
    the dataset, its counts and its quarantine are those of the file read whole."""
    from sklearn.datasets import load_breast_cancer

    import mlship.data.readers.batched as batched

    bunch = load_breast_cancer(as_frame=True)
    cells = bunch.data.assign(diagnosis=bunch.target.map(dict(enumerate(bunch.target_names))))
    cells = pl.from_pandas(cells)
    pl.concat([cells, cells[::97]]).write_csv(tmp_path / "cells.csv")
    invoke_cli("init", "cells.csv", "--target", "diagnosis", home=tmp_path / "init", cwd=tmp_path)
    spec = tmp_path / "pipeline.yaml"
    drafted = spec.read_text()
    radius = "{name: mean radius, type: float, nullable: false, checks: [{min: 4.86, max: 30.3}]}"
    assert radius in drafted, drafted
    spec.write_text(
        drafted.replace(radius, radius.replace("max: 30.3", "max: 22.0"))
        + "checks: {duplicates: quarantine, max_quarantine: 0.2}\n"
    )
    monkeypatch.setattr(batched, "STREAM_BLOCK_BYTES", 4 * 1024)

    counts = _validated_both_ways(spec, tmp_path, "cells")
    assert counts[(None, "duplicate row", "error")] == len(cells[::97])
    too_big = int((cells["mean radius"] > 22.0).sum())
    assert too_big > 0 and counts[("mean radius", "max", "error")] == too_big + int(
        (cells[::97]["mean radius"] > 22.0).sum()
    )


class _Watchdog:
    """Samples a process's resident memory every 20 ms; kills it when it passes ``cap``."""

    def __init__(self, process: subprocess.Popen[str], cap: int | None) -> None:
        self.process = process
        self.cap = cap
        self.peak = 0
        self.killed = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        status = Path(f"/proc/{self.process.pid}/status")
        while self.process.poll() is None:
            try:
                text = status.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)
            if self.cap is not None and self.peak > self.cap:
                self.killed = True
                self.process.kill()
                return
            time.sleep(0.02)

    def join(self) -> None:
        self._thread.join()


def _run_watched(home: Path, cap: int | None, *args: str, env: dict[str, str]) -> int:
    """Run ``mlship *args`` in a subprocess; its peak resident memory (failing if over ``cap``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlship", *args],
        env=mlship_env(home, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = _Watchdog(process, cap)
    stdout, stderr = process.communicate(timeout=600)
    watchdog.join()
    over = f"over the cap of {cap / 2**20:.0f} MiB" if cap else ""
    assert not watchdog.killed, f"mlship {' '.join(args)} was killed: resident memory {over}"
    assert process.returncode == 0, f"mlship {' '.join(args)} failed:\n{stdout}\n{stderr}"
    return watchdog.peak


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for path in tmp_path.glob("*.csv"):
        path.unlink()


def test_a_file_ten_times_the_memory_cap_is_ingested_and_scored(
    project: Project, scratch: Path
) -> None:
    cap_bytes = CAP_MB * 2**20
    chunk = _chunk()
    copies = -(-10 * cap_bytes // len(chunk))
    env = {"MLSHIP_STREAM_ABOVE": "0"}

    # What the same commands need for a small file: the interpreter, the libraries, a batch.
    small = scratch / "small"
    small.mkdir()
    (small / "pipeline.yaml").write_text(SPEC)
    _write(small / "customers.csv", chunk, 1)
    validate = ("data", "validate")
    base = _run_watched(
        scratch / "ws-small", None, *validate, str(small / "pipeline.yaml"), env=env
    )
    counts_small = _check_counts(_dataset(scratch / "ws-small")[1])

    big = scratch / "big"
    big.mkdir()
    (big / "pipeline.yaml").write_text(SPEC)
    _write(big / "customers.csv", chunk, copies)
    size = (big / "customers.csv").stat().st_size
    assert size >= 10 * cap_bytes
    cap = base + cap_bytes
    peak = _run_watched(scratch / "ws-big", cap, *validate, str(big / "pipeline.yaml"), env=env)
    (big / "customers.csv").unlink()
    validation = _dataset(scratch / "ws-big")[1]
    rows = validation["rows"]
    assert isinstance(rows, dict)
    assert rows["in"] == copies * (CHUNK_ROWS + 4)
    assert _check_counts(validation) == {k: v * copies for k, v in counts_small.items()}
    print(f"ingest: {size >> 20} MiB file, peak {peak >> 20} MiB, small file {base >> 20} MiB")

    clean = _chunk(seed=4, broken=False)
    (scratch / "one.csv").write_bytes(HEADER + clean.replace(MARK, b"00000"))
    one_out, out = scratch / "one-out.csv", scratch / "scored.csv"
    predict = ("predict", "bigchurn", "--no-prediction-log")
    one = (*predict, str(scratch / "one.csv"), "-o", str(one_out))
    base = _run_watched(project.home, None, *one, env=env)
    copies = -(-10 * cap_bytes // len(clean))
    _write(scratch / "score.csv", clean, copies)
    assert (scratch / "score.csv").stat().st_size >= 10 * cap_bytes
    big_one = (*predict, str(scratch / "score.csv"), "-o", str(out))
    peak = _run_watched(project.home, base + cap_bytes, *big_one, env=env)
    print(f"predict: peak {peak >> 20} MiB, small file {base >> 20} MiB")
    expected = pl.read_csv(one_out).with_row_index("at").select("at", "prediction", "proba_yes")
    answers = (
        pl.scan_csv(out)
        .with_row_index("row")
        .select((pl.col("row") % CHUNK_ROWS).alias("at"), "prediction", "proba_yes")
        .join(expected.lazy(), on="at", suffix="_expected")
        .select(
            pl.len().alias("rows"),
            (pl.col("prediction") != pl.col("prediction_expected")).sum().alias("differ"),
            (pl.col("proba_yes") - pl.col("proba_yes_expected")).abs().max().alias("gap"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    assert answers["rows"] == copies * CHUNK_ROWS
    assert answers["differ"] == 0
    assert answers["gap"] < 1e-12
