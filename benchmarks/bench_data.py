"""Data validation: mlship (Polars) vs pandera (pandas and Polars backends) vs Great Expectations.

Generates one deterministic table per size (default 1,000,000 rows x 50 columns: floats, integers,
categories, an id and a free-text column, with nulls, out-of-range values and unknown categories),
written a million rows at a time as CSV and as Parquet (row groups of 131,072 rows), then runs
every tool in its own subprocess on the same files with the same checks: declared type,
nullability, min/max and allowed values. Each subprocess reports its read time, its check time and
the peak RSS increase while checking (the peak is reset through /proc/self/clear_refs just before
the checks start), so one tool's memory never counts against another. A tool whose process grows
past three quarters of the memory available at the start is stopped and shown as out of memory.

mlship runs two ways. ``mlship`` reads the file whole, ``pl.read_csv(path, infer_schema=False)``
(text, as ingest reads it) or ``pl.read_parquet``, then checks: ``type_columns`` (types and
nullability) followed by ``validate`` (ranges and allowed values). ``mlship-batches`` is the
out-of-core path ingest takes for a file above ``stream_above``: the file read in bounded batches
by ``mlship.data.readers.batched`` (4 MiB blocks of the CSV, 131,072-row batches of the Parquet
file), each typed and validated, the failures summed; its read column is the time spent waiting
for batches and its peak covers reading too. ``validate`` decides which rows are quarantined and
builds the quarantine with its reasons; the clean table is built on first use (by ingest, when it
stores the dataset), so, as with pandera, no filtered copy of the data is part of the check time.
pandas reads the CSV with its declared dtypes (pyarrow engine), so parsing the text is part of
pandas' read time but part of mlship's check time: the Parquet rows, where both sides start from
typed data, are the like-for-like comparison of checking.

The tools must agree: the number of failing rows and the failure count of every check are compared
with mlship's, and the script exits with status 1 when they differ. After the per-size tables, a
summary gives each tool's throughput and peak at every size, and the goals: at every size,
mlship's out-of-core check of the Parquet file at least 10x pandera's pandas backend and 2x its
Polars backend, and its peak at the largest size within 1.5x of the smallest's.

    python benchmarks/bench_data.py [--rows 1000000 20000000] [--cols 50] [--with-ge] [--repeat 3]

Sizes above 2,000,000 rows are read and checked once per tool. Linux only: memory is read from
/proc.

``--with-ge`` also times the same expectations with Great Expectations on the CSV. It runs in its
own virtualenv under the system temporary directory (created on first use and reused after; never
the project's environment); if it cannot be installed or fails, its row says why.
``--repeat N`` reads and checks N times in each process and reports the medians (the first
round in a fresh process is slower: imports, page faults).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

Kind = Literal["float", "integer", "category", "string"]

SEED = 20_240_611
CSV_NAME = "table.csv"
PARQUET_NAME = "table.parquet"
PLAN_NAME = "plan.json"
GE_VENV = Path(tempfile.gettempdir()) / "mlship-bench-ge-venv"

_VOCABULARIES: list[list[str]] = [
    ["basic", "standard", "premium", "enterprise"],
    ["web", "store", "phone", "partner", "email"],
    ["north", "south", "east", "west", "central"],
    ["desktop", "mobile", "tablet"],
    ["card", "bank-transfer", "paypal", "invoice", "voucher", "cash"],
    ["active", "paused", "cancelled", "trial"],
    ["red", "green", "blue", "black", "white", "silver", "gold"],
    ["xs", "s", "m", "l", "xl", "xxl"],
]
_WORDS = [
    *("late", "delivery", "refund", "asked", "again", "happy", "with", "service", "price"),
    *("too", "high", "called", "support", "twice", "wants", "upgrade", "moved", "house"),
    *("new", "card", "discount", "applied", "missing", "item", "slow", "app", "great", "staff"),
]


@dataclass(frozen=True)
class Spec:
    """One generated column and its checks (identical for every tool)."""

    name: str
    kind: Kind
    nullable: bool
    null_rate: float
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    role: Literal["feature", "id"] = "feature"

    @property
    def bounds(self) -> str | None:
        """Key of the range check: ``range`` (both bounds), ``min``, ``max`` or none."""
        if self.min is not None and self.max is not None:
            return "range"
        if self.min is not None:
            return "min"
        if self.max is not None:
            return "max"
        return None


# -- the data ---------------------------------------------------------------------------------


def plan(cols: int) -> list[Spec]:
    """The columns for ``cols``: 2 text columns, then floats, integers and categories 30:10:8."""
    rng = np.random.default_rng(SEED + cols)
    rest = cols - 2
    n_cat = round(rest * 8 / 48)
    n_int = round(rest * 10 / 48)
    n_float = rest - n_cat - n_int
    specs = [
        Spec("customer_id", "string", nullable=False, null_rate=0.0, role="id"),
        Spec("note", "string", nullable=True, null_rate=0.02),
    ]
    for i in range(n_float):
        scale = float(10 ** rng.integers(0, 5))
        low = -scale if i % 3 == 0 else 0.0
        nullable = i % 7 != 0
        rate = float(rng.uniform(0.01, 0.02)) if nullable else 2e-5
        checked = i % 6 != 5
        specs.append(
            Spec(
                f"f{i:02d}",
                "float",
                nullable,
                rate,
                min=low if checked else None,
                max=scale if checked and i % 6 != 4 else None,
            )
        )
    for i in range(n_int):
        top = int(10 ** rng.integers(1, 6))
        nullable = i % 4 != 0
        rate = float(rng.uniform(0.01, 0.02)) if nullable else 2e-5
        checked = i % 5 != 4
        specs.append(
            Spec(
                f"i{i:02d}",
                "integer",
                nullable,
                rate,
                min=0 if checked else None,
                max=top if checked and i % 5 != 3 else None,
            )
        )
    for i in range(n_cat):
        nullable = i % 3 != 0
        rate = float(rng.uniform(0.01, 0.02)) if nullable else 2e-5
        levels = tuple(_VOCABULARIES[i % len(_VOCABULARIES)])
        specs.append(Spec(f"c{i:02d}", "category", nullable, rate, allowed=levels))
    return specs


def _positions(rng: np.random.Generator, rows: int, rate: float) -> np.ndarray:
    count = int(rng.binomial(rows, rate)) if rate > 0 else 0
    return np.sort(rng.choice(rows, size=count, replace=False))


def _column(spec: Spec, rows: int, rng: np.random.Generator, first: int = 1) -> pl.Series:
    bad_rate = 3e-5
    if spec.role == "id":
        ids = pl.select(
            pl.format("C{}", pl.int_range(first, first + rows).cast(pl.String).str.zfill(9))
        ).to_series()
        return ids.alias(spec.name)
    if spec.kind == "string":
        phrases = np.array(
            [" ".join(rng.choice(_WORDS, size=rng.integers(2, 7))) for _ in range(500)]
        )
        series = pl.Series(spec.name, phrases[rng.integers(0, len(phrases), rows)])
    elif spec.kind == "category":
        assert spec.allowed is not None
        levels = np.array(spec.allowed)
        weights = rng.dirichlet(np.full(len(levels), 2.0))
        values = levels[rng.choice(len(levels), size=rows, p=weights)].astype(object)
        bad = _positions(rng, rows, bad_rate)
        typos = np.array(["unknown", "N/A", levels[0].upper(), f"{levels[-1]} "], dtype=object)
        values[bad] = typos[rng.integers(0, len(typos), len(bad))]
        series = pl.Series(spec.name, values, dtype=pl.String)
    else:
        low = spec.min if spec.min is not None else 0.0
        high = spec.max if spec.max is not None else 10 ** float(rng.integers(1, 5))
        if spec.kind == "float":
            numbers = np.clip(rng.normal((low + high) / 2, (high - low) / 6, rows), low, high)
            numbers = np.round(numbers, 4 if high - low <= 10 else 2)
        else:
            numbers = rng.integers(int(low), int(high) + 1, rows).astype(np.float64)
        span = max(high - low, 1.0)
        if spec.min is not None:
            below = _positions(rng, rows, bad_rate)
            numbers[below] = low - np.ceil(rng.uniform(0.01, 0.5, len(below)) * span)
        if spec.max is not None:
            above = _positions(rng, rows, bad_rate)
            numbers[above] = high + np.ceil(rng.uniform(0.01, 0.5, len(above)) * span)
        series = pl.Series(spec.name, numbers)
        if spec.kind == "integer":
            series = series.cast(pl.Int64)
    nulls = _positions(rng, rows, spec.null_rate)
    return series.scatter(nulls, None) if len(nulls) else series


def generate(specs: list[Spec], rows: int, first: int = 1, seed: Any = SEED) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame([_column(spec, rows, rng, first) for spec in specs])


def write_data(specs: list[Spec], rows: int, data: Path, chunk_rows: int = 1_000_000) -> int:
    """The table written as CSV and Parquet a chunk of rows at a time (so that 20 million rows
    never sit in this process at once); returns its size in Arrow memory."""
    import pyarrow.parquet as pq

    arrow_bytes = 0
    writer: pq.ParquetWriter | None = None
    with (data / CSV_NAME).open("wb") as csv:
        for chunk, start in enumerate(range(0, rows, chunk_rows)):
            n = min(chunk_rows, rows - start)
            frame = generate(specs, n, first=start + 1, seed=[SEED, chunk])
            arrow_bytes += int(frame.estimated_size())
            frame.write_csv(csv, include_header=chunk == 0)
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(data / PARQUET_NAME, table.schema)
            writer.write_table(table, row_group_size=131_072)
    if writer is not None:
        writer.close()
    return arrow_bytes


def write_plan(specs: list[Spec], path: Path) -> None:
    path.write_text(json.dumps([asdict(s) for s in specs]))


def read_plan(path: Path) -> list[Spec]:
    specs = []
    for item in json.loads(path.read_text()):
        allowed = item.pop("allowed")
        specs.append(Spec(**item, allowed=tuple(allowed) if allowed is not None else None))
    return specs


# -- measuring inside a worker -----------------------------------------------------------------


def _status(field: str, pid: int | str = "self") -> int:
    """A size field (VmRSS, VmHWM) of a process's status, in bytes; 0 once it has exited."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def _start_peak() -> int:
    """Reset the peak RSS of this process and return the current RSS."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _peak_since(start: int) -> int:
    return max(0, _status("VmHWM") - start)


@dataclass
class Outcome:
    """What one worker measured."""

    tool: str
    source: str
    read_s: float = 0.0
    type_s: float | None = None
    validate_s: float = 0.0
    peak_bytes: int = 0
    failing_rows: int | None = None
    per_check: dict[str, int] | None = None
    error: str | None = None
    note: str | None = None

    @property
    def checks_s(self) -> float:
        return (self.type_s or 0.0) + self.validate_s

    @property
    def total_s(self) -> float:
        return self.read_s + self.checks_s


Stages = dict[str, float]


def _measure(
    outcome: Outcome,
    repeat: int,
    read: Callable[[], Any],
    check: Callable[[list[Any], Stages], Any],
) -> Any:
    """Read and check ``repeat`` times; keep median times, the largest peak, the last result.

    ``check`` receives the frame in a one-element list it may empty, so that a tool which
    replaces its raw frame (mlship's typing does) can let it go as ingest does.
    """
    reads: list[float] = []
    stages: list[Stages] = []
    peaks: list[int] = []
    result = None
    for _ in range(repeat):
        result = None
        started = time.perf_counter()
        holder = [read()]
        reads.append(time.perf_counter() - started)
        baseline = _start_peak()
        timings: Stages = {}
        result = check(holder, timings)
        peaks.append(_peak_since(baseline))
        stages.append(timings)
        holder.clear()
    outcome.read_s = statistics.median(reads)
    if "type" in stages[0]:
        outcome.type_s = statistics.median(t["type"] for t in stages)
    outcome.validate_s = statistics.median(t["validate"] for t in stages)
    outcome.peak_bytes = max(peaks)
    return result


# -- mlship -----------------------------------------------------------------------------------


def _mlship_checks(specs: list[Spec]) -> tuple[list[Any], list[Any], Any]:
    """The benchmark's checks as mlship columns, the typing plan and the table checks."""
    from mlship.data.typing import TypedColumn
    from mlship.spec.data import Column, ColumnCheck, TableChecks

    columns = []
    for spec in specs:
        checks = []
        if spec.min is not None or spec.max is not None:
            checks.append(ColumnCheck(min=spec.min, max=spec.max))
        if spec.allowed is not None:
            checks.append(ColumnCheck(allowed=list(spec.allowed)))
        columns.append(
            Column(
                name=spec.name,
                type=spec.kind,
                role=spec.role,
                nullable=spec.nullable,
                checks=checks,
            )
        )
    typed = [TypedColumn(c.name, c.type, c.nullable) for c in columns]
    return columns, typed, TableChecks(duplicates="allow", max_quarantine=1.0)


def _count_failures(specs: list[Spec], validation: Any, found: Counter[str]) -> None:
    for result in validation.results:
        if result.column is None:
            continue
        spec = next(s for s in specs if s.name == result.column)
        if result.check in ("min", "max"):
            found[f"{result.column}:{spec.bounds}"] += result.failed
        else:
            found[f"{result.column}:{result.check}"] += result.failed


def run_mlship(specs: list[Spec], data: Path, source: str, repeat: int) -> Outcome:
    from mlship.data.checks import Validation, validate
    from mlship.data.typing import type_columns

    columns, typed, table = _mlship_checks(specs)

    def read() -> pl.DataFrame:
        if source == "csv":
            return pl.read_csv(data / CSV_NAME, infer_schema=False)
        return pl.read_parquet(data / PARQUET_NAME)

    def check(holder: list[pl.DataFrame], timings: Stages) -> Validation:
        started = time.perf_counter()
        frame = type_columns(holder.pop(), typed)
        timings["type"] = time.perf_counter() - started
        started = time.perf_counter()
        validation = validate(frame, columns, table)
        timings["validate"] = time.perf_counter() - started
        return validation

    outcome = Outcome("mlship", source)
    validation: Validation = _measure(outcome, repeat, read, check)
    found: Counter[str] = Counter()
    _count_failures(specs, validation, found)
    outcome.failing_rows = validation.quarantine.height
    outcome.per_check = dict(found)
    return outcome


def run_mlship_batches(specs: list[Spec], data: Path, source: str, repeat: int) -> Outcome:
    """mlship out of core: the file read in the bounded batches ingest streams a large file in
    (``mlship.data.readers.batched``: 4 MiB blocks of a CSV, 131,072-row batches of a Parquet
    file), each batch typed and validated, the failures summed. Reading is part of the loop, so
    the peak covers it; the read column is the time spent waiting for batches."""
    import pyarrow.parquet  # noqa: F401 - imported by the reader; not part of the measurement

    from mlship.data.checks import validate
    from mlship.data.readers import file_reader_for
    from mlship.data.readers.batched import BatchTally, file_batches
    from mlship.data.typing import type_columns
    from mlship.spec.data import Source

    columns, typed, table = _mlship_checks(specs)
    name = CSV_NAME if source == "csv" else PARQUET_NAME
    reader = file_reader_for(Source(name="table", path=str(data / name)), data)
    outcome = Outcome("mlship-batches", source)
    rounds: list[Stages] = []
    peaks: list[int] = []
    found: Counter[str] = Counter()
    failing = 0
    for _ in range(repeat):
        found, failing = Counter(), 0
        timings: Stages = {"read": 0.0, "type": 0.0, "validate": 0.0}
        baseline = _start_peak()
        batches = file_batches(reader, "-", BatchTally())
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            timings["read"] += time.perf_counter() - started
            if batch is None:
                break
            started = time.perf_counter()
            frame = type_columns(batch.frame, typed)
            timings["type"] += time.perf_counter() - started
            started = time.perf_counter()
            validation = validate(frame, columns, table)
            timings["validate"] += time.perf_counter() - started
            _count_failures(specs, validation, found)
            failing += validation.quarantine.height
            del batch, frame, validation
        peaks.append(_peak_since(baseline))
        rounds.append(timings)
    outcome.read_s = statistics.median(t["read"] for t in rounds)
    outcome.type_s = statistics.median(t["type"] for t in rounds)
    outcome.validate_s = statistics.median(t["validate"] for t in rounds)
    outcome.peak_bytes = max(peaks)
    outcome.failing_rows = failing
    outcome.per_check = dict(found)
    return outcome


# -- pandera ----------------------------------------------------------------------------------


def _pandera_kind(check: str) -> str:
    for prefix, kind in (
        ("not_nullable", "nullable"),
        ("in_range", "range"),
        ("greater_than_or_equal_to", "min"),
        ("less_than_or_equal_to", "max"),
        ("isin", "allowed"),
    ):
        if check.startswith(prefix):
            return kind
    return check


def _pandera_counts(rows: list[tuple[Any, Any, Any]]) -> tuple[dict[str, int], int]:
    """Per-check failure counts and failing rows from (column, check, index) triples."""
    found: Counter[str] = Counter()
    failing = set()
    for column, check, index in rows:
        found[f"{column}:{_pandera_kind(str(check))}"] += 1
        if index is not None and index == index:  # NaN index: a schema-level failure
            failing.add(int(index))
    return dict(found), len(failing)


def _pandera_checks(spec: Spec, check: Any) -> list[Any]:
    checks = []
    if spec.bounds == "range":
        checks.append(check.in_range(spec.min, spec.max))
    elif spec.bounds == "min":
        checks.append(check.ge(spec.min))
    elif spec.bounds == "max":
        checks.append(check.le(spec.max))
    if spec.allowed is not None:
        checks.append(check.isin(list(spec.allowed)))
    return checks


def run_pandera_pandas(specs: list[Spec], data: Path, source: str, repeat: int) -> Outcome:
    import pandas as pd
    import pandera.pandas as pa
    import pyarrow as arrow
    import pyarrow.parquet as parquet

    dtypes = {"float": "float64", "integer": "Int64", "category": "str", "string": "str"}
    schema = pa.DataFrameSchema(
        {
            s.name: pa.Column(dtypes[s.kind], _pandera_checks(s, pa.Check), nullable=s.nullable)
            for s in specs
        }
    )

    def read() -> pd.DataFrame:
        if source == "csv":
            # Only an empty cell is missing, as for Polars: pandas' default NA strings ("N/A",
            # "null", ...) would turn a bad category into a missing value.
            return pd.read_csv(
                data / CSV_NAME,
                dtype={s.name: dtypes[s.kind] for s in specs},
                engine="pyarrow",
                keep_default_na=False,
                na_values=[""],
            )
        # pd.read_parquet cannot take a types_mapper here, so convert through pyarrow directly:
        # integer columns with nulls become Int64 instead of float64.
        nullable_ints = {arrow.int64(): pd.Int64Dtype()}
        frame: pd.DataFrame = parquet.read_table(data / PARQUET_NAME).to_pandas(
            types_mapper=nullable_ints.get
        )
        return frame

    def check(holder: list[pd.DataFrame], timings: Stages) -> pd.DataFrame:
        started = time.perf_counter()
        try:
            schema.validate(holder[0], lazy=True)
            cases = pd.DataFrame({"column": [], "check": [], "index": []})
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases
        timings["validate"] = time.perf_counter() - started
        return cases

    outcome = Outcome("pandera-pandas", source)
    cases = _measure(outcome, repeat, read, check)
    triples = zip(cases["column"], cases["check"], cases["index"], strict=True)
    outcome.per_check, outcome.failing_rows = _pandera_counts(list(triples))
    return outcome


def run_pandera_polars(specs: list[Spec], data: Path, source: str, repeat: int) -> Outcome:
    import pandera.polars as pa

    dtypes: dict[str, type[pl.DataType]] = {
        "float": pl.Float64,
        "integer": pl.Int64,
        "category": pl.String,
        "string": pl.String,
    }
    schema = pa.DataFrameSchema(
        {
            s.name: pa.Column(dtypes[s.kind], _pandera_checks(s, pa.Check), nullable=s.nullable)
            for s in specs
        }
    )

    def read() -> pl.DataFrame:
        if source == "csv":
            return pl.read_csv(data / CSV_NAME, schema={s.name: dtypes[s.kind] for s in specs})
        return pl.read_parquet(data / PARQUET_NAME)

    def check(holder: list[pl.DataFrame], timings: Stages) -> pl.DataFrame:
        started = time.perf_counter()
        try:
            schema.validate(holder[0], lazy=True)
            cases = pl.DataFrame({"column": [], "check": [], "index": []})
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases
        timings["validate"] = time.perf_counter() - started
        return cases

    outcome = Outcome("pandera-polars", source)
    cases = _measure(outcome, repeat, read, check)
    outcome.per_check, outcome.failing_rows = _pandera_counts(
        cases.select("column", "check", "index").rows()
    )
    return outcome


# -- Great Expectations (its own virtualenv) ---------------------------------------------------

_GE_SCRIPT = """
import json, statistics, sys, time
from pathlib import Path

import pandas as pd
import great_expectations as gx
import great_expectations.expectations as gxe


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


data, repeat = Path(sys.argv[1]), int(sys.argv[2])
plan = json.loads((data / "plan.json").read_text())
dtypes = {"float": "float64", "integer": "Int64", "category": "string", "string": "string"}

context = gx.get_context(mode="ephemeral")
asset = context.data_sources.add_pandas("bench").add_dataframe_asset("table")
batch_definition = asset.add_batch_definition_whole_dataframe("all")
suite = gx.ExpectationSuite(name="checks")
for c in plan:
    name = c["name"]
    if not c["nullable"]:
        suite.add_expectation(
            gxe.ExpectColumnValuesToNotBeNull(column=name, meta={"key": name + ":nullable"})
        )
    if c["min"] is not None or c["max"] is not None:
        bound = "range" if c["min"] is not None and c["max"] is not None else (
            "min" if c["min"] is not None else "max"
        )
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=c["min"], max_value=c["max"],
                meta={"key": name + ":" + bound},
            )
        )
    if c["allowed"] is not None:
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeInSet(
                column=name, value_set=c["allowed"], meta={"key": name + ":allowed"}
            )
        )
suite = context.suites.add(suite)

reads, validates, peaks = [], [], []
for _ in range(repeat):
    frame = result = None
    started = time.perf_counter()
    frame = pd.read_csv(
        data / "table.csv", dtype={c["name"]: dtypes[c["kind"]] for c in plan},
        keep_default_na=False, na_values=[""],
    )
    reads.append(time.perf_counter() - started)
    Path("/proc/self/clear_refs").write_text("5")
    baseline = status("VmRSS")
    started = time.perf_counter()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format="BASIC")
    validates.append(time.perf_counter() - started)
    peaks.append(max(0, status("VmHWM") - baseline))

per_check = {}
for item in result.results:
    if item.exception_info and item.exception_info.get("raised_exception"):
        raise RuntimeError(item.exception_info.get("exception_message"))
    count = item.result.get("unexpected_count") or 0
    if count:
        per_check[item.expectation_config.meta["key"]] = int(count)
print(json.dumps({
    "read_s": statistics.median(reads), "validate_s": statistics.median(validates),
    "peak_bytes": max(peaks), "per_check": per_check, "version": gx.__version__,
}))
"""


def _ge_python(console: Console) -> tuple[Path | None, str]:
    """The Python of a throwaway virtualenv with Great Expectations, or None and the reason."""
    python = GE_VENV / "bin" / "python"
    probe = [
        str(python),
        "-c",
        "import great_expectations, sys; print(great_expectations.__version__)",
    ]
    if python.exists() and subprocess.run(probe, check=False, capture_output=True).returncode == 0:
        return python, "reused"
    with console.status(f"Installing great_expectations into {GE_VENV} (separate virtualenv)"):
        try:
            venv.create(GE_VENV, with_pip=True, clear=True)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "great_expectations"],
                check=False,
                capture_output=True,
                text=True,
                timeout=1800,
            )
        except (OSError, subprocess.SubprocessError) as error:
            return None, f"virtualenv/pip failed: {error}"
    if installed.returncode != 0:
        lines = [line for line in installed.stderr.splitlines() if line.strip()]
        return None, f"pip install great_expectations failed: {lines[-1] if lines else '?'}"
    return python, "installed"


