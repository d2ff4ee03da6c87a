"""What ``engine: spark`` accepts in a spec, and how it refuses what it cannot compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlship.data.spark.session import MASTER_ENV, master_of, spark_message
from mlship.data.spark.support import refuse_unsupported, unsupported
from mlship.errors import DataError, SpecError
from mlship.spec import parse_spec
from mlship.spec.engine import SparkSettings

BASE = """\
name: p
task: classification
engine: spark
sources:
  - path: a.csv
columns:
  - {name: id, type: string, role: id}
  - {name: x, type: float, checks: [{min: 0, max: 9}, {allowed: [1, 2]}, {regex: "[0-9]"}]}
  - {name: y, type: category, role: target}
checks:
  rules: [{name: r, expr: "x > 0"}]
models: [{estimator: logistic_regression}]
metric: accuracy
"""


def test_a_spec_of_files_mapping_and_row_checks_compiles() -> None:
    spec = parse_spec(BASE, Path("/project/pipeline.yaml")).spec
    assert spec.engine == "spark"
    assert unsupported(spec) == []
    refuse_unsupported(spec)  # nothing to refuse


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("  - path: a.csv\n", "  - {name: db, url: 'sqlite:///x.db', query: SELECT 1}\n"),
        ("  - path: a.csv\n", "  - path: a.jsonl\n"),
        ("  - path: a.csv\n", "  - {path: a.csv, mapping: {derive: {z: x * 2}}}\n"),
        ("  - path: a.csv\n", "  - {path: a.csv, key: [id]}\n"),
        ("  - path: a.csv\n", "  - {path: a.csv, values: {decimal: ','}}\n"),
        ("  - path: a.csv\n", "  - {path: a.csv, incremental: {mode: append}}\n"),
        ("{min: 0, max: 9}", "{outliers: {method: iqr}}"),
        ("{min: 0, max: 9}", "{unique: true}"),
        ("{min: 0, max: 9}", "{distribution: {reference: ref.csv}}"),
        ("  - {name: y,", "  - {name: w, type: float, role: weight}\n  - {name: y,"),
    ],
)
def test_each_feature_spark_cannot_compile_is_refused_by_name(change: str, named: str) -> None:
    spec = parse_spec(BASE.replace(change, named), Path("/project/pipeline.yaml")).spec
    found = unsupported(spec)
    assert len(found) == 1, found
    with pytest.raises(DataError) as raised:
        refuse_unsupported(spec)
    assert found[0] in str(raised.value)
    assert "engine: local" in str(raised.value)


def test_every_refusal_is_listed_at_once() -> None:
    text = BASE.replace("  - path: a.csv\n", "  - {path: a.csv, key: [id]}\n  - path: b.json\n")
    spec = parse_spec(text, Path("/project/pipeline.yaml")).spec
    assert unsupported(spec) == [
        "source 'a': key / on_duplicate",
        "source 'b': format json (csv and parquet only)",
    ]


def test_engine_and_master_are_validated_with_their_line() -> None:
    with pytest.raises(SpecError, match="engine"):
        parse_spec(BASE.replace("engine: spark", "engine: dask"), Path("/p/pipeline.yaml"))
    bad_master = BASE.replace("engine: spark", "engine: spark\nspark: {master: 'locl[2]'}")
    with pytest.raises(SpecError, match="not a Spark master URL"):
        parse_spec(bad_master, Path("/p/pipeline.yaml"))
    bad_conf = BASE.replace("engine: spark", "engine: spark\nspark: {conf: {executor: '2g'}}")
    with pytest.raises(SpecError, match="not a Spark setting"):
        parse_spec(bad_conf, Path("/p/pipeline.yaml"))


def test_the_environment_overrides_the_master(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SparkSettings(master="spark://head:7077")
    monkeypatch.delenv(MASTER_ENV, raising=False)
    assert master_of(settings) == "spark://head:7077"
    assert master_of(None) == "local[*]"
    monkeypatch.setenv(MASTER_ENV, "local[2]")
    assert master_of(settings) == "local[2]"
    monkeypatch.setenv(MASTER_ENV, "nowhere")
    with pytest.raises(ValueError, match="not a Spark master URL"):
        master_of(settings)


def test_an_executor_failure_is_told_by_its_own_error() -> None:
    wrapped = RuntimeError(
        "[PYTHON_EXCEPTION] An exception was thrown from the Python worker: Traceback\n"
        '  File "x.py", line 1\nDataError: score.csv line 7: age is not a number\n SQLSTATE: 38000'
    )
    assert spark_message(wrapped) == "DataError: score.csv line 7: age is not a number"
