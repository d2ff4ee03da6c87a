"""One behavioural suite for the tracking repositories, run on every backend a user can have.

Each test runs on SQLite, PostgreSQL, and a client of a real ``mlship server`` over each of them
(the ``backend`` fixture): the same calls must give the same entities, the same errors with the
same messages, and the same rules. A difference between backends is a bug. Backends are shared by
the session, so every test names its own pipelines and models (``unique``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.errors import MlshipError, NotFoundError
from mlship.store.entities import Candidate, Dataset, Metric, ModelVersion, Run, model_of
from mlship.store.liveness import RunStateError, Worker
from mlship.store.metadata import note_text
from mlship.store.repositories import NewCandidate, NewMetric, NewVersion, Runs
from mlship.workspace import Workspace
from tests.backends import Backend, unique

FAR_HOST = "build-agent.example"
"""A host that is not this one: a run there is judged by its heartbeat alone."""


def _hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _utc(moment: datetime | None) -> bool:
    return moment is not None and moment.utcoffset() == timedelta(0)


def _dataset(ws: Workspace, pipeline: str, content: str | None = None) -> Dataset:
    """A dataset of ``pipeline`` whose artifact is really in the workspace's artifact store."""
    artifact = ws.artifacts.put_bytes(f"table of {content or pipeline}".encode())
    found, _ = ws.tracking.get_or_add_dataset(
        _hash(content or pipeline), artifact.sha256, 3, [{"name": "x"}], [{"kind": "test"}],
        pipeline=pipeline,
    )  # fmt: skip
    return found


def _start(repo: Runs, pipeline: str, worker: Worker | None = None) -> str:
    return repo.start_run(
        pipeline=pipeline, task="classification", metric="accuracy", spec_path=f"{pipeline}.yaml",
        spec_hash="s" * 64, spec={"name": pipeline}, git_commit=None, environment={"os": "test"},
        worker=worker,
    )  # fmt: skip


def _version(ws: Workspace, name: str, dataset: Dataset) -> NewVersion:
    artifact = ws.artifacts.put_bytes(f"model {name}".encode())
    return NewVersion(
        name=name, dataset_hash=dataset.data_hash, estimator="e.Best", params={"C": 1.0},
        artifact_sha256=artifact.sha256, artifact_size=artifact.size,
        artifact_signature=ws.artifact_signature(artifact.sha256),
        signature={"task": "classification"}, metrics={"holdout": {"accuracy": 0.9}},
    )  # fmt: skip


CANDIDATES = [
    NewCandidate(name="best", estimator="e.Best", params={"C": 1.0}, cv_mean=0.8, cv_std=0.1,
                 fit_seconds=1.0, rank=1, selected=True, tuning={"trials": [1, 2]}),
    NewCandidate(name="other", estimator="e.Other", params={}, cv_mean=0.7, cv_std=0.1,
                 fit_seconds=2.0, rank=2),
]  # fmt: skip
METRICS = [
    NewMetric(candidate="best", split="cv", name="accuracy", value=0.8),
    NewMetric(candidate="best", split="holdout", name="accuracy", value=0.9),
]


def _finish(
    repo: Runs, run_id: str, dataset: Dataset, register: NewVersion | None = None
) -> ModelVersion | None:
    return repo.finish_run(
        run_id, dataset_id=dataset.id, candidates=CANDIDATES, metrics=METRICS,
        best_candidate="best", wall_seconds=2.5, outcome={"cost": 0.01, "details": {"k": "v"}},
        register=register,
    )  # fmt: skip


@pytest.fixture
def alice(backend: Backend) -> Workspace:
    return backend.workspace_as("alice", "scientist")


# -- datasets -----------------------------------------------------------------------------------


