"""What differs between two model versions: estimator and parameters, metrics, data lineage.

Reviewers compare a candidate with the version in production before approving it; the answer has
to cover how it was trained (estimator, parameters, the spec and the code), how well it scores
(every recorded metric, side by side with the change), and what it learnt from (the dataset, its
sources and size, and the input signature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlship.store.entities import ModelVersion, model_of
from mlship.store.repositories import Runs


@dataclass(frozen=True)
class Difference:
    """One compared field: its value in each version (``None`` where a version lacks it)."""

    section: str
    name: str
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return bool(self.a != self.b)

    @property
    def delta(self) -> float | None:
        """``b - a`` for numbers."""
        numbers = (int, float)
        if isinstance(self.a, numbers) and isinstance(self.b, numbers):
            return float(self.b) - float(self.a)
        return None


@dataclass(frozen=True)
class VersionDiff:
    a: str
    b: str
    rows: list[Difference] = field(default_factory=list)

    def changed(self) -> list[Difference]:
        return [row for row in self.rows if row.changed]


def diff_versions(runs: Runs, a: ModelVersion, b: ModelVersion) -> VersionDiff:
    """Compare ``a`` with ``b`` field by field (metrics of every split, all parameters)."""
    found = VersionDiff(f"{model_of(a).name}:{a.version}", f"{model_of(b).name}:{b.version}")
    rows = found.rows
    rows.append(Difference("model", "estimator", a.estimator, b.estimator))
    rows.append(Difference("model", "stage", a.stage, b.stage))
    for key in sorted(set(a.params) | set(b.params)):
        rows.append(Difference("params", key, a.params.get(key), b.params.get(key)))
    for split in sorted(set(a.metrics) | set(b.metrics)):
        left, right = a.metrics.get(split, {}), b.metrics.get(split, {})
        for key in sorted(set(left) | set(right)):
            rows.append(Difference(f"metrics ({split})", key, left.get(key), right.get(key)))
    rows.extend(_lineage(runs, a, b))
    inputs_a = {c["name"]: c["type"] for c in a.signature.get("inputs", [])}
    inputs_b = {c["name"]: c["type"] for c in b.signature.get("inputs", [])}
    for key in sorted(set(inputs_a) | set(inputs_b)):
        rows.append(Difference("inputs", key, inputs_a.get(key), inputs_b.get(key)))
    return found


def _lineage(found: Runs, a: ModelVersion, b: ModelVersion) -> list[Difference]:
    runs = [found.get_run(v.run_id) for v in (a, b)]
    datasets = [run.dataset for run in runs]

    def sources(index: int) -> str | None:
        dataset = datasets[index]
        if dataset is None:
            return None
        return ", ".join(_source_label(s) for s in dataset.sources)

    return [
        Difference("data", "dataset sha256", a.dataset_hash, b.dataset_hash),
        Difference(
            "data",
            "rows",
            datasets[0].n_rows if datasets[0] else None,
            datasets[1].n_rows if datasets[1] else None,
        ),
        Difference("data", "sources", sources(0), sources(1)),
        Difference("training", "run", a.run_id, b.run_id),
        Difference("training", "spec sha256", runs[0].spec_hash, runs[1].spec_hash),
        Difference("training", "git commit", runs[0].git_commit, runs[1].git_commit),
        Difference(
            "training", "selected candidate", runs[0].best_candidate, runs[1].best_candidate
        ),
    ]


def _source_label(source: dict[str, Any]) -> str:
    """A file by its content hash, a query by the rows it returned."""
    name = source.get("name", "?")
    if source.get("sha256"):
        return f"{name} sha256 {str(source['sha256'])[:12]}"
    return f"{name} {source.get('rows')} rows"
