"""Right-sizing: the sweep's search, the arithmetic from a replica's capacity to pods, replicas
and cost, the saved sizing, and the usage ledger's verdict on it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.costs.ledger import UsageRecord, read_usage, write_usage
from mlship.costs.provisioning import check, used
from mlship.costs.sizing import (
    Sizing,
    SizingError,
    Step,
    capacity,
    cheapest_nodes,
    load,
    load_all,
    parse_latency_ms,
    parse_seconds,
    recommend,
    save,
    sizing_path,
    sweep,
)
from mlship.price_catalog import shipped_catalog
from mlship.prices import Prices
from mlship.store.logstore import LocalLogStore

MIB = 2**20
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def replica_of(
    capacity_rps: float, cores_per_request: float = 0.004, rss_mib: int = 300
) -> Callable[[float], Step]:
    """A replica's answers as a function of the rate: within 20 ms up to ``capacity_rps``,
    queueing beyond it; CPU in proportion to the rate up to one core."""

    def step(rate: float) -> Step:
        p99 = 20.0 if rate <= capacity_rps else 20.0 * rate / capacity_rps * 10
        return Step(rate=rate, requests=int(rate * 5), failed=0, p99_ms=p99,
                    cpu_cores=min(1.0, rate * cores_per_request),
                    peak_rss_bytes=rss_mib * MIB)  # fmt: skip

    return step


def test_latencies_and_times_read_as_people_write_them() -> None:
    assert parse_latency_ms("50ms") == 50.0
    assert parse_latency_ms("0.2s") == 200.0
    assert parse_latency_ms("75") == 75.0
    assert parse_seconds("5s") == 5.0
    assert parse_seconds("500ms") == 0.5
    with pytest.raises(SizingError, match=r"--p99 'fast': expected a latency such as 50ms"):
        parse_latency_ms("fast")
    with pytest.raises(SizingError, match="above zero"):
        parse_latency_ms("0ms")
    with pytest.raises(SizingError, match=r"--duration '-1s'"):
        parse_seconds("-1s")


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_any_latency_text_is_read_or_refused_by_name(text: str) -> None:
    message = ""
    try:
        value = parse_latency_ms(text)
    except SizingError as exc:
        message = str(exc)
    if message:
        assert message.startswith(f"--p99 {text!r}")
    else:
        assert value > 0 and math.isfinite(value)


def test_the_sweep_doubles_then_bisects_to_within_a_tenth_of_the_capacity() -> None:
    seen: list[tuple[float, bool]] = []
    steps = sweep(replica_of(130), p99_ms=50, start_rate=5, max_rate=1000, max_steps=12,
                  on_step=lambda step, ok: seen.append((step.rate, ok)))  # fmt: skip
    assert [rate for rate, _ in seen[:7]] == [5, 10, 20, 40, 80, 160, 120]
    best = capacity(steps, 50)
    assert best is not None and 0.9 * 130 <= best.rate <= 130
    assert [s.rate for s in steps] == [rate for rate, _ in seen]


def test_the_sweep_stops_at_the_rate_needed_when_the_replica_keeps_up() -> None:
    steps = sweep(replica_of(10_000), p99_ms=50, start_rate=5, max_rate=30, max_steps=10)
    assert [s.rate for s in steps] == [5, 10, 20, 30]


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    capacity_rps=st.floats(0.5, 5000),
    start=st.floats(0.5, 50),
    room=st.floats(1, 400),
    max_steps=st.integers(1, 15),
)
def test_the_sweep_is_bounded_and_its_capacity_is_a_rate_that_met_the_target(
    capacity_rps: float, start: float, room: float, max_steps: int
) -> None:
    steps = sweep(replica_of(capacity_rps), p99_ms=50, start_rate=start,
                  max_rate=start * room, max_steps=max_steps)  # fmt: skip
    assert 1 <= len(steps) <= max_steps
    assert all(start <= s.rate <= start * room for s in steps)
    best = capacity(steps, 50)
    missed = [s.rate for s in steps if not s.meets(50)]
    if best is None:
        assert steps[0].rate > capacity_rps
    else:
        assert best.rate <= capacity_rps
        assert all(best.rate < rate for rate in missed)


def _sized(**changes: object) -> Sizing:
    steps = sweep(replica_of(100, cores_per_request=0.005, rss_mib=250), p99_ms=50,
                  start_rate=5, max_rate=400, max_steps=10)  # fmt: skip
    arguments: dict[str, object] = {
        "model": "churn", "version": 3, "measured_at": T0, "steps": steps, "p99_ms": 50.0,
        "rps": 200.0, "utilisation": 0.7, "availability": True, "cpu_limit": 1.0,
        "catalog": shipped_catalog(), "prices": Prices(),
    }  # fmt: skip
    arguments.update(changes)
    return recommend(**arguments)  # type: ignore[arg-type]


def test_the_recommendation_follows_from_the_measured_capacity() -> None:
    sizing = _sized()
    assert 90 <= sizing.capacity_rps <= 100
    # CPU: the cores used at capacity over the target utilisation, up to 100m.
    assert sizing.cpu_m == math.ceil(sizing.cores_used / 0.7 * 10) * 100
    assert sizing.cpu_m % 100 == 0 and sizing.cpu_m / 1000 >= sizing.cores_used / 0.7
    # Memory: the peak plus headroom, up to 64Mi; the limit above it.
    assert sizing.memory_mib == 320 and sizing.memory_limit_mib == 512
    # Replicas: the traffic over what one carries at the target.
    assert sizing.replicas == math.ceil(200 / (sizing.capacity_rps * 0.7))
    assert sizing.target_cpu_percent == 70
    assert sizing.target_rps_per_replica == math.floor(sizing.capacity_rps * 0.7)
    assert sizing.max_replicas >= sizing.replicas + 1
    recommended = sizing.options[0]
    assert (recommended.name, recommended.cpu_m, recommended.replicas) == (
        "recommended", sizing.cpu_m, sizing.replicas)  # fmt: skip
    assert recommended.on_demand_month is not None and recommended.spot_month is not None
    assert recommended.spot_month < recommended.on_demand_month
    half, double = sizing.options[1], sizing.options[2]
    assert half.replicas >= recommended.replicas >= double.replicas


def test_little_traffic_gets_two_replicas_for_availability_and_says_so() -> None:
    sizing = _sized(rps=5.0)
    assert sizing.replicas == 2 and "for availability" in sizing.replicas_reason
    alone = _sized(rps=5.0, availability=False)
    assert alone.replicas == 1
    assert alone.options[0].nodes == 1


def test_a_replica_that_never_meets_the_target_gets_no_recommendation() -> None:
    with pytest.raises(SizingError, match=r"churn:3 misses p99 5 ms even at 5 requests/s"):
        _sized(p99_ms=5.0)


def test_the_cheapest_nodes_hold_every_pod_and_none_holds_a_giant() -> None:
    catalog = shipped_catalog()
    found = cheapest_nodes(catalog, 500, 512, 9, availability=True)
    assert found is not None
    instance, nodes = found
    per_node = min(instance.vcpus * 1000 // 500, int(instance.memory_gib * 1024) // 512)
    assert nodes * per_node >= 9 and nodes >= 2
    for other in catalog.instances:  # nothing that holds them is cheaper
        fits = min(other.vcpus * 1000 // 500, int(other.memory_gib * 1024) // 512)
        if fits >= 1:
            assert max(2, math.ceil(9 / fits)) * other.on_demand_hour >= (
                nodes * instance.on_demand_hour)  # fmt: skip
    assert cheapest_nodes(catalog, 10_000_000, 512, 1, availability=False) is None


def test_a_saved_sizing_reads_back_and_a_missing_or_broken_one_is_named(tmp_path: Path) -> None:
    sizing = _sized()
    path = save(tmp_path, sizing)
    assert path == sizing_path(tmp_path, "churn", 3) == tmp_path / "sizing" / "churn-v3.json"
    assert load(tmp_path, "churn", 3) == sizing
    assert load_all(tmp_path) == {("churn", 3): sizing}
    with pytest.raises(SizingError, match=r"no sizing is saved for churn:4 .*run mlship size"):
        load(tmp_path, "churn", 4)
    data = json.loads(path.read_text())
    del data["cpu_m"]
    path.write_text(json.dumps(data))
    with pytest.raises(SizingError, match=r"churn-v3.json: missing key 'cpu_m'"):
        load(tmp_path, "churn", 3)
    path.write_text("{not json")
    with pytest.raises(SizingError, match=r"churn-v3.json: not valid JSON"):
        load(tmp_path, "churn", 3)
    data["cpu_m"] = -100
    path.write_text(json.dumps(data))
    with pytest.raises(SizingError, match=r"cpu_m: expected a whole number above zero"):
        load(tmp_path, "churn", 3)


def _serving(
    pid: int, hours: float, cores: float, memory_mib: float, kind: str = "serving"
) -> UsageRecord:
    seconds = hours * 3600
    return UsageRecord(
        kind=kind, started_at=T0, ended_at=T0 + timedelta(seconds=seconds), model="churn",
        version=3, deployment="churn-prod", cpu_seconds=cores * seconds,
        memory_byte_seconds=memory_mib * MIB * seconds, requests=1000, host="node-a", pid=pid,
    )  # fmt: skip


def test_the_ledger_tells_an_over_provisioned_version_and_what_a_smaller_request_saves(
    tmp_path: Path,
) -> None:
    sizing = _sized(rps=5.0)  # two replicas
    store = LocalLogStore(tmp_path)
    write_usage(store, [_serving(1, 2.0, 0.10, 100), _serving(2, 2.0, 0.14, 120)])
    write_usage(store, [_serving(9, 1.0, 5.0, 900, kind="batch")])  # not serving: left out
    [found] = used(read_usage(store))
    assert (found.deployment, found.model, found.version, found.replicas) == (
        "churn-prod", "churn", 3, 2)  # fmt: skip
    assert found.cores == pytest.approx(0.12) and found.memory_bytes == pytest.approx(110 * MIB)
    cpu, memory = check(found, sizing, Prices(cpu_hour=0.05, gb_hour=0.01))
    assert cpu.verdict == "over-provisioned" and cpu.would_do == "200m"
    saved = (sizing.cpu_m - 200) / 1000 * 0.05 * 730 * 2
    assert cpu.saves_month == pytest.approx(saved)
    requested = sizing.cpu_m / 1000
    assert cpu.message == (
        f"over-provisioned: uses 0.12 of {requested:g} CPU requested ({0.12 / requested:.0%}) "
        f"-> 200m would do, saves {saved:,.2f}/month"
    )
    assert memory.verdict == "over-provisioned" and memory.would_do == "192Mi"


def test_a_replica_using_more_than_its_request_is_under_provisioned() -> None:
    sizing = _sized(rps=5.0)
    [found] = used([_serving(1, 1.0, sizing.cpu_m / 1000 * 1.5, sizing.memory_mib * 0.8)])
    cpu, memory = check(found, sizing, Prices())
    assert cpu.verdict == "under-provisioned" and cpu.saves_month < 0
    assert "-> request" in cpu.message and "/month more" in cpu.message
    assert memory.verdict == "right-sized"


COLUMN_TYPES = ("integer", "float", "string", "category", "boolean", "datetime")


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    columns=st.lists(
        st.tuples(
            st.sampled_from(COLUMN_TYPES),
            st.booleans(),
            st.one_of(st.none(), st.tuples(st.integers(-(10**9), 10**9), st.integers(0, 10**6))),
            st.lists(st.text(min_size=1, max_size=8), max_size=3),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_sweeps_record_is_one_the_models_server_accepts(
    columns: list[tuple[str, bool, tuple[int, int] | None, list[str]]],
) -> None:
    from mlship.loadtest.sweep import example_record
    from mlship.serve.schemas import record_model
    from mlship.spec.models import Column
    from mlship.train.signature import Signature

    inputs = [Column(name=f"c{i}", type=kind, nullable=nullable)
              for i, (kind, nullable, _, _) in enumerate(columns)]  # fmt: skip
    signature = Signature(
        task="regression",
        inputs=inputs,
        target=Column(name="y", type="float", role="target"),
        categories={
            f"c{i}": seen
            for i, (kind, _, _, seen) in enumerate(columns)
            if kind == "category" and seen
        },
        ranges={
            f"c{i}": (float(low), float(low + width))
            for i, (kind, _, span, _) in enumerate(columns)
            if kind in ("integer", "float") and span is not None
            for low, width in [span]
        },
    )
    record = example_record(signature.to_dict())
    record_model(signature).model_validate(record)  # raises when the server would refuse it


@settings(derandomize=True, max_examples=120, deadline=None)
@given(
    key=st.sampled_from(
        [
            "cpu_m",
            "memory_mib",
            "replicas",
            "steps",
            "options",
            "measured_at",
            "target_cpu_percent",
            "capacity_rps",
            "model",
        ]
    ),
    value=st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5), st.lists(st.integers())),
)
def test_a_saved_sizing_with_any_value_changed_is_read_or_refused_by_key(
    key: str, value: object
) -> None:
    from mlship.costs.sizing import from_json, to_json

    data = to_json(_sized())
    data[key] = value
    message = ""
    try:
        sizing = from_json(json.loads(json.dumps(data)), "churn-v3.json")
    except SizingError as exc:
        message = str(exc)
    if message:
        assert message.startswith("churn-v3.json: ") and key in message
    else:
        assert getattr(sizing, key) is not None
