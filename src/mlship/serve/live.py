"""The versions a server answers with right now, and swapping them while it runs.

Every route and shadow of a deployment is a model reference. :meth:`LiveModels.refresh` resolves
each one against the registry (a stage reference such as ``churn@production`` follows promotions
and rollbacks), loads any version it does not hold yet (verified against its checksum before
unpickling), and then replaces the whole routing table in one assignment. A request takes the
table once, at its start, and finishes on the models it took, so a swap never fails or drops a
request; the next request sees the new table. A refresh that fails (the registry unreachable, a
tampered artifact) keeps the current table and is reported, so serving goes on.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

from mlship.registry.model_io import LoadedModel, load_model
from mlship.serve.deployment import Deployment
from mlship.serve.schemas import record_model
from mlship.store.tables import ModelVersion
from mlship.workspace import Workspace

log = logging.getLogger("mlship.serve")

Resolve = Callable[[Workspace, str], ModelVersion]


@dataclass(frozen=True)
class Served:
    """One loaded version in a role (a route with its weight, or a shadow)."""

    ref: str
    model: LoadedModel
    weight: float
    record: type[BaseModel]
    records: TypeAdapter[list[Any]]

    @property
    def label(self) -> str:
        return self.model.ref


@dataclass(frozen=True)
class Table:
    routes: tuple[Served, ...]
    shadows: tuple[Served, ...]

    def choose(self, key: str | None = None) -> Served:
        """A route by weight: the same one for the same ``key``, at random without a key."""
        total = sum(route.weight for route in self.routes)
        if key is None:
            point = random.random() * total  # noqa: S311 - traffic splitting, not security
        else:
            digest = hashlib.sha256(key.encode()).digest()
            point = int.from_bytes(digest[:8], "big") / 2**64 * total
        for route in self.routes:
            if point < route.weight:
                return route
            point -= route.weight
        return next(route for route in reversed(self.routes) if route.weight > 0)

    def versions(self) -> list[str]:
        return [served.label for served in (*self.routes, *self.shadows)]


class LiveModels:
    """The deployment's routing table, refreshed from the registry in the background."""

    def __init__(self, deployment: Deployment, workspace: Workspace, resolve: Resolve) -> None:
        self.deployment = deployment
        self.workspace = workspace
        self.resolve = resolve
        self._loaded: dict[tuple[str, int, str], Served] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.table = self._build()

    def _served(self, ref: str, weight: float) -> Served:
        version = self.resolve(self.workspace, ref)
        key = (version.model.name, version.version, version.artifact_sha256)
        cached = self._loaded.get(key)
        if cached is None:
            model = load_model(version, self.workspace.artifacts)
            record = record_model(model.signature)
            cached = Served(ref, model, weight, record, TypeAdapter(list[record]))  # type: ignore[valid-type]
            self._loaded[key] = cached
        if cached.ref != ref or cached.weight != weight:
            cached = Served(ref, cached.model, weight, cached.record, cached.records)
        return cached

    def _build(self) -> Table:
        routes = tuple(self._served(r.model, r.weight) for r in self.deployment.routes)
        shadows = tuple(self._served(ref, 0.0) for ref in self.deployment.shadows)
        return Table(routes, shadows)

    def refresh(self) -> list[str]:
        """Look every reference up again; swap the table if a version changed. What changed."""
        with self._lock:
            new = self._build()
            before, after = self.table.versions(), new.versions()
            if before == after:
                return []
            self.table = new
            live = set(after)
            for key in [k for k in self._loaded if f"{k[0]}:{k[1]}" not in live]:
                del self._loaded[key]  # a version no longer served is let go
        changes = [f"{a} -> {b}" for a, b in zip(before, after, strict=True) if a != b]
        for change in changes:
            log.info("swapped %s", change, extra={"event": "swap", "change": change})
        return changes

    def start(self) -> None:
        """Refresh every ``refresh_seconds`` until :meth:`stop`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.deployment.refresh_seconds):
                try:
                    self.refresh()
                except Exception as exc:  # serving goes on with the current table
                    log.error("refresh failed: %s", exc, extra={"event": "refresh_failed"})

        self._thread = threading.Thread(target=loop, name="mlship-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
