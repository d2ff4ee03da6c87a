"""Executors: one contract (order, progress, shared inputs sent once, errors, determinism) kept
in-process, on a local process pool and on a real local Ray instance."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from mlship.errors import SpecError
from mlship.train.executors import (
    Executor,
    InlineExecutor,
    ProcessExecutor,
    RayExecutor,
    _init_ray,
    make_executor,
)
from tests.ray_fixture import ray_fixture  # noqa: F401 - provides the session's ray_executor

# Tasks are module-level functions, so that pool and Ray workers can import them by name. Workers
# import this module, so scikit-learn and pandas are imported only where they are used: a pool
# that starts quickly keeps the test session short.


def add_offset(item: int, shared: dict[str, Any]) -> int:
    return item * 10 + int(shared.get("offset", 0))


def wait_for_progress(item: int, shared: dict[str, Any]) -> int:
    """Item 0 finishes only after the caller has seen another result: progress is live."""
    if item == 0:
        marker = Path(shared["marker"])
        deadline = time.monotonic() + 60
        while not marker.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("no result reached the caller while item 0 was running")
            time.sleep(0.01)
    return item


def fail_on_three(item: int, shared: dict[str, Any]) -> int:
    if item == 3:
        raise LookupError(f"item {item} is bad")
    time.sleep(0.05)
    (Path(shared["ran"]) / str(item)).touch()
    return item


class CountedPayload:
    """Counts how often it is pickled in this process, i.e. how often it is sent anywhere."""

    pickles = 0

    def __init__(self, data: np.ndarray[Any, Any]) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        type(self).pickles += 1
        return (CountedPayload, (self.data,))


def where_shared_lives(item: int, shared: dict[str, Any]) -> tuple[int, int]:
    return os.getpid(), id(shared["payload"])


def forest_fold(item: tuple[int, int], shared: dict[str, Any]) -> tuple[float, bytes]:
    """A seeded forest fitted on one fixed fold: its score and its validation probabilities."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score

    seed, fold = item
    X, y = shared["X"], shared["y"]
    train_index, valid_index = shared["folds"][fold]
    model = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=seed, n_jobs=1)
    model.fit(X.iloc[train_index], y.iloc[train_index])
    proba = model.predict_proba(X.iloc[valid_index])[:, 1]
    return float(roc_auc_score(y.iloc[valid_index], proba)), proba.tobytes()


@pytest.fixture(scope="module")
def process_executor() -> Iterator[ProcessExecutor]:
    with ProcessExecutor(2) as executor:
        yield executor


@pytest.fixture(params=["inline", "process", "ray"])
def executor(request: pytest.FixtureRequest) -> Executor:
    if request.param == "inline":
        return InlineExecutor()
    fixture = {"process": "process_executor", "ray": "ray_executor"}[request.param]
    found: Executor = request.getfixturevalue(fixture)
    return found


def test_results_come_back_in_input_order_with_shared_data(executor: Executor) -> None:
    assert executor.map(add_offset, list(range(20)), shared={"offset": 3}) == [
        i * 10 + 3 for i in range(20)
    ]
    assert executor.map(add_offset, [1, 2]) == [10, 20]
    assert executor.map(add_offset, []) == []


def test_inline_reports_each_result_in_turn() -> None:
    seen: list[tuple[int, int]] = []
    InlineExecutor().map(add_offset, [5, 6, 7], on_result=lambda i, r: seen.append((i, r)))
    assert seen == [(0, 50), (1, 60), (2, 70)]


