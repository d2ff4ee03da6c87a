"""Right-sizing a model server: from what one replica sustained under load to the requests,
limits, replica count and autoscaler target of its pods, and what each shape costs a month.

A sweep (:func:`sweep`) raises the request rate on one replica, doubling and then bisecting,
until it finds the highest rate answered within the latency target with no errors: the replica's
*capacity*. The CPU it used at that rate, over the share of a request the autoscaler should keep
it at (the *target utilisation*), is its CPU request; its peak memory plus headroom is its memory
request. Pods then run at the target utilisation when they carry the rate they can sustain times
that share, so the replica count follows from the expected traffic, and the autoscaler's CPU
target is the same share: the three figures agree by construction.

Values and arithmetic only; the sweep is handed the function that measures one step, so the
model server and the load generator (in :mod:`mlship.loadtest.sweep`) stay out of the domain.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlship.errors import MlshipError
from mlship.price_catalog import InstanceType, PriceCatalog
from mlship.prices import GB, Prices

MIB = 2**20
MONTH_HOURS = 730.0
"""Hours in an average month (365 * 24 / 12), as cloud price pages count them."""

CPU_STEP_M = 100
"""CPU requests are rounded up to this many millicores."""

MEMORY_STEP_MIB = 64
"""Memory requests and limits are rounded up to this many MiB."""

MEMORY_HEADROOM = 1.25
"""The memory request is the peak RSS measured times this: room for larger requests and for
the allocator's fragmentation over days, which a short sweep does not see."""

MEMORY_LIMIT_FACTOR = 2.0
"""The memory limit is the peak RSS times this: a leak or a huge request is stopped before it
takes the node's memory, and a normal day never comes near it."""

UTILISATION = 0.7
"""The default share of its CPU request a pod runs at: room for bursts while the autoscaler
adds pods (a minute or two), and the usual default of autoscaler CPU targets."""

TRAFFIC_ROOM = 2.0
"""The autoscaler may add pods up to this many times the expected traffic's count."""

FORMAT = 1
"""The version of the saved sizing's JSON."""


