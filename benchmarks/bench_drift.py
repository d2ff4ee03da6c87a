"""Data drift: mlship's ``dataset_drift`` against Evidently's data-drift preset on the same frames.

Generates a deterministic reference and current frame (default 200,000 rows x 50 columns: 32
floats of several distributions, 3 integers of 2, 5 and about 15 distinct values, and 15 string
columns of 3 to 36 categories; a few columns have 1 % missing values) and injects drift in 10
known columns of the current frame: mean shifts, a scale change, a changed skew, a moved range,
changed shares of a binary flag and of a 1-5 rating, and changed category shares, one of them a
new category. The other 40 columns are drawn from the same distributions with other seeds.

mlship runs in this process on the Polars frames (best of ``--repeat``). Evidently does not run
with the pandas this project pins, so it runs in a virtualenv of its own (``--evidently-venv``,
created on first use from ``benchmarks/evidently-requirements.txt``) on the same frames written
as Parquet; only its computation is timed there, not the import or the reads (see
``_evidently_drift.py``). Both get the same column types: numeric columns as numerical,
strings as categorical (left to itself, Evidently would call integer columns of at most 10
distinct values categorical, which for these integers gives the same methods).

The table gives each tool's seconds, the speed ratio (Evidently seconds / the tool's seconds),
the number of drifted columns and whether they are exactly the injected ones. The script exits
with status 1 when the two tools flag different columns or either misses the injected set.

    python benchmarks/bench_drift.py [--rows 200000] [--current-rows N] [--repeat 3]
        [--evidently-repeat 1] [--evidently-venv DIR] [--no-evidently]

``--current-rows`` different from ``--rows`` exercises mlship's general Wasserstein merge (equal
sizes take the shortcut over order statistics). With 1000 rows or fewer the string columns get
chi-square tests, where Evidently's goodness-of-fit test and mlship's test of homogeneity differ
by design (see ``mlship.monitor.drift``): there the flagged sets may differ, and the script says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
from rich.console import Console
from rich.table import Table

from mlship.monitor import ColumnDrift, dataset_drift

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "evidently-requirements.txt"
WORKER = HERE / "_evidently_drift.py"
EVIDENTLY_VENV = Path(tempfile.gettempdir()) / "mlship-bench-evidently-venv"

FLOATS, STRINGS = 32, 15
DRIFTED = frozenset({"f00", "f01", "f02", "f03", "f04", "i0", "i1", "s00", "s01", "s02"})
"""The columns whose distribution differs in the current frame."""

# Evidently's display name of each method, as mlship names it (its z-test is our chi-square).
METHOD_NAMES = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "chisquare",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}


# -- the frames ------------------------------------------------------------------------------


Floats = npt.NDArray[np.float64]


def _float_column(rng: np.random.Generator, i: int, rows: int, drifted: bool) -> Floats:
    """Float column ``f{i}``; f00-f04 change when ``drifted``."""
    if i == 0:
        return rng.normal(0.5 if drifted else 0.0, 1.0, rows)  # mean +0.5 sd
    if i == 1:
        return rng.normal(97.0 if drifted else 100.0, 10.0, rows)  # mean -0.3 sd
    if i == 2:
        return rng.normal(0.0, 1.6 if drifted else 1.0, rows)  # scale x1.6
    if i == 3:
        return rng.lognormal(0.0, 0.8 if drifted else 0.5, rows)  # heavier right tail
    if i == 4:
        low = 1.0 if drifted else 0.0
        return rng.uniform(low, low + 10.0, rows)  # range moved by 1 of 10
    family = i % 5
    if family == 0:
        return rng.normal(float(i), 1.0 + i % 3, rows)
    if family == 1:
        return rng.exponential(1.0 + i % 4, rows)
    if family == 2:
        return rng.lognormal(1.0, 0.4, rows)
    if family == 3:
        return rng.uniform(-float(i), float(i), rows)
    return rng.gamma(2.0 + i % 3, 1.5, rows)


def _shares(weights: Floats) -> Floats:
    shares: Floats = weights / weights.sum()
    return shares


def _string_column(
    rng: np.random.Generator, i: int, rows: int, drifted: bool
) -> npt.NDArray[np.str_]:
    """String column ``s{i}``; s00-s02 change when ``drifted``."""
    if i == 0:  # 12 categories, shares rising 1:3, reversed
        categories = np.array([f"plan-{k}" for k in range(12)])
        weights = np.linspace(1.0, 3.0, 12)
        return rng.choice(categories, rows, p=_shares(weights[::-1] if drifted else weights))
    if i == 1:  # 8 even categories; a new one takes a quarter
        categories = np.array([f"region-{k}" for k in range(8)] + ["region-new"])
        shares = np.append(np.full(8, 0.75 / 8), 0.25) if drifted else np.append(np.ones(8) / 8, 0)
        return rng.choice(categories, rows, p=shares)
    if i == 2:  # 20 categories, shares rising 1:4, reversed
        categories = np.array([f"sku-{k:02d}" for k in range(20)])
        weights = np.linspace(1.0, 4.0, 20)
        return rng.choice(categories, rows, p=_shares(weights[::-1] if drifted else weights))
    size = 3 + 3 * (i - 3)
    categories = np.array([f"c{i}-{k}" for k in range(size)])
    return rng.choice(categories, rows, p=_shares(np.geomspace(1.0, 5.0, size)))


def make_frame(rows: int, seed: int, *, drifted: bool) -> pl.DataFrame:
    """The reference (``drifted=False``) or current frame: 35 numeric and 15 string columns."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pl.Series] = {}
    for i in range(FLOATS):
        values = _float_column(rng, i, rows, drifted)
        if i % 7 == 6:  # 1 % missing, as NaN
            values[rng.random(rows) < 0.01] = np.nan
        columns[f"f{i:02d}"] = pl.Series(values)
    flag_share = 0.55 if drifted else 0.3
    columns["i0"] = pl.Series((rng.random(rows) < flag_share).astype(np.int64))
    rating = [0.15, 0.2, 0.25, 0.25, 0.15] if drifted else [0.05, 0.1, 0.2, 0.35, 0.3]
    columns["i1"] = pl.Series(rng.choice(np.arange(1, 6), rows, p=rating))
    columns["i2"] = pl.Series(rng.poisson(4.0, rows))
    for i in range(STRINGS):
        series = pl.Series(_string_column(rng, i, rows, drifted))
        if i % 5 == 4:  # 1 % missing, as null
            missing = pl.Series(rng.random(rows) < 0.01)
            series = series.zip_with(~missing, pl.Series([None], dtype=pl.String))
        columns[f"s{i:02d}"] = series
    return pl.DataFrame(columns)


