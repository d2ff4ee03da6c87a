"""``mlship predict --executor ray``: a partitioned Parquet dataset scored by Ray Data actors gives
the local command's answers row for row, and a bad row is named by its file and row.

The session's local Ray (``tests.ray_fixture``) is joined, never a second one started.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlship.config import Settings
from mlship.examples.churn import make_customers
from mlship.train.executors import RayExecutor
from mlship.workspace import Workspace
from tests.conftest import invoke_cli
from tests.ray_fixture import ray_fixture  # noqa: F401 - provides the session's ray_executor

ROWS = 3000
FILE_ROWS = (1100, 700, 900, 300)
"""Four files of uneven sizes: pieces never line up with file boundaries by accident."""


@pytest.fixture(scope="module")
def home(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's trained workspace: scoring here writes to its prediction log,
    which the session's workspace must not get."""
    copy = tmp_path_factory.mktemp("ray-scoring") / "ws"
    shutil.copytree(trained.settings.home, copy)
    return copy


@pytest.fixture(scope="module")
def inputs() -> pd.DataFrame:
    return make_customers(ROWS, seed=41).drop(columns=["churned"])


@pytest.fixture(scope="module")
def dataset(inputs: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of four Parquet files (in two subdirectories, as a partitioned dataset is
    laid out), row groups of 250 rows."""
    root = tmp_path_factory.mktemp("partitioned")
    start = 0
    for index, rows in enumerate(FILE_ROWS):
        part = root / f"region={index % 2}" / f"part-{index}.parquet"
        part.parent.mkdir(exist_ok=True)
        table = pa.Table.from_pandas(inputs.iloc[start : start + rows], preserve_index=False)
        pq.write_table(table, part, row_group_size=250)
        start += rows
    assert start == ROWS
    return root


def _ordered_files(dataset: Path) -> list[Path]:
    return sorted(dataset.rglob("*.parquet"))


@pytest.fixture(scope="module")
def local_answers(
    home: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pd.DataFrame, str]:
    """The local command's answers for the dataset's rows, in the directory's file order, and
    the id of its entries in the prediction log."""
    root = tmp_path_factory.mktemp("local")
    whole = root / "all.parquet"
    frames = [pd.read_parquet(f) for f in _ordered_files(dataset)]
    pd.concat(frames, ignore_index=True).to_parquet(whole, index=False)
    out = root / "local.csv"
    done = invoke_cli("predict", "churn:1", str(whole), "-o", str(out), home=home)
    return pd.read_csv(out), _batch_id(done.stdout)


def _batch_id(stdout: str) -> str:
    return "batch-" + stdout.split("(batch-")[1].split(")", maxsplit=1)[0]


def test_a_partitioned_dataset_scores_as_it_does_locally(
    ray_executor: RayExecutor,
    home: Path,
    dataset: Path,
    local_answers: tuple[pd.DataFrame, str],
    tmp_path: Path,
) -> None:
    local, local_batch = local_answers
    out = tmp_path / "ray.csv"
    result = invoke_cli(
        "predict", "churn:1", str(dataset), "-o", str(out), "--executor", "ray",
        "--chunk-rows", "400", home=home,
    )  # fmt: skip
    on_ray = pd.read_csv(out)
    assert len(on_ray) == ROWS
    assert list(on_ray.columns) == list(local.columns)
    # Same rows, ids and labels; probabilities to the last few bits (a model's arithmetic on 250
    # rows at a time is not bit for bit its arithmetic on 3,000).
    pd.testing.assert_frame_equal(on_ray, local, check_exact=False, rtol=1e-9, atol=0)
    assert "Scored 3000 rows with churn:1 on Ray" in result.stdout
    assert not list(tmp_path.glob(".ray.csv.*")), "the temporary file is gone"

    logged = _logged(home, _batch_id(result.stdout))
    assert len(logged) == ROWS, "every scored row is in the prediction log"
    expected = _logged(home, local_batch)
    assert [i for i, _ in logged] == [i for i, _ in expected], "the inputs as typed locally"
    for (_, ray_output), (_, local_output) in zip(logged, expected, strict=True):
        got, want = json.loads(ray_output), json.loads(local_output)
        assert got["prediction"] == want["prediction"]
        assert got["probabilities"] == pytest.approx(want["probabilities"], rel=1e-9, abs=0)


def _logged(home: Path, batch_id: str) -> list[tuple[str, str]]:
    """The (input, output) of each row the prediction log holds for ``batch_id``, in order."""
    from mlship.monitor.predlog import read_log
    from mlship.store.logstore import PREDICTIONS, LogTarget

    workspace = Workspace.open(Settings(home=home))
    try:
        target = LogTarget(workspace.logs, f"{PREDICTIONS}/batch")
        table = read_log(target, workspace.sealing)
    finally:
        workspace.close()
    rows = table.to_pandas()
    rows = rows[rows["request_id"] == batch_id]
    return list(zip(rows["input"], rows["output"], strict=True))


def test_a_single_csv_file_scores_as_it_does_locally(
    ray_executor: RayExecutor, home: Path, inputs: pd.DataFrame, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    inputs.iloc[:500].to_csv(rows, index=False)
    invoke_cli("predict", "churn:1", str(rows), "-o", str(tmp_path / "local.parquet"), home=home)
    invoke_cli(
        "predict", "churn:1", str(rows), "-o", str(tmp_path / "ray.parquet"),
        "--executor", "ray", "--chunk-rows", "120", "--no-prediction-log", home=home,
    )  # fmt: skip
    local = pd.read_parquet(tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray.parquet"), local)


def test_a_bad_row_is_named_by_its_file_and_row_as_locally(
    ray_executor: RayExecutor, home: Path, inputs: pd.DataFrame, tmp_path: Path
) -> None:
    """Row 1,234 of the second file says ``tenure_months`` is ``forty``: both commands stop
    with the same message, and no output is written."""
    folder = tmp_path / "bad"
    folder.mkdir()
    text = inputs.assign(tenure_months=inputs["tenure_months"].astype(str))  # as some exports do
    broken = text.iloc[:1500].reset_index(drop=True)
    broken.loc[1233, "tenure_months"] = "forty"
    pq.write_table(
        pa.Table.from_pandas(text.iloc[:800], preserve_index=False), folder / "a.parquet"
    )
    bad_file = folder / "b.parquet"
    pq.write_table(pa.Table.from_pandas(broken, preserve_index=False), bad_file, row_group_size=300)

    local = invoke_cli("predict", "churn:1", str(bad_file), "-o", str(tmp_path / "l.csv"),
                       home=home, check=False)  # fmt: skip
    on_ray = invoke_cli(
        "predict", "churn:1", str(folder), "-o", str(tmp_path / "r.csv"), "--executor", "ray",
        "--chunk-rows", "200", home=home, check=False,
    )  # fmt: skip
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr
    expected = f"{bad_file}: 1 problem(s)"
    assert expected in _flat(local.stderr)
    assert "row 1234, column 'tenure_months'" in _flat(local.stderr)
    assert _error(on_ray.stderr) == _error(local.stderr)
    assert "Traceback" not in on_ray.stderr
    assert not (tmp_path / "r.csv").exists()


def _flat(text: str) -> str:
    """The text on one line, without the frame rich draws around an error."""
    return " ".join(text.replace("│", " ").split())


def _error(stderr: str) -> str:
    flat = _flat(stderr)
    return flat[flat.index("error:") :] if "error:" in flat else flat


def test_bad_options_are_refused(home: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a\n1\n")
    spark = invoke_cli("predict", "churn:1", str(rows), "-o", str(tmp_path / "o.csv"),
                       "--executor", "dask", home=home, check=False)  # fmt: skip
    assert spark.returncode == 2
    assert "use local, ray or spark" in _flat(spark.stderr)
    address = invoke_cli("predict", "churn:1", str(rows), "-o", str(tmp_path / "o.csv"),
                         "--ray-address", "ray://127.0.0.1:1", home=home, check=False)  # fmt: skip
    assert address.returncode == 2
    assert "only with --executor ray" in _flat(address.stderr)