class SizingError(MlshipError):
    """A sizing cannot be made or read."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")


def parse_latency_ms(text: str, what: str = "--p99") -> float:
    """Milliseconds from ``50ms``, ``0.05s`` or ``50`` (milliseconds)."""
    match = _DURATION.match(text)
    if match is None:
        raise SizingError(f"{what} {text!r}: expected a latency such as 50ms, 0.2s or 50")
    value = float(match.group(1)) * (1000.0 if match.group(2) == "s" else 1.0)
    if value <= 0:
        raise SizingError(f"{what} {text!r}: expected a latency above zero")
    return value


def parse_seconds(text: str, what: str = "--duration") -> float:
    """Seconds from ``5s``, ``500ms`` or ``5`` (seconds)."""
    match = _DURATION.match(text)
    if match is None:
        raise SizingError(f"{what} {text!r}: expected a time such as 5s, 500ms or 5")
    value = float(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)
    if value <= 0:
        raise SizingError(f"{what} {text!r}: expected a time above zero")
    return value


@dataclass(frozen=True)
class Step:
    """One rate of the sweep, held for a fixed time, and what the replica did."""

    rate: float
    requests: int
    failed: int
    p99_ms: float | None
    """Of the answered requests; None when none was answered."""
    cpu_cores: float
    """CPU-seconds the replica used per second of the step."""
    peak_rss_bytes: int

    def meets(self, p99_ms: float) -> bool:
        """Every request answered, and the 99th percentile within ``p99_ms``."""
        return self.failed == 0 and self.p99_ms is not None and self.p99_ms <= p99_ms


def sweep(
    measure: Callable[[float], Step],
    *,
    p99_ms: float,
    start_rate: float,
    max_rate: float,
    max_steps: int,
    on_step: Callable[[Step, bool], None] | None = None,
) -> tuple[Step, ...]:
    """The steps of a search for the highest rate that meets ``p99_ms``.

    The rate doubles from ``start_rate`` until a step misses the target or ``max_rate`` is met
    (no more capacity than that is needed); then it bisects between the highest rate met and the
    lowest missed until they are within 10 % or ``max_steps`` steps were run, so the time spent
    is bounded whatever the replica does.
    """
    if start_rate <= 0 or max_rate < start_rate or max_steps < 1:
        raise ValueError("a sweep needs 0 < start_rate <= max_rate and at least one step")
    steps: list[Step] = []
    met: float | None = None
    missed: float | None = None
    rate = start_rate
    while len(steps) < max_steps:
        step = measure(rate)
        steps.append(step)
        ok = step.meets(p99_ms)
        if on_step is not None:
            on_step(step, ok)
        if ok:
            met = rate if met is None else max(met, rate)
        else:
            missed = rate if missed is None else min(missed, rate)
        if missed is None:
            if rate >= max_rate:
                break
            rate = min(rate * 2, max_rate)
            continue
        if met is None or missed <= met * 1.1:
            break
        rate = round((met + missed) / 2, 1)
        if rate <= met or rate >= missed:
            break
    return tuple(steps)


def capacity(steps: Sequence[Step], p99_ms: float) -> Step | None:
    """The step of the highest rate that met the target, None when none did."""
    met = [s for s in steps if s.meets(p99_ms)]
    return max(met, key=lambda s: s.rate) if met else None


def cpu_quantity(millicores: int) -> str:
    return f"{millicores}m"


def memory_quantity(mib: int) -> str:
    return f"{mib}Mi"


def round_cpu_m(cores: float) -> int:
    """``cores`` in millicores, rounded up to :data:`CPU_STEP_M` (at least one step)."""
    return max(CPU_STEP_M, math.ceil(round(cores * 1000, 6) / CPU_STEP_M) * CPU_STEP_M)


def round_memory_mib(size_bytes: float) -> int:
    """``size_bytes`` in MiB, rounded up to :data:`MEMORY_STEP_MIB` (at least one step)."""
    return max(MEMORY_STEP_MIB, math.ceil(size_bytes / MIB / MEMORY_STEP_MIB) * MEMORY_STEP_MIB)


@dataclass(frozen=True)
class Option:
    """One way to run the expected traffic: a pod shape, how many pods, and its monthly cost."""

    name: str
    cpu_m: int
    memory_mib: int
    replicas: int
    rps_per_replica: float
    """The rate one pod carries at the target utilisation."""
    measured: bool
    """False for shapes scaled from the measured one (their capacity assumed proportional)."""
    requests_month: float
    """The pods' requests priced at the settings' ``[prices]`` (CPU-hours and GB-hours)."""
    instance: str | None
    """The cheapest catalog instance type whose nodes hold the pods; None when none holds one."""
    nodes: int
    on_demand_month: float | None
    spot_month: float | None


@dataclass(frozen=True)
class Sizing:
    """What ``mlship size`` measured and recommends for one model version."""

    model: str
    version: int
    measured_at: datetime
    p99_ms: float
    rps: float
    utilisation: float
    availability: bool
    """Two pods at least, on two nodes, so one can fail or be drained."""
    cpu_limit: float
    """Cores the replica was allowed during the sweep."""
    capacity_rps: float
    capacity_p99_ms: float
    cores_used: float
    """At the capacity rate."""
    peak_rss_bytes: int
    cpu_m: int
    memory_mib: int
    memory_limit_mib: int
    replicas: int
    replicas_reason: str
    max_replicas: int
    target_cpu_percent: int
    target_rps_per_replica: int
    steps: tuple[Step, ...]
    options: tuple[Option, ...]
    currency: str

    @property
    def cpu(self) -> str:
        return cpu_quantity(self.cpu_m)

    @property
    def memory(self) -> str:
        return memory_quantity(self.memory_mib)

    @property
    def memory_limit(self) -> str:
        return memory_quantity(self.memory_limit_mib)


def replicas_for(rps: float, per_replica: float, availability: bool) -> tuple[int, str]:
    """``ceil(rps / per_replica)`` pods, at least 1 (2 with ``availability``), and why."""
    needed = max(1, math.ceil(round(rps / per_replica, 9)))
    least = 2 if availability else 1
    if needed >= least:
        return needed, f"ceil({rps:g} / {per_replica:g}) for the traffic"
    return least, (
        f"{least} for availability (the traffic needs {needed})"
        if availability
        else f"{least} (the traffic needs {needed})"
    )


def cheapest_nodes(
    catalog: PriceCatalog, cpu_m: int, memory_mib: int, replicas: int, availability: bool
) -> tuple[InstanceType, int] | None:
    """The instance type, and the count of its nodes, that hold ``replicas`` pods of this shape
    for the least on-demand money; with ``availability`` two nodes at least, so the pods are not
    all lost with one. None when no type holds even one pod."""
    best: tuple[float, InstanceType, int] | None = None
    for instance in catalog.instances:
        per_node = min(
            instance.vcpus * 1000 // cpu_m, int(instance.memory_gib * 1024) // memory_mib
        )
        if per_node < 1:
            continue
        nodes = math.ceil(replicas / per_node)
        if availability and replicas >= 2:
            nodes = max(nodes, 2)
        cost = nodes * instance.on_demand_hour
        if best is None or cost < best[0] or (cost == best[0] and nodes < best[2]):
            best = (cost, instance, nodes)
    return None if best is None else (best[1], best[2])


def option(
    name: str,
    *,
    cpu_m: int,
    memory_mib: int,
    per_replica: float,
    rps: float,
    availability: bool,
    measured: bool,
    catalog: PriceCatalog,
    prices: Prices,
) -> Option:
    """A shape priced: its replica count for ``rps``, its requests at the settings' prices and
    its nodes at the catalog's."""
    replicas, _ = replicas_for(rps, per_replica, availability)
    hourly = cpu_m / 1000 * prices.cpu_hour + memory_mib * MIB / GB * prices.gb_hour
    nodes = cheapest_nodes(catalog, cpu_m, memory_mib, replicas, availability)
    instance, count = nodes if nodes is not None else (None, 0)
    return Option(
        name=name,
        cpu_m=cpu_m,
        memory_mib=memory_mib,
        replicas=replicas,
        rps_per_replica=per_replica,
        measured=measured,
        requests_month=replicas * hourly * MONTH_HOURS,
        instance=None if instance is None else instance.name,
        nodes=count,
        on_demand_month=None if instance is None else count * instance.on_demand_hour * MONTH_HOURS,
        spot_month=None if instance is None else count * instance.spot_hour * MONTH_HOURS,
    )


