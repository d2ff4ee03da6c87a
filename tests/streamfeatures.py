"""Building stream specs and events for the stream feature tests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mlship.brokers.base import Event
from mlship.spec.stream import StreamSpec

BASE = 1_800_000_000
"""An epoch second that is a whole number of days, so every window's edges are round."""


def feature_spec(
    features: Sequence[Mapping[str, Any]],
    *,
    max_delay: str = "5s",
    allowed_lateness: str = "1m",
    redis_url: str = "redis://127.0.0.1:6379/0",
) -> StreamSpec:
    """A stream spec with ``features`` over ``customer_id`` and ``ts``, its online state under
    a prefix of its own."""
    return StreamSpec.model_validate(
        {
            "name": "features-test",
            "source": {"url": redis_url, "stream": "events"},
            "entity": "customer_id",
            "event_time": {
                "field": "ts",
                "max_delay": max_delay,
                "allowed_lateness": allowed_lateness,
            },
            "features": list(features),
            "online_store": {"url": redis_url, "prefix": f"test:{uuid.uuid4().hex}"},
            "model": "churn@production",
            "output": {"stream": "predictions"},
            "dead_letter": {"stream": "dead"},
        }
    )


def event(position: int, fields: Mapping[str, Any], *, text_values: bool = False) -> Event:
    return Event(
        id=f"{position}-0",
        position=position,
        appended_at=datetime(2027, 1, 15, tzinfo=UTC),
        fields=dict(fields),
        text_values=text_values,
    )