def test_a_dataset_is_recorded_once_per_content(alice: Workspace) -> None:
    pipeline = unique("once")
    artifact = alice.artifacts.put_bytes(b"the same table " + pipeline.encode())
    args = (_hash(pipeline), artifact.sha256, 3, [{"name": "x", "type": "int"}], [{"kind": "t"}])
    first, created = alice.tracking.get_or_add_dataset(*args, pipeline=pipeline, n_quarantined=1)
    again, created_again = alice.tracking.get_or_add_dataset(*args, pipeline=pipeline)
    assert (created, created_again) == (True, False)
    assert again == first
    assert isinstance(first, Dataset)
    assert (first.n_rows, first.n_columns, first.n_quarantined) == (3, 1, 1)
    assert (first.columns, first.sources) == ([{"name": "x", "type": "int"}], [{"kind": "t"}])
    assert _utc(first.created_at)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.n_rows = 4  # type: ignore[misc]


def test_a_dataset_whose_artifact_is_not_stored_is_refused(alice: Workspace) -> None:
    missing = _hash(unique("missing artifact"))
    with pytest.raises(NotFoundError) as raised:
        alice.tracking.get_or_add_dataset(_hash(unique("d")), missing, 1, [], [])
    assert str(raised.value) == (
        f"artifact {missing} is not in the artifact store; store it before recording what "
        "refers to it"
    )


def test_an_unknown_dataset_field_is_refused(alice: Workspace) -> None:
    artifact = alice.artifacts.put_bytes(b"fields")
    with pytest.raises(MlshipError, match="unknown dataset field 'colour'; expected one of"):
        alice.tracking.get_or_add_dataset(
            _hash(unique("f")), artifact.sha256, 1, [], [], colour="red"
        )


def test_datasets_are_found_by_hash_prefix_and_pipeline_history(alice: Workspace) -> None:
    pipeline = unique("history")
    older = _dataset(alice, pipeline, f"{pipeline} v1")
    newer = _dataset(alice, pipeline, f"{pipeline} v2")
    datasets = alice.datasets
    assert datasets.get_dataset(pipeline) == newer
    assert datasets.get_dataset(f"{pipeline}~0") == newer
    assert datasets.get_dataset(f"{pipeline}~1") == older
    assert datasets.get_dataset(older.data_hash) == older
    assert datasets.get_dataset(older.data_hash[:16].upper()) == older
    with pytest.raises(NotFoundError) as raised:
        datasets.get_dataset(f"{pipeline}~2")
    assert str(raised.value) == (
        f"no dataset '{pipeline}~2' (a hash prefix, or a pipeline name with an optional ~N); "
        "`mlship data list` shows them"
    )
    listed = datasets.list_datasets(limit=1000)
    assert [d.id for d in listed].index(newer.id) < [d.id for d in listed].index(older.id)
    assert len(datasets.list_datasets(limit=1)) == 1


def test_an_ambiguous_hash_prefix_is_refused(alice: Workspace) -> None:
    prefix = _hash(unique("ambiguous"))[:20]
    for tail in ("0", "1"):
        artifact = alice.artifacts.put_bytes(f"{prefix}{tail}".encode())
        alice.datasets.get_or_add_dataset(prefix + tail * 44, artifact.sha256, 1, [], [])
    with pytest.raises(MlshipError, match=f"dataset hash prefix '{prefix}' is ambiguous"):
        alice.datasets.get_dataset(prefix)


def test_the_ingest_cache_remembers_the_first_answer(alice: Workspace) -> None:
    key = _hash(unique("ingest key"))
    first = _dataset(alice, unique("cache"))
    second = _dataset(alice, unique("cache"))
    datasets = alice.datasets
    assert datasets.cached_dataset(key) is None
    datasets.remember_ingest(key, first.id)
    datasets.remember_ingest(key, second.id)  # a retry after a lost answer changes nothing
    assert datasets.cached_dataset(key) == first
    with pytest.raises(NotFoundError, match=r"^no dataset with id 999999999$"):
        datasets.remember_ingest(_hash(unique("other key")), 999_999_999)


# -- runs ---------------------------------------------------------------------------------------