# -- the runs --------------------------------------------------------------------------------


@dataclass
class Outcome:
    tool: str
    version: str
    seconds: list[float]
    drifted: set[str]
    methods: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> float:
        return min(self.seconds)


def _score(column: ColumnDrift) -> float:
    """The number the verdict reads: the p-value of a test, the distance otherwise."""
    return column.statistic if column.p_value is None else column.p_value


def run_mlship(reference: pl.DataFrame, current: pl.DataFrame, repeat: int) -> Outcome:
    from importlib.metadata import version

    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = dataset_drift(reference, current)
        seconds.append(time.perf_counter() - started)
    return Outcome(
        "mlship",
        version("mlship"),
        seconds,
        set(result.drifted_columns),
        {column.column: column.method for column in result.columns},
        {column.column: _score(column) for column in result.columns},
    )


def evidently_python(where: Path, console: Console) -> Path:
    """Python of Evidently's virtualenv, created from the pinned requirements when missing."""
    python = where / "bin" / "python"
    stamp = where / ".requirements"
    if python.exists() and stamp.exists() and stamp.read_text() == REQUIREMENTS.read_text():
        return python
    with console.status(f"Installing Evidently into {where} (a virtualenv of its own)"):
        venv.create(where, with_pip=True, clear=True)
        pip = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run(
            [str(python), *pip, "-r", str(REQUIREMENTS)],
            check=True,
        )
    stamp.write_text(REQUIREMENTS.read_text())
    return python


def run_evidently(
    reference: pl.DataFrame, current: pl.DataFrame, repeat: int, python: Path
) -> Outcome:
    numeric = [name for name, dtype in reference.schema.items() if dtype.is_numeric()]
    strings = [name for name in reference.columns if name not in numeric]
    with tempfile.TemporaryDirectory(prefix="mlship-bench-drift-") as tmp:
        data = Path(tmp)
        reference.write_parquet(data / "reference.parquet")
        current.write_parquet(data / "current.parquet")
        columns = {"numerical": numeric, "categorical": strings}
        (data / "columns.json").write_text(json.dumps(columns))
        command = [str(python), str(WORKER), str(data), str(repeat)]
        done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"Evidently's run failed ({python}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    by_column = report["columns"]
    return Outcome(
        "Evidently DataDriftPreset",
        report["version"],
        report["seconds"],
        {name for name, column in by_column.items() if column["drifted"]},
        {name: METHOD_NAMES.get(c["method"], c["method"]) for name, c in by_column.items()},
        {name: column["score"] for name, column in by_column.items()},
    )


