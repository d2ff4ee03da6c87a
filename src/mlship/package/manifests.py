"""The container and Kubernetes files of a bundle.

The image installs exactly the bundle's pinned requirements and runs ``mlship serve`` on the
bundle as an unprivileged user. The Kubernetes objects follow the usual production defaults:
readiness and liveness probes on the v2 health endpoints, a pre-stop pause so that endpoints
stop routing before the server drains, a grace period long enough to flush the prediction
log, a read-only root filesystem with a writable state volume, Prometheus scrape annotations,
and a horizontal autoscaler on CPU.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import yaml

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
    workers: int = 1


def dockerfile(ref: str, shape: Shape, *, has_wheels: bool) -> str:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    ready = f"http://127.0.0.1:{PORT}/v2/health/ready"
    probe = json.dumps(
        ["python", "-c", f"import urllib.request; urllib.request.urlopen({ready!r})"]
    )
    listen = ["--host", "0.0.0.0", "--port", str(PORT)]  # noqa: S104 - inside the container
    command = json.dumps(["mlship", "serve", WORKDIR, *listen, "--workers", str(shape.workers)])
    copy_wheels = "COPY wheels/ ./wheels/\n" if has_wheels else ""
    return f"""\
# The model server of {ref}.
#   docker build -t {shape.image} .
#   docker run --rm -e MLSHIP_SIGNING_KEY -p {PORT}:{PORT} {shape.image}
# The model is loaded only if its signature verifies under MLSHIP_SIGNING_KEY, the signing key of
# the workspace that registered it (a secret: pass it at run time, never bake it into the image).
FROM python:{python}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    MLSHIP_HOME={STATE}

WORKDIR {WORKDIR}
# Exactly the pinned packages, nothing resolved at build time (see requirements.txt).
COPY requirements.txt ./
{copy_wheels}RUN pip install --no-cache-dir --no-deps -r requirements.txt
COPY . .
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


def kubernetes(name: str, version: int, shape: Shape) -> str:
    """A Deployment, a Service and a HorizontalPodAutoscaler, as one multi-document YAML."""
    instance = f"{name}-{version}"
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance}
    labels = {
        **selector,
        "app.kubernetes.io/version": str(version),
        "app.kubernetes.io/part-of": "mlship",
    }
    probe = {
        "httpGet": {"path": "/v2/health/ready", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
    }
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
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "fsGroup": UID},
                    "containers": [
                        {
                            "name": "model",
                            "image": shape.image,
                            "ports": [{"name": "http", "containerPort": PORT}],
                            "env": [
                                {"name": "MLSHIP_HOME", "value": STATE},
                                {
                                    # The key the model's signature is checked with.
                                    "name": "MLSHIP_SIGNING_KEY",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": SIGNING_SECRET, "key": "key"}
                                    },
                                },
                            ],
                            "startupProbe": {**probe, "failureThreshold": 60},
                            "readinessProbe": probe,
                            "livenessProbe": {
                                "httpGet": {"path": "/v2/health/live", "port": "http"},
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
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
                    ],
                    "volumes": [{"name": "state", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
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
                }
            ],
        },
    }
    header = (
        f"# {name}:{version} on Kubernetes: kubectl apply -f kubernetes.yaml\n"
        f"# Set the image to where `docker build` pushed it. The prediction log goes to\n"
        f"# {STATE} (an emptyDir here); mount a persistent volume there to keep it.\n"
    )
    return header + yaml.safe_dump_all([deployment, service, autoscaler], sort_keys=False)
