"""What keeping things costs: the bytes each dataset, model version, log and report holds in
storage, priced per GB-month of its storage class.

Storage is measured as it is now, not replayed: a thing is billed from when it was written (or
the start of the report, when that is later) to the end of the report, at what it takes today.
Artifacts are content-addressed, so bytes two records share are billed once, to the first that
names them (datasets, then model versions, then reports). Logs grow by parts, so a log is billed
day by day: the parts written on one day from that day on, the ones written before the report
from its start.

Who pays follows the registry as the other costs do (:mod:`mlship.costs.items`): a model
version's bytes go to its model's owner and team; a dataset's to the first run that trained on
it (its model's owner and team once registered); a report's to its run; a deployment's
prediction log to the model its server recorded usage for. Labels, batch predictions and the
usage ledger itself are shared, so nobody's in particular.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlship.costs.items import CostItem, Owners, Payer
from mlship.costs.ledger import USAGE, UsageRecord
from mlship.price_catalog import StorageClass
from mlship.prices import GB
from mlship.store.entities import Dataset, RegisteredModel, Run
from mlship.store.logstore import FEEDBACK, LogStore, part_time_ns, prediction_logs

MONTH = timedelta(days=30.44)
"""The month a GB-month is quoted per: a calendar month on average (365.25 / 12 days)."""

STANDARD = "standard"
"""The storage class of the local disk and of object storage unless the settings say another."""

SizeOf = Callable[[str], int | None]
"""The bytes an artifact takes in the store by its address; None when it is not there or the
store cannot tell."""

ClassOf = Callable[[str], str | None]
"""The storage class an artifact is kept in by its address (a tiered one's cold class); None
for the report's default class."""


@dataclass(frozen=True, kw_only=True)
class Kept:
    """Bytes one thing keeps in storage since a time, and who they are billed to."""

    what: str
    """``dataset``, ``model``, ``report`` or ``log``."""
    source: str
    """The dataset's hash, ``MODEL:VERSION``, the run id of a report, a log's name."""
    stored_bytes: int
    since: datetime
    storage_class: str = STANDARD
    model: str | None = None
    version: int | None = None
    stage: str | None = None
    owner: str | None = None
    team: str | None = None


NOBODY = Payer(model=None, version=None, stage=None, owner=None, team=None)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _kept(what: str, source: str, size: int, since: datetime, payer: Payer, cls: str) -> Kept:
    return Kept(
        what=what,
        source=source,
        stored_bytes=size,
        since=_utc(since),
        storage_class=cls,
        model=payer.model,
        version=payer.version,
        stage=payer.stage,
        owner=payer.owner,
        team=payer.team,
    )


def artifacts_kept(
    datasets: Iterable[Dataset],
    models: Iterable[RegisteredModel],
    runs: Sequence[Run],
    owners: Owners,
    size_of: SizeOf,
    storage_class: str = STANDARD,
    class_of: ClassOf | None = None,
) -> list[Kept]:
    """The artifact store's bytes by dataset (data, quarantine and profile), model version and
    run report, each address billed once (see the module docstring), per storage class: a
    thing whose artifacts ``mlship gc`` tiered is billed at the cold class for those."""
    billed: set[str] = set()
    kept: list[Kept] = []

    def add(what: str, source: str, addresses: Iterable[str | None], since: datetime,
            payer: Payer, known: int | None = None) -> None:  # fmt: skip
        sizes: dict[str, int] = defaultdict(int)
        for address in addresses:
            if address is None or address in billed:
                continue
            billed.add(address)
            measured = known if known is not None else size_of(address)
            kept_in = (class_of(address) if class_of is not None else None) or storage_class
            sizes[kept_in] += measured or 0
        for kept_in, size in sorted(sizes.items()):
            if size:
                kept.append(_kept(what, source, size, since, payer, kept_in))

    first_run: dict[int, Run] = {}
    for run in sorted(runs, key=lambda r: _utc(r.started_at)):
        if run.dataset_id is not None:
            first_run.setdefault(run.dataset_id, run)
    for dataset in datasets:
        user = first_run.get(dataset.id)
        payer = Payer.of_run(user, owners) if user is not None else NOBODY
        addresses = (dataset.artifact_sha256, dataset.quarantine_sha256, dataset.profile_sha256)
        add("dataset", dataset.data_hash[:12], addresses, dataset.created_at, payer)
    for model in models:
        for version in model.versions:
            payer = Payer(
                model=model.name,
                version=version.version,
                stage=version.stage,
                owner=model.owner,
                team=owners.team.get(model.name),
            )
            source = f"{model.name}:{version.version}"
            address = version.artifact_sha256
            add("model", source, [address], version.created_at, payer, version.artifact_size)
    for run in runs:
        if run.report_sha256 is not None:
            since = run.finished_at or run.started_at
            add("report", run.id, [run.report_sha256], since, Payer.of_run(run, owners))
    return kept


def deployment_models(records: Iterable[UsageRecord]) -> dict[str, tuple[str, int | None]]:
    """The model (and version) each deployment last recorded usage for."""
    found: dict[str, tuple[str, int | None]] = {}
    for record in sorted(records, key=lambda r: r.ended_at):
        if record.deployment and record.model:
            found[record.deployment] = (record.model, record.version)
    return found


def logs_kept(
    store: LogStore,
    start: datetime,
    owners: Owners,
    deployments: Mapping[str, tuple[str, int | None]],
    storage_class: str = STANDARD,
) -> tuple[list[Kept], list[str]]:
    """The bytes of the prediction logs, the labels and the usage ledger, one :class:`Kept` per
    log and day its parts were written (parts older than ``start`` count from ``start``); and
    the logs whose sizes the store cannot give without reading them."""
    start = _utc(start)
    kept: list[Kept] = []
    unmeasured: list[str] = []
    for log in [*prediction_logs(store), FEEDBACK, USAGE]:
        sizes = store.sizes(log)
        if sizes is None:
            unmeasured.append(log)
            continue
        payer = NOBODY
        deployment = log.rpartition("/")[2] if log.startswith("predictions/") else None
        if deployment is not None and deployment in deployments:
            model, version = deployments[deployment]
            payer = Payer(
                model=model,
                version=version,
                stage=owners.stage.get((model, version)) if version is not None else None,
                owner=owners.owner.get(model),
                team=owners.team.get(model),
            )
        per_day: dict[datetime, int] = defaultdict(int)
        for name, size in sizes.items():
            written = datetime.fromtimestamp(part_time_ns(name) / 1e9, UTC)
            day = max(written.replace(hour=0, minute=0, second=0, microsecond=0), start)
            per_day[day] += size
        for day, size in sorted(per_day.items()):
            if size:
                kept.append(_kept("log", log, size, day, payer, storage_class))
    return kept, unmeasured


def storage_items(
    kept: Iterable[Kept], end: datetime, price_of: Callable[[str], float]
) -> list[CostItem]:
    """One ``storage`` item per :class:`Kept`, from when it was kept to ``end``: its bytes for
    that long at its class's price per GB-month (``price_of``). Things written after ``end``
    cost nothing yet."""
    end = _utc(end)
    items = []
    for one in kept:
        since = min(one.since, end)
        months = (end - since) / MONTH
        items.append(
            CostItem(
                kind="storage",
                started_at=since,
                ended_at=end,
                cost=one.stored_bytes / GB * price_of(one.storage_class) * months,
                source=f"{one.what} {one.source}",
                model=one.model,
                version=one.version,
                stage=one.stage,
                owner=one.owner,
                team=one.team,
                stored_bytes=one.stored_bytes,
                storage_class=one.storage_class,
            )
        )
    return items


def class_prices(
    default_gb_month: float, catalog: Iterable[StorageClass]
) -> Callable[[str], float]:
    """The price per GB-month of a storage class: the catalog's for a class it lists (with the
    settings' corrections), ``[prices] storage_gb_month`` for :data:`STANDARD` and any other."""
    listed = {entry.key: entry.gb_month for entry in catalog}

    def price_of(storage_class: str) -> float:
        return listed.get(storage_class, default_gb_month)

    return price_of
