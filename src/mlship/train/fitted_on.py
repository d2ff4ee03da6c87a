"""What a shipped model was fitted on, as a run records it and people read it.

Kept apart from :mod:`mlship.train.refit` (which fits) so the command line and the model card can
say it without importing the libraries that fit models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FittedOn:
    """What a shipped model was fitted on: ``all`` labelled rows or the ``train`` part, how many,
    and the latest time among them (ISO text for dates, the number otherwise; None without a
    time column)."""

    on: str
    rows: int
    up_to: str | float | int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"on": self.on, "rows": self.rows, "up_to": self.up_to}

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> FittedOn | None:
        """From a run's recorded details as stored (JSON); readers of a whole record use
        :attr:`mlship.train.details.RunDetails.fitted_on`, which applies :meth:`shipped` too."""
        refit = details.get("refit")
        found = cls(refit["on"], int(refit["rows"]), refit.get("up_to")) if refit else None
        return cls.shipped(found, (details.get("split") or {}).get("train_rows"))

    @classmethod
    def shipped(cls, refit: FittedOn | None, train_rows: int | None) -> FittedOn | None:
        """What the shipped model was fitted on: what the refit recorded, or for runs from before
        refitting, the training part their split records (None when neither is recorded)."""
        if refit is not None:
            return refit
        return None if train_rows is None else cls("train", int(train_rows))

    def sentence(self) -> str:
        """``The shipped model was fitted on 1,200 rows up to 2026-03-31.``, for people."""
        if self.on == "train":
            return (
                "The shipped model is the one scored on the test set, fitted on the "
                f"{self.rows:,} training rows."
            )
        if self.up_to is None:
            return f"The shipped model was fitted on all {self.rows:,} labelled rows."
        return f"The shipped model was fitted on {self.rows:,} rows up to {self.up_to}."
