"""What work costs: wall time, CPU time and peak memory of a block of code, and their price.

A task measures itself where it runs (``measure_call`` inside a worker) and returns its
:class:`Usage` with its result, so the caller can add up what a trial or a whole run used no matter
which executor ran it. Usages add up as a bill does: times are summed, and the memory figure is the
largest peak of any one part, since parts that ran one after the other never held their memory at
the same time (and parallel ones ran in different processes, each billed for its own).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from mlship.prices import GB, Prices, Usage

if TYPE_CHECKING:
    import pandas as pd
    import psutil

__all__ = ["GB", "Measurement", "Prices", "Usage", "measure", "measure_call", "predict_latency"]

P = ParamSpec("P")
R = TypeVar("R")

SAMPLE_SECONDS = 0.01
"""How often the peak-memory sampler reads the resident set size."""


class Measurement:
    """What :func:`measure` yields; :attr:`usage` is available once the block has ended."""

    def __init__(self) -> None:
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage:
        if self._usage is None:
            raise RuntimeError("the usage of a block is known only after the block has ended")
        return self._usage


def _rss(process: psutil.Process, children: bool) -> int:
    import psutil

    total = int(process.memory_info().rss)
    if children:
        for child in process.children(recursive=True):
            try:
                total += int(child.memory_info().rss)
            except psutil.Error:  # the child ended between listing and reading it
                continue
    return total


def _cpu(process: psutil.Process, children: bool) -> float:
    times = process.cpu_times()
    seconds = float(times.user + times.system)
    if children:
        # Only children that have ended and been waited for are counted, as getrusage does.
        seconds += float(times.children_user + times.children_system)
    return seconds


class _PeakSampler(threading.Thread):
    def __init__(self, process: psutil.Process, children: bool) -> None:
        super().__init__(name="mlship-memory-sampler", daemon=True)
        self._process = process
        self._children = children
        self._stop_event = threading.Event()
        self.peak = _rss(process, children)

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, _rss(self._process, self._children))

    def finish(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _rss(self._process, self._children))
        return self.peak


@contextmanager
def measure(*, children: bool = False) -> Iterator[Measurement]:
    """Measure the enclosed block in this process (and its child processes, if ``children``).

    CPU time is user plus system time of the whole process, so threads the block starts count,
    and so would a concurrent thread unrelated to it. Peak memory is the largest resident set
    size seen by a thread that reads it every 10 ms and at both ends of the block: a spike shorter
    than that can be missed, which is accepted to keep the sampler cheap.
    """
    import psutil

    process = psutil.Process()
    measurement = Measurement()
    sampler = _PeakSampler(process, children)
    cpu_started = _cpu(process, children)
    started = time.perf_counter()
    sampler.start()
    try:
        yield measurement
    finally:
        wall = time.perf_counter() - started
        cpu = _cpu(process, children) - cpu_started
        peak = sampler.finish()
        measurement._usage = Usage(wall_seconds=wall, cpu_seconds=cpu, peak_memory_bytes=peak)


def measure_call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[R, Usage]:
    """``fn(*args, **kwargs)`` and what it used; for tasks to return their usage with results."""
    with measure() as measurement:
        result = fn(*args, **kwargs)
    return result, measurement.usage


def predict_latency(model: Any, row: pd.DataFrame, repeats: int = 50) -> dict[str, float]:
    """Median and 95th percentile, in seconds, of ``model.predict`` on one row, as served.

    A few calls come first and are not timed, so lazy imports and first-call caches do not count.
    """
    if len(row) != 1:
        raise ValueError(f"predict_latency needs exactly one row, got {len(row)}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(3):
        model.predict(row)
    samples: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict(row)
        samples.append(time.perf_counter() - started)
    if repeats == 1:
        return {"p50_seconds": samples[0], "p95_seconds": samples[0]}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_seconds": statistics.median(samples), "p95_seconds": cuts[94]}
