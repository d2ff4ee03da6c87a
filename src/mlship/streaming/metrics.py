"""The stream runner's Prometheus metrics, served on ``--metrics-port``.

Counters of what became of the events (scored, dead letters, late), of redeliveries and of the
rows each version scored; the group's lag as the broker reports it (refreshed every few
seconds by the runner); the time from an event's append to its prediction's publication; and
the size of the micro-batches.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

END_TO_END_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class StreamMetrics:
    """One runner's metrics, in a registry of its own."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.registry = CollectorRegistry()
        self.events = Counter(
            "mlship_stream_events",
            "Events handled, by outcome: scored, dead_letter (a reason in the dead-letter "
            "stream), late (scored after their window closed)",
            ("stream", "outcome"),
            registry=self.registry,
        )
        self.redeliveries = Counter(
            "mlship_stream_redeliveries",
            "Events delivered again (their consumer died or did not acknowledge them in time)",
            ("stream",),
            registry=self.registry,
        )
        self.lag = Gauge(
            "mlship_stream_lag",
            "Events of the stream the group has not handled: undelivered (appended, given to "
            "no consumer yet) and pending (given, not acknowledged)",
            ("stream", "kind"),
            registry=self.registry,
        )
        self.end_to_end = Histogram(
            "mlship_stream_end_to_end_seconds",
            "From an event's append to the broker to its prediction's publication",
            ("stream",),
            buckets=END_TO_END_BUCKETS,
            registry=self.registry,
        )
        self.batch_events = Histogram(
            "mlship_stream_batch_events",
            "Events in one micro-batch",
            ("stream",),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "mlship_stream_rows_scored",
            "Events scored, per version and role (stream: published; shadow: logged only)",
            ("stream", "model", "version", "role"),
            registry=self.registry,
        )
        self.failures = Counter(
            "mlship_stream_batch_failures",
            "Batches left unacknowledged because their features could not be computed or their "
            "record or outputs could not be written (they are delivered again)",
            ("stream", "stage"),
            registry=self.registry,
        )
        for outcome in ("scored", "dead_letter", "late"):
            self.events.labels(stream, outcome)
        self.redeliveries.labels(stream)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Answer ``GET /metrics`` on ``host``:``port`` from a background thread."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
