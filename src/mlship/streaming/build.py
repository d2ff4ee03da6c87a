"""Putting a stream runner together from a stream spec: the broker and the group's consumer, the
deployment's live models, the prediction log, the usage ledger and the metrics.

Everything that can be wrong is found here, before the first event is fetched: a spec that does
not read, a model reference the registry does not know, a broker that cannot be reached. Each is
an :class:`~mlship.errors.MlshipError` with one line saying what and where.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlship.brokers.url import open_broker
from mlship.errors import MlshipError
from mlship.monitor.predlog import PredictionLog
from mlship.monitor.stream_rules import stream_log
from mlship.serve.live import LiveModels, RegistrySource
from mlship.serve.usage import UsageMeter
from mlship.spec.deployment import Deployment, load_deployment
from mlship.spec.stream import StreamSpec, load_stream_spec
from mlship.store.logstore import USAGE
from mlship.streaming.metrics import StreamMetrics
from mlship.streaming.runner import StreamRunner, features_for

if TYPE_CHECKING:
    from mlship.workspace import Workspace


@dataclass(frozen=True)
class Built:
    """A runner ready to run, and what to tell the user about it."""

    runner: StreamRunner
    spec: StreamSpec
    deployment: Deployment
    consumer: str
    log_place: str
    usage_place: str


def default_consumer() -> str:
    """This host and process: a name no other consumer of the group has."""
    return f"{socket.gethostname()}-{os.getpid()}"


def deployment_of(spec: StreamSpec) -> Deployment:
    """The deployment whose routes score ``spec``'s events: its file, or one route to its
    model reference."""
    if spec.deployment is not None:
        return load_deployment(spec.deployment)
    assert spec.model is not None
    return Deployment.single(spec.model)


def build_runner(
    spec_path: Path,
    workspace: Workspace,
    *,
    consumer: str | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    max_events: int | None = None,
) -> Built:
    """The runner of the stream spec at ``spec_path`` in ``workspace`` (which must stay open
    while it runs); ``consumer`` names it in the group (this host and process by default)."""
    spec = load_stream_spec(spec_path)
    features = features_for(spec)
    deployment = deployment_of(spec)
    try:
        live = LiveModels(deployment, RegistrySource(workspace))  # loads and verifies them
    except MlshipError as exc:
        key = "model" if spec.model is not None else f"deployment ({spec.deployment})"
        raise MlshipError(f"{spec_path}: {key}: {exc}") from None
    target = stream_log(spec, deployment.log.directory, workspace.logs)
    prediction_log = PredictionLog(target, spec.name, sealing=workspace.sealing)
    name = consumer or default_consumer()
    broker = open_broker(spec.source.url)
    try:
        group = broker.consumer(
            spec.source.stream, spec.source.group, name, claim_idle_ms=spec.source.claim_idle_ms
        )
    except BaseException:
        broker.close()
        raise
    metrics = StreamMetrics(spec.source.stream)
    if metrics_port:
        try:
            metrics.serve(metrics_port, metrics_host)
        except OSError as exc:
            group.close()
            broker.close()
            raise MlshipError(
                f"--metrics-port: cannot listen on {metrics_host}:{metrics_port} "
                f"({exc.strerror or exc}); choose another port"
            ) from None
    usage = UsageMeter(
        workspace.logs,
        spec.name,
        lambda: [served.usage_key for served in (*live.table.routes, *live.table.shadows)],
        sealing=workspace.sealing,
        flush_seconds=deployment.log.flush_seconds,
        kind="stream",
    )
    runner = StreamRunner(
        spec,
        broker,
        group,
        live,
        prediction_log,
        usage=usage,
        metrics=metrics,
        features=features,
        max_events=max_events,
    )
    return Built(
        runner,
        spec,
        deployment,
        name,
        prediction_log.where,
        workspace.logs.location(USAGE),
    )
