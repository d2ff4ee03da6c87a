"""What the runs pages read: one page of runs (filter, search, sort, columns), a run's detail,
and the trials of its tuning searches.

The list asks the store's indexed search (:meth:`~mlship.store.repositories.Runs.search_runs`)
the same :class:`~mlship.store.run_search.RunQuery` that ``mlship runs list --filter`` asks, so
the page's filter box takes the same language and a page of 50 out of 10,000 runs reads 50 rows.
The request's parameters are kept as typed (:class:`RunsRequest`), so a filter the parser refuses
comes back in its box, with the parser's message (and the character it stopped at) beside it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mlship.data.readers.masking import mask_text
from mlship.errors import MlshipError
from mlship.store.entities import Note, Run
from mlship.store.liveness import FINISHED
from mlship.store.run_search import (
    MAX_COLUMNS,
    Condition,
    FilterError,
    RunFields,
    RunPage,
    RunQuery,
    SortKey,
    parse_filter,
    parse_sort,
)
from mlship.workspace import Workspace

PAGE_SIZE = 50
STATUSES = ("running", *FINISHED)
DEFAULT_SORT = "started:desc"
DEFAULT_METRICS = 3
"""How many metrics the list shows when no columns are chosen: the newest scored run's."""
OFFERED = 200
"""The most metric (and param) names the column chooser offers, alphabetically."""
MAX_FILTER_CHARS = 4000
TEXT_SORTS = ("pipeline", "status", "owner")
"""Columns whose first click sorts A to Z; every other column's sorts the largest first."""
PARAMETERS = ("filter", "q", "status", "owner", "tag", "sort", "page", "columns")


