"""Whatever the package options, the scale-to-zero manifests fit KEDA's and Knative's schemas and
carry the options through."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.package.manifests import Shape
from mlship.package.scaling import keda, knative, request_rate_query
from tests.crds import KEDA, KNATIVE, validate_custom

shapes = st.builds(
    Shape,
    image=st.from_regex(r"[a-z0-9][a-z0-9./-]{0,30}:[a-z0-9.]{1,8}", fullmatch=True),
    max_replicas=st.integers(1, 1000),
    target_requests_per_second=st.integers(1, 100_000),
    auth=st.sampled_from(["off", "keys", "tokens"]),
    cooldown_seconds=st.integers(1, 86_400),
    concurrency=st.integers(1, 1000),
    prometheus=st.sampled_from(["http://prometheus:9090", "https://metrics.example.com/prom"]),
)
names = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(name=names, version=st.integers(1, 10_000), shape=shapes)
def test_keda_manifests_fit_the_schema(name: str, version: int, shape: Shape) -> None:
    *_rest, scaled = list(yaml.safe_load_all(keda(name, version, shape)))
    validate_custom(scaled, KEDA)
    spec = scaled["spec"]
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] == shape.max_replicas
    assert spec["cooldownPeriod"] == shape.cooldown_seconds
    metadata = spec["triggers"][0]["metadata"]
    assert metadata["query"] == request_rate_query(f"{name}-{version}")
    assert metadata["threshold"] == str(shape.target_requests_per_second)
    assert metadata["serverAddress"] == shape.prometheus


@settings(derandomize=True, max_examples=40, deadline=None)
@given(name=names, version=st.integers(1, 10_000), shape=shapes)
def test_knative_manifests_fit_the_schema(name: str, version: int, shape: Shape) -> None:
    [service] = list(yaml.safe_load_all(knative(name, version, shape)))
    validate_custom(service, KNATIVE)
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert annotations["autoscaling.knative.dev/max-scale"] == str(shape.max_replicas)
    assert annotations["autoscaling.knative.dev/target"] == str(shape.target_requests_per_second)
    assert template["spec"]["containerConcurrency"] == shape.concurrency
    assert template["spec"]["containers"][0]["image"] == shape.image
