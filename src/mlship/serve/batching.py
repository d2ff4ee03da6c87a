"""Adaptive micro-batching: requests that arrive together are scored in one ``predict`` call.

Each served version has one queue and one consumer. The consumer takes the oldest request, then
everything already waiting behind it (up to ``max_rows`` rows), builds one frame of all their
records (one frame per batch, not one per request and a concatenation) and scores it; requests
that arrive meanwhile form the next batch. A lone request is therefore scored at once, with no
added wait, and batches grow by themselves with the load: the per-call overhead of a
scikit-learn pipeline (validation, the column transformer) is paid once per batch instead of
once per request. ``max_wait_ms`` optionally holds a batch open a little longer for more rows,
trading latency for throughput.

The batch is scored on the event loop itself, not in a worker thread. A pipeline holds the GIL
for most of ``predict``, so a thread bought no parallelism, only the hand-off there and back (a
lone request paid about half a millisecond for it) and GIL contention with the loop; measured on
the churn model at 32 concurrent requests, scoring on the loop serves about 20% more requests per
second. The price is that the loop answers nothing else (``/health`` included) while a batch is
scored, which at the default ``max_rows`` is tens of milliseconds at most. Servers that need
parallel scoring run several worker processes (``mlship serve --workers N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlship.train.model_io import LoadedModel

Outputs = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]


Records = Sequence[Any]
FrameOf = Callable[[Records], pd.DataFrame]


@dataclass
class _Waiting:
    records: Records
    future: asyncio.Future[Outputs]


class Batcher:
    """Scores one model's requests in batches; use from one event loop."""

    def __init__(
        self,
        model: LoadedModel,
        frame_of: FrameOf,
        max_rows: int = 4096,
        max_wait_ms: float = 0.0,
        on_batch: Any = None,
    ) -> None:
        """``on_batch(requests, rows, seconds)`` is told of every batch scored (rows 0 when
        ``predict`` failed), with the seconds its frame and ``predict`` took."""
        self.model = model
        self.frame_of = frame_of
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._consumer: asyncio.Task[None] | None = None

    async def predict(self, records: Records) -> Outputs:
        """Predictions (and class probabilities) for ``records`` (typed, in the model's input
        order), scored with whatever else waits."""
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._consumer = loop.create_task(self._consume(self._queue))
        waiting = _Waiting(records, loop.create_future())
        await self._queue.put(waiting)
        return await waiting.future

    async def _consume(self, queue: asyncio.Queue[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            rows = len(batch[0].records)
            deadline = loop.time() + self.max_wait
            while rows < self.max_rows:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
                batch.append(item)
                rows += len(item.records)
            self._score(batch)

    def _score(self, batch: list[_Waiting]) -> None:
        records = [record for item in batch for record in item.records]
        started = time.perf_counter()
        try:
            labels, proba = self.model.predict(self.frame_of(records))
        except Exception as exc:  # every request of the batch gets the error
            if self.on_batch is not None:
                self.on_batch(len(batch), 0, time.perf_counter() - started)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), len(records), time.perf_counter() - started)
        start = 0
        for item in batch:
            end = start + len(item.records)
            part = (labels[start:end], None if proba is None else proba[start:end])
            if not item.future.done():  # a client that went away leaves a cancelled future
                item.future.set_result(part)
            start = end

    async def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
