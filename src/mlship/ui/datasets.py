"""What the dataset pages read: a page of datasets, one dataset's schema, profile, checks,
sources and runs, the difference of two datasets, and the page's ECharts options.

Everything comes from what ingesting stored (the dataset's row, its profile artifact, its
validation summary); only the diff reads the two datasets' values, as ``mlship data diff`` does,
because the stability index needs them. The quarantine has its own module
(:mod:`mlship.ui.quarantine`).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

from mlship.data.dataset_profile import ColumnProfile, DatasetProfile
from mlship.data.lineage import SourceLineage, lineage_from_json
from mlship.data.readers.masking import mask_text
from mlship.errors import DataError, MlshipError
from mlship.store.dataset_queries import (
    DatasetUses,
    page_of_datasets,
    pipelines_with_datasets,
    runs_of_dataset,
)
from mlship.store.entities import Dataset
from mlship.ui.charts import Chart
from mlship.workspace import Workspace

PAGE_SIZE = 50
PSI_SHIFT = 0.2
"""The index above which a column's distribution is read as shifted (as ``mlship data diff``)."""


def page_number(values: dict[str, str]) -> int:
    """The ``page`` parameter, from 1; anything else is a clear error naming it."""
    text = values.get("page") or "1"
    if not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise MlshipError(f"page: expected a page number from 1, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class DatasetListQuery:
    """The datasets list's filter and page, as its form sends them."""

    pipeline: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, values: dict[str, str]) -> DatasetListQuery:
        pipeline = (values.get("pipeline") or "").strip() or None
        if pipeline is not None and len(pipeline) > 200:
            raise MlshipError(f"pipeline: expected a pipeline name, got {len(pipeline)} characters")
        return cls(pipeline, page_number(values))

    def params(self, **changes: Any) -> dict[str, str]:
        values = {"pipeline": self.pipeline or "", "page": str(self.page)}
        values.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value and value != "1"}


@dataclass(frozen=True)
class DatasetRow:
    """One line of the datasets list."""

    dataset: Dataset
    sources: str
    """The sources' names and kinds, as one short text."""


@dataclass(frozen=True)
class DatasetListPage:
    rows: list[DatasetRow]
    total: int
    page: int
    pages: int
    pipelines: list[str]


def _sources_text(sources: list[Any]) -> str:
    named = [
        f"{s.get('name', '?')} ({s.get('kind', 'file')})" for s in sources if isinstance(s, dict)
    ]
    return mask_text(", ".join(named)) or "–"


