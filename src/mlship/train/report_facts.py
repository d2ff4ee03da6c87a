"""The facts that head a run's evaluation report, and the report itself.

The report is written when the run is decided and before its model is registered: its header says
which candidate was selected and how (the rule, the split, the weights, the threshold, what the
shipped model was fitted on), read from the run's details, so the page a person opens later says
what was done rather than what the spec says today. The evaluation is stored content-addressed
beside it, so ``mlship runs report`` renders it again from the store alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mlship.data.ingested import Ingested
from mlship.evaluation.report import write_evaluation_report
from mlship.spec.loader import LoadedSpec
from mlship.store.context import HasArtifacts, HasSettings
from mlship.train.details import RunDetails, SplitRecord
from mlship.train.fit_warnings import summary_lines
from mlship.train.selection import LeaderboardRow


class ReportStores(HasArtifacts, HasSettings, Protocol):
    """Where the run's report is written: the artifact store, and the reports folder under home."""


@dataclass(frozen=True)
class Report:
    """Where the run's evaluation went: the stored JSON's checksum and the HTML page."""

    sha256: str
    html_path: Path


def report_facts(
    run_id: str, pipeline: str, row: LeaderboardRow, dataset_hash: str, details: RunDetails
) -> dict[str, Any]:
    """The header of a run's evaluation report."""
    split = details.split or SplitRecord()
    test_set = split.test_scored
    if details.backtest is not None:
        test_set = details.backtest.test_set
    facts: dict[str, Any] = {
        "id": run_id,
        "pipeline": pipeline,
        "model": row.name,
        "estimator": row.estimator,
        "dataset_hash": dataset_hash,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "selection": _selection(details),
        "test set": test_set,
    }
    if split.strategy is not None:
        facts["split"] = split.strategy.text.removeprefix("split: ")
    if details.warnings:
        facts["library warnings"] = "; ".join(summary_lines(details.warnings))
    if details.threshold is not None:
        facts["decision threshold"] = round(details.threshold.threshold, 4)
    weighting = details.weighting
    if weighting.sample_weights is not None:
        facts["sample weights"] = weighting.sample_weights
    if weighting.target_transform is not None:
        facts["target transform"] = weighting.target_transform
    fitted_on = details.fitted_on
    if fitted_on is not None:
        facts["shipped"] = fitted_on.sentence()
    nested = details.nested_summary(row.name)
    if nested is not None:
        facts["nested CV"] = nested
    return facts


def _selection(details: RunDetails) -> str | None:
    """The rule, and for ``cheapest_within`` the cost that made a candidate the cheapest."""
    selection = details.selection
    if selection is None:
        return None
    if selection.rule != "cheapest_within":
        return selection.rule
    return f"cheapest_within {selection.tolerance:g} by {selection.cost or 'training'} cost"


def write_report(
    workspace: ReportStores,
    loaded: LoadedSpec,
    run_id: str,
    row: LeaderboardRow,
    ingested: Ingested,
    evaluation: dict[str, Any],
    details: RunDetails,
) -> Report:
    """Store the evaluation (JSON, content-addressed) and write the HTML report beside the data
    report, so ``mlship runs report`` can render it again from the store alone."""
    facts = report_facts(run_id, loaded.spec.name, row, ingested.dataset.data_hash, details)
    stored = {"run": facts, "evaluation": evaluation}
    sha = workspace.artifacts.put_bytes(
        json.dumps(stored, sort_keys=True, default=str).encode()
    ).sha256
    directory = workspace.settings.home_resolved / "reports"
    _, html_path = write_evaluation_report(
        directory, f"{loaded.spec.name}-run-{run_id[:8]}", evaluation, facts
    )
    return Report(sha, html_path)


__all__ = ["Report", "report_facts", "write_report"]
