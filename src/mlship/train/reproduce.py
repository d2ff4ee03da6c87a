"""Re-run a recorded run from its record alone and compare what it measures.

A run stores its whole spec, the spec file's location (relative sources are found from there), the
package versions and the git commit. Reproducing it executes that stored spec as a new run and
compares every recorded metric (each candidate's CV scores and the test-set scores) with the new
ones; the data hash and the package versions say whether the inputs were the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlship.spec.loader import LoadedSpec
from mlship.spec.models import PipelineSpec
from mlship.train.observer import RunObserver

if TYPE_CHECKING:
    from mlship.train.run import RunStores


@dataclass(frozen=True)
class Compared:
    """One metric, as recorded and as measured again."""

    candidate: str | None
    split: str
    name: str
    recorded: float
    reproduced: float | None

    @property
    def difference(self) -> float:
        if self.reproduced is None:
            return math.inf
        if math.isnan(self.recorded) and math.isnan(self.reproduced):
            return 0.0
        return abs(self.reproduced - self.recorded)


@dataclass(frozen=True)
class Reproduction:
    original: str
    reproduced: str
    same_data: bool
    changed_packages: dict[str, tuple[str | None, str | None]]
    compared: list[Compared] = field(default_factory=list)

    def matches(self, tolerance: float) -> bool:
        return all(c.difference <= tolerance for c in self.compared)


def reproduce(
    workspace: RunStores, run_ref: str, observer: RunObserver | None = None
) -> Reproduction:
    """Execute run ``run_ref``'s stored spec as a new run and compare the two."""
    from mlship.train.run import execute

    runs = workspace.runs
    original = runs.get_run(run_ref)
    spec = PipelineSpec.model_validate(original.spec)
    result = execute(LoadedSpec(spec=spec, path=Path(original.spec_path)), workspace, observer)
    again = runs.get_run(result.run_id)
    measured = {(m.candidate, m.split, m.name): m.value for m in again.metrics}
    compared = [
        Compared(
            m.candidate, m.split, m.name, m.value, measured.get((m.candidate, m.split, m.name))
        )
        for m in sorted(original.metrics, key=lambda m: (m.split, m.candidate or "", m.name))
    ]
    before = original.environment.get("packages", {})
    after = again.environment.get("packages", {})
    changed = {
        name: (before.get(name), after.get(name))
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }
    same_data = (
        original.dataset is not None
        and again.dataset is not None
        and original.dataset.data_hash == again.dataset.data_hash
    )
    return Reproduction(original.id, again.id, same_data, changed, compared)
