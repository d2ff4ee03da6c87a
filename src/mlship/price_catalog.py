"""The shipped price catalog: what common cloud machines and storage classes cost, and what the
recorded training runs would have cost on each machine, on demand, on spot or reserved.

The figures live in ``price_catalog.toml`` beside this module, dated and with their source, so a
reader can tell how old they are; settings (``[catalog]`` in ``mlship.toml``) correct an entry
or add one. Values and arithmetic only, like :mod:`mlship.prices`, so the settings can declare
their overrides without importing anything heavy.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlship.errors import MlshipError
from mlship.prices import GB, Usage

CATALOG_FILE = "price_catalog.toml"
"""The data file inside the ``mlship`` package."""


class CatalogError(MlshipError):
    """A price catalog, or an override of one, is not what the catalog expects."""


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    """A cloud machine and its hourly prices in the catalog's currency."""

    name: str
    provider: str
    family: str
    vcpus: int
    memory_gib: float
    on_demand_hour: float
    spot_hour: float
    reserved_hour: float


@dataclass(frozen=True, kw_only=True)
class StorageClass:
    """A storage class and what a GB kept in it for a month costs."""

    key: str
    provider: str
    name: str
    gb_month: float


@dataclass(frozen=True, kw_only=True)
class PriceCatalog:
    """Instance types and storage classes, with the date and kind of source of their prices."""

    as_of: date
    source: str
    currency: str
    instances: tuple[InstanceType, ...]
    storage: tuple[StorageClass, ...]

    def instance(self, name: str) -> InstanceType:
        for found in self.instances:
            if found.name == name:
                return found
        known = ", ".join(sorted(i.name for i in self.instances))
        raise CatalogError(f"no instance type {name!r} in the price catalog; it has: {known}")

    def of_provider(self, provider: str | None) -> PriceCatalog:
        """Only the entries of ``provider`` (all of them for ``None``)."""
        if provider is None:
            return self
        providers = {i.provider for i in self.instances} | {s.provider for s in self.storage}
        if provider not in providers:
            raise CatalogError(
                f"no provider {provider!r} in the price catalog; it has: "
                + ", ".join(sorted(providers))
            )
        return replace(
            self,
            instances=tuple(i for i in self.instances if i.provider == provider),
            storage=tuple(s for s in self.storage if s.provider == provider),
        )


_Price = Field(ge=0, allow_inf_nan=False)


class _InstanceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    provider: str = Field(min_length=1)
    family: str = Field(min_length=1)
    vcpus: int = Field(gt=0, le=100_000)
    memory_gib: float = Field(gt=0, allow_inf_nan=False)
    on_demand_hour: float = _Price
    spot_hour: float = _Price
    reserved_hour: float = _Price


class _StorageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    provider: str = Field(min_length=1)
    name: str = Field(min_length=1)
    gb_month: float = _Price


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    as_of: str
    source: str = Field(min_length=1)
    currency: str = Field(min_length=1)
    instances: dict[str, _InstanceEntry] = Field(min_length=1)
    storage: dict[str, _StorageEntry] = Field(min_length=1)


class InstanceOverride(BaseModel):
    """``[catalog.instances.TYPE]`` in ``mlship.toml``: changes the fields given of a shipped
    instance type, or adds a new one (which then needs every field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = Field(None, min_length=1)
    family: str | None = Field(None, min_length=1)
    vcpus: int | None = Field(None, gt=0, le=100_000)
    memory_gib: float | None = Field(None, gt=0, allow_inf_nan=False)
    on_demand_hour: float | None = Field(None, ge=0, allow_inf_nan=False)
    spot_hour: float | None = Field(None, ge=0, allow_inf_nan=False)
    reserved_hour: float | None = Field(None, ge=0, allow_inf_nan=False)


class StorageOverride(BaseModel):
    """``[catalog.storage.CLASS]`` in ``mlship.toml``, as :class:`InstanceOverride` is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = Field(None, min_length=1)
    name: str | None = Field(None, min_length=1)
    gb_month: float | None = Field(None, ge=0, allow_inf_nan=False)