def find_datasets(workspace: Workspace, query: DatasetListQuery) -> DatasetListPage:
    """The page of datasets ``query`` asks for (the last one when it asks beyond it)."""
    store = workspace.metadata
    first = page_of_datasets(
        store, pipeline=query.pipeline, offset=(query.page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, math.ceil(first.total / PAGE_SIZE))
    found = first
    if query.page > pages:
        found = page_of_datasets(
            store, pipeline=query.pipeline, offset=(pages - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
    rows = [DatasetRow(d, _sources_text(d.sources)) for d in found.datasets]
    return DatasetListPage(
        rows, found.total, min(query.page, pages), pages, pipelines_with_datasets(store)
    )


@dataclass(frozen=True)
class SchemaColumn:
    """One declared column: its type, role, whether it may be empty, and its checks in words."""

    name: str
    type: str
    role: str
    nullable: bool
    checks: list[str]
    private: bool
    """A ``pii`` column: its values are not shown on the pages."""


_CHECK_FIELDS = ("min", "max", "allowed", "regex", "unique", "outliers", "max_missing")


def _check_words(check: dict[str, Any]) -> str:
    parts = []
    for key in _CHECK_FIELDS:
        value = check.get(key)
        if value is None or value is False:
            continue
        if key == "unique":
            parts.append("unique")
        elif isinstance(value, list):
            parts.append(f"{key}: {', '.join(map(str, value[:10]))}")
        elif isinstance(value, dict):
            parts.append(f"{key}: {json.dumps(value, default=str)}")
        else:
            parts.append(f"{key}: {value:g}" if isinstance(value, float) else f"{key}: {value}")
    if check.get("distribution"):
        reference = check["distribution"].get("reference", "?")
        parts.append(f"distribution like {reference}")
    severity = check.get("severity", "error")
    return f"{', '.join(parts) or 'check'} ({severity})"


def schema_of(dataset: Dataset) -> list[SchemaColumn]:
    """The dataset's declared columns, as stored with it."""
    found = []
    for column in dataset.columns:
        if not isinstance(column, dict) or "name" not in column:
            continue
        checks = [_check_words(c) for c in column.get("checks") or [] if isinstance(c, dict)]
        found.append(
            SchemaColumn(
                name=str(column["name"]),
                type=str(column.get("type", "")),
                role=str(column.get("role", "feature")),
                nullable=bool(column.get("nullable", True)),
                checks=checks,
                private=column.get("role") == "pii",
            )
        )
    return found


def private_columns(dataset: Dataset) -> frozenset[str]:
    """The dataset's ``pii`` columns, whose values no page shows."""
    return frozenset(c.name for c in schema_of(dataset) if c.private)


@dataclass(frozen=True)
class CheckLine:
    """A check of the validation and what it found."""

    column: str | None
    check: str
    severity: str
    tested: int | None
    failed: int
    passed: bool
    detail: str
    examples: list[str]


def checks_of(validation: dict[str, Any] | None) -> tuple[list[CheckLine], list[CheckLine]]:
    """The declared checks with their results, and the other problems found (values of the
    wrong type, duplicate keys) that no declared check accounts for."""
    if not validation:
        return [], []
    found = validation.get("checks") or []
    examples = {(c.get("column"), c.get("check")): c.get("examples") or [] for c in found}
    declared = [
        CheckLine(
            c.get("column"),
            str(c.get("check", "")),
            str(c.get("severity", "error")),
            c.get("tested"),
            int(c.get("failed") or 0),
            bool(c.get("passed")),
            str(c.get("detail") or ""),
            [mask_text(str(e)) for e in examples.get((c.get("column"), c.get("check")), [])[:3]],
        )
        for c in validation.get("declared") or []
    ]
    listed = {(c.column, c.check) for c in declared}
    other = [
        CheckLine(
            c.get("column"),
            str(c.get("check", "")),
            str(c.get("severity", "error")),
            None,
            int(c.get("failed") or 0),
            not c.get("failed"),
            "",
            [mask_text(str(e)) for e in (c.get("examples") or [])[:3]],
        )
        for c in found
        if (c.get("column"), c.get("check")) not in listed
    ]
    return declared, other


@dataclass(frozen=True)
class SourceLine:
    """One source of the dataset, as the page lists it (database passwords masked)."""

    name: str
    kind: str
    location: str
    rows: int
    fingerprint: str


def sources_of(dataset: Dataset) -> list[SourceLine]:
    found = []
    for record in dataset.sources:
        if not isinstance(record, dict):
            continue
        try:
            source: SourceLineage = lineage_from_json(record)
        except DataError:
            found.append(
                SourceLine(str(record.get("name", "?")), "?", mask_text(str(record)), 0, "")
            )
            continue
        if source.kind == "file":
            location, print_ = source.location, getattr(source, "sha256", "")
        elif source.kind == "query":
            location, print_ = f"{source.location}: {getattr(source, 'query', '')}", ""
        else:
            location, print_ = source.location, getattr(source, "fingerprint", "")
        found.append(SourceLine(source.name, source.kind, mask_text(location), source.rows, print_))
    return found


def profile_of_dataset(workspace: Workspace, dataset: Dataset) -> DatasetProfile:
    """The dataset's stored profile; computed from its values for one stored without."""
    from mlship.data.profile import profile_of

    if dataset.profile_sha256:
        stored = json.loads(workspace.artifacts.get_bytes(dataset.profile_sha256))
        return DatasetProfile.from_json(stored)
    return profile_of(_frame(workspace, dataset))


@dataclass(frozen=True)
class DatasetDetail:
    """Everything the dataset page shows."""

    dataset: Dataset
    schema: list[SchemaColumn]
    profile: DatasetProfile
    declared: list[CheckLine]
    other_checks: list[CheckLine]
    sources: list[SourceLine]
    runs: DatasetUses
    charts: list[Chart]
    chart_of: dict[str, int]
    """The index in ``charts`` of each profiled column's chart."""


def dataset_detail(workspace: Workspace, ref: str) -> DatasetDetail:
    dataset = workspace.datasets.get_dataset(ref)
    profile = profile_of_dataset(workspace, dataset)
    private = private_columns(dataset)
    charts: list[Chart] = []
    chart_of: dict[str, int] = {}
    for column in profile.columns:
        chart = column_chart(column, private=column.name in private)
        if chart is not None:
            chart_of[column.name] = len(charts)
            charts.append(chart)
    declared, other = checks_of(dataset.validation)
    return DatasetDetail(
        dataset=dataset,
        schema=schema_of(dataset),
        profile=profile,
        declared=declared,
        other_checks=other,
        sources=sources_of(dataset),
        runs=runs_of_dataset(workspace.metadata, dataset.id),
        charts=charts,
        chart_of=chart_of,
    )


# -- charts ------------------------------------------------------------------------------------


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text[:10] if len(text) >= 19 and text[4] == "-" else text  # ISO datetimes: the day


def _bars(title: str, description: str, labels: list[str], counts: list[int]) -> Chart:
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 44, "right": 8, "top": 8, "bottom": 28},
        "xAxis": {
            "type": "category",
            "data": labels,
            "axisLabel": {"fontSize": 10, "hideOverlap": True},
        },
        "yAxis": {"type": "value", "axisLabel": {"fontSize": 10}},
        "series": [{"type": "bar", "data": counts, "barCategoryGap": "8%"}],
    }
    return Chart(title, description, options)


def column_chart(column: ColumnProfile, *, private: bool = False) -> Chart | None:
    """A small chart of one column: its histogram (numbers, datetimes), its most frequent
    values (text, but never a private column's), or its true and false counts."""
    if column.kind in ("numeric", "datetime") and column.histogram and column.histogram.counts:
        edges, counts = column.histogram.edges, list(column.histogram.counts)
        labels = [f"{_short(edges[i])}–{_short(edges[i + 1])}" for i in range(len(counts))]
        description = f"histogram of {column.count:,} values in {len(counts)} bins"
        return _bars(f"{column.name}", description, labels, counts)
    if column.kind == "string" and column.top and not private:
        top = list(column.top)
        description = f"the {len(top)} most frequent of {column.distinct or 0:,} distinct values"
        return _bars(column.name, description, [t.value for t in top], [t.count for t in top])
    if column.kind == "boolean" and column.count:
        counts = [column.true_count, column.false_count]
        return _bars(column.name, "true and false counts", ["true", "false"], counts)
    return None


# -- diff --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A statistic before (``a``) and after (``b``)."""

    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return bool(self.a != self.b)


@dataclass(frozen=True)
class ColumnChange:
    """What changed in one column both datasets have."""

    name: str
    kind: str | None
    dtype: Change
    missing_share: Change
    distinct: Change
    mean: Change | None
    minimum: Change | None
    maximum: Change | None
    psi: float | None
    psi_method: str | None
    top_values: list[tuple[str, float | None, float | None]]
    """Text columns: each listed value's share of the present values before and after."""

    @property
    def shifted(self) -> bool:
        return self.psi is not None and self.psi > PSI_SHIFT


@dataclass(frozen=True)
class DatasetDiff:
    a: Dataset
    b: Dataset
    rows: Change
    added: list[str]
    removed: list[str]
    retyped: list[tuple[str, str, str]]
    columns: list[ColumnChange]
    chart: Chart | None


def _change(found: dict[str, Any] | None) -> Change | None:
    return None if not found else Change(found.get("a"), found.get("b"))


def _frame(workspace: Workspace, dataset: Dataset) -> Any:
    import polars as pl

    return pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(dataset.artifact_sha256)))


