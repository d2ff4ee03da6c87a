"""The container and Kubernetes files of a bundle.

The image installs exactly the bundle's pinned requirements and runs ``mlship serve`` on the
bundle as an unprivileged user. The Kubernetes objects are written for availability:

- replicas spread across zones and hosts (topology spread constraints), and a disruption budget
  so that a node drain or a cluster upgrade takes down one pod at a time;
- rolling updates that add a pod before removing one (``maxSurge`` 1, ``maxUnavailable`` 0);
- a termination that loses no request: Kubernetes takes the pod out of the Service's endpoints
  when it starts terminating, the pre-stop pause keeps it answering while that change reaches
  every node, then SIGTERM makes the server report not ready, finish what is in flight and flush
  the prediction log, all within the grace period;
- an autoscaler on CPU and on requests a second per pod, ``mlship_requests_per_second``: the
  rate of the server's ``mlship_requests_total`` counter, served to the autoscaler by the
  Prometheus adapter (the rule is in the README);
- readiness and liveness probes on the v2 health endpoints (open when the server asks callers
  for a token), a read-only root filesystem with a writable state volume, Prometheus scrape
  annotations, and, with authentication on, the deployment keys (or the tracking server's
  address) from a Secret.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from mlship.package.bundle import DEPLOYMENT_FILE, MANIFEST, MODEL_FILE
from mlship.package.sbom import SBOM_FILE

PORT = 8080
UID = 10001
STATE = "/var/lib/mlship"
WORKDIR = "/srv/bundle"


@dataclass(frozen=True)
class Shape:
    """How the packaged server runs: image name, size and scale."""

    image: str
    replicas: int = 2
    max_replicas: int = 10
    cpu: str = "500m"
    memory: str = "512Mi"
    memory_limit: str = "1Gi"
    target_cpu_percent: int = 70
    target_requests_per_second: int = 50
    workers: int = 1
    auth: str = "off"
    """``off``, ``keys`` (deployment keys from :data:`KEYS_SECRET`) or ``tokens`` (checked by
    the tracking server at the address in :data:`TRACKING_SECRET`)."""
    scale_to_zero: str = "off"
    """``off`` (the HorizontalPodAutoscaler, never below ``replicas``), ``keda`` (a KEDA
    ScaledObject instead of it) or ``knative`` (a Knative Service instead of every object)."""
    cooldown_seconds: int = 300
    """How long a version goes without requests before its last pod is removed."""
    concurrency: int = 50
    """Requests one pod serves at once under Knative; its activator queues the rest."""
    prometheus: str = "http://prometheus-server.monitoring.svc:9090"
    """Where KEDA queries the request rate."""


PRE_STOP_SECONDS = 10
"""How long a terminating pod keeps answering before SIGTERM: endpoint removal reaches every
node's proxy and the ingress within a few seconds."""

DRAIN_SECONDS = 30
"""Time left after the pause for in-flight requests and the prediction log's last flush."""

REQUEST_RATE_METRIC = "mlship_requests_per_second"
"""The per-pod metric the autoscaler reads, from the Prometheus adapter."""


BASE_IMAGE = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
"""The image a bundle's Dockerfile builds on unless ``--build-arg BASE=...`` names another: any
image with a Python of this minor version (``python3``, with its ``venv`` module) and
``useradd``, such as the Debian image ``mlship image base`` makes without a registry."""

VENV = "/opt/mlship"

SERVED = (MODEL_FILE, MANIFEST, DEPLOYMENT_FILE, SBOM_FILE, "README.md")
"""The bundle's files the image holds besides requirements.txt and wheels/."""


