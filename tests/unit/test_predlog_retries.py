"""A request a load balancer retried on another replica, after the first one logged it and died
before answering, is read once: from its last logging."""

from __future__ import annotations

from pathlib import Path

from mlship.monitor.predlog import Entry, PredictionLog, read_log


def _entry(request_id: str, role: str = "route", prediction: int = 0) -> Entry:
    inputs = [{"age": 40}, {"age": 41}]
    outputs = [{"prediction": prediction}, {"prediction": prediction}]
    return Entry(request_id, "churn", 1, role, 2.0, inputs, outputs)


def test_a_retried_request_is_read_from_its_last_logging_only(tmp_path: Path) -> None:
    first = PredictionLog(tmp_path, "churn")  # the replica that died before answering
    first.append(_entry("retried", prediction=0))
    first.append(_entry("once"))
    first.append(_entry("file-1", role="batch"))
    first.flush()
    second = PredictionLog(tmp_path, "churn")  # the replica that answered the retry
    second.append(_entry("retried", prediction=1))
    second.append(_entry("file-1", role="batch"))  # another chunk of one batch: both kept
    second.append(_entry("retried", role="shadow"))
    second.flush()
    assert len(list(tmp_path.glob("part-*.parquet"))) == 2
    rows = read_log(tmp_path).to_pylist()
    by_id = sorted((row["request_id"], row["role"], row["output"]) for row in rows)
    assert by_id == sorted(
        [("retried", "route", '{"prediction":1}')] * 2
        + [("retried", "shadow", '{"prediction":0}')] * 2
        + [("once", "route", '{"prediction":0}')] * 2
        + [("file-1", "batch", '{"prediction":0}')] * 4
    )
