"""Churn events for ``mlship stream run``: customers of the churn example appended to a Redis
stream, as a billing system would send them.

    python -m mlship.examples.churn.events --url redis://127.0.0.1:6379/0 --stream churn-events \\
        --count 1000 --bad 5

Each event is one customer's record (the model's inputs), its ``customer_id`` and the time ``ts``
it was sent, as one JSON object in the entry's ``data`` field (what mlship's own producers write),
or, with ``--flat``, as the entry's own fields, every value text (``redis-cli XADD`` style).
``--bad`` appends that many events more with a charge of ``"abc"``: they go to the dead-letter
stream with the reason. Generated from a fixed seed, like the example's data.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from mlship.examples.churn import make_customers

INPUTS = (
    "age", "tenure_months", "monthly_charges", "total_charges", "contract", "internet_service",
    "payment_method", "support_calls", "paperless_billing",
)  # fmt: skip


def churn_events(count: int, bad: int = 0, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` customers' events, then ``bad`` events whose ``monthly_charges`` is not a
    number; one second apart in event time."""
    customers = make_customers(max(count + bad, 1), seed=seed)
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    events = []
    for i, row in enumerate(customers.to_dict("records")[: count + bad]):
        event: dict[str, Any] = {"customer_id": row["customer_id"]}
        for name in INPUTS:
            value = row[name]
            event[name] = None if pd.isna(value) else value
        event["paperless_billing"] = row["paperless_billing"] == "yes"
        event["ts"] = (start + timedelta(seconds=i)).isoformat()
        if i >= count:
            event["monthly_charges"] = "abc"
        events.append({k: v.item() if hasattr(v, "item") else v for k, v in event.items()})
    return events


def _flat(event: dict[str, Any]) -> dict[str, str]:
    """An event as text fields (a missing value is left out)."""
    return {
        name: ("true" if value is True else "false" if value is False else str(value))
        for name, value in event.items()
        if value is not None
    }


def main(argv: list[str] | None = None) -> None:
    import redis

    parser = argparse.ArgumentParser(description="Append churn events to a Redis stream.")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--stream", default="churn-events")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--bad", type=int, default=0, help="Events more that are dead letters.")
    parser.add_argument("--flat", action="store_true", help="Text fields instead of JSON.")
    args = parser.parse_args(argv)
    client = redis.Redis.from_url(args.url)
    try:
        pipe = client.pipeline(transaction=False)
        for event in churn_events(args.count, args.bad):
            fields: Any = _flat(event) if args.flat else {"data": json.dumps(event)}
            pipe.xadd(args.stream, fields)
        pipe.execute()
    finally:
        client.close()
    print(f"appended {args.count + args.bad} events to {args.stream} on {args.url}")


if __name__ == "__main__":
    main()
