"""Adaptive micro-batching: requests that arrive together are scored in one ``predict`` call.

Each served version has one queue and one consumer. The consumer takes the oldest request, then
everything already waiting behind it (up to ``max_rows`` rows), and scores them as one frame in a
worker thread; while that runs, new requests queue up and form the next batch. A lone request is
therefore scored at once, with no added wait, and batches grow by themselves with the load: the
per-call overhead of a scikit-learn pipeline (validation, the column transformer) is paid once per
batch instead of once per request. ``max_wait_ms`` optionally holds a batch open a little longer
for more rows, trading latency for throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from starlette.concurrency import run_in_threadpool

from mlship.registry.model_io import LoadedModel

Outputs = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]


@dataclass
class _Waiting:
    frame: pd.DataFrame
    future: asyncio.Future[Outputs]


class Batcher:
    """Scores one model's requests in batches; use from one event loop."""

    def __init__(
        self,
        model: LoadedModel,
        max_rows: int = 256,
        max_wait_ms: float = 0.0,
        on_batch: Any = None,
    ) -> None:
        self.model = model
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._consumer: asyncio.Task[None] | None = None

    async def predict(self, frame: pd.DataFrame) -> Outputs:
        """Predictions (and class probabilities) for ``frame``, scored with whatever else waits."""
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._consumer = loop.create_task(self._consume(self._queue))
        waiting = _Waiting(frame, loop.create_future())
        await self._queue.put(waiting)
        return await waiting.future

    async def _consume(self, queue: asyncio.Queue[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            rows = len(batch[0].frame)
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
                rows += len(item.frame)
            await self._score(batch)

    async def _score(self, batch: list[_Waiting]) -> None:
        frames = [item.frame for item in batch]
        joined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        try:
            labels, proba = await run_in_threadpool(self.model.predict, joined)
        except Exception as exc:  # every request of the batch gets the error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), len(joined))
        start = 0
        for item in batch:
            end = start + len(item.frame)
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