@pytest.mark.parametrize("kind", ["process", "ray"])
def test_results_are_reported_as_they_finish_in_the_calling_thread(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    executor: Executor = request.getfixturevalue(f"{kind}_executor")
    marker = tmp_path / "first-result-seen"
    seen: list[tuple[int, int]] = []
    threads: set[int] = set()

    def on_result(index: int, result: int) -> None:
        seen.append((index, result))
        threads.add(threading.get_ident())
        marker.touch()

    items = list(range(6))
    results = executor.map(
        wait_for_progress, items, shared={"marker": str(marker)}, on_result=on_result
    )
    assert results == items
    assert sorted(seen) == [(i, i) for i in items]
    # Item 0 could only end after some other result had been handed to on_result.
    assert seen[0][0] != 0
    assert threads == {threading.get_ident()}


def test_pool_sends_shared_data_to_each_worker_once(process_executor: ProcessExecutor) -> None:
    CountedPayload.pickles = 0
    shared = {"payload": CountedPayload(np.arange(1000))}
    first = process_executor.map(where_shared_lives, list(range(12)), shared=shared)
    second = process_executor.map(where_shared_lives, list(range(12)), shared=shared)
    workers = {pid for pid, _ in first + second}
    # Once per worker process started (through the pool initializer), not once per task; the
    # second call with the same shared object reuses the workers and sends nothing. (A worker
    # that started late may have had no task to run.)
    assert 1 <= len(workers) <= CountedPayload.pickles <= process_executor.workers
    # Every task of a worker saw the very same unpickled object.
    for pid in workers:
        assert len({ident for p, ident in first + second if p == pid}) == 1
    assert os.getpid() not in workers

    # Different shared data means a fresh pool, initialised with it.
    CountedPayload.pickles = 0
    process_executor.map(where_shared_lives, [1, 2], shared={"payload": CountedPayload(np.ones(3))})
    assert 1 <= CountedPayload.pickles <= process_executor.workers


def test_ray_puts_shared_data_in_the_object_store_once(ray_executor: RayExecutor) -> None:
    import ray

    CountedPayload.pickles = 0
    shared = {"payload": CountedPayload(np.arange(1000))}
    with mock.patch.object(ray, "put", wraps=ray.put) as put:
        ray_executor.map(where_shared_lives, list(range(12)), shared=shared)
        ray_executor.map(where_shared_lives, list(range(12)), shared=shared)
    assert put.call_count == 1
    assert CountedPayload.pickles == 1


def test_inline_passes_shared_data_as_it_is() -> None:
    CountedPayload.pickles = 0
    payload = CountedPayload(np.arange(3))
    results = InlineExecutor().map(where_shared_lives, [1, 2], shared={"payload": payload})
    assert results == [(os.getpid(), id(payload))] * 2
    assert CountedPayload.pickles == 0


def test_a_failing_task_raises_its_own_error_and_cancels_the_rest(
    executor: Executor, tmp_path: Path
) -> None:
    items = list(range(40))
    shared = {"ran": str(tmp_path)}
    with pytest.raises(LookupError, match="item 3 is bad") as caught:
        executor.map(fail_on_three, items, shared=shared)
    assert type(caught.value) is LookupError
    # The executor is still usable, and (the pool being FIFO) anything not cancelled has run.
    assert executor.map(add_offset, [1]) == [10]
    ran = len(list(tmp_path.iterdir()))
    assert ran < len(items) // 2


def test_an_error_in_on_result_stops_the_map(executor: Executor) -> None:
    def on_result(index: int, result: int) -> None:
        raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        executor.map(add_offset, [1, 2, 3], on_result=on_result)


def test_seeded_fits_are_bit_identical_on_every_executor(
    process_executor: ProcessExecutor, ray_executor: RayExecutor
) -> None:
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold

    X_array, y_array = make_classification(
        n_samples=400, n_features=10, n_informative=5, random_state=0
    )
    X = pd.DataFrame(X_array, columns=[f"f{i}" for i in range(10)])
    y = pd.Series(y_array)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=7).split(X, y))
    shared = {"X": X, "y": y, "folds": folds}
    tasks = [(seed, fold) for seed in (0, 1) for fold in range(3)]

    inline = InlineExecutor().map(forest_fold, tasks, shared=shared)
    pool = process_executor.map(forest_fold, tasks, shared=shared)
    on_ray = ray_executor.map(forest_fold, tasks, shared=shared)
    assert inline == pool == on_ray
    # Seeds matter, so identical results are not identical by accident.
    assert inline[0] != inline[3]


def test_make_executor_knows_the_spec_values(ray_executor: RayExecutor) -> None:
    import ray

    assert isinstance(make_executor("inline"), InlineExecutor)
    with make_executor("process", 3) as pool:
        assert isinstance(pool, ProcessExecutor)
        assert pool.workers == 3
    with make_executor("process") as pool:
        assert pool.workers >= 1
    # One worker gains nothing from a pool, so it runs inline.
    assert isinstance(make_executor("process", 1), InlineExecutor)
    with make_executor("ray") as joined:
        assert isinstance(joined, RayExecutor)
        assert joined.map(add_offset, [4]) == [40]
    # It joined the session's Ray, so closing it left that Ray running.
    assert ray.is_initialized()
    assert ray_executor.map(add_offset, [5]) == [50]


@pytest.mark.parametrize("kind", ["dask", "ray://", "Process", ""])
def test_make_executor_refuses_unknown_values(kind: str) -> None:
    with pytest.raises(SpecError, match=r"inline, process, ray, ray://host:port") as caught:
        make_executor(kind)
    assert repr(kind) in str(caught.value)


def test_bad_worker_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        ProcessExecutor(0)


def test_a_cluster_address_without_the_ray_client_is_explained() -> None:
    with (
        mock.patch("importlib.util.find_spec", return_value=None),
        pytest.raises(SpecError, match=r"ray\[client\]"),
    ):
        _init_ray("ray://head.example:10001", None)
