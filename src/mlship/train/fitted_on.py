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
        """From a run's recorded details (:attr:`mlship.train.details.RunDetails.fitted_on`)."""
        from mlship.train.details import RunDetails  # which builds on this module

        return RunDetails.from_json(details).fitted_on

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
