"""``mlship size``: what one replica of a model sustains, the pods that follow from it and what
they cost; ``--check``: what the serving replicas really use against that."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from mlship.cli.console import err, out
from mlship.cli.loadtest import read_payload
from mlship.cli.render import name_column, number_column
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.costs.sizing import Sizing, Step

MAX_RATE_FACTOR = 2.0
"""The sweep stops raising the rate at this many times the expected traffic: one replica that
carries it all, with room, needs no more measuring."""


def size(
    ref: Annotated[
        str | None,
        typer.Argument(
            help="MODEL:VERSION, MODEL@STAGE or MODEL (newest); with --check, only its sizing "
            "(all of them without it).",
            show_default=False,
        ),
    ] = None,
    p99: Annotated[
        str | None, typer.Option(help="The latency 99 % of requests must meet: 50ms, 0.2s.")
    ] = None,
    rps: Annotated[
        float | None, typer.Option(help="Requests a second the version is expected to carry.")
    ] = None,
    duration: Annotated[
        str, typer.Option(help="How long each rate of the sweep is held: 5s, 500ms.")
    ] = "5s",
    steps: Annotated[
        int, typer.Option(help="Most rates the sweep tries (bounds its time).", min=1, max=30)
    ] = 8,
    start_rps: Annotated[
        float, typer.Option(help="The sweep's first rate, doubled until p99 is missed.")
    ] = 5.0,
    cpu: Annotated[
        float | None,
        typer.Option(
            help="Cores the replica may use while measured (pinned to them, whole cores)."
        ),
    ] = 1.0,
    utilisation: Annotated[
        float,
        typer.Option(help="Share of its CPU request a pod runs at (the autoscaler's target)."),
    ] = 0.7,
    availability: Annotated[
        bool,
        typer.Option(
            "--availability/--no-availability",
            help="Two replicas at least, so one can fail or be drained.",
        ),
    ] = True,
    payload: Annotated[
        Path | None,
        typer.Option(
            help="A JSON body every request POSTs to /predict; one record made from the "
            "model's signature by default."
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Compare what the serving replicas used (the usage ledger) with the saved "
            "sizing: over- or under-provisioned, and what a change saves.",
        ),
    ] = False,
    since: Annotated[
        str, typer.Option(help="With --check: the window of usage read, 1h, 24h, 7d.")
    ] = "7d",
) -> None:
    """Find the highest rate one replica answers within --p99 with no errors, measure its CPU
    and memory there, and recommend CPU and memory requests, a memory limit, a replica count
    and an autoscaler target for --rps, with each shape's monthly cost. The sizing is saved,
    for `mlship package MODEL --size recommended`."""
    if check:
        _check(ref, since)
        return
    if ref is None:
        raise typer.BadParameter("give the MODEL to size (or --check)", param_hint="REF")
    if p99 is None or rps is None:
        raise MlshipError("give the latency target and the traffic: --p99 50ms --rps 200")
    from mlship.costs.sizing import parse_latency_ms, parse_seconds

    target_ms = parse_latency_ms(p99)
    step_s = parse_seconds(duration)
    for name, value in (("--rps", rps), ("--start-rps", start_rps)):
        if not math.isfinite(value) or value <= 0:
            raise typer.BadParameter(f"{value:g}; expected requests a second above zero",
                                     param_hint=name)  # fmt: skip
    if cpu is not None and (not math.isfinite(cpu) or cpu <= 0):
        raise typer.BadParameter(f"{cpu:g}; expected cores above zero", param_hint="--cpu")
    if not 0 < utilisation <= 1:
        raise typer.BadParameter(
            f"{utilisation:g}; expected a share above 0 and at most 1", param_hint="--utilisation"
        )
    body = read_payload(payload) if payload is not None else None
    sizing, saved = _measure(ref, target_ms, rps, step_s, steps, start_rps, cpu, utilisation,
                             availability, body)  # fmt: skip
    _print(sizing)
    out.print(f"Saved: {saved}")
    out.print(
        f"Package it: mlship package {sizing.model}:{sizing.version} -o DIR --size recommended"
    )


def _measure(
    ref: str,
    p99_ms: float,
    rps: float,
    step_s: float,
    max_steps: int,
    start_rps: float,
    cpu: float | None,
    utilisation: float,
    availability: bool,
    body: bytes | None,
) -> tuple[Sizing, Path]:
    from mlship.costs.sizing import recommend, save, sweep
    from mlship.loadtest.sweep import example_record, first_answer, measure, replica
    from mlship.price_catalog import shipped_catalog, with_overrides
    from mlship.registry.refs import resolve_version
    from mlship.store.clock import utcnow
    from mlship.store.entities import model_of
    from mlship.workspace import Workspace

    workspace = Workspace.open()
    try:
        version = resolve_version(workspace, ref)
        settings = workspace.settings
    finally:
        workspace.close()
    name = model_of(version).name
    pinned = f"{name}:{version.version}"
    if body is None:
        body = json.dumps({"records": [example_record(version.signature)]}).encode()
    home = settings.home_resolved
    log = home / "sizing" / f"{name}-v{version.version}.serve.log"
    start = min(start_rps, rps * MAX_RATE_FACTOR)
    out.print(
        f"Sizing {pinned}: p99 within {p99_ms:g} ms, {rps:g} requests/s expected; one replica"
        f"{f' on {cpu:g} cores' if cpu is not None else ''}, each rate held {step_s:g} s, "
        f"{max_steps} rates at most"
    )
    table = Table(title="Sweep")
    for header in ("rate/s", "requests", "failed", "p99 ms", "CPU cores", "RSS MiB", "meets"):
        number_column(table, header)

    def shown(step: Step, ok: bool) -> None:
        p99_text = "-" if step.p99_ms is None else f"{step.p99_ms:.1f}"
        err.print(
            f"  {step.rate:g}/s: p99 {p99_text} ms, {step.failed} failed, "
            f"{step.cpu_cores:.2f} cores, {step.peak_rss_bytes / 2**20:.0f} MiB -> "
            + ("meets" if ok else "misses")
        )
        table.add_row(f"{step.rate:g}", str(step.requests), str(step.failed), p99_text,
                      f"{step.cpu_cores:.2f}", f"{step.peak_rss_bytes / 2**20:.0f}",
                      "yes" if ok else "no")  # fmt: skip

    with replica(pinned, log, cpu) as server:
        first_answer(server, body)
        # Requests first, not counted: the first predictions warm caches a busy pod has warm.
        measure(server, body, start, min(step_s, 2.0))
        steps = sweep(
            lambda rate: measure(server, body, rate, step_s),
            p99_ms=p99_ms,
            start_rate=start,
            max_rate=max(start, rps * MAX_RATE_FACTOR),
            max_steps=max_steps,
            on_step=shown,
        )
    out.print(table)
    sizing = recommend(
        model=name,
        version=version.version,
        measured_at=utcnow(),
        steps=steps,
        p99_ms=p99_ms,
        rps=rps,
        utilisation=utilisation,
        availability=availability,
        cpu_limit=float(cpu) if cpu is not None else 0.0,
        catalog=with_overrides(shipped_catalog(), settings.catalog),
        prices=settings.prices,
    )
    return sizing, save(home, sizing)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _print(sizing: Sizing) -> None:
    out.print(
        f"One replica sustains {sizing.capacity_rps:g} requests/s within p99 {sizing.p99_ms:g} ms "
        f"(p99 {sizing.capacity_p99_ms:.1f} ms), using {sizing.cores_used:.2f} cores and "
        f"{sizing.peak_rss_bytes / 2**20:.0f} MiB at most."
    )
    table = Table(title=f"Recommended for {sizing.model}:{sizing.version} at {sizing.rps:g} "
                        f"requests/s")  # fmt: skip
    table.add_column("setting", no_wrap=True)
    table.add_column("value", no_wrap=True)
    name_column(table, "why")
    table.add_row(
        "CPU request",
        sizing.cpu,
        f"{sizing.cores_used:.2f} cores / {sizing.utilisation:g} target, up to 100m",
    )
    table.add_row("memory request", sizing.memory, "peak RSS + 25 %, up to 64Mi")
    table.add_row("memory limit", sizing.memory_limit, "peak RSS x 2")
    table.add_row(
        "replicas",
        str(sizing.replicas),
        escape(sizing.replicas_reason)
        + (f" (a replica carries {sizing.capacity_rps:g} x {sizing.utilisation:g})"),
    )
    table.add_row("autoscaler", f"{sizing.replicas}-{sizing.max_replicas} pods",
                  f"CPU target {sizing.target_cpu_percent} %, "
                  f"{sizing.target_rps_per_replica} requests/s per pod")  # fmt: skip
    out.print(table)
    money = sizing.currency
    options = Table(title=f"Monthly cost of each shape ({money})", box=box.SIMPLE_HEAD)
    options.add_column("shape", overflow="fold")
    options.add_column("pod", no_wrap=True)
    for header in ("replicas", "at prices"):
        number_column(options, header)
    options.add_column("cheapest nodes", overflow="fold")
    for header in ("on-demand", "spot"):
        number_column(options, header)
    for one in sizing.options:
        options.add_row(
            one.name + ("" if one.measured else "*"),
            f"{one.cpu_m}m/{one.memory_mib}Mi",
            str(one.replicas),
            _money(one.requests_month),
            "none holds a pod" if one.instance is None else f"{one.nodes} x {one.instance}",
            _money(one.on_demand_month),
            _money(one.spot_month),
        )
    out.print(options)
    out.print(
        "* scaled from the measured shape: CPU and rate in proportion (double-size runs two "
        "workers, each with the model)."
    )


def _check(ref: str | None, since: str) -> None:
    from mlship.costs.ledger import read_usage
    from mlship.costs.provisioning import checks, used
    from mlship.costs.sizing import load_all
    from mlship.monitor.window import parse_duration
    from mlship.registry.refs import resolve_version
    from mlship.store.clock import utcnow
    from mlship.store.entities import model_of
    from mlship.workspace import Workspace

    try:
        cutoff = utcnow() - timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise MlshipError(f"--since {since!r}: {exc}") from exc
    workspace = Workspace.open()
    try:
        only = None
        if ref is not None:
            version = resolve_version(workspace, ref)
            only = (model_of(version).name, version.version)
        records = read_usage(workspace.logs, workspace.sealing, cutoff)
        settings = workspace.settings
    finally:
        workspace.close()
    sizings = load_all(settings.home_resolved)
    found = [u for u in used(records) if only is None or (u.model, u.version) == only]
    if not found:
        what = f"{only[0]}:{only[1]}" if only else "any model version"
        out.print(f"No serving usage of {what} recorded in the last {since}.")
        return
    table = Table(title=f"Serving usage of the last {since} against the saved sizing")
    name_column(table, "deployment")
    name_column(table, "version")
    for header in ("replicas", "hours", "requests", "cores used", "CPU request", "memory used",
                   "memory request"):  # fmt: skip
        number_column(table, header)
    verdicts: list[str] = []
    for one, sizing, checked in checks(found, sizings, settings.prices):
        label = f"{one.model}:{one.version}"
        table.add_row(
            escape(one.deployment or "-"), label, str(one.replicas),
            f"{one.wall_seconds / 3600:.1f}", f"{one.requests:,}", f"{one.cores:.2f}",
            "-" if sizing is None else sizing.cpu, f"{one.memory_bytes / 2**20:.0f}Mi",
            "-" if sizing is None else sizing.memory,
        )  # fmt: skip
        if checked is None:
            verdicts.append(
                f"{label}: no sizing saved; run mlship size {label} --p99 ... --rps ..."
            )
        else:
            verdicts += [f"{label} {v.resource}: {v.message}" for v in checked]
    out.print(table)
    for line in verdicts:
        out.print(escape(line))
