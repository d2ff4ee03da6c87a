"""How long a page of the runs list takes with many runs, on SQLite and PostgreSQL.

Seeds ``--runs`` finished runs (10 params and 10 metrics each, :mod:`mlship.store.synthetic_runs`:
the rows training leaves, written in bulk) into a fresh workspace per backend, then times
``search_runs`` (the call behind ``mlship runs list`` and the web UI's runs page) for the
questions the runs page asks: the first page newest first, the first page sorted by a metric,
filtered by a param, filtered by a metric and a param and sorted by another metric, a tag with a
sort by a param, a free-text search, and a page deep in the list. Each cell is the median of
``--repeat`` calls after one warm-up call, in milliseconds, the total count included (a page
always says how many runs match). PostgreSQL is a throwaway server started for the run (the
test suite's helper) unless ``--postgres-url`` names an empty database.

    python benchmarks/bench_run_search.py [--runs 10000] [--repeat 7] [--backends sqlite postgresql]
        [--postgres-url URL] [--explain]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mlship import __version__
from mlship.config import Settings
from mlship.store.run_search import RunQuery
from mlship.store.synthetic_runs import seed_runs
from mlship.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's PostgreSQL helper

QUESTIONS: tuple[tuple[str, RunQuery], ...] = (
    ("first page, newest first", RunQuery()),
    ("first page by a metric", RunQuery.of(sort="metric.roc_auc")),
    ("filtered by a param", RunQuery.of("param.max_depth = 5")),
    (
        "metric + param filter, by a metric",
        RunQuery.of('metric.roc_auc > 0.8 and param.model = "gbm"', sort="metric.f1:asc"),
    ),
    ("tag, by a param", RunQuery.of("tag.team = growth", sort="param.learning_rate:asc")),
    ("text search", RunQuery(text="synth")),
    ("page 100 of 200", RunQuery(page=100)),
)


@contextmanager
def _database(backend: str, given: str | None) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
    elif given:
        yield given
    else:
        from tests.services import postgres_server

        with postgres_server() as url:
            yield url


def _time(workspace: Workspace, query: RunQuery, repeat: int) -> tuple[float, int]:
    workspace.runs.search_runs(query)
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        page = workspace.runs.search_runs(query)
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), page.total


def _explain(workspace: Workspace, console: Console) -> None:
    """The plan of the metric-sorted page with two filters, as the database tells it."""
    from sqlalchemy import event

    store = workspace.metadata
    sent: list[tuple[str, object]] = []

    def record(_c: object, _k: object, statement: str, parameters: object, *_: object) -> None:
        sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    store.search_runs(QUESTIONS[3][1])
    event.remove(store.engine, "before_cursor_execute", record)
    sqlite = store.engine.dialect.name == "sqlite"
    with store.engine.connect() as connection:
        selects = [(s, p) for s, p in sent if s.lstrip().upper().startswith("SELECT")]
        for statement, parameters in selects[:2]:
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ANALYZE "
            rows = connection.exec_driver_sql(explain + statement, parameters).all()  # type: ignore[arg-type]
            console.print("\n".join(str(row[-1]) for row in rows), highlight=False)
            console.print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--postgres-url")
    parser.add_argument("--explain", action="store_true", help="Print the plans too.")
    args = parser.parse_args()
    console = Console(width=max(100, Console().width))
    results: dict[str, dict[str, tuple[float, int]]] = {}
    seeding: dict[str, float] = {}
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as home, _database(backend, args.postgres_url) as url:
            settings = Settings(home=Path(home), database_url=url, user="bench", n_jobs=1)
            workspace = Workspace.open(settings)
            try:
                started = time.perf_counter()
                seed_runs(workspace.metadata, args.runs)
                seeding[backend] = time.perf_counter() - started
                if url is not None:
                    from sqlalchemy import text

                    with workspace.metadata.engine.begin() as connection:
                        connection.execute(text("ANALYZE"))
                results[backend] = {
                    name: _time(workspace, query, args.repeat) for name, query in QUESTIONS
                }
                if args.explain:
                    console.rule(f"{backend}: {QUESTIONS[3][0]}")
                    _explain(workspace, console)
            finally:
                workspace.close()
    table = Table(
        title=f"search_runs with {args.runs:,} runs x 10 params x 10 metrics "
        f"(mlship {__version__}; median of {args.repeat}, ms)"
    )
    table.add_column("question")
    table.add_column("runs found", justify="right")
    for backend in args.backends:
        table.add_column(f"{backend} ms", justify="right")
    for name, _ in QUESTIONS:
        found = next(iter(results.values()))[name][1]
        table.add_row(name, f"{found:,}", *(f"{results[b][name][0]:.1f}" for b in args.backends))
    table.add_row(
        "seeding (s, not ms)", f"{args.runs:,}", *(f"{seeding[b]:.1f}" for b in args.backends)
    )
    console.print(table)


if __name__ == "__main__":
    main()
