"""Sample-first screening: score every candidate point on a few rows, keep the best, grow.

A grid or random search spends most of its time confirming that poor points are poor. Scoring all
of them on a stratified sample of the training rows ranks them for a fraction of the cost; the best
share goes on to a larger sample, and only the last survivors get the full cross-validation that
the leaderboard reports. The samples are nested (each stage's rows include the previous stage's)
and seeded, and every stage is cut along the run's own folds (their first ``folds``), fitting on a
sample of each fold's training rows and scoring on all of its validation rows, so no row a fold
validates on is ever fitted on in that fold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlship.train.folds import FoldResult, Folds


@dataclass(frozen=True)
class Stage:
    """One screening stage: how many rows it scored on, how many points, how many went on."""

    rows: int
    candidates: int
    kept: int

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "candidates": self.candidates, "kept": self.kept}


def fractions(first: float, keep: float) -> list[float]:
    """The share of rows of each screening stage: ``first``, then 1/keep times more, while the
    share stays below all the rows (the full cross-validation comes after)."""
    shares: list[float] = []
    share = first
    while share < 1.0:
        shares.append(share)
        share /= keep
    return shares


def kept(count: int, keep: float) -> int:
    """How many of ``count`` points go on: the share ``keep``, rounded up, at least one."""
    return max(1, math.ceil(count * keep - 1e-9))


def sample_order(rows: np.ndarray[Any, Any], y: pd.Series, stratify: bool, seed: int) -> list[int]:
    """The positions ``rows`` in a seeded order whose every prefix keeps the class shares.

    Each class is shuffled on its own and the classes are interleaved by rank (a row's place in
    its class over the class size), so the first n rows of the order hold each class in
    proportion, and a larger sample always contains a smaller one."""
    rng = np.random.default_rng(seed)
    if not stratify:
        return [int(r) for r in rng.permutation(rows)]
    labels = y.iloc[rows].to_numpy()
    keyed: list[tuple[float, int]] = []
    for label in pd.unique(labels):
        members = rng.permutation(rows[labels == label])
        size = len(members)
        keyed.extend(((i + 0.5) / size, int(r)) for i, r in enumerate(members))
    keyed.sort()
    return [r for _, r in keyed]


def sampled_folds(folds: Folds, fold_ids: Sequence[int], chosen: np.ndarray[Any, Any]) -> Folds:
    """``folds`` with the training side of each of ``fold_ids`` cut down to the rows in ``chosen``
    (the other folds left empty: no job of the stage reads them).

    The validation side stays whole: predicting is cheap next to fitting, and a point ranked on a
    tenth of a fold's validation rows (a handful of positives of a rare class) is ranked by
    chance. Its rows are still never among the rows the fold fits on."""
    mask_of = set(fold_ids)
    out: Folds = []
    for position, (train, valid) in enumerate(folds):
        if position in mask_of:
            out.append((train[np.isin(train, chosen)], valid))
        else:
            out.append((train[:0], valid[:0]))
    return out


def rank_key(folds: list[FoldResult], metric: str, bigger: bool) -> float:
    """A point's screening score to sort ascending: failed points last."""
    if not folds or any(not f.ok or metric not in f.validation for f in folds):
        return math.inf
    mean = float(np.mean([f.validation[metric] for f in folds]))
    if math.isnan(mean):
        return math.inf
    return -mean if bigger else mean
