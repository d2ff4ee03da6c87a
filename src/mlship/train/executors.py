"""Where folds and trials run: in this process, in a local process pool, or on Ray.

Every executor has the same contract, so a search or a cross-validation is written once and runs
anywhere the spec's ``executor`` says:

* ``map(fn, items, shared=...)`` calls ``fn(item, shared)`` for every item and returns the results
  in input order. ``fn`` is a module-level function, so a worker can import it by name.
* ``shared`` holds the large read-only inputs (the training frame, the folds). It travels to each
  worker once, however many tasks there are: a task only carries its small ``item``.
* ``on_result(index, result)`` runs in the calling process as each task finishes, in completion
  order, so a progress display moves while the work runs.
* The first exception raised by a task is raised again by ``map`` with its own type and message
  (the worker's traceback is chained to it), and the tasks that have not started are cancelled.
* Executors never create randomness: every task carries its seed, so the same task list gives the
  same results wherever it runs, in whatever order the tasks finish.
* Leaving the ``with`` block of an executor on an exception (a failed task, Ctrl-C, SIGTERM)
  stops its workers at once instead of waiting for their tasks (:meth:`Executor.abort`), and
  local workers end by themselves when the process that owns them is killed
  (:mod:`mlship.train.lifeline`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Self, TypeVar

from mlship.errors import SpecError
from mlship.train import lifeline

T = TypeVar("T")
R = TypeVar("R")

Task = Callable[[T, dict[str, Any]], R]
OnResult = Callable[[int, R], None]

EXECUTOR_KINDS = ("inline", "process", "ray", "ray://host:port")
CLIENT_ATTEMPTS = 3
"""Connections tried before a Ray cluster counts as unreachable."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _resolve_workers(workers: int | None) -> int:
    if workers is None or workers == -1:
        return available_cores()
    if workers < 1:
        raise ValueError(f"workers must be -1 (all cores) or a positive number, got {workers}")
    return workers


class Executor(ABC):
    """Runs a function over a list of items; see the module docstring for the contract."""

    name: str
    workers: int

    @abstractmethod
    def map(
        self,
        fn: Task[T, R],
        items: Sequence[T],
        *,
        shared: dict[str, Any] | None = None,
        on_result: OnResult[R] | None = None,
    ) -> list[R]:
        """``[fn(item, shared) for item in items]``, run wherever this executor runs things."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers; the executor must not be used afterwards."""

    def abort(self) -> None:
        """Stop the workers without waiting for the tasks they run, and release them."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


class InlineExecutor(Executor):
    """Runs every task here, one after the other: for debugging, profiling and tiny inputs.

    ``shared`` is passed to the tasks as it is, without a copy, which is also why this executor is
    the baseline the others are compared against: no serialisation happens at all.
    """

    name = "inline"

    def __init__(self) -> None:
        self.workers = 1

    def map(
        self,
        fn: Task[T, R],
        items: Sequence[T],
        *,
        shared: dict[str, Any] | None = None,
        on_result: OnResult[R] | None = None,
    ) -> list[R]:
        payload = shared if shared is not None else {}
        results: list[R] = []
        for index, item in enumerate(items):
            result = fn(item, payload)
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results

    def close(self) -> None:
        pass


# The shared inputs of the pool this worker process belongs to, set once by the pool initializer.
_worker_shared: dict[str, Any] = {}
_NOTHING_SHARED: dict[str, Any] = {}


def _install_shared(shared: dict[str, Any], threads: int) -> None:
    global _worker_shared  # noqa: PLW0603 - one value per worker process, set once at its start
    _worker_shared = shared
    _limit_threads(threads)


def _limit_threads(threads: int) -> None:
    """Cap the BLAS and OpenMP pools of a worker process.

    Every worker would otherwise start one thread per core (histogram gradient boosting, LightGBM
    and XGBoost use OpenMP): with N workers on N cores that is N^2 spinning threads, which made a
    5-fold CV of a gradient-boosting model fifty times slower on two loaded cores.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by libraries loaded later
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def _call_with_worker_shared(fn: Task[T, R], item: T) -> R:
    return fn(item, _worker_shared)


