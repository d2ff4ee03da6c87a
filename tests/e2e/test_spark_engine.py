"""``engine: spark`` against the local engine, through the command line.

The churn customers with broken rows of every kind are ingested by both engines from the same
file; the stored datasets must be the same dataset (same hash), the quarantined rows and their
reasons the same, and every check's counts the same. A model trained through Spark then scores a
file on Spark executors, and the answers must be `mlship predict`'s, row for row. One Spark
session (local[2], no UI, two shuffle partitions) serves the whole module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from mlship.config import Settings
from mlship.data.ingested import dataset_frame
from mlship.store.entities import Dataset
from mlship.workspace import Workspace
from tests.conftest import invoke_cli
from tests.e2e.spark_project import write_spark_project

KEY = "k" * 32
ENV = {"MLSHIP_PII_KEY": KEY}


@dataclass(frozen=True)
class Ingested:
    home: Path
    spec: Path
    dataset: Dataset
    frame: pd.DataFrame
    quarantine: pl.DataFrame


def _ingest(root: Path, engine: str) -> Ingested:
    spec = write_spark_project(root / engine, engine)
    home = root / f"home-{engine}"
    result = invoke_cli("data", "validate", str(spec), home=home, env=ENV)
    found = re.search(r"Dataset ([0-9a-f]{12})", result.stdout)
    assert found, result.stdout
    workspace = Workspace.open(Settings(home=home, pii_key=KEY))
    try:
        dataset = workspace.datasets.get_dataset(found.group(1))
        frame = dataset_frame(dataset, workspace)
    finally:
        workspace.close()
    quarantine = pl.read_parquet(home / "reports" / "churn-flat-quarantine.parquet")
    return Ingested(home, spec, dataset, frame, quarantine)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ingested]:
    root = tmp_path_factory.mktemp("spark")
    return {engine: _ingest(root, engine) for engine in ("local", "spark")}


def test_the_same_dataset_whichever_engine(engines: dict[str, Ingested]) -> None:
    local, spark = engines["local"], engines["spark"]
    assert spark.dataset.data_hash == local.dataset.data_hash
    assert spark.dataset.n_rows == local.dataset.n_rows > 300
    pd.testing.assert_frame_equal(spark.frame, local.frame)  # row by row, dtypes too


def test_the_same_rows_quarantined_for_the_same_reasons(engines: dict[str, Ingested]) -> None:
    local, spark = engines["local"].quarantine, engines["spark"].quarantine
    assert local.height >= 12  # the broken rows of spark_project, and the two exact copies
    assert spark.columns == local.columns
    assert spark.equals(local, null_equal=True), (spark["_reasons"], local["_reasons"])
    reasons = "\n".join(local["_reasons"].to_list())
    # Spark alone would read "1.5d" as a number; both engines refuse it, by line and id.
    assert "monthly_charges: '1.5d' is not a number" in reasons
    assert "age: 'unknown' is not an integer" in reasons
    assert "duplicate of an earlier row" in reasons


def test_the_same_check_counts(engines: dict[str, Ingested]) -> None:
    local = engines["local"].dataset.validation or {}
    spark = engines["spark"].dataset.validation or {}
    for part in ("rows", "checks", "declared", "table_errors", "combine", "undeclared"):
        assert spark[part] == local[part], part
    assert spark["rows"]["warned"] > 0 and spark["rows"]["quarantined"] > 0


def test_spark_scoring_answers_as_mlship_predict(
    engines: dict[str, Ingested], tmp_path: Path
) -> None:
    spark = engines["spark"]
    invoke_cli("run", str(spark.spec), home=spark.home, env=ENV)  # trains through engine: spark
    inputs = tmp_path / "score.csv"
    spark.frame.head(150).drop(columns=["churned"]).to_csv(inputs, index=False)  # clean rows
    here, there = tmp_path / "local.csv", tmp_path / "spark.csv"
    invoke_cli("predict", "churn-flat", str(inputs), "-o", str(here), home=spark.home, env=ENV)
    on_spark = {**ENV, "MLSHIP_SPARK_MASTER": "local[2]"}  # the module's running session
    result = invoke_cli(
        "predict", "churn-flat", str(inputs), "-o", str(there), "--executor", "spark",
        home=spark.home, env=on_spark,
    )  # fmt: skip
    assert "on Spark" in result.stdout
    expected, got = pd.read_csv(here), pd.read_csv(there)
    assert len(got) == 150
    pd.testing.assert_frame_equal(got, expected)


def test_a_spec_spark_cannot_compile_is_refused_by_feature(tmp_path: Path) -> None:
    spec = write_spark_project(tmp_path / "p", "spark")
    text = spec.read_text().replace(
        "      units:", "      derive: {twice: tenure_months * 2}\n      units:"
    )
    spec.write_text(
        text.replace("duplicates: quarantine", "duplicates: quarantine\n  unique: [[email]]")
    )
    result = invoke_cli("data", "validate", str(spec), home=tmp_path / "h", env=ENV, check=False)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "engine: spark cannot run this spec" in message
    assert "source 'customers': mapping.derive" in message
    assert "checks: unique" in message
    assert "Traceback" not in result.stderr
