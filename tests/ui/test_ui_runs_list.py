"""The runs list of ``mlship ui`` over many runs: filters, search, sorting and pages of 50, read
from the HTML the real app serves (Starlette's test client, a real SQLite workspace)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from mlship.store.repositories import NewCandidate, NewMetric
from mlship.ui import local_app
from mlship.ui.charts import compare_charts, run_metrics
from mlship.ui.runs import PAGE_SIZE
from mlship.workspace import Workspace
from tests.conftest import invoke_cli

RUNS = 120


def _dataset(workspace: Workspace) -> int:
    artifact = workspace.artifacts.put_bytes(b"a dataset").sha256
    dataset, _ = workspace.tracking.get_or_add_dataset("h" * 64, artifact, 10, [{"name": "x"}], [])
    return dataset.id


@pytest.fixture
def many(workspace: Workspace) -> Iterator[tuple[TestClient, list[str]]]:
    """120 runs: every third failed, the others finished with score i/1000 (run i), owners ann
    and bob in turn, the even ones tagged team=red; their ids in the order they started."""
    store = workspace.metadata
    dataset = _dataset(workspace)
    ids = []
    for i in range(RUNS):
        run_id = store.start_run(
            pipeline=f"pipe{i % 4}",
            task="classification",
            metric="accuracy",
            spec_path="/x.yaml",
            spec_hash="0" * 64,
            spec={},
            git_commit=None,
            environment={},
        )
        ids.append(run_id)
        store.set_run_owner(run_id, "ann" if i % 2 == 0 else "bob")
        if i % 2 == 0:
            store.tag_run(run_id, {"team": "red"})
        if i % 3 == 0:
            store.fail_run(run_id, "boom", datetime.now(UTC))
            continue
        candidate = NewCandidate(
            name=f"model{i}",
            estimator="sklearn.linear_model.LogisticRegression",
            params={"C": i},
            cv_mean=i / 1000,
            cv_std=0.01,
            fit_seconds=1.0,
            rank=1,
            selected=True,
        )
        metric = NewMetric(
            candidate=candidate.name, split="holdout", name="accuracy", value=i / 100
        )
        store.finish_run(
            run_id,
            dataset_id=dataset,
            candidates=[candidate],
            metrics=[metric],
            best_candidate=candidate.name,
            wall_seconds=1.0,
        )
    with TestClient(local_app(workspace), base_url="http://127.0.0.1:8765") as client:
        yield client, ids


def _listed(html: str) -> list[str]:
    return re.findall(r'name="run" value="([0-9a-f]{32})"', html)


def test_pages_of_fifty_newest_first(many: tuple[TestClient, list[str]]) -> None:
    client, ids = many
    newest_first = ids[::-1]
    first = client.get("/ui/runs")
    assert first.status_code == 200
    assert _listed(first.text) == newest_first[:PAGE_SIZE]
    assert f"{RUNS} runs, page 1 of 3" in first.text
    third = client.get("/ui/runs", params={"page": 3})
    assert _listed(third.text) == newest_first[100:]
    assert 'rel="prev"' in third.text and 'rel="next"' not in third.text
    beyond = client.get("/ui/runs", params={"page": 99})  # the last page, not an empty one
    assert _listed(beyond.text) == newest_first[100:]


def test_filters_combine_and_pages_keep_them(many: tuple[TestClient, list[str]]) -> None:
    client, ids = many
    answer = client.get("/ui/runs", params={"owner": "ann", "status": "failed", "tag": "team=red"})
    expected = [ids[i] for i in range(RUNS) if i % 2 == 0 and i % 3 == 0][::-1]
    assert _listed(answer.text) == expected
    page = client.get("/ui/runs", params={"owner": "bob", "sort": "started"})
    assert _listed(page.text) == [ids[i] for i in range(RUNS) if i % 2][:PAGE_SIZE]
    assert "/ui/runs?owner=bob&amp;sort=started&amp;page=2" in page.text


def test_sorting_by_score_and_searching_parameters(many: tuple[TestClient, list[str]]) -> None:
    client, ids = many
    best = client.get("/ui/runs", params={"sort": "-score"})
    finished = [i for i in range(RUNS) if i % 3]
    assert _listed(best.text)[:3] == [ids[i] for i in sorted(finished, reverse=True)[:3]]
    worst = client.get("/ui/runs", params={"sort": "score", "page": 2})
    listed = _listed(worst.text)
    assert listed[: len(finished) - PAGE_SIZE] == [ids[i] for i in finished[PAGE_SIZE:]]
    assert set(listed[len(finished) - PAGE_SIZE :]) <= {ids[i] for i in range(RUNS) if i % 3 == 0}
    found = client.get("/ui/runs", params={"q": "C=77"})
    assert _listed(found.text) == [ids[77]]
    found = client.get("/ui/runs", params={"q": "pipe1 model13"})
    assert _listed(found.text) == [ids[13]]


def test_bad_filters_name_the_field(many: tuple[TestClient, list[str]]) -> None:
    client, _ids = many
    for params, message in (
        (
            {"sort": "name"},
            "sort: expected one of -started, started, -score, score, got &#39;name&#39;",
        ),
        ({"status": "done"}, "status: expected one of running, succeeded"),
        ({"tag": "team"}, "tag: expected KEY=VALUE, got &#39;team&#39;"),
        ({"page": "0"}, "page: expected a page number from 1, got &#39;0&#39;"),
    ):
        answer = client.get("/ui/runs", params=params)
        assert answer.status_code == 400 and message in answer.text, (params, answer.text)


def test_the_compare_charts_hold_each_runs_figures(
    many: tuple[TestClient, list[str]], workspace: Workspace
) -> None:
    client, ids = many
    chosen = [workspace.tracking.get_run(ids[i]) for i in (1, 2)]
    assert run_metrics(chosen[0]) == {"accuracy": 0.01}
    charts = compare_charts(chosen, [[], []])
    assert len(charts) == 1
    series = charts[0].options["series"]
    assert [(s["name"], s["data"]) for s in series] == [
        (f"pipe1 {ids[1][:8]}", [0.01]),
        (f"pipe2 {ids[2][:8]}", [0.02]),
    ]
    page = client.get("/ui/compare", params=[("run", ids[1]), ("run", ids[2][:10])])
    assert page.status_code == 200 and "Compare 2 runs" in page.text
    assert '"data": [0.02]' in page.text  # the options travel as JSON, not as script
    assert client.get("/ui/compare").status_code == 400
    assert client.get("/ui/compare", params={"run": "nosuchrun"}).status_code == 404


def test_mlship_ui_refuses_to_listen_beyond_this_machine(workspace: Workspace) -> None:
    result = invoke_cli(
        "ui", "--host", "0.0.0.0", home=workspace.settings.home_resolved, check=False
    )
    assert result.returncode != 0
    assert "mlship ui serves without a sign-in, so only on this machine" in result.stderr


def test_a_database_password_in_a_spec_or_an_error_is_never_shown(workspace: Workspace) -> None:
    url = "postgresql+psycopg://etl:hunter2@db.internal/crm"
    run_id = workspace.metadata.start_run(
        pipeline="leaky",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={"sources": [{"query": "SELECT 1", "url": url}]},
        git_commit=None,
        environment={},
    )
    workspace.metadata.fail_run(run_id, f"could not connect to {url}", datetime.now(UTC))
    with TestClient(local_app(workspace), base_url="http://localhost:8765") as client:
        page = client.get(f"/ui/runs/{run_id}")
    assert page.status_code == 200
    assert "hunter2" not in page.text
    assert "etl:***@db.internal" in page.text


def test_trials_a_client_of_the_server_journaled_are_charted(workspace: Workspace) -> None:
    """A run tuned through the tracking server keeps its trials in the run's journal in the
    metadata store (not in Optuna's tables): the compare page reads them there."""
    import optuna
    from optuna.storages import JournalStorage

    from mlship.remote.metadata import RemoteJournal
    from mlship.ui.runs import tuning_trials

    store = workspace.metadata
    run_id = store.start_run(
        pipeline="tuned",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={},
        git_commit=None,
        environment={},
    )
    journal = JournalStorage(RemoteJournal(workspace.journals, run_id))
    study = optuna.create_study(study_name=f"{run_id}:logistic", storage=journal)
    scores = {0.1: 0.7, 1.0: 0.8, 10.0: 0.75}

    def objective(trial: optuna.Trial) -> float:
        return scores[trial.suggest_float("C", 0.01, 100, log=True)]

    for c in scores:
        study.enqueue_trial({"C": c})
        study.optimize(objective, n_trials=1)
    candidate = NewCandidate(
        name="logistic",
        estimator="sklearn.linear_model.LogisticRegression",
        params={"C": 1.0},
        cv_mean=0.8,
        cv_std=0.01,
        fit_seconds=1.0,
        rank=1,
        selected=True,
        trials=3,
        tuning={"study": f"{run_id}:logistic", "trials": 3},
    )
    store.finish_run(
        run_id,
        dataset_id=_dataset(workspace),
        candidates=[candidate],
        metrics=[],
        best_candidate="logistic",
        wall_seconds=1.0,
    )
    run = workspace.tracking.get_run(run_id)
    [found] = tuning_trials(workspace, run)
    assert (found.candidate, found.params) == ("logistic", ["C"])
    assert found.values == [[0.1, 0.7], [1.0, 0.8], [10.0, 0.75]]
    with TestClient(local_app(workspace), base_url="http://localhost:8765") as client:
        page = client.get("/ui/compare", params={"run": run_id})
    assert page.status_code == 200 and "Tuning trials of logistic" in page.text


def test_local_forms_need_the_pages_csrf_token_too(workspace: Workspace) -> None:
    """No sign-in on localhost, but any web site the user visits can post to it: a note needs
    the token of the page it was written on."""
    run_id = workspace.metadata.start_run(
        pipeline="p",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={},
        git_commit=None,
        environment={},
    )
    with TestClient(local_app(workspace), base_url="http://127.0.0.1:8765") as client:
        page = client.get(f"/ui/runs/{run_id}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        for forged in ({"body": "x"}, {"body": "x", "csrf": "0" * 64}):
            answer = client.post(f"/ui/runs/{run_id}/notes", data=forged, follow_redirects=False)
            assert answer.status_code == 403
        assert workspace.tracking.notes("run", run_id) == []
        answer = client.post(
            f"/ui/runs/{run_id}/notes",
            data={"body": "from the page", "csrf": csrf.group(1)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
    assert [(n.author, n.body) for n in workspace.tracking.notes("run", run_id)] == [
        (workspace.settings.user, "from the page")
    ]