def _pool_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessExecutor(Executor):
    """A pool of local worker processes (``concurrent.futures``), all cores by default.

    Workers are started with *forkserver* (*spawn* where the platform has no forkserver), never
    with *fork*: the calling process has threads (the memory sampler of :mod:`mlship.train.cost`,
    BLAS and OpenMP pools, database connection pools, a Ray driver), and a forked copy of a
    threaded process can deadlock on a lock some thread held at the moment of the fork. Forkserver
    forks each worker from a small single-threaded server process, which is as safe as spawn and
    starts workers faster after the first; it is also the default from Python 3.14 on.

    The standard library pool was chosen over joblib's loky because its lifetime belongs to this
    object: loky's reusable executor is one per process, shared with every joblib call, and is
    restarted whenever its initializer changes, so closing or re-initialising it here would pull it
    from under unrelated code. Tasks are plain pickled functions, hence module-level only.

    ``shared`` reaches each worker once through the pool initializer and is kept there in a
    worker-global. The pool is kept across ``map`` calls while ``shared`` is the same object, and
    restarted when a different one is given, so a search that maps batch after batch over the
    same data pays for starting workers and sending the data once. As with any non-fork pool, a
    script that uses it directly needs the ``if __name__ == "__main__":`` guard.
    """

    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = _resolve_workers(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_shared: dict[str, Any] | None = None

    def _pool_for(self, shared: dict[str, Any]) -> ProcessPoolExecutor:
        # Identity, not equality: comparing large frames would cost what resending them costs.
        # Holding the object in _pool_shared also keeps its id from being reused.
        if self._pool is None or self._pool_shared is not shared:
            self._shutdown_pool()
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_pool_context(),
                initializer=lifeline.install,
                initargs=(
                    _install_shared,
                    os.getpid(),
                    shared,
                    max(1, available_cores() // self.workers),
                ),
            )
            self._pool_shared = shared
        return self._pool

    def map(
        self,
        fn: Task[T, R],
        items: Sequence[T],
        *,
        shared: dict[str, Any] | None = None,
        on_result: OnResult[R] | None = None,
    ) -> list[R]:
        if not items:
            return []
        # Calls without shared data all pass the same empty dict, so they reuse one pool.
        pool = self._pool_for(shared if shared is not None else _NOTHING_SHARED)
        futures: dict[Future[R], int] = {
            pool.submit(_call_with_worker_shared, fn, item): index
            for index, item in enumerate(items)
        }
        results: list[Any] = [None] * len(items)
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = futures[future]
                    results[index] = future.result()
                    if on_result is not None:
                        on_result(index, results[index])
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this pool cannot run anything any more.
            self._shutdown_pool(terminate=True)
            raise
        finally:
            for future in pending:
                future.cancel()
        return results

    def _shutdown_pool(self, *, terminate: bool = False) -> None:
        if self._pool is not None:
            if terminate:
                # The standard pool has no public way to stop running tasks before Python 3.14
                # (terminate_workers); until then its worker processes are in _processes.
                workers = getattr(self._pool, "_processes", None) or {}
                for process in list(workers.values()):
                    process.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        self._pool_shared = None

    def close(self) -> None:
        self._shutdown_pool()

    def abort(self) -> None:
        self._shutdown_pool(terminate=True)


def _call_with_shared(fn: Task[T, R], item: T, shared: dict[str, Any]) -> R:
    # Runs in a Ray worker; Ray has already resolved the ObjectRef argument to the shared dict.
    return fn(item, shared)


# Ray's typing of remote functions does not carry through generic tasks; Any says so once, here.
_remote_call: Any = None


def _remote() -> Any:
    global _remote_call  # noqa: PLW0603 - created once, on first use, so importing Ray stays lazy
    if _remote_call is None:
        import ray

        _remote_call = ray.remote(num_cpus=1)(_call_with_shared)
    return _remote_call


class RayExecutor(Executor):
    """Tasks on Ray: a local instance (``address=None``) or a cluster (``ray://host:port``).

    When this process is already connected to Ray, that connection is used as it is. Otherwise,
    with no address, Ray's own ``RAY_ADDRESS`` is honoured, and without it a local instance is
    started with one CPU per core (or per worker, when ``workers`` is given). ``close`` shuts Ray
    down only when this executor called ``ray.init``: for a local instance that stops it, for a
    cluster it only disconnects this driver. A Ray somebody else initialised is left running for
    them. Connecting to a cluster by ``ray://`` uses the Ray Client, which needs ``ray[client]``.

    ``shared`` is put in the object store once (``ray.put``) and every task receives the same
    ObjectRef, which Ray resolves in the worker: each node receives the data once, and the numpy
    buffers inside it (the columns of a frame, the fold indices) are read from shared memory
    without a copy, hence read-only. The put is reused across ``map`` calls while ``shared`` is the
    same object. Only a window of tasks (twice the workers, at least 16) is submitted at a time,
    so the rest is never sent when a task fails, and the window is all there is to cancel.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        if address is not None and address.startswith("ray://"):
            _present_token()  # before Ray is imported: it reads its authentication mode then
        import ray

        self.address = address
        self._owns = False
        if not ray.is_initialized():
            handler = signal.getsignal(signal.SIGTERM)
            _init_ray(address, workers)
            self._owns = True
            _keep_sigterm_handler(handler)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        self.workers = _resolve_workers(workers) if workers is not None else max(1, cluster_cpus)
        self._shared: dict[str, Any] | None = None
        self._shared_ref: Any = None

    def _ref_for(self, shared: dict[str, Any] | None) -> Any:
        import ray

        if shared is None:
            return {}
        if self._shared is not shared:
            self._shared_ref = ray.put(shared)
            self._shared = shared
        return self._shared_ref

    def map(
        self,
        fn: Task[T, R],
        items: Sequence[T],
        *,
        shared: dict[str, Any] | None = None,
        on_result: OnResult[R] | None = None,
    ) -> list[R]:
        import ray
        from ray.exceptions import RayTaskError

        if not items:
            return []
        remote = _remote()
        shared_ref = self._ref_for(shared)
        # Enough tasks in flight to hide Ray's per-task round trip, few enough to cancel cheaply.
        window = max(2 * self.workers, 16)
        results: list[Any] = [None] * len(items)
        in_flight: dict[Any, int] = {}
        next_index = 0
        try:
            while next_index < len(items) or in_flight:
                while next_index < len(items) and len(in_flight) < window:
                    ref = remote.remote(fn, items[next_index], shared_ref)
                    in_flight[ref] = next_index
                    next_index += 1
                try:
                    ready, _ = ray.wait(list(in_flight), num_returns=1)
                except KeyboardInterrupt as exc:
                    # Ray raises a plain KeyboardInterrupt for any signal handler that raised.
                    if lifeline.sigterm_received() and not isinstance(exc, lifeline.Terminated):
                        raise lifeline.Terminated from exc
                    raise
                for ref in ready:
                    index = in_flight.pop(ref)
                    try:
                        results[index] = ray.get(ref)
                    except RayTaskError as exc:
                        # The original exception, with the worker's traceback in the chain.
                        if exc.cause is not None:
                            raise exc.cause from exc
                        raise
                    if on_result is not None:
                        on_result(index, results[index])
        finally:
            for ref in in_flight:
                ray.cancel(ref)
        return results

    def close(self) -> None:
        import ray

        self._shared, self._shared_ref = None, None
        if self._owns and ray.is_initialized():
            ray.shutdown()
        self._owns = False

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, workers={self.workers})"


def _init_ray(address: str | None, workers: int | None) -> None:
    import ray

    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "ignore_reinit_error": True,
    }
    if address is None and not os.environ.get("RAY_ADDRESS"):
        ray.init(address="local", num_cpus=_resolve_workers(workers), **options)
        return
    if address is not None and address.startswith("ray://"):
        import importlib.util

        if importlib.util.find_spec("grpc") is None:
            raise SpecError(
                f"executor {address}: connecting to a Ray cluster needs the Ray Client; "
                "install ray[client]"
            )
        _check_reachable(address)
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            ray.init(address=address, **options)
            return
        except ConnectionError as exc:
            # The client server starts one process per client; when that process dies while
            # starting (a busy head), the next connection gets a fresh one.
            transient = "Initialization failure from server" in str(exc)
            if transient and attempt < CLIENT_ATTEMPTS:
                ray.shutdown()
                time.sleep(attempt)
                continue
            raise SpecError(
                f"executor {address}: cannot connect to the Ray cluster ({exc}). Is its head "
                "running with a client server on that port, and, when the cluster requires "
                "token authentication, is its token in RAY_AUTH_TOKEN or ~/.ray/auth_token?"
            ) from None


def _keep_sigterm_handler(handler: Any) -> None:
    """Put back a SIGTERM handler the program had set before Ray started.

    Ray installs its own native SIGTERM handler in the driver (it logs a stack trace and aborts),
    which bypasses Python's: ``mlship run`` would die with SIGABRT instead of marking its run
    failed and stopping its tasks. A program that never set one keeps Ray's.
    """
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at a ``ray://`` address (the Ray Client retries for
    half a minute before giving up)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise SpecError(
            f"executor {address}: cannot connect to the Ray cluster ({exc.strerror or exc}); "
            "is its head running with a Ray Client server on that port?"
        ) from None


def _present_token() -> None:
    """Send the Ray authentication token to a cluster when one is at hand.

    Ray enables token authentication on new clusters and keeps the token in
    ``~/.ray/auth_token``, but a Ray Client only sends it when ``RAY_AUTH_MODE=token`` is set.
    Setting it whenever a token is available lets ``executor: ray://host:port`` work the way
    ``ray start`` left the cluster; an explicit ``RAY_AUTH_MODE`` is left alone.
    """
    from pathlib import Path

    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def make_executor(kind: str, workers: int | None = None) -> Executor:
    """The executor a spec's ``executor`` value names; ``workers`` None or -1 means all cores.

    A process pool of one worker runs nothing in parallel but still pays for a second interpreter
    that imports the libraries again and receives a copy of the data (about a third of a small
    run's CPU on two cores), so one worker, asked for or all a one-core machine has, runs inline,
    as joblib does with ``n_jobs=1``.
    """
    if kind == "inline":
        return InlineExecutor()
    if kind == "process":
        if _resolve_workers(workers) == 1:
            return InlineExecutor()
        return ProcessExecutor(workers)
    if kind == "ray":
        return RayExecutor(None, workers)
    if kind.startswith("ray://") and len(kind) > len("ray://"):
        return RayExecutor(kind, workers)
    raise SpecError(f"unknown executor {kind!r}; expected one of: {', '.join(EXECUTOR_KINDS)}")