def dockerfile(ref: str, shape: Shape, *, has_wheels: bool, offline: bool = False) -> str:
    """``offline``: the bundle carries a wheel of every pinned requirement, so pip installs
    from ``wheels/`` alone and the build needs no package index."""
    ready = f"http://127.0.0.1:{PORT}/v2/health/ready"
    probe = json.dumps(
        ["python", "-c", f"import urllib.request; urllib.request.urlopen({ready!r})"]
    )
    listen = ["--host", "0.0.0.0", "--port", str(PORT)]  # noqa: S104 - inside the container
    command = json.dumps(["mlship", "serve", WORKDIR, *listen, "--workers", str(shape.workers)])
    copy_wheels = "COPY wheels/ ./wheels/\n" if has_wheels or offline else ""
    index = " --no-index --find-links ./wheels" if offline else ""
    return f"""\
# The model server of {ref}.
#   docker build -t {shape.image} .
#   docker run --rm -e MLSHIP_SIGNING_KEY -p {PORT}:{PORT} {shape.image}
# The model is loaded only if its signature verifies under MLSHIP_SIGNING_KEY, the signing key of
# the workspace that registered it (a secret: pass it at run time, never bake it into the image).
# BASE: any image with this Python (python3 and its venv module) and useradd.
ARG BASE={BASE_IMAGE}
FROM ${{BASE}}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    MLSHIP_HOME={STATE} \\
    VIRTUAL_ENV={VENV} \\
    PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN python3 -m venv {VENV}
WORKDIR {WORKDIR}
# Exactly the pinned packages, nothing resolved at build time (see requirements.txt).
COPY requirements.txt ./
{copy_wheels}RUN pip install --no-cache-dir --no-deps{index} -r requirements.txt
# What serving reads, without the wheels again (the layer above holds them).
COPY {" ".join(SERVED)} ./
RUN useradd --system --uid {UID} --no-create-home mlship \\
    && mkdir -p {STATE} && chown {UID} {STATE}
USER {UID}

EXPOSE {PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \\
    CMD {probe}
CMD {command}
"""


def dockerignore() -> str:
    return "Dockerfile\n.dockerignore\nkubernetes.yaml\n"


SIGNING_SECRET = "mlship-signing-key"  # noqa: S105 - the name of a Secret, not a secret
"""The Kubernetes Secret holding the workspace's signing key:
``kubectl create secret generic mlship-signing-key --from-file=key=.mlship/keys/signing.key``."""

KEYS_SECRET = "mlship-serve-keys"  # noqa: S105 - the name of a Secret, not a secret
"""The Secret holding the deployment keys (``NAME ROLE SECRET`` lines) when auth is ``keys``:
``kubectl create secret generic mlship-serve-keys --from-file=keys=keys.txt``."""

TRACKING_SECRET = "mlship-tracking"  # noqa: S105 - the name of a Secret, not a secret
"""The Secret holding the tracking server's address (key ``url``) when auth is ``tokens``."""


def _auth_env(auth: str) -> list[dict[str, Any]]:
    if auth == "keys":
        source = {"secretKeyRef": {"name": KEYS_SECRET, "key": "keys"}}
        return [{"name": "MLSHIP_SERVE_KEYS", "valueFrom": source}]
    if auth == "tokens":
        source = {"secretKeyRef": {"name": TRACKING_SECRET, "key": "url"}}
        return [{"name": "MLSHIP_URL", "valueFrom": source}]
    return []


def kubernetes(name: str, version: int, shape: Shape) -> str:
    """A Deployment, a Service, a PodDisruptionBudget and a HorizontalPodAutoscaler, as one
    multi-document YAML."""
    note = (
        f"# The autoscaler reads {REQUEST_RATE_METRIC} from the Prometheus adapter (see\n"
        f"# mlship's README); without the adapter it scales on CPU alone.\n"
    )
    documents = objects(name, version, shape)
    return header(name, version, shape, note) + yaml.safe_dump_all(documents, sort_keys=False)


def header(name: str, version: int, shape: Shape, scaling: str) -> str:
    """What to do before ``kubectl apply``, as YAML comments; ``scaling`` says how it scales."""
    return (
        f"# {name}:{version} on Kubernetes: kubectl apply -f kubernetes.yaml\n"
        f"# Set the image to where `docker build` pushed it. The prediction log goes to\n"
        f"# {STATE} (an emptyDir here); mount a persistent volume there to keep it.\n"
        + scaling
        + _secret_note(shape.auth)
    )


