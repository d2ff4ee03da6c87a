"""Health of served models from the prediction log: counts, rates and percentiles per bucket
checked against numpy on the same requests, anomalies against a hand-made series and pandas'
EWMA, old log parts, and the real server's error rows."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from mlship.monitor.health import (
    METRICS,
    Anomaly,
    anomalies,
    flag_anomalies,
    health_series,
    health_summary,
)
from mlship.monitor.predlog import SCHEMA, Entry, PredictionLog, read_log
from mlship.serve.app import create_app
from mlship.serve.batching import Batcher
from mlship.train.model_io import LoadedModel
from mlship.workspace import Workspace
from tests.serving import RECORD

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTES = 12
ERROR_MINUTE = 6  # version 1: 3 refused (422) and 2 failed (500) requests
SPIKE_MINUTE = 8  # version 1: 3 of its 20 answers take 200 ms


@dataclass(frozen=True)
class Sent:
    """One request of the synthetic log, as the test knows it."""

    request_id: str
    at: datetime
    model: str
    version: int
    latency_ms: float
    status: int
    records: int = 2


def _sent() -> list[Sent]:
    rng = np.random.default_rng(7)
    sent: list[Sent] = []
    for minute in range(MINUTES):
        for i in range(20):
            at = T0 + timedelta(minutes=minute, seconds=i * 3 + 0.5)
            latency = float(rng.normal(10, 0.5))
            if minute == SPIKE_MINUTE and i < 3:
                latency = 200.0 + i
            sent.append(Sent(f"a{minute}-{i}", at, "churn", 1, latency, 200))
        for i in range(5):
            at = T0 + timedelta(minutes=minute, seconds=i * 11 + 1)
            sent.append(Sent(f"b{minute}-{i}", at, "churn", 2, float(rng.normal(20, 1)), 200, 1))
        if minute == ERROR_MINUTE:
            for i, status in enumerate((422, 422, 422, 500, 500)):
                at = T0 + timedelta(minutes=minute, seconds=40 + i)
                sent.append(Sent(f"e{i}", at, "churn", 1, 2.0 + i, status, 1))
        at = T0 + timedelta(minutes=minute, seconds=30)
        sent.append(Sent(f"o{minute}", at, "other", 1, 5.0, 200, 1))
    return sent


def _table(sent: list[Sent]) -> pa.Table:
    """The log a server would have written: a row per record for answers, one per error, a
    shadow copy of every version 1 answer and a ``batch`` row (neither is a request)."""
    rows: list[dict[str, Any]] = []
    for s in sent:
        base = {"request_id": s.request_id, "at": s.at, "deployment": "d", "model": s.model,
                "version": s.version, "latency_ms": s.latency_ms}  # fmt: skip
        if s.status != 200:
            rows.append({**base, "role": "error", "input": "", "output": "", "status": s.status,
                         "error": "records[0].age: Input should be a valid integer"})  # fmt: skip
            continue
        for record in range(s.records):
            rows.append({**base, "role": "route", "input": f'{{"r":{record}}}',
                         "output": "{}", "status": 200, "error": None})  # fmt: skip
            if s.version == 1 and s.model == "churn":
                rows.append({**rows[-1], "role": "shadow", "version": 2, "latency_ms": 999.0})
    rows.append({**rows[0], "role": "batch", "request_id": "batch", "latency_ms": 5000.0})
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.fixture(scope="module")
def sent() -> list[Sent]:
    return _sent()


@pytest.fixture(scope="module")
def log(sent: list[Sent]) -> pa.Table:
    return _table(sent)


def _expected(requests: list[Sent], seconds: float) -> dict[str, Any]:
    """The figures of a group of requests, with numpy."""
    answered = np.array([r.latency_ms for r in requests if r.status == 200])
    errors = sum(r.status != 200 for r in requests)
    server = sum(r.status >= 500 for r in requests)
    percentiles = (
        np.percentile(answered, [50, 95, 99]) if answered.size else [None, None, None]
    )  # fmt: skip
    return {
        "requests": len(requests),
        "errors": errors,
        "server_errors": server,
        "error_rate": errors / len(requests) if requests else None,
        "server_error_rate": server / len(requests) if requests else None,
        "throughput_rps": len(requests) / seconds,
        "latency_p50_ms": percentiles[0],
        "latency_p95_ms": percentiles[1],
        "latency_p99_ms": percentiles[2],
    }


def _close(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if value is None:
            assert actual[name] is None, name
        else:
            assert actual[name] == pytest.approx(value, rel=1e-12), name


# -- series and summary ----------------------------------------------------------------------


def test_series_counts_requests_per_version_and_minute_as_numpy_does(
    sent: list[Sent], log: pa.Table
) -> None:
    series = health_series(log, model="churn", every="1m")
    assert series.columns == ["model", "version", "at", *METRICS]
    assert series.height == 2 * MINUTES  # versions 1 and 2; shadows, batch and "other" left out
    assert series["at"].dtype == pl.Datetime("us", "UTC")
    for row in series.iter_rows(named=True):
        start = row["at"]
        bucket = [
            s for s in sent
            if s.model == "churn" and s.version == row["version"]
            and start <= s.at < start + timedelta(minutes=1)
        ]  # fmt: skip
        _close(row, _expected(bucket, 60.0))
    errors = series.filter(pl.col("version") == 1, pl.col("at") == T0 + timedelta(minutes=6))
    assert errors.row(0, named=True)["error_rate"] == pytest.approx(5 / 25)
    assert errors.row(0, named=True)["server_error_rate"] == pytest.approx(2 / 25)
    assert series["errors"].sum() == 5


def test_series_of_all_versions_together_and_since(sent: list[Sent], log: pa.Table) -> None:
    since = T0 + timedelta(minutes=9, seconds=30)
    series = health_series(_polars(log), model="churn", every="5m", since=since, by_version=False)
    assert series.columns == ["model", "at", *METRICS]
    assert series["at"].to_list() == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    for row in series.iter_rows(named=True):
        bucket = [
            s for s in sent
            if s.model == "churn" and since <= s.at
            and row["at"] <= s.at < row["at"] + timedelta(minutes=5)
        ]  # fmt: skip
        _close(row, _expected(bucket, 300.0))


def test_empty_buckets_are_zero_requests_and_until_extends_them(log: pa.Table) -> None:
    quiet = _polars(log).filter(
        ~pl.col("at").is_between(T0 + timedelta(minutes=3), T0 + timedelta(minutes=5), "left")
    )
    series = health_series(quiet, model="other")
    assert series.height == MINUTES
    gap = series.filter(pl.col("requests") == 0)
    assert gap["at"].to_list() == [T0 + timedelta(minutes=3), T0 + timedelta(minutes=4)]
    assert gap["throughput_rps"].to_list() == [0.0, 0.0]
    assert gap["error_rate"].is_null().all() and gap["latency_p99_ms"].is_null().all()
    # Up to 12:20:30: buckets end by then (the one still filling is left out), zeros to the end.
    until = T0 + timedelta(minutes=20, seconds=30)
    later = health_series(quiet, model="other", until=until)
    assert later["at"].max() == T0 + timedelta(minutes=19)
    assert later.height == 20 and later["requests"].sum() == MINUTES - 2


def test_an_empty_log_gives_an_empty_series() -> None:
    series = health_series(SCHEMA.empty_table())
    assert series.height == 0 and series.columns == ["model", "version", "at", *METRICS]
    assert flag_anomalies(series).height == 0


def test_summary_of_the_latest_window_per_model_and_per_version(
    sent: list[Sent], log: pa.Table
) -> None:
    now = T0 + timedelta(minutes=MINUTES)
    start = now - timedelta(minutes=5)
    summary = health_summary(log, "churn", "5m", now=now)
    window = [s for s in sent if s.model == "churn" and start <= s.at < now]
    _close({k.removeprefix("health."): v for k, v in summary.items()}, _expected(window, 300.0))
    assert summary["health.errors"] == 0  # the errors are at minute 6, before the window
    # Version 1 alone over the last 6 minutes: its errors, and its latency spike is an anomaly.
    one = health_summary(log, "churn", timedelta(minutes=6), version=1, now=now)
    mine = [
        s for s in sent
        if s.model == "churn" and s.version == 1 and now - timedelta(minutes=6) <= s.at < now
    ]  # fmt: skip
    _close({k.removeprefix("health."): v for k, v in one.items()}, _expected(mine, 360.0))
    assert one["health.error_rate"] == pytest.approx(5 / 125)
    assert one["health.anomalies"] == 2  # the error rate at minute 6, the p99 at minute 8
    assert health_summary(log, "churn", "1m", version=1, now=now)["health.anomalies"] == 0
    assert set(summary) == {f"health.{name}" for name in METRICS} | {"health.anomalies"}


def test_a_window_without_requests() -> None:
    summary = health_summary(SCHEMA.empty_table(), "churn", "15m", now=T0)
    assert summary["health.requests"] == 0 and summary["health.throughput_rps"] == 0
    assert summary["health.error_rate"] is None and summary["health.latency_p99_ms"] is None
    assert summary["health.anomalies"] == 0
    with pytest.raises(ValueError, match="positive"):
        health_summary(SCHEMA.empty_table(), "churn", timedelta(0), now=T0)


def test_a_repeated_request_id_is_two_requests() -> None:
    """Callers may reuse an X-Request-Id: the rows of one request share their time as well."""
    sent = [Sent("same", T0 + timedelta(seconds=s), "churn", 1, 10.0 + s, 200) for s in (1, 2)]
    series = health_series(_table(sent), model="churn")
    assert series.filter(pl.col("version") == 1)["requests"].to_list() == [2]


# -- anomalies -------------------------------------------------------------------------------


def test_flag_anomalies_flags_the_spike_and_the_errors_not_the_flat_parts(log: pa.Table) -> None:
    flagged = flag_anomalies(health_series(log, model="churn"))
    assert {"latency_p99_ms_anomaly", "error_rate_anomaly", "throughput_rps_anomaly"} <= set(
        flagged.columns
    )
    one = flagged.filter(pl.col("version") == 1)
    minute = ((one["at"] - T0).dt.total_seconds() // 60).cast(pl.Int64)
    assert minute.filter(one["latency_p99_ms_anomaly"]).to_list() == [SPIKE_MINUTE]
    assert minute.filter(one["error_rate_anomaly"]).to_list() == [ERROR_MINUTE]
    assert not one["throughput_rps_anomaly"].any()  # 25 requests instead of 20: within 3 sd
    two = flagged.filter(pl.col("version") == 2)  # 5 requests a minute: too few to judge
    assert not two.select(pl.any_horizontal(pl.col("^.*_anomaly$")).any()).item()


def test_a_throughput_drop_to_nothing_is_flagged(log: pa.Table) -> None:
    until = T0 + timedelta(minutes=MINUTES + 2)
    # One request a minute, then none: within the floor of one request.
    flagged = flag_anomalies(health_series(log, model="other", until=until))
    assert flagged["throughput_rps_anomaly"].to_list() == [False] * MINUTES + [False, False]
    busy = _polars(log).filter(pl.col("model") == "churn", pl.col("version") == 1)
    flagged = flag_anomalies(health_series(busy, until=until, by_version=False))
    assert flagged["throughput_rps_anomaly"].to_list()[-2:] == [True, False]


def test_the_z_is_measured_against_the_state_before_the_point() -> None:
    found = anomalies([10.0, 10.0, 10.0, 10.0, 10.0, 20.0], warmup=5)
    assert found == [Anomaly(5, None, 20.0, 10.0, 10.0, "up")]  # floor: 10 % of 10
    # Had the point first been learnt from, mean 13 and sd sqrt(30): z 1.3, no anomaly.
    found = anomalies([10.0, 11.0, 10.0, 9.0, 10.0, 11.0, 10.0, 2.0], relative_floor=0)
    assert [(a.index, a.direction) for a in found] == [(7, "down")]
    assert found[0].z < -3 and found[0].to_dict()["expected"] == pytest.approx(found[0].expected)


def test_warmup_points_are_never_judged() -> None:
    series = [10.0, 10.0, 10.0, 50.0, 10.0, 10.0]
    assert [a.index for a in anomalies(series, warmup=3)] == [3]
    assert anomalies(series, warmup=4) == []
    assert [a.index for a in anomalies([10.0, None, 10.0, math.nan, 10.0, 50.0], warmup=3)] == [5]
    assert anomalies([10.0, None, 10.0, math.nan, 10.0, 50.0], warmup=4) == []


def test_a_flat_series_does_not_flag_tiny_noise() -> None:
    series = [100.0] * 20 + [100.5, 99.7, 101.0, 100.0, 129.0]
    assert anomalies(series) == []  # 29 % off a flat level is under 3 x 10 %
    # Without the floor, the first half-unit wobble off a flat series is infinitely far.
    without = anomalies(series, relative_floor=0)
    assert [a.index for a in without] == [20, 24] and math.isinf(without[0].z)
    assert [a.index for a in anomalies([100.0] * 20 + [131.0])] == [20]


def test_times_are_attached() -> None:
    times = [T0 + timedelta(minutes=i) for i in range(7)]
    found = anomalies(pl.Series([1.0, 1, 1, 1, 1, 1, 9]), times=times)
    assert found[0].time == times[6] and found[0].to_dict()["time"] == times[6]
    with pytest.raises(ValueError, match="6 times"):
        anomalies([1.0] * 7, times=times[:6])
    with pytest.raises(ValueError, match="alpha"):
        anomalies([1.0], alpha=0.0)
    with pytest.raises(ValueError, match="alpha"):
        anomalies([1.0], alpha=1.5)
    with pytest.raises(ValueError, match="threshold"):
        anomalies([1.0], threshold=0.0)
    with pytest.raises(ValueError, match="warmup"):
        anomalies([1.0], warmup=0)


def test_the_recursion_is_pandas_ewm_without_adjustment() -> None:
    """Every point an "anomaly" (tiny threshold, no floor, warmup 1): ``expected`` is the moving
    average before each point and ``(deviation / z)**2`` the moving variance before it."""
    values = np.random.default_rng(3).normal(5, 2, 40)
    alpha = 0.3
    found = anomalies(values.tolist(), alpha=alpha, threshold=1e-12, warmup=1, relative_floor=0)
    assert [a.index for a in found] == list(range(1, 40))
    mean = pd.Series(values).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    np.testing.assert_allclose([a.expected for a in found], mean[:-1], rtol=1e-12)
    deviations = np.concatenate([[0.0], values[1:] - mean[:-1]])
    variance = pd.Series(deviations**2).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    after_first = found[1:]  # the variance before point 1 is 0: its z is infinite
    assert math.isinf(found[0].z)
    np.testing.assert_allclose(
        [((a.value - a.expected) / a.z) ** 2 for a in after_first], variance[1:-1], rtol=1e-9
    )


# -- the prediction log ----------------------------------------------------------------------


OLD_SCHEMA = pa.schema([field for field in SCHEMA if field.name not in ("status", "error")])


def test_old_parts_read_as_answers_beside_new_ones(tmp_path: Path) -> None:
    old = pa.Table.from_pylist(
        [{"request_id": "r1", "at": T0, "deployment": "d", "model": "churn", "version": 1,
          "role": "route", "latency_ms": 3.0, "input": "{}", "output": "{}"}],
        schema=OLD_SCHEMA,
    )  # fmt: skip
    pq.write_table(old, tmp_path / "part-1-1-000001.parquet")
    log = PredictionLog(tmp_path, "d")
    log.append(Entry("r2", "churn", 1, "route", 4.0, [{"a": 1}], [{"prediction": "no"}]))
    log.append_error("r3", "churn", 1, 1.5, 422, "records[0].a: Field required")
    log.close()
    table = read_log(tmp_path)
    assert table.schema.equals(SCHEMA)
    rows = table.to_pylist()
    assert [(r["request_id"], r["role"], r["status"], r["error"]) for r in rows] == [
        ("r1", "route", 200, None),
        ("r2", "route", 200, None),
        ("r3", "error", 422, "records[0].a: Field required"),
    ]
    assert rows[2]["input"] == "" and rows[2]["output"] == "" and rows[2]["latency_ms"] == 1.5
    summary = health_summary(table, "churn", "1h", now=datetime.now(UTC))
    assert summary["health.requests"] == 2 and summary["health.error_rate"] == 0.5


# -- the real server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(trained: Workspace) -> LoadedModel:
    return trained.load_model(trained.tracking.get_version("churn", 1))


@contextmanager
def _served(model: LoadedModel, directory: Path) -> Iterator[TestClient]:
    app = create_app(model, prediction_log=PredictionLog(directory, "t"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_the_server_logs_refused_requests_and_health_reads_them(
    model: LoadedModel, tmp_path: Path
) -> None:
    with _served(model, tmp_path) as client:
        for _ in range(3):
            assert client.post("/predict", json={"records": [RECORD]}).status_code == 200
        bad = {"records": [{**RECORD, "age": "old"}, RECORD]}
        assert client.post("/predict", json=bad).status_code == 422
        response = client.post("/predict", json={"records": [{"age": 3}]})
        assert response.status_code == 422
        refused_id = response.headers["X-Request-Id"]
        # Not routed to a version, so not logged: a body that is no JSON, an unknown model.
        garbage = client.post(
            "/predict", content=b"{no", headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 400
        assert client.post("/v2/models/nope/infer", json={"inputs": []}).status_code == 404
    table = read_log(tmp_path)
    errors = table.filter(pc.equal(table["role"], "error")).to_pylist()
    assert [e["status"] for e in errors] == [422, 422]
    assert "records[0].age: Input should be a valid integer" in errors[0]["error"]
    assert errors[1]["request_id"] == refused_id and errors[1]["version"] == 1
    assert all(e["latency_ms"] > 0 for e in errors)
    assert set(table.filter(pc.equal(table["role"], "route"))["status"].to_pylist()) == {200}
    summary = health_summary(table, "churn", "1h")
    assert summary["health.requests"] == 5 and summary["health.errors"] == 2
    assert summary["health.error_rate"] == 0.4
    assert summary["health.server_error_rate"] == 0.0


def test_records_refused_by_the_scorer_and_a_failed_predict_are_logged(
    model: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = {"dataframe_records": [{**RECORD, "age": "old"}]}
    with _served(model, tmp_path) as client:
        assert client.post("/invocations", json=mlflow).status_code == 422  # in Scorer.run

        async def broken(self: Batcher, records: Any) -> Any:
            raise RuntimeError("model exploded")

        monkeypatch.setattr(Batcher, "predict", broken)
        assert client.post("/predict", json={"records": [RECORD]}).status_code == 500
    table = read_log(tmp_path).to_pylist()
    assert [(r["role"], r["status"]) for r in table] == [("error", 422), ("error", 500)]
    assert "records[0].age" in table[0]["error"]
    assert table[1]["error"] == "RuntimeError: model exploded"
    summary = health_summary(read_log(tmp_path), "churn", "1h", version=1)
    assert summary["health.server_error_rate"] == 0.5 and summary["health.latency_p50_ms"] is None
