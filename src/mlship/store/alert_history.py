"""Where alerts that held are kept, whichever store keeps them: the :class:`AlertHistory`
protocol.

Two implementations: :class:`~mlship.monitor.history.SqlAlertHistory` in the metadata store and
:class:`~mlship.remote.admin.HttpAlertHistory` on a tracking server, so monitors on several hosts
share one set of cool-downs. Both hand out the frozen :class:`~mlship.store.entities.Alert`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from mlship.store.entities import Alert

AlertStatus = Literal["fired", "suppressed"]


class AlertHistory(Protocol):
    def last_delivered(self, model: str, rule: str) -> datetime | None:
        """When ``rule`` last reached someone about ``model`` (a ``fired`` alert with at least
        one successful delivery), in UTC; None when never."""
        ...

    def record(
        self,
        *,
        model: str,
        rule: str,
        metric: str,
        value: float,
        condition: str,
        severity: str,
        window: str,
        status: AlertStatus,
        deliveries: Sequence[Mapping[str, Any]] = (),
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> Alert:
        """Append one alert (``at`` defaults to now)."""
        ...

    def list(
        self, model: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[Alert]:
        """The newest alerts first, of one model or all, at or after ``since``."""
        ...
