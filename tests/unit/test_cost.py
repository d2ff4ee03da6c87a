"""What work costs: CPU and memory measured where the work runs, priced by the settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from mlship.config import Settings, load_settings
from mlship.errors import ConfigError
from mlship.train.cost import GB, Prices, Usage, measure, measure_call, predict_latency
from mlship.train.executors import ProcessExecutor

ALLOCATION = 200 * 10**6
BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def spin_cpu(cpu_seconds: float) -> None:
    """Spin until this process has used ``cpu_seconds`` more CPU time."""
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        sum(range(100))


def hold_memory(size: int) -> int:
    block = np.ones(size // 8)  # written, so every page is resident
    time.sleep(0.05)  # long enough for the sampler to see it
    return int(block.nbytes)


def measured_allocation(size: int, shared: dict[str, Any]) -> tuple[int, Usage]:
    return measure_call(hold_memory, size)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A directory without mlship.toml as the working directory, and no MLSHIP_* variables."""
    for name in list(os.environ):
        if name.startswith("MLSHIP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cpu_bound_work_is_measured_as_the_cpu_it_used_and_no_more_than_its_wall_time() -> None:
    # The block spins until this process has used 0.3 s of CPU, so the figure it must report
    # does not depend on how busy the machine is: on a loaded machine the wall time grows, the
    # CPU time does not. The kernel counts CPU time in clock ticks (10 ms), hence the 0.02 s
    # allowance below. One thread cannot use more CPU than wall time; the sampler thread's few
    # reads are the allowance above.
    with measure() as measured:
        spin_cpu(0.3)
    usage = measured.usage
    assert usage.cpu_seconds >= 0.3 - 0.02
    assert usage.cpu_seconds <= usage.wall_seconds * 1.1 + 0.05


def test_sleeping_uses_wall_time_but_no_cpu() -> None:
    with measure() as measured:
        time.sleep(0.3)
    assert measured.usage.wall_seconds >= 0.3
    assert measured.usage.cpu_seconds < 0.1


def test_child_processes_count_only_when_asked() -> None:
    command = [sys.executable, "-c", BURN.format(seconds=0.4)]
    with measure() as alone:
        subprocess.run(command, check=True)
    with measure(children=True) as with_children:
        subprocess.run(command, check=True)
    assert alone.usage.cpu_seconds < 0.2
    assert with_children.usage.cpu_seconds >= 0.35


def test_peak_memory_sees_a_short_lived_allocation() -> None:
    before = psutil.Process().memory_info().rss
    with measure() as measured:
        nbytes = hold_memory(ALLOCATION)
    assert nbytes == ALLOCATION
    # The block was freed before the end, so only the sampler could have seen it.
    assert psutil.Process().memory_info().rss < before + ALLOCATION / 2
    assert measured.usage.peak_memory_bytes >= before + 0.9 * ALLOCATION


def test_usage_is_known_only_after_the_block() -> None:
    with measure() as measured, pytest.raises(RuntimeError, match="after the block"):
        _ = measured.usage
    assert measured.usage.wall_seconds >= 0


def test_tasks_measure_themselves_in_their_worker() -> None:
    with ProcessExecutor(1) as executor:
        results = executor.map(measured_allocation, [ALLOCATION, ALLOCATION // 2])
    (first, first_usage), (second, second_usage) = results
    assert (first, second) == (ALLOCATION, ALLOCATION // 2)
    assert first_usage.peak_memory_bytes >= ALLOCATION
    assert second_usage.peak_memory_bytes >= ALLOCATION // 2
    assert first_usage.wall_seconds >= 0.05


def test_usages_add_up_times_and_keep_the_largest_peak() -> None:
    a = Usage(wall_seconds=1.0, cpu_seconds=0.5, peak_memory_bytes=300)
    b = Usage(wall_seconds=2.0, cpu_seconds=1.5, peak_memory_bytes=100)
    assert a + b == Usage(wall_seconds=3.0, cpu_seconds=2.0, peak_memory_bytes=300)
    assert sum([a, b]) == a + b
    assert sum((a, b), Usage.zero()) == a + b
    assert Usage.zero() == Usage()
    assert a.as_dict() == {"wall_seconds": 1.0, "cpu_seconds": 0.5, "peak_memory_bytes": 300}
    assert Usage.from_dict(a.as_dict()) == a


def test_prices_turn_usage_into_money() -> None:
    prices = Prices(cpu_hour=0.05, gb_hour=0.01, currency="EUR")
    # Two CPU-hours, and 2 GB held for one hour.
    usage = Usage(wall_seconds=3600, cpu_seconds=7200, peak_memory_bytes=2 * GB)
    assert prices.cost(usage) == pytest.approx(2 * 0.05 + 2 * 0.01)
    assert Prices().cost(Usage()) == 0
    assert Prices().currency == "USD"
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Prices(cpu_hour=-1)


def test_prices_default_in_settings(clean_env: Path) -> None:
    assert Settings().prices == Prices()


def test_prices_from_the_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSHIP_PRICES__CPU_HOUR", "0.1")
    prices = Settings().prices
    assert prices.cpu_hour == 0.1
    assert prices.gb_hour == Prices().gb_hour


def test_prices_from_mlship_toml_and_the_environment_over_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / "mlship.toml").write_text(
        '[prices]\ncpu_hour = 0.2\ngb_hour = 0.01\ncurrency = "EUR"\n'
    )
    assert Settings().prices == Prices(cpu_hour=0.2, gb_hour=0.01, currency="EUR")
    monkeypatch.setenv("MLSHIP_PRICES__GB_HOUR", "0.02")
    assert Settings().prices == Prices(cpu_hour=0.2, gb_hour=0.02, currency="EUR")


def test_bad_prices_are_reported_with_the_field(clean_env: Path) -> None:
    (clean_env / "mlship.toml").write_text("[prices]\ncpu_hour = -3\n")
    with pytest.raises(ConfigError, match=r"prices\.cpu_hour"):
        load_settings()
    (clean_env / "mlship.toml").write_text("[prices]\ncpu_hours = 3\n")
    with pytest.raises(ConfigError, match=r"prices\.cpu_hours"):
        load_settings()


def test_predict_latency_of_one_row() -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    y = (X["a"] > 20).astype(int)
    model = LogisticRegression().fit(X, y)
    latency = predict_latency(model, X.iloc[[0]], repeats=20)
    assert set(latency) == {"p50_seconds", "p95_seconds"}
    assert 0 < latency["p50_seconds"] <= latency["p95_seconds"] < 1
    with pytest.raises(ValueError, match="exactly one row"):
        predict_latency(model, X.iloc[:2])