def run_ge(data: Path, repeat: int, console: Console, cap: int) -> Outcome:
    outcome = Outcome("great-expectations", "csv")
    python, how = _ge_python(console)
    if python is None:
        outcome.error = how
        return outcome
    script = data / "ge_checks.py"
    script.write_text(_GE_SCRIPT)
    with console.status("Great Expectations: reading and validating"):
        done = run_capped([str(python), str(script), str(data), str(repeat)], cap)
    if done.stopped is not None:
        outcome.error = done.stopped
        return outcome
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        outcome.error = f"failed: {lines[-1] if lines else f'exit {done.returncode}'}"
        return outcome
    report = json.loads(done.stdout.strip().splitlines()[-1])
    outcome.read_s = report["read_s"]
    outcome.validate_s = report["validate_s"]
    outcome.peak_bytes = report["peak_bytes"]
    outcome.per_check = report["per_check"]
    outcome.note = f"great_expectations {report['version']} ({how}); reads with pandas C engine"
    return outcome


# -- orchestration ----------------------------------------------------------------------------

WORKERS: dict[str, Callable[[list[Spec], Path, str, int], Outcome]] = {
    "mlship": run_mlship,
    "mlship-batches": run_mlship_batches,
    "pandera-pandas": run_pandera_pandas,
    "pandera-polars": run_pandera_polars,
}


