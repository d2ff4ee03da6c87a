"""The finished cross-validation folds of a run, kept as they finish, so a resumed run reuses them.

A fixed candidate's folds are fitted as one batch; a run stopped in the middle of it (SIGTERM on
a spot instance, or SIGKILL) used to fit every one of them again when resumed. Each fold that
comes back is therefore written at once to the run's tuning storage, the same crash-safe store
its searches keep their trials in (Optuna's tables in the metadata database, or the run's journal
on a tracking server), as one trial of the study ``RUN::folds``: the double colon keeps it apart
from the candidates' studies (``RUN:NAME``), which :func:`mlship.train.tuning.trials_of` lists.
A failed fold is not kept: it stops the run and is fitted again on resume.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from mlship.prices import Usage
from mlship.train.fit_warnings import CaughtWarning
from mlship.train.folds import FoldResult
from mlship.train.tuning import FOLDS


class FoldJournal:
    """The folds run ``run_id`` finished, read back and added to one by one."""

    def __init__(self, storage: optuna.storages.BaseStorage, run_id: str) -> None:
        self.study = optuna.create_study(
            study_name=f"{run_id}:{FOLDS}", storage=storage, load_if_exists=True
        )

    def finished(self) -> dict[tuple[str, int], FoldResult]:
        """Every fold kept so far, by candidate and fold number."""
        kept: dict[tuple[str, int], FoldResult] = {}
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            attrs = trial.user_attrs
            result = FoldResult(
                candidate=str(attrs["candidate"]),
                fold=int(attrs["fold"]),
                trial=-1,
                validation={k: float(v) for k, v in attrs["validation"].items()},
                train={k: float(v) for k, v in attrs["train"].items()},
                fit_seconds=float(attrs["fit_seconds"]),
                usage=Usage.from_dict(attrs["usage"]),
                warnings=tuple(CaughtWarning.from_dict(w) for w in attrs.get("warnings", [])),
            )
            kept.setdefault((result.candidate, result.fold), result)
        return kept

    def record(self, result: FoldResult) -> None:
        """Keep ``result`` if it succeeded."""
        if not result.ok:
            return
        self.study.add_trial(
            optuna.trial.create_trial(
                value=float(result.fold),
                user_attrs={
                    "candidate": result.candidate,
                    "fold": result.fold,
                    "validation": result.validation,
                    "train": result.train,
                    "fit_seconds": result.fit_seconds,
                    "usage": result.usage.as_dict(),
                    "warnings": [w.as_dict() for w in result.warnings],
                },
            )
        )