class CatalogSettings(BaseModel):
    """The ``[catalog]`` setting: corrections and additions to the shipped price catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: dict[str, InstanceOverride] = Field(default_factory=dict)
    storage: dict[str, StorageOverride] = Field(default_factory=dict)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
        for err in exc.errors()
    )


def parse_catalog(text: str, where: str) -> PriceCatalog:
    """The catalog written in ``text`` (TOML); ``where`` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message gives the line and column
        raise CatalogError(f"{where}: not valid TOML: {exc}") from exc
    try:
        parsed = _CatalogFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"{where}: {_problems(exc)}") from exc
    try:
        as_of = date.fromisoformat(parsed.as_of)
    except ValueError as exc:
        raise CatalogError(
            f"{where}: as_of: expected a date as YYYY-MM-DD, got {parsed.as_of!r}"
        ) from exc
    return PriceCatalog(
        as_of=as_of,
        source=parsed.source,
        currency=parsed.currency,
        instances=tuple(
            InstanceType(name=name, **entry.model_dump())
            for name, entry in parsed.instances.items()
        ),
        storage=tuple(
            StorageClass(key=key, **entry.model_dump()) for key, entry in parsed.storage.items()
        ),
    )


@functools.cache
def shipped_catalog() -> PriceCatalog:
    """The catalog that comes with mlship, read once per process."""
    text = resources.files("mlship").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    return parse_catalog(text, f"mlship/{CATALOG_FILE}")


def _merged(
    section: str, key: str, current: Mapping[str, Any] | None, change: BaseModel
) -> dict[str, Any]:
    given = change.model_dump(exclude_none=True)
    if current is not None:
        return {**current, **given}
    missing = [field for field in type(change).model_fields if field not in given]
    if missing:
        raise CatalogError(
            f"catalog.{section}.{key} in the settings is not in the shipped catalog, so it needs "
            f"every field; missing: {', '.join(missing)}"
        )
    return given


def with_overrides(catalog: PriceCatalog, overrides: CatalogSettings) -> PriceCatalog:
    """``catalog`` with the settings' corrections applied and their additions appended."""
    instances = {i.name: i for i in catalog.instances}
    for name, change in overrides.instances.items():
        current = instances.get(name)
        fields = _merged("instances", name, _fields(current, "name") if current else None, change)
        instances[name] = InstanceType(name=name, **fields)
    storage = {s.key: s for s in catalog.storage}
    for key, storage_change in overrides.storage.items():
        existing = storage.get(key)
        fields = _merged(
            "storage", key, _fields(existing, "key") if existing else None, storage_change
        )
        storage[key] = StorageClass(key=key, **fields)
    return replace(catalog, instances=tuple(instances.values()), storage=tuple(storage.values()))


def _fields(entry: InstanceType | StorageClass, without: str) -> dict[str, Any]:
    return {k: v for k, v in vars(entry).items() if k != without}


def instance_hours(usage: Usage, instance: InstanceType) -> float:
    """The share of ``instance`` a piece of work took, in instance-hours.

    Work is priced as if the machine were packed with work like it: its CPU-hours over the
    machine's vCPUs, or its peak memory held for its wall time over the machine's memory,
    whichever takes the larger share. A run that kept 2 of 8 vCPUs busy for an hour takes a
    quarter of an instance-hour, unless it held more than a quarter of the memory meanwhile.
    """
    cpu_share = usage.cpu_seconds / 3600 / instance.vcpus
    memory_share = usage.peak_memory_bytes / GB * usage.wall_seconds / 3600 / instance.memory_gib
    return max(cpu_share, memory_share)


@dataclass(frozen=True, kw_only=True)
class WhatIf:
    """What a set of runs would have cost on one instance type, priced three ways."""

    instance: InstanceType
    runs: int
    instance_hours: float
    on_demand: float
    spot: float
    reserved: float
    too_big: int
    """Runs whose peak memory alone is more than the machine has: they would not fit on it."""

    @property
    def spot_saving(self) -> float:
        """The fraction of the on-demand cost that spot saves (0 when nothing was spent)."""
        return 0.0 if self.on_demand == 0 else 1 - self.spot / self.on_demand


def what_if(usages: Iterable[Usage], instance: InstanceType) -> WhatIf:
    """Price every usage on ``instance`` on demand, on spot and reserved, and add them up."""
    listed = list(usages)
    hours = math.fsum(instance_hours(u, instance) for u in listed)
    too_big = sum(1 for u in listed if u.peak_memory_bytes / GB > instance.memory_gib)
    return WhatIf(
        instance=instance,
        runs=len(listed),
        instance_hours=hours,
        on_demand=hours * instance.on_demand_hour,
        spot=hours * instance.spot_hour,
        reserved=hours * instance.reserved_hour,
        too_big=too_big,
    )
