"""The loop of ``mlship stream run``: fetch a micro-batch, add its features, score it, write its
record, publish its predictions, acknowledge it.

The order is what makes consumption at least once and outputs once per event:

1. fetch up to ``batch.max_events`` events (waiting up to ``batch.max_wait`` when there are
   none); events another consumer left pending past the group's ``claim_idle`` come first;
2. the features of the stream spec (``streams/online.py``, set up by :func:`features_for`);
3. score (``streaming/scoring.py``);
4. write the batch's prediction-log rows as one part, synchronously: on disk (or in the object
   storage, or on the tracking server) before anything else happens;
5. publish the outputs and the dead letters, each keyed by its event's id: a key the broker has
   already taken is skipped, so an event worked on twice is published once;
6. acknowledge the batch.

A crash anywhere before 6 leaves the batch pending: it is delivered again (to this consumer or
another) and worked on again. Its prediction-log rows are then written twice; readers count a
streamed event once (``monitor/predlog.counted_once``: its first logging, whose prediction is the
one that was published). A batch whose record or outputs cannot be written is not acknowledged
either: it waits for the group's claim timeout and is worked on again.

SIGTERM and SIGINT stop the fetching; the batch in hand is finished (written, published,
acknowledged), the usage ledger gets its last interval, and the process exits 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from mlship.brokers.base import Broker, Consumer, Event
from mlship.brokers.url import shown
from mlship.errors import MlshipError, SpecError
from mlship.monitor.predlog import PredictionLog
from mlship.spec.stream import StreamSpec, duration_seconds
from mlship.streaming.metrics import StreamMetrics
from mlship.streaming.scoring import FeatureValues, ScoredBatch, score_batch

if TYPE_CHECKING:
    from mlship.serve.live import LiveModels
    from mlship.serve.usage import UsageMeter

log = logging.getLogger("mlship.streaming")

LAG_SECONDS = 5.0
"""How often the group's lag is read from the broker for the metrics."""
RETRY_SECONDS = 1.0
"""How long a runner waits after a batch it could not write before it fetches again."""


class Features(Protocol):
    """The online features of a stream spec: one result per event, in order."""

    def apply(self, events: Sequence[Event]) -> Sequence[FeatureValues]: ...

    def close(self) -> None: ...


def features_for(spec: StreamSpec) -> Features | None:
    """The online features of ``spec`` (None when it declares none), kept in its online store's
    Redis (the source's when it names none).

    Events go through them before they are scored: an event whose features cannot be computed
    (its time unreadable) becomes a dead letter; a feature's value is added to the event's
    record before it is checked against the model's signature."""
    if not spec.features:
        return None
    from mlship.streams.online import OnlineFeatures

    url = spec.online_store.url if spec.online_store is not None else spec.source.url
    if urlsplit(url).scheme not in ("redis", "rediss"):
        raise SpecError(
            f"{spec.name}: online_store: features keep their state in Redis, and the source "
            f"{shown(url)} is not one; give online_store: {{url: redis://HOST:PORT/DB}}"
        )
    return OnlineFeatures(spec, url)


