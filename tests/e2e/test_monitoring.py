"""Monitoring end to end: a real server answers normal and then drifted traffic, true labels come
back through ``POST /feedback`` and ``mlship monitor feedback``, and the monitor flags the drifted
columns and the degraded accuracy, delivers a webhook once (not again within its cool-down),
registers a retrained candidate in staging, and writes a report that renders in Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.browser import charts_have_size, chromium, open_report, screenshot
from tests.conftest import invoke_cli, run_cli, small_churn, webhook_receiver
from tests.serving import serving
from tests.traffic import FEATURES, churn_traffic

NORMAL, DRIFTED, PER_REQUEST = 300, 1000, 10


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps what it was sent."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as (url, bodies):
        yield Receiver(url, bodies)


@dataclass(frozen=True)
class Monitored:
    home: Path
    root: Path
    rules: Path
    labels_sent: int


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Monitored:
    """churn:1 trained and served; 300 normal then 1,000 drifted records (age +20 years,
    monthly charges x1.8 + 30) in requests of 10, 5 refused requests; every record's label sent
    back, the drifted ones 60% wrong (the world changed: the model's answers no longer hold)."""
    root = tmp_path_factory.mktemp("monitoring")
    spec = small_churn(root / "churn")
    home = root / "home"
    run_cli("run", str(spec), home=home, cwd=root)
    traffic = churn_traffic(home, NORMAL, DRIFTED, seed=3)
    records, truth = traffic.records, list(traffic.truth)
    rng = np.random.default_rng(0)
    for index in range(NORMAL, NORMAL + DRIFTED):
        if rng.random() < 0.6:
            truth[index] = "no" if truth[index] == "yes" else "yes"

    labels: list[dict[str, Any]] = []
    with serving("churn:1", home) as server, httpx.Client(base_url=server.base) as client:
        for start in range(0, len(records), PER_REQUEST):
            answer = client.post("/predict", json={"records": records[start : start + PER_REQUEST]})
            assert answer.status_code == 200, answer.text
            request_id = answer.json()["request_id"]
            labels += [
                {"request_id": request_id, "row": row, "label": truth[start + row]}
                for row in range(PER_REQUEST)
            ]
        for _ in range(5):
            refused = client.post("/predict", json={"records": [{**records[0], "age": "old"}]})
            assert refused.status_code == 422
        half = len(labels) // 2
        stored = client.post("/feedback", json={"feedback": labels[:half]})
        assert stored.json() == {"stored": half}
    server.stop()  # SIGTERM: the prediction log is written out
    csv = root / "labels.csv"
    pd.DataFrame(labels[half:]).to_csv(csv, index=False)
    result = run_cli("monitor", "feedback", str(csv), home=home)
    assert f"Stored {len(labels) - half} labels" in result.stdout

    rules = root / "rules.yaml"
    rules.write_text(
        f"""\
webhook:
  url: {receiver.url}
rules:
  - name: feature-drift
    metric: drift.share
    window: {DRIFTED} rows
    condition: ">= 0.2"
    severity: warning
    cooldown: 1h
    actions: [log, webhook]
  - name: accuracy-drop
    metric: performance.accuracy.drop
    window: {DRIFTED} rows
    condition: "> 0.1"
    severity: critical
    cooldown: 1h
    actions: [log, retrain]
  - name: latency
    metric: health.latency_p99_ms
    window: 1h
    condition: "> 5000"
""",
        encoding="utf-8",
    )
    return Monitored(home, root, rules, len(labels))


def test_the_drifted_columns_the_refusals_and_the_degraded_metric_are_found(
    monitored: Monitored,
) -> None:
    shown = invoke_cli("monitor", "status", "churn", "--window", f"{DRIFTED} rows", "--json",
                       home=monitored.home)  # fmt: skip
    result = json.loads(shown.stdout)
    assert result["rows"] == DRIFTED and result["requests"] == DRIFTED // PER_REQUEST
    drifted = {c["column"] for c in result["drift"]["columns"] if c["drifted"]}
    assert drifted == {"age", "monthly_charges"}
    assert {c["method"] for c in result["drift"]["columns"]} <= {"wasserstein", "jensenshannon"}
    quality = {c["column"]: c for c in result["quality"]["columns"]}
    assert quality["monthly_charges"]["out_of_range"] > 0.3
    assert quality["contract"]["issues"] == []
    (answered,) = result["performance"]["versions"]
    assert answered["labelled"] == DRIFTED
    metrics = result["metrics"]
    assert metrics["performance.accuracy.drop"] > 0.3
    assert metrics["performance.label_share"] == 1.0
    assert metrics["quality.schema_violation_rate"] == pytest.approx(5 / (5 + DRIFTED // 10))
    assert metrics["health.requests"] == DRIFTED // PER_REQUEST + 5
    assert metrics["health.error_rate"] == pytest.approx(5 / (5 + DRIFTED // 10))
    # Per-column settings from a rules file: age judged by PSI with a threshold it stays under.
    settings = monitored.root / "drift.yaml"
    settings.write_text("drift:\n  columns:\n    age: {method: psi, threshold: 10}\n")
    judged = json.loads(
        invoke_cli(
            "monitor",
            "status",
            "churn",
            "-w",
            f"{DRIFTED} rows",
            "--rules",
            str(settings),
            "--json",
            home=monitored.home,
        ).stdout
    )
    age = next(c for c in judged["drift"]["columns"] if c["column"] == "age")
    assert (age["method"], age["threshold"], age["drifted"]) == ("psi", 10, False)
    everything = json.loads(
        invoke_cli(
            "monitor", "status", "churn", "--window", "1h", "--json", home=monitored.home
        ).stdout
    )
    assert everything["rows"] == NORMAL + DRIFTED


def test_alerts_are_delivered_once_and_a_candidate_waits_in_staging(
    monitored: Monitored, receiver: Receiver
) -> None:
    first = run_cli("monitor", "run", "--rules", str(monitored.rules), home=monitored.home)
    assert "2 fired, 0 suppressed" in first.stdout, first.stdout
    assert [body["rule"] for body in receiver.bodies] == ["feature-drift"]
    (body,) = receiver.bodies
    assert body["model"] == "churn" and body["metric"] == "drift.share"
    assert body["value"] == pytest.approx(2 / 9) and body["condition"] == ">= 0.2"

    second = invoke_cli("monitor", "run", "--rules", str(monitored.rules), home=monitored.home)
    assert "0 fired, 2 suppressed" in second.stdout, second.stdout
    watched = invoke_cli("monitor", "watch", "--rules", str(monitored.rules), "--every", "1s",
                         "--passes", "2", home=monitored.home)  # fmt: skip
    assert "Pass 2 at" in watched.stdout and watched.stdout.count("suppressed") >= 4
    assert len(receiver.bodies) == 1  # within the cool-down: not delivered again

    workspace = Workspace.open(Settings(home=monitored.home))
    try:
        candidate = workspace.tracking.get_version("churn", 2)
        assert candidate.stage == "staging"
        assert workspace.tracking.get_version("churn", 1).stage == "none"
        history = workspace.registry.history("churn")
        staged = [event for event in history if event.to_stage == "staging"]
        assert len(staged) == 1 and "accuracy-drop" in str(staged[0].details)
        alerts = workspace.alert_history.list(model="churn")
    finally:
        workspace.close()
    assert sorted((a.rule, a.status) for a in alerts) == [
        ("accuracy-drop", "fired"),
        *[("accuracy-drop", "suppressed")] * 3,
        ("feature-drift", "fired"),
        *[("feature-drift", "suppressed")] * 3,
    ]
    (retrained,) = [a for a in alerts if a.rule == "accuracy-drop" and a.status == "fired"]
    assert [d["channel"] for d in retrained.deliveries] == ["log", "retrain"]
    assert retrained.deliveries[1]["result"]["version"] == 2
    listed = invoke_cli("monitor", "alerts", "--model", "churn", home=monitored.home).stdout
    assert "feature-drift" in listed and "accuracy-drop" in listed


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_the_report_renders_in_chromium(
    monitored: Monitored, browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    invoke_cli("monitor", "report", "churn", "--window", f"{DRIFTED} rows", "-o", str(out),
               home=monitored.home)  # fmt: skip
    html_path = out / "churn-monitoring.html"
    content = json.loads((out / "churn-monitoring.json").read_text())
    assert content["drift"]["share"] == pytest.approx(2 / 9)
    assert set(content["distributions"]) == {*FEATURES, "prediction"}

    page = open_report(browser, html_path)
    for column in ("age", "monthly_charges"):
        card = page.locator(f"#drift-{column}")
        assert card.is_visible()
        assert card.locator(".pill.error").inner_text() == "drift"
    assert page.locator("#drift-contract .pill.ok").inner_text() == "stable"
    labels = charts_have_size(page)
    assert len(labels) >= len(FEATURES) + 1 + 1 + 3  # features, prediction, performance, health
    screenshot(page, tmp_path / "monitoring-report.png")
    page.close()