def test_a_run_belongs_to_whoever_starts_it(alice: Workspace) -> None:
    pipeline = unique("start")
    run_id = _start(alice.runs, pipeline, Worker(FAR_HOST, 4242))
    run = alice.runs.get_run(run_id)
    assert isinstance(run, Run)
    assert (run.id, run.pipeline, run.status, run.user, run.owner) == (
        run_id, pipeline, "running", "alice", "alice",
    )  # fmt: skip
    assert (run.host, run.pid, run.attempts, run.tags) == (FAR_HOST, 4242, 1, {})
    assert (run.spec, run.environment) == ({"name": pipeline}, {"os": "test"})
    assert _utc(run.started_at) and _utc(run.heartbeat_at)
    assert run.finished_at is None and run.candidates == () and run.dataset is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "succeeded"  # type: ignore[misc]


def test_runs_are_found_by_id_prefix_and_pipeline(alice: Workspace) -> None:
    pipeline = unique("refs")
    first, second = _start(alice.runs, pipeline), _start(alice.runs, pipeline)
    assert alice.runs.get_run(first[:10]).id == first
    assert alice.runs.get_run(first.upper()).id == first
    assert alice.runs.get_run(pipeline).id == second
    with pytest.raises(NotFoundError) as raised:
        alice.runs.get_run("nope")
    assert str(raised.value) == "no run with id 'nope'; `mlship runs list` shows the runs"


def test_tags_owner_and_filters(backend: Backend, alice: Workspace) -> None:
    runs = alice.runs
    team = unique("team")
    first, second = _start(runs, unique("tags")), _start(runs, unique("tags"))
    tagged = runs.tag_run(first[:12], {"team": team, "ticket": "7"})
    assert (tagged.id, tagged.tags) == (first, {"team": team, "ticket": "7"})
    assert runs.tag_run(first, {"ticket": None, "stage": "exp"}).tags == {
        "team": team,
        "stage": "exp",
    }
    runs.tag_run(second, {"team": team})
    assert {r.id for r in runs.list_runs(tags={"team": team})} == {first, second}
    assert [r.id for r in runs.list_runs(tags={"team": team, "stage": "exp"})] == [first]
    new_owner = unique("dana")
    handed = runs.set_run_owner(second, f"  {new_owner} ")
    assert (handed.owner, handed.user) == (new_owner, "alice")
    assert [r.id for r in runs.list_runs(owner=new_owner)] == [second]
    assert runs.list_runs(tags={"team": unique("nobody")}) == []
    listed = runs.list_runs(limit=2, tags={"team": team})
    assert [r.id for r in listed] == [second, first]  # newest first
    with pytest.raises(MlshipError, match=r"^a tag needs a key$"):
        runs.tag_run(first, {"": "x"})
    with pytest.raises(MlshipError, match=r"^a tag key cannot contain '='"):
        runs.tag_run(first, {"a=b": "x"})
    with pytest.raises(MlshipError, match=r"^an owner needs a name$"):
        runs.set_run_owner(first, "   ")
    with pytest.raises(NotFoundError, match=r"^no run with id 'nope'"):
        runs.tag_run("nope", {"a": "b"})


def test_notes_are_the_acting_users_and_kept_in_order(alice: Workspace) -> None:
    run_id = _start(alice.runs, unique("notes"))
    first = alice.runs.add_run_note(run_id[:8], "\n## Why\n\nBaseline.  \n\n")
    second = alice.runs.add_run_note(run_id, "Second thought.")
    assert (first.author, first.body, first.target_kind, first.target_id) == (
        "alice", "## Why\n\nBaseline.", "run", run_id,
    )  # fmt: skip
    assert alice.runs.notes("run", run_id) == [first, second]
    assert _utc(first.created_at)
    with pytest.raises(MlshipError, match=r"^a note needs some text$"):
        alice.runs.add_run_note(run_id, " \n ")
    with pytest.raises(MlshipError) as raised:
        alice.runs.notes("dataset", run_id)
    assert str(raised.value) == (
        "unknown note target 'dataset'; expected one of run, version, request"
    )


def test_a_note_on_a_run_answers_a_note_of_the_same_run(alice: Workspace) -> None:
    run_id = _start(alice.runs, unique("thread"))
    other = _start(alice.runs, unique("thread"))
    first = alice.runs.add_run_note(run_id, "Why this seed?")
    reply = alice.runs.add_run_note(run_id, "The team's default.", reply_to=first.id)
    assert (reply.reply_to, reply.target_id) == (first.id, run_id)
    assert alice.runs.notes("run", run_id) == [first, reply]
    with pytest.raises(NotFoundError, match=rf"^run {other[:8]} has no note #{first.id} to reply"):
        alice.runs.add_run_note(other, "elsewhere", reply_to=first.id)
    assert alice.runs.notes("run", other) == []


