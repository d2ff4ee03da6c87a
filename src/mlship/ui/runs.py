"""What the runs pages read: one query of runs (filter, search, sort, one page), a run's detail,
and the trials of its tuning searches.

The list is read by :func:`find_runs` alone, so the store's indexed search can replace its body
without touching a page. For now it reads the store's newest runs (filtered by owner and tag in
SQL) and filters, searches, sorts and cuts the page here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from mlship.data.readers.masking import mask_text
from mlship.errors import MlshipError
from mlship.store.entities import Candidate, Note, Run
from mlship.store.liveness import FINISHED
from mlship.workspace import Workspace

PAGE_SIZE = 50
SCANNED = 100_000
"""The most runs the list reads from the store at once."""

Sort = Literal["started", "-started", "score", "-score"]
SORTS: dict[str, str] = {
    "-started": "newest first",
    "started": "oldest first",
    "-score": "best score first",
    "score": "worst score first",
}
STATUSES = ("running", *FINISHED)


@dataclass(frozen=True)
class RunQuery:
    """The runs list's filters, as the page's form sends them."""

    owner: str | None = None
    status: str | None = None
    tag: tuple[str, str] | None = None
    text: str | None = None
    sort: Sort = "-started"
    page: int = 1

    @classmethod
    def parse(cls, values: dict[str, str]) -> RunQuery:
        """The query of a request's parameters; a bad value is a clear error naming it."""
        sort = values.get("sort") or "-started"
        if sort not in SORTS:
            raise MlshipError(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
        status = values.get("status") or None
        if status is not None and status not in STATUSES:
            raise MlshipError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
        tag = None
        if raw := (values.get("tag") or "").strip():
            key, sep, value = raw.partition("=")
            if not sep or not key.strip():
                raise MlshipError(f"tag: expected KEY=VALUE, got {raw!r}")
            tag = (key.strip(), value.strip())
        page_text = values.get("page") or "1"
        if not page_text.isdigit() or int(page_text) < 1 or len(page_text) > 9:
            raise MlshipError(f"page: expected a page number from 1, got {page_text!r}")
        return cls(
            owner=(values.get("owner") or "").strip() or None,
            status=status,
            tag=tag,
            text=(values.get("q") or "").strip() or None,
            sort=sort,  # type: ignore[arg-type]
            page=int(page_text),
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The query as request parameters (for links to other pages or sorts)."""
        values = {
            "owner": self.owner or "",
            "status": self.status or "",
            "tag": f"{self.tag[0]}={self.tag[1]}" if self.tag else "",
            "q": self.text or "",
            "sort": self.sort,
            "page": str(self.page),
        }
        values.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value and value != "-started"}


@dataclass(frozen=True)
class RunRow:
    """One line of the runs list."""

    run: Run
    best: Candidate | None

    @property
    def score(self) -> float | None:
        return None if self.best is None else self.best.cv_mean


@dataclass(frozen=True)
class RunPage:
    """One page of runs and where it sits in all that match."""

    rows: list[RunRow]
    total: int
    page: int
    pages: int
    owners: list[str] = field(default_factory=list)


def _best(run: Run) -> Candidate | None:
    chosen = [c for c in run.candidates if c.selected] or [
        c for c in run.candidates if c.name == run.best_candidate
    ]
    return chosen[0] if chosen else None


def _haystack(run: Run, best: Candidate | None) -> str:
    parts = [run.id, run.pipeline, run.owner, run.user, run.status, run.metric, run.task]
    parts += [f"{key}={value}" for key, value in run.tags.items()]
    for candidate in run.candidates:
        parts += [candidate.name, candidate.estimator]
        parts += [f"{key}={value}" for key, value in candidate.params.items()]
    if best is not None:
        parts.append(f"{run.metric}={best.cv_mean}")
    return "\n".join(parts).lower()


def find_runs(workspace: Workspace, query: RunQuery) -> RunPage:
    """The page of runs ``query`` asks for, and how many match in all."""
    tags = {query.tag[0]: query.tag[1]} if query.tag else None
    runs = workspace.tracking.list_runs(limit=SCANNED, owner=query.owner, tags=tags)
    owners = sorted({run.owner for run in runs})
    rows = [RunRow(run, _best(run)) for run in runs]
    if query.status:
        rows = [row for row in rows if row.run.status == query.status]
    if query.text:
        words = query.text.lower().split()
        rows = [row for row in rows if all(w in _haystack(row.run, row.best) for w in words)]
    if query.sort in ("score", "-score"):
        scored = [row for row in rows if row.score is not None and math.isfinite(row.score)]
        unscored = [row for row in rows if row not in scored]
        scored.sort(key=lambda row: row.score or 0.0, reverse=query.sort == "-score")
        rows = scored + unscored
    else:
        rows.sort(key=lambda row: row.run.started_at, reverse=query.sort == "-started")
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = min(query.page, pages)
    start = (page - 1) * PAGE_SIZE
    return RunPage(rows[start : start + PAGE_SIZE], len(rows), page, pages, owners)


def source_label(source: Any) -> str:
    """How the run page names one of a dataset's sources: its kind, name and where it is (a
    database URL's password hidden, should one have been stored)."""
    if not isinstance(source, dict):
        return mask_text(str(source))
    where = source.get("path") or source.get("url") or source.get("where") or ""
    parts = [str(source.get(key)) for key in ("kind", "name") if source.get(key)]
    label = " ".join([*parts, str(where)]).strip() or json.dumps(source, default=str)
    if source.get("query"):
        label += f": {source['query']}"
    return mask_text(label)


@dataclass(frozen=True)
class RunDetail:
    """Everything the run page shows."""

    run: Run
    notes: list[Note]
    has_report: bool


def run_detail(workspace: Workspace, ref: str) -> RunDetail:
    run = workspace.tracking.get_run(ref)
    return RunDetail(run, workspace.tracking.notes("run", run.id), bool(run.report_sha256))


def report_html(workspace: Workspace, ref: str) -> str:
    """The run's evaluation report, as the self-contained page ``mlship runs report`` writes."""
    from mlship.evaluation import render_evaluation_html

    run = workspace.tracking.get_run(ref)
    if not run.report_sha256:
        raise MlshipError(f"run {run.id[:8]} has no evaluation report (status: {run.status})")
    stored = json.loads(workspace.artifacts.get_bytes(run.report_sha256))
    name = f"{run.pipeline}-run-{run.id[:8]}"
    return render_evaluation_html(name, stored["evaluation"], stored["run"])


@dataclass(frozen=True)
class Trials:
    """The finished trials of one tuning search: each trial's parameters and score."""

    run_id: str
    candidate: str
    params: list[str]
    values: list[list[Any]]
    """One row per trial: the parameters in ``params`` order, then the score."""


def tuning_trials(workspace: Workspace, run: Run) -> list[Trials]:
    """The completed trials of every tuning search of ``run`` (none when it tuned nothing).

    A run tuned on this machine keeps its studies in Optuna's tables; one tuned by a client of
    the tracking server, in the run's journal in the metadata store: both are read."""
    from optuna.storages import JournalStorage

    from mlship.remote.metadata import RemoteJournal
    from mlship.train.tuning import trials_of

    if not any((candidate.tuning or {}).get("study") for candidate in run.candidates):
        return []
    searches = trials_of(workspace.tuning_storage(run.id), run.id)
    if not searches and workspace.journals.read_journal(run.id):
        searches = trials_of(JournalStorage(RemoteJournal(workspace.journals, run.id)), run.id)
    found = []
    for study, records in searches.items():
        done = [t for t in records if t.state == "COMPLETE" and t.value is not None]
        names = sorted({name for trial in done for name in trial.params})
        rows = [[_plain(t.params.get(name)) for name in names] + [t.value] for t in done]
        found.append(Trials(run.id, study, names, rows))
    return found


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float) else str(value)
