"""The log store, one behavioural suite for every home: a local directory, S3-compatible object
storage (a real SeaweedFS) and a real tracking server over HTTP. Parts appear whole, are listed in
the order written (``since`` leaves out older ones), read back byte for byte, stay sealed, never
collide between writers, and compaction merges them without changing a figure, even when it
stops between writing the merged part and deleting its inputs."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.crypto.encryption import MAGIC
from mlship.monitor.compaction import compact
from mlship.monitor.feedback import FeedbackStore, Label, feedback_log, read_labels
from mlship.monitor.predlog import Entry, PredictionLog, read_log
from mlship.monitor.traffic import log_sources, scan_log
from mlship.security.keyring import sealing as sealing_of
from mlship.store.logread import load_parts
from mlship.store.logstore import (
    LocalLogStore,
    LogStore,
    LogTarget,
    PartRef,
    check_log,
    part_name,
)
from mlship.store.s3 import S3Location, S3Settings, make_client
from mlship.store.s3logs import S3LogStore
from tests.backends import Backend, open_backend
from tests.objectstore import ObjectStore

SECRET = "4111-1111-1111-1111"


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A real ``mlship server`` (SQLite), shared by this module's tests."""
    with open_backend("http-sqlite", tmp_path_factory.mktemp("logserver"), None) as backend:
        yield backend


