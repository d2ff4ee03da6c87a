"""What a run's split actually was, in words a reader can check.

A score means little without the split behind it: "0.91 AUC" on shuffled rows and on the latest
fifth of a time-ordered table are different claims. The description is built once, at run time,
from the split in force (:func:`mlship.train.splits.resolve_method` and the spec's ``split``) and
the row counts it produced, and stored with the run, so ``runs show``, the leaderboard and the
evaluation report say what was done rather than re-deriving it from a spec that may have changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlship.spec.models import Task
from mlship.spec.training import Split, SplitMethod


@dataclass(frozen=True)
class SplitStrategy:
    """The split in force for one run: method, the columns it used, its shares and counts."""

    method: SplitMethod
    folds: int
    """Folds per repeat (1 for ``holdout``: a single validation split)."""
    repeats: int
    holdout: float
    train_rows: int
    test_rows: int
    group: str | None = None
    time: str | None = None
    stratified_test: bool = False
    """The test split kept class proportions."""
    stratified_folds: bool = False
    """The folds kept class proportions (stratified k-fold or stratified group k-fold)."""
    outer_folds: int = 0
    """Outer folds of nested cross-validation (0 without it)."""

    @classmethod
    def of(
        cls, split: Split, task: Task, train_rows: int, test_rows: int, outer_folds: int = 0
    ) -> SplitStrategy:
        """The strategy ``split`` resolves to for ``task``, as :mod:`mlship.train.splits` makes
        it (the same rules, read from the same function)."""
        from mlship.train.splits import resolve_method  # scikit-learn, only when a run makes one

        method = resolve_method(split, task)
        timeseries = method == "timeseries"
        classes = task == "classification"
        grouped = split.group is not None and not timeseries
        return cls(
            method=method,
            folds=1 if method == "holdout" else split.folds,
            repeats=split.repeats,
            holdout=split.holdout,
            train_rows=train_rows,
            test_rows=test_rows,
            group=split.group if grouped else None,
            time=split.time if timeseries else None,
            stratified_test=classes and split.stratify and not grouped and not timeseries,
            stratified_folds=classes and method not in ("kfold", "timeseries", "holdout"),
            outer_folds=outer_folds,
        )

    def text(self) -> str:
        """One line: ``timeseries on `date`, test = latest 20% (240 rows), 5 expanding folds``."""
        return f"{self._folds_text()}, {self._test_text()}" + self._nested_text()

    def _test_text(self) -> str:
        share = f"{self.holdout:.0%}"
        rows = f"({self.test_rows} rows)"
        if self.time is not None:
            return f"test = latest {share} {rows}"
        if self.group is not None:
            return f"test = {share} of `{self.group}` groups {rows}"
        stratified = "stratified " if self.stratified_test else "random "
        return f"test = {stratified}{share} {rows}"

    def _folds_text(self) -> str:
        repeats = f" × {self.repeats} repeats" if self.repeats > 1 else ""
        if self.time is not None:
            return f"split: timeseries on `{self.time}`, {self.folds} expanding folds"
        if self.method == "holdout":
            by = f" by `{self.group}`" if self.group is not None else ""
            return f"split: holdout{by}, one validation split of {self.holdout:.0%}"
        if self.group is not None:
            kind = "stratified_group_kfold" if self.stratified_folds else "group_kfold"
            return f"split: {kind} by `{self.group}`, {self.folds} folds{repeats}"
        kind = "stratified " if self.stratified_folds else ""
        return f"split: {kind}{self.folds}-fold{repeats}"

    def _nested_text(self) -> str:
        return f", nested CV with {self.outer_folds} outer folds" if self.outer_folds else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "folds": self.folds,
            "repeats": self.repeats,
            "holdout": self.holdout,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "group": self.group,
            "time": self.time,
            "stratified_test": self.stratified_test,
            "stratified_folds": self.stratified_folds,
            "outer_folds": self.outer_folds,
            "text": self.text(),
        }


__all__ = ["SplitStrategy"]
