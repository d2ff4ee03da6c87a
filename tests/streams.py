"""A stream spec for the tests that run ``mlship stream run`` on the churn model.

Each call names its streams afresh (a random tag), so tests sharing a session's broker never read
each other's events.
"""

from __future__ import annotations

import uuid
from pathlib import Path


def write_stream_spec(
    folder: Path,
    url: str,
    prefix: str,
    *,
    group: str = "scorers",
    claim_idle: str = "1s",
    max_events: int = 20,
    max_wait: str = "50ms",
) -> tuple[Path, dict[str, str]]:
    """Write ``<name>.yaml`` in ``folder``: ``churn:1`` scoring the stream ``<prefix>-events-TAG``
    of the broker at ``url``; the spec's path and its names (name, stream, output, dead)."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "name": f"{prefix}-stream-{tag}",
        "stream": f"{prefix}-events-{tag}",
        "output": f"{prefix}-predictions-{tag}",
        "dead": f"{prefix}-dead-{tag}",
    }
    path = folder / f"{names['name']}.yaml"
    path.write_text(
        f"""name: {names["name"]}
source: {{url: "{url}", stream: {names["stream"]}, group: {group}, claim_idle: {claim_idle}}}
entity: customer_id
model: "churn:1"
batch: {{max_events: {max_events}, max_wait: {max_wait}}}
output: {{stream: {names["output"]}}}
dead_letter: {{stream: {names["dead"]}}}
""",
        encoding="utf-8",
    )
    return path, names
