"""What work used and what it costs: the values behind a run's bill and the ``[prices]`` setting.

Values only, apart from :mod:`mlship.train.cost` (which measures them), so that the settings can
declare their prices without importing training code, pandas or psutil.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

GB = 2**30
"""Bytes in the "GB" clouds bill memory by (a gibibyte)."""


@dataclass(frozen=True)
class Usage:
    """Resources one block of code used; ``Usage()`` is nothing, the start of a sum."""

    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0

    @classmethod
    def zero(cls) -> Usage:
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """The inverse of :meth:`as_dict`, e.g. for a usage stored as JSON."""
        return cls(
            wall_seconds=float(data["wall_seconds"]),
            cpu_seconds=float(data["cpu_seconds"]),
            peak_memory_bytes=int(data["peak_memory_bytes"]),
        )

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            wall_seconds=self.wall_seconds + other.wall_seconds,
            cpu_seconds=self.cpu_seconds + other.cpu_seconds,
            peak_memory_bytes=max(self.peak_memory_bytes, other.peak_memory_bytes),
        )

    def __radd__(self, other: object) -> Usage:
        # Lets the built-in sum() start from its default 0.
        if other == 0:
            return self
        return NotImplemented

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class Prices(BaseModel):
    """What a CPU-hour and a GB-hour of memory cost, to put a price on a :class:`Usage`.

    The defaults are rough on-demand prices of general-purpose cloud capacity in a US region,
    rounded up (AWS Fargate, for one, lists about 0.040 per vCPU-hour and 0.0044 per GB-hour).
    They are meant for comparing runs and setting budgets, not for billing: set ``[prices]`` in
    ``mlship.toml`` or ``MLSHIP_PRICES__CPU_HOUR`` and ``MLSHIP_PRICES__GB_HOUR`` to your own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_hour: float = Field(0.048, ge=0, description="Money per CPU-hour of CPU time.")
    gb_hour: float = Field(0.006, ge=0, description="Money per GB-hour of peak memory held.")
    storage_gb_month: float = Field(
        0.023,
        ge=0,
        description="Money per GB-month of stored artifacts (object storage's standard class).",
    )
    currency: str = Field("USD", min_length=1, description="The currency of these prices.")

    def cost(self, usage: Usage) -> float:
        """CPU time at ``cpu_hour`` plus the peak memory held for the wall time at ``gb_hour``."""
        cpu = usage.cpu_seconds / 3600 * self.cpu_hour
        memory = usage.peak_memory_bytes / GB * usage.wall_seconds / 3600 * self.gb_hour
        return cpu + memory
