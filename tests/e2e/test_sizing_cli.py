"""``mlship size`` from the command line: a short sweep on a real replica of the model server,
a saved sizing whose figures agree with each other, manifests packaged from it, and the usage
ledger's verdict on it. Only the structure and the arithmetic are checked, never a speed."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlship.config import Settings
from mlship.costs.ledger import UsageRecord, write_usage
from mlship.store.clock import utcnow
from mlship.workspace import Workspace
from tests.conftest import invoke_cli
from tests.quick_project import fast_churn

# A target any machine meets at a few requests a second: the test is of the structure.
SWEEP = ("--p99", "5s", "--rps", "40", "--duration", "0.5s", "--steps", "3", "--start-rps", "2")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlship.spec import load_spec
    from mlship.train.run import execute

    root = tmp_path_factory.mktemp("sizing")
    ws = Workspace.open(Settings(home=root / "ws", n_jobs=1, user="tester"))
    execute(load_spec(fast_churn(root / "churn")), ws)
    ws.close()
    return root / "ws"


def _documents(path: Path) -> dict[str, dict[str, Any]]:
    """The manifests by kind, each valid against the Kubernetes schemas."""
    kubernetes = kubernetes_validate.utils.latest_version()
    found = {}
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, kubernetes, strict=True)  # raises when invalid
        found[document["kind"]] = document
    return found


def test_bad_arguments_are_refused_by_name(home: Path) -> None:
    fast = invoke_cli("size", "churn:1", "--p99", "fast", "--rps", "200", home=home, check=False)
    assert fast.returncode == 1 and "--p99 'fast': expected a latency such as 50ms" in fast.stderr
    negative = invoke_cli("size", "churn:1", "--p99", "50ms", "--rps", "-1", home=home,
                          check=False)  # fmt: skip
    assert negative.returncode != 0 and "--rps" in negative.stderr
    assert "expected requests a second above zero" in negative.stderr
    unknown = invoke_cli("size", "nope:1", *SWEEP, home=home, check=False)
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    missing = invoke_cli("size", "churn:1", "--rps", "20", home=home, check=False)
    assert missing.returncode == 1 and "--p99 50ms --rps 200" in missing.stderr
    for result in (fast, negative, unknown, missing):
        assert "Traceback" not in result.stderr


def test_a_payload_the_model_refuses_stops_the_sweep_with_the_servers_reason(
    home: Path, tmp_path: Path
) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"records": [{"age": "old"}]}')
    refused = invoke_cli("size", "churn:1", *SWEEP, "--payload", str(body), home=home,
                         check=False)  # fmt: skip
    assert refused.returncode == 1
    text = " ".join(refused.stderr.split())
    assert "the replica refused the request body with HTTP 422" in text
    assert "records[0].age" in text and "Traceback" not in refused.stderr
    assert "Saved" not in refused.stdout


def test_packaging_by_a_sizing_that_was_never_made_says_how_to_make_it(
    home: Path, tmp_path: Path
) -> None:
    saved = home / "sizing" / "churn-v1.json"
    aside = tmp_path / "sizing-aside.json"
    if saved.exists():  # made by a test that ran first
        saved.rename(aside)
    try:
        refused = invoke_cli("package", "churn:1", "-o", str(tmp_path / "b"), "--size",
                             "recommended", home=home, check=False)  # fmt: skip
    finally:
        if aside.exists():
            aside.rename(saved)
    assert refused.returncode == 1
    assert "no sizing is saved for churn:1" in refused.stderr
    assert "run mlship size churn:1 --p99 ... --rps ... first" in refused.stderr
    bogus = invoke_cli("package", "churn:1", "-o", str(tmp_path / "c"), "--size", "huge",
                       home=home, check=False)  # fmt: skip
    assert bogus.returncode != 0 and "expected recommended" in bogus.stderr


def test_a_sweep_recommends_consistent_figures_that_the_manifests_carry(
    home: Path, tmp_path: Path
) -> None:
    done = invoke_cli("size", "churn:1", *SWEEP, home=home)
    assert "Sweep" in done.stdout and "Recommended for churn:1 at 40 requests/s" in done.stdout
    assert "Monthly cost of each shape" in done.stdout
    assert "/s: p99" in done.stderr  # each rate shown as it is measured
    saved = home / "sizing" / "churn-v1.json"
    assert f"Saved: {saved}" in done.stdout.replace("\n", "")
    sizing = json.loads(saved.read_text())
    assert 1 <= len(sizing["steps"]) <= 3
    assert sizing["capacity_rps"] > 0 and sizing["cores_used"] >= 0
    assert sizing["peak_rss_bytes"] > 0
    met = [s["rate"] for s in sizing["steps"] if s["failed"] == 0 and s["p99_ms"] <= 5000]
    assert sizing["capacity_rps"] == max(met)
    assert sizing["cpu_m"] == max(100, math.ceil(sizing["cores_used"] / 0.7 * 10 - 1e-9) * 100)
    per_replica = sizing["capacity_rps"] * 0.7
    assert sizing["replicas"] == max(2, math.ceil(40 / per_replica - 1e-9))
    assert sizing["memory_mib"] % 64 == 0
    assert sizing["memory_mib"] * 2**20 >= sizing["peak_rss_bytes"]
    assert sizing["memory_limit_mib"] > sizing["memory_mib"]
    assert [o["name"] for o in sizing["options"]] == ["recommended", "half-size", "double-size"]

    out = tmp_path / "bundle"
    packaged = invoke_cli("package", "churn:1", "-o", str(out), "--size", "recommended",
                          home=home)  # fmt: skip
    assert "Sized by mlship size" in packaged.stdout
    documents = _documents(out / "kubernetes.yaml")
    deployment = documents["Deployment"]["spec"]
    assert deployment["replicas"] == sizing["replicas"]
    resources = deployment["template"]["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": f"{sizing['cpu_m']}m", "memory": f"{sizing['memory_mib']}Mi"},
        "limits": {"memory": f"{sizing['memory_limit_mib']}Mi"},
    }
    hpa = documents["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        sizing["replicas"], sizing["max_replicas"])  # fmt: skip
    cpu_metric, rate_metric = hpa["metrics"]
    assert cpu_metric["resource"]["target"]["averageUtilization"] == 70
    assert rate_metric["pods"]["target"]["averageValue"] == str(sizing["target_rps_per_replica"])


def _record(now: datetime, sizing: dict[str, Any], pid: int, version: int = 1) -> UsageRecord:
    """An hour of a replica using a hundredth of its CPU request and most of its memory's."""
    return UsageRecord(
        kind="serving", started_at=now - timedelta(hours=1), ended_at=now, model="churn",
        version=version, deployment="churn-prod", cpu_seconds=0.01 * sizing["cpu_m"] / 1000 * 3600,
        memory_byte_seconds=sizing["memory_mib"] * 2**20 * 0.8 * 3600, requests=500,
        host="node-a", pid=pid,
    )  # fmt: skip