@dataclass(frozen=True)
class RunsRequest:
    """The runs page's parameters as they were sent (so a bad one can be shown back as typed).

    ``owner`` and ``tag`` (``KEY=VALUE``) are the list's older filters, still read so that old
    links work; the filter box says the same with ``owner = ann and tag.team = red``.
    ``columns`` is None when the request names none (the defaults are shown) and empty when it
    names none on purpose."""

    filter: str = ""
    text: str = ""
    status: str = ""
    owner: str = ""
    tag: str = ""
    sort: str = DEFAULT_SORT
    page: str = "1"
    columns: tuple[str, ...] | None = None

    @classmethod
    def of(cls, values: Mapping[str, Sequence[str]]) -> RunsRequest:
        """The request of ``values`` (each parameter's values, as a query string has them):
        never refused here; :meth:`query` says what is wrong."""

        def last(name: str) -> str:
            found = values.get(name) or [""]
            return found[-1].strip()

        columns = None
        if "columns" in values:  # repeated, and each one may list several (see chosen)
            columns = tuple(dict.fromkeys(v.strip() for v in values["columns"] if v.strip()))
        return cls(
            filter=last("filter"),
            text=last("q"),
            status=last("status"),
            owner=last("owner"),
            tag=last("tag"),
            sort=last("sort") or DEFAULT_SORT,
            page=last("page") or "1",
            columns=columns,
        )

    def chosen(self, offered: Collection[str]) -> tuple[str, ...] | None:
        """The columns asked for (None when none are): each ``columns`` value that is the name
        of one of the ``offered`` columns whole (a name may hold a comma), and the
        comma-separated names of any other."""
        if self.columns is None:
            return None
        named: list[str] = []
        for value in self.columns:
            named += [value] if value in offered else [n.strip() for n in value.split(",")]
        return tuple(dict.fromkeys(name for name in named if name))

    def query(self, columns: Sequence[str] = ()) -> RunQuery:
        """The store's query of this request, showing ``columns``; a :class:`FilterError`
        naming the parameter (and, for the filter, the character) when one cannot be read."""
        sent = {"filter": self.filter, "q": self.text, "status": self.status}
        sent |= {"owner": self.owner, "tag": self.tag, "sort": self.sort}
        sent["columns"] = ",".join(self.columns or ())
        for name, value in sent.items():  # no database stores it; PostgreSQL refuses it
            if "\x00" in value:
                raise FilterError(f"{name}: cannot contain the NUL character (\\x00)")
        try:
            sort = parse_sort(self.sort)
        except FilterError as exc:
            raise FilterError(f"sort: {exc}") from None
        page = self.page
        if not (page.isascii() and page.isdigit()) or int(page) < 1 or len(page) > 9:
            raise FilterError(f"page: expected a page number from 1, got {page!r}")
        for name in columns:
            head, dot, key = name.partition(".")
            if not (dot and head in ("metric", "param") and key):
                raise FilterError(f"columns: expected metric.NAME or param.NAME, got {name!r}")
        if len(columns) > MAX_COLUMNS:
            raise FilterError(f"columns: at most {MAX_COLUMNS}, got {len(columns)}")
        return RunQuery(
            conditions=self._conditions(),
            text=self.text or None,
            sort=sort,
            page=int(page),
            page_size=PAGE_SIZE,
            columns=tuple(columns),
        )

    def _conditions(self) -> tuple[Condition, ...]:
        """The filter's conditions, and those of the status, owner and tag parameters."""
        if len(self.filter) > MAX_FILTER_CHARS:
            raise FilterError(
                f"filter: at most {MAX_FILTER_CHARS} characters, got {len(self.filter)}"
            )
        conditions = list(parse_filter(self.filter))
        if self.status:
            if self.status not in STATUSES:
                raise FilterError(
                    f"status: expected one of {', '.join(STATUSES)}, got {self.status!r}"
                )
            conditions.append(Condition(field="status", op="=", value=self.status))
        if self.owner:
            conditions.append(_checked("owner", "owner", self.owner))
        if self.tag:
            key, sep, value = self.tag.partition("=")
            if not sep or not key.strip():
                raise FilterError(f"tag: expected KEY=VALUE, got {self.tag!r}")
            conditions.append(_checked("tag", f"tag.{key.strip()}", value.strip()))
        return tuple(conditions)

    @property
    def sort_key(self) -> SortKey | None:
        """The sort asked for, when it can be read."""
        try:
            return parse_sort(self.sort)
        except FilterError:
            return None

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The request as query parameters, for links to other pages and sorts: the defaults
        left out, so the links stay short."""
        values: dict[str, Any] = {
            "filter": self.filter,
            "q": self.text,
            "status": self.status,
            "owner": self.owner,
            "tag": self.tag,
            "sort": str(self.sort_key or self.sort),
            "page": self.page,
            "columns": self.columns,
        }
        values.update(changes)
        found: list[tuple[str, str]] = []
        for name in PARAMETERS:
            value = values[name]
            if name == "columns":
                if value is not None:
                    found += [("columns", n) for n in value] or [("columns", "")]
            elif value and (name, str(value)) not in (("sort", DEFAULT_SORT), ("page", "1")):
                found.append((name, str(value)))
        return found

    def sorted_by(self, field: str) -> list[tuple[str, str]]:
        """The parameters of the first page sorted by ``field``: the other way round when the
        list is sorted by it already; else the largest (or, for text, A) first."""
        current = self.sort_key
        if current is not None and current.field == field:
            descending = not current.descending
        else:
            descending = field not in TEXT_SORTS and not field.startswith("param.")
        return self.params(sort=str(SortKey(field=field, descending=descending)), page="1")


def _checked(name: str, field: str, value: str) -> Condition:
    try:
        return Condition(field=field, op="=", value=value)
    except FilterError as exc:
        raise FilterError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class RunList:
    """What the runs page shows: the request as typed, the page found (None when the request
    was refused, with ``error`` saying why), the named columns of its rows, and the names of
    the metrics and params the runs have, for choosing columns."""

    request: RunsRequest
    found: RunPage | None
    shown: tuple[str, ...]
    metrics: tuple[str, ...]
    params: tuple[str, ...]
    error: str | None = None

    @property
    def offered(self) -> frozenset[str]:
        """The columns the chooser has a box for."""
        return frozenset(
            [*(f"metric.{n}" for n in self.metrics), *(f"param.{n}" for n in self.params)]
        )

    @property
    def sort(self) -> SortKey | None:
        return self.request.sort_key

    def chosen(self, name: str) -> bool:
        """Whether the column chooser ticks ``name``."""
        return name in self.shown

    @property
    def others(self) -> str:
        """The columns asked for that the chooser has no box for, as its text field shows them."""
        return ", ".join(
            n for n in self.request.chosen(self.offered) or () if n not in self.offered
        )

    @property
    def sort_value(self) -> str:
        """The sort the filter form sends again: empty for the default order, and for a sort
        that cannot be read (the form then sends none, and the next filter is not refused)."""
        key = self.request.sort_key
        return "" if key is None or str(key) == DEFAULT_SORT else str(key)


def find_runs(workspace: Workspace, request: RunsRequest) -> RunList:
    """The page of runs ``request`` asks for (the last one when it asks for a page beyond),
    or the reason it cannot be read."""
    fields = workspace.runs.run_fields(OFFERED)
    metrics, params = fields.metrics, fields.params
    defaults = _defaults(fields) if request.columns is None else ()
    offered = RunList(request, None, (), metrics, params).offered
    try:
        query = request.query(request.chosen(offered) or defaults)
        found = workspace.runs.search_runs(query)
        if found.total and found.page > found.pages:
            query = replace(query, page=found.pages)
            found = workspace.runs.search_runs(query)
    except FilterError as exc:
        return RunList(request, None, (), metrics, params, str(exc))
    shown = query.shown
    if query.page != int(request.page):
        request = replace(request, page=str(query.page))
    return RunList(request, found, shown, metrics, params)


def default_columns(workspace: Workspace) -> tuple[str, ...]:
    """The metrics the newest run that has any recorded (its selection metric first), at most
    :data:`DEFAULT_METRICS`: what a list shows before anyone chooses."""
    return _defaults(workspace.runs.run_fields(OFFERED))


def _defaults(fields: RunFields) -> tuple[str, ...]:
    return tuple(f"metric.{key}" for key in fields.newest[:DEFAULT_METRICS])


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
