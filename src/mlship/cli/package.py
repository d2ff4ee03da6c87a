"""``mlship package``: a self-contained bundle of one model version, to serve anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlship.cli.console import err, out
from mlship.store.entities import model_of

if TYPE_CHECKING:
    from mlship.package.manifests import Shape
    from mlship.store.entities import ModelVersion


def package(
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION, MODEL@STAGE, or MODEL (newest).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="New directory for the bundle.")],
    image: Annotated[
        str | None,
        typer.Option(help="Container image name in the manifests; mlship-MODEL:VERSION if unset."),
    ] = None,
    replicas: Annotated[int, typer.Option(help="Pods at least (and to start with).", min=1)] = 2,
    max_replicas: Annotated[int, typer.Option(help="Pods at most (autoscaler).", min=1)] = 10,
    cpu: Annotated[str, typer.Option(help="CPU request per pod.")] = "500m",
    memory: Annotated[str, typer.Option(help="Memory request per pod.")] = "512Mi",
    memory_limit: Annotated[str, typer.Option(help="Memory limit per pod.")] = "1Gi",
    workers: Annotated[int, typer.Option(help="Server worker processes per pod.", min=1)] = 1,
    target_rps: Annotated[
        int,
        typer.Option(
            help="Requests a second per pod the autoscaler aims at (mlship_requests_per_second).",
            min=1,
        ),
    ] = 50,
    auth: Annotated[
        str,
        typer.Option(
            help="Ask callers for a token: off, keys (deployment keys from the Secret "
            "mlship-serve-keys) or tokens (API tokens of the tracking server in the Secret "
            "mlship-tracking).",
        ),
    ] = "off",
    scale_to_zero: Annotated[
        str,
        typer.Option(
            help="Let the version scale to zero pods: off (a HorizontalPodAutoscaler, never "
            "below --replicas), keda (a KEDA ScaledObject on the request rate from Prometheus) "
            "or knative (a Knative Service).",
        ),
    ] = "off",
    cooldown: Annotated[
        int,
        typer.Option(
            help="Seconds without requests before the last pod goes (scale to zero).", min=1
        ),
    ] = 300,
    concurrency: Annotated[
        int,
        typer.Option(help="Requests one pod serves at once under Knative; the rest queue.", min=1),
    ] = 50,
    prometheus: Annotated[
        str, typer.Option(help="The Prometheus KEDA reads the request rate from.")
    ] = "http://prometheus-server.monitoring.svc:9090",
    wheels: Annotated[
        bool,
        typer.Option(
            "--wheels",
            help="Carry the wheel of every pinned requirement in the bundle, so that it (and "
            "its image) installs with no package index: `mlship image build` needs it.",
        ),
    ] = False,
    size: Annotated[
        str | None,
        typer.Option(
            help="recommended: take the CPU and memory requests, the memory limit, the replicas "
            "and the autoscaler's targets from the sizing `mlship size` saved for this version "
            "(instead of --cpu, --memory, --memory-limit, --replicas, --max-replicas, "
            "--target-rps).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write MODEL's bundle: model, signature, pinned requirements, server config, Dockerfile
    and Kubernetes manifests. `mlship serve DIR` serves it with no registry or database."""
    from rich.table import Table

    from mlship.errors import MlshipError
    from mlship.package.manifests import Shape
    from mlship.package.scaling import MODES
    from mlship.package.writer import write_bundle
    from mlship.registry.refs import resolve_version
    from mlship.workspace import Workspace

    if max_replicas < replicas and size is None:
        raise MlshipError(f"--max-replicas {max_replicas} is below --replicas {replicas}")
    if auth not in ("off", "keys", "tokens"):
        raise typer.BadParameter(f"{auth!r}; expected off, keys or tokens", param_hint="--auth")
    if scale_to_zero not in MODES:
        raise typer.BadParameter(
            f"{scale_to_zero!r}; expected {', '.join(MODES[:-1])} or {MODES[-1]}",
            param_hint="--scale-to-zero",
        )
    if not prometheus.startswith(("http://", "https://")):
        raise typer.BadParameter(
            f"{prometheus!r}; expected an http(s) URL", param_hint="--prometheus"
        )
    if size is not None and size != "recommended":
        raise typer.BadParameter(f"{size!r}; expected recommended", param_hint="--size")
    workspace = Workspace.open()
    try:
        version = resolve_version(workspace, ref)
        shape = Shape(
            image=image or f"mlship-{model_of(version).name}:{version.version}",
            replicas=replicas,
            max_replicas=max_replicas,
            cpu=cpu,
            memory=memory,
            memory_limit=memory_limit,
            workers=workers,
            target_requests_per_second=target_rps,
            auth=auth,
            scale_to_zero=scale_to_zero,
            cooldown_seconds=cooldown,
            concurrency=concurrency,
            prometheus=prometheus,
        )
        if size is not None:
            shape = _sized(shape, workspace.settings.home_resolved, version)
        with out.status("packaging") as status:
            written = write_bundle(
                workspace, version, output, shape, wheels=wheels, step=status.update
            )
    finally:
        workspace.close()

    table = Table(title=f"Bundle of {model_of(version).name}:{version.version} in {written.root}")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for name, count in written.files.items():
        table.add_row(name, f"{count:,}")
    out.print(table)
    out.print(f"{len(written.pins)} pinned requirements.")
    for warning in written.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    out.print(
        f"Serve it: mlship serve {written.root}\n"
        f"Container: docker build -t {shape.image} {written.root}"
        + (f" (or mlship image build {written.root})" if wheels else "")
        + "\n"
        f"Kubernetes: kubectl apply -f {written.root / 'kubernetes.yaml'}"
    )


def _sized(shape: Shape, home: Path, version: ModelVersion) -> Shape:
    """``shape`` with the requests, limit, replicas and autoscaler targets of the version's
    saved sizing."""
    from dataclasses import replace

    from mlship.costs.sizing import load

    sizing = load(home, model_of(version).name, version.version)
    out.print(
        f"Sized by mlship size ({sizing.measured_at:%Y-%m-%d %H:%M} UTC): CPU {sizing.cpu}, "
        f"memory {sizing.memory} (limit {sizing.memory_limit}), {sizing.replicas}-"
        f"{sizing.max_replicas} replicas, CPU target {sizing.target_cpu_percent} %"
    )
    return replace(
        shape,
        cpu=sizing.cpu,
        memory=sizing.memory,
        memory_limit=sizing.memory_limit,
        replicas=sizing.replicas,
        max_replicas=sizing.max_replicas,
        target_cpu_percent=sizing.target_cpu_percent,
        target_requests_per_second=sizing.target_rps_per_replica,
    )