def test_a_heartbeat_stops_when_the_run_failed(alice: Workspace) -> None:
    runs = alice.runs
    run_id = _start(runs, unique("beat"), Worker(FAR_HOST, 1))
    assert runs.heartbeat(run_id) is True
    started = datetime.now(UTC) - timedelta(seconds=5)
    runs.fail_run(run_id, "out of memory", started)
    run = runs.get_run(run_id)
    assert (run.status, run.error) == ("failed", "out of memory")
    assert _utc(run.finished_at) and run.wall_seconds is not None and run.wall_seconds >= 5
    assert runs.heartbeat(run_id) is False
    with pytest.raises(NotFoundError, match=r"^no run with id 'nope'"):
        runs.heartbeat("nope")


def test_abandoning_refuses_live_and_finished_runs(alice: Workspace) -> None:
    runs = alice.runs
    run_id = _start(runs, unique("abandon"), Worker(FAR_HOST, 77))
    with pytest.raises(RunStateError) as raised:
        runs.abandon_run(run_id, reason="")
    assert str(raised.value).startswith(
        f"run {run_id[:8]} looks alive: pid 77 on {FAR_HOST} renewed its heartbeat"
    )
    closed = runs.abandon_run(run_id[:8], reason="laptop lost", force=True)
    assert (closed.id, closed.status, closed.error) == (
        run_id, "abandoned", "abandoned by alice: laptop lost",
    )  # fmt: skip
    assert _utc(closed.finished_at)
    with pytest.raises(RunStateError, match=rf"^run {run_id[:8]} already finished \(abandoned"):
        runs.abandon_run(run_id, reason="", force=True)


def test_only_your_own_unfinished_run_of_the_same_spec_is_reopened(
    backend: Backend, alice: Workspace
) -> None:
    pipeline = unique("reopen")
    run_id = _start(alice.runs, pipeline, Worker(FAR_HOST, 5))
    with pytest.raises(RunStateError, match=rf"^run {run_id[:8]} of {pipeline} is still running"):
        alice.runs.reopen_run(pipeline, "s" * 64, worker=Worker(FAR_HOST, 6))
    alice.runs.fail_run(run_id, "killed", datetime.now(UTC))
    sam = backend.workspace_as("sam", "scientist")
    assert sam.runs.reopen_run(pipeline, "s" * 64) is None  # alice's, not sam's
    assert alice.runs.reopen_run(pipeline, "t" * 64) is None  # another spec
    assert alice.runs.reopen_run(pipeline, "s" * 64, worker=Worker(FAR_HOST, 6)) == (run_id, 2)
    run = alice.runs.get_run(run_id)
    assert (run.status, run.attempts, run.pid, run.error) == ("running", 2, 6, None)


def test_a_run_named_by_id_is_reopened_even_when_not_the_newest(
    backend: Backend, alice: Workspace
) -> None:
    pipeline = unique("named")
    older = _start(alice.runs, pipeline, Worker(FAR_HOST, 5))
    alice.runs.fail_run(older, "terminated by SIGTERM", datetime.now(UTC))
    newer = _start(alice.runs, pipeline, Worker(FAR_HOST, 6))
    with pytest.raises(RunStateError, match=rf"^run {newer[:8]} of {pipeline} is still running"):
        alice.runs.reopen_run(pipeline, "s" * 64, run_id=newer[:8])
    alice.runs.fail_run(newer, "killed", datetime.now(UTC))

    worker = Worker(FAR_HOST, 7)
    assert alice.runs.reopen_run(pipeline, "s" * 64, run_id=older[:8], worker=worker) == (older, 2)
    assert alice.runs.get_run(older).status == "running"
    assert alice.runs.get_run(newer).status == "failed"  # untouched

    # Asked for by name, a run that cannot be resumed is an error that says why.
    with pytest.raises(RunStateError, match=rf"^run {newer[:8]} of {pipeline} was made from a "):
        alice.runs.reopen_run(pipeline, "t" * 64, run_id=newer)
    other = unique("other")
    with pytest.raises(RunStateError, match=rf"^run {newer[:8]} is a run of {pipeline}, not of "):
        alice.runs.reopen_run(other, "s" * 64, run_id=newer)
    sam = backend.workspace_as("sam", "scientist")
    with pytest.raises(RunStateError, match=rf"^run {newer[:8]} of {pipeline} belongs to alice"):
        sam.runs.reopen_run(pipeline, "s" * 64, run_id=newer)
    with pytest.raises(NotFoundError, match="no run with id 'ffffffffff'"):
        alice.runs.reopen_run(pipeline, "s" * 64, run_id="ffffffffff")


