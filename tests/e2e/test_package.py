"""``mlship package``: a bundle that serves from a fresh virtualenv, refuses a tampered model,
and carries valid Kubernetes manifests.

The virtualenv is made and filled the way the bundle's Dockerfile fills its image (its ``RUN pip
install`` line, run from the bundle directory), and the server is started with the Dockerfile's
``CMD``: the steps of the image, without a container engine.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from mlship.monitor.predlog import read_log
from mlship.package.bundle import MANIFEST, open_bundle
from mlship.package.manifests import WORKDIR
from mlship.registry.refs import resolve_version
from mlship.workspace import Workspace
from tests.conftest import mlship_env, run_cli
from tests.crds import KEDA, KNATIVE, validate_custom
from tests.serving import RECORD, serving

# What training needs and serving does not: none of it may reach a bundle's environment.
NOT_FOR_SERVING = ("sqlalchemy", "alembic", "optuna", "ray", "polars", "psycopg", "fsspec")


@pytest.fixture(scope="module")
def bundle(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "churn-bundle"
    result = run_cli("package", "churn:1", "-o", str(out), home=trained.settings.home)
    assert "pinned requirements" in result.stdout
    return out


def _records() -> list[dict[str, Any]]:
    return [
        {**RECORD, "age": 20 + 7 * i, "tenure_months": 1 + 5 * i, "support_calls": i % 4}
        for i in range(8)
    ]


def _dockerfile(bundle: Path) -> tuple[list[str], list[str]]:
    """The Dockerfile's ``RUN pip install`` command and its ``CMD``."""
    lines = (bundle / "Dockerfile").read_text().splitlines()
    install = next(line for line in lines if line.startswith("RUN pip install"))
    command = next(line for line in lines if line.startswith("CMD "))
    return shlex.split(install.removeprefix("RUN ")), json.loads(command.removeprefix("CMD "))


