"""``mlship stream land SPEC``: store a stream's events as versioned Parquet for training.

Runs until Ctrl-C or SIGTERM, which finish the batch in hand (written, then acknowledged).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mlship.cli.console import err, out
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.streams.landing import LandedBatch

LAND_SUFFIX = "-land"
"""The landing group is the scorers' group with this suffix: landing never takes their events."""


def land(
    spec: Annotated[Path, typer.Argument(help="The stream spec (stream.yaml).")],
    consumer: Annotated[
        str | None,
        typer.Option(
            help="This lander's name in the landing group (default: land-<host>-<pid>). "
            "Several landers with different names share the stream's events."
        ),
    ] = None,
    max_events: Annotated[
        int,
        typer.Option(help="Write a part once a batch holds this many events.", min=1),
    ] = 10_000,
    every: Annotated[
        str,
        typer.Option(
            help="Write a part at least this often while events come (45s, 5m); at most half "
            "the stream's claim_idle, after which the broker would hand the events out again."
        ),
    ] = "10s",
) -> None:
    """Land a stream's events as Parquet parts of the workspace's logs (streams/<name>), for
    pipelines to train on with a `stream:` source. A batch is acknowledged once its part is
    stored; Ctrl-C or SIGTERM finish the batch in hand."""
    from mlship.brokers.url import open_broker
    from mlship.spec.stream import load_stream_spec
    from mlship.streams.history import history_log
    from mlship.streams.landing import land as land_events
    from mlship.workspace import Workspace

    stream_spec = load_stream_spec(spec)
    source = stream_spec.source
    part_seconds, often = _part_seconds(every, source.claim_idle_ms)
    group = f"{source.group}{LAND_SUFFIX}"
    name = consumer or f"land-{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            err.print(f"{signal.Signals(signum).name}: landing the batch in hand, then stopping")
        stop.set()

    broker = open_broker(source.url)
    try:
        workspace = Workspace.open()
    except BaseException:
        broker.close()
        raise
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        logs = workspace.logs
        where = logs.location(history_log(stream_spec.name))
        reader = broker.consumer(source.stream, group, name, claim_idle_ms=source.claim_idle_ms)
        out.print(
            f"Landing {escape(source.stream)} from {escape(broker.url)} (group {escape(group)}, "
            f"consumer {escape(name)}) into {escape(where)}: a part every {max_events} events "
            f"or {often}"
        )
        try:
            landed = land_events(
                reader,
                logs,
                stream_spec.name,
                sealing=workspace.sealing,
                part_events=max_events,
                part_seconds=part_seconds,
                stop=stop,
                on_batch=_Progress().report,
            )
        finally:
            reader.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        broker.close()
        workspace.close()
    unreadable = (
        f" ({_many(landed.unreadable, 'unreadable event')} not landed)" if landed.unreadable else ""
    )
    out.print(
        f"Stopped: landed {_many(landed.events, 'event')} in {_many(landed.parts, 'part')} into "
        f"{escape(where)}{unreadable}"
    )


def _part_seconds(every: str, claim_idle_ms: int) -> tuple[float, str]:
    """How often a part is written, and how to say it: ``--every``, but at most half the
    stream's ``claim_idle``, since a batch held longer would be handed out again by the broker
    (and landed twice)."""
    from mlship.spec.stream import duration_seconds

    try:
        seconds = duration_seconds(every)
    except ValueError as exc:
        raise MlshipError(f"--every {every!r}: {exc}") from None
    if seconds <= 0:
        raise MlshipError(f"--every {every!r}: must be longer than 0")
    half_idle = claim_idle_ms / 2000
    if 0 < half_idle < seconds:
        return half_idle, f"{half_idle:g}s (half the stream's claim_idle)"
    return seconds, every


class _Progress:
    """Prints each landed batch with the totals so far."""

    def __init__(self) -> None:
        self.events = 0
        self.parts = 0

    def report(self, batch: LandedBatch) -> None:
        self.events += batch.events
        self.parts += batch.part is not None
        skipped = f"; {batch.unreadable} unreadable, not landed" if batch.unreadable else ""
        part = batch.part.name if batch.part is not None else "no part"
        out.print(
            f"Landed {_many(batch.events, 'event')} in {part}{skipped} "
            f"({_many(self.events, 'event')}, {_many(self.parts, 'part')} so far)"
        )


def _many(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"