@dataclass
class Finished:
    """How a capped subprocess ended (``stopped`` when it outgrew its memory cap)."""

    returncode: int
    stdout: str
    stderr: str
    stopped: str | None = None


def run_capped(command: list[str], cap_bytes: int) -> Finished:
    """Run ``command``, killing it once its resident memory passes ``cap_bytes``: a tool that
    cannot hold the table would otherwise take the machine down with it (and every other row of
    the table) instead of showing as "out of memory"."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        stopped = None
        while process.poll() is None:
            rss = _status("VmRSS", process.pid)
            if rss > cap_bytes:
                process.kill()
                process.wait()
                stopped = (
                    f"out of memory: stopped at {rss / 2**30:.1f} GiB "
                    f"(cap {cap_bytes / 2**30:.1f} GiB)"
                )
                break
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        return Finished(process.returncode, out.read(), err.read(), stopped)


def memory_cap() -> int:
    """Three quarters of the memory available when the benchmark starts."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024 * 3 // 4
    return 8 * 2**30


def worker_main(name: str, source: str, data: Path, repeat: int) -> None:
    specs = read_plan(data / PLAN_NAME)
    outcome = WORKERS[name](specs, data, source, repeat)
    print(json.dumps(asdict(outcome)))


def run_worker(
    name: str, source: str, data: Path, repeat: int, console: Console, cap: int
) -> Outcome:
    label = f"{name} ({source})"
    with console.status(f"{label}: reading and checking in a fresh process"):
        done = run_capped(
            [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--source",
                source,
                "--data",
                str(data),
                "--repeat",
                str(repeat),
            ],
            cap,
        )
    if done.stopped is not None:
        console.log(f"{label}: {done.stopped}")
        return Outcome(name, source, error=done.stopped)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return Outcome(name, source, error=lines[-1] if lines else f"exit {done.returncode}")
    outcome = Outcome(**json.loads(done.stdout.strip().splitlines()[-1]))
    console.log(
        f"{label}: read {outcome.read_s:.2f} s, checks {outcome.checks_s:.2f} s, "
        f"peak +{outcome.peak_bytes / 2**20:,.0f} MiB, failing rows {outcome.failing_rows}"
    )
    return outcome