def recommend(
    *,
    model: str,
    version: int,
    measured_at: datetime,
    steps: Sequence[Step],
    p99_ms: float,
    rps: float,
    utilisation: float,
    availability: bool,
    cpu_limit: float,
    catalog: PriceCatalog,
    prices: Prices,
) -> Sizing:
    """The sizing that follows from a sweep's steps; a :class:`SizingError` when no step met the
    target (no shape of one replica can, so no count of them can either)."""
    if not 0 < utilisation <= 1:
        raise SizingError(f"target utilisation {utilisation:g}: expected more than 0, at most 1")
    best = capacity(steps, p99_ms)
    if best is None:
        lowest = min(steps, key=lambda s: s.rate)
        seen = "no answer" if lowest.p99_ms is None else f"p99 {lowest.p99_ms:.1f} ms"
        failed = f", {lowest.failed} of {lowest.requests} requests failed" if lowest.failed else ""
        raise SizingError(
            f"{model}:{version} misses p99 {p99_ms:g} ms even at {lowest.rate:g} requests/s "
            f"({seen}{failed}): no replica count meets it; give a larger --p99, more --cpu, or "
            "a faster model"
        )
    cpu_m = round_cpu_m(best.cpu_cores / utilisation)
    memory_mib = round_memory_mib(best.peak_rss_bytes * MEMORY_HEADROOM)
    memory_limit_mib = max(
        memory_mib + MEMORY_STEP_MIB, round_memory_mib(best.peak_rss_bytes * MEMORY_LIMIT_FACTOR)
    )
    per_replica = best.rate * utilisation
    replicas, reason = replicas_for(rps, per_replica, availability)
    max_replicas = max(replicas + 1, replicas_for(rps * TRAFFIC_ROOM, per_replica, False)[0])

    def priced(name: str, cpu: int, memory: int, rate: float, measured: bool) -> Option:
        return option(name, cpu_m=cpu, memory_mib=memory, per_replica=rate, rps=rps,
                      availability=availability, measured=measured, catalog=catalog,
                      prices=prices)  # fmt: skip

    half_m = round_cpu_m(cpu_m / 2000)
    options = (
        priced("recommended", cpu_m, memory_mib, per_replica, True),
        # Scaled from the measured shape: half the CPU carries about half the rate, and the
        # model is still loaded whole in every pod; double the CPU runs two workers, each with
        # the model.
        priced("half-size", half_m, memory_mib, per_replica * half_m / cpu_m, False),
        priced("double-size", cpu_m * 2, memory_mib * 2, per_replica * 2, False),
    )
    return Sizing(
        model=model,
        version=version,
        measured_at=measured_at,
        p99_ms=p99_ms,
        rps=rps,
        utilisation=utilisation,
        availability=availability,
        cpu_limit=cpu_limit,
        capacity_rps=best.rate,
        capacity_p99_ms=best.p99_ms if best.p99_ms is not None else 0.0,
        cores_used=best.cpu_cores,
        peak_rss_bytes=max(s.peak_rss_bytes for s in steps),
        cpu_m=cpu_m,
        memory_mib=memory_mib,
        memory_limit_mib=memory_limit_mib,
        replicas=replicas,
        replicas_reason=reason,
        max_replicas=max_replicas,
        target_cpu_percent=round(utilisation * 100),
        target_rps_per_replica=max(1, math.floor(per_replica)),
        steps=tuple(steps),
        options=options,
        currency=catalog.currency,
    )


