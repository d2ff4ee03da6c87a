"""What a run tells a front end while it works: stages, folds, trials.

Kept apart from :mod:`mlship.train.run` so a command line can define its progress display without
importing the training stack (scikit-learn, Optuna, XGBoost) before it is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlship.data.ingest_observer import IngestObserver

if TYPE_CHECKING:
    from mlship.train.folds import FoldResult
    from mlship.train.tuning import SearchOutcome, TrialRecord


class RunObserver:
    """Hooks a front end uses to show progress; the defaults do nothing."""

    ingest: IngestObserver = IngestObserver()

    def stage(self, message: str) -> None:
        """A new stage of the run has started."""

    def start_cv(self, candidates: list[str], folds: int) -> None:
        """Cross-validation of ``candidates`` with ``folds`` folds each is about to start."""

    def fold_done(self, score: FoldResult) -> None:
        """One fold of one candidate has been scored."""

    def end_cv(self) -> None:
        """Cross-validation has finished."""

    def start_search(self, candidate: str, trials: int, done: int) -> None:
        """Tuning of ``candidate`` starts (``done`` trials were finished by an earlier attempt)."""

    def trial_done(self, candidate: str, trial: TrialRecord) -> None:
        """One trial of a search has finished (completed, pruned or failed)."""

    def end_search(self, candidate: str, outcome: SearchOutcome) -> None:
        """A search has ended."""