def _pandera_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pandera")
    except PackageNotFoundError:
        return "not installed"


def compare(reference: Outcome, other: Outcome) -> list[str]:
    """Differences between two tools' failure counts (empty when they agree)."""
    problems = []
    if other.failing_rows is not None and other.failing_rows != reference.failing_rows:
        problems.append(
            f"failing rows: {reference.tool} {reference.failing_rows}, "
            f"{other.tool} {other.failing_rows}"
        )
    mine, theirs = reference.per_check or {}, other.per_check or {}
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, 0) != theirs.get(key, 0):
            problems.append(
                f"{key}: {reference.tool} {mine.get(key, 0)}, {other.tool} {theirs.get(key, 0)}"
            )
    return problems


def render(outcomes: list[Outcome], rows: int, cols: int, arrow_bytes: int) -> Table:
    mlship = {o.source: o for o in outcomes if o.tool == "mlship" and o.error is None}
    table = Table(
        title=f"Checking {rows:,} rows x {cols} columns, same checks "
        f"(Arrow size {arrow_bytes / 2**20:,.0f} MiB, {os.cpu_count()} cores)",
        caption="checks = type + validate (mlship); read includes parsing to dtypes (pandas, "
        "pandera/polars); peak = peak RSS increase while checking; vs mlship = time / mlship's "
        "time on the same source",
    )
    headers = [
        "tool",
        "source",
        "read s",
        "type s",
        "validate s",
        "checks s",
        "checks rows/s",
        "read+checks s",
        "peak MiB",
        "x Arrow",
        "checks vs mlship",
        "total vs mlship",
        "failing rows",
    ]
    for header in headers:
        text = header in ("tool", "source")
        table.add_column(header, justify="left" if text else "right", no_wrap=text)
    for o in outcomes:
        if o.error is not None:
            table.add_row(o.tool, o.source, "[red]not run[/red]", *["-"] * 10)
            continue
        base = mlship.get(o.source)
        table.add_row(
            o.tool,
            o.source,
            f"{o.read_s:.2f}",
            f"{o.type_s:.2f}" if o.type_s is not None else "-",
            f"{o.validate_s:.2f}",
            f"{o.checks_s:.2f}",
            f"{rows / o.checks_s:,.0f}",
            f"{o.total_s:.2f}",
            f"{o.peak_bytes / 2**20:,.0f}",
            f"{o.peak_bytes / arrow_bytes:.2f}x",
            f"{o.checks_s / base.checks_s:.2f}x" if base else "-",
            f"{o.total_s / base.total_s:.2f}x" if base else "-",
            f"{o.failing_rows:,}" if o.failing_rows is not None else "n/a",
        )
    return table


