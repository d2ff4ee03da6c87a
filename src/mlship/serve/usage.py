"""What a model server uses, per version it serves, recorded in the usage ledger.

A server measures its own process from the moment it started (user plus system CPU time, and
its resident memory read every ``sample_seconds`` and integrated over time), so its records add
up to everything the process used, start-up included (an interval of its own). At least every
``flush_seconds`` and on a graceful shutdown it appends one ``serving`` record per version to the
ledger (``costs/ledger.py``) of the log store its prediction log uses. Every worker process
measures and writes for itself; host and process id tell them apart. A stream runner (``mlship
stream run``) measures itself the same way and writes ``stream`` records.

A process serves several versions at once (a canary, an A/B split, shadows) and the operating
system cannot say which of them a CPU-second went to. The server times each ``predict`` call of
each version, and an interval's CPU and memory are split between versions in proportion to that
time: the work around a prediction (parsing, validation, answering, idling) is spread the same way
as the predictions themselves, so cheap and expensive versions are told apart while nothing the
process used goes unrecorded. An interval in which nothing was predicted goes to the versions
loaded then, in equal shares. Either way the versions' shares add up to the process's total.

Writing the ledger never stops an answer: records a store refuses wait for the next flush
(within :data:`MAX_WAITING`), and the failure is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from mlship.costs.ledger import USAGE, UsageRecord, write_usage
from mlship.errors import MlshipError
from mlship.store.parts import PLAIN, Sealing

if TYPE_CHECKING:
    import psutil

    from mlship.store.logstore import LogStore

logger = logging.getLogger("mlship.serve.usage")

K = TypeVar("K")

MAX_WAITING = 10_000
"""Most records kept while the ledger cannot be written (the oldest go beyond it)."""


@dataclass(frozen=True)
class ServedVersion:
    """A version as the ledger names it (``stage`` None when the server does not know it)."""

    model: str
    version: int
    stage: str | None = None


def shares(busy: Mapping[K, float], loaded: Sequence[K]) -> dict[K, float]:
    """Each version's fraction of an interval: its time predicting over everyone's, or, when
    nothing was predicted, equal parts of the ``loaded`` versions. The fractions add up to 1
    (an empty dict only when nothing was predicted and nothing is loaded)."""
    total = sum(seconds for seconds in busy.values() if seconds > 0)
    if total > 0:
        return {key: seconds / total for key, seconds in busy.items() if seconds > 0}
    unique = list(dict.fromkeys(loaded))
    return {key: 1 / len(unique) for key in unique}


def split(amount: float, fractions: Mapping[K, float]) -> dict[K, float]:
    """``amount`` shared out by ``fractions``; the last share takes what rounding left over, so
    the shares add up to ``amount`` exactly."""
    keys = list(fractions)
    parts = {key: amount * fractions[key] for key in keys[:-1]}
    if keys:
        parts[keys[-1]] = max(0.0, amount - sum(parts.values()))
    return parts


@dataclass(frozen=True)
class Sample:
    """The process's CPU-seconds so far and its resident memory at one moment."""

    monotonic: float
    at: datetime
    cpu_seconds: float
    rss: int


def sample(process: psutil.Process) -> Sample:
    times = process.cpu_times()
    rss = int(process.memory_info().rss)
    return Sample(time.monotonic(), datetime.now(UTC), float(times.user + times.system), rss)