# -- the report ------------------------------------------------------------------------------


def _names(columns: Set[str]) -> str:
    return ", ".join(sorted(columns)) or "-"


def render(outcomes: list[Outcome], title: str) -> Table:
    evidently = next((o for o in outcomes if o.tool.startswith("Evidently")), None)
    table = Table(title=title)
    table.add_column("tool", no_wrap=True)
    table.add_column("version")
    table.add_column("runs", justify="right")
    table.add_column("seconds (best)", justify="right")
    table.add_column("x speed (Evidently s / s)", justify="right")
    table.add_column("drifted columns", justify="right")
    table.add_column("= injected set")
    table.add_column("missed / extra")
    for outcome in outcomes:
        ratio = f"{evidently.best / outcome.best:,.1f}x" if evidently else "-"
        missed, extra = DRIFTED - outcome.drifted, outcome.drifted - DRIFTED
        table.add_row(
            outcome.tool,
            outcome.version,
            str(len(outcome.seconds)),
            f"{outcome.best:.3f}",
            ratio,
            str(len(outcome.drifted)),
            "yes" if outcome.drifted == DRIFTED else "NO",
            f"{_names(missed)} / {_names(extra)}",
        )
    return table


def compare(mlship: Outcome, evidently: Outcome, console: Console) -> bool:
    """Print how the two tools agree; True when they flag the same columns."""
    only_mlship = mlship.drifted - evidently.drifted
    only_evidently = evidently.drifted - mlship.drifted
    console.print(
        f"flagged by mlship only: {_names(only_mlship)}; "
        f"by Evidently only: {_names(only_evidently)}"
    )
    shared = sorted(set(mlship.methods) & set(evidently.methods))
    same_method = [name for name in shared if mlship.methods[name] == evidently.methods[name]]
    gaps = {
        name: abs(mlship.scores[name] - evidently.scores[name])
        / max(abs(evidently.scores[name]), 1e-12)
        for name in same_method
    }
    worst = max(gaps, key=gaps.__getitem__) if gaps else None
    console.print(
        f"same method on {len(same_method)} of {len(shared)} columns; largest relative "
        f"difference of a score: {gaps[worst]:.1e} ({worst})"
        if worst
        else "no column compared with the same method"
    )
    agree = not only_mlship and not only_evidently
    if agree:
        console.print(f"both tools flag the same {len(mlship.drifted)} columns")
    return agree


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--current-rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="mlship runs (best is reported)")
    parser.add_argument("--evidently-repeat", type=int, default=1, help="Evidently runs")
    parser.add_argument(
        "--evidently-venv",
        type=Path,
        default=EVIDENTLY_VENV,
        help="Evidently's virtualenv, (re)created there unless it holds the pinned versions",
    )
    parser.add_argument("--no-evidently", action="store_true", help="time mlship only")
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1 or args.evidently_repeat < 1:
        parser.error("--rows, --repeat and --evidently-repeat must be at least 1")
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))

    with console.status("Generating the frames"):
        reference = make_frame(args.rows, 1, drifted=False)
        current = make_frame(args.current_rows or args.rows, 2, drifted=True)
    title = (
        f"Data drift, {reference.height:,} reference vs {current.height:,} current rows x "
        f"{reference.width} columns, drift injected in {len(DRIFTED)}"
    )
    with console.status("mlship"):
        mlship = run_mlship(reference, current, args.repeat)
    outcomes = [mlship]
    if not args.no_evidently:
        python = evidently_python(args.evidently_venv, console)
        with console.status(f"Evidently ({args.evidently_repeat} run(s))"):
            outcomes.append(run_evidently(reference, current, args.evidently_repeat, python))
    console.print(render(outcomes, title))
    console.print(f"injected: {_names(DRIFTED)}")
    ok = all(outcome.drifted == DRIFTED for outcome in outcomes)
    if len(outcomes) == 2:
        ok = compare(outcomes[0], outcomes[1], console) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
