"""Measuring the streams that ``stream.*`` rules name: their group's backlog, from the broker,
and their events' figures, from the prediction log of the stream's deployment.

A rule names a stream spec (``stream: churn-stream.yaml``); the spec says where the broker is,
which group consumes the stream and what the deployment's log is called (the spec's name, or
the folder its deployment file sets). Each pass reads the spec again, so a spec edited between
passes is followed, and opens the broker only for the rules that need it (``stream.lag``,
``stream.pending``): a broker that cannot be reached leaves those rules not evaluated, with the
reason, and the rules read from the log still are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from mlship.brokers.url import open_broker, shown
from mlship.errors import BrokerError, MlshipError
from mlship.monitor.stream_figures import LOG_COLUMNS, stream_figures
from mlship.monitor.traffic import scan_log
from mlship.monitor.window import Window
from mlship.spec.deployment import load_deployment
from mlship.spec.stream import StreamSpec, load_stream_spec
from mlship.store.logread import load_parts, scan_sources
from mlship.store.logstore import PREDICTIONS, LogStore, LogTarget
from mlship.store.parts import PLAIN, Sealing

MONITOR_CONSUMER = "mlship-monitor"
"""The consumer name the backlog is read under; it never fetches, so it takes no events."""


def stream_log(spec: StreamSpec, directory: Path | None, logs: LogStore) -> LogTarget:
    """The prediction log a runner of ``spec`` writes: the folder its deployment's ``log``
    names (``directory``), else ``predictions/<spec name>`` of the workspace's log store."""
    if directory is not None:
        return LogTarget.of(directory)
    return LogTarget(logs, f"{PREDICTIONS}/{spec.name}")


def read_stream_log(
    target: LogTarget, deployment: str, sealing: Sealing = PLAIN, since: datetime | None = None
) -> pl.DataFrame:
    """The rows ``deployment`` logged in ``target`` at or after ``since``, with the columns
    the stream figures read."""
    sources = scan_sources(load_parts(target.store, [target.log], sealing, since))
    if not sources:
        return _empty()
    lazy = scan_log(sources, sealing).filter(pl.col("deployment") == deployment)
    if since is not None:
        lazy = lazy.filter(pl.col("at") >= since)
    return lazy.select(LOG_COLUMNS).collect()


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "request_id": pl.String(),
            "at": pl.Datetime("us", "UTC"),
            "role": pl.String(),
            "output": pl.String(),
        }
    )


class StreamMeasure:
    """The ``stream.*`` figures of the stream specs rules name, for one pass at ``now``."""

    def __init__(
        self,
        logs: LogStore,
        now: datetime,
        sealing: Sealing = PLAIN,
        *,
        timeout_s: float = 3.0,
    ) -> None:
        self.logs = logs
        self.now = now
        self.sealing = sealing
        self.timeout_s = timeout_s

    def subject(self, stream: str) -> str:
        """What an alert about the stream spec at ``stream`` is about: ``stream:NAME``."""
        try:
            return f"stream:{load_stream_spec(Path(stream)).name}"
        except MlshipError:
            return f"stream:{Path(stream).stem}"

    def __call__(self, stream: str, window: Window | None) -> Mapping[str, float | None]:
        """The broker's figures of the spec at ``stream`` when ``window`` is None, else the
        log's figures over ``window``; a :class:`~mlship.errors.MlshipError` saying why not."""
        spec = load_stream_spec(Path(stream))
        if window is None:
            return self.backlog(spec)
        return self.figures(spec, window)

    def backlog(self, spec: StreamSpec) -> dict[str, float | None]:
        """``stream.lag`` (undelivered and pending) and ``stream.pending`` of the spec's group."""
        source = spec.source
        where = f"{source.stream} (group {source.group}) at {shown(source.url)}"
        try:
            broker = open_broker(source.url, timeout_s=self.timeout_s)
            try:
                idle = source.claim_idle_ms
                consumer = broker.consumer(
                    source.stream, source.group, MONITOR_CONSUMER, claim_idle_ms=idle
                )
                try:
                    found = consumer.backlog()
                finally:
                    consumer.close()
            finally:
                broker.close()
        except (OSError, MlshipError) as exc:
            reason = str(exc) if isinstance(exc, BrokerError) else f"{type(exc).__name__}: {exc}"
            raise BrokerError(f"cannot read the backlog of {where}: {reason}") from None
        return {
            "stream.lag": float(found.undelivered + found.pending),
            "stream.pending": float(found.pending),
        }

    def figures(self, spec: StreamSpec, window: Window) -> dict[str, float | None]:
        """The log's figures of the spec's events over ``window``."""
        directory = None
        if spec.deployment is not None:
            directory = load_deployment(spec.deployment).log.directory
        target = stream_log(spec, directory, self.logs)
        since = None
        if window.seconds is not None:
            since = self.now - timedelta(seconds=window.seconds)
        try:
            log = read_stream_log(target, spec.name, self.sealing, since)
        except OSError as exc:
            raise MlshipError(f"cannot read the prediction log {target.where}: {exc}") from None
        return stream_figures(log, window, self.now).metrics()
