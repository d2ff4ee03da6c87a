"""Traffic read back from prediction logs, labels stored and matched, quality and performance of
live inputs against a trained model's reference (the small churn model of the ``trained``
fixture)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics as skm

from mlship.errors import DataError
from mlship.monitor.feedback import FeedbackStore, Label, check_labels, read_labels
from mlship.monitor.labels_file import read_labels_file
from mlship.monitor.performance import performance
from mlship.monitor.quality import live_quality
from mlship.monitor.reference import Reference, load_reference
from mlship.monitor.traffic import read_traffic
from mlship.monitor.window import Window
from mlship.serve.app import create_app
from mlship.train.signature import Signature
from mlship.workspace import Workspace
from tests.serving import RECORD

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def reference(trained: Workspace) -> Reference:
    return load_reference(trained, trained.tracking.get_version("churn", 1))


@pytest.fixture(scope="module")
def signature(reference: Reference) -> Signature:
    return reference.signature


def write_log(
    home: Path,
    rows: Sequence[tuple[str, datetime, int, str, dict[str, Any], Any]],
    name: str = f"part-{int(NOW.timestamp() * 1e9)}-1-000001.parquet",
) -> None:
    """A log part: (request id, time, version, role, record, prediction) per row, named (like
    every part) by a time no earlier than its rows'."""
    directory = home / "predictions" / "churn-1"
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "request_id": [r[0] for r in rows],
            "at": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
            "deployment": ["churn-1"] * len(rows),
            "model": ["churn"] * len(rows),
            "version": pa.array([r[2] for r in rows], pa.int32()),
            "role": [r[3] for r in rows],
            "latency_ms": [2.5] * len(rows),
            "input": [orjson.dumps(r[4]).decode() for r in rows],
            "output": [
                orjson.dumps(
                    {"prediction": r[5], "probabilities": {"no": 0.3, "yes": 0.7}}
                    if r[5] == "yes"
                    else {"prediction": r[5], "probabilities": {"no": 0.8, "yes": 0.2}}
                ).decode()
                for r in rows
            ],
        }
    )
    pq.write_table(table, directory / name)


def test_records_are_decoded_typed_and_numbered_within_their_request(
    tmp_path: Path, signature: Signature
) -> None:
    at = NOW - timedelta(minutes=5)
    other = {**RECORD, "age": None, "contract": "two-year"}
    write_log(
        tmp_path,
        [
            ("a", at, 1, "route", RECORD, "yes"),
            ("a", at, 1, "route", other, "no"),
            ("a", at, 2, "shadow", RECORD, "no"),
            ("a", at, 2, "shadow", other, "no"),
            ("b", at + timedelta(seconds=1), 1, "route", RECORD, "no"),
        ],
    )
    traffic = read_traffic(tmp_path, "churn", signature, now=NOW)
    frame = traffic.frame
    assert frame.height == 5
    assert frame.schema["age"] == pl.Int64 and frame.schema["monthly_charges"] == pl.Float64
    assert frame.schema["paperless_billing"] == pl.Boolean
    assert frame.get_column("row").to_list() == [0, 1, 0, 1, 0]
    assert frame.get_column("age").to_list() == [45, None, 45, None, 45]
    assert frame.get_column("proba:yes").to_list() == [0.7, 0.2, 0.2, 0.2, 0.2]
    # Inputs whose drift is measured leave the shadow rows out (the same records again).
    assert traffic.inputs.height == 3
    assert traffic.primary_version() == 1


def test_windows_of_rows_and_of_time(tmp_path: Path, signature: Signature) -> None:
    rows = [(f"r{i}", NOW - timedelta(minutes=60 - i), 1, "route", RECORD, "no") for i in range(60)]
    rows.append(("r59", NOW - timedelta(minutes=1), 2, "shadow", RECORD, "yes"))
    write_log(tmp_path, rows)
    last = read_traffic(tmp_path, "churn", signature, window=Window(rows=10), now=NOW)
    assert last.answered.get_column("request_id").to_list() == [f"r{i}" for i in range(50, 60)]
    assert last.frame.filter(pl.col("role") == "shadow").height == 1  # shadows of those requests
    recent = read_traffic(tmp_path, "churn", signature, window=Window.parse("15m"), now=NOW)
    assert recent.answered.height == 15  # logged 15 to 1 minutes before now
    assert read_traffic(tmp_path, "other", signature, now=NOW).frame.is_empty()
    assert read_traffic(tmp_path / "none", "churn", signature).frame.is_empty()