TOOLS = ("mlship", "mlship-batches", "pandera-pandas", "pandera-polars")
REPEAT_ABOVE = 2_000_000
"""Sizes above this many rows are read and checked once per tool, not ``--repeat`` times."""


def run_size(
    rows: int, cols: int, repeat: int, with_ge: bool, console: Console, cap: int
) -> tuple[list[Outcome], bool]:
    """Every tool on one generated table; the outcomes and whether a pair of tools disagreed on
    what fails."""
    if rows > REPEAT_ABOVE:
        repeat = 1
    with tempfile.TemporaryDirectory(prefix="mlship-bench-data-") as tmp:
        data = Path(tmp)
        specs = plan(cols)
        write_plan(specs, data / PLAN_NAME)
        with console.status(f"Generating {rows:,} rows x {cols} columns"):
            started = time.perf_counter()
            arrow_bytes = write_data(specs, rows, data)
        console.log(
            f"Data written in {time.perf_counter() - started:.1f} s: "
            f"CSV {(data / CSV_NAME).stat().st_size / 2**20:,.0f} MiB, "
            f"Parquet {(data / PARQUET_NAME).stat().st_size / 2**20:,.0f} MiB, "
            f"Arrow in memory {arrow_bytes / 2**20:,.0f} MiB; pandera {_pandera_version()}"
        )
        outcomes = [
            run_worker(name, source, data, repeat, console, cap)
            for name in TOOLS
            for source in ("csv", "parquet")
        ]
        if with_ge:
            outcomes.append(run_ge(data, repeat, console, cap))
        else:
            outcomes.append(Outcome("great-expectations", "csv", error="skipped (--with-ge)"))

    console.print(render(outcomes, rows, cols, arrow_bytes))
    for o in outcomes:
        if o.error:
            console.print(f"{o.tool} ({o.source}) not run: {o.error}")
        if o.note:
            console.print(f"note: {o.note}")
    return outcomes, not _agree(outcomes, console)