@pytest.fixture(params=["local", "s3", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LogStore:
    """An empty log store of each kind."""
    if request.param == "local":
        return LocalLogStore(tmp_path / "home")
    if request.param == "s3":
        objects: ObjectStore = request.getfixturevalue("object_store")
        location = S3Location(objects.bucket, f"logs-{secrets.token_hex(6)}")
        return S3LogStore(location, make_client(objects.settings()))
    backend: Backend = request.getfixturevalue("tracking")
    log = f"predictions/t{secrets.token_hex(6)}"  # a fresh deployment on the shared server
    request.node.own_log = log
    workspace = backend.workspace_as("admin")
    return workspace.logs


def _log(request: pytest.FixtureRequest) -> str:
    """A log this test owns (on the shared server, one no other test wrote)."""
    return getattr(request.node, "own_log", "predictions/churn")


def _entry(request_id: str, records: int = 1) -> Entry:
    return Entry(
        request_id, "churn", 1, "route", 1.5,
        [{"card": SECRET, "age": 40 + i} for i in range(records)],
        [{"prediction": "no"}] * records,
    )  # fmt: skip


def test_a_part_reads_back_as_written_and_is_listed(
    store: LogStore, request: pytest.FixtureRequest
) -> None:
    log = _log(request)
    assert store.parts(log) == []
    first, second = part_name(), part_name()
    store.put(log, second, b"second part")
    store.put(log, first, b"first part")
    assert store.parts(log) == [PartRef(log, first), PartRef(log, second)]
    assert store.read(PartRef(log, first)) == b"first part"
    assert log in store.logs("predictions")
    store.delete([PartRef(log, first), PartRef(log, first)])  # twice: gone is not an error
    assert store.parts(log) == [PartRef(log, second)]


def test_part_sizes_are_the_bytes_stored_where_the_store_can_tell(
    store: LogStore, request: pytest.FixtureRequest
) -> None:
    log = _log(request)
    first, second = part_name(), part_name()
    store.put(log, first, b"x" * 1234)
    store.put(log, second, b"y" * 5)
    sizes = store.sizes(log)
    if request.node.callspec.params["store"] == "server":
        assert sizes is None  # a tracking server's parts would have to be read to be measured
    else:
        assert sizes == {first: 1234, second: 5}
        assert store.sizes("predictions/none-yet") == {}


def test_since_leaves_out_only_parts_written_before_it(
    store: LogStore, request: pytest.FixtureRequest
) -> None:
    log = _log(request)
    now = datetime.now(UTC)
    old = part_name(int((now - timedelta(hours=2)).timestamp() * 1e9))
    new = part_name(int(now.timestamp() * 1e9))
    store.put(log, old, b"old")
    store.put(log, new, b"new")
    since = now - timedelta(hours=1)
    assert [part.name for part in store.parts(log, since)] == [new]
    assert [part.name for part in store.parts(log)] == [old, new]


def test_writers_never_collide_and_every_row_reads_back_sealed(
    store: LogStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    log = _log(request)
    sealing = sealing_of(Settings(home=tmp_path / "keys", encrypt_artifacts=True))
    writers = [
        PredictionLog(LogTarget(store, log), "churn", flush_rows=2, sealing=sealing)
        for _ in range(3)
    ]
    for i in range(12):
        writers[i % 3].append(_entry(f"r{i}"))
    for writer in writers:
        writer.close()
        assert writer.failure is None
    parts = store.parts(log)
    assert len(parts) == len({part.name for part in parts}) == 6  # 3 writers x 2 flushes
    for part in parts:
        data = store.read(part)
        assert data.startswith(MAGIC) and SECRET.encode() not in data
    ids = read_log(LogTarget(store, log), sealing).column("request_id").to_pylist()
    assert sorted(ids) == sorted(f"r{i}" for i in range(12))


def test_labels_in_the_store_newest_wins(store: LogStore, request: pytest.FixtureRequest) -> None:
    target = LogTarget(store, _log(request).replace("predictions/", "labels/"))
    if isinstance(store, LocalLogStore | S3LogStore):
        target = feedback_log(store)  # the workspace's own log of labels
    labels = FeedbackStore(target)
    labels.append([Label("r1", 0, "no"), Label("r2", 0, "yes")], "test")
    labels.append([Label("r1", 0, "yes")], "test")
    found = read_labels(target).sort("request_id")
    assert found.get_column("label").to_list() == ['"yes"', '"yes"']


def _figures(store: LogStore, log: str) -> list[tuple[str, int]]:
    table = read_log(LogTarget(store, log))
    return sorted(zip(table.column("request_id").to_pylist(), table.column("version").to_pylist(),
                      strict=True))  # fmt: skip


def test_compaction_merges_small_parts_and_keeps_every_row(
    store: LogStore, request: pytest.FixtureRequest
) -> None:
    log = _log(request)
    writer = PredictionLog(LogTarget(store, log), "churn", flush_rows=3)
    for i in range(10):
        writer.append(_entry(f"r{i}", records=1 + i % 2))  # 15 rows in 10 requests
    writer.close()
    before = _figures(store, log)
    assert len(before) == 15 and len(store.parts(log)) == 5

    (done,) = compact(store, logs=[log], small_rows=100, target_rows=8)
    # 3 rows a part: two runs of two parts fit in 8 rows, the fifth part is left alone
    assert (done.merged, done.written, done.rows, done.leftovers) == (4, 2, 12, 0)
    assert len(store.parts(log)) == 3
    assert _figures(store, log) == before
    again = compact(store, logs=[log], small_rows=100, target_rows=1000)
    assert again[0].merged == 3 and len(store.parts(log)) == 1  # merged parts merge again
    assert _figures(store, log) == before


def test_a_compaction_stopped_before_deleting_its_inputs_changes_no_figure(
    store: LogStore, request: pytest.FixtureRequest
) -> None:
    log = _log(request)
    writer = PredictionLog(LogTarget(store, log), "churn", flush_rows=2)
    for i in range(6):
        writer.append(_entry(f"r{i}"))
    writer.close()
    before = _figures(store, log)

    class Stopped(Exception):
        pass

    def stop(_name: str) -> None:
        raise Stopped

    with pytest.raises(Stopped):
        compact(store, logs=[log], small_rows=100, written=stop)
    assert len(store.parts(log)) == 4  # three inputs and the merged part: the rows are twice
    assert _figures(store, log) == before  # and read once
    assert len(load_parts(store, [log])) == 1
    (done,) = compact(store, logs=[log], small_rows=100)
    assert done.leftovers == 3 and len(store.parts(log)) == 1
    assert _figures(store, log) == before


def test_a_process_killed_between_writing_and_deleting_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    store = LocalLogStore(tmp_path / "home")
    log = "predictions/churn"
    writer = PredictionLog(LogTarget(store, log), "churn", flush_rows=1)
    for i in range(4):
        writer.append(_entry(f"r{i}"))
    writer.close()
    before = _figures(store, log)
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from mlship.monitor.compaction import compact\n"
        "from mlship.store.logstore import LocalLogStore\n"
        "compact(LocalLogStore(Path(sys.argv[1])), small_rows=100,"
        " written=lambda name: os._exit(9))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    died = subprocess.run(
        [sys.executable, "-c", script, str(store.root)], env=env, timeout=120, check=False
    )
    assert died.returncode == 9
    assert len(store.parts(log)) == 5
    assert _figures(store, log) == before
    scanned = scan_log(log_sources(store)).collect()
    assert scanned.height == 4
    (done, _labels, _usage) = compact(store, small_rows=100)
    assert done.leftovers == 4 and len(store.parts(log)) == 1
    assert _figures(store, log) == before


def test_a_folder_of_any_name_holds_a_deployment_log(tmp_path: Path) -> None:
    folder = tmp_path / "our logs (2026)"
    log = PredictionLog(folder, "churn", flush_rows=1)
    log.append(_entry("r1"))
    log.close()
    assert log.failure is None and log.where == str(folder)
    assert [p.parent for p in tmp_path.rglob("part-*.parquet")] == [folder]
    assert read_log(folder).column("request_id").to_pylist() == ["r1"]


def test_bad_names_never_reach_a_path(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path / "home")
    for bad in ("../escape", "predictions/../../x", "/abs", "a//b", "", "a/b/c/d", "p/.."):
        with pytest.raises(ValueError, match="is not a log name"):
            store.put(bad, part_name(), b"x")
    with pytest.raises(ValueError, match="is not a log part name"):
        store.put("predictions/churn", "../part-1-x.parquet", b"x")
    assert not (tmp_path / "home").exists()


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_any_log_name_is_refused_or_stays_under_the_root(name: str) -> None:
    root = Path("/srv/home")
    try:
        checked = check_log(name)
    except ValueError:
        return
    resolved = (root / checked).resolve()
    assert resolved.is_relative_to(root) and resolved != root


def test_the_server_refuses_bad_names_and_viewers_writing(tracking: Backend) -> None:
    import httpx

    assert tracking.server is not None
    base = f"{tracking.server.base}/api/v1/logs"
    admin = {"Authorization": f"Bearer {tracking.admin_token}"}
    bad = httpx.put(f"{base}/predictions/churn/parts/not-a-part", content=b"x", headers=admin)
    assert bad.status_code == 422 and "is not a log part name" in bad.text
    name = part_name()
    wrong = httpx.put(f"{base}/predictions/..%2F..%2Fx/parts/{name}", content=b"x", headers=admin)
    assert wrong.status_code in (404, 422)
    viewer = tracking.workspace_as("logviewer", "viewer").logs
    with pytest.raises(Exception, match="refused"):
        viewer.put("predictions/churn", name, b"x")
    assert viewer.parts("predictions/never-written") == []


def test_a_store_that_refuses_keeps_the_rows_waiting_and_says_where(
    object_store: ObjectStore,
) -> None:
    location = S3Location(object_store.bucket, "refused")
    wrong = S3Settings(object_store.endpoint, object_store.access_key, "not-the-secret")
    store = S3LogStore(location, make_client(wrong))
    log = PredictionLog(LogTarget(store, "predictions/churn"), "churn", flush_rows=1)
    log.append(_entry("r1"))  # a flush that fails, in the caller: it must not raise
    assert log.waiting == 1 and log.written == 0 and log.failure is not None
    said = log.failure
    assert said.startswith(f"the prediction log at s3://{object_store.bucket}/refused/")
    assert "refused the credentials" in said and "AWS_SECRET_ACCESS_KEY" in said
    log.target = LogTarget(
        S3LogStore(location, make_client(object_store.settings())), log.target.log
    )
    log.append(_entry("r2"))  # the store takes writes again: everything that waited is written
    assert log.failure is None and log.waiting == 0
    assert read_log(log.target).column("request_id").to_pylist() == ["r1", "r2"]


_NAMES = st.text(alphabet=st.sampled_from("abcz09._-/%\\: \x00é"), min_size=0, max_size=30)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(log=_NAMES, name=_NAMES)
def test_the_server_answers_any_names_with_a_4xx_or_a_stored_part(
    tracking: Backend, log: str, name: str
) -> None:
    import httpx

    assert tracking.server is not None and tracking.server_home is not None
    headers = {"Authorization": f"Bearer {tracking.admin_token}"}
    url = f"{tracking.server.base}/api/v1/logs/{log}/parts/{name}"
    try:
        answer = httpx.put(url, content=b"x", headers=headers, timeout=30)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return  # the client refuses to send it
    assert answer.status_code < 500, answer.text
    if answer.status_code < 300:
        check_log(log)
        assert answer.json()["name"] == name
    home = tracking.server_home.resolve()
    strays = [p for p in home.parent.rglob("part-*") if not p.is_relative_to(home)]
    assert not strays


def test_a_server_that_cannot_be_reached_keeps_the_rows_waiting(tmp_path: Path) -> None:
    from mlship.remote.client import Client
    from mlship.remote.logparts import RemoteLogStore
    from tests.serving import free_port

    url = f"http://127.0.0.1:{free_port()}"
    store = RemoteLogStore(Client(url, "mls_token", timeout=5))
    log = PredictionLog(LogTarget(store, "predictions/churn"), "churn", flush_rows=1)
    log.append(_entry("r1"))
    assert log.waiting == 1 and log.failure is not None
    assert log.failure.startswith(f"the prediction log at {url} (predictions/churn)")
    assert f"cannot reach the mlship server at {url}" in log.failure