def test_window_parsing_names_what_was_expected() -> None:
    assert Window.parse("500 rows") == Window(rows=500)
    assert Window.parse("2d").seconds == 172800
    assert Window.parse("90s").label == "last 90s"
    with pytest.raises(ValueError, match="expected a number of rows"):
        Window.parse("soon")


# -- labels ----------------------------------------------------------------------------------


def test_labels_are_checked_against_the_signature(signature: Signature) -> None:
    checked = check_labels([Label("a", 0, "yes"), Label("b", 2, "no")], signature)
    assert [item.label for item in checked] == ["yes", "no"]
    with pytest.raises(DataError) as caught:
        check_labels([Label("a", 0, "yes"), Label("", 0, "no"), Label("c", 0, "maybe")], signature)
    assert str(caught.value).splitlines() == [
        "feedback[1].request_id: a request id is required",
        "feedback[2].label: 'maybe' is not a class of this model (classes: 'no', 'yes')",
    ]


def test_the_newest_label_of_a_record_wins_and_parts_are_whole(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    assert store.append([Label("a", 0, "yes"), Label("a", 1, "no")], "test") == 2
    assert store.append([Label("a", 0, "no")], "test") == 1
    labels = read_labels(tmp_path).sort("row")
    assert labels.get_column("label").to_list() == ['"no"', '"no"']
    assert not list(tmp_path.glob(".*tmp"))  # written to a temporary file, then renamed
    assert read_labels(tmp_path / "none").is_empty()


def test_a_labels_file_names_the_rows_it_refuses(tmp_path: Path, signature: Signature) -> None:
    write_log(tmp_path, [("known", NOW, 1, "route", RECORD, "no")])
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\nknown,yes\nunknown,no\n")
    with pytest.raises(DataError, match=r"labels.csv, row 2 \(line 3\): request id 'unknown'"):
        read_labels_file(path, tmp_path, lambda _: signature)
    path.write_text("request_id,label,row\nknown,maybe,0\nknown,yes,x\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column row: expected a record index"):
        read_labels_file(path, tmp_path, lambda _: signature)
    path.write_text("request_id,label\nknown,maybe\n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\), column label: 'maybe' is not a class"):
        read_labels_file(path, tmp_path, lambda _: signature)
    path.write_text("id,label\n")
    with pytest.raises(DataError, match=r"missing column\(s\) request_id"):
        read_labels_file(path, tmp_path, lambda _: signature)
    path.write_text("request_id,label\nknown,yes\nlater,no\n")
    grouped = read_labels_file(path, tmp_path, lambda _: signature, model="churn")
    assert [(x.request_id, x.label) for x in grouped["churn"]] == [
        ("known", "yes"),
        ("later", "no"),
    ]


# -- quality and performance -----------------------------------------------------------------


def test_quality_flags_missing_out_of_range_and_unseen_values(reference: Reference) -> None:
    live = reference.frame.head(200).with_columns(
        pl.when(pl.int_range(pl.len()) < 50).then(None).otherwise(pl.col("total_charges"))
        .alias("total_charges"),
        pl.when(pl.int_range(pl.len()) < 20).then(500.0).otherwise(pl.col("monthly_charges"))
        .alias("monthly_charges"),
        pl.when(pl.int_range(pl.len()) < 10).then(pl.lit("satellite"))
        .otherwise(pl.col("internet_service")).alias("internet_service"),
    )  # fmt: skip
    quality = live_quality(live, reference, requests=200, refused=50)
    by_name = {c.column: c for c in quality.columns}
    already = reference.frame.get_column("total_charges").slice(50, 150).null_count()
    assert by_name["total_charges"].missing == (50 + already) / 200
    assert by_name["total_charges"].issues[0].endswith("missing (training 2.8%)")
    assert by_name["monthly_charges"].out_of_range == 0.1
    assert by_name["internet_service"].unseen == 0.05
    assert by_name["internet_service"].unseen_examples == ["satellite"]
    assert not by_name["tenure_months"].issues
    figures = quality.metrics()
    assert figures["quality.schema_violation_rate"] == 0.2
    assert figures["quality.columns_with_issues"] == 3.0


def test_performance_joins_labels_and_scores_like_scikit_learn(
    tmp_path: Path, reference: Reference
) -> None:
    rng = np.random.default_rng(0)
    predicted = rng.choice(["no", "yes"], 300).tolist()
    truth = [p if rng.random() < 0.7 else ("no" if p == "yes" else "yes") for p in predicted]
    at = NOW - timedelta(minutes=30)
    write_log(
        tmp_path,
        [
            (f"q{i}", at + timedelta(seconds=i), 1, "route", RECORD, p)
            for i, p in enumerate(predicted)
        ],
    )
    store = FeedbackStore(tmp_path / "feedback")
    store.append([Label(f"q{i}", 0, t) for i, t in enumerate(truth) if i % 3], "test")
    traffic = read_traffic(tmp_path, "churn", reference.signature, now=NOW)
    result = performance(
        traffic, read_labels(tmp_path / "feedback"), reference.baseline, every="10m"
    )
    (entry,) = result.versions
    labelled = [i for i in range(300) if i % 3]
    y_true = [truth[i] for i in labelled]
    y_pred = [predicted[i] for i in labelled]
    assert entry.predictions == 300 and entry.labelled == 200
    assert entry.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert entry.metrics["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, pos_label="yes"))
    baseline = reference.baseline["accuracy"]
    assert entry.degradation["accuracy"] == pytest.approx(baseline - entry.metrics["accuracy"])
    assert entry.degradation["log_loss"] == pytest.approx(
        entry.metrics["log_loss"] - reference.baseline["log_loss"]
    )
    assert sum(bucket["labelled"] for bucket in entry.series) == 200
    assert len(entry.series) == 1  # 300 seconds all within one 10-minute bucket
    figures = result.metrics()
    assert figures["performance.label_share"] == pytest.approx(2 / 3)
    assert figures["performance.accuracy.drop"] == pytest.approx(entry.degradation["accuracy"])


def test_no_labels_means_no_data_not_zero(tmp_path: Path, reference: Reference) -> None:
    write_log(tmp_path, [("x", NOW, 1, "route", RECORD, "no")])
    traffic = read_traffic(tmp_path, "churn", reference.signature, now=NOW)
    figures = performance(traffic, read_labels(tmp_path / "fb"), reference.baseline).metrics()
    assert figures["performance.labelled"] == 0.0
    assert figures["performance.accuracy"] is None
    assert figures["performance.accuracy.drop"] is None


# -- POST /feedback --------------------------------------------------------------------------


@pytest.fixture
def client(trained: Workspace, tmp_path: Path) -> Iterator[TestClient]:
    model = trained.load_model(trained.tracking.get_version("churn", 1))
    with TestClient(create_app(model, feedback=FeedbackStore(tmp_path / "fb"))) as test_client:
        yield test_client


def test_post_feedback_stores_one_or_many_labels(client: TestClient, tmp_path: Path) -> None:
    answer = client.post("/predict", json={"records": [RECORD, RECORD]})
    request_id = answer.headers["x-request-id"]
    one = client.post("/feedback", json={"request_id": request_id, "label": "yes"})
    assert one.status_code == 200 and one.json() == {"stored": 1}
    many = client.post(
        "/feedback",
        json={
            "feedback": [
                {"request_id": request_id, "row": 1, "label": "no"},
                {"request_id": "z", "label": "no"},
            ]
        },
    )
    assert many.json() == {"stored": 2}
    stored = read_labels(tmp_path / "fb").sort("request_id", "row")
    assert stored.select("request_id", "row", "label").rows() == [
        (request_id, 0, '"yes"'),
        (request_id, 1, '"no"'),
        ("z", 0, '"no"'),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"request_id": "a", "label": "maybe"}, "feedback[0].label: 'maybe' is not a class"),
        ({"request_id": "a"}, "feedback[0].label: Field required"),
        ({"feedback": [{"request_id": "a", "label": "no"},
                       {"request_id": "b", "row": -1, "label": "no"}]},
         "feedback[1].row: Input should be greater than or equal to 0"),
        ({"feedback": []}, "feedback: List should have at least 1 item"),
        ({"request_id": "a", "label": "no", "extra": 1}, "feedback[0].extra: Extra inputs"),
    ],
)  # fmt: skip
def test_post_feedback_refuses_bad_items_naming_them_and_stores_nothing(
    client: TestClient, tmp_path: Path, body: dict[str, Any], expected: str
) -> None:
    response = client.post("/feedback", json=body)
    assert response.status_code == 422
    assert any(line.startswith(expected) for line in response.json()["errors"]), response.json()
    assert read_labels(tmp_path / "fb").is_empty()