def test_finishing_records_results_and_registers_a_version(
    backend: Backend, alice: Workspace
) -> None:
    name = unique("model")
    dataset = _dataset(alice, unique("finish"))
    run_id = _start(alice.runs, unique("finish"))
    version = _finish(alice.runs, run_id, dataset, register=_version(alice, name, dataset))
    assert isinstance(version, ModelVersion)
    assert (version.version, version.run_id, version.created_by, version.stage) == (
        1, run_id, "alice", "none",
    )  # fmt: skip
    assert (model_of(version).name, model_of(version).owner) == (name, "alice")
    assert version.artifact_signature and _utc(version.created_at)
    run = alice.runs.get_run(run_id)
    assert (run.status, run.best_candidate, run.dataset_id, run.cost) == (
        "succeeded", "best", dataset.id, 0.01,
    )  # fmt: skip
    assert run.details == {"k": "v"} and run.wall_seconds == 2.5 and _utc(run.finished_at)
    assert run.dataset == dataset
    assert all(isinstance(c, Candidate) and c.run_id == run_id for c in run.candidates)
    assert [(c.name, c.rank, c.selected, c.tuning) for c in run.candidates] == [
        ("best", 1, True, {"trials": [1, 2]}), ("other", 2, False, None),
    ]  # fmt: skip
    assert all(isinstance(m, Metric) for m in run.metrics)
    assert sorted((m.candidate, m.split, m.value) for m in run.metrics) == [
        ("best", "cv", 0.8), ("best", "holdout", 0.9),
    ]  # fmt: skip
    with pytest.raises(RunStateError, match=rf"^run {run_id[:8]} already succeeded"):
        _finish(alice.runs, run_id, dataset)
    second = _finish(
        alice.runs, _start(alice.runs, unique("finish")), dataset, _version(alice, name, dataset)
    )
    assert second is not None and second.version == 2


def test_finishing_refuses_a_missing_artifact_and_unknown_fields(alice: Workspace) -> None:
    dataset = _dataset(alice, unique("refused"))
    run_id = _start(alice.runs, unique("refused"))
    bad = dataclasses.replace(_version(alice, unique("m"), dataset), artifact_sha256="f" * 64)
    with pytest.raises(NotFoundError, match=f"^artifact {'f' * 64} is not in the artifact store"):
        _finish(alice.runs, run_id, dataset, register=bad)
    with pytest.raises(MlshipError, match=r"^unknown run field 'colour'; expected one of cost"):
        alice.runs.finish_run(
            run_id, dataset_id=dataset.id, candidates=[], metrics=[], best_candidate="x",
            wall_seconds=1.0, outcome={"colour": "red"},
        )  # fmt: skip
    with pytest.raises(NotFoundError, match=r"^no dataset with id 999999999$"):
        alice.runs.finish_run(
            run_id, dataset_id=999_999_999, candidates=[], metrics=[], best_candidate="x",
            wall_seconds=1.0,
        )  # fmt: skip
    assert alice.runs.get_run(run_id).status == "running"  # nothing half-written


# -- the model catalogue ------------------------------------------------------------------------