def test_a_bundle_serves_from_a_fresh_virtualenv(
    bundle: Path, trained: Workspace, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install, command = _dockerfile(bundle)
    assert install[:2] == ["pip", "install"] and "--no-deps" in install
    # The image skips pip's cache to stay small; here the machine's cache saves the downloads.
    install = [str(venv / "bin" / "pip"), *(a for a in install[1:] if a != "--no-cache-dir")]
    subprocess.run(install, cwd=bundle, check=True, timeout=600, capture_output=True)

    listed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True
    )
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
    assert "mlship" in installed and "scikit-learn" in installed
    assert not [name for name in NOT_FOR_SERVING if name in installed]

    assert command[:3] == ["mlship", "serve", WORKDIR]
    options = command[3:]
    kept = [a for i, a in enumerate(options) if a not in ("--host", "--port")
            and options[i - 1] not in ("--host", "--port")]  # fmt: skip
    home = tmp_path / "state"
    # Without the key that signed the model, or with another one, the bundle does not serve.
    program = [str(venv / "bin" / "mlship")]
    refused = subprocess.run(
        [*program, "serve", str(bundle)], env=mlship_env(home), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert refused.returncode == 1 and "no signing key" in refused.stderr
    wrong = subprocess.run(
        [*program, "serve", str(bundle)], env=mlship_env(home, {"MLSHIP_SIGNING_KEY": "k" * 64}),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrong.returncode == 1 and "signature does not verify" in wrong.stderr
    key = {"MLSHIP_SIGNING_KEY": trained.signing_key.decode()}
    with serving(str(bundle), home, *kept, program=program, env=key) as server:
        records = _records()
        answer = httpx.post(f"{server.base}/predict", json={"records": records}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model"], body["version"]) == ("churn", 1)

        model = trained.load_model(resolve_version(trained, "churn:1"))
        labels, probabilities = model.predict(model.prepare(pd.DataFrame(records), "records"))
        assert probabilities is not None
        assert body["predictions"] == [str(label) for label in labels]
        served = [
            [row[str(c)] for c in model.signature.classes or []] for row in body["probabilities"]
        ]
        np.testing.assert_allclose(served, probabilities, rtol=0, atol=1e-12)

        bad = httpx.post(f"{server.base}/predict", json={"records": [{"age": 3}]}, timeout=30)
        assert bad.status_code == 422 and "tenure_months" in bad.text

        manifests = list(yaml.safe_load_all((bundle / "kubernetes.yaml").read_text()))
        container = manifests[0]["spec"]["template"]["spec"]["containers"][0]
        annotations = manifests[0]["spec"]["template"]["metadata"]["annotations"]
        paths = [
            container[probe]["httpGet"]["path"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe")
        ] + [annotations["prometheus.io/path"]]
        for path in paths:
            assert httpx.get(f"{server.base}{path}", timeout=10).status_code == 200, path
        output = server.stop()
    assert "9 prediction log rows written" in output  # 8 answers and the refused request
    parts = sorted((home / "predictions" / "churn-1").glob("*.parquet"))
    assert sum(pq.read_metadata(part).num_rows for part in parts) == 9
    logged = read_log(home / "predictions" / "churn-1")
    assert sorted(zip(logged["role"].to_pylist(), logged["status"].to_pylist(), strict=True)) == [
        ("error", 422),
        *[("route", 200)] * 8,
    ]


def test_the_manifest_describes_the_version_and_every_file(
    bundle: Path, trained: Workspace
) -> None:
    opened = open_bundle(bundle)
    version = resolve_version(trained, "churn:1")
    assert opened.ref == "churn:1" and opened.sha256 == version.artifact_sha256
    assert opened.manifest["signature"] == version.signature
    assert opened.manifest["metrics"] == version.metrics
    assert opened.manifest["lineage"]["dataset_sha256"] == version.dataset_hash
    for name, sha256 in opened.manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == sha256, name
    assert MANIFEST not in opened.manifest["files"]

    requirements = (bundle / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in requirements if "==" in line)
    from importlib.metadata import version as installed

    assert pins["scikit-learn"] == installed("scikit-learn")
    assert pins["fastapi"] == installed("fastapi")
    assert not [name for name in NOT_FOR_SERVING if name in {p.lower() for p in pins}]
    assert any(line.startswith("./wheels/mlship-") for line in requirements)


def test_a_tampered_bundle_is_refused_before_unpickling(
    bundle: Path, tmp_path: Path, trained: Workspace
) -> None:
    key = {"MLSHIP_SIGNING_KEY": trained.signing_key.decode()}
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    model = copy / "model.pkl"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    result = run_cli("serve", str(copy), home=tmp_path / "ws", check=False, env=key)
    assert result.returncode == 1
    assert "refusing to load model churn:1" in result.stderr
    assert f"does not match the checksum in {MANIFEST}" in result.stderr
    # A new model with its own checksum in the manifest: the signature gives it away.
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["artifact"]["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    (copy / MANIFEST).write_text(json.dumps(manifest))
    result = run_cli("serve", str(copy), home=tmp_path / "ws", check=False, env=key)
    assert result.returncode == 1 and "its signature does not verify" in result.stderr

    empty = tmp_path / "not-a-bundle"
    empty.mkdir()
    result = run_cli("serve", str(empty), home=tmp_path / "ws", check=False)
    assert result.returncode == 1 and f"{MANIFEST} is missing" in result.stderr


def _valid_documents(path: Path) -> list[dict[str, Any]]:
    documents = list(yaml.safe_load_all(path.read_text()))
    kubernetes = kubernetes_validate.utils.latest_version()
    for document in documents:
        kubernetes_validate.validate(document, kubernetes, strict=True)  # raises when invalid
    return documents


def test_the_kubernetes_manifests_are_valid_and_consistent(bundle: Path) -> None:
    documents = _valid_documents(bundle / "kubernetes.yaml")
    kinds = [d["kind"] for d in documents]
    assert kinds == ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"]
    deployment, service, _budget, autoscaler = documents
    template = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    assert service["spec"]["selector"] == selector
    port_names = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert template["spec"]["containers"][0]["image"] == "mlship-churn:1"
    assert [e["name"] for e in template["spec"]["containers"][0]["env"]] == [
        "MLSHIP_HOME", "MLSHIP_SIGNING_KEY",
    ]  # fmt: skip


def test_the_manifests_keep_the_model_available(bundle: Path) -> None:
    """Spread over zones and hosts, one pod down at a time, a new pod before an old one goes,
    a pause before SIGTERM shorter than the grace period, and scaling on requests and CPU."""
    deployment, _service, budget, autoscaler = _valid_documents(bundle / "kubernetes.yaml")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spread.values():
        assert constraint["labelSelector"]["matchLabels"] == selector
        assert constraint["maxSkew"] == 1
    container = pod["containers"][0]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert 0 < pause < pod["terminationGracePeriodSeconds"] - 10
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    metrics = {m["type"]: m for m in autoscaler["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "mlship_requests_per_second"
    assert metrics["Pods"]["pods"]["target"] == {"type": "AverageValue", "averageValue": "50"}


def test_a_bundle_with_keys_asks_for_them(trained: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "keyed-bundle"
    home = trained.settings.home
    run_cli("package", "churn:1", "-o", str(out), "--auth", "keys", "--target-rps", "20",
            home=home)  # fmt: skip
    deployment, *_rest, autoscaler = _valid_documents(out / "kubernetes.yaml")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[-1] == {
        "name": "MLSHIP_SERVE_KEYS",
        "valueFrom": {"secretKeyRef": {"name": "mlship-serve-keys", "key": "keys"}},
    }
    assert autoscaler["spec"]["metrics"][1]["pods"]["target"]["averageValue"] == "20"
    assert yaml.safe_load((out / "deployment.yaml").read_text())["auth"] == {"mode": "keys"}
    signing = {"MLSHIP_SIGNING_KEY": trained.signing_key.decode()}
    refused = run_cli("serve", str(out), home=tmp_path / "pod", env=signing, check=False)
    assert refused.returncode == 1 and "needs deployment keys" in refused.stderr
    key = "pod-key-0123456789abcdef"
    env_keys = {**signing, "MLSHIP_SERVE_KEYS": f"web viewer {key}"}
    with serving(str(out), tmp_path / "pod", "--no-prediction-log", env=env_keys) as server:
        body = {"records": [RECORD]}
        assert httpx.post(f"{server.base}/predict", json=body).status_code == 401
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{server.base}/predict", json=body, headers=headers).status_code == 200


def test_packaging_never_overwrites_and_leaves_nothing_behind(
    bundle: Path, trained: Workspace, tmp_path: Path
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    result = run_cli("package", "churn:1", "-o", str(used), home=trained.settings.home, check=False)
    assert result.returncode == 1 and "not an empty directory" in result.stderr
    assert [p.name for p in used.iterdir()] == ["keep.txt"]

    result = run_cli(
        "package", "churn:9", "-o", str(tmp_path / "b"), home=trained.settings.home, check=False
    )
    assert result.returncode == 1 and "churn" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["used"]  # no temporary directory left


def test_the_schemas_refuse_what_keda_and_knative_would() -> None:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": "m"},
        "triggers": [{"type": "prometheus", "metadata": {"threshold": "5"}}],
    }
    scaled: dict[str, Any] = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "m"},
        "spec": spec,
    }
    validate_custom(scaled, KEDA)
    for broken in (
        {**scaled, "spec": {**spec, "minReplicas": 0}},  # the HPA's name for it
        {**scaled, "spec": {**spec, "cooldownPeriod": "5m"}},
        {**scaled, "spec": {**spec, "triggers": []}},
        {**scaled, "spec": {"triggers": spec["triggers"]}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_custom(broken, KEDA)
    container = {"image": "m:1", "lifecycle": {"preStop": {"exec": {"command": ["sleep"]}}}}
    service = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "m"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }
    with pytest.raises(jsonschema.ValidationError, match="lifecycle"):  # no hooks in Knative
        validate_custom(service, KNATIVE)


def test_keda_scales_the_deployment_to_zero_on_the_request_rate(
    trained: Workspace, tmp_path: Path
) -> None:
    out = tmp_path / "keda-bundle"
    run_cli("package", "churn:1", "-o", str(out), "--scale-to-zero", "keda", "--cooldown", "120",
            "--target-rps", "20", "--max-replicas", "6", home=trained.settings.home)  # fmt: skip
    text = (out / "kubernetes.yaml").read_text()
    assert "removes the last pod after\n# 120 s without requests" in text
    documents = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in documents] == [
        "Deployment", "Service", "PodDisruptionBudget", "ScaledObject",
    ]  # fmt: skip
    kubernetes = kubernetes_validate.utils.latest_version()
    for document in documents[:3]:
        kubernetes_validate.validate(document, kubernetes, strict=True)
    deployment, _service, _budget, scaled = documents
    validate_custom(scaled, KEDA)
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"],
    }  # fmt: skip
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"]) == (0, 6, 120)
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["threshold"] == "20"
    assert trigger["metadata"]["query"] == 'sum(rate(mlship_requests_total{pod=~"churn-1-.*"}[1m]))'
    assert trigger["metadata"]["serverAddress"].startswith("http://")


def test_knative_serves_from_zero_and_probes_readiness(trained: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "knative-bundle"
    run_cli("package", "churn:1", "-o", str(out), "--scale-to-zero", "knative",
            "--concurrency", "8", "--auth", "keys", home=trained.settings.home)  # fmt: skip
    [service] = list(yaml.safe_load_all((out / "kubernetes.yaml").read_text()))
    validate_custom(service, KNATIVE)
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert annotations["autoscaling.knative.dev/max-scale"] == "10"
    assert annotations["autoscaling.knative.dev/metric"] == "rps"
    assert annotations["autoscaling.knative.dev/target"] == "50"
    assert annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "300s"
    assert template["spec"]["containerConcurrency"] == 8
    [container] = template["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready"}
    assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
    assert container["env"][-1]["name"] == "MLSHIP_SERVE_KEYS"
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert mounts == {v["name"] for v in template["spec"]["volumes"]}
    # The probed path answers 200 from the packaged server, open while callers need a key.
    env = {
        "MLSHIP_SIGNING_KEY": trained.signing_key.decode(),
        "MLSHIP_SERVE_KEYS": "w viewer " + "k" * 24,
    }
    with serving(str(out), tmp_path / "pod", "--no-prediction-log", env=env) as server:
        assert httpx.get(f"{server.base}/v2/health/ready", timeout=10).status_code == 200


def test_an_unknown_scale_to_zero_mode_is_refused(trained: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = run_cli("package", "churn:1", "-o", str(out), "--scale-to-zero", "kaeda",
                     home=trained.settings.home, check=False)  # fmt: skip
    assert result.returncode == 2
    assert "'kaeda'; expected off, keda or knative" in result.stderr
    assert not out.exists()
    keda = ["--scale-to-zero", "keda", "--prometheus", "prometheus:9090"]
    result = run_cli("package", "churn:1", "-o", str(out), *keda, home=trained.settings.home,
                     check=False)  # fmt: skip
    assert result.returncode == 2 and "expected an http(s) URL" in result.stderr