def _agree(outcomes: list[Outcome], console: Console) -> bool:
    """Whether every tool found the failures mlship's first run found."""
    agreed = True
    done = [o for o in outcomes if not o.error]
    reference = next((o for o in done if o.tool.startswith("mlship")), None)
    for o in done:
        if reference is None or o is reference:
            continue
        problems = compare(reference, o)
        pair = f"{o.tool} ({o.source}) and {reference.tool} ({reference.source})"
        if not problems:
            console.print(f"[green]agree[/green]: {pair}")
        elif o.tool.startswith(("pandera", "mlship")):
            agreed = False
            console.print(f"[red]DISAGREE[/red]: {pair}")
        else:
            console.print(f"[yellow]differs[/yellow]: {pair}")
        for problem in problems[:10]:
            console.print(f"  {problem}")
    return agreed


def summary(results: dict[int, list[Outcome]]) -> Table:
    """Per tool and source: rows checked per second and the peak at each size, and how the
    peak grew from the smallest size to the largest."""
    sizes = sorted(results)
    table = Table(
        title="Across sizes: check throughput (rows/s) and peak RSS increase while checking",
        caption="growth = peak at the largest size / peak at the smallest",
    )
    table.add_column("tool", no_wrap=True)
    table.add_column("source")
    for rows in sizes:
        table.add_column(f"{rows:,} rows/s", justify="right")
        table.add_column(f"{rows:,} peak MiB", justify="right")
    table.add_column("peak growth", justify="right")
    keys = [(o.tool, o.source) for o in results[sizes[0]]]
    for tool, source in keys:
        cells: list[str] = []
        peaks: list[int | None] = []
        for rows in sizes:
            found = next((o for o in results[rows] if (o.tool, o.source) == (tool, source)), None)
            if found is None or found.error:
                cells += ["[red]out of memory[/red]" if found and "memory" in (found.error or "")
                          else "-", "-"]  # fmt: skip
                peaks.append(None)
                continue
            cells += [f"{rows / found.checks_s:,.0f}", f"{found.peak_bytes / 2**20:,.0f}"]
            peaks.append(found.peak_bytes)
        growth = (
            f"{peaks[-1] / peaks[0]:.2f}x"
            if len(peaks) > 1 and peaks[0] and peaks[-1] is not None
            else "-"
        )
        table.add_row(tool, source, *cells, growth)
    return table