def to_json(sizing: Sizing) -> dict[str, Any]:
    """The sizing as the JSON ``mlship size`` saves."""
    from dataclasses import asdict

    data = asdict(sizing)
    data["measured_at"] = sizing.measured_at.isoformat()
    return {"format": FORMAT, **data}


def from_json(data: Any, where: str) -> Sizing:
    """The sizing saved as ``data``; a :class:`SizingError` naming ``where`` and the key when
    it is not what :func:`to_json` writes."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SizingError(f"{where}: not a sizing saved by mlship size (format {FORMAT})")
    from pydantic import TypeAdapter, ValidationError

    fields = {k: v for k, v in data.items() if k != "format"}
    try:
        sizing = TypeAdapter(Sizing).validate_python(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        if problem["type"] == "missing":
            raise SizingError(f"{where}: missing key {key!r}") from None
        raise SizingError(f"{where}: {key}: {problem['msg']}") from None
    for key in ("cpu_m", "memory_mib", "memory_limit_mib", "replicas", "max_replicas"):
        value = getattr(sizing, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SizingError(f"{where}: {key}: expected a whole number above zero, got {value!r}")
    if not 1 <= sizing.target_cpu_percent <= 100:
        raise SizingError(f"{where}: target_cpu_percent: expected 1 to 100")
    return sizing


SIZING_DIR = "sizing"
"""The folder of saved sizings in the workspace's home."""


def sizing_path(home: Path, model: str, version: int) -> Path:
    return home / SIZING_DIR / f"{model}-v{version}.json"


def save(home: Path, sizing: Sizing) -> Path:
    """Write ``sizing`` whole (a synced temporary file renamed over the last one); its path."""
    from mlship.store.artifacts import atomic_write

    path = sizing_path(home, sizing.model, sizing.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, [(json.dumps(to_json(sizing), indent=2) + "\n").encode()])
    return path


def _read(path: Path) -> Sizing:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SizingError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SizingError(f"{path}: not valid JSON ({exc})") from None
    return from_json(data, str(path))


def load(home: Path, model: str, version: int) -> Sizing:
    """The sizing saved for ``model:version``; a :class:`SizingError` saying how to make one
    when there is none."""
    path = sizing_path(home, model, version)
    if not path.exists():
        raise SizingError(
            f"no sizing is saved for {model}:{version} ({path}): run mlship size "
            f"{model}:{version} --p99 ... --rps ... first"
        )
    sizing = _read(path)
    if (sizing.model, sizing.version) != (model, version):
        raise SizingError(f"{path}: holds the sizing of {sizing.model}:{sizing.version}")
    return sizing


def load_all(home: Path) -> dict[tuple[str, int], Sizing]:
    """Every saved sizing, by model and version."""
    folder = home / SIZING_DIR
    found: dict[tuple[str, int], Sizing] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        sizing = _read(path)
        found[(sizing.model, sizing.version)] = sizing
    return found