def test_check_tells_what_the_serving_replicas_used_against_the_sizing(home: Path) -> None:
    if not (home / "sizing" / "churn-v1.json").exists():
        invoke_cli("size", "churn:1", *SWEEP, home=home)
    sizing = json.loads((home / "sizing" / "churn-v1.json").read_text())
    ws = Workspace.open(Settings(home=home, user="tester"))
    try:
        now = utcnow()
        records = [_record(now, sizing, pid) for pid in (11, 12)]
        records.append(_record(now, sizing, 13, version=2))  # a version never sized
        write_usage(ws.logs, records, ws.sealing)
    finally:
        ws.close()
    checked = invoke_cli("size", "churn:1", "--check", "--since", "1d", home=home)
    text = " ".join(checked.stdout.split())
    assert "churn-prod" in text
    assert "churn:1 cpu: over-provisioned: uses" in text and "would do, saves" in text
    assert "churn:1 memory: right-sized" in text
    assert "churn:2" not in text  # only the version asked about
    every = " ".join(invoke_cli("size", "--check", home=home).stdout.split())
    assert "churn:1 cpu: over-provisioned" in every
    assert "churn:2: no sizing saved; run mlship size churn:2 --p99 ... --rps ..." in every
    nothing = invoke_cli("size", "churn:1", "--check", "--since", "bogus", home=home,
                         check=False)  # fmt: skip
    assert nothing.returncode == 1 and "--since 'bogus'" in nothing.stderr