def test_versions_and_models_are_read_back(backend: Backend, alice: Workspace) -> None:
    name = unique("catalogue")
    dataset = _dataset(alice, name)
    for _ in range(2):
        _finish(alice.runs, _start(alice.runs, name), dataset, _version(alice, name, dataset))
    catalogue = alice.catalogue
    newest = catalogue.get_version(name)
    assert (newest.version, model_of(newest).name) == (2, name)
    assert catalogue.get_version(name, 1).version == 1
    (model,) = [m for m in catalogue.list_models(owner="alice") if m.name == name]
    assert [v.version for v in model.versions] == [1, 2] and _utc(model.created_at)
    assert name not in {m.name for m in catalogue.list_models(owner=unique("nobody"))}
    with pytest.raises(NotFoundError, match=f"^model '{name}' has no version 9$"):
        catalogue.get_version(name, 9)
    with pytest.raises(NotFoundError, match=r"^no model named 'nope' \(registered models: "):
        catalogue.get_version("nope")


# -- tuning journals ----------------------------------------------------------------------------


def test_journal_entries_are_read_back_in_append_order(alice: Workspace) -> None:
    run_id = _start(alice.runs, unique("journal"))
    journals = alice.journals
    assert journals.read_journal(run_id) == []
    journals.append_journal(run_id, [{"op": 0}, {"op": 1}])
    journals.append_journal(run_id, [{"op": 2, "nested": {"a": [1, None]}}])
    assert journals.read_journal(run_id) == [
        {"op": 0},
        {"op": 1},
        {"op": 2, "nested": {"a": [1, None]}},
    ]
    assert journals.read_journal(run_id, 2) == [{"op": 2, "nested": {"a": [1, None]}}]
    assert journals.read_journal(run_id, 5) == []
    with pytest.raises(NotFoundError, match=r"^no run with id 'nope'"):
        journals.append_journal("nope", [{"op": 0}])


# -- generated input ----------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@settings(
    derandomize=True,
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    tags=st.dictionaries(TEXT.filter(lambda k: k != "" and "=" not in k), TEXT, max_size=3),
    body=TEXT.filter(lambda b: b.strip() != ""),
)
def test_any_tags_and_note_text_come_back_as_written(
    alice: Workspace, tags: dict[str, str], body: str
) -> None:
    run_id = _start(alice.runs, unique("generated"))
    assert alice.runs.tag_run(run_id, dict[str, Any](tags)).tags == tags
    for key, value in tags.items():
        assert [r.id for r in alice.runs.list_runs(tags={key: value}) if r.id == run_id] == [run_id]
    assert alice.runs.add_run_note(run_id, body).body == note_text(body)


def test_no_request_body_says_who_acts(backend: Backend) -> None:
    if backend.server is None:
        pytest.skip("request bodies are a server's")
    body = {
        "pipeline": unique("mallory"), "task": "classification", "metric": "accuracy",
        "spec_path": "x.yaml", "spec_hash": "s", "spec": {}, "environment": {}, "user": "mallory",
    }  # fmt: skip
    answer = httpx.post(
        f"{backend.server.base}/api/v1/runs",
        json=body,
        headers={"Authorization": f"Bearer {backend.admin_token}"},
        timeout=30,
    )
    assert answer.status_code == 422
    assert [(e["loc"], e["type"]) for e in answer.json()["detail"]] == [
        (["body", "user"], "extra_forbidden")
    ]


def test_text_no_backend_can_store_is_refused_alike(alice: Workspace) -> None:
    run_id = _start(alice.runs, unique("nul"))
    refusals: list[tuple[Callable[[], object], str]] = [
        (lambda: alice.runs.add_run_note(run_id, "a\x00b"), "a note"),
        (lambda: alice.runs.tag_run(run_id, {"k\x00": "v"}), "a tag key"),
        (lambda: alice.runs.tag_run(run_id, {"k": "v\x00"}), "a tag value"),
        (lambda: alice.runs.set_run_owner(run_id, "da\x00na"), "an owner's name"),
    ]
    for attempt, what in refusals:
        with pytest.raises(MlshipError) as raised:
            attempt()
        assert str(raised.value) == f"{what} cannot contain the NUL character (\\x00)"
    run = alice.runs.get_run(run_id)
    assert (run.tags, run.owner, alice.runs.notes("run", run_id)) == ({}, "alice", [])