def objects(name: str, version: int, shape: Shape) -> list[dict[str, Any]]:
    """The Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler."""
    instance = f"{name}-{version}"
    selector, labels = labels_of(name, version)
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": instance, "labels": labels},
        "spec": {
            "replicas": shape.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": PRE_STOP_SECONDS + DRAIN_SECONDS,
                    "topologySpreadConstraints": [
                        _spread("topology.kubernetes.io/zone", selector, "ScheduleAnyway"),
                        _spread("kubernetes.io/hostname", selector, "DoNotSchedule"),
                    ],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "fsGroup": UID},
                    "containers": [container(shape)],
                    "volumes": volumes(),
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": instance, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": instance, "labels": labels},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": instance, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": instance},
            "minReplicas": shape.replicas,
            "maxReplicas": shape.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": shape.target_cpu_percent,
                        },
                    },
                },
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": REQUEST_RATE_METRIC},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(shape.target_requests_per_second),
                        },
                    },
                },
            ],
        },
    }
    return [deployment, service, budget, autoscaler]


def labels_of(name: str, version: int) -> tuple[dict[str, str], dict[str, str]]:
    """The selector of a version's pods, and the labels of everything written for it."""
    instance = f"{name}-{version}"
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance}
    labels = {
        **selector,
        "app.kubernetes.io/version": str(version),
        "app.kubernetes.io/part-of": "mlship",
    }
    return selector, labels


READY_PATH = "/v2/health/ready"


def _ready_probe() -> dict[str, Any]:
    probe = {"httpGet": {"path": READY_PATH, "port": "http"}}
    return {**probe, "periodSeconds": 5, "timeoutSeconds": 2}


def container(shape: Shape) -> dict[str, Any]:
    """The model server's container: probes on the v2 health endpoints, the signing key from
    its Secret, a read-only root with writable state and /tmp, and the pre-stop pause."""
    return {
        "name": "model",
        "image": shape.image,
        "ports": [{"name": "http", "containerPort": PORT}],
        "env": [
            {"name": "MLSHIP_HOME", "value": STATE},
            {
                # The key the model's signature is checked with.
                "name": "MLSHIP_SIGNING_KEY",
                "valueFrom": {"secretKeyRef": {"name": SIGNING_SECRET, "key": "key"}},
            },
            *_auth_env(shape.auth),
        ],
        "startupProbe": {**_ready_probe(), "failureThreshold": 60},
        "readinessProbe": _ready_probe(),
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
        "resources": {
            "requests": {"cpu": shape.cpu, "memory": shape.memory},
            "limits": {"memory": shape.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "state", "mountPath": STATE},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a pod's own
        ],
    }


def volumes() -> list[dict[str, Any]]:
    """The writable state and /tmp of a read-only container (fresh objects: YAML would write
    one object used twice as an anchor and an alias)."""
    return [{"name": "state", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]


def _spread(key: str, selector: dict[str, str], unsatisfiable: str) -> dict[str, Any]:
    """At most one pod more in any zone (or on any host) than in another, counting only the
    pods of the current revision (an old one's pods are going away) and the nodes they may run
    on. Zones are a preference (a cluster may have one, or nodes without the label); hosts are a
    rule, since two pods on one host die together."""
    return {
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": unsatisfiable,
        "labelSelector": {"matchLabels": selector},
        "matchLabelKeys": ["pod-template-hash"],
        "nodeTaintsPolicy": "Honor",
    }


def _secret_note(auth: str) -> str:
    if auth == "keys":
        return (
            f"# Callers need a deployment key: kubectl create secret generic {KEYS_SECRET} "
            "--from-file=keys=keys.txt\n"
        )
    if auth == "tokens":
        return (
            "# Callers need an API token of the tracking server: kubectl create secret generic "
            f"{TRACKING_SECRET} --from-literal=url=https://...\n"
        )
    return ""
