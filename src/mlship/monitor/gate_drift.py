"""The gate's drift budget: has the data a candidate learnt from moved away from the baseline's?

A candidate trained on data unlike its predecessor's may score well on its own test rows (drawn
from the same moved data) and still be a different bet in production; the budget makes a large
move a failed check a person looks at. Each input column of the candidate is compared, the
baseline's dataset as the reference, with the monitor's own defaults
(:func:`mlship.monitor.drift.dataset_drift`). Here, not in the registry, because the registry
sits below the monitor.
"""

from __future__ import annotations

from typing import Protocol

from mlship.evaluation.gate import Check
from mlship.monitor.drift import dataset_drift
from mlship.spec.gate import DriftBudget
from mlship.store.context import HasArtifacts, HasDatasets
from mlship.store.entities import ModelVersion, model_of

SAMPLE_ROWS = 200_000
"""Rows of each dataset compared at most (evenly spaced): enough for the drift tests to see a
shift that matters, and a bound on memory however large the datasets are."""


class DriftStores(HasDatasets, HasArtifacts, Protocol):
    """Where the two datasets are read from."""


def training_drift_check(
    workspace: DriftStores, budget: DriftBudget, candidate: ModelVersion, baseline: ModelVersion
) -> Check:
    """One check: the share of the candidate's input columns that drifted, against the budget."""
    from mlship.data.dataset_files import sample_dataset

    ref = f"{model_of(baseline).name}:{baseline.version}"
    inputs = [column["name"] for column in candidate.signature["inputs"]]
    if candidate.dataset_hash == baseline.dataset_hash:
        return Check("drift", True, f"the same dataset as {ref} ({candidate.dataset_hash[:12]})")
    reference, current = (
        sample_dataset(
            workspace.datasets.get_dataset(version.dataset_hash),
            workspace.artifacts,
            inputs,
            SAMPLE_ROWS,
        )
        for version in (baseline, candidate)
    )
    shared = [name for name in inputs if name in reference.columns and name in current.columns]
    if not shared:
        return Check(
            "drift",
            False,
            "no input column in both datasets",
            f"no input column of the candidate is in {ref}'s dataset; drift cannot be measured",
        )
    drift = dataset_drift(reference[shared], current[shared], columns=shared)
    drifted = drift.drifted_columns
    measured = f"{len(drifted)} of {len(shared)} input columns drifted ({drift.share:.0%})"
    return Check(
        "drift",
        drift.share <= budget.max_share,
        measured + (f": {', '.join(drifted)}" if drifted else ""),
        f"{drift.share:.0%} of the input columns drifted from {ref}'s training data "
        f"({', '.join(drifted)}), over the budget of {budget.max_share:.0%}",
    )