def dataset_diff(workspace: Workspace, ref: str, against: str) -> DatasetDiff:
    """What changed from the dataset ``against`` (the baseline) to ``ref``: as ``mlship data diff
    AGAINST REF`` reports it."""
    from mlship.data.profile import column_stabilities, diff_profiles

    if not against.strip():
        raise MlshipError("against: name the dataset to compare with (a hash prefix or PIPELINE~N)")
    b = workspace.datasets.get_dataset(ref)
    a = workspace.datasets.get_dataset(against.strip())
    stabilities = column_stabilities(_frame(workspace, a), _frame(workspace, b))
    diff = diff_profiles(
        profile_of_dataset(workspace, a).to_json(),
        profile_of_dataset(workspace, b).to_json(),
        stabilities,
    )
    private = private_columns(a) | private_columns(b)
    columns = []
    for column in diff["columns"]:
        tops = [
            (str(t["value"]), t.get("a"), t.get("b"))
            for t in column.get("top_values") or []
            if column["name"] not in private
        ]
        columns.append(
            ColumnChange(
                name=column["name"],
                kind=column.get("kind"),
                dtype=Change(column["dtype"]["a"], column["dtype"]["b"]),
                missing_share=Change(column["missing_share"]["a"], column["missing_share"]["b"]),
                distinct=Change(column["distinct"]["a"], column["distinct"]["b"]),
                mean=_change(column.get("mean")),
                minimum=_change(column.get("min")),
                maximum=_change(column.get("max")),
                psi=column.get("psi"),
                psi_method=column.get("psi_method"),
                top_values=sorted(tops, key=lambda t: -(t[2] or 0.0))[:10],
            )
        )
    retyped = [(c["column"], str(c["a"]), str(c["b"])) for c in diff["dtype_changed"]]
    return DatasetDiff(
        a=a,
        b=b,
        rows=Change(diff["rows"]["a"], diff["rows"]["b"]),
        added=list(diff["added"]),
        removed=list(diff["removed"]),
        retyped=retyped,
        columns=columns,
        chart=psi_chart(columns),
    )


def psi_chart(columns: list[ColumnChange]) -> Chart | None:
    """The stability index of every compared column, the shift threshold marked."""
    compared = [c for c in columns if c.psi is not None]
    if not compared:
        return None
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 56, "right": 24, "top": 24, "bottom": 72},
        "xAxis": {
            "type": "category",
            "data": [c.name for c in compared],
            "axisLabel": {"rotate": 30},
        },
        "yAxis": {"type": "value", "name": "PSI"},
        "series": [
            {
                "type": "bar",
                "data": [round(c.psi or 0.0, 6) for c in compared],
                "markLine": {
                    "symbol": "none",
                    "silent": True,
                    "data": [{"yAxis": PSI_SHIFT, "name": "shift"}],
                },
            }
        ],
    }
    shifted = sum(1 for c in compared if c.shifted)
    description = (
        f"population stability index of {len(compared)} columns; {shifted} above {PSI_SHIFT}"
    )
    return Chart("Distribution shift by column", description, options)
