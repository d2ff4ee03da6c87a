"""The live progress display of the commands that ingest data or train.

Apart from the commands, which import it when they run: the observers it extends come with the
ingest code, and so with pandas and polars, which ``mlship --help`` should not have to import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column

from mlship.cli.console import out
from mlship.data.ingest_observer import IngestObserver
from mlship.train.observer import RunObserver

if TYPE_CHECKING:
    from mlship.train.folds import FoldResult
    from mlship.train.tuning import SearchOutcome, TrialRecord


class IngestProgress(IngestObserver):
    """One progress bar per source while it is read; messages as log lines."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def source_started(self, label: str) -> None:
        self.tasks[label] = self.progress.add_task(f"Read {label}", total=None)

    def source_progress(self, label: str, done: int, total: int | None) -> None:
        self.progress.update(self.tasks[label], completed=done, total=total)

    def message(self, text: str) -> None:
        self.progress.console.log(text)


class ProgressObserver(RunObserver):
    """Shows stages as log lines and cross-validation as one progress bar per candidate."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.ingest = IngestProgress(progress)

    def stage(self, message: str) -> None:
        self.progress.console.log(message)

    def start_cv(self, candidates: list[str], folds: int) -> None:
        for name in candidates:
            self.tasks[name] = self.progress.add_task(f"CV {name}", total=folds)

    def fold_done(self, score: FoldResult) -> None:
        self.progress.advance(self.tasks[score.candidate])

    def start_search(self, candidate: str, trials: int, done: int) -> None:
        label = f"Tune {candidate}" + (f" (resumed at {done})" if done else "")
        self.tasks[candidate] = self.progress.add_task(label, total=trials, completed=done)

    def trial_done(self, candidate: str, trial: TrialRecord) -> None:
        self.progress.advance(self.tasks[candidate])

    def end_search(self, candidate: str, outcome: SearchOutcome) -> None:
        task = self.tasks[candidate]
        self.progress.update(task, total=self.progress.tasks[task].completed)
        if outcome.stopped_by not in ("trials", "grid exhausted", "survivors"):
            self.progress.console.log(f"Search of {candidate} stopped by {outcome.stopped_by}")


@contextmanager
def progress_observer() -> Iterator[ProgressObserver]:
    """Bars whose description (a candidate's name) folds in a narrow terminal, while the
    counts and times beside it stay whole."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", table_column=Column(overflow="fold", min_width=8)),
        BarColumn(bar_width=20),
        MofNCompleteColumn(table_column=Column(no_wrap=True, justify="right")),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=out,
        transient=False,
    ) as progress:
        yield ProgressObserver(progress)
