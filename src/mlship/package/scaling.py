"""Kubernetes manifests for a version that scales to zero pods when nobody calls it.

A model called a few times a day costs a pod around the clock under the HorizontalPodAutoscaler,
which never goes below one. Two autoscalers go to zero:

- KEDA: a ScaledObject takes the HorizontalPodAutoscaler's place next to the same Deployment,
  Service and PodDisruptionBudget. It scales on the request rate Prometheus computes from the
  server's ``mlship_requests_total`` counter (the rate the HorizontalPodAutoscaler reads as
  ``mlship_requests_per_second``), aiming at the same requests a second per pod, and removes the
  last pod after a cooldown without requests. At zero pods nothing counts requests, so the
  rate that wakes it must come from somewhere else: the manifest says so, and the README shows
  the ingress query to use.
- Knative: one Knative Service replaces every object (Knative writes its own Deployment and
  autoscaler). Its activator holds requests that arrive at zero pods while one starts, so a
  request itself wakes the model; a cold request waits for the start measured by
  ``benchmarks/bench_cold_start.py``.

Both are checked in the tests against the custom resource schemas KEDA and Knative publish.
"""

from __future__ import annotations

import yaml

from mlship.package.manifests import (
    PORT,
    READY_PATH,
    REQUEST_RATE_METRIC,
    UID,
    Shape,
    container,
    header,
    labels_of,
    objects,
    volumes,
)
from mlship.package.manifests import (
    kubernetes as always_up,
)

MODES = ("off", "keda", "knative")

POLLING_SECONDS = 15
"""How often KEDA asks Prometheus for the request rate (its default is 30 s)."""


def keda(name: str, version: int, shape: Shape) -> str:
    """The Deployment, Service and PodDisruptionBudget of :func:`manifests.objects` and a KEDA
    ScaledObject in place of the HorizontalPodAutoscaler."""
    deployment, service, budget, _autoscaler = objects(name, version, shape)
    instance = f"{name}-{version}"
    _selector, labels = labels_of(name, version)
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": instance, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": instance},
            "minReplicaCount": 0,
            "maxReplicaCount": shape.max_replicas,
            "pollingInterval": POLLING_SECONDS,
            "cooldownPeriod": shape.cooldown_seconds,
            "triggers": [
                {
                    "type": "prometheus",
                    "name": REQUEST_RATE_METRIC,
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": shape.prometheus,
                        "query": request_rate_query(instance),
                        "threshold": str(shape.target_requests_per_second),
                        # Any request at all in the window keeps (or brings) one pod.
                        "activationThreshold": "0",
                        "ignoreNullValues": "true",
                    },
                }
            ],
        },
    }
    note = (
        f"# KEDA scales the Deployment between 0 and {shape.max_replicas} pods on the request\n"
        f"# rate Prometheus at {shape.prometheus} reports, and removes the last pod after\n"
        f"# {shape.cooldown_seconds} s without requests. At zero pods the server counts nothing:\n"
        "# to wake on the first request, change the query to your ingress's request counter\n"
        "# (see mlship's README).\n"
    )
    documents = [deployment, service, budget, scaled]
    return header(name, version, shape, note) + yaml.safe_dump_all(documents, sort_keys=False)


def request_rate_query(instance: str) -> str:
    """Requests a second to the version, over all its pods (KEDA divides by the pod count)."""
    return f'sum(rate(mlship_requests_total{{pod=~"{instance}-.*"}}[1m]))'


def knative(name: str, version: int, shape: Shape) -> str:
    """One Knative Service: from zero to ``max_replicas`` pods on requests a second."""
    instance = f"{name}-{version}"
    _selector, labels = labels_of(name, version)
    model = container(shape)
    # Knative routes to one port (named http1 for HTTP/1.1) and probes it itself; it has no
    # pre-stop hook (its queue proxy drains the pod instead).
    model["ports"] = [{"name": "http1", "containerPort": PORT}]
    model["readinessProbe"] = {"httpGet": {"path": READY_PATH}, "periodSeconds": 1}
    model["livenessProbe"] = {"httpGet": {"path": "/v2/health/live"}, "periodSeconds": 10}
    del model["startupProbe"], model["lifecycle"]
    service = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": instance, "labels": labels},
        "spec": {
            "template": {
                "metadata": {
                    "labels": dict(labels),  # a copy: YAML would write one object twice as an alias
                    "annotations": {
                        "autoscaling.knative.dev/min-scale": "0",
                        "autoscaling.knative.dev/max-scale": str(shape.max_replicas),
                        "autoscaling.knative.dev/metric": "rps",
                        "autoscaling.knative.dev/target": str(shape.target_requests_per_second),
                        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": (
                            f"{shape.cooldown_seconds}s"
                        ),
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "containerConcurrency": shape.concurrency,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "fsGroup": UID},
                    "containers": [model],
                    "volumes": volumes(),
                },
            }
        },
    }
    note = (
        f"# Knative runs 0 to {shape.max_replicas} pods, aiming at "
        f"{shape.target_requests_per_second} requests a second and at most\n"
        f"# {shape.concurrency} at once per pod; the last pod goes after "
        f"{shape.cooldown_seconds} s without requests, and a request\n"
        "# at zero pods waits in Knative's activator while one starts.\n"
    )
    return header(name, version, shape, note) + yaml.safe_dump(service, sort_keys=False)


def kubernetes(name: str, version: int, shape: Shape) -> str:
    """The manifests for ``shape.scale_to_zero``."""
    if shape.scale_to_zero == "keda":
        return keda(name, version, shape)
    if shape.scale_to_zero == "knative":
        return knative(name, version, shape)
    return always_up(name, version, shape)