def goals(results: dict[int, list[Outcome]]) -> list[str]:
    """The goals, met or missed: at every size, mlship's out-of-core check of the Parquet file at
    least 10x pandera's pandas backend and 2x its Polars backend on the same checks (a tool that
    ran out of memory counts as beaten); its peak at the largest size within 1.5x of the
    smallest's."""

    def find(rows: int, tool: str) -> Outcome | None:
        return next((o for o in results[rows] if o.tool == tool and o.source == "parquet"), None)

    lines = []
    for rows in sorted(results):
        ours = find(rows, "mlship-batches")
        if ours is None or ours.error:
            lines.append(f"[red]{rows:,} rows: mlship-batches did not run[/red]")
            continue
        for tool, target in (("pandera-pandas", 10.0), ("pandera-polars", 2.0)):
            theirs = find(rows, tool)
            if theirs is None or theirs.error:
                why = theirs.error if theirs else "not run"
                lines.append(f"{rows:,} rows vs {tool}: it did not finish ({why})")
                continue
            ratio = theirs.checks_s / ours.checks_s
            mark = "[green]met[/green]" if ratio >= target else "[red]missed[/red]"
            lines.append(f"{rows:,} rows vs {tool}: {ratio:.2f}x faster (goal {target:g}x: {mark})")
    sizes = sorted(results)
    if len(sizes) > 1:
        small, large = find(sizes[0], "mlship-batches"), find(sizes[-1], "mlship-batches")
        if small and large and not small.error and not large.error and small.peak_bytes:
            growth = large.peak_bytes / small.peak_bytes
            mark = "[green]met[/green]" if growth <= 1.5 else "[red]missed[/red]"
            lines.append(
                f"mlship-batches peak at {sizes[-1]:,} rows / at {sizes[0]:,}: "
                f"{growth:.2f}x (goal <= 1.5x: {mark})"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--with-ge", action="store_true", help="also time Great Expectations")
    parser.add_argument(
        "--repeat", type=int, default=3, help="read and check N times, report the medians"
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--source", choices=["csv", "parquet"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.source, args.data, args.repeat)
        return
    if args.cols < 5:
        parser.error("--cols must be at least 5")
    if min(args.rows) < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    if not Path("/proc/self/clear_refs").exists():
        parser.error("memory is measured through /proc/self (Linux only)")
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 170))
    cap = memory_cap()
    console.log(f"Each tool runs in its own process, stopped above {cap / 2**30:.1f} GiB")

    results: dict[int, list[Outcome]] = {}
    failed = False
    for rows in sorted(set(args.rows)):
        outcomes, disagreed = run_size(rows, args.cols, args.repeat, args.with_ge, console, cap)
        results[rows] = outcomes
        failed |= disagreed
        if not {"mlship", "mlship-batches"} & {o.tool for o in outcomes if not o.error}:
            failed = True
    console.print(summary(results))
    for line in goals(results):
        console.print(line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