class StreamRunner:
    """One consumer of a stream spec's group, scoring with a deployment's live routing table."""

    def __init__(
        self,
        spec: StreamSpec,
        broker: Broker,
        consumer: Consumer,
        live: LiveModels,
        prediction_log: PredictionLog,
        *,
        usage: UsageMeter | None = None,
        metrics: StreamMetrics | None = None,
        features: Features | None = None,
        max_events: int | None = None,
    ) -> None:
        self.spec = spec
        self.broker = broker
        self.consumer = consumer
        self.live = live
        self.prediction_log = prediction_log
        self.usage = usage
        self.metrics = metrics or StreamMetrics(spec.source.stream)
        self.features = features
        self.max_events = max_events or spec.batch.max_events
        self.block_ms = max(1, round(duration_seconds(spec.batch.max_wait) * 1000))
        self.stopping = threading.Event()
        self.handled = 0
        """Events acknowledged by this runner."""
        self._lag_due = 0.0

    def stop(self) -> None:
        """Stop fetching; the batch in hand is finished (safe from a signal handler)."""
        self.stopping.set()

    def run(self) -> None:
        """Work until :meth:`stop`; then close (the usage ledger's last interval included)."""
        self.live.start()
        if self.usage is not None:
            self.usage.start()
        try:
            while not self.stopping.is_set():
                self._refresh_lag()
                try:
                    events = self.consumer.fetch(self.max_events, self.block_ms)
                except (OSError, MlshipError) as exc:  # the broker away: try again shortly
                    log.error("fetching events failed: %s", exc, extra={"event": "fetch_failed"})
                    self.stopping.wait(RETRY_SECONDS)
                    continue
                if events and not self.handle(events):
                    self.stopping.wait(RETRY_SECONDS)
        finally:
            self.close()

    def handle(self, events: Sequence[Event]) -> bool:
        """Work on one batch and acknowledge it (see the module docstring); False when it was
        left unacknowledged because its record or its outputs could not be written."""
        batch = self.write(events)
        if batch is None:
            return False
        published = datetime.now(UTC)
        self.consumer.ack(events)
        self.handled += len(events)
        self._count(batch, events, published)
        return True

    def write(self, events: Sequence[Event]) -> ScoredBatch | None:
        """Steps 2 to 5 of the module docstring: everything but the acknowledgement. The batch,
        or None when its record or its outputs could not be written (nothing to acknowledge)."""
        stream = self.spec.source.stream
        self.metrics.batch_events.labels(stream).observe(len(events))
        again = sum(1 for event in events if event.deliveries > 1)
        if again:
            self.metrics.redeliveries.labels(stream).inc(again)
        try:
            found = self.features.apply(events) if self.features is not None else None
        except (OSError, MlshipError) as exc:  # the online store away: worked on again later
            self._failed("features", events, exc)
            return None
        batch = score_batch(self.live.table, events, entity=self.spec.entity, features=found)
        try:
            self.prediction_log.write(batch.logged)
        except (OSError, MlshipError) as exc:
            self._failed("prediction log", events, exc)
            return None
        try:
            self.broker.publish(self.spec.output.stream, batch.outputs)
            self.broker.publish(self.spec.dead_letter.stream, batch.dead_letters)
        except (OSError, MlshipError) as exc:
            self._failed("publish", events, exc)
            return None
        return batch

    def _failed(self, stage: str, events: Sequence[Event], exc: Exception) -> None:
        self.metrics.failures.labels(self.spec.source.stream, stage).inc()
        log.error(
            "%d events left unacknowledged (delivered again after %s): %s: %s",
            len(events),
            self.spec.source.claim_idle,
            stage,
            exc,
            extra={"event": "batch_failed", "stage": stage},
        )

    def _count(self, batch: ScoredBatch, events: Sequence[Event], published: datetime) -> None:
        stream = self.spec.source.stream
        metrics = self.metrics
        metrics.events.labels(stream, "scored").inc(len(batch.outputs))
        metrics.events.labels(stream, "dead_letter").inc(len(batch.dead_letters))
        metrics.events.labels(stream, "late").inc(batch.late)
        end_to_end = metrics.end_to_end.labels(stream)  # looked up once, not per event
        for event in events:
            seconds = (published - event.appended_at).total_seconds()
            end_to_end.observe(max(0.0, seconds))
        for work in batch.work:
            version = work.version
            labels = (stream, version.model, str(version.version), work.role)
            metrics.rows.labels(*labels).inc(work.rows)
            if self.usage is not None:
                self.usage.predicted(version, work.seconds)
                if work.rows:
                    self.usage.answered(version, work.rows, requests=work.rows)

    def _refresh_lag(self) -> None:
        now = time.monotonic()
        if now < self._lag_due:
            return
        self._lag_due = now + LAG_SECONDS
        try:
            backlog = self.consumer.backlog()
        except (OSError, MlshipError) as exc:  # the metrics wait; the next fetch says more
            log.warning("reading the group's lag failed: %s", exc)
            return
        stream = self.spec.source.stream
        self.metrics.lag.labels(stream, "undelivered").set(backlog.undelivered)
        self.metrics.lag.labels(stream, "pending").set(backlog.pending)

    def close(self) -> None:
        """Stop following promotions, write the usage ledger's last interval, let go of the
        consumer and the broker."""
        self.live.stop()
        self.prediction_log.close()
        if self.usage is not None:
            self.usage.close()
        self._lag_due = 0.0
        try:
            self._refresh_lag()
        finally:
            closing = [self.consumer.close, self.broker.close, self.metrics.close]
            if self.features is not None:
                closing.append(self.features.close)
            for close in closing:
                try:
                    close()
                except (OSError, MlshipError) as exc:  # a broker gone: nothing left to let go
                    log.warning("closing: %s", exc)
        log.info("stopped; %d events handled", self.handled, extra={"event": "shutdown"})
