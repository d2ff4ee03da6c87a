"""Storage is measured per dataset, model version, report and log, billed once per address to
whoever the registry says, and priced per GB-month of its class for the time it was kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlship.costs.items import Owners, window
from mlship.costs.ledger import USAGE, UsageRecord, write_usage
from mlship.costs.storage import (
    MONTH,
    NOBODY,
    Kept,
    artifacts_kept,
    class_prices,
    deployment_models,
    logs_kept,
    storage_items,
)
from mlship.price_catalog import shipped_catalog
from mlship.prices import GB
from mlship.store.entities import Dataset, ModelVersion, RegisteredModel, Run
from mlship.store.logstore import FEEDBACK, LocalLogStore, part_name

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def address(n: int) -> str:
    return f"{n:064x}"


def run(run_id: str, owner: str, started: datetime, dataset_id: int | None = None,
        report: str | None = None, tags: dict[str, Any] | None = None) -> Run:  # fmt: skip
    return Run(
        id=run_id, pipeline="churn", status="succeeded", user=owner, owner=owner,
        tags=tags or {}, task="classification", metric="roc_auc", spec_path="s.yaml",
        spec_hash="h", spec={}, environment={}, started_at=started, dataset_id=dataset_id,
        finished_at=started + timedelta(minutes=1), report_sha256=report,
    )  # fmt: skip


def dataset(dataset_id: int, data: str, quarantine: str | None, profile: str | None) -> Dataset:
    return Dataset(
        id=dataset_id, data_hash=str(dataset_id) * 64, artifact_sha256=data, n_rows=10,
        n_columns=2, columns=[], sources=[], created_at=T0, quarantine_sha256=quarantine,
        profile_sha256=profile,
    )  # fmt: skip


def model(
    name: str, owner: str, team: str | None, runs: list[tuple[str, str, int]]
) -> RegisteredModel:
    """A model whose versions are (run id, artifact address, artifact size)."""
    versions = tuple(
        ModelVersion(
            id=i, model_id=1, version=i, run_id=run_id, dataset_hash="d", estimator="e",
            params={}, artifact_sha256=sha, artifact_size=size, signature={}, metrics={},
            created_by=owner, created_at=T0 + timedelta(days=1), stage="production", tags={},
        )
        for i, (run_id, sha, size) in enumerate(runs, start=1)
    )  # fmt: skip
    tags = {"team": team} if team else {}
    return RegisteredModel(
        id=1, name=name, created_at=T0, tags=tags, owner=owner, versions=versions
    )


def test_artifacts_are_billed_once_to_the_first_run_and_the_model_that_kept_them() -> None:
    sizes = {address(1): 1000, address(2): 200, address(3): 30, address(4): 4000, address(5): 7}
    runs = [
        run("r-late", "bob", T0 + timedelta(days=2), dataset_id=1, report=address(5)),
        run("r-first", "ann", T0 + timedelta(days=1), dataset_id=1, tags={"team": "ops"}),
        run("r-other", "cat", T0, dataset_id=2),
    ]
    models = [model("churn", "dana", "fraud", [("r-first", address(4), 4000)])]
    owners = Owners.of(models)
    datasets = [
        dataset(1, address(1), address(2), address(3)),
        dataset(2, address(1), None, address(9)),  # shares the data; its profile is gone
        dataset(3, address(6), None, None),  # never trained on
    ]
    sizes[address(6)] = 50
    kept = artifacts_kept(datasets, models, runs, owners, sizes.get)
    found = {(k.what, k.source): k for k in kept}
    first = found[("dataset", "1" * 12)]
    # The dataset goes to the first run that used it, whose model is registered: the model's.
    assert (first.stored_bytes, first.owner, first.team, first.model) == (
        1230,
        "dana",
        "fraud",
        "churn",
    )
    # Shared bytes are billed once and a missing artifact counts nothing: dataset 2 keeps none.
    assert ("dataset", "2" * 12) not in found
    unused = found[("dataset", "3" * 12)]
    assert (unused.stored_bytes, unused.owner, unused.team) == (50, None, None)
    version = found[("model", "churn:1")]
    assert (version.stored_bytes, version.owner, version.team, version.stage) == (
        4000, "dana", "fraud", "production",
    )  # fmt: skip
    report = found[("report", "r-late")]
    assert (report.stored_bytes, report.owner, report.team) == (7, "bob", None)
    assert sum(k.stored_bytes for k in kept) == sum(sizes.values())


def test_a_run_not_yet_registered_pays_with_its_own_owner_and_team_tag() -> None:
    runs = [run("r1", "ann", T0, dataset_id=1, tags={"team": "ops"})]
    kept = artifacts_kept(
        [dataset(1, address(1), None, None)], [], runs, Owners(), {address(1): 5}.get
    )
    assert [(k.owner, k.team, k.model) for k in kept] == [("ann", "ops", None)]


def test_logs_are_measured_per_part_and_billed_to_their_deployment_s_model(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path / "logs")
    day = 86400 * 10**9
    start_ns = int((T0 + timedelta(days=5)).timestamp() * 1e9)
    store.put("predictions/web", part_name(start_ns - 3 * day), b"a" * 100)  # before the start
    store.put("predictions/web", part_name(start_ns + day + 5), b"b" * 40)
    store.put("predictions/web", part_name(start_ns + day + 9), b"c" * 2)
    store.put("predictions/batch", part_name(start_ns + 2 * day), b"d" * 8)
    store.put(FEEDBACK, part_name(start_ns), b"e" * 16)
    record = UsageRecord(
        kind="serving", started_at=T0, ended_at=T0 + timedelta(hours=1), model="churn",
        version=1, deployment="web",
    )  # fmt: skip
    write_usage(store, [record])
    models = [model("churn", "dana", "fraud", [("r1", address(1), 1)])]
    kept, unmeasured = logs_kept(
        store, T0 + timedelta(days=5), Owners.of(models), deployment_models([record])
    )
    assert unmeasured == []
    web = [k for k in kept if k.source == "predictions/web"]
    assert [(k.since, k.stored_bytes) for k in web] == [
        (T0 + timedelta(days=5), 100),  # older parts count from the start
        (T0 + timedelta(days=6), 42),  # the day they were written
    ]
    assert {(k.owner, k.team, k.model, k.stage) for k in web} == {
        ("dana", "fraud", "churn", "production")
    }
    shared = {k.source: k for k in kept if k.source != "predictions/web"}
    assert shared["predictions/batch"].owner is None and shared[FEEDBACK].team is None
    ledger_bytes = sum(p.stat().st_size for p in (tmp_path / "logs" / USAGE).glob("part-*"))
    assert shared[USAGE].stored_bytes == ledger_bytes > 0
    assert sum(k.stored_bytes for k in kept) == 100 + 42 + 8 + 16 + ledger_bytes


def test_storage_is_priced_per_gb_month_for_the_time_kept_and_cut_by_windows() -> None:
    one_gb = Kept(what="dataset", source="x", stored_bytes=GB, since=T0, team="fraud")
    later = Kept(what="log", source="y", stored_bytes=GB // 2, since=T0 + MONTH)
    end = T0 + 2 * MONTH
    items = storage_items([one_gb, later], end, lambda cls: 0.5)
    assert [i.cost for i in items] == pytest.approx([1.0, 0.25])
    assert items[0].team == "fraud" and items[0].storage_class == "standard"
    assert items[0].kind == "storage" and items[0].stored_bytes == GB
    (half,) = window(items[:1], T0 + MONTH, end)
    assert half.cost == pytest.approx(0.5) and half.stored_bytes == GB
    written_after = Kept(what="log", source="z", stored_bytes=GB, since=end + MONTH)
    assert storage_items([written_after], end, lambda cls: 1.0)[0].cost == 0.0
    assert NOBODY.owner is None


def test_classes_are_priced_from_the_catalog_else_the_default() -> None:
    price_of = class_prices(0.03, shipped_catalog().storage)
    assert price_of("standard") == 0.03
    assert price_of("s3-glacier-instant") == 0.004


def test_tiered_artifacts_are_billed_at_their_cold_class() -> None:
    # A dataset whose data ``mlship gc`` moved to the cold tier, its profile left where it was.
    data, profile = address(1), address(2)
    sizes = {data: 3 * GB, profile: GB}
    cold = {data}
    kept = artifacts_kept(
        [dataset(1, data, None, profile)],
        [],
        [run("r1", "ann", T0, dataset_id=1)],
        Owners(),
        sizes.get,
        class_of=lambda sha256: "s3-standard-ia" if sha256 in cold else None,
    )
    assert sorted((k.storage_class, k.stored_bytes) for k in kept) == [
        ("s3-standard-ia", 3 * GB),
        ("standard", GB),
    ]
    assert {k.owner for k in kept} == {"ann"}
    price = class_prices(0.023, shipped_catalog().storage)
    items = storage_items(kept, T0 + MONTH, price)
    by_class = {item.storage_class: item.cost for item in items}
    assert by_class["s3-standard-ia"] == pytest.approx(3 * 0.0125)
    assert by_class["standard"] == pytest.approx(0.023)