class UsageMeter:
    """Measures this process and writes its usage per served version to the ledger."""

    def __init__(
        self,
        store: LogStore,
        deployment: str,
        loaded: Callable[[], Sequence[ServedVersion]],
        *,
        sealing: Sealing = PLAIN,
        flush_seconds: float = 5.0,
        sample_seconds: float = 1.0,
        kind: str = "serving",
    ) -> None:
        self.store = store
        self.kind = kind
        """The records' kind: ``serving`` for a model server, ``stream`` for a stream runner."""
        self.deployment = deployment
        self.loaded = loaded
        """The versions served right now (for an interval in which nothing was predicted)."""
        self.sealing = sealing
        self.flush_seconds = flush_seconds
        self.sample_seconds = min(sample_seconds, flush_seconds)
        self.failure: str | None = None
        """Why the last write failed; None while records are written."""
        self.dropped = 0
        self.written = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._busy: dict[ServedVersion, float] = {}
        self._requests: dict[ServedVersion, int] = {}
        self._predictions: dict[ServedVersion, int] = {}
        self._waiting: list[UsageRecord] = []
        self._process: psutil.Process | None = None
        self._start: Sample | None = None
        self._last: Sample | None = None
        self._memory = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def predicted(self, version: ServedVersion, seconds: float) -> None:
        """``seconds`` spent in one ``predict`` call of ``version``."""
        with self._lock:
            self._busy[version] = self._busy.get(version, 0.0) + seconds

    def answered(self, version: ServedVersion, rows: int, requests: int = 1) -> None:
        """``requests`` requests (one by default; a stream's batch, one per event) of ``rows``
        records in all answered by ``version``."""
        with self._lock:
            self._requests[version] = self._requests.get(version, 0) + requests
            self._predictions[version] = self._predictions.get(version, 0) + rows

    def start(self) -> None:
        """Start measuring (from the process's start); sample memory and write records in the
        background."""
        import psutil

        if self._thread is not None:
            return
        self._process = psutil.Process()  # this worker's own process, read where it runs
        now = sample(self._process)
        # The first interval starts with the process: starting up (imports, loading the
        # models) is what a replica or a cold start costs, so it is recorded too. Its memory is
        # counted as the resident set of now, which start-up grew to: a little more than held.
        since = min(max(0.0, time.time() - self._process.create_time()), now.monotonic)
        self._start = self._last = Sample(
            now.monotonic - since, now.at - timedelta(seconds=since), 0.0, now.rss
        )
        self._memory = 0.0
        # Start-up is an interval of its own, in which nothing was predicted: it goes to the
        # versions loaded, equally, and is written with the first flush.
        startup = self.records()
        with self._lock:
            self._waiting.extend(startup)
        self._stop.clear()

        def loop() -> None:
            due = time.monotonic() + self.flush_seconds
            while not self._stop.wait(self.sample_seconds):
                try:
                    if time.monotonic() >= due:
                        self.flush()
                        due = time.monotonic() + self.flush_seconds
                    else:
                        self._sample()
                except Exception:  # the meter must outlive any one reading or part
                    logger.exception("recording the server's usage failed")

        self._thread = threading.Thread(target=loop, name="mlship-usage", daemon=True)
        self._thread.start()

    def _sample(self) -> Sample:
        """Read the process now and add the memory held since the last reading (trapezoids)."""
        assert self._process is not None and self._last is not None
        now = sample(self._process)
        elapsed = max(0.0, now.monotonic - self._last.monotonic)
        self._memory += (self._last.rss + now.rss) / 2 * elapsed
        self._last = now
        return now

    def records(self) -> list[UsageRecord]:
        """End the current interval: its records, one per version (the next interval starts)."""
        from mlship.costs.ledger import this_process

        with self._flush_lock:
            assert self._start is not None, "the meter was not started"
            end = self._sample()
            begin, memory = self._start, self._memory
            self._start, self._memory = end, 0.0
            with self._lock:
                busy, self._busy = self._busy, {}
                requests, self._requests = self._requests, {}
                predictions, self._predictions = self._predictions, {}
        cpu = max(0.0, end.cpu_seconds - begin.cpu_seconds)
        fractions = shares(busy, list(self.loaded()))
        cpu_parts, memory_parts = split(cpu, fractions), split(memory, fractions)
        host, pid = this_process()
        versions = list(dict.fromkeys([*fractions, *requests]))
        return [
            UsageRecord(
                kind=self.kind,
                started_at=begin.at,
                ended_at=max(end.at, begin.at),
                model=version.model,
                version=version.version,
                stage=version.stage,
                deployment=self.deployment,
                cpu_seconds=cpu_parts.get(version, 0.0),
                memory_byte_seconds=memory_parts.get(version, 0.0),
                requests=requests.get(version, 0),
                predictions=predictions.get(version, 0),
                host=host,
                pid=pid,
            )
            for version in versions
        ]

    def flush(self) -> int:
        """End the interval and write its records with any that waited; how many were written
        (0 when the store refused them: they wait for the next flush)."""
        fresh = self.records()
        with self._lock:
            waiting = self._waiting + fresh
            self._waiting = []
        if not waiting:
            return 0
        try:
            write_usage(self.store, waiting, self.sealing)
        except (OSError, MlshipError) as exc:
            where = self.store.location(USAGE)
            self._keep(waiting, f"the usage ledger at {where} cannot be written: {exc}")
            return 0
        self.written += len(waiting)
        if self.failure is not None:
            logger.warning("the usage ledger is written again")
            self.failure = None
        return len(waiting)

    def _keep(self, records: list[UsageRecord], failure: str) -> None:
        with self._lock:
            self._waiting = records + self._waiting
            over = len(self._waiting) - MAX_WAITING
            if over > 0:
                del self._waiting[:over]
                self.dropped += over
        if failure != self.failure:
            logger.error("%s; its records wait for the next flush", failure)
        self.failure = failure

    def close(self) -> None:
        """Stop the background thread and write the last interval."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._start is not None:
            try:
                self.flush()
            except Exception:  # a shutdown goes on without its last record
                logger.exception("recording the server's usage at shutdown failed")
