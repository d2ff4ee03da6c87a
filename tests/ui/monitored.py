"""A workspace with served traffic, labels and alerts, for the monitoring pages' tests.

A copy of the ``trained`` workspace (churn:1); a real ``mlship serve churn:1`` answers 200
records as they were in training and 200 with ``age`` 20 years older and ``monthly_charges``
raised, in requests of 10, and refuses 3 malformed ones; the true labels of all but every fifth
request come back through ``POST /feedback``; ``mlship monitor run`` then fires an alert (and
holds a second one back in its cool-down).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlship.workspace import Workspace
from tests.conftest import copy_workspace, invoke_cli
from tests.serving import serving
from tests.traffic import churn_traffic

NORMAL, DRIFTED, PER_REQUEST, REFUSED, UNLABELLED_EVERY = 200, 200, 10, 3, 5

RULES = """\
rules:
  - name: traffic-seen
    metric: health.requests
    window: 1d
    condition: ">= 1"
    severity: warning
    cooldown: 1h
    actions: [log]
  - name: drifted-features
    metric: drift.share
    window: 1d
    condition: ">= 0.1"
    severity: critical
    cooldown: 1h
    actions: [log]
"""


@dataclass(frozen=True)
class Monitored:
    home: Path
    requests: int
    """Answered requests."""
    labelled: int
    """Records whose label came back."""


def serve_traffic(trained: Workspace, root: Path) -> Monitored:
    home = copy_workspace(trained, root)
    traffic = churn_traffic(home, NORMAL, DRIFTED, seed=7)
    records, truth = traffic.records, traffic.truth
    labels: list[dict[str, Any]] = []
    requests = 0
    with serving("churn:1", home) as server, httpx.Client(base_url=server.base) as client:
        for start in range(0, len(records), PER_REQUEST):
            answer = client.post("/predict", json={"records": records[start : start + PER_REQUEST]})
            assert answer.status_code == 200, answer.text
            requests += 1
            if (start // PER_REQUEST) % UNLABELLED_EVERY == 0:
                continue
            request_id = answer.json()["request_id"]
            labels += [
                {"request_id": request_id, "row": row, "label": truth[start + row]}
                for row in range(PER_REQUEST)
            ]
        for _ in range(REFUSED):
            refused = client.post("/predict", json={"records": [{**records[0], "age": "old"}]})
            assert refused.status_code == 422
        stored = client.post("/feedback", json={"feedback": labels})
        assert stored.json() == {"stored": len(labels)}
    server.stop()
    rules = root / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    first = invoke_cli("monitor", "run", "--rules", str(rules), home=home)
    assert "2 fired" in first.stdout, first.stdout
    again = invoke_cli("monitor", "run", "--rules", str(rules), home=home)
    assert "2 suppressed" in again.stdout, again.stdout
    return Monitored(home, requests, len(labels))
