"""The alert history: every rule that held, in the metadata store.

It lives in the database, not in memory, because cool-downs must hold across processes: a
``mlship monitor run`` from cron every five minutes and a ``watch`` loop started by someone else
read the same rows, so neither repeats an alert the other has just delivered. This is the
:class:`~mlship.store.alert_history.AlertHistory` protocol in the metadata store.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from mlship.errors import MlshipError
from mlship.store import entities
from mlship.store.alert_history import AlertStatus
from mlship.store.metadata import MetadataStore
from mlship.store.tables import Alert, as_utc


def delivery_line(channel: str, ok: bool, detail: str) -> str:
    """One delivery as people read it: ``webhook: failed (HTTP 500)``."""
    return f"{channel}: {'ok' if ok else 'failed'} ({detail})"


def deliveries_text(deliveries: Sequence[Mapping[str, Any]]) -> str:
    """The stored deliveries of an alert (``Delivery.to_json`` dicts) on one line."""
    return "; ".join(delivery_line(d["channel"], d["ok"], d["detail"]) for d in deliveries)


def alert_record(row: entities.Alert) -> dict[str, Any]:
    """An alert as plain JSON (for reports)."""
    return {
        "at": as_utc(row.at).isoformat(),
        "rule": row.rule,
        "metric": row.metric,
        "value": row.value,
        "condition": row.condition,
        "severity": row.severity,
        "window": row.window,
        "status": row.status,
        "deliveries": row.deliveries,
    }


def _check(**values: str) -> None:
    """Refuse what the alerts table cannot hold, before a database does so in its own way
    (SQLite keeps a long text that PostgreSQL refuses): the same message on every store."""
    for column, value in values.items():
        limit: int | None = getattr(Alert.__table__.c[column].type, "length", None)
        if limit is not None and len(value) > limit:
            raise MlshipError(f"alert {column} {value[:40]!r}...: at most {limit} characters")
        if "\x00" in value:
            raise MlshipError(f"alert {column} {value[:40]!r}: contains a NUL character")


class SqlAlertHistory:
    """Alerts that held, fired or suppressed; each method is one transaction.

    >>> history = workspace.alert_history  # doctest: +SKIP
    >>> history.list(model="churn", limit=10)  # doctest: +SKIP
    """

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def last_delivered(self, model: str, rule: str) -> datetime | None:
        """When ``rule`` last reached someone about ``model``: the newest firing in which at
        least one action succeeded. A firing whose every action failed does not count, so the
        next evaluation tries again instead of keeping quiet for a whole cool-down."""
        with self.metadata.transaction() as session:
            found = session.scalar(
                select(Alert.at)
                .where(
                    Alert.model == model,
                    Alert.rule == rule,
                    Alert.status == "fired",
                    Alert.delivered.is_(True),
                )
                .order_by(Alert.at.desc())
                .limit(1)
            )
        return None if found is None else as_utc(found)

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
    ) -> entities.Alert:
        """Append one alert. ``deliveries`` are the actions' results, each with an ``ok`` flag;
        a ``fired`` alert with any ``ok`` one is *delivered* and starts the cool-down."""
        _check(model=model, rule=rule, metric=metric, condition=condition, severity=severity)
        _check(window=window, status=status)
        if status not in ("fired", "suppressed"):
            raise MlshipError(f"alert status {status!r}: expected fired or suppressed")
        row = Alert(
            at=as_utc(at or datetime.now(UTC)),
            model=model,
            rule=rule,
            metric=metric,
            value=value,
            condition=condition,
            severity=severity,
            window=window,
            status=status,
            delivered=status == "fired" and any(bool(d.get("ok")) for d in deliveries),
            deliveries=[dict(d) for d in deliveries],
            details=dict(details or {}),
        )
        with self.metadata.transaction() as session:
            session.add(row)
            session.flush()
            return entities.from_row(entities.Alert, row)

    def list(
        self, model: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[entities.Alert]:
        """The newest alerts first, of one model or all, at or after ``since``; times in UTC."""
        query = select(Alert)
        if model is not None:
            query = query.where(Alert.model == model)
        if since is not None:
            query = query.where(Alert.at >= as_utc(since))
        query = query.order_by(Alert.at.desc(), Alert.id.desc()).limit(limit)
        with self.metadata.transaction() as session:
            return [entities.from_row(entities.Alert, row) for row in session.scalars(query)]
