"""Over- and under-provisioning: what the serving replicas of a version really used, from the
usage ledger, against the requests its saved sizing gave its pods.

Each ledger record covers one process's work over an interval; a replica is one host and
process id. Its cores used are its CPU-seconds over its wall seconds, and its memory the
byte-seconds over the wall seconds (the average held), so replicas that ran for different
lengths of time weigh by how long they ran. A request is *over-provisioned* when the replicas
use less than half the share of it the sizing aimed at (the autoscaler's target utilisation):
money is reserved and never used. It is *under-provisioned* when they use more than
:data:`UNDER` of it: pods are throttled or the autoscaler is always adding them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlship.costs.ledger import UsageRecord
from mlship.costs.sizing import (
    MEMORY_HEADROOM,
    MIB,
    MONTH_HOURS,
    Sizing,
    cpu_quantity,
    memory_quantity,
    round_cpu_m,
    round_memory_mib,
)
from mlship.prices import GB, Prices

UNDER = 0.9
"""A replica using more than this share of its request is under-provisioned."""


@dataclass(frozen=True)
class Used:
    """What the serving replicas of one deployment and version used over a window."""

    deployment: str | None
    model: str
    version: int
    replicas: int
    """Distinct host and process id pairs seen."""
    wall_seconds: float
    cores: float
    """CPU-seconds per wall second, over every replica's time."""
    memory_bytes: float
    """Memory held on average, over every replica's time."""
    requests: int


def used(records: Iterable[UsageRecord]) -> list[Used]:
    """The serving records grouped by deployment, model and version (records without a model
    version are left out: nothing was sized for them)."""
    groups: dict[tuple[str | None, str, int], list[UsageRecord]] = defaultdict(list)
    for record in records:
        if record.kind != "serving" or record.model is None or record.version is None:
            continue
        groups[(record.deployment, record.model, record.version)].append(record)
    found = []
    for (deployment, model, version), inside in sorted(
        groups.items(), key=lambda item: (item[0][1], item[0][2], item[0][0] or "")
    ):
        wall = math.fsum(r.wall_seconds for r in inside)
        cpu = math.fsum(r.cpu_seconds for r in inside)
        memory = math.fsum(r.memory_byte_seconds for r in inside)
        found.append(
            Used(
                deployment=deployment,
                model=model,
                version=version,
                replicas=len({(r.host, r.pid) for r in inside}),
                wall_seconds=wall,
                cores=cpu / wall if wall > 0 else 0.0,
                memory_bytes=memory / wall if wall > 0 else 0.0,
                requests=sum(r.requests for r in inside),
            )
        )
    return found


@dataclass(frozen=True)
class Verdict:
    """One resource of one deployment against its sizing: the share used, a verdict, what
    request would do, and what the change saves (or costs, when negative) a month."""

    resource: str
    """``cpu`` or ``memory``."""
    used: float
    """Cores, or bytes."""
    requested: float
    share: float
    verdict: str
    """``over-provisioned``, ``under-provisioned`` or ``right-sized``."""
    would_do: str
    """The request that would run at the sizing's target (a quantity such as ``200m``)."""
    saves_month: float
    """For every replica of the sizing, at the settings' prices."""

    @property
    def message(self) -> str:
        if self.resource == "cpu":
            amounts = f"{self.used:.2f} of {self.requested:g} CPU requested"
        else:
            amounts = f"{self.used / MIB:.0f}Mi of {self.requested / MIB:.0f}Mi memory requested"
        text = f"{self.verdict}: uses {amounts} ({self.share:.0%})"
        if self.verdict == "over-provisioned":
            return f"{text} -> {self.would_do} would do, saves {self.saves_month:,.2f}/month"
        if self.verdict == "under-provisioned":
            return f"{text} -> request {self.would_do}, costs {-self.saves_month:,.2f}/month more"
        return text


def _verdict(share: float, low: float) -> str:
    if share > UNDER:
        return "under-provisioned"
    if share < low:
        return "over-provisioned"
    return "right-sized"


def check(found: Used, sizing: Sizing, prices: Prices) -> tuple[Verdict, Verdict]:
    """The CPU and the memory of ``found`` against ``sizing``'s requests."""
    requested_cores = sizing.cpu_m / 1000
    cpu_share = found.cores / requested_cores
    cpu_m = round_cpu_m(found.cores / sizing.utilisation)
    cpu_saves = (sizing.cpu_m - cpu_m) / 1000 * prices.cpu_hour * MONTH_HOURS * sizing.replicas
    requested_bytes = sizing.memory_mib * MIB
    memory_share = found.memory_bytes / requested_bytes
    memory_mib = round_memory_mib(found.memory_bytes * MEMORY_HEADROOM)
    memory_saves = (
        (sizing.memory_mib - memory_mib) * MIB / GB * prices.gb_hour * MONTH_HOURS
    ) * sizing.replicas
    return (
        Verdict("cpu", found.cores, requested_cores, cpu_share,
                _verdict(cpu_share, sizing.utilisation / 2), cpu_quantity(cpu_m), cpu_saves),
        Verdict("memory", found.memory_bytes, requested_bytes, memory_share,
                _verdict(memory_share, 1 / MEMORY_HEADROOM / 2), memory_quantity(memory_mib),
                memory_saves),
    )  # fmt: skip


def checks(
    found: Iterable[Used], sizings: Mapping[tuple[str, int], Sizing], prices: Prices
) -> list[tuple[Used, Sizing | None, tuple[Verdict, Verdict] | None]]:
    """Every deployment's usage with its version's sizing and verdicts (None without one)."""
    rows: list[tuple[Used, Sizing | None, tuple[Verdict, Verdict] | None]] = []
    for one in found:
        sizing = sizings.get((one.model, one.version))
        rows.append((one, sizing, None if sizing is None else check(one, sizing, prices)))
    return rows
